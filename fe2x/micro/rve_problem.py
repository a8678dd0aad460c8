"""The nonlinear RVE problem: forms, residual, Jacobian and Newton (PETSc SNES) on the fluctuation.

With u = E·(y − y_c) + P x (P the boundary-condition prolongation, x the reduced fluctuation
dofs), Newton solves R(x) = Pᵀ ∫ σ(ε(u)) : ε(v) dy = 0 with the Jacobian
Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P; stress and algorithmic tangent come from the laws of the
phases at all quadrature points at once (:class:`~fe2x.fem.quadrature_laws.QuadratureLaws`).
The homogenized consistent tangent is the condensation of the converged C_alg field
(:class:`~fe2x.micro.correctors.UnitStrainCorrectors`).

SUBC (minimal kinematic) adds the constraint ⟨ε(P x)⟩ = 0, G x = 0 with G = B_ε P, and
multipliers λ (= Σ): R = Pᵀ ∫ σ : ε(v) dy − Gᵀ λ with the least-squares λ (the part of Pᵀ f
orthogonal to range Gᵀ), and the SNES's preconditioner solves the bordered system by Schur
complement. Why SNES rather than an own loop: the same line search, tolerances, reasons,
history and substepping as PBC/KUBC, and bt's slope Fᵀ J y is exact here because F ⊥ range Gᵀ.

This class holds no history: the micro model (:class:`~fe2x.micro.nonlinear.NonlinearRVE`)
says from which state (``base``), at which macro strain and over which time step to solve.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from typing import NamedTuple

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem.petsc
import numpy as np

from fe2x.errors import SolverError
from fe2x.fem.quadrature_laws import PhaseStates
from fe2x.geometry import RVEMesh
from fe2x.materials.law import ConstitutiveLaw
from fe2x.micro.constraints import BoundaryCondition, boundary_condition
from fe2x.micro.correctors import SchurComplement, UnitStrainCorrectors
from fe2x.micro.linear_solvers import ElasticFactorization, configure_newton
from fe2x.micro.rve_fields import RVEFields
from fe2x.petsc_setup import reason_name, weak_method

__all__ = ["ATOL_REL", "NewtonOutcome", "RVEProblem"]

logger = logging.getLogger(__name__)

#: Absolute residual tolerance relative to the elastic nodal-force scale ‖K_el u_E‖ · |E|∞.
ATOL_REL = 1e-12


class NewtonOutcome(NamedTuple):
    """One Newton solve: whether it converged, the SNES reason, iterations and ‖R‖ history."""

    converged: bool
    reason: str
    iterations: int
    history: np.ndarray


class RVEProblem(RVEFields):
    """Newton on the reduced fluctuation of an RVE with small-strain laws per phase.

    Set up once (space, quadrature fields, compiled forms, P, matrix structure, SNES); then
    :meth:`newton` from any base state, :meth:`averages` and :meth:`tangent` at the
    converged point.

    Args:
        cell: mesh, phase tags and box of the cell.
        laws: phase name -> constitutive law (2D is plane strain).
        bc: boundary condition (name or object, :mod:`fe2x.micro.constraints`).
        degree: Lagrange degree of the displacement.
        petsc_options_prefix: prefix of this problem's SNES/KSP options (unique per RVE).
        petsc_options: SNES/KSP options overriding fe2x's defaults.
        linear_solver: ``"direct"`` or ``"shared_elastic"`` (:mod:`fe2x.micro.linear_solvers`).
        elastic_factorization: with ``"shared_elastic"``, another RVE's to reuse.
    """

    def __init__(
        self,
        cell: RVEMesh,
        laws: Mapping[str, ConstitutiveLaw],
        bc: str | BoundaryCondition,
        degree: int,
        petsc_options_prefix: str,
        petsc_options: Mapping[str, object] | None = None,
        linear_solver: str = "direct",
        elastic_factorization: ElasticFactorization | None = None,
    ) -> None:
        super().__init__(cell, laws, degree)
        self.bc = boundary_condition(bc)
        n = self.n_strain
        t0 = time.perf_counter()
        self._P = self.bc.prolongation(self.V, cell.origin, cell.lengths)
        P = self._P.P
        self._f = P.createVecRight()
        self.E = np.zeros(n)
        self.dt = 0.0
        self.base: PhaseStates = self.laws.committed
        self._x_eval: np.ndarray | None = None
        zero = P.createVecRight()
        if not self._update(zero):
            raise SolverError("RVE set-up: the constitutive update failed at zero strain")
        zero.destroy()
        self._assemble_K()
        self._J = self._K.PtAP(P)
        self._f_ref = self._elastic_residual_scale()
        self._g: list[PETSc.Vec] = []
        self.schur: SchurComplement | None = None
        if self.bc.mean_strain_constraint:  # rows of G = B_ε P: g_i = Pᵀ ∫ ε(v)_i dy
            for form in self._strain_functional_forms:
                b = self._assemble_vector(dolfinx.fem.petsc.create_vector(self.V), form)
                self._g.append(P.createVecRight())
                P.multTranspose(b, self._g[-1])
            self._GGt_inv = np.linalg.inv(np.array([g.mDot(self._g) for g in self._g]))
            self.schur = SchurComplement(self._g)
        self.timings["constraints"] = time.perf_counter() - t0

        self._snes = PETSc.SNES().create(self.comm)
        self._snes.setOptionsPrefix(petsc_options_prefix)
        self._snes.setFunction(weak_method(self._residual), self._f)
        self._snes.setJacobian(weak_method(self._jacobian), self._J)
        self._snes.setConvergenceHistory(length=1000, reset=True)
        me = weakref.ref(self)  # the PC contexts must not keep this problem alive
        self.solver = configure_newton(
            self._snes,
            self._J,
            linear_solver,
            petsc_options_prefix,
            petsc_options,
            self.schur,
            lambda: me()._jacobian_version,
            self.bc.name,
            elastic_factorization,
        )
        if self.solver.elastic is not None and elastic_factorization is None:
            self.timings["elastic_factorization"] = self.solver.elastic.setup_time
        self.correctors = UnitStrainCorrectors(
            P, [u.x.petsc_vec for u in self.unit], self.volume, self.schur
        )
        self.newton_seconds = 0.0
        self.newton_iterations = 0

    # -- read-only PETSc/MPI objects -------------------------------------------------------
    @property
    def snes(self) -> PETSc.SNES:
        """The Newton solver on the reduced fluctuation."""
        return self._snes

    @property
    def ksp(self) -> PETSc.KSP:
        """The SNES's linear solver (its factorization serves the tangent condensation)."""
        return self._snes.getKSP()

    @property
    def linear_ksp(self) -> PETSc.KSP:
        """The KSP that solves with J (for SUBC the inner one, under the Schur complement)."""
        constrained = self.solver.constrained
        return constrained.inner if constrained is not None else self.ksp

    @property
    def J(self) -> PETSc.Mat:
        """Reduced Jacobian Pᵀ K_alg P."""
        return self._J

    @property
    def P(self) -> PETSc.Mat:
        """Prolongation u_fluct = P x."""
        return self._P.P

    @property
    def n_reduced(self) -> int:
        """Global number of free fluctuation dofs."""
        return self._P.n_reduced

    # -- set-up helpers --------------------------------------------------------------------
    def _elastic_residual_scale(self) -> float:
        """max_k ‖K_el u_E,k‖ (unconstrained): the size of the nodal forces per unit strain.

        Unlike ‖Pᵀ K u_E‖ it does not vanish for a homogeneous cell.
        """
        full = self._K.createVecLeft()
        scale = 0.0
        for u_E in self.unit:
            self._K.mult(u_E.x.petsc_vec, full)
            scale = max(scale, full.norm())
        full.destroy()
        return scale

    # -- fields ----------------------------------------------------------------------------
    def displacement(self, x: PETSc.Vec, E: np.ndarray, out: PETSc.Vec) -> PETSc.Vec:
        """u = Σ_k E_k u_E,k + P x (no ghost update)."""
        self.P.mult(x, out)
        out.maxpy([float(e) for e in E], [f.x.petsc_vec for f in self.unit])
        return out

    # -- constitutive update and assembly --------------------------------------------------
    def _update(self, x: PETSc.Vec) -> bool:
        """u = Σ_k E_k u_E,k + P x; σ, C_alg at all points from :attr:`base` over :attr:`dt`.

        Returns False on every rank if a law fails on any; the fields may then be stale (the
        next evaluation rewrites them).
        """
        self.displacement(x, self.E, self.u.x.petsc_vec)
        self.u.x.scatter_forward()
        eps = self.rule.evaluate(self._strain, self.n_strain)
        try:
            self.laws.evaluate(eps, self.base, self.dt)
            ok = True
        except SolverError as error:
            logger.debug("constitutive update failed: %s", error)
            ok = False
        if not self.comm.allreduce(ok, op=MPI.LAND):  # every rank takes the same branch
            self._x_eval = None
            return False
        self._write_fields(self.laws)
        self._x_eval = x.array_r.copy()
        return True

    def _ensure_evaluated(self, x: PETSc.Vec) -> bool:
        same = self._x_eval is not None and np.array_equal(self._x_eval, x.array_r)
        # One verdict for all ranks: _update is collective, so no rank may skip it alone.
        if self.comm.allreduce(same, op=MPI.LAND):
            return True
        return self._update(x)

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, f: PETSc.Vec) -> None:
        """f = Pᵀ ∫ σ : ε(v) dy (SUBC: minus Gᵀ λ)."""
        t0 = time.perf_counter()
        if not self._update(x):  # an infinite residual stops SNES (no domain-error call in
            f.set(np.inf)  # petsc4py 3.25); every rank gets here together
            return
        self._assemble_vector(self._b, self._L)
        self.P.multTranspose(self._b, f)
        if self._g:  # SUBC: F = Pᵀ f − Gᵀ λ, λ = (G Gᵀ)⁻¹ G Pᵀ f
            multipliers = self._GGt_inv @ np.asarray(f.mDot(self._g))
            f.maxpy([-float(m) for m in multipliers], self._g)
        self._tick("residual", t0)

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, Jp: PETSc.Mat) -> None:
        """J = Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P, reusing the structure of PtAP."""
        t0 = time.perf_counter()
        if not self._ensure_evaluated(x):  # the residual already stopped SNES
            return
        self._assemble_K()
        self._K.PtAP(self.P, result=J)
        self._tick("jacobian", t0)

    # -- Newton ----------------------------------------------------------------------------
    def newton(
        self, x: PETSc.Vec, E: np.ndarray, base: PhaseStates, dt: float, strain_scale: float
    ) -> NewtonOutcome:
        """One SNES solve for macro strain ``E`` from ``base`` over ``dt``, starting at and
        updating ``x``. On success the laws' trial state belongs to the converged x."""
        self.E, self.base, self.dt = E, base, dt
        if not self.solver.user_atol:
            self._snes.setTolerances(atol=ATOL_REL * self._f_ref * max(strain_scale, 1e-300))
        constrained = self.solver.constrained
        if constrained is not None:
            constrained.failed = False
        t0 = time.perf_counter()
        try:
            self._snes.solve(None, x)
            reason = self._snes.getConvergedReason()
        except PETSc.Error as error:
            logger.debug("SNES raised: %s", error)
            reason = PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN
            if constrained is not None and constrained.failed:
                reason = PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
        iterations = self._snes.getIterationNumber()
        self.newton_seconds += time.perf_counter() - t0
        self.newton_iterations += max(iterations, 1)
        history = np.array(self._snes.getConvergenceHistory()[0][: iterations + 1], dtype=float)
        converged = reason > 0 and self._ensure_evaluated(x)
        return NewtonOutcome(
            converged, reason_name(PETSc.SNES.ConvergedReason, reason), iterations, history
        )

    def tangent(self) -> np.ndarray:
        """The consistent homogenized tangent at the last evaluated (converged) point.

        The factorization of the last Jacobian is reused; it is refreshed only if C_alg
        differs from the one it was built with (then one refactorization). With
        "shared_elastic" these are tight Krylov solves started from the last correctors.
        """
        t0 = time.perf_counter()
        changed = not np.array_equal(self._C_at_jacobian, self._C_q.x.array)
        # One verdict for all ranks: reassembly and PtAP are collective.
        if self.comm.allreduce(changed, op=MPI.LOR):
            self._assemble_K()
            self._K.PtAP(self.P, result=self._J)
        constrained = self.solver.constrained
        if constrained is not None and self.schur.version != self._jacobian_version:
            constrained.factor(self._J)
        self.correctors.solve(self._K, self.solver.tangent_solve(), self._jacobian_version)
        C = self.correctors.stiffness([] if self.schur is not None else self._stress_functionals())
        self._tick("tangent", t0)
        return C

    @property
    def time_per_iteration(self) -> float:
        """Mean wall time of one Newton iteration so far (s)."""
        return self.newton_seconds / max(self.newton_iterations, 1)
