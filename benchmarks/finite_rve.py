"""Finite-strain RVEs next to small-strain ones on the same mesh: cost of one micro Newton
iteration, of the consistent tangent (4 or 9 corrector solves) against one factorization, and
of the micro-stability diagnostic.

For each cell (2D inclusion cells of ~0.4k and ~3.7k dofs, P1, and a 3D one of ~5k dofs) the
RVE is driven through the same increments with: small-strain J2 (E Mandel), the finite-strain
J2 of the log-strain formulation (F̄ = I + E as a displacement gradient, so the same
amplitudes), and Neo-Hookean phases. Per Newton iteration: residual (constitutive update and
operator), Jacobian (assembly into the fixed pattern), the rest (factorization, solve, line
search); per increment: the tangent condensation, next to the bare refactorization of the last
Jacobian, and the stability eigen-solve. One rank; each case is run ``--repeat`` times and
the fastest run kept (a shared machine). Prints a table and writes
``benchmarks/results/finite_rve.json``.

    .venv/bin/python benchmarks/finite_rve.py [--steps 4] [--repeat 3] [--out PATH]

Measured here (2 cores shared, load 1.5-2; ms per Newton iteration, small J2 / Neo-Hookean /
finite J2, the fastest of three sessions): 2D 322 dofs 0.79 / 0.87 / 1.22; 2D 2,136 dofs
5.6 / 6.1 / 8.1; 3D 522 dofs 2.7 / 3.0 / 4.0. A hyperelastic finite-strain iteration costs
1.0-1.2x a small-strain one (the operators carry 4/3 or 9/6 components; the Neo-Hookean kernel
is compiled); the log-strain J2 1.51-1.55x (2D 322 dofs), 1.38-1.48x (2D 2,136 dofs) and
1.49-1.51x (3D) over the three sessions, against 1.55-1.76 / 1.55-1.60 / 1.49-1.59x for the
previous kernels run alternately with them (goal <= 1.5x: met on the fine cell, within 3 % on
the others; the spread is the shared machine). The difference is that law's compiled pre- and
post-processing, per point 0.69 us in plane strain (Hencky strain with its divided differences
0.20, S, dS/dE, P and A 0.49; formerly 1.05) and 1.14 us in 3D (0.54 + 0.61; formerly 1.39),
against 0.14 for the small-strain return mapping, plus about 20 us of fixed cost per phase
call (of which 9 the J2 update) and, outside the laws, the reduction of 9x9 to 4x4 tangents in
plane strain. The tangent's 4 (2D) or 9 (3D) corrector solves of the finite laws cost 1.8-3.1x
one refactorization + solve of the same Jacobian; the stability eigen-solve 1.2 ms (322 dofs)
to 10-11 ms (2,136 dofs), about one or two Newton iterations. The fe2x imported is the one on
PYTHONPATH (run from a worktree: PYTHONPATH=. .venv/bin/python benchmarks/finite_rve.py).
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
from fe2x.materials.finite_plasticity import LogStrainPlasticity
from fe2x.materials.hyperelastic import NeoHookean
from fe2x.materials.j2 import J2Plasticity
from fe2x.materials.mandel import tensor_to_mandel
from fe2x.micro.nonlinear import NonlinearRVE

J2 = J2Plasticity(3.0e3, 0.35, 30.0, H=300.0)
FIBRE = IsotropicElastic(70.0e3, 0.2)
LAWS = {
    "small_j2": {"matrix": J2, "inclusion": FIBRE},
    "finite_j2": {
        "matrix": LogStrainPlasticity(J2, "matrix"),
        "inclusion": LogStrainPlasticity(FIBRE, "inclusion"),
    },
    "neo_hookean": {"matrix": NeoHookean(3.0e3, 0.35), "inclusion": NeoHookean(70.0e3, 0.2)},
}
#: name -> (dim, mesh size).
CELLS = {"2d_coarse": (2, 0.1), "2d_fine": (2, 0.035), "3d": (3, 0.25)}


def gradient(dim: int, k: int) -> np.ndarray:
    """The k-th increment's macro displacement gradient H̄ (a stretch with shear)."""
    H = np.zeros((dim, dim))
    H[0, 0], H[1, 1], H[0, 1] = 0.004, -0.0012, 0.0016
    return k * H


