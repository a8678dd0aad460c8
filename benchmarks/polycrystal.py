"""Benchmark one plastic increment of a 3D crystal-plasticity polycrystal RVE against the bare
linear algebra of that increment, and the law's share of it per quadrature point.

A periodic copper polycrystal (``polycrystal_cell``: 50 Voronoi grains on 21³ voxels, Q1
hexahedra, 31 944 dofs, 74 088 quadrature points; ``CrystalPlasticity`` with DAMASK's copper:
C11, C12, C44 = 168.4, 121.4, 75.4 GPa, ξ₀ = 31 MPa, ξ_∞ = 63 MPa, h₀ = 75 MPa, a = 2.25,
n = 20, γ̇₀ = 1e-3 /s, 12 FCC systems, random orientations) is driven by
``fe2x.micro.path.drive`` in uniaxial stress along x at the reference rate to E11 = 0.3 % in
``--steps`` steps (past the aggregate's yield at ~0.06 %), once per linear solver (``direct``:
MUMPS LU of every Newton Jacobian; ``shared_elastic``: CG preconditioned by one elastic LU).
Every RVE solve (one increment: a Newton solve and the consistent tangent) is timed; the
plastic increments are those after the first step. In the same run the bare PETSc operations
of the same size are timed (assemble K, PtAP, MUMPS factorization, numeric refactorization,
one solve) and combined into the linear algebra an increment with exact LU needs, as
``benchmarks/rve_path.py`` does, so that the cost of everything else (the law, the Python
layer) shows as a ratio. Every time is taken both as wall time and as the CPU time of the
process (BLAS on one thread): on a shared machine the CPU time is the fairer measure. The
constitutive update of the RVE (``QuadratureLaws.evaluate``) is timed apart: its µs per
quadrature point and Newton iteration compare with ``benchmarks/crystal_law.py`` (the law
alone on independent points).

Run (from the repository root; one run takes a few minutes on one core)::

    .venv/bin/python benchmarks/polycrystal.py
    .venv/bin/python benchmarks/polycrystal.py --quick            # 8³ voxels, < 1 min
    .venv/bin/python benchmarks/polycrystal.py --solver shared_elastic --out /tmp/p.json

Measured on 2026-12-02 (one rank, the two cores shared with other jobs; CPU time of the
process), 11 plastic increments each:

==============  =============  ===========  ===========  =====  ====================
solver          Newton its/inc s/increment  bare LU alg. ratio  law µs/point/it
==============  =============  ===========  ===========  =====  ====================
direct          3.6            29.3         20.2         1.45   25.5 (31 % of it)
shared_elastic  6.1            28.3         31.5         0.90   25.3 (49 % of it)
==============  =============  ===========  ===========  =====  ====================

Both end at the same Σ11 = 86.0493 MPa. The bare algebra is dominated by MUMPS: factorization
4.2 s, refactorization 4.1 s, a solve 0.06 s. Per voxel and load step this RVE costs about
3 ms of core time (8 quadrature points a voxel), some 20x AMITEX's FFT figure of 140 µs: the
sparse direct solves of an FE mesh, not the law (25 µs a point and iteration, against 13.7 µs
for the law alone in ``benchmarks/crystal_law.py``), are the cost.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import dolfinx  # noqa: E402
import dolfinx.fem.petsc  # noqa: E402
import numpy as np  # noqa: E402

from fe2x.geometry import polycrystal_cell  # noqa: E402
from fe2x.materials.crystal import CrystalPlasticity  # noqa: E402
from fe2x.materials.orientations import random_orientations  # noqa: E402
from fe2x.micro.constraints import PERIODIC  # noqa: E402
from fe2x.micro.homogenization import phase_stiffness  # noqa: E402
from fe2x.micro.linear import LinearRVE  # noqa: E402
from fe2x.micro.linear_solvers import LINEAR_SOLVERS  # noqa: E402
from fe2x.micro.nonlinear import NonlinearRVE  # noqa: E402
from fe2x.micro.path import LoadPath, drive  # noqa: E402
from fe2x.micro.solver import create_ksp  # noqa: E402

COPPER = CrystalPlasticity(
    168.4e9, 121.4e9, 75.4e9, xi0=31.0e6, n=20.0, gamma_dot_0=1e-3, h0=75.0e6, xi_inf=63.0e6, a=2.25
)
STRAIN, RATE = 3e-3, 1e-3
#: (voxels per edge, grains) of the full and the quick run.
CASES = {"full": (21, 50), "quick": (8, 20)}


def wall(comm: MPI.Comm, t: float) -> float:
    return comm.allreduce(t, op=MPI.MAX)


class TimedModel:
    """Wraps an RVE for :func:`drive`: wall time, Newton iterations and law time of each solve."""

    def __init__(self, rve: NonlinearRVE) -> None:
        self.rve = rve
        self.records: list[tuple[float, float, int, float, float, int]] = []
        laws = rve.problem.laws
        self._evaluate = laws.evaluate
        self._law = [0.0, 0.0, 0]
        laws.evaluate = self._timed_evaluate  # the RVE's one call of its laws, timed

    def _timed_evaluate(self, *args, **kwargs) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self._evaluate(*args, **kwargs)
        finally:
            self._law[0] += time.perf_counter() - t0
            self._law[1] += time.process_time() - c0
            self._law[2] += 1

    def set_time_increment(self, dt: float) -> None:
        self.rve.set_time_increment(dt)

    def solve(self, E: np.ndarray):
        self.rve.comm.barrier()
        law = list(self._law)
        t0, c0 = time.perf_counter(), time.process_time()
        result = self.rve.solve(E)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        law = [now - before for now, before in zip(self._law, law, strict=True)]
        self.records.append((wall, cpu, result.iterations, *law))
        return result

    def commit(self) -> None:
        self.rve.commit()

    def get_state(self):
        return self.rve.get_state()

    def set_state(self, state) -> None:
        self.rve.set_state(state)


class Clock:
    """Wall and CPU seconds of a block, after a barrier (``with Clock(comm) as c: ...``)."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm

    def __enter__(self) -> Clock:
        self.comm.barrier()
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0


