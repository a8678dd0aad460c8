# # Transverse stiffness of a glass/epoxy fibre composite
#
# This demo homogenizes the transverse plane of a unidirectional fibre composite: glass fibres
# (E = 70 GPa, ν = 0.2) in an epoxy matrix (E = 3 GPa, ν = 0.35), fibre volume fraction 0.5.
# Perpendicular to the fibres the composite is in plane strain, so a 2D cell suffices. It shows
#
# - how to build a periodic cell with {py:func}`fe2x.geometry.inclusion_cell`,
# - the three boundary conditions fe2x offers and what the Hill–Mandel residual checks,
# - how the effective stiffness compares with the Voigt, Reuss and Hashin–Shtrikman bounds.
#
# It uses the Python API; the same cell is described for the command line by
# `demos/fibre_composite_2d.toml` (`fe2x homogenize demos/fibre_composite_2d.toml`).
#
# Run it serially or in parallel; `--coarse` (or `FE2X_DEMO_COARSE=1`) uses a coarser mesh,
# `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the figure goes (default `results/demos`):
#
# ```sh
# python demos/demo_fibre_composite_2d.py
# mpiexec -n 2 python demos/demo_fibre_composite_2d.py --coarse
# ```

# +
import argparse
import os
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.geometry import inclusion_cell
from fe2x.materials import IsotropicElastic, isotropic_projection
from fe2x.micro.homogenization import homogenize

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse mesh (for tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
# -

# ## The microstructure
#
# The simplest periodic fibre arrangement is the square array: one fibre in the middle of a
# unit square. Its periodic continuation is the whole composite. A square array is not
# transversely isotropic (its stiffness has square symmetry: C₁₁₁₁ = C₂₂₂₂, but the shear
# modulus C₁₂₁₂ differs from (C₁₁₁₁ − C₁₁₂₂)/2), which we will see below.
#
# gmsh meshes the cell on rank 0 with matching node positions on opposite faces, and with
# `geometry_order=2` the element edges along the fibre follow the circle. The mesh is then
# distributed over all ranks.

# +
volume_fraction = 0.5
mesh_size = 0.1 if coarse else 0.04
cell = inclusion_cell(comm, 2, [1.0, 1.0], volume_fraction, mesh_size, geometry_order=2)
materials = {
    "matrix": IsotropicElastic(3.0e9, 0.35, name="epoxy"),
    "inclusion": IsotropicElastic(70.0e9, 0.2, name="glass"),
}
# -

# ## Boundary conditions and the Hill–Mandel condition
#
# The displacement in the cell is split into an affine part and a fluctuation,
# u(y) = E·(y − y_c) + w(y), with E the macroscopic strain. For every unit strain E = e_k the
# cell is solved once, and the volume average of the stress gives one column of the effective
# stiffness, C_eff[:, k] = ⟨σ(u_k)⟩. The boundary condition on w decides which "apparent"
# stiffness one gets:
#
# - **periodic (PBC)**: w is periodic and the tractions anti-periodic. This is the exact
#   condition for a periodic medium, and the best estimate for a random one.
# - **KUBC** (kinematic uniform): w = 0 on the boundary. The cell is over-constrained, so
#   its stiffness is too high.
# - **SUBC** (static uniform, or minimal kinematic): only ⟨ε(w)⟩ = 0 is imposed, which gives a
#   uniform traction σ·n = Σ·n on the boundary. Too soft.
#
# For the same cell KUBC ≥ PBC ≥ SUBC. All three satisfy the Hill–Mandel condition
# Σ : E = ⟨σ : ε⟩: the macroscopic work equals the average microscopic work. fe2x checks it
# after each solve; the residual |Σ:E − ⟨σ:ε⟩| / |Σ:E| should be at round-off level.
#
# {py:func}`fe2x.micro.homogenization.homogenize` assembles the stiffness once and solves all
# boundary conditions, each with one factorization for the three unit strains (Mandel order
# 11, 22, 12, with √2 on the shear).

# +
result = homogenize(cell, materials, bcs=("periodic", "kubc", "subc"), degree=2)
E_m = materials["matrix"].E
if comm.rank == 0:
    print(f"{result.rve.n_dofs} dofs, volume fractions {result.rve.volume_fractions}")
    for bc, response in result.responses.items():
        print(f"\nC_eff / E_matrix ({bc}), Mandel 11 22 12:")
        print(np.array2string(response.C_eff / E_m, precision=4, suppress_small=True))
        print(f"  Hill–Mandel residual {response.hill_mandel_residual.max():.1e}")
# -

# ## Comparison with bounds
#
# The Voigt bound (uniform strain, ⟨C⟩) and the Reuss bound (uniform stress, ⟨C⁻¹⟩⁻¹) hold for
# any microstructure. The Hashin–Shtrikman bounds are much tighter, but they bound the moduli of
# an *isotropic* (here: transversely isotropic) composite. We compare them with the isotropic
# projection of C_eff: the plane-strain bulk modulus κ = (C₁₁ + C₂₂ + 2C₁₂)/4 and a mean
# shear modulus. Since the glass is stiffer in both bulk and shear, the lower HS bound is the
# exact modulus of the Hashin composite-cylinder assemblage, and a fibre array lies close to it.
# Only the periodic result is an effective property of the square array; the KUBC and SUBC
# values are apparent properties of one small cell and may leave the HS interval (SUBC does
# here). The Voigt and Reuss bounds bound the diagonal entries, not the off-diagonal ones.

# +
hs = result.bounds["hashin_shtrikman"]
moduli = {bc: isotropic_projection(C, 2) for bc, C in result.C_eff.items()}
if comm.rank == 0:
    print("\n             κ [GPa]   μ [GPa]")
    print(f"HS lower   {hs['bulk'][0] / 1e9:8.3f}  {hs['shear'][0] / 1e9:8.3f}")
    for bc, (bulk, shear) in moduli.items():
        print(f"{bc:9s}  {bulk / 1e9:8.3f}  {shear / 1e9:8.3f}")
    print(f"HS upper   {hs['bulk'][1] / 1e9:8.3f}  {hs['shear'][1] / 1e9:8.3f}")
    bulk_pbc = moduli["periodic"][0]
    print(f"PBC κ is {100 * (bulk_pbc / hs['bulk'][0] - 1):.2f} % above the HS lower bound")
# -

# ## A figure
#
# The entries C₁₁₁₁, C₁₁₂₂ and C₁₂₁₂ (Mandel C₃₃ = 2 C₁₂₁₂) for each boundary condition,
# with the Voigt and Reuss values; and κ, μ with the HS intervals.

# +
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = {"C1111": (0, 0, 1.0), "C1122": (0, 1, 1.0), "C1212": (2, 2, 0.5)}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(entries))
    for i, (bc, C) in enumerate(result.C_eff.items()):
        values = [C[r, c] * s / 1e9 for r, c, s in entries.values()]
        ax1.bar(x + (i - 1) * 0.25, values, width=0.25, label=bc)
    for name, style in (("voigt", "k--"), ("reuss", "k:")):
        C = np.asarray(result.bounds[name])
        values = [C[r, c] * s / 1e9 for r, c, s in entries.values()]
        for xi, v in zip(x, values, strict=True):
            ax1.plot([xi - 0.4, xi + 0.4], [v, v], style, label=name if xi == 0 else None)
    ax1.set_xticks(x, list(entries))
    ax1.set_ylabel("GPa")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("C_eff entries")
    for j, key in enumerate(("bulk", "shear")):
        lo, hi = hs[key]
        ax2.fill_between([j - 0.4, j + 0.4], lo / 1e9, hi / 1e9, color="0.85")
        for i, (bc, values) in enumerate(moduli.items()):
            ax2.plot(
                j + (i - 1) * 0.2, values[j] / 1e9, "o", color=f"C{i}", label=bc if j else None
            )
    ax2.set_xticks([0, 1], ["κ (plane strain)", "μ"])
    ax2.set_ylabel("GPa")
    ax2.legend()
    ax2.set_title("isotropic projection vs HS bounds (grey)")
    fig.tight_layout()
    fig.savefig(out / "fibre_composite_2d.png", dpi=120)
    print(f"wrote {out / 'fibre_composite_2d.png'}")
# -

# The number the demo tests compare between serial and parallel runs: the periodic C₁₁₁₁ over
# the matrix Young's modulus.

if comm.rank == 0:
    print(f"RESULT {result.C_eff['periodic'][0, 0] / E_m:.15e}")
