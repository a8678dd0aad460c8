"""The macro problem whose stress and tangent at each point come from outside.

It is small strain, or finite strain in the total Lagrangian form.

Newton (PETSc SNES) on the displacement u solves R(u) = ∫ σ_q : ε(v) dx − λ Σ ∫ t·v ds = 0 with
the Jacobian ∫ ε(du) : C_q : ε(v) dx, where σ_q and C_q (in quadrature spaces) are set by a
caller-supplied constitutive callback from the macro strains E at the points. Small strain:
E = ε(u), σ_q and C_q Mandel. Finite strain (``kinematics = "finite"``): E is the deformation
gradient F = I + ∇u (row-major), σ_q the first Piola–Kirchhoff stress P and C_q = ∂P/∂F, so
R(u) = ∫ P : ∇v dX − λ Σ ∫ t₀·v dS with the Jacobian ∫ ∇du : A : ∇v dX on the reference
configuration; tractions are nominal (force per reference area, dead loads) and reactions are
the nominal forces ∫ P N dS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from mpi4py import MPI
from petsc4py import PETSc

import basix.ufl
import dolfinx.fem.petsc
import numpy as np
import ufl
from dolfinx import fem
from dolfinx.mesh import Mesh, MeshTags

from fe2x.errors import Fe2xError
from fe2x.fem.forms import (
    measure_identity,
    measure_size,
    stiffness_quadrature_degree,
    strain_measure,
)
from fe2x.petsc_setup import merged_options, pushed, reason_name, weak_method

__all__ = [
    "DEFAULT_OPTIONS",
    "Constitutive",
    "DirichletSpec",
    "MacroProblem",
    "StepResult",
    "TractionSpec",
]

logger = logging.getLogger(__name__)

#: E (n_points, n) -> (stress (n_points, n), tangent (n_points, n, n), ok). Collective.
Constitutive = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, bool]]

#: SNES/KSP defaults, overridable through ``petsc_options`` or the options database.
#: Full Newton steps (newtonls + "basic" line search): every iteration costs exactly one
#: residual evaluation, i.e. one collective round of RVE solves, and the Jacobian is always
#: built from the tangents of the point just evaluated. Robustness comes from load-step
#: cutback by the caller, not from line-search trial points that each cost all RVE solves.
DEFAULT_OPTIONS: dict[str, object] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_stol": 1e-14,
    "snes_max_it": 25,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}

#: Default absolute residual tolerance, relative to the largest initial residual norm of any
#: step so far (the force scale of the loading); a user-set ``snes_atol`` overrides it.
ATOL_REL = 1e-12


class DirichletSpec(NamedTuple):
    """u_i = λ · value on the facets tagged ``boundary_tag`` (``component`` None: all i)."""

    boundary_tag: int
    component: int | None = None
    value: float = 0.0


class TractionSpec(NamedTuple):
    """Traction λ · t on the facets tagged ``boundary_tag`` (``traction``: dim floats)."""

    boundary_tag: int
    traction: Sequence[float]


class StepResult(NamedTuple):
    """Outcome of one macro load step.

    Attributes:
        converged: whether SNES converged.
        reason: the SNES converged/diverged reason name.
        iterations: Newton iterations.
        residual_history: ‖R‖ at the start and after each iteration.
        evaluations: calls of the constitutive callback (one per residual evaluation).
        load_factor: the load factor λ of the step.
    """

    converged: bool
    reason: str
    iterations: int
    residual_history: list[float]
    evaluations: int
    load_factor: float


class MacroProblem:
    """Macro problem with an external, point-wise constitutive response.

    Args:
        mesh: the macro mesh (its communicator is the macro communicator).
        facet_tags: facet tags referenced by ``dirichlet`` and ``tractions``.
        dim: spatial dimension (2: plane strain, Mandel n = 3; 3: n = 6; finite strain 4 or
            9 components of F and P).
        degree: Lagrange degree of u.
        quadrature_degree: degree of the stress/tangent quadrature; default the degree that
            integrates the Jacobian exactly on affine cells
            (:func:`~fe2x.fem.forms.stiffness_quadrature_degree`).
        dirichlet: displacement conditions, values scaled by the load factor.
        tractions: traction loads, scaled by the load factor.
        petsc_options_prefix: prefix of the SNES/KSP options.
        petsc_options: SNES/KSP options overriding :data:`DEFAULT_OPTIONS`.
        kinematics: ``"small"`` or ``"finite"`` (total Lagrangian, see the module notes).
    """

    def __init__(
        self,
        mesh: Mesh,
        facet_tags: MeshTags,
        dim: int,
        degree: int = 1,
        quadrature_degree: int | None = None,
        dirichlet: Sequence[DirichletSpec] = (),
        tractions: Sequence[TractionSpec] = (),
        petsc_options_prefix: str = "fe2x_macro_",
        petsc_options: Mapping[str, object] | None = None,
        kinematics: str = "small",
    ) -> None:
        _check_arguments(mesh, facet_tags, dim, kinematics)
        self._mesh = mesh
        self.facet_tags = facet_tags
        self.dim = dim
        self.kinematics = kinematics
        self.n_strain = n = measure_size(dim, kinematics)
        self._identity = measure_identity(dim, kinematics)
        self._check_tags([d.boundary_tag for d in dirichlet] + [t.boundary_tag for t in tractions])
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (dim,)))
        self.u = fem.Function(self.V, name="u")

        cell_name = mesh.basix_cell()
        q_degree = (
            stiffness_quadrature_degree(cell_name, degree)
            if quadrature_degree is None
            else quadrature_degree
        )
        self.quadrature_degree = int(q_degree)
        Qe_sigma = basix.ufl.quadrature_element(cell_name, value_shape=(n,), degree=q_degree)
        Qe_C = basix.ufl.quadrature_element(cell_name, value_shape=(n, n), degree=q_degree)
        points = Qe_sigma.custom_quadrature()[0]
        self.points_per_cell = nq = points.shape[0]
        self.sigma = fem.Function(fem.functionspace(mesh, Qe_sigma), name="Sigma")
        self.C = fem.Function(fem.functionspace(mesh, Qe_C), name="C")

        self._cells, self.point_ids, self.point_coordinates = _owned_points(mesh, points)
        self.n_points = self._cells.size * nq
        self._blocks = self.sigma.function_space.dofmap.list[: self._cells.size].reshape(-1)
        self._strain, self._tractions, self._R, self._a = self._compile_forms(
            tractions, q_degree, points
        )
        self._dirichlet, self.bcs = _dirichlet_conditions(self.V, facet_tags, dirichlet)

        # PETSc objects.
        self._x = dolfinx.fem.petsc.create_vector(self.V)
        self._F = dolfinx.fem.petsc.create_vector(self.V)
        self._J = dolfinx.fem.petsc.create_matrix(self._a)
        self._snes, self._user_atol = _newton_solver(
            self.comm,
            petsc_options_prefix,
            petsc_options,
            weak_method(self._residual),
            self._F,
            weak_method(self._jacobian),
            self._J,
        )

        self._constitutive: Constitutive | None = None
        self._evaluations = 0
        self._x_evaluated: np.ndarray | None = None
        # The size of the first residual of the converged steps so far: the reference of the
        # absolute Newton tolerance (kept across a restart, so the restarted steps stop alike).
        self.force_scale = 0.0
        self.timings = {"constitutive": 0.0, "residual": 0.0, "jacobian": 0.0, "solve": 0.0}
        logger.debug(
            "MacroProblem: %d dofs, %d points on rank %d (%d per cell), prefix %s",
            self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs,
            self.n_points,
            self.comm.rank,
            nq,
            petsc_options_prefix,
        )

    # -- read-only PETSc/MPI objects -------------------------------------------------------
    @property
    def comm(self) -> MPI.Comm:
        """Communicator of the macro mesh."""
        return self._mesh.comm

    @property
    def mesh(self) -> Mesh:
        """The macro mesh."""
        return self._mesh

    @property
    def snes(self) -> PETSc.SNES:
        """The macro Newton solver."""
        return self._snes

    @property
    def J(self) -> PETSc.Mat:
        """The Jacobian matrix (Dirichlet rows and columns replaced by the identity)."""
        return self._J

    # -- set-up helpers --------------------------------------------------------------------
    def _compile_forms(
        self, tractions: Sequence[TractionSpec], q_degree: int, points: np.ndarray
    ) -> tuple[fem.Expression, list[tuple[TractionSpec, fem.Constant]], fem.Form, fem.Form]:
        """The strain E(u) at the points, the traction constants t, and the forms R and a.

        R = ∫ σ_q : E(v) dx − Σ ∫ t·v ds and a = ∫ E(du) : C_q : E(v) dx, compiled once.
        """
        mesh, dim, kinematics = self._mesh, self.dim, self.kinematics
        dx = ufl.Measure(
            "dx",
            domain=mesh,
            metadata={"quadrature_degree": q_degree, "quadrature_scheme": "default"},
        )
        ds = ufl.Measure("ds", domain=mesh, subdomain_data=self.facet_tags)
        du, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)

        def measure(w):
            return strain_measure(w, dim, kinematics)

        eps_v = measure(v)
        strain = fem.Expression(measure(self.u), points)
        residual = ufl.inner(self.sigma, eps_v) * dx
        constants = [
            (spec, fem.Constant(mesh, np.zeros(dim, dtype=dolfinx.default_scalar_type)))
            for spec in tractions
        ]
        for spec, t in constants:
            if len(spec.traction) != dim:
                raise Fe2xError(f"traction on boundary {spec.boundary_tag} needs {dim} entries")
            residual -= ufl.inner(t, v) * ds(spec.boundary_tag)
        R = fem.form(residual)
        a = fem.form(ufl.inner(ufl.dot(self.C, measure(du)), eps_v) * dx)
        return strain, constants, R, a

    def _check_tags(self, tags: Sequence[int]) -> None:
        """Raise on every rank if a boundary tag marks no facet on any rank."""
        present = np.array([np.count_nonzero(self.facet_tags.values == t) for t in tags])
        present = self.comm.allreduce(present, op=MPI.SUM) if len(tags) else present
        missing = [t for t, count in zip(tags, present, strict=True) if count == 0]
        if missing:
            known = self.comm.allgather(np.unique(self.facet_tags.values).tolist())
            raise Fe2xError(
                f"boundary tag(s) {missing} mark no facet; tags in the mesh: "
                f"{sorted(set().union(*known))}"
            )

    def _set_load(self, load_factor: float) -> None:
        # dolfinx types the setter of Constant.value with an unbound scalar TypeVar.
        for dspec, g in self._dirichlet:
            g.value = load_factor * (  # type: ignore[assignment]
                np.full(self.dim, dspec.value) if dspec.component is None else dspec.value
            )
        for spec, t in self._tractions:
            t.value = load_factor * np.asarray(spec.traction, dtype=float)  # type: ignore[assignment]

    # -- quadrature-point fields -----------------------------------------------------------
    def strains(self) -> np.ndarray:
        """Macro strain at the owned points, ``(n_points, n)``: Mandel ε(u), or F = I + ∇u."""
        values = self._strain.eval(self._mesh, self._cells).reshape(self.n_points, self.n_strain)
        return values + self._identity if self.kinematics == "finite" else values

    def stresses(self) -> np.ndarray:
        """Stress last set at the owned points, ``(n_points, n)`` (Mandel σ, or P)."""
        return self.sigma.x.array.reshape(-1, self.n_strain)[self._blocks].copy()

    def tangents(self) -> np.ndarray:
        """Tangent last set at the owned points, ``(n_points, n, n)`` (Mandel, or ∂P/∂F)."""
        n = self.n_strain
        return self.C.x.array.reshape(-1, n * n)[self._blocks].reshape(-1, n, n).copy()

    def set_response(self, stress: np.ndarray, tangent: np.ndarray) -> None:
        """Install the stress ``(n_points, n)`` and tangent ``(n_points, n, n)``."""
        n = self.n_strain
        stress = np.asarray(stress, dtype=float)
        tangent = np.asarray(tangent, dtype=float)
        if stress.shape != (self.n_points, n) or tangent.shape != (self.n_points, n, n):
            raise Fe2xError(
                f"set_response: shapes {stress.shape}, {tangent.shape}; expected "
                f"({self.n_points}, {n}), ({self.n_points}, {n}, {n})"
            )
        self.sigma.x.array.reshape(-1, n)[self._blocks] = stress
        self.C.x.array.reshape(-1, n * n)[self._blocks] = tangent.reshape(-1, n * n)
        # Ghost-cell entries are left as they are: assembly integrates over owned cells only.

    # -- SNES callbacks --------------------------------------------------------------------
    def _residual(self, snes: PETSc.SNES, x: PETSc.Vec, F: PETSc.Vec) -> None:
        """F = ∫ σ_q : ε(v) − λ ∫ t·v, and x − g on Dirichlet rows; one constitutive call."""
        t0 = time.perf_counter()
        x.copy(self.u.x.petsc_vec)
        self.u.x.scatter_forward()
        E = self.strains()
        t1 = time.perf_counter()
        assert self._constitutive is not None, "SNES calls back only inside solve_step"
        stress, tangent, ok = self._constitutive(E)  # collective: every rank, every call
        self.timings["constitutive"] += time.perf_counter() - t1
        self._evaluations += 1
        if not self.comm.allreduce(bool(ok), op=MPI.LAND):
            # petsc4py 3.25 does not wrap SNESSetFunctionDomainError; a NaN residual stops
            # SNES just as surely (DIVERGED_FUNCTION_NANORINF) on every rank.
            logger.debug("the constitutive response failed: ending the macro Newton step")
            F.set(np.nan)
            self._x_evaluated = None
            return
        self.set_response(stress, tangent)
        # Lifting with the current tangent makes the first Newton step of a load step carry
        # the Dirichlet increment into the interior (a tangent predictor) instead of
        # concentrating it in the boundary elements; it vanishes once x satisfies the BCs.
        self._assemble_residual(F, lifting_at=self.u.x.petsc_vec)  # u: x with ghosts
        dolfinx.fem.petsc.set_bc(F, self.bcs, x, -1.0)
        self._x_evaluated = x.array_r.copy()
        self.timings["residual"] += time.perf_counter() - t0

    def _assemble_residual(self, F: PETSc.Vec, lifting_at: PETSc.Vec | None = None) -> None:
        with F.localForm() as F_local:
            F_local.set(0.0)
        dolfinx.fem.petsc.assemble_vector(F, self._R)  # type: ignore[arg-type]  # (Vec, form)
        if lifting_at is not None:
            dolfinx.fem.petsc.apply_lifting(
                F, [self._a], bcs=[self.bcs], x0=[lifting_at], alpha=-1.0
            )
        F.ghostUpdate(  # petsc4py's stub types the members of InsertMode and ScatterMode as int
            addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]
            mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
        )

    def _jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        """J = ∫ ε(du) : C_q : ε(v) with the tangents of the last residual evaluation."""
        t0 = time.perf_counter()
        if self._x_evaluated is None or not np.array_equal(self._x_evaluated, x.array_r):
            logger.warning("macro Jacobian requested away from the last evaluated point")
        J.zeroEntries()
        # The (Mat, form) variant is registered on a singledispatch that mypy reads as (form, ...).
        dolfinx.fem.petsc.assemble_matrix(J, self._a, bcs=self.bcs, diag=1.0)  # type: ignore[arg-type, misc]
        J.assemble()
        self.timings["jacobian"] += time.perf_counter() - t0

    # -- load steps ------------------------------------------------------------------------
    def solve_step(self, load_factor: float, constitutive: Constitutive) -> StepResult:
        """Newton from the current u to equilibrium at ``load_factor``.

        ``constitutive(E)`` is called exactly once per residual evaluation on every rank (it
        may communicate); if it returns ``ok = False`` on any rank, SNES gets a domain error
        and the step fails. On failure u is left at the last iterate: see
        :meth:`restore_state`.
        """
        load_factor = float(load_factor)
        self._set_load(load_factor)
        self.u.x.petsc_vec.copy(self._x)  # the BC increment enters through the lifting
        self._constitutive = constitutive
        self._evaluations = 0
        if not self._user_atol:
            self._snes.setTolerances(atol=max(ATOL_REL * self.force_scale, 1e-300))
        t0 = time.perf_counter()
        try:
            self._snes.solve(None, self._x)
        finally:
            self._constitutive = None
            self.timings["solve"] += time.perf_counter() - t0
        reason: int = self._snes.getConvergedReason()  # type: ignore[assignment]  # an int at run time
        iterations = self._snes.getIterationNumber()
        history = [float(r) for r in self._snes.getConvergenceHistory()[0][: iterations + 1]]
        converged = reason > 0
        if converged:
            self._x.copy(self.u.x.petsc_vec)
            self.u.x.scatter_forward()
            if history and np.isfinite(history[0]):
                self.force_scale = max(self.force_scale, history[0])
        result = StepResult(
            converged,
            reason_name(PETSc.SNES.ConvergedReason, reason),
            iterations,
            history,
            self._evaluations,
            load_factor,
        )
        logger.debug(
            "macro step λ = %g: %s in %d iterations (%d evaluations)",
            load_factor,
            result.reason,
            iterations,
            self._evaluations,
        )
        return result

    # -- post-processing and state ---------------------------------------------------------
    def reactions(self, boundary_tag: int) -> np.ndarray:
        """Force ∫_Γ σ·n ds that the boundary Γ exerts on the body, ``(dim,)``.

        Finite strain: the nominal force ∫_Γ P N dS.

        Computed as the sum, over the owned dofs on Γ's facets, of the residual assembled
        without boundary conditions (internal minus external nodal forces), with the stress
        last set. A node shared with another supported boundary (a corner) counts in full.
        """
        facets = self.facet_tags.find(boundary_tag)
        blocks = fem.locate_dofs_topological(self.V, self.dim - 1, facets)
        blocks = blocks[blocks < self.V.dofmap.index_map.size_local]
        F = self._F.duplicate()
        self._assemble_residual(F)
        local = F.array_r.reshape(-1, self.V.dofmap.index_map_bs)[blocks].sum(axis=0)
        F.destroy()
        return self.comm.allreduce(local, op=MPI.SUM)

    def save_state(self) -> dict[str, np.ndarray]:
        """Copy of u and of the stress and tangent fields (this rank's part)."""
        return {
            "u": self.u.x.array.copy(),
            "sigma": self.sigma.x.array.copy(),
            "C": self.C.x.array.copy(),
        }

    def restore_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Reinstate a state made by :meth:`save_state` (e.g. after a failed step)."""
        self.u.x.array[:] = state["u"]
        self.sigma.x.array[:] = state["sigma"]
        self.C.x.array[:] = state["C"]


def _check_arguments(mesh: Mesh, facet_tags: MeshTags, dim: int, kinematics: str) -> None:
    """Raise Fe2xError if ``dim``, the facet tags' dimension or ``kinematics`` is wrong."""
    if dim not in (2, 3) or dim != mesh.topology.dim:
        raise Fe2xError(f"dim = {dim!r} must be 2 or 3 and equal the mesh dimension")
    if facet_tags.dim != dim - 1:
        raise Fe2xError(f"facet_tags have dimension {facet_tags.dim}; expected {dim - 1}")
    if kinematics not in ("small", "finite"):
        raise Fe2xError(f"kinematics = {kinematics!r} must be 'small' or 'finite'")


def _owned_points(mesh: Mesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The owned cells, and the id and coordinates of each of their quadrature ``points``.

    Point i is the q-th point of owned cell c, i = c nq + q; its id is c₀ nq + q, with c₀ the
    original (input) index of the cell.
    """
    dim, nq = mesh.topology.dim, points.shape[0]
    n_owned = mesh.topology.index_map(dim).size_local
    cells = np.arange(n_owned, dtype=np.int32)
    original = np.asarray(mesh.topology.original_cell_index[:n_owned], dtype=np.int64)
    point_ids = (original[:, None] * nq + np.arange(nq, dtype=np.int64)).reshape(-1)
    x = ufl.SpatialCoordinate(mesh)
    coordinates = fem.Expression(x, points).eval(mesh, cells)
    return cells, point_ids, coordinates.reshape(n_owned * nq, -1)[:, :dim].copy()


def _dirichlet_conditions(
    V: fem.FunctionSpace, facet_tags: MeshTags, dirichlet: Sequence[DirichletSpec]
) -> tuple[list[tuple[DirichletSpec, fem.Constant]], list[fem.DirichletBC]]:
    """The constant g of each condition (its value times λ, set per step) and its BC u_i = g."""
    mesh = V.mesh
    dim = mesh.topology.dim
    conditions: list[tuple[DirichletSpec, fem.Constant]] = []
    bcs: list[fem.DirichletBC] = []
    fdim = dim - 1
    for dspec in dirichlet:
        facets = facet_tags.find(dspec.boundary_tag)
        if dspec.component is None:
            g = fem.Constant(mesh, np.zeros(dim, dtype=dolfinx.default_scalar_type))
            dofs = fem.locate_dofs_topological(V, fdim, facets)
            bc = fem.dirichletbc(g, dofs, V)
        else:
            if dspec.component not in range(dim):
                raise Fe2xError(
                    f"Dirichlet component {dspec.component!r} on boundary "
                    f"{dspec.boundary_tag}: allowed None or 0..{dim - 1}"
                )
            g = fem.Constant(mesh, dolfinx.default_scalar_type(0.0))
            Vi = V.sub(dspec.component)
            dofs = fem.locate_dofs_topological(Vi, fdim, facets)
            bc = fem.dirichletbc(g, dofs, Vi)
        conditions.append((dspec, g))
        bcs.append(bc)
    return conditions, bcs


def _newton_solver(
    comm: MPI.Comm,
    prefix: str,
    petsc_options: Mapping[str, object] | None,
    residual: Callable[..., Any],
    F: PETSc.Vec,
    jacobian: Callable[..., Any],
    J: PETSc.Mat,
) -> tuple[PETSc.SNES, bool]:
    """The macro SNES, and whether ``snes_atol`` is the user's.

    Its options are :data:`DEFAULT_OPTIONS` overridden by ``petsc_options``, then by the options
    database under ``prefix``.
    """
    snes = PETSc.SNES().create(comm)  # type: ignore[arg-type]  # an mpi4py comm
    snes.setOptionsPrefix(prefix)
    snes.setFunction(residual, F)
    snes.setJacobian(jacobian, J)
    snes.setConvergenceHistory(length=1000, reset=True)
    merged = merged_options(prefix, DEFAULT_OPTIONS, petsc_options)
    user_atol = "snes_atol" in merged or PETSc.Options().hasName(f"{prefix}snes_atol")
    with pushed({f"{prefix}{key}": v for key, v in merged.items()}):
        snes.setFromOptions()
        snes.getKSP().setFromOptions()
    return snes, user_atol