def bare_linear_algebra(comm: MPI.Comm, cell, repeats: int = 2) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds (min over repeats, max over ranks) of the bare PETSc operations."""
    linear = LinearRVE(cell, {"grains": phase_stiffness(cell, "grains", COPPER)}, degree=1)
    K = linear.K
    P = PERIODIC.prolongation(linear.V, cell.origin, cell.lengths).P
    names = ("assemble", "ptap", "factor", "refactor", "solve")
    times: dict[str, list[Clock]] = {k: [] for k in names}
    K_red = K.PtAP(P)
    for _ in range(repeats):
        with Clock(comm) as c:
            K.zeroEntries()
            dolfinx.fem.petsc.assemble_matrix(K, linear._a)
            K.assemble()
        times["assemble"].append(c)
        with Clock(comm) as c:
            K.PtAP(P, result=K_red)
        times["ptap"].append(c)
        with Clock(comm) as c:
            ksp = create_ksp(K_red, "direct", "bench_poly_bare_")
        times["factor"].append(c)
        K.PtAP(P, result=K_red)  # same pattern: numeric refactorization only
        with Clock(comm) as c:
            ksp.getPC().setUp()
        times["refactor"].append(c)
        b, x = K_red.createVecLeft(), K_red.createVecRight()
        b.setRandom()
        with Clock(comm) as c:
            ksp.solve(b, x)
        times["solve"].append(c)
        ksp.destroy()
    return {
        kind: {k: wall(comm, min(getattr(c, kind) for c in v)) for k, v in times.items()}
        for kind in ("wall", "cpu")
    }


def bare_increment(bare: dict[str, float], iterations: float, n_strain: int = 6) -> float:
    """Linear algebra an increment needs with exact LU: per Newton iteration assemble, PtAP, a
    numeric refactorization and one solve; the tangent one more of each and 6 solves."""
    per_jacobian = bare["assemble"] + bare["ptap"] + bare["refactor"]
    return (iterations + 1) * per_jacobian + (iterations + n_strain) * bare["solve"]


def run_path(comm: MPI.Comm, cell, steps: int, linear_solver: str) -> dict:
    """Drive the RVE in uniaxial stress; per-increment wall and CPU times (max over ranks)."""
    with Clock(comm) as c:
        rve = NonlinearRVE(
            cell,
            {"grains": COPPER},
            degree=1,
            linear_solver=linear_solver,
            petsc_options_prefix=f"bench_poly_{linear_solver}_",
        )
    setup = wall(comm, c.wall)
    model = TimedModel(rve)
    t_end = STRAIN / RATE
    path = LoadPath(
        np.array([0.0, t_end]),
        np.array([[0.0] * 6, [STRAIN] + [0.0] * 5]),
        np.array([False] + [True] * 5),
        steps,
    )
    first_step = [0]

    def after(index: int, step) -> None:
        if index == 0:
            first_step[0] = len(model.records)

    with Clock(comm) as c:
        result = drive(model, path, stress_scale=COPPER.xi0, on_step=after)
    records = np.array(model.records)  # wall, cpu, iterations, law wall, law cpu, law calls
    plastic = records[first_step[0] :] if len(records) > first_step[0] else records
    n_local = max(rve.problem.rule.n_points, 1)
    calls = max(plastic[:, 5].sum(), 1.0)

    def mean(column: int) -> float:
        return wall(comm, float(np.mean(plastic[:, column])))

    return {
        "linear_solver": linear_solver,
        "n_dofs": rve.n_dofs,
        "n_reduced": rve.n_reduced,
        "quadrature_points": comm.allreduce(rve.problem.rule.n_points),
        "completed": result.completed,
        "steps": len(result.steps),
        "solves": len(records),
        "newton_iterations": int(records[:, 2].sum()),
        "setup": setup,
        "total": wall(comm, c.wall),
        "total_cpu": wall(comm, c.cpu),
        "per_plastic_increment": mean(0),
        "per_plastic_increment_cpu": mean(1),
        "iterations_per_plastic_increment": float(np.mean(plastic[:, 2])),
        "law_per_plastic_increment": mean(3),
        "law_per_plastic_increment_cpu": mean(4),
        "law_calls_per_plastic_increment": float(np.mean(plastic[:, 5])),
        "law_us_per_point_and_call": 1e6 * wall(comm, plastic[:, 3].sum() / calls / n_local),
        "law_us_per_point_and_call_cpu": 1e6 * wall(comm, plastic[:, 4].sum() / calls / n_local),
        "final_E11": result.steps[-1].E[0] if result.steps else None,
        "final_Sigma11": result.steps[-1].Sigma[0] if result.steps else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8³ voxels, 20 grains (< 1 min)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--solver", choices=LINEAR_SOLVERS, action="append")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/polycrystal.json"))
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    voxels, grains = CASES["quick" if args.quick else "full"]
    orientations = random_orientations(grains, 1)
    cell = polycrystal_cell(
        comm, 3, [1.0] * 3, grains, voxels, 0, grain_data={"orientation": orientations}
    )
    small = polycrystal_cell(
        comm, 3, [1.0] * 3, 4, 3, 0, grain_data={"orientation": orientations[:4]}
    )
    NonlinearRVE(small, {"grains": COPPER}, degree=1)  # warm-up: JIT of the forms
    gc.collect()
    bare = bare_linear_algebra(comm, cell)
    runs = []
    for linear_solver in args.solver or LINEAR_SOLVERS:
        gc.collect()
        run = run_path(comm, cell, args.steps, linear_solver)
        its = run["iterations_per_plastic_increment"]
        for kind, suffix in (("wall", ""), ("cpu", "_cpu")):
            run[f"bare_increment{suffix}"] = bare_increment(bare[kind], its)
            increment = run[f"per_plastic_increment{suffix}"]
            run[f"overhead_ratio{suffix}"] = increment / run[f"bare_increment{suffix}"]
            run[f"law_share{suffix}"] = run[f"law_per_plastic_increment{suffix}"] / increment
        runs.append(run)
    record = {
        "benchmark": "polycrystal",
        "units": "seconds; law in µs per quadrature point and Newton iteration",
        "ranks": comm.size,
        "host": platform.node(),
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "voxels_per_edge": voxels,
        "grains": grains,
        "degree": 1,
        "strain": STRAIN,
        "rate": RATE,
        "bare": bare,
        "runs": runs,
    }
    if comm.rank == 0:
        print_table(record)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
        print(f"wrote {args.out}")


def print_table(record: dict) -> None:
    run0 = record["runs"][0]
    print(
        f"3D polycrystal, {record['grains']} grains on {record['voxels_per_edge']}³ voxels (Q1), "
        f"{run0['n_dofs']} dofs, {run0['quadrature_points']} quadrature points, "
        f"{record['ranks']} rank(s)"
    )
    for kind, suffix in (("cpu", "_cpu"), ("wall", "")):
        bare = record["bare"][kind]
        print(
            f"\n{kind} time; bare PETSc [s]: " + ", ".join(f"{k} {v:.3f}" for k, v in bare.items())
        )
        print(
            f"{'solver':<15}{'solves':>7}{'its':>5}{'it/inc':>7}{'s/inc':>8}{'bare':>8}"
            f"{'ratio':>7}{'law s':>7}{'law %':>7}{'µs/pt/it':>9}{'path s':>8}"
        )
        for run in record["runs"]:
            print(
                f"{run['linear_solver']:<15}{run['solves']:>7}{run['newton_iterations']:>5}"
                f"{run['iterations_per_plastic_increment']:>7.1f}"
                f"{run['per_plastic_increment' + suffix]:>8.2f}"
                f"{run['bare_increment' + suffix]:>8.2f}{run['overhead_ratio' + suffix]:>7.2f}"
                f"{run['law_per_plastic_increment' + suffix]:>7.2f}"
                f"{100 * run['law_share' + suffix]:>7.1f}"
                f"{run['law_us_per_point_and_call' + suffix]:>9.1f}"
                f"{run['total' + suffix]:>8.1f}"
            )
    print(
        "final Σ11 [MPa]: " + ", ".join(f"{r['final_Sigma11'] / 1e6:.4f}" for r in record["runs"])
    )


if __name__ == "__main__":
    main()
