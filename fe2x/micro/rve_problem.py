"""The nonlinear RVE problem: residual, Jacobian and Newton (PETSc SNES) on the fluctuation.

With u = E·(y − y_c) + P x (P the boundary-condition prolongation, x the reduced fluctuation
dofs), Newton solves R(x) = Pᵀ ∫ σ(ε(u)) : ε(v) dy = 0 with the Jacobian
Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P; stress and algorithmic tangent come from the laws of the
phases at all quadrature points at once (:class:`~fe2x.fem.quadrature_laws.QuadratureLaws`),
and the three operators (strains, residual, Jacobian) from :mod:`fe2x.micro.rve_operators`.
The homogenized consistent tangent is the condensation of the converged C_alg field
(:meth:`RVEProblem.condense`, the one corrector routine of :mod:`fe2x.micro.correctors`).

The kinematics is that of the laws. Finite strain (total Lagrangian): the measure is the
displacement gradient, u = (F̄ − I)·(y − y_c) + P x, F = F̄ + ∇(P x), the residual
Pᵀ ∫ P : ∇v dy and the Jacobian Pᵀ (∫ ∇du : A : ∇v dy) P with A = ∂P/∂F; "E" is F̄
(row-major), Σ is P̄ = ⟨P⟩ and the condensed tangent dP̄/dF̄ (the unit loads are unit
gradients e_k, whose affine fields are exact). Rigid rotations: PBC pins one corner, which
removes the translations; a periodic fluctuation cannot rotate, so the rotation of the cell is
F̄'s alone and P̄(Q F̄) = Q P̄(F̄) holds exactly in the discrete problem (KUBC alike).

SUBC (minimal kinematic) adds the constraint ⟨ε(P x)⟩ = 0, G x = 0 with G = B_ε P, and
multipliers λ (= Σ): R = Pᵀ ∫ σ : ε(v) dy − Gᵀ λ with the least-squares λ (the part of Pᵀ f
orthogonal to range Gᵀ), and the SNES's preconditioner solves the bordered system by Schur
complement. Why SNES rather than an own loop: the same line search, tolerances, reasons,
history and substepping as PBC/KUBC, and bt's slope Fᵀ J y is exact here because F ⊥ range Gᵀ.
Under finite strain SUBC's constraint is ⟨∇w⟩ = 0. Its reduced space pins the rigid rotations
of w as well (harmless for ε(w), which ignores infinitesimal rotations), which would
over-constrain w, since the skew part of ∇w enters F and ⟨∇w⟩ = 0 already fixes the mean
rotation: the pinned rotations are given back and eliminated by the skew part of the
constraint (:mod:`fe2x.micro.subc_rotations`), the symmetric part keeps its multipliers, and
the Newton and tangent solves carry the low-rank update of J.

This class holds no history: the micro model (:class:`~fe2x.micro.nonlinear.NonlinearRVE`)
says from which state (``base``), at which macro strain and over which time step to solve.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
from dolfinx import fem

from fe2x.errors import Fe2xError, SolverError
from fe2x.fem.forms import measure_identity, measure_size, stiffness_quadrature_degree
from fe2x.fem.quadrature import QuadratureRule, tag_of_cells
from fe2x.fem.quadrature_laws import PhaseStates, QuadratureLaws
from fe2x.geometry import RVEMesh
from fe2x.materials.law import ConstitutiveLaw
from fe2x.micro.constraints import BoundaryCondition, boundary_condition
from fe2x.micro.correctors import LinearSolve, SchurComplement, UnitStrainCorrectors
from fe2x.micro.linear_solvers import (
    ElasticFactorization,
    choose_linear_solver,
    configure_newton,
)
from fe2x.micro.rve_operators import rve_operators
from fe2x.micro.stability import LowestEigenvalue
from fe2x.micro.subc_constraint import MeanStrainConstraint, jacobian_operator
from fe2x.micro.subc_rotations import RotationElimination
from fe2x.petsc_setup import reason_name, weak_method

__all__ = ["ATOL_REL", "NewtonOutcome", "RVEProblem", "kinematics_of"]

logger = logging.getLogger(__name__)

#: Absolute residual tolerance relative to the elastic nodal-force scale ‖K_el u_E‖ · |E|∞.
ATOL_REL = 1e-12


class NewtonOutcome(NamedTuple):
    """One Newton solve: whether it converged, the SNES reason, iterations and ‖R‖ history."""

    converged: bool
    reason: str
    iterations: int
    history: np.ndarray


def _phase_points(cell: RVEMesh, rule: QuadratureRule) -> dict[str, np.ndarray]:
    """The owned quadrature points of each phase (owned cells only: assembly integrates those)."""
    tag = tag_of_cells(cell.cell_tags, rule.n_cells)
    if np.any(tag < 0):
        raise Fe2xError(f"{int(np.sum(tag < 0))} cell(s) have no phase tag")
    tag = np.repeat(tag, rule.n_q)
    return {name: np.flatnonzero(tag == value) for name, value in cell.phases.items()}


def kinematics_of(laws: Mapping[str, ConstitutiveLaw]) -> str:
    """The one kinematics of the phases' laws, or an Fe2xError naming the phases that differ."""
    kinds = {name: getattr(law, "kinematics", "small") for name, law in laws.items()}
    if len(set(kinds.values())) > 1:
        finite = [name for name, k in kinds.items() if k == "finite"]
        small = [name for name, k in kinds.items() if k != "finite"]
        raise Fe2xError(
            f"phase(s) {finite} have finite-strain laws and {small} small-strain ones: one "
            "kinematics per RVE"
        )
    return next(iter(kinds.values()), "small")


