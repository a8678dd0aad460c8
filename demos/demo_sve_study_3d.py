# # A small 3D SVE study: particles in a matrix
#
# The 3D counterpart of `demo_sve_study.py`, kept small: glass spheres (vf 0.2) in epoxy, cells
# of edge 1.5 and 2 particle diameters, a few realizations each, linear elements. It prints the
# apparent bulk modulus per size and boundary condition with its scatter, checks the
# KUBC ≥ PBC ≥ SUBC bracket of every realization, and tells how many realizations the
# requested precision would need (Kanit et al., 2003). In 3D the variance is expected to decay
# like L⁻³; two sizes and a handful of realizations only show the trend.
#
# ```sh
# mpiexec -n 2 python demos/demo_sve_study_3d.py
# ```

# +
import argparse
import os

from mpi4py import MPI

from fe2x.materials import IsotropicElastic
from fe2x.sve import SVEStudy, run_sve_study

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="fewer realizations (for tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
E_m = 3.0e9
settings = SVEStudy(
    dim=3,
    sizes=(1.5, 2.0),
    realizations=2 if coarse else 4,
    volume_fraction=0.2,
    materials={"matrix": IsotropicElastic(E_m, 0.35), "inclusion": IsotropicElastic(70e9, 0.2)},
    min_gap=0.15,
    elements_per_diameter=3.0,
    degree=1,
    geometry_order=1,
    seed=7,
    precision=0.02,
)
result = run_sve_study(settings, comm)
# -

# ## Apparent bulk moduli and their bracket

# +
if comm.rank == 0:
    for bc in settings.bcs:
        for size, stats in zip(settings.sizes, result.statistics[bc]["bulk"], strict=True):
            print(
                f"{bc:8s} L = {size:3.1f} d: K = {stats.mean / 1e9:.4f} GPa "
                f"± {stats.std / 1e9:.4f} (n = {stats.n})"
            )
    for r in result.realizations:
        bulk = {bc: r.property(bc, "bulk") for bc in settings.bcs}
        assert bulk["kubc"] >= bulk["periodic"] >= bulk["subc"]
    needed = result.realizations_needed["periodic"]["bulk"]
    print(f"periodic realizations needed for 2 % precision, per size: {needed}")
    print(f"RESULT {result.statistics['periodic']['bulk'][-1].mean / E_m:.15e}")
# -
