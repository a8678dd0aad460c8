# # Copper polycrystals: elastic bounds, crystal plasticity in tension, and FE²
#
# A metal part is a polycrystal: grains of one crystal, each in its own orientation, each
# elastically anisotropic and slipping on its own crystallographic planes. This demo builds
# periodic copper polycrystals and follows them from elasticity into plastic flow:
#
# - a 3D periodic Voronoi polycrystal on a voxel grid
#   ({py:func}`fe2x.geometry.polycrystal.polycrystal_cell`), random grain orientations
#   (uniform on SO(3)), and copper's cubic elasticity rotated into every grain;
# - its effective elastic stiffness ({py:func}`fe2x.micro.homogenization.homogenize`) against
#   the Voigt, Reuss and Hashin–Shtrikman bounds of cubic polycrystals;
# - the same cell in uniaxial tension with rate-dependent crystal plasticity
#   ({py:class}`fe2x.materials.crystal.CrystalPlasticity`: 12 FCC {111}⟨110⟩ systems,
#   DAMASK's phenopowerlaw hardening), its stress–strain curve next to the Sachs and Taylor
#   estimates, its slip per grain, and the grain structure;
# - a small FE² run, `demos/polycrystal_fe2.toml`: a copper strip pulled from a clamped end,
#   whose every quadrature point is a (2D, columnar-grain) polycrystal RVE.
#
# The defaults run in a few minutes on 2 ranks; `--coarse` (or `FE2X_DEMO_COARSE=1`) is
# coarser still (for the tests), `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the results go
# (default `results/demos`):
#
# ```sh
# mpiexec -n 2 python demos/demo_polycrystal.py
# python demos/demo_polycrystal.py --coarse
# ```

# +
import argparse
import os
import time
from pathlib import Path

from mpi4py import MPI

import dolfinx
import numpy as np