def bare_refactor(J: PETSc.Mat, repeats: int = 5) -> float:
    """Seconds of one numeric refactorization + solve of J with the RVE's solver choice."""
    ksp = PETSc.KSP().create(J.getComm())
    ksp.setOperators(J)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("lu")
    pc.setFactorSolverType("petsc" if J.getSize()[0] < 1000 else "mumps")
    ksp.setUp()
    b, x = J.createVecLeft(), J.createVecRight()
    b.setRandom()
    times = []
    for _ in range(repeats):
        J.assemble()
        t0 = time.perf_counter()
        pc.setUp()
        ksp.solve(b, x)
        times.append(time.perf_counter() - t0)
    ksp.destroy()
    return min(times)


def run_once(dim: int, mesh_size: float, laws: str, steps: int) -> dict:
    cell = inclusion_cell(MPI.COMM_WORLD, dim, [1.0] * dim, 0.2, mesh_size, geometry_order=1)
    rve = NonlinearRVE(cell, LAWS[laws], degree=1, stability=laws != "small_j2")
    finite = rve.kinematics == "finite"
    stability_seconds = rve.timings.get("stability", 0.0)  # the reference eigen-solve
    for k in range(1, steps + 1):
        H = gradient(dim, k)
        E = (np.eye(dim) + H).reshape(-1) if finite else tensor_to_mandel(0.5 * (H + H.T))
        result = rve.solve(E)
        assert result.converged, result.reason
        rve.commit()
    p = rve.problem
    its = p.newton_iterations
    timings = p.timings
    per_it = p.newton_seconds / its
    J = rve.J.copy()
    refactor = bare_refactor(J)
    J.destroy()
    return {
        "dofs": rve.n_dofs,
        "reduced_dofs": rve.n_reduced,
        "components": rve.n_strain,
        "newton_iterations": its,
        "ms_per_iteration": 1e3 * per_it,
        "ms_residual_per_iteration": 1e3 * timings["residual"] / its,
        "ms_jacobian_per_iteration": 1e3 * timings["jacobian"] / its,
        "ms_tangent_per_increment": 1e3 * timings.get("tangent", 0.0) / steps,
        "ms_bare_refactor_solve": 1e3 * refactor,
        "ms_stability_per_increment": 1e3
        * (timings.get("stability", 0.0) - stability_seconds)
        / steps,
    }


def run(dim: int, mesh_size: float, laws: str, steps: int, repeat: int) -> dict:
    """The fastest of ``repeat`` runs (by time per Newton iteration)."""
    runs = [run_once(dim, mesh_size, laws, steps) for _ in range(repeat)]
    return min(runs, key=lambda r: r["ms_per_iteration"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/finite_rve.json"))
    args = parser.parse_args()
    J2.update(np.zeros((1, 6)), J2.initial_state(1))  # load the compiled law kernel
    results: dict[str, dict] = {}
    print(
        f"{'cell':<10}{'laws':<12}{'dofs':>7}{'n':>3}{'its':>5}{'ms/it':>9}{'res':>8}{'jac':>8}"
        f"{'x small':>8}{'tangent':>9}{'LU':>8}{'tan/LU':>7}{'stab':>9}"
    )
    for cell, (dim, size) in CELLS.items():
        results[cell] = {}
        for laws in LAWS:
            r = results[cell][laws] = run(dim, size, laws, args.steps, args.repeat)
            base = results[cell]["small_j2"]["ms_per_iteration"]
            r["ratio_to_small"] = r["ms_per_iteration"] / base
            print(
                f"{cell:<10}{laws:<12}{r['dofs']:>7}{r['components']:>3}"
                f"{r['newton_iterations']:>5}{r['ms_per_iteration']:>9.3f}"
                f"{r['ms_residual_per_iteration']:>8.3f}{r['ms_jacobian_per_iteration']:>8.3f}"
                f"{r['ratio_to_small']:>8.2f}{r['ms_tangent_per_increment']:>9.3f}"
                f"{r['ms_bare_refactor_solve']:>8.3f}"
                f"{r['ms_tangent_per_increment'] / r['ms_bare_refactor_solve']:>7.2f}"
                f"{r['ms_stability_per_increment']:>9.3f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
