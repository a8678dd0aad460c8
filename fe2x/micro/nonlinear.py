"""The nonlinear RVE: Σ(E) and consistent tangent dΣ/dE by Newton (PETSc SNES) on the fluctuation.

With u = E·(y − y_c) + P x (P the boundary-condition prolongation, x the reduced fluctuation
dofs), Newton solves R(x) = Pᵀ ∫ σ(ε(u)) : ε(v) dy = 0 with the Jacobian
Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P, the stress and algorithmic tangent coming from the
vectorised return mapping at all quadrature points of a phase at once. The homogenized
consistent tangent is the linear homogenization of the converged C_alg field:
C[:, k] = ⟨C_alg : ε(u_E,k + P x_k)⟩ with Pᵀ K_alg P x_k = −Pᵀ K_alg u_E,k.

SUBC (minimal kinematic) adds the constraint ⟨ε(P x)⟩ = 0, i.e. G x = 0 with G = B_ε P, and
multipliers λ (= Σ) in R = Pᵀ ∫ σ : ε(v) dy − Gᵀ λ; its tangent is C = |Ω| S⁻¹ with
S = G J⁻¹ Gᵀ. Linear solves are either an exact LU of each Jacobian or a Krylov method
preconditioned by one LU of the elastic reduced stiffness, shared between RVEs
(:class:`ElasticFactorization`).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import basix.ufl
import dolfinx
import dolfinx.fem.petsc
import numpy as np
import ufl
from dolfinx import fem

from fe2x.errors import Fe2xError, SolverError
from fe2x.fem.forms import mandel_strain, stiffness_quadrature_degree
from fe2x.geometry import RVEMesh
from fe2x.materials.elastic import AnisotropicElastic, IsotropicElastic
from fe2x.materials.j2 import (
    J2Plasticity,
    J2State,
    plane_strain_reduce,
    plane_strain_strain,
    return_mapping,
)
from fe2x.micro.constraints import BOUNDARY_CONDITIONS, build_prolongation
from fe2x.micro.correctors import unit_strain_fields
from fe2x.micro.model import RVEResult
from fe2x.micro.solver import create_ksp
from fe2x.petsc_setup import merged_options, pushed, reason_name, weak_method

__all__ = [
    "DEFAULT_OPTIONS",
    "KRYLOV_OPTIONS",
    "LINEAR_SOLVERS",
    "ElasticFactorization",
    "NonlinearRVE",
    "RVEResult",
]

logger = logging.getLogger(__name__)

Material = IsotropicElastic | AnisotropicElastic | J2Plasticity

#: SNES/KSP defaults, overridable through ``petsc_options`` or the options database.
#: newtonls + backtracking: the full Newton step is tried first and accepted whenever the
#: residual norm decreases enough, so on good steps it costs exactly what "basic" costs, and it
#: damps the first iterations after an abrupt elastic-plastic switch.
DEFAULT_OPTIONS: dict[str, object] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "bt",
    "snes_rtol": 1e-10,
    "snes_stol": 1e-12,
    "snes_max_it": 25,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}

#: Linear solvers of the Newton systems: "lu" factorizes every Jacobian (MUMPS, symbolic analysis
#: reused); "shared_elastic" runs a Krylov method preconditioned by one LU of the elastic
#: reduced stiffness, factorized once and shareable between RVEs of one microstructure.
LINEAR_SOLVERS: tuple[str, ...] = ("lu", "shared_elastic")

#: Krylov defaults of ``linear_solver="shared_elastic"`` (the tangent needs tight solves).
#: J = Pᵀ K_alg P is symmetric positive definite for associative J2 plasticity: CG.
#: Eisenstat–Walker loosens the Newton solves early on (not the tangent's, nor under SUBC).
KRYLOV_OPTIONS: dict[str, object] = {
    "snes_ksp_ew": True,
    "ksp_type": "cg",
    "ksp_norm_type": "unpreconditioned",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-50,
    "ksp_max_it": 1000,
}

#: Absolute residual tolerance relative to the elastic nodal-force scale ‖K_el u_E‖ · |E|∞.
ATOL_REL = 1e-12


class ElasticFactorization:
    """One LU factorization of the elastic reduced stiffness Pᵀ K_el P, shared by RVEs.

    It preconditions the Krylov solves of ``linear_solver="shared_elastic"``. All RVEs of one
    microstructure, boundary condition, degree and elastic moduli may share it (pass
    ``rve.elastic_factorization`` to the next constructor); it is factorized once and never
    changes, so it survives every solve, commit and state swap.

    Args:
        K_el: the elastic reduced stiffness (a copy is kept).
        bc: boundary condition it was built for.
        petsc_options_prefix: prefix of its LU KSP's options.
    """

    def __init__(self, K_el: PETSc.Mat, bc: str, petsc_options_prefix: str) -> None:
        t0 = time.perf_counter()
        self.A = K_el.copy()
        self.bc = bc
        self.norm = self.A.norm(PETSc.NormType.FROBENIUS)
        self.ksp = create_ksp(self.A, "direct", petsc_options_prefix)
        self.setup_time = time.perf_counter() - t0
        self.applications = 0

    def matches(self, K_el: PETSc.Mat, bc: str) -> bool:
        """Whether this factorization belongs to an RVE with elastic reduced stiffness K_el."""
        if bc != self.bc or K_el.getSizes() != self.A.getSizes():
            return False
        return abs(K_el.norm(PETSc.NormType.FROBENIUS) - self.norm) <= 1e-12 * self.norm

    # PETSc python-PC interface: y = K_el⁻¹ x.
    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.ksp.solve(x, y)
        self.applications += 1


class _ConstrainedNewtonPC:
    """Newton step of the bordered SUBC system with the multiplier eliminated: y = Π J⁻¹ b.

    [J −Gᵀ; G 0] [dx; dλ] = [b; 0] gives dx = (I − X S⁻¹ G) J⁻¹ b with X = J⁻¹ Gᵀ (n
    back-substitutions per Jacobian) and S = G X (n × n). The step lies in ker G and does not
    depend on λ, so Newton runs on x alone (PETSc SNES with its line search).
    """

    def __init__(self, inner: PETSc.KSP, g: list[PETSc.Vec], version: Any) -> None:
        self.inner = inner
        self.g = g
        self.X = [gi.duplicate() for gi in g]
        self.S = np.full((len(g), len(g)), np.nan)
        self._version = version
        self.version = -1
        self.failed = False
        self.warm_start = False  # Krylov inner solver: start X from the last Jacobian's

    def _solve(self, b: PETSc.Vec, y: PETSc.Vec) -> None:
        self.inner.solve(b, y)
        if self.inner.getConvergedReason() < 0:
            self.failed = True
            raise SolverError("RVE linear solve (SUBC inner) failed")

    def factor(self, J: PETSc.Mat) -> None:
        """X = J⁻¹ Gᵀ and S = G X for the Jacobian J."""
        self.inner.setOperators(J)
        self.inner.setInitialGuessNonzero(self.warm_start)
        try:
            for gi, Xi in zip(self.g, self.X, strict=True):
                self._solve(gi, Xi)
        except SolverError:
            for Xi in self.X:
                Xi.set(0.0)
            raise
        finally:
            self.inner.setInitialGuessNonzero(False)
        self.S = np.array([Xi.mDot(self.g) for Xi in self.X]).T
        self.version = self._version()

    # PETSc python-PC interface.
    def setUp(self, pc: PETSc.PC) -> None:
        self.factor(pc.getOperators()[1])

    def apply(self, pc: PETSc.PC, b: PETSc.Vec, y: PETSc.Vec) -> None:
        self._solve(b, y)
        coefficients = np.linalg.solve(self.S, np.asarray(y.mDot(self.g)))
        y.maxpy([-float(c) for c in coefficients], self.X)


class NonlinearRVE:
    """An RVE with elastic and J2-plastic phases, solved by Newton on the fluctuation.

    Set up once (space, quadrature fields, compiled forms, P, matrix structure, SNES); then
    ``solve(E)`` on a trial history, ``commit()``, and ``get_state()``/``set_state()`` to
    swap the history of one macro point for another.

    Args:
        cell: mesh, phase tags and box of the cell.
        materials: phase name -> elastic or J2 material (2D is plane strain).
        bc: "periodic", "kubc" or "subc".
        degree: Lagrange degree of the displacement.
        petsc_options_prefix: prefix of this RVE's SNES/KSP options.
        petsc_options: SNES/KSP options overriding :data:`DEFAULT_OPTIONS` (and
            :data:`KRYLOV_OPTIONS` with ``linear_solver="shared_elastic"``).
        max_cutbacks: an increment that fails is retried in 2, 4, ... 2**max_cutbacks substeps.
        linear_solver: "lu" (factorize each Jacobian) or "shared_elastic" (Krylov preconditioned
            by one elastic LU); see :data:`LINEAR_SOLVERS`.
        elastic_factorization: with "shared_elastic", the factorization of another RVE of the
            same microstructure to reuse (see :attr:`elastic_factorization`); else one is made.

    SUBC runs the same SNES on x: its residual is Pᵀ f − Gᵀ λ with the least-squares λ
    (the part of Pᵀ f orthogonal to range Gᵀ), and its preconditioner solves the bordered
    system by Schur complement (:class:`_ConstrainedNewtonPC`). Why SNES rather than an own
    loop: the same line search, tolerances, reasons, history and substepping as PBC/KUBC, and
    bt's slope Fᵀ J y is exact here because F ⊥ range Gᵀ.
    """

    def __init__(
        self,
        cell: RVEMesh,
        materials: Mapping[str, Material],
        bc: str = "periodic",
        degree: int = 2,
        petsc_options_prefix: str = "fe2x_rve_nl_",
        petsc_options: Mapping[str, object] | None = None,
        max_cutbacks: int = 4,
        linear_solver: str = "lu",
        elastic_factorization: ElasticFactorization | None = None,
    ) -> None:
        if bc not in BOUNDARY_CONDITIONS:
            raise ValueError(f"unknown boundary condition {bc!r}; allowed: {BOUNDARY_CONDITIONS}")
        if linear_solver not in LINEAR_SOLVERS:
            raise ValueError(f"unknown linear_solver {linear_solver!r}; allowed: {LINEAR_SOLVERS}")
        if elastic_factorization is not None and linear_solver != "shared_elastic":
            raise ValueError("elastic_factorization is only used with 'shared_elastic'")
        missing = [name for name in cell.phases if name not in materials]
        if missing:
            raise Fe2xError(f"no material given for phase(s) {missing}")
        for name in cell.phases:
            if not isinstance(materials[name], Material):
                raise Fe2xError(
                    f"phase {name!r}: material {type(materials[name]).__name__} is not one of "
                    "IsotropicElastic, AnisotropicElastic, J2Plasticity"
                )
        t0 = time.perf_counter()
        mesh = cell.mesh
        self.cell = cell
        self.bc = bc
        self.linear_solver = linear_solver
        self.materials = dict(materials)
        self.max_cutbacks = int(max_cutbacks)
        self.dim = dim = mesh.topology.dim
        self.n_strain = n = 3 if dim == 2 else 6
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (dim,)))

        # Quadrature: the same degree as the linear RVE, so elastic answers coincide.
        geometry_degree = mesh.geometry.cmaps[0].degree
        if degree < geometry_degree:
            raise Fe2xError(
                f"displacement degree {degree} is below the geometry order {geometry_degree}: "
                "it cannot represent the affine macro field on curved cells; raise the degree "
                "or use geometry_order = 1"
            )
        cell_name = mesh.basix_cell()
        q_degree = stiffness_quadrature_degree(cell_name, degree, geometry_degree)
        Qe_sigma = basix.ufl.quadrature_element(cell_name, value_shape=(n,), degree=q_degree)
        Qe_C = basix.ufl.quadrature_element(cell_name, value_shape=(n, n), degree=q_degree)
        points, weights = Qe_sigma.custom_quadrature()
        self._nq = points.shape[0]
        self._q_points, self._q_weights = points, np.asarray(weights, dtype=float)
        self._sigma_q = fem.Function(fem.functionspace(mesh, Qe_sigma), name="sigma")
        self._C_q = fem.Function(fem.functionspace(mesh, Qe_C), name="C_alg")
        dx = ufl.Measure(
            "dx",
            domain=mesh,
            metadata={"quadrature_degree": q_degree, "quadrature_scheme": "default"},
        )

        self._petsc_options_prefix = petsc_options_prefix
        self.u = fem.Function(self.V, name="u")
        du, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        eps_v, eps_du = mandel_strain(v, dim), mandel_strain(du, dim)
        eps_u = mandel_strain(self.u, dim)
        self._strain = fem.Expression(eps_u, points)
        self._L = fem.form(ufl.inner(self._sigma_q, eps_v) * dx)
        self._a = fem.form(ufl.inner(ufl.dot(self._C_q, eps_du), eps_v) * dx)
        self._tangent_forms = [fem.form(ufl.dot(self._C_q, eps_v)[i] * dx) for i in range(n)]
        self._stress_forms = [fem.form(self._sigma_q[i] * dx) for i in range(n)]
        self._strain_forms = [fem.form(eps_u[i] * dx) for i in range(n)]
        self._strain_functional_forms = [fem.form(eps_v[i] * dx) for i in range(n)]
        self._energy_form = fem.form(ufl.inner(self._sigma_q, eps_u) * dx)
        self.volume = self.comm.allreduce(
            fem.assemble_scalar(fem.form(1.0 * dx(domain=mesh))), op=MPI.SUM
        )

        # Quadrature points of each phase (owned cells only: assembly integrates those).
        n_owned = mesh.topology.index_map(dim).size_local
        self._cells = np.arange(n_owned, dtype=np.int32)
        phase_of_cell = np.full(n_owned, -1)
        keep = cell.cell_tags.indices < n_owned
        phase_of_cell[cell.cell_tags.indices[keep]] = cell.cell_tags.values[keep]
        if np.any(phase_of_cell < 0):
            raise Fe2xError(f"{int(np.sum(phase_of_cell < 0))} cell(s) have no phase tag")
        blocks = self._sigma_q.function_space.dofmap.list[:n_owned].reshape(-1)
        self._points: dict[str, np.ndarray] = {}
        self._blocks: dict[str, np.ndarray] = {}
        for name, tag in cell.phases.items():
            idx = np.flatnonzero(np.repeat(phase_of_cell == tag, self._nq))
            self._points[name] = idx
            self._blocks[name] = blocks[idx]
        self._plastic = [name for name in cell.phases if isinstance(materials[name], J2Plasticity)]
        self._elastic_C = {
            name: np.asarray(materials[name].stiffness(dim), dtype=float)
            for name in cell.phases
            if name not in self._plastic
        }
        C_blocks = self._C_q.x.array.reshape(-1, n * n)
        for name, C in self._elastic_C.items():
            C_blocks[self._blocks[name]] = C.reshape(-1)

        self._committed = {name: J2State.zeros(self._points[name].size) for name in self._plastic}
        self._base = self._committed
        self._trial: dict[str, J2State] | None = None
        self._pending: dict[str, J2State] = {}
        self._E_committed = np.zeros(n)
        self._E = np.zeros(n)
        self._E_trial: np.ndarray | None = None
        self.timings = {"forms": time.perf_counter() - t0}

        t0 = time.perf_counter()
        self._prolongation = build_prolongation(self.V, cell.origin, cell.lengths, bc)
        P = self._P = self._prolongation.P
        self._unit = unit_strain_fields(self.V, cell)
        self._b = dolfinx.fem.petsc.create_vector(self.V)
        self._tangent_vecs = [dolfinx.fem.petsc.create_vector(self.V) for _ in range(n)]
        self._K = dolfinx.fem.petsc.create_matrix(self._a)
        self._x = P.createVecRight()
        self._x_committed = self._x.copy()
        self._f = P.createVecRight()
        self._x_eval: np.ndarray | None = None
        self._C_at_jacobian: np.ndarray | None = None
        self._jacobian_version = 0
        if not self._update(self._x):
            raise SolverError("RVE set-up: the return mapping failed at zero strain")
        self._assemble_K()
        self._J = self._K.PtAP(P)
        self._f_ref = self._elastic_residual_scale()
        # SUBC: rows of G = B_ε P as reduced vectors g_i = Pᵀ ∫ ε(v)_i dy, and (G Gᵀ)⁻¹.
        self._g: list[PETSc.Vec] = []
        if bc == "subc":
            for form in self._strain_functional_forms:
                b = self._assemble_vector(dolfinx.fem.petsc.create_vector(self.V), form)
                g = P.createVecRight()
                P.multTranspose(b, g)
                self._g.append(g)
            self._GGt_inv = np.linalg.inv(np.array([g.mDot(self._g) for g in self._g]))
        self.timings["constraints"] = time.perf_counter() - t0

        self._elastic: ElasticFactorization | None = None
        if linear_solver == "shared_elastic":
            # Right after set-up the history is virgin and E = 0: J is the elastic Pᵀ K_el P.
            if elastic_factorization is None:
                elastic_factorization = ElasticFactorization(
                    self._J, bc, f"{petsc_options_prefix}elastic_"
                )
                self.timings["elastic_factorization"] = elastic_factorization.setup_time
            elif not elastic_factorization.matches(self._J, bc):
                raise Fe2xError(
                    "elastic_factorization belongs to another microstructure, boundary "
                    "condition, degree or elastic moduli"
                )
            self._elastic = elastic_factorization

        self._snes = PETSc.SNES().create(self.comm)
        self._snes.setOptionsPrefix(petsc_options_prefix)
        self._snes.setFunction(weak_method(self._residual), self._f)
        self._snes.setJacobian(weak_method(self._jacobian), self._J)
        self._snes.setConvergenceHistory(length=1000, reset=True)
        defaults = dict(DEFAULT_OPTIONS)
        if linear_solver == "shared_elastic":
            for key in ("ksp_type", "pc_type", "pc_factor_mat_solver_type"):
                defaults.pop(key)
            defaults.update(KRYLOV_OPTIONS)
        merged = merged_options(petsc_options_prefix, defaults, petsc_options)
        self._user_atol = "snes_atol" in merged or PETSc.Options().hasName(
            f"{petsc_options_prefix}snes_atol"
        )
        # SUBC: the SNES's KSP applies the Schur-complement step; the ksp/pc options go to the
        # inner solver of J (prefix ``<prefix>inner_``).
        linear_prefix = f"{petsc_options_prefix}inner_" if bc == "subc" else petsc_options_prefix
        options = {
            f"{linear_prefix if key.startswith(('ksp_', 'pc_')) else petsc_options_prefix}{key}": v
            for key, v in merged.items()
        }
        self._schur: _ConstrainedNewtonPC | None = None
        with pushed(options):
            self._snes.setFromOptions()
            linear = self._snes.getKSP()
            if bc == "subc":
                linear.setType("preonly")
                inner = PETSc.KSP().create(self.comm)
                inner.setOptionsPrefix(linear_prefix)
                inner.setFromOptions()
                me = weakref.ref(self)  # the PC's context must not keep this RVE alive
                self._schur = _ConstrainedNewtonPC(inner, self._g, lambda: me()._jacobian_version)
                linear.getPC().setType("python")
                linear.getPC().setPythonContext(self._schur)
                linear = inner
            else:
                linear.setFromOptions()
            if self._elastic is not None:
                linear.getPC().setType("python")
                linear.getPC().setPythonContext(self._elastic)
        self._newton_time = 0.0
        self._newton_iterations = 0
        # Tangent correctors x_k of the last condensation: Krylov initial guesses for the next.
        self._correctors = [P.createVecRight() for _ in range(n)]
        self._tangent_ksp: PETSc.KSP | None = None
        if self._elastic is not None and self._schur is not None:
            self._schur.warm_start = True
        elif self._elastic is not None:
            # Its own KSP: the SNES's carries Eisenstat–Walker's loose tolerances (a pre-solve
            # hook), and this one starts from the last correctors.
            newton_ksp = self.ksp
            self._tangent_ksp = PETSc.KSP().create(self.comm)
            self._tangent_ksp.setOperators(self._J)
            self._tangent_ksp.setType(newton_ksp.getType())
            self._tangent_ksp.setNormType(newton_ksp.getNormType())
            self._tangent_ksp.setTolerances(*newton_ksp.getTolerances())
            self._tangent_ksp.getPC().setType("python")
            self._tangent_ksp.getPC().setPythonContext(self._elastic)
            self._tangent_ksp.setInitialGuessNonzero(True)
        # Lazily built: elastic localization of the virgin RVE (elastic_shortcut) and the
        # quadrature weights × |det J| of the owned points (micro_fields).
        self._C_virgin: np.ndarray | None = None
        self._localization: dict[str, np.ndarray] | None = None
        self._point_weights: np.ndarray | None = None
        self._dg0: fem.FunctionSpace | None = None
        logger.debug(
            "NonlinearRVE: %d dofs, %d reduced, %d quadrature points per cell, phases %s",
            self.n_dofs,
            self._prolongation.n_reduced,
            self._nq,
            {name: type(m).__name__ for name, m in self.materials.items()},
        )

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
    def elastic_factorization(self) -> ElasticFactorization | None:
        """The shared elastic LU of ``linear_solver="shared_elastic"`` (None with "lu")."""
        return self._elastic

    @property
    def linear_ksp(self) -> PETSc.KSP:
        """The KSP that solves with J (for SUBC the inner one, under the Schur complement)."""
        return self._schur.inner if self._schur is not None else self.ksp

    @property
    def J(self) -> PETSc.Mat:
        """Reduced Jacobian Pᵀ K_alg P."""
        return self._J

    @property
    def P(self) -> PETSc.Mat:
        """Prolongation u_fluct = P x."""
        return self._P

    @property
    def n_dofs(self) -> int:
        """Global number of displacement dofs (before the constraint)."""
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    def volume_fractions(self) -> dict[str, float]:
        """Volume fraction of each phase in the meshed cell, by quadrature (collective): with
        straight-sided elements a coarse mesh holds visibly less of a curved inclusion."""
        weights = self._weights()
        local = np.array([weights[self._points[name]].sum() for name in self.cell.phases])
        total = self.comm.allreduce(local, op=MPI.SUM)
        return {
            name: float(v / self.volume) for name, v in zip(self.cell.phases, total, strict=True)
        }

    @property
    def n_reduced(self) -> int:
        """Global number of free fluctuation dofs."""
        return self._prolongation.n_reduced

    @property
    def E_committed(self) -> np.ndarray:
        """Macro strain of the committed state."""
        return self._E_committed.copy()

    @property
    def time_per_iteration(self) -> float:
        """Mean wall time of one Newton iteration so far (s)."""
        return self._newton_time / max(self._newton_iterations, 1)

    # -- set-up helpers --------------------------------------------------------------------
    def _elastic_residual_scale(self) -> float:
        """max_k ‖K_el u_E,k‖ (unconstrained): the size of the nodal forces per unit strain.

        Unlike ‖Pᵀ K u_E‖ it does not vanish for a homogeneous cell.
        """
        full = self._K.createVecLeft()
        scale = 0.0
        for u_E in self._unit:
            self._K.mult(u_E.x.petsc_vec, full)
            scale = max(scale, full.norm())
        return scale

    # -- constitutive update and assembly --------------------------------------------------
    def _update(self, x: PETSc.Vec) -> bool:
        """u = Σ_k E_k u_E,k + P x; σ, C_alg at all quadrature points from the base history.

        Returns False (and leaves the fields untouched) if the return mapping fails.
        """
        n = self.n_strain
        u_vec = self.u.x.petsc_vec
        self._P.mult(x, u_vec)
        u_vec.maxpy([float(e) for e in self._E], [f.x.petsc_vec for f in self._unit])
        self.u.x.scatter_forward()
        eps = self._strain.eval(self.cell.mesh, self._cells).reshape(-1, n)
        sigma_blocks = self._sigma_q.x.array.reshape(-1, n)
        C_blocks = self._C_q.x.array.reshape(-1, n * n)
        pending: dict[str, J2State] = {}
        updates = []
        try:
            for name in self.cell.phases:
                eps_phase = eps[self._points[name]]
                if name in self._elastic_C:
                    updates.append((name, eps_phase @ self._elastic_C[name].T, None))
                    continue
                eps3 = plane_strain_strain(eps_phase) if self.dim == 2 else eps_phase
                sigma, C_alg, state, _ = return_mapping(
                    self.materials[name], eps3, self._base[name]
                )
                if self.dim == 2:
                    sigma, C_alg = plane_strain_reduce(sigma, C_alg)
                updates.append((name, sigma, C_alg))
                pending[name] = state
            ok = True
        except SolverError as error:
            logger.debug("return mapping failed: %s", error)
            ok = False
        if not self.comm.allreduce(ok, op=MPI.LAND):  # every rank takes the same branch
            return False
        for name, sigma, C_alg in updates:
            sigma_blocks[self._blocks[name]] = sigma
            if C_alg is not None:
                C_blocks[self._blocks[name]] = C_alg.reshape(-1, n * n)
        self._pending = pending
        self._x_eval = x.array_r.copy()
        return True

    def _assemble_K(self) -> None:
        self._K.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(self._K, self._a)
        self._K.assemble()
        self._C_at_jacobian = self._C_q.x.array.copy()
        self._jacobian_version += 1

    def _ensure_evaluated(self, x: PETSc.Vec) -> bool:
        same = self._x_eval is not None and np.array_equal(self._x_eval, x.array_r)
        if self.comm.allreduce(same, op=MPI.LAND):  # a collective decision: _update is
            return True
        return self._update(x)

    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, f: PETSc.Vec) -> None:
        """f = Pᵀ ∫ σ : ε(v) dy."""
        t0 = time.perf_counter()
        if not self._update(x):  # an infinite residual stops SNES (no domain-error call in
            f.set(np.inf)  # petsc4py 3.25); every rank gets here together
            return
        with self._b.localForm() as b_local:
            b_local.set(0.0)
        dolfinx.fem.petsc.assemble_vector(self._b, self._L)
        self._b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        self._P.multTranspose(self._b, f)
        if self._g:  # SUBC: F = Pᵀ f − Gᵀ λ, λ = (G Gᵀ)⁻¹ G Pᵀ f
            multipliers = self._GGt_inv @ np.asarray(f.mDot(self._g))
            f.maxpy([-float(m) for m in multipliers], self._g)
        self._tick("residual", t0)

    def _tick(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, Jp: PETSc.Mat) -> None:
        """J = Pᵀ (∫ ε(du) : C_alg : ε(v) dy) P, reusing the structure of PtAP."""
        t0 = time.perf_counter()
        if not self._ensure_evaluated(x):  # the residual already stopped SNES
            return
        self._assemble_K()
        self._K.PtAP(self._P, result=J)
        self._tick("jacobian", t0)

    def _assemble_vector(self, b: PETSc.Vec, L: fem.Form) -> PETSc.Vec:
        with b.localForm() as b_local:
            b_local.set(0.0)
        dolfinx.fem.petsc.assemble_vector(b, L)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return b

    def _mean(self, forms: list[fem.Form]) -> np.ndarray:
        local = np.array([fem.assemble_scalar(form) for form in forms], dtype=float)
        return self.comm.allreduce(local, op=MPI.SUM) / self.volume

    # -- Newton ----------------------------------------------------------------------------
    def _newton(self, E: np.ndarray, strain_scale: float) -> tuple[bool, str, int, np.ndarray]:
        """One SNES solve for macro strain ``E`` from the base history, starting at self._x."""
        self._E = E
        if not self._user_atol:
            self._snes.setTolerances(atol=ATOL_REL * self._f_ref * max(strain_scale, 1e-300))
        t0 = time.perf_counter()
        if self._schur is not None:
            self._schur.failed = False
        try:
            self._snes.solve(None, self._x)
            reason = self._snes.getConvergedReason()
        except PETSc.Error as error:
            logger.debug("SNES raised: %s", error)
            reason = PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_DOMAIN
            if self._schur is not None and self._schur.failed:
                reason = PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
        iterations = self._snes.getIterationNumber()
        self._newton_time += time.perf_counter() - t0
        self._newton_iterations += max(iterations, 1)
        history = np.array(self._snes.getConvergenceHistory()[0][: iterations + 1], dtype=float)
        converged = reason > 0 and self._ensure_evaluated(self._x)
        return converged, reason_name(PETSc.SNES.ConvergedReason, reason), iterations, history

    def solve(self, E: Any) -> RVEResult:
        """Σ and dΣ/dE at macro strain ``E`` (Mandel) from the committed history.

        The trial history is kept until :meth:`commit`. A failed increment is retried in
        2, 4, ... substeps from the committed strain; if all fail, ``converged`` is False.
        """
        n = self.n_strain
        E = np.asarray(E, dtype=float).reshape(n)
        E_n = self._E_committed
        strain_scale = float(max(np.max(np.abs(E)), np.max(np.abs(E_n))))
        iterations = 0
        histories: list[np.ndarray] = []
        reason = "not started"
        converged = False
        for cut in range(self.max_cutbacks + 1):
            n_sub = 2**cut
            self._base = self._committed
            if cut > 0:
                self._x_committed.copy(self._x)
                logger.info("RVE increment failed (%s); retrying in %d substeps", reason, n_sub)
            for i in range(1, n_sub + 1):
                converged, reason, its, history = self._newton(
                    E_n + (E - E_n) * (i / n_sub), strain_scale
                )
                iterations += its
                histories.append(history)
                if not converged:
                    break
                self._base = dict(self._pending)
            if converged:
                break
        nan_result = (np.full(n, np.nan), np.full((n, n), np.nan))
        if not converged:
            logger.warning("RVE increment to E = %s failed: %s", E.tolist(), reason)
            self._trial = None
            self._E_trial = None
            self._base = self._committed
            self._x_committed.copy(self._x)
            Sigma, C = nan_result
            return RVEResult(Sigma, C, np.nan, False, reason, iterations, tuple(histories))
        if n_sub > 1:
            reason = f"converged in {n_sub} substeps"
        self._trial = self._base
        self._E_trial = E.copy()
        self._base = self._committed
        Sigma = self._mean(self._stress_forms)
        mean_strain = self._mean(self._strain_forms)
        energy = self._mean([self._energy_form])[0]
        denominator = max(np.linalg.norm(Sigma) * np.linalg.norm(mean_strain), 1e-300)
        hill_mandel = float(abs(energy - Sigma @ mean_strain) / denominator)
        t0 = time.perf_counter()
        C = self._condensed_tangent()
        self._tick("tangent", t0)
        return RVEResult(Sigma, C, hill_mandel, True, reason, iterations, tuple(histories))

    def _condensed_tangent(self) -> np.ndarray:
        """C[:, k] = ⟨C_alg : ε(u_E,k + P x_k)⟩, Pᵀ K_alg P x_k = −Pᵀ K_alg u_E,k.

        The factorization of the last Jacobian is reused; it is refreshed only if C_alg at the
        converged point differs from the one it was built with (then one refactorization).
        With "shared_elastic" these are tight Krylov solves started from the last correctors.
        """
        changed = not np.array_equal(self._C_at_jacobian, self._C_q.x.array)
        if self.comm.allreduce(changed, op=MPI.LOR):  # collective: reassembly is
            self._assemble_K()
            self._K.PtAP(self._P, result=self._J)
        if self._schur is not None:
            return self._subc_tangent()
        ksp = self._tangent_ksp or self.ksp
        n = self.n_strain
        full, rhs = self._K.createVecLeft(), self._P.createVecRight()
        u_k = self._K.createVecRight()
        tangent = [
            self._assemble_vector(b, L)
            for b, L in zip(self._tangent_vecs, self._tangent_forms, strict=True)
        ]
        C = np.empty((n, n))
        for k, u_E in enumerate(self._unit):
            self._K.mult(u_E.x.petsc_vec, full)
            self._P.multTranspose(full, rhs)
            rhs.scale(-1.0)
            x_k = self._correctors[k]
            ksp.solve(rhs, x_k)
            if ksp.getConvergedReason() < 0:
                x_k.set(0.0)
                raise SolverError("RVE tangent condensation: the linear solve failed")
            self._P.mult(x_k, u_k)
            u_k.axpy(1.0, u_E.x.petsc_vec)
            C[:, k] = [b.dot(u_k) for b in tangent]
        return C / self.volume

    def _subc_tangent(self) -> np.ndarray:
        """C = |Ω| S⁻¹, S = G J⁻¹ Gᵀ at the converged J (n extra solves if J changed).

        From J dx − Gᵀ dλ = −Pᵀ K_alg U_E dE, G dx = 0, λ = Σ: the affine fields U_E differ
        from range P by rigid modes only (K_alg annihilates those) and G U_E = |Ω| I.
        """
        if self._schur.version != self._jacobian_version:
            self._schur.factor(self._J)
        return self.volume * np.linalg.inv(self._schur.S)

    # -- history ---------------------------------------------------------------------------
    def commit(self) -> None:
        """Make the last converged trial history (and fluctuation) the committed one."""
        if self._trial is None:
            raise Fe2xError("nothing to commit: no converged solve since the last commit")
        self._committed = self._trial
        self._base = self._committed
        self._E_committed = self._E_trial
        self._x.copy(self._x_committed)
        self._trial = None
        self._E_trial = None

    def get_state(self) -> dict[str, Any]:
        """Copy of the committed state: ``E``, fluctuation dofs ``x`` (this rank's part) and
        ``history`` (phase -> ``J2State.to_array()``). Plain numpy, serialisable."""
        return {
            "E": self._E_committed.copy(),
            "x": self._x_committed.array_r.copy(),
            "history": {name: state.to_array() for name, state in self._committed.items()},
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Install a state made by :meth:`get_state` as the committed one (trial dropped)."""
        x = np.asarray(state["x"], dtype=float)
        if x.shape != (self._x.getLocalSize(),):
            raise Fe2xError(
                f"state has {x.shape[0]} fluctuation dofs on this rank; expected "
                f"{self._x.getLocalSize()}"
            )
        history = {name: J2State.from_array(a) for name, a in state["history"].items()}
        if sorted(history) != sorted(self._plastic) or any(
            history[name].n != self._points[name].size for name in self._plastic
        ):
            raise Fe2xError("state history does not match this RVE's plastic phases/points")
        self._committed = history
        self._base = history
        self._E_committed = np.asarray(state["E"], dtype=float).reshape(self.n_strain).copy()
        self._x_committed.array[:] = x
        self._x_committed.copy(self._x)
        self._trial = None
        self._E_trial = None

    # -- partition-independent states (checkpoints) -----------------------------------------
    def state_layout(self) -> dict[str, Any]:
        """Where this rank's part of a state lies, independently of how the RVE is partitioned:
        the coordinates of the owned displacement nodes (rows of ``portable_state``'s ``w``),
        and for each plastic phase the key ``input cell index · n_q + q`` of its owned points.
        """
        n_nodes = self.V.dofmap.index_map.size_local
        input_cells = self.cell.mesh.topology.original_cell_index[: self._cells.size]
        keys = (input_cells[:, None].astype(np.int64) * self._nq + np.arange(self._nq)).ravel()
        return {
            "nodes": self.V.tabulate_dof_coordinates()[:n_nodes].copy(),
            "points": {name: keys[self._points[name]] for name in self._plastic},
        }

    def portable_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state`` (of :meth:`get_state`) with the reduced fluctuation ``x`` replaced by the
        full fluctuation ``w = P x`` at the owned nodes of :meth:`state_layout` (collective)."""
        x, w = self._P.createVecRight(), self._P.createVecLeft()
        try:
            x.array[:] = state["x"]
            self._P.mult(x, w)
            full = w.array_r.reshape(-1, self.dim).copy()
        finally:
            x.destroy()
            w.destroy()
        return {"E": state["E"], "w": full, "history": state["history"]}

    def state_importer(
        self, layouts: Sequence[Mapping[str, Any]]
    ) -> Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]:
        """A function from the portable states of all ranks of another partition of this RVE
        (``layouts[r]`` and ``pieces[r]`` from rank r) to this rank's :meth:`get_state`.

        Nodes are matched by coordinates and points by their keys; a mismatch (another RVE)
        raises Fe2xError. The reduced fluctuation is recovered exactly as ``x = Pᵀ w / Pᵀ 1``
        (every periodic image holds the same value). Calling it is collective.
        """
        from scipy.spatial import cKDTree

        nodes = np.vstack([np.asarray(layout["nodes"]) for layout in layouts])
        mine = self.V.tabulate_dof_coordinates()[: self.V.dofmap.index_map.size_local]
        distance, node_index = cKDTree(nodes).query(mine)
        scale = float(np.max(self.cell.lengths))
        local_keys = self.state_layout()["points"]
        point_index = {}
        for name in self._plastic:
            keys = np.concatenate([np.asarray(layout["points"][name]) for layout in layouts])
            order = np.argsort(keys)
            where = order[np.searchsorted(keys[order], local_keys[name]).clip(0, keys.size - 1)]
            if keys.size == 0 or not np.array_equal(keys[where], local_keys[name]):
                where = None
            point_index[name] = where
        matched = distance.max(initial=0.0) <= 1e-9 * scale and all(
            v is not None for v in point_index.values()
        )
        if not self.comm.allreduce(matched, op=MPI.LAND):
            raise Fe2xError("the checkpointed RVE states do not fit this RVE's mesh")
        counts = self._P.createVecRight()
        ones = self._P.createVecLeft()
        ones.set(1.0)
        self._P.multTranspose(ones, counts)
        ones.destroy()

        def local_state(pieces: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
            w_all = np.vstack([np.asarray(p["w"]).reshape(-1, self.dim) for p in pieces])
            w, x = self._P.createVecLeft(), self._P.createVecRight()
            try:
                w.array[:] = w_all[node_index].ravel()
                self._P.multTranspose(w, x)
                x.pointwiseDivide(x, counts)
                reduced = x.array_r.copy()
            finally:
                w.destroy()
                x.destroy()
            history = {
                name: np.vstack([np.asarray(p["history"][name]) for p in pieces])[index]
                for name, index in point_index.items()
            }
            return {"E": np.asarray(pieces[0]["E"]).copy(), "x": reduced, "history": history}

        return local_state

    # -- elastic shortcut ------------------------------------------------------------------
    def _strains_of(self, u: PETSc.Vec) -> np.ndarray:
        """Mandel strain ``(n_owned_cells · nq, n)`` of the displacement ``u`` at the owned
        quadrature points (``self.u`` is used as scratch and restored)."""
        saved = self.u.x.array.copy()
        try:
            u.copy(self.u.x.petsc_vec)
            self.u.x.scatter_forward()
            return self._strain.eval(self.cell.mesh, self._cells).reshape(-1, self.n_strain)
        finally:
            self.u.x.array[:] = saved

    def _build_elastic_localization(self) -> None:
        """C_el and A = ε(u_E,k + P x_k) at the plastic phases' points, at the virgin state.

        The same corrector solves as the tangent condensation (with the SUBC constraint by
        Schur complement), but with the elastic Jacobian in matrices and solver of its own, so
        nothing of the Newton machinery (C_alg field, J, factorizations, u) changes. Collective.
        """
        t0 = time.perf_counter()
        n = self.n_strain
        P = self._P
        C_saved = self._C_q.x.array.copy()
        C_blocks = self._C_q.x.array.reshape(-1, n * n)
        for name in self._plastic:
            C_blocks[self._blocks[name]] = self.materials[name].stiffness(self.dim).reshape(-1)
        try:
            K = dolfinx.fem.petsc.create_matrix(self._a)
            dolfinx.fem.petsc.assemble_matrix(K, self._a)
            K.assemble()
            tangent = [
                self._assemble_vector(b.duplicate(), L)
                for b, L in zip(self._tangent_vecs, self._tangent_forms, strict=True)
            ]
        finally:
            self._C_q.x.array[:] = C_saved
        J = K.PtAP(P)
        own_ksp = self._elastic is None
        ksp = (
            create_ksp(J, "direct", f"{self._petsc_options_prefix}elastic_shortcut_")
            if own_ksp
            else self._elastic.ksp  # the LU of this very elastic J
        )

        def solve(b: PETSc.Vec, x: PETSc.Vec) -> None:
            ksp.solve(b, x)
            if ksp.getConvergedReason() < 0:
                raise SolverError("RVE elastic localization: the linear solve failed")

        try:
            X: list[PETSc.Vec] = []
            if self._g:  # SUBC: x_k = (I − X S⁻¹ G) J⁻¹ b_k, X = J⁻¹ Gᵀ, S = G X
                X = [g.duplicate() for g in self._g]
                for g, Xi in zip(self._g, X, strict=True):
                    solve(g, Xi)
                S = np.array([Xi.mDot(self._g) for Xi in X]).T
            full, rhs, x_k = K.createVecLeft(), P.createVecRight(), P.createVecRight()
            u_k = K.createVecRight()
            A = np.empty((self._cells.size * self._nq, n, n))
            C = np.empty((n, n))
            for k, u_E in enumerate(self._unit):
                K.mult(u_E.x.petsc_vec, full)
                P.multTranspose(full, rhs)
                rhs.scale(-1.0)
                solve(rhs, x_k)
                if self._g:
                    coefficients = np.linalg.solve(S, np.asarray(x_k.mDot(self._g)))
                    x_k.maxpy([-float(c) for c in coefficients], X)
                P.mult(x_k, u_k)
                u_k.axpy(1.0, u_E.x.petsc_vec)
                C[:, k] = [b.dot(u_k) for b in tangent]
                A[:, :, k] = self._strains_of(u_k)
            # the same formula as solve()'s tangent, so the two agree to round-off
            C = self.volume * np.linalg.inv(S) if self._g else C / self.volume
        finally:
            if own_ksp:
                ksp.destroy()
            for obj in (K, J, *tangent, *X):
                obj.destroy()
        self._C_virgin = C
        self._localization = {name: A[self._points[name]] for name in self._plastic}
        self._tick("elastic_localization", t0)

    @property
    def C_elastic(self) -> np.ndarray:
        """C_el: the homogenized stiffness of the virgin (all-elastic) RVE. Collective on the
        first call (it builds the elastic localization)."""
        if self._C_virgin is None:
            self._build_elastic_localization()
        return self._C_virgin.copy()

    def elastic_shortcut(self, E: Any) -> RVEResult | None:
        """The answer of a virgin RVE at ``E`` without Newton, or None if any point would yield.

        Σ = C_el E, C = C_el with the micro strains ε(y) = A(y) E from the elastic localization
        (built once, on the first call). The yield check is the J2 return mapping with zero
        history at every point of every plastic phase on every rank (allreduce), with the same
        tolerance as :meth:`solve`. It ignores and never changes the committed or trial state:
        it answers for a point that has never been solved. Collective on :attr:`comm`.
        """
        n = self.n_strain
        E = np.asarray(E, dtype=float).reshape(n)
        if self._C_virgin is None:
            self._build_elastic_localization()
        yields = not bool(np.isfinite(E).all())
        for name, A in self._localization.items():
            if yields:
                break
            eps = A @ E
            eps3 = plane_strain_strain(eps) if self.dim == 2 else eps
            plastic = return_mapping(self.materials[name], eps3, J2State.zeros(eps.shape[0]))[3]
            yields = bool(plastic.any())
        if self.comm.allreduce(yields, op=MPI.LOR):
            return None
        C = self._C_virgin.copy()
        return RVEResult(C @ E, C, 0.0, True, "elastic shortcut", 0, ())

    # -- micro fields ----------------------------------------------------------------------
    def _weights(self) -> np.ndarray:
        """Quadrature weight × |det J| of each owned point (sums to the cell volumes)."""
        if self._point_weights is None:
            mesh = self.cell.mesh
            detJ = fem.Expression(abs(ufl.JacobianDeterminant(mesh)), self._q_points)
            values = detJ.eval(mesh, self._cells).reshape(-1, self._nq)
            self._point_weights = (values * self._q_weights[None, :]).reshape(-1)
        return self._point_weights

    def _committed_point_fields(self) -> tuple[np.ndarray, np.ndarray]:
        """Committed p and von Mises stress at the owned points (3D stress, σ33 in 2D)."""
        u = self._P.createVecLeft()
        self._P.mult(self._x_committed, u)
        u.maxpy([float(e) for e in self._E_committed], [f.x.petsc_vec for f in self._unit])
        eps = self._strains_of(u)
        u.destroy()
        eps3 = plane_strain_strain(eps) if self.dim == 2 else eps
        sigma = np.zeros_like(eps3)
        p = np.zeros(eps.shape[0])
        for name in self.cell.phases:
            idx = self._points[name]
            law = self.materials[name]
            eps_elastic = eps3[idx]
            if name in self._committed:  # σ = C_el (ε − ε_p) is the return mapping's stress
                state = self._committed[name]
                eps_elastic = eps_elastic - state.eps_p
                p[idx] = state.p
            sigma[idx] = eps_elastic @ np.asarray(law.stiffness(3), dtype=float).T
        dev = sigma.copy()
        dev[:, :3] -= sigma[:, :3].mean(axis=1, keepdims=True)
        von_mises = np.sqrt(1.5 * np.einsum("ij,ij->i", dev, dev))
        return p, von_mises

    @property
    def mean_equivalent_plastic_strain(self) -> float:
        """Volume average of the committed equivalent plastic strain p over the RVE (0 in
        elastic phases). Collective on :attr:`comm`."""
        w = self._weights()
        local = sum(float(w[self._points[name]] @ s.p) for name, s in self._committed.items())
        return float(self.comm.allreduce(local, op=MPI.SUM)) / self.volume

    def micro_fields(self) -> dict[str, fem.Function]:
        """Cell-wise (DG0) fields of the committed state, for output (e.g. ParaView).

        ``"equivalent_plastic_strain"`` (p, 0 in elastic phases) and ``"von_mises_stress"``
        (of the committed stress; in 2D plane strain with σ33) are the cell means of the
        quadrature-point values weighted by the quadrature weights × |det J|, i.e. the L2
        projections onto DG0, so ∫ p_DG0 dy / |Ω| = :attr:`mean_equivalent_plastic_strain`.
        The committed stress is recomputed from the committed strain and plastic strain, so the
        fields follow :meth:`set_state`. New functions on every call. Collective on :attr:`comm`.
        """
        if self._dg0 is None:
            self._dg0 = fem.functionspace(self.cell.mesh, ("DG", 0))
        w = self._weights().reshape(-1, self._nq)
        cell_volume = w.sum(axis=1)
        p, von_mises = self._committed_point_fields()
        dofs = self._dg0.dofmap.list[: self._cells.size, 0]
        fields = {}
        for name, values in (("equivalent_plastic_strain", p), ("von_mises_stress", von_mises)):
            f = fem.Function(self._dg0, name=name)
            f.x.array[dofs] = (w * values.reshape(-1, self._nq)).sum(axis=1) / cell_volume
            f.x.scatter_forward()
            fields[name] = f
        return fields