def _point_parameters(
    cell: RVEMesh, laws: Mapping[str, ConstitutiveLaw], points: Mapping[str, np.ndarray], nq: int
) -> dict[str, dict[str, np.ndarray]]:
    """Per phase, the per-point parameters its law reads, from the cell data of the mesh."""
    data = cell.cell_data or {}
    parameters: dict[str, dict[str, np.ndarray]] = {}
    for name, law in laws.items():
        parameters[name] = {}
        for key in getattr(law, "parameter_shapes", {}):
            if key not in data:
                raise Fe2xError(f"phase {name!r}: its law needs the cell data {key!r}")
            parameters[name][key] = np.asarray(data[key])[points[name] // nq]
    return parameters


def _check_set_up(
    bc: BoundaryCondition, stability: bool, degree: int, geometry_degree: int
) -> None:
    """An Fe2xError if the stability diagnostic meets a constrained space or the degree is low."""
    if stability and bc.mean_strain_constraint:
        raise Fe2xError(
            f"the stability diagnostic is for PBC and KUBC; the {bc.name!r} fluctuation "
            "space is constrained"
        )
    if degree < geometry_degree:
        raise Fe2xError(
            f"displacement degree {degree} is below the geometry order {geometry_degree}: "
            "it cannot represent the affine macro field on curved cells; raise the degree "
            "or use geometry_order = 1"
        )


def _jacobian_version_of(problem: RVEProblem) -> Callable[[], int]:
    """A reader of the problem's Jacobian version that does not keep the problem alive."""
    me = weakref.ref(problem)  # the PC contexts must not keep this problem alive

    def jacobian_version() -> int:
        problem = me()
        if problem is None:
            raise ReferenceError("an RVE problem's PC was called after it was freed")
        return problem._jacobian_version

    return jacobian_version


class RVEProblem:
    """Newton on the reduced fluctuation of an RVE with a constitutive law per phase.

    Set up once (space, quadrature rule, operators, P, matrix pattern, SNES); then
    :meth:`newton` from any base state, :meth:`averages` and :meth:`tangent` at the
    converged point.

    Args:
        cell: mesh, phase tags and box of the cell.
        laws: phase name -> constitutive law (2D is plane strain); all small-strain or all
            finite-strain (:attr:`kinematics`).
        bc: boundary condition (name or object, :mod:`fe2x.micro.constraints`).
        degree: Lagrange degree of the displacement.
        petsc_options_prefix: prefix of this problem's SNES/KSP options (unique per RVE).
        petsc_options: SNES/KSP options overriding fe2x's defaults.
        linear_solver: ``"direct"``, ``"shared_elastic"`` or ``"auto"`` (by dimension and size,
            :func:`~fe2x.micro.linear_solvers.choose_linear_solver`).
        elastic_factorization: with ``"shared_elastic"``, another RVE's to reuse.
        stability: compute the micro-instability diagnostic (:meth:`lowest_eigenvalue`; one
            eigen-solve at set-up for the reference); PBC and KUBC only (the SUBC fluctuation
            space is constrained).
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
        stability: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        self.bc = boundary_condition(bc)
        self.cell, mesh = cell, cell.mesh
        self.dim = dim = mesh.topology.dim
        self.kinematics = kinematics = kinematics_of(laws)
        geometry_degree = mesh.geometry.cmaps[0].degree
        _check_set_up(self.bc, stability, degree, geometry_degree)
        self.n_strain = n = measure_size(dim, kinematics)
        #: The measure of the undeformed cell (0, or F = I row-major).
        self.identity = measure_identity(dim, kinematics)
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (dim,)))
        # Quadrature: the same degree as the linear RVE, so elastic answers coincide.
        self.rule = rule = QuadratureRule(
            mesh, stiffness_quadrature_degree(mesh.basix_cell(), degree, geometry_degree)
        )
        self.points = _phase_points(cell, rule)
        parameters = _point_parameters(cell, laws, self.points, rule.n_q)
        self.laws = QuadratureLaws(
            laws, self.points, dim, rule.n_points, parameters, kinematics=kinematics
        )
        self.weights = rule.point_weights()
        self.volume = self.comm.allreduce(float(self.weights.sum()), op=MPI.SUM)
        self.timings = {"forms": time.perf_counter() - t0}

        t0 = time.perf_counter()
        self._P = self.bc.prolongation(self.V, cell.origin, cell.lengths)
        self.ops = rve_operators(self.V, rule, self.P, kinematics)
        self._J = self.ops.new_jacobian()
        self._f = self.P.createVecRight()
        self.E, self.dt = self.identity.copy(), 0.0
        #: Why the last constitutive update failed (a law's message), or "".
        self.failure = ""
        self.rotations: RotationElimination | None = None  # finite-strain SUBC (below)
        self.base: PhaseStates = self.laws.committed
        self._x_eval: np.ndarray | None = None
        self._C_at_jacobian: np.ndarray | None = None
        self._jacobian_version = 0
        zero = self.P.createVecRight()
        if not self._update(zero):
            raise SolverError("RVE set-up: the constitutive update failed at zero strain")
        zero.destroy()
        self._assemble_jacobian()
        C_el = self.laws.tangent
        self._f_ref = max(self.ops.force_norm(C_el[:, :, k]) for k in range(n))
        self._constraint: MeanStrainConstraint | None = None
        self.schur: SchurComplement | None = None
        if self.bc.mean_strain_constraint:
            self._constraint = MeanStrainConstraint(self)
            self.rotations, self.schur = self._constraint.rotations, self._constraint.schur
        self.timings["constraints"] = time.perf_counter() - t0
        self.stability: LowestEigenvalue | None = None
        if stability:
            t0 = time.perf_counter()
            self.stability = LowestEigenvalue(self._J, f"{petsc_options_prefix}stability_")
            self.timings["stability"] = time.perf_counter() - t0
        strategy = choose_linear_solver(linear_solver, dim, self.n_reduced)
        self._set_up_snes(petsc_options_prefix, petsc_options, strategy, elastic_factorization)
        # finite-strain SUBC: generic correctors, solved by the constrained Newton step
        self.correctors = self.unit_correctors(None if self.rotations else self.schur)
        self.newton_seconds, self.newton_iterations = 0.0, 0

    def _set_up_snes(
        self,
        prefix: str,
        options: Mapping[str, object] | None,
        linear_solver: str,
        elastic_factorization: ElasticFactorization | None,
    ) -> None:
        self._snes = PETSc.SNES().create(self.comm)  # type: ignore[arg-type]  # mpi4py comm
        self._snes.setOptionsPrefix(prefix)
        self._snes.setFunction(weak_method(self._residual), self._f)
        operator = jacobian_operator(self._J, self.rotations, self.comm)  # exact slope for bt
        self._snes.setJacobian(weak_method(self._jacobian), operator, self._J)
        self._snes.setConvergenceHistory(length=1000, reset=True)
        self.solver = configure_newton(
            self._snes,
            self._J,
            linear_solver,
            prefix,
            options,
            self.schur,
            _jacobian_version_of(self),
            self.bc.name,
            elastic_factorization,
            self.rotations,
        )
        if self.solver.elastic is not None and elastic_factorization is None:
            self.timings["elastic_factorization"] = self.solver.elastic.setup_time

    # -- read-only PETSc/MPI objects -------------------------------------------------------
    @property
    def comm(self) -> MPI.Comm:
        """Communicator of the cell's mesh."""
        return self.cell.mesh.comm

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
    def n_dofs(self) -> int:
        """Global number of displacement dofs (before the constraint)."""
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    @property
    def n_reduced(self) -> int:
        """Global number of free fluctuation dofs."""
        return self._P.n_reduced

    # -- fields ----------------------------------------------------------------------------
    def strains(self, x: PETSc.Vec, E: np.ndarray) -> np.ndarray:
        """Strain measure ``(n_points, n)`` of u = E·y + P x at the owned points (collective).

        Mandel, or F = E + ∇(P x) row-major with E = F̄, plus the eliminated rotations of a
        finite-strain SUBC fluctuation.
        """
        if self.rotations is not None:
            E = E + self.rotations.correction(x)
        return self.ops.strains(x, E)

    # -- constitutive update and assembly --------------------------------------------------
    def _update(self, x: PETSc.Vec) -> bool:
        """σ, C_alg at all points at u = E·y + P x from :attr:`base` over :attr:`dt`.

        Returns False on every rank if a law fails on any; the fields are then stale (the next
        evaluation rewrites them).
        """
        eps = self.strains(x, self.E)
        try:
            self.laws.evaluate(eps, self.base, self.dt)
            ok = True
        except SolverError as error:
            logger.debug("constitutive update failed: %s", error)
            self.failure = str(error)
            ok = False
        if not self.comm.allreduce(ok, op=MPI.LAND):  # every rank takes the same branch
            self._x_eval = None
            return False
        self._x_eval = x.array_r.copy()
        return True

    def _assemble_jacobian(self) -> None:
        self.ops.jacobian(self.laws.tangent, self._J)
        if self.rotations is not None:
            self.rotations.update(self.laws.tangent, self.ops.residual)
        self._C_at_jacobian = self.laws.tangent.copy()
        self._jacobian_version += 1

    def _ensure_evaluated(self, x: PETSc.Vec) -> bool:
        same = self._x_eval is not None and np.array_equal(self._x_eval, x.array_r)
        # One verdict for all ranks: _update is collective, so no rank may skip it alone.
        if self.comm.allreduce(same, op=MPI.LAND):
            return True
        return self._update(x)

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, f: PETSc.Vec) -> None:
        """Assemble f = Pᵀ ∫ σ : ε(v) dy (SUBC: minus Gᵀ λ)."""
        t0 = time.perf_counter()
        if not self._update(x):  # an infinite residual stops SNES (no domain-error call in
            f.set(np.inf)  # petsc4py 3.25); every rank gets here together
            return
        self.ops.residual(self.laws.stress, f)
        if self.rotations is not None:  # finite-strain SUBC: − Σ_m (W_m : ⟨P⟩) g_m
            self.rotations.correct_residual(self.laws.stress, f)
        if self._constraint is not None:  # SUBC: F = Pᵀ f − Gᵀ λ, λ = (G Gᵀ)⁻¹ G Pᵀ f
            self._constraint.shed_multipliers(f)
        self._tick("residual", t0)

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, Jp: PETSc.Mat) -> None:
        """J = Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P in J's fixed pattern."""
        t0 = time.perf_counter()
        if not self._ensure_evaluated(x):  # the residual already stopped SNES
            return
        self._assemble_jacobian()
        self._tick("jacobian", t0)

    def _tick(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    # -- Newton ----------------------------------------------------------------------------
    def newton(
        self, x: PETSc.Vec, E: np.ndarray, base: PhaseStates, dt: float, strain_scale: float
    ) -> NewtonOutcome:
        """One SNES solve for macro strain ``E`` from ``base`` over ``dt``, in place in ``x``.

        It starts at and updates ``x``. On success the laws' trial state belongs to the
        converged x.
        """
        self.E, self.base, self.dt = E, base, dt
        self.failure = ""
        if not self.solver.user_atol:
            self._snes.setTolerances(atol=ATOL_REL * self._f_ref * max(strain_scale, 1e-300))
        constrained = self.solver.constrained
        if constrained is not None:
            constrained.failed = False
        t0 = time.perf_counter()
        try:
            self._snes.solve(None, x)
            reason: int = self._snes.getConvergedReason()  # type: ignore[assignment]  # an int
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
        name = reason_name(PETSc.SNES.ConvergedReason, reason)
        if not converged:  # the laws' own words, the same on every rank (e.g. det F <= 0)
            failures = [f for f in self.comm.allgather(self.failure) if f]
            name = f"{name}: {failures[0]}" if failures else name
        return NewtonOutcome(converged, name, iterations, history)

    def averages(self, x: PETSc.Vec) -> tuple[np.ndarray, np.ndarray, float]:
        """⟨σ⟩, ⟨ε⟩ and ⟨σ : ε⟩ at the evaluated point x (one collective).

        Finite strain: ⟨P⟩, ⟨H⟩ and ⟨P : H⟩ with H = F − I (Hill's lemma:
        ⟨P : H⟩ = ⟨P⟩ : ⟨H⟩).
        """
        n, w = self.n_strain, self.weights
        eps, sigma = self.strains(x, self.E) - self.identity, self.laws.stress
        local = np.concatenate([w @ sigma, w @ eps, [w @ np.einsum("pi,pi->p", sigma, eps)]])
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        total /= self.volume
        return total[:n], total[n : 2 * n], float(total[2 * n])

    def unit_correctors(self, schur: SchurComplement | None) -> UnitStrainCorrectors:
        """The corrector solves of this RVE for a tangent field given at condensation time.

        rhs_k = −Pᵀ ∫ (C e_k) : ε(v) dy, C[:, k] = ⟨C (e_k + ε(P x_k))⟩ (finite-strain SUBC:
        with the terms of the eliminated rotations, for the C of the last Jacobian).
        """
        n, w = self.n_strain, self.weights
        unit = np.eye(n)

        def rhs(C: np.ndarray, k: int, out: PETSc.Vec) -> None:
            self.ops.residual(C[:, :, k], out)
            out.scale(-1.0)
            if self.rotations is not None:
                self.rotations.tangent_load(k, out)

        def condensed(C: np.ndarray, xs: Sequence[PETSc.Vec]) -> np.ndarray:
            local = np.empty((n, n))
            for k, x in enumerate(xs):
                local[:, k] = w @ np.einsum("pij,pj->pi", C, self.strains(x, unit[k]))
            total = np.empty_like(local)
            self.comm.Allreduce(local, total, op=MPI.SUM)  # one collective for all columns
            return total / self.volume

        return UnitStrainCorrectors(self.P, n, self.volume, rhs, condensed, schur)

    def condense(
        self, C: np.ndarray, solve: LinearSolve, correctors: UnitStrainCorrectors, version: object
    ) -> np.ndarray:
        """The homogenized stiffness of the tangent field C.

        ``solve`` applies its reduced operator; the correctors x_k are left in ``correctors``.
        """
        correctors.solve(C, solve, version)
        return correctors.stiffness(C)

    def tangent(self) -> np.ndarray:
        """The consistent homogenized tangent at the last evaluated (converged) point.

        The factorization of the last Jacobian is reused; it is refreshed only if C_alg
        differs from the one it was built with (then one refactorization). With
        "shared_elastic" these are tight Krylov solves started from the last correctors.
        """
        t0 = time.perf_counter()
        changed = self._C_at_jacobian is None or not np.array_equal(
            self._C_at_jacobian, self.laws.tangent
        )
        # One verdict for all ranks: reassembly is collective.
        if self.comm.allreduce(changed, op=MPI.LOR):
            self._assemble_jacobian()
        constrained = self.solver.constrained
        if constrained is not None and constrained.schur.version != self._jacobian_version:
            constrained.factor(self._J)
        solve = self.solver.tangent_solve()
        if self.rotations is not None:
            assert constrained is not None, "the rotations are eliminated under SUBC only"
            solve = constrained.constrained_solve
        C = self.condense(self.laws.tangent, solve, self.correctors, self._jacobian_version)
        self._tick("tangent", t0)
        return C

    def lowest_eigenvalue(self, mode: PETSc.Vec | None = None) -> float:
        """The micro-instability diagnostic at the last evaluated (converged) point (collective).

        λ_min(J) / λ_ref of the reduced Jacobian (:mod:`fe2x.micro.stability`), its
        eigenvector into ``mode`` (reduced dofs) if given. Call after :meth:`tangent` (which
        leaves J assembled at that point).
        """
        if self.stability is None:
            raise Fe2xError("this RVE problem was set up without the stability diagnostic")
        t0 = time.perf_counter()
        value = self.stability(self._J, mode)
        self._tick("stability", t0)
        return value

    @property
    def time_per_iteration(self) -> float:
        """Mean wall time of one Newton iteration so far (s)."""
        return self.newton_seconds / max(self.newton_iterations, 1)