from fe2x.config import read_run_config, with_resolution
from fe2x.geometry import polycrystal_cell
from fe2x.geometry.tessellation import grain_labels, random_seeds
from fe2x.io.fields import write_micro_fields
from fe2x.jobs import run_fe2
from fe2x.jobs.cells import write_cell_data
from fe2x.materials import isotropic_projection
from fe2x.materials.bounds import cubic_polycrystal_bounds
from fe2x.materials.crystal import CrystalPlasticity
from fe2x.materials.orientations import random_orientations
from fe2x.micro.homogenization import homogenize
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarser cells, fewer steps (tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
out = Path(args.out) / "polycrystal"
t_start = time.perf_counter()
# -

# ## The polycrystal
#
# `n_grains` seeds are drawn uniformly in the unit cube from `seed`, and every voxel belongs to
# the seed nearest to its centre in the periodic (minimum-image) distance: a periodic Voronoi
# tessellation, sampled on `resolution`³ voxels, one trilinear hexahedron per voxel. The grain
# boundaries are stair-stepped; their volumes converge to the exact Voronoi cells' at first
# order as the grid is refined. Each cell carries its grain id and its grain's orientation R
# (crystal → sample) in `cell_data`, from which the law reads its per-point parameter.
#
# Copper: C11, C12, C44 = 168.4, 121.4, 75.4 GPa, an anisotropy 2 C44 / (C11 − C12) = 3.2; slip
# starts at ξ₀ = 31 MPa resolved shear stress and hardens towards ξ_∞ = 63 MPa (h₀ = 75 MPa,
# a = 2.25, latent hardening 1.4), with γ̇ = γ̇₀ |τ/ξ|²⁰ sign τ at γ̇₀ = 10⁻³/s.

# +
n_grains, resolution, steps = (12, 6, 3) if coarse else (30, 10, 8)
seed = 7
orientations = random_orientations(n_grains, np.random.default_rng([seed, 1]))
cell = polycrystal_cell(
    comm, 3, [1.0] * 3, n_grains, resolution, seed, grain_data={"orientation": orientations}
)
copper = CrystalPlasticity(
    168.4e9, 121.4e9, 75.4e9, xi0=31.0e6, n=20.0, gamma_dot_0=1e-3, h0=75.0e6, xi_inf=63.0e6, a=2.25
)
grain_files = write_cell_data(cell, out)  # fields/cell_data.bp, grains.csv, pole_figures.png
if comm.rank == 0:
    print(f"{n_grains} grains on {resolution}³ voxels; wrote {', '.join(map(str, grain_files))}")
# -

# ## Elastic stiffness and its bounds
#
# The linear RVE takes each phase's stiffness from its law: here the cubic C rotated into every
# cell's orientation, a cell-wise constant field. Since copper's bulk modulus K =
# (C11 + 2 C12)/3 is the same in every orientation, a uniform hydrostatic strain is an exact
# solution and the aggregate's K is exactly the crystal's. Its shear modulus lies between
# the Reuss (uniform stress) and Voigt (uniform strain) averages and, for an untextured
# aggregate, between the tighter Hashin–Shtrikman bounds of cubic polycrystals (Hashin &
# Shtrikman 1962), 45.96–49.45 GPa for copper. A cell of a few dozen grains is not isotropic,
# so we compare the isotropic projection of C_eff; the job also reports the Voigt and Reuss
# bounds of this very cell, ⟨C⟩ and ⟨C⁻¹⟩⁻¹, which bracket C_eff itself.

# +
elastic = homogenize(cell, {"grains": copper}, bcs=("periodic",), degree=2)
C_eff = elastic.C_eff["periodic"]
K, mu = isotropic_projection(C_eff, 3)
bounds = cubic_polycrystal_bounds(168.4e9, 121.4e9, 75.4e9)
E_x = 1.0 / np.linalg.inv(C_eff)[0, 0]
if comm.rank == 0:
    print(f"\nK = {K / 1e9:.3f} GPa (exact {bounds['bulk'][0] / 1e9:.3f})")
    print(
        f"μ = {mu / 1e9:.2f} GPa: Reuss {bounds['reuss'][1] / 1e9:.2f} < HS "
        f"{bounds['shear'][0] / 1e9:.2f} … {bounds['shear'][1] / 1e9:.2f} < Voigt "
        f"{bounds['voigt'][1] / 1e9:.2f}"
    )
    print(f"Young's modulus along x: {E_x / 1e9:.1f} GPa")
# -

# The elastic solve uses Q2 elements (27 nodes per voxel): trilinear Q1 ones are too stiff at
# grain boundaries on grids this coarse, by as much as the gap to the upper HS bound (one set of
# 30 grains: μ = 49.8 GPa on 12³ voxels with Q1, 48.9 GPa on 8³ voxels with Q2).
#
# ## Uniaxial tension with crystal plasticity
#
# The nonlinear RVE is driven along E₁₁ at the reference rate, every other stress component
# held at zero (uniaxial stress, {py:func}`fe2x.micro.path.drive`). In each grain the
# resolved shear stresses τ_α = σ : P_α drive slip γ̇_α; the local problem of every quadrature
# point is solved by backward Euler and Newton, and its consistent tangent feeds the RVE's
# Newton iteration and the homogenized tangent.
#
# Two classical estimates bracket the flow stress of an untextured FCC aggregate without
# hardening: Sachs (every grain in the same uniaxial stress, slipping on its most stressed
# system): Σ = 2.24 ξ₀; Taylor (every grain in the same strain, the least slip that produces
# it): Σ = 3.06 ξ₀. The real aggregate lies between (`tests/test_polycrystal.py` checks it
# for a non-hardening one); with hardening the flow stress rises beyond as ξ grows.

# +
rve = NonlinearRVE(cell, {"grains": copper}, degree=1)
strain = 0.003 if coarse else 0.01
path = LoadPath(
    np.array([0.0, strain / copper.gamma_dot_0]),
    np.array([[0.0] * 6, [strain] + [0.0] * 5]),
    np.array([False] + [True] * 5),
    steps,
)
t0 = time.perf_counter()
tension = drive(rve, path, copper.xi0)
assert tension.completed, tension.message
E11 = np.array([0.0] + [s.E[0] for s in tension.steps])
S11 = np.array([0.0] + [s.Sigma[0] for s in tension.steps])
slip = rve.diagnostics()
if comm.rank == 0:
    print(f"\n{rve.n_dofs} dofs, {len(tension.steps)} steps in {time.perf_counter() - t0:.1f} s")
    print(f"Σ11 / ξ₀ at E11 = {100 * strain:.1f} %: {S11[-1] / copper.xi0:.3f}")
    print(
        f"mean accumulated slip {slip['accumulated_slip']:.4f}, mean slip resistance "
        f"{slip['mean_slip_resistance'] / 1e6:.2f} MPa"
    )
# -

# ## Fields and figures
#
# The micro fields of the last step (per cell: grain id, Bunge angles, accumulated slip
# Σ_α ∫|γ̇_α| dt, mean slip resistance ⟨ξ_α⟩ and von Mises stress) go to
# `polycrystal/micro_tension.bp` for ParaView. For the figure we gather the cells of the middle
# layer z ≈ ½ to rank 0: the grains, and where they slipped most.

# +
fields = rve.micro_fields()
write_micro_fields(fields, out / "micro_tension.bp", float(tension.steps[-1].t))
mesh = cell.mesh
n_owned = mesh.topology.index_map(3).size_local
midpoints = dolfinx.mesh.compute_midpoints(mesh, 3, np.arange(n_owned, dtype=np.int32))
dofs = fields["grain"].function_space.dofmap.list[:n_owned, 0]
local = np.column_stack(
    [midpoints, *(fields[k].x.array[dofs] for k in ("grain", "accumulated_slip"))]
)
layers = comm.gather(local, root=0)
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = np.vstack(layers)
    middle = cells[np.abs(cells[:, 2] - (resolution // 2 + 0.5) / resolution) < 0.25 / resolution]
    ij = np.floor(middle[:, :2] * resolution).astype(int)
    grain_map = np.full((resolution, resolution), np.nan)
    slip_map = np.full((resolution, resolution), np.nan)
    grain_map[ij[:, 1], ij[:, 0]] = middle[:, 3]
    slip_map[ij[:, 1], ij[:, 0]] = middle[:, 4]
    labels = grain_labels(
        (resolution,) * 3, np.ones(3), random_seeds(3, np.ones(3), n_grains, seed)
    )
    assert np.array_equal(grain_map, labels[:, :, resolution // 2].T)  # the same grains

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot(100 * E11, S11 / 1e6, "o-", ms=3, label="polycrystal RVE")
    for factor, name in ((2.24, "Sachs"), (3.06, "Taylor")):
        axes[0].axhline(factor * copper.xi0 / 1e6, ls=":", color="0.5")
        axes[0].text(0.0, factor * copper.xi0 / 1e6, f" {name} {factor} ξ₀", va="bottom")
    axes[0].set_ylim(0.0, 1.15 * max(S11.max(), 3.06 * copper.xi0) / 1e6)
    axes[0].set_xlabel("E₁₁ [%]")
    axes[0].set_ylabel("Σ₁₁ [MPa]")
    axes[0].set_title("uniaxial stress at γ̇₀")
    extent = (0, 1, 0, 1)
    axes[1].imshow(grain_map, origin="lower", cmap="tab20", extent=extent)
    axes[1].set_title("grains, layer z = ½")
    image = axes[2].imshow(slip_map, origin="lower", cmap="viridis", extent=extent)
    axes[2].set_title("accumulated slip, layer z = ½")
    fig.colorbar(image, ax=axes[2])
    for ax in axes[1:]:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(out / "tension.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'tension.png'}")
# -

# The slip concentrates in grains well oriented for slip (a high Schmid factor of their most
# stressed system along x) and along grain boundaries where a soft grain meets a hard one:
# the strain is not uniform (Taylor) and the stress is not either (Sachs).
#
# ## FE² with polycrystal RVEs
#
# `demos/polycrystal_fe2.toml` describes a copper strip, 40 mm × 10 mm, plane strain, clamped on
# its left edge (the grip holds it in both directions, so the strip cannot contract laterally
# there) and pulled by 0.3 % on its right edge at the reference rate (`[loading] end_time`
# gives the time at load factor 1, so the crystal law sees real time increments). Every macro
# quadrature point is a 2D periodic polycrystal of 8 columnar grains on 8 × 8 voxels with its
# own slip history; the points are dealt out to the ranks by cost, and their states follow
# them when the balance changes. The crystal law has no elastic range (every τ ≠ 0 slips, if
# negligibly), so no RVE is answered by the elastic shortcut.
#
# The job writes `history.csv` (load factor, reaction forces), the macro fields (with the RVE
# averages of accumulated slip and slip resistance per cell), `copper_grains.csv` and
# `copper_pole_figures.png`, and the micro fields of the RVE next to the grip at the last step.

# +
config = read_run_config(Path(__file__).resolve().parent / "polycrystal_fe2.toml")
macro_size, fe2_steps = (20.0e-3, 2) if coarse else (5.0e-3, 4)
config = with_resolution(config, macro_size=macro_size, steps=fe2_steps)
t0 = time.perf_counter()
fe2 = run_fe2(config, out / "fe2", comm)
history = np.genfromtxt(out / "fe2" / "history.csv", delimiter=",", names=True)
force = np.atleast_1d(history["F_right_x"])
if comm.rank == 0:
    print(f"\nFE²: {fe2.completed}, {len(force)} steps in {time.perf_counter() - t0:.1f} s")
    print(
        "reaction force on the right edge per unit thickness [N/m]: "
        + ", ".join(f"{f:.4g}" for f in force)
    )
    print(f"total {time.perf_counter() - t_start:.1f} s")
# -

# The number the demo tests compare between serial and parallel runs: the reaction force at
# the last FE² step over (ξ₀ × the strip's height).

if comm.rank == 0:
    print(f"RESULT {force[-1] / (copper.xi0 * 10.0e-3):.15e}")
