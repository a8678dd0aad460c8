# # How large a cell, and how many of them? An SVE study of a particle composite
#
# A random particle composite has no periodic unit cell: every finite cell cut out of it is a
# *statistical volume element* (SVE), and its apparent stiffness depends on where it was cut.
# This demo answers the practical question of every homogenization with random
# microstructure: how large must a cell be, and how many random cells must be averaged, to get
# the effective stiffness to a chosen precision? It shows
#
# - how to set up an ensemble of random cells of growing size with
#   {py:class}`fe2x.sve.SVEStudy` and run it in parallel with {py:func}`fe2x.sve.run_sve_study`,
# - the scatter of the apparent moduli and how it falls with cell size,
# - the KUBC/SUBC bracket closing in on the periodic estimate,
# - the integral-range estimate of Kanit et al. (2003) of the realizations needed.
#
# The material is a 2D (plane strain) section through stiff particles (E = 70 GPa, ν = 0.2) in
# epoxy (E = 3 GPa, ν = 0.35) at 30 % particle fraction.
#
# Run it serially or in parallel; the realizations are shared among the ranks. `--coarse` (or
# `FE2X_DEMO_COARSE=1`) runs a tiny study on coarse meshes, `--out DIR` (or `FE2X_DEMO_OUT`)
# chooses where the files go (default `results/demos`):
#
# ```sh
# python demos/demo_sve_study.py
# mpiexec -n 2 python demos/demo_sve_study.py --coarse
# ```

# +
import argparse
import os
from pathlib import Path

from mpi4py import MPI

from fe2x.io.sve_files import write_sve_results
from fe2x.materials import IsotropicElastic
from fe2x.sve import SVEStudy, run_sve_study

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="tiny study on coarse meshes (tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
# -

# ## The ensemble
#
# Lengths are measured in particle diameters: a cell of size L has edge L·d. For each size the
# study builds several random cells, each from its own seed (derived from the base seed and the
# size and realization indices, so a cell is the same whichever rank builds it). The number of
# particles is the one closest to the volume fraction with particles of diameter d, and their
# radius is then adjusted so every cell has exactly 30 % particles: the scatter comes from the
# arrangement alone. A minimum gap of 0.1 d keeps particles from touching, which would need
# tiny elements.
#
# Every cell is homogenized under the three boundary conditions. Each (size, realization) pair
# is one task; the tasks are spread over groups of ranks (here one rank per group), largest
# cells first, and the results are gathered and sorted, so the output does not depend on the
# number of ranks.

# +
E_m = 3.0e9
materials = {
    "matrix": IsotropicElastic(E_m, 0.35, name="epoxy"),
    "inclusion": IsotropicElastic(70.0e9, 0.2, name="glass"),
}
if coarse:
    resolution = {"elements_per_diameter": 3.0, "degree": 1, "geometry_order": 1}
    sizes, realizations = [2.0, 4.0], 4
else:
    resolution = {"elements_per_diameter": 6.0, "degree": 2, "geometry_order": 2}
    sizes, realizations = [2.0, 3.0, 4.0, 6.0, 8.0], 10
settings = SVEStudy(
    dim=2,
    sizes=sizes,
    realizations=realizations,
    volume_fraction=0.3,
    materials=materials,
    min_gap=0.1,
    seed=2003,
    precision=0.01,
    **resolution,
)
result = run_sve_study(settings, comm)
# -

# ## Mean, scatter and the boundary-condition bracket
#
# For each size we print the mean apparent bulk modulus (the plane-strain κ of the isotropic
# projection of the apparent stiffness) with its 95 % confidence interval, for the three
# boundary conditions. KUBC over-constrains a cell and SUBC under-constrains it, so for every
# single cell KUBC ≥ PBC ≥ SUBC; as the cells grow both converge to the effective modulus and
# the bracket KUBC − SUBC narrows. Periodic conditions converge fastest.

if comm.rank == 0:
    print(f"{result.realizations[-1].n_dofs} dofs in the largest cell; {result.seconds:.1f} s")
    print("size  bc        mean κ/E_m   95% CI half-width   std/mean   n for 1%")
    for i, size in enumerate(settings.sizes):
        for bc in settings.bcs:
            s = result.statistics[bc]["bulk"][i]
            n = result.realizations_needed[bc]["bulk"][i]
            print(
                f"{size:4g}  {bc:8s}  {s.mean / E_m:10.5f}  {(s.ci_high - s.mean) / E_m:12.2e}"
                f"  {s.std / s.mean:12.2e}  {n:8d}"
            )
        print(f"      bracket KUBC − SUBC: {result.bracket['bulk'][i] / E_m:.4f} E_m")

# ## Variance decay and the realizations needed
#
# For a random medium with short-range correlation the apparent property over a cell of
# volume V averages about V / A_3 independent pieces, so its variance falls like
# D²(V) = D² (A_3 / V)^α with α ≈ 1, i.e. like L^(−d) (Kanit et al. 2003). The study fits the
# exponent on log–log axes. With it, the number of realizations for a relative precision
# ε = 1 % of the mean (the half-width 2 D(V)/√n of the 95 % interval over the mean) is
# n = 4 D²(V) / (ε² Z̄²) at each size, and the size at which a single cell is enough follows from
# the fit. Boundary conditions differ: the KUBC and SUBC apparent moduli carry a boundary-layer
# bias on top of the scatter, so their "RVE" sizes are larger.

if comm.rank == 0:
    for bc in settings.bcs:
        fit = result.decay[bc]["bulk"]
        L1 = result.one_realization_size[bc]["bulk"]
        if fit is None:
            print(f"{bc:8s}: no variance decay could be fitted")
            continue
        verdict = "it does not fall" if L1 is None else f"one cell suffices from L ≈ {L1:.1f} d"
        print(f"{bc:8s}: variance ∝ L^{fit.exponent:.2f} (± {fit.exponent_stderr:.2f}); {verdict}")
    e = result.ergodicity["periodic"]["bulk"]
    print(
        f"ergodicity: one cell of size {e['large_size']:g}: κ = {e['large_value'] / E_m:.5f} E_m; "
        f"mean of {e['small_count']} cells of size {e['small_size']:g}: "
        f"{e['small_mean'] / E_m:.5f} E_m"
    )

# The last line makes ergodicity visible: a single large cell and many small ones of the same
# total volume sample the same amount of material. They agree for PBC up to the scatter, but the
# small cells are biased (for KUBC and SUBC much more than for PBC), which is why enlarging the
# cell is better than averaging more small ones.
#
# ## Files and the recommendation
#
# The study writes `sve.json` (everything), one CSV per size and two plots: the mean with
# error bars against size, and the variance against size on log–log axes with the fitted slope.
# We recommend a periodic cell from the fit, and the number of realizations at the largest size
# studied.

# +
out = Path(args.out) / "sve_study"
write_sve_results(comm, out, result)
L_rec = result.one_realization_size["periodic"]["bulk"]
n_rec = result.realizations_needed["periodic"]["bulk"][-1]
if comm.rank == 0:
    print(f"wrote {out}")
    if L_rec is not None:
        print(f"recommended: one periodic cell of edge {L_rec:.1f} d for 1 % on κ,")
    print(f"or {n_rec} periodic cells of edge {settings.sizes[-1]:g} d")
# -

# The number checked by the test suite: the mean periodic bulk modulus at the largest size over
# the matrix Young's modulus.

if comm.rank == 0:
    print(f"RESULT {result.statistics['periodic']['bulk'][-1].mean / E_m:.15e}")
