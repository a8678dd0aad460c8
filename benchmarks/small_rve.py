"""Small nonlinear RVEs, the ones FE² solves by the thousand: cost of one micro Newton
iteration against the bare refactorization + solve of the same Jacobian.

For each cell (the plate-with-hole demo's micro cell, 202 dofs, and a finer one of ~1.8k dofs)
a J2 RVE is driven through plastic increments; the time per Newton iteration (residuals,
Jacobians, linear solves, line search) is compared with PETSc refactorizing and solving the
very Jacobian of the last iteration, with MUMPS and with PETSc's own LU, on one rank. It also
reports the cost of the consistent tangent and of a full increment. Prints a table and writes
``benchmarks/results/small_rve.json``.

    .venv/bin/python benchmarks/small_rve.py [--repeat 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

from fe2x.geometry import inclusion_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.nonlinear import NonlinearRVE

MATRIX = J2Plasticity(3.0e9, 0.35, 30.0e6, H=300.0e6)
FIBRE = IsotropicElastic(70.0e9, 0.2)
#: name -> (mesh size, degree): the demo's micro cell and a finer one.
CASES = {"plate_demo_cell": (0.14, 1), "finer_cell": (0.038, 1)}
DIRECTION = np.array([1.0, -0.3, 0.2])


def bare(J: PETSc.Mat, solver: str, repeats: int) -> dict[str, float]:
    """Seconds of a numeric refactorization and one solve of J (min over repeats)."""
    ksp = PETSc.KSP().create(J.getComm())
    ksp.setOperators(J)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("lu")
    pc.setFactorSolverType(solver)
    ksp.setUp()
    b, x = J.createVecLeft(), J.createVecRight()
    b.setRandom()
    refactor, solve = [], []
    for _ in range(repeats):
        J.assemble()  # a new state of the same matrix: numeric refactorization only
        t0 = time.perf_counter()
        pc.setUp()
        refactor.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ksp.solve(b, x)
        solve.append(time.perf_counter() - t0)
    ksp.destroy()
    return {"refactor": min(refactor), "solve": min(solve)}


def run_case(mesh_size: float, degree: int, steps: int, repeats: int) -> dict:
    cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.4, mesh_size, geometry_order=1)
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=degree)
    increments = []
    for k in range(1, steps + 1):
        t0 = time.perf_counter()
        result = rve.solve(0.004 * k * DIRECTION)
        increments.append(time.perf_counter() - t0)
        assert result.converged, result.reason
        rve.commit()
    problem = rve.problem
    per_iteration = problem.newton_seconds / problem.newton_iterations
    J = rve.J.copy()
    out = {
        "dofs": rve.n_dofs,
        "reduced_dofs": rve.n_reduced,
        "newton_iterations": problem.newton_iterations,
        "seconds_per_iteration": per_iteration,
        "seconds_per_increment": float(np.median(increments)),
        "tangent_seconds_per_increment": problem.timings.get("tangent", 0.0) / steps,
        "residual_seconds_per_iteration": problem.timings["residual"] / problem.newton_iterations,
        "jacobian_seconds_per_iteration": problem.timings["jacobian"] / problem.newton_iterations,
    }
    for solver in ("mumps", "petsc"):
        b = bare(J, solver, repeats)
        out[f"bare_{solver}"] = b
        out[f"ratio_{solver}"] = per_iteration / (b["refactor"] + b["solve"])
    J.destroy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/small_rve.json"))
    args = parser.parse_args()
    MATRIX.update(np.zeros((1, 6)), MATRIX.initial_state(1))  # load the compiled law kernel
    results = {name: run_case(*case, args.steps, args.repeat) for name, case in CASES.items()}
    print(
        f"{'cell':<17}{'dofs':>6}{'its':>5}{'ms/it':>8}{'res':>7}{'jac':>7}{'ms/tan':>8}"
        f"{'mumps':>8}{'ratio':>7}{'petsc':>8}{'ratio':>7}"
    )
    for name, r in results.items():
        mumps = 1e3 * (r["bare_mumps"]["refactor"] + r["bare_mumps"]["solve"])
        petsc = 1e3 * (r["bare_petsc"]["refactor"] + r["bare_petsc"]["solve"])
        print(
            f"{name:<17}{r['dofs']:>6}{r['newton_iterations']:>5}"
            f"{1e3 * r['seconds_per_iteration']:>8.3f}"
            f"{1e3 * r['residual_seconds_per_iteration']:>7.3f}"
            f"{1e3 * r['jacobian_seconds_per_iteration']:>7.3f}"
            f"{1e3 * r['tangent_seconds_per_increment']:>8.3f}"
            f"{mumps:>8.3f}{r['ratio_mumps']:>7.2f}{petsc:>8.3f}{r['ratio_petsc']:>7.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
