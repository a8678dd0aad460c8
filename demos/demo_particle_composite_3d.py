# # Apparent stiffness of a random particle composite in 3D
#
# Glass spheres (E = 70 GPa, ν = 0.2) at volume fraction 0.2 in epoxy (E = 3 GPa, ν = 0.35),
# placed at random in a periodic cube. A random microstructure has no exact periodic cell: a
# finite cube is a *statistical volume element* (SVE), and its stiffness is an apparent one
# that depends on the boundary condition and on the realization. This demo
#
# - builds a random cell with {py:func}`fe2x.geometry.random_cell` (the same seed gives the
#   same cell on any number of ranks),
# - computes its apparent stiffness under periodic, kinematic (KUBC) and static (SUBC)
#   boundary conditions, and
# - checks the ordering KUBC ≥ PBC ≥ SUBC of the bulk modulus, and compares with the
#   Hashin–Shtrikman bounds.
#
# The mesh is kept coarse so that the demo runs in seconds; `--coarse` (or
# `FE2X_DEMO_COARSE=1`) makes it coarser still. The command-line equivalent is
# `fe2x homogenize demos/particle_composite_3d.toml`.

# +
import argparse
import os

from mpi4py import MPI

import numpy as np

from fe2x.geometry import random_cell
from fe2x.materials import IsotropicElastic, isotropic_projection
from fe2x.micro.homogenization import homogenize

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse mesh (for tests)")
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
# -

# ## The random cell
#
# Six equal spheres are placed by random sequential addition: centres are drawn one after
# another and rejected when a sphere would come closer than `min_gap` to one already placed
# (periodically: the distance is measured to the nearest periodic image). Spheres that cross a
# face of the cube are completed by their translates on the opposite face, so the cell tiles
# space. With `number` given, the radius follows exactly from the volume fraction.

# +
cell = random_cell(
    comm,
    3,
    [1.0, 1.0, 1.0],
    volume_fraction=0.2,
    mesh_size=0.3 if coarse else 0.12,
    seed=1,
    min_gap=0.05,
    number=6,
    geometry_order=2,
)
materials = {
    "matrix": IsotropicElastic(3.0e9, 0.35, name="epoxy"),
    "inclusion": IsotropicElastic(70.0e9, 0.2, name="glass"),
}
# -

# ## Apparent stiffness under three boundary conditions
#
# With u = E·(y − y_c) + w, the fluctuation w is periodic (PBC), zero on the boundary (KUBC)
# or only constrained to have zero mean strain (SUBC, which gives uniform tractions Σ·n). Each
# satisfies the Hill–Mandel condition Σ : E = ⟨σ : ε⟩; fe2x reports its residual per load case.
# The six unit strains are in Mandel order 11, 22, 33, 23, 13, 12 with √2 on the shears.
# The default solver picks MUMPS LU for cells this small and CG + GAMG above 60k dofs.

# +
result = homogenize(cell, materials, bcs=("kubc", "periodic", "subc"), degree=2)
E_m = materials["matrix"].E
if comm.rank == 0:
    print(f"{result.rve.n_dofs} dofs, volume fractions {result.rve.volume_fractions}")
    for bc, response in result.responses.items():
        print(f"\nC_eff / E_matrix ({bc}), Mandel 11 22 33 23 13 12:")
        print(np.array2string(response.C_eff / E_m, precision=3, suppress_small=True))
        print(f"  Hill–Mandel residual {response.hill_mandel_residual.max():.1e}")
# -

# ## The ordering KUBC ≥ PBC ≥ SUBC
#
# KUBC restricts w to a subspace of the periodic fluctuations, which in turn are a subspace of
# those SUBC allows. The energy minimum over a smaller space is higher, so for every strain E,
# E : C_KUBC : E ≥ E : C_PBC : E ≥ E : C_SUBC : E; in particular for the bulk modulus
# K = (1/9) Σ_{i,j≤3} C_iijj (a hydrostatic E). As the cell grows the three converge to the
# effective stiffness; here, with six spheres, the spread is still large. The bulk moduli are
# compared with the 3D Hashin–Shtrikman bounds, which hold for isotropic composites (the cell
# is only nearly isotropic): SUBC's apparent bulk modulus can fall below the lower bound.

# +
bulk = {bc: isotropic_projection(C, 3)[0] for bc, C in result.C_eff.items()}
hs_lower, hs_upper = result.bounds["hashin_shtrikman"]["bulk"]
ordered = bulk["kubc"] >= bulk["periodic"] >= bulk["subc"]
if comm.rank == 0:
    print(f"\nbulk modulus [GPa]: HS lower {hs_lower / 1e9:.3f}, upper {hs_upper / 1e9:.3f}")
    for bc, K in bulk.items():
        print(f"  {bc:9s} {K / 1e9:.3f}")
    print(f"KUBC >= PBC >= SUBC: {ordered}")
    K, μ = isotropic_projection(result.C_eff["periodic"], 3)
    m = np.r_[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    J = np.outer(m, m) / 3.0
    C_iso = 3.0 * K * J + 2.0 * μ * (np.eye(6) - J)
    C = result.C_eff["periodic"]
    anisotropy = np.linalg.norm(C - C_iso) / np.linalg.norm(C)
    print(f"distance of the periodic C_eff from isotropy: {anisotropy:.1%}")
if not ordered:
    raise RuntimeError(f"bulk moduli violate KUBC >= PBC >= SUBC: {bulk}")
# -

# The number the demo tests compare between serial and parallel runs: the periodic bulk
# modulus over the matrix Young's modulus.

if comm.rank == 0:
    print(f"RESULT {bulk['periodic'] / E_m:.15e}")
