"""From which RVE size does an RVE group of 2 ranks beat 1 rank?

Run under ``mpiexec -n 2``: for RVEs of growing size (2D fibre cells and 3D sphere cells, J2
matrix), the same plastic increments are solved by one RVE on one rank (each rank its own, as
groups of 1 do) and by one RVE distributed over both ranks (a group of 2). Reports the wall
time per micro Newton iteration of each and their ratio; writes
``benchmarks/results/groups.json``. A group of 2 pays off where the ratio exceeds 1 — and a
group also halves the number of points that can be solved at once, so it must more than double
the speed of one RVE to shorten an FE² run whose points outnumber the groups.

    .venv/bin/mpiexec -n 2 .venv/bin/python benchmarks/groups.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.geometry import inclusion_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.nonlinear import NonlinearRVE

MATRIX = J2Plasticity(3.0e9, 0.35, 30.0e6, H=300.0e6)
FIBRE = IsotropicElastic(70.0e9, 0.2)
#: (dim, volume fraction, mesh size, degree)
CASES = [
    (2, 0.4, 0.14, 1),
    (2, 0.4, 0.05, 1),
    (2, 0.4, 0.05, 2),
    (2, 0.4, 0.025, 2),
    (2, 0.4, 0.012, 2),
    (3, 0.2, 0.3, 1),
    (3, 0.2, 0.15, 1),
    (3, 0.2, 0.15, 2),
]


def time_per_iteration(comm: MPI.Comm, dim: int, vf: float, h: float, degree: int) -> tuple:
    cell = inclusion_cell(comm, dim, [1.0] * dim, vf, h, geometry_order=1)
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=degree)
    n = 3 if dim == 2 else 6
    direction = np.zeros(n)
    direction[0], direction[1] = 1.0, -0.3
    rve.solve(0.002 * direction)  # warm-up: compiled kernels, first factorization
    rve.commit()
    problem = rve.problem
    seconds, iterations = problem.newton_seconds, problem.newton_iterations
    comm.barrier()
    for k in range(2, 6):
        assert rve.solve(0.002 * k * direction).converged
        rve.commit()
    comm.barrier()
    per_iteration = (problem.newton_seconds - seconds) / (problem.newton_iterations - iterations)
    return rve.n_dofs, comm.allreduce(per_iteration, op=MPI.MAX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/groups.json"))
    args = parser.parse_args()
    world = MPI.COMM_WORLD
    if world.size != 2:
        raise SystemExit("run under mpiexec -n 2")
    rows = []
    for case in CASES:
        dofs, one = time_per_iteration(MPI.COMM_SELF, *case)
        one = world.allreduce(one, op=MPI.MAX)  # both ranks solve their own copy at once
        _, two = time_per_iteration(world, *case)
        rows.append({"case": case, "dofs": dofs, "one_rank_s": one, "group_of_two_s": two})
        if world.rank == 0:
            print(
                f"{case[0]}D h={case[2]:<6} P{case[3]}  {dofs:>7} dofs  1 rank {1e3 * one:8.2f} ms"
                f"  group of 2 {1e3 * two:8.2f} ms  speed-up {one / two:5.2f}",
                flush=True,
            )
    if world.rank == 0:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
