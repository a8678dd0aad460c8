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
from fe2x.micro.correctors import SchurComplement, UnitStrainCorrectors
from fe2x.micro.model import RVEResult
from fe2x.micro.rve_problem import RVEProblem
from fe2x.micro.solver import create_ksp

__all__ = ["ElasticLocalization"]


class ElasticLocalization:
    """C_el and A at the points of the non-linear phases of a virgin RVE (built collectively).

    The corrector solves use the elastic Jacobian in matrices and a solver of their own (or the
    shared elastic factorization, which is that very LU), so nothing of the Newton machinery
    (C_alg field, J, factorizations, u) changes.

    Args:
        problem: the RVE problem; its laws must all have an elastic stiffness.
        petsc_options_prefix: prefix of the LU made here when no shared one exists.
    """

    def __init__(self, problem: RVEProblem, petsc_options_prefix: str) -> None:
        t0 = time.perf_counter()
        self.problem = problem
        laws = problem.laws
        n = problem.n_strain
        K, tangent = problem.elastic_operators()
        P = problem.P
        J = K.PtAP(P)
        shared = problem.solver.elastic
        ksp = shared.ksp if shared is not None else create_ksp(J, "direct", petsc_options_prefix)

        def solve(b: PETSc.Vec, x: PETSc.Vec) -> None:
            ksp.solve(b, x)
            if ksp.getConvergedReason() < 0:
                raise SolverError("RVE elastic localization: the linear solve failed")

        schur = SchurComplement(problem.schur.rows) if problem.schur is not None else None
        correctors = UnitStrainCorrectors(
            P, [u.x.petsc_vec for u in problem.unit], problem.volume, schur
        )
        u_k = P.createVecLeft()
        try:
            correctors.solve(K, solve)
            self.C = correctors.stiffness(tangent)  # as the tangent: the two agree to round-off
            A = np.empty((problem.rule.n_points, n, n))
            for k in range(n):
                A[:, :, k] = problem.strains_of(correctors.displacement(k, u_k))
        finally:
            if shared is None:
                ksp.destroy()
            correctors.destroy()
            if schur is not None:
                schur.destroy()
            for obj in (K, J, u_k, *tangent):
                obj.destroy()
        self.phases = laws.nonlinear_phases
        self.localization = {name: A[laws.points[name]] for name in self.phases}
        problem.timings["elastic_localization"] = time.perf_counter() - t0

    def answer(self, E: np.ndarray) -> RVEResult | None:
        """Σ = C_el E and C = C_el if E keeps every point elastic, else None (collective)."""
        problem = self.problem
        E = np.asarray(E, dtype=float).reshape(problem.n_strain)
        elastic = bool(np.isfinite(E).all())
        if elastic:
            strain = np.zeros((problem.rule.n_points, problem.n_strain))
            for name, A in self.localization.items():
                strain[problem.laws.points[name]] = A @ E
            elastic = problem.laws.stays_elastic(strain, self.phases)
        if not problem.comm.allreduce(elastic, op=MPI.LAND):
            return None
        C = self.C.copy()
        return RVEResult(C @ E, C, 0.0, True, "elastic shortcut", 0, ())
