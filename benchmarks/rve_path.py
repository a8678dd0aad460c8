"""Benchmark the nonlinear RVE along a uniaxial-stress path: Newton, tangent and increment cost.

A fibre cell (2D, volume fraction 0.5, P2, ~20k dofs) and a small sphere cell (3D) with a J2
matrix (E = 3 GPa, ν = 0.35, σ_y = 30 MPa, linear hardening H = 300 MPa) and elastic glass
inclusions (E = 70 GPa, ν = 0.2), periodic, driven by ``fe2x.micro.path.drive`` to E11 = 2 %
with the other stresses zero, once per linear solver ("lu", "shared_elastic"). In the same run
the bare PETSc operations of the same size are timed (assemble K, PtAP, MUMPS factorization
and numeric refactorization, one solve) so that the Python layer's overhead shows as a ratio.
Run serially or under ``mpiexec``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import time
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx
import dolfinx.fem.petsc
import numpy as np

from fe2x.geometry import inclusion_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.constraints import PERIODIC
from fe2x.micro.linear import LinearRVE
from fe2x.micro.linear_solvers import LINEAR_SOLVERS
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive
from fe2x.micro.solver import create_ksp

MATRIX = J2Plasticity(E=3.0e9, nu=0.35, sigma_y=30.0e6, H=300.0e6, name="epoxy")
FIBRE = IsotropicElastic(70.0e9, 0.2, name="glass")
SIGMA_Y = 30.0e6
STRAIN = 0.02
#: (dim, volume fraction, mesh size, degree, steps) per case; "quick" for the smoke run.
CASES = {
    "full": [(2, 0.5, 0.022, 2, 10), (3, 0.2, 0.1, 2, 4)],
    "quick": [(2, 0.5, 0.08, 2, 3), (3, 0.2, 0.4, 1, 2)],
}


def wall(comm: MPI.Comm, t: float) -> float:
    return comm.allreduce(t, op=MPI.MAX)


class TimedModel:
    """Wraps an RVE for :func:`drive`, recording the wall time and iterations of every solve."""

    def __init__(self, rve: NonlinearRVE) -> None:
        self.rve = rve
        self.records: list[tuple[float, int, float]] = []

    def solve(self, E: np.ndarray):
        tangent = self.rve.timings.get("tangent", 0.0)
        self.rve.comm.barrier()
        t0 = time.perf_counter()
        result = self.rve.solve(E)
        elapsed = time.perf_counter() - t0
        self.records.append(
            (elapsed, result.iterations, self.rve.timings.get("tangent", 0.0) - tangent)
        )
        return result

    def commit(self) -> None:
        self.rve.commit()

    def get_state(self):
        return self.rve.get_state()

    def set_state(self, state) -> None:
        self.rve.set_state(state)


def uniaxial_path(dim: int, steps: int) -> LoadPath:
    n = 3 if dim == 2 else 6
    stress_controlled = np.ones(n, dtype=bool)
    stress_controlled[0] = False
    values = np.zeros((2, n))
    values[1, 0] = STRAIN
    return LoadPath(np.array([0.0, 1.0]), values, stress_controlled, steps)


def bare_linear_algebra(comm: MPI.Comm, cell, degree: int, repeats: int = 3) -> dict[str, float]:
    """Seconds (min over repeats, max over ranks) of the bare PETSc operations of one RVE."""
    dim = cell.mesh.topology.dim
    linear = LinearRVE(
        cell, {"matrix": MATRIX_STIFFNESS[dim], "inclusion": FIBRE.stiffness(dim)}, degree=degree
    )
    K = linear.K
    P = PERIODIC.prolongation(linear.V, cell.origin, cell.lengths).P
    times: dict[str, list[float]] = {k: [] for k in ("assemble", "ptap", "factor", "refactor")}
    times["solve"] = []
    K_red = K.PtAP(P)
    for _ in range(repeats):
        comm.barrier()
        t0 = time.perf_counter()
        K.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(K, linear._a)
        K.assemble()
        times["assemble"].append(time.perf_counter() - t0)
        comm.barrier()
        t0 = time.perf_counter()
        K.PtAP(P, result=K_red)
        times["ptap"].append(time.perf_counter() - t0)
        comm.barrier()
        t0 = time.perf_counter()
        ksp = create_ksp(K_red, "direct", "bench_bare_")
        times["factor"].append(time.perf_counter() - t0)
        K.PtAP(P, result=K_red)  # new state, same pattern: numeric refactorization only
        comm.barrier()
        t0 = time.perf_counter()
        ksp.getPC().setUp()
        times["refactor"].append(time.perf_counter() - t0)
        b, x = K_red.createVecLeft(), K_red.createVecRight()
        b.setRandom()
        comm.barrier()
        t0 = time.perf_counter()
        ksp.solve(b, x)
        times["solve"].append(time.perf_counter() - t0)
        ksp.destroy()
    return {k: wall(comm, min(v)) for k, v in times.items()}


MATRIX_STIFFNESS = {
    2: IsotropicElastic(MATRIX.E, MATRIX.nu).stiffness(2),
    3: IsotropicElastic(MATRIX.E, MATRIX.nu).stiffness(3),
}


def run_path(comm: MPI.Comm, cell, degree: int, steps: int, linear_solver: str) -> dict:
    """Drive one RVE along the uniaxial path; per-operation timings (max over ranks)."""
    dim = cell.mesh.topology.dim
    comm.barrier()
    t0 = time.perf_counter()
    rve = NonlinearRVE(
        cell,
        {"matrix": MATRIX, "inclusion": FIBRE},
        bc="periodic",
        degree=degree,
        linear_solver=linear_solver,
        petsc_options_prefix=f"bench_rve_{linear_solver}_",
    )
    setup = wall(comm, time.perf_counter() - t0)
    model = TimedModel(rve)
    comm.barrier()
    t0 = time.perf_counter()
    path = drive(model, uniaxial_path(dim, steps), stress_scale=SIGMA_Y)
    total = wall(comm, time.perf_counter() - t0)
    records = np.array(model.records)
    # plastic increments: from the first solve with more than one Newton iteration on
    plastic = records[records[:, 1] > 1] if np.any(records[:, 1] > 1) else records
    iterations = int(records[:, 1].sum())
    newton = wall(comm, rve.problem.newton_seconds)
    timings = {k: wall(comm, v) for k, v in rve.timings.items()}
    applications = rve.elastic_factorization.applications if rve.elastic_factorization else 0
    return {
        "linear_solver": linear_solver,
        "n_dofs": rve.n_dofs,
        "n_reduced": rve.n_reduced,
        "completed": path.completed,
        "steps": len(path.steps),
        "solves": len(records),
        "newton_iterations": iterations,
        "setup": setup,
        "elastic_factorization": timings.get("elastic_factorization", 0.0),
        "total": total,
        "per_iteration": newton / max(iterations, 1),
        "per_iteration_residual": timings.get("residual", 0.0) / max(iterations, 1),
        "per_iteration_jacobian": timings.get("jacobian", 0.0) / max(iterations, 1),
        "per_tangent": timings.get("tangent", 0.0) / len(records),
        "per_increment": wall(comm, float(np.mean(records[:, 0]))),
        "per_plastic_increment": wall(comm, float(np.mean(plastic[:, 0]))),
        "iterations_per_plastic_increment": float(np.mean(plastic[:, 1])),
        "krylov_per_newton": applications / max(iterations + len(records) * rve.n_strain, 1),
        "final_E": path.steps[-1].E.tolist() if path.steps else [],
        "final_Sigma": path.steps[-1].Sigma.tolist() if path.steps else [],
    }


def bare_increment(bare: dict[str, float], iterations: float, n_strain: int) -> float:
    """Linear algebra a plastic increment needs with exact LU: per Newton iteration assemble,
    PtAP, numeric refactorization, one solve; the tangent one more of each and n solves."""
    per_jacobian = bare["assemble"] + bare["ptap"] + bare["refactor"]
    return (iterations + 1) * per_jacobian + (iterations + n_strain) * bare["solve"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 30 s)")
    parser.add_argument("--dim", type=int, action="append", choices=(2, 3))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rve_path.json"))
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    dims = args.dim or [2, 3]
    cases = [c for c in CASES["quick" if args.quick else "full"] if c[0] in dims]
    record: dict = {
        "benchmark": "rve_path",
        "notation": "Mandel",
        "units": "SI (Pa), seconds",
        "ranks": comm.size,
        "host": platform.node(),
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "cases": [],
    }
    for dim, vf, mesh_size, degree, steps in cases:
        cell = inclusion_cell(comm, dim, [1.0] * dim, vf, mesh_size, geometry_order=min(degree, 2))
        # warm-up (JIT of this dimension and degree) on a small throwaway cell
        geometry_order = min(degree, 2)
        small = inclusion_cell(comm, dim, [1.0] * dim, vf, 0.4, geometry_order=geometry_order)
        NonlinearRVE(small, {"matrix": MATRIX, "inclusion": FIBRE}, degree=degree)
        LinearRVE(
            small, {"matrix": MATRIX_STIFFNESS[dim], "inclusion": FIBRE.stiffness(dim)}, degree
        )
        gc.collect()
        bare = bare_linear_algebra(comm, cell, degree)
        runs = []
        for linear_solver in LINEAR_SOLVERS:
            gc.collect()
            run = run_path(comm, cell, degree, steps, linear_solver)
            n_strain = 3 if dim == 2 else 6
            run["bare_increment"] = bare_increment(
                bare, run["iterations_per_plastic_increment"], n_strain
            )
            run["overhead_ratio"] = run["per_plastic_increment"] / run["bare_increment"]
            runs.append(run)
        record["cases"].append(
            {
                "dim": dim,
                "volume_fraction": vf,
                "mesh_size": mesh_size,
                "degree": degree,
                "steps": steps,
                "n_dofs": runs[0]["n_dofs"],
                "n_reduced": runs[0]["n_reduced"],
                "bare": bare,
                "runs": runs,
            }
        )
        gc.collect()
    if comm.rank == 0:
        print_table(record)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
        print(f"wrote {args.out}")


def print_table(record: dict) -> None:
    ms = 1e3
    for case in record["cases"]:
        bare = case["bare"]
        print(
            f"\n{case['dim']}D, {case['n_dofs']} dofs (P{case['degree']}), "
            f"{record['ranks']} rank(s); bare PETSc [ms]: "
            + ", ".join(f"{k} {v * ms:.1f}" for k, v in bare.items())
        )
        header = (
            f"{'solver':<15}{'steps':>6}{'solves':>7}{'its':>5}{'it/inc':>7}{'kry/it':>7}"
            f"{'ms/it':>8}{'(res':>7}{'jac)':>7}{'ms/tan':>8}{'ms/inc':>8}{'bare':>8}"
            f"{'ratio':>7}{'path s':>8}{'setup s':>8}"
        )
        print(header)
        for run in case["runs"]:
            print(
                f"{run['linear_solver']:<15}{run['steps']:>6}{run['solves']:>7}"
                f"{run['newton_iterations']:>5}{run['iterations_per_plastic_increment']:>7.1f}"
                f"{run['krylov_per_newton']:>7.1f}{run['per_iteration'] * ms:>8.1f}"
                f"{run['per_iteration_residual'] * ms:>7.1f}"
                f"{run['per_iteration_jacobian'] * ms:>7.1f}{run['per_tangent'] * ms:>8.1f}"
                f"{run['per_plastic_increment'] * ms:>8.1f}{run['bare_increment'] * ms:>8.1f}"
                f"{run['overhead_ratio']:>7.2f}{run['total']:>8.2f}{run['setup']:>8.2f}"
            )
        Sigma = [run["final_Sigma"][0] / 1e6 for run in case["runs"]]
        print("final Σ11 [MPa]: " + ", ".join(f"{s:.6f}" for s in Sigma))


if __name__ == "__main__":
    main()
