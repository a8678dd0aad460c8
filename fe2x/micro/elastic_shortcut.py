"""The exact elastic shortcut of a virgin RVE: Σ = C_el E with the localization ε(y) = A(y) E.

While no point of an RVE has left the elastic range, its response is linear: Σ = C_el E and
C = C_el, and the micro strain at every point is A(y) E with A the localization of the
elastic correctors (one set of corrector solves, :mod:`fe2x.micro.correctors`, with the
elastic stiffness of every phase). Whether E keeps the RVE elastic is then a batched check of
the laws at the localized strains (:class:`~fe2x.materials.law.ElasticLimit`), with no solve.
"""

from __future__ import annotations

import time

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

from fe2x.errors import SolverError
from fe2x.micro.correctors import SchurComplement
from fe2x.micro.model import RVEResult
from fe2x.micro.rve_problem import RVEProblem
from fe2x.micro.solver import create_ksp

__all__ = ["ElasticLocalization"]


class ElasticLocalization:
    """C_el and A at the points of the non-linear phases of a virgin RVE (built collectively).

    The corrector solves use the elastic Jacobian in a matrix and a solver of their own (or the
    shared elastic factorization, which is that very LU), so nothing of the Newton machinery
    (J, its factorization, the correctors of the tangent) changes.

    Args:
        problem: the RVE problem; its laws must all have an elastic stiffness.
        petsc_options_prefix: prefix of the LU made here when no shared one exists.
    """

    def __init__(self, problem: RVEProblem, petsc_options_prefix: str) -> None:
        t0 = time.perf_counter()
        self.problem = problem
        laws = problem.laws
        n = problem.n_strain
        C_el = laws.elastic_stiffness()
        J = problem.ops.new_jacobian()
        problem.ops.jacobian(C_el, J)
        shared = problem.solver.elastic
        ksp = shared.ksp if shared is not None else create_ksp(J, "direct", petsc_options_prefix)

        def solve(b: PETSc.Vec, x: PETSc.Vec) -> None:
            ksp.solve(b, x)
            if ksp.getConvergedReason() < 0:  # type: ignore[operator]  # an int at run time
                raise SolverError("RVE elastic localization: the linear solve failed")

        schur = SchurComplement(problem.schur.rows) if problem.schur is not None else None
        correctors = problem.unit_correctors(schur)
        try:
            self.C = problem.condense(C_el, solve, correctors, None)  # as the tangent's
            A = np.empty((problem.rule.n_points, n, n))
            # P x_k is the fluctuation of e_k, or under SUBC the whole field (up to rigid motion)
            affine = np.eye(n) if schur is None else np.zeros((n, n))
            for k in range(n):
                A[:, :, k] = problem.strains(correctors.x[k], affine[k])
        finally:
            if shared is None:
                ksp.destroy()
            correctors.destroy()
            if schur is not None:
                schur.destroy()
            J.destroy()
        self.phases = laws.nonlinear_phases
        self.localization = {name: A[laws.points[name]] for name in self.phases}
        problem.timings["elastic_localization"] = time.perf_counter() - t0

    def stays_elastic(self, E: np.ndarray) -> np.ndarray:
        """For macro strains E ``(m, n)``, whether the virgin RVE stays elastic under each.

        One batched check of the localized strains A E at every point, one collective.
        """
        problem = self.problem
        E = np.atleast_2d(np.asarray(E, dtype=float))
        elastic = np.isfinite(E).all(axis=1)
        if elastic.any():
            strain = np.zeros((E.shape[0], problem.rule.n_points, problem.n_strain))
            for name, A in self.localization.items():
                strain[:, problem.laws.points[name]] = np.einsum("pij,mj->mpi", A, E)
            strain[~elastic] = 0.0
            elastic &= problem.laws.stays_elastic(strain, self.phases)
        flags = elastic.astype(np.uint8)
        problem.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MIN)
        return flags.astype(bool)

    def answer(self, E: np.ndarray) -> RVEResult | None:
        """Σ = C_el E and C = C_el if E keeps every point elastic, else None (collective)."""
        E = np.asarray(E, dtype=float).reshape(self.problem.n_strain)
        if not self.stays_elastic(E[None])[0]:
            return None
        C = self.C.copy()
        return RVEResult(C @ E, C, 0.0, True, "elastic shortcut", 0, ())
