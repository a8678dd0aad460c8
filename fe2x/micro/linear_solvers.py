"""The linear solvers of the RVE's Newton systems J dx = −R and of its tangent condensation.

Two strategies, by name (:data:`LINEAR_SOLVERS`):

- ``"direct"``: a direct factorization (MUMPS LU) of every Jacobian, whose last factorization
  also serves the tangent's corrector solves;
- ``"shared_elastic"``: CG preconditioned by one LU of the elastic reduced stiffness
  (:class:`ElasticFactorization`), factorized once and shareable between all RVEs of one
  microstructure; the tangent gets tight Krylov solves started from the last correctors.

Under SUBC the SNES's linear solver applies the Newton step with the multiplier eliminated
(:class:`ConstrainedNewtonPC`, a PETSc python PC around the inner solver of J); under finite
strain its inner solves carry the low-rank update of the eliminated rotations
(:mod:`fe2x.micro.subc_rotations`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from petsc4py import PETSc

from fe2x.errors import Fe2xError, SolverError
from fe2x.micro.correctors import LinearSolve, SchurComplement
from fe2x.micro.solver import create_ksp
from fe2x.micro.subc_rotations import RotationElimination
from fe2x.petsc_setup import merged_options, pushed

__all__ = [
    "DEFAULT_OPTIONS",
    "KRYLOV_OPTIONS",
    "LINEAR_SOLVERS",
    "SHARED_ELASTIC_MIN_DOFS_3D",
    "ConstrainedNewtonPC",
    "ElasticFactorization",
    "NewtonLinearSolver",
    "choose_linear_solver",
    "configure_newton",
]

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

#: Below this many reduced dofs an RVE on one rank factorizes with PETSc's own LU instead of
#: MUMPS, whose fixed cost per call dominates tiny systems (measured: 166 dofs, refactor +
#: solve 0.10 ms against 0.21 ms with MUMPS; about even near 1,500 dofs;
#: ``benchmarks/small_rve.py``).
SMALL_DIRECT_MAX_DOFS = 1000

#: The strategies of the Newton systems' linear solves (see the module notes).
LINEAR_SOLVERS: tuple[str, ...] = ("direct", "shared_elastic")

#: Under ``"auto"``, 3D RVEs from this many reduced dofs use ``"shared_elastic"``: one elastic
#: LU then Krylov solves beat refactorizing every Jacobian from about 20k dofs in 3D (1.56x at
#: 27k, ``benchmarks/rve_path.py``), never in 2D (1.35-2x slower), where LU is cheap.
SHARED_ELASTIC_MIN_DOFS_3D = 20_000


def choose_linear_solver(strategy: str, dim: int, n_reduced: int) -> str:
    """Resolve ``"auto"`` by dimension and size; other names are returned as given.

    >>> choose_linear_solver("auto", 2, 10**6), choose_linear_solver("auto", 3, 30_000)
    ('direct', 'shared_elastic')
    """
    if strategy != "auto":
        return strategy
    return "shared_elastic" if dim == 3 and n_reduced >= SHARED_ELASTIC_MIN_DOFS_3D else "direct"


#: Krylov defaults of ``"shared_elastic"`` (the tangent needs tight solves). J = Pᵀ K_alg P is
#: symmetric positive definite for associative J2 plasticity: CG. Eisenstat–Walker loosens the
#: Newton solves early on (not the tangent's, nor under SUBC).
KRYLOV_OPTIONS: dict[str, object] = {
    "snes_ksp_ew": True,
    "ksp_type": "cg",
    "ksp_norm_type": "unpreconditioned",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-50,
    "ksp_max_it": 1000,
}


def _frobenius_norm(A: PETSc.Mat) -> float:
    """‖A‖_F (petsc4py's stub types NormType members as int, the norm as float or pair)."""
    return A.norm(PETSc.NormType.FROBENIUS)  # type: ignore[arg-type, return-value]


class ElasticFactorization:
    """One LU factorization of the elastic reduced stiffness Pᵀ K_el P, shared by RVEs.

    It preconditions the Krylov solves of ``"shared_elastic"``. All RVEs of one
    microstructure, boundary condition, degree and elastic moduli may share it (pass
    ``rve.elastic_factorization`` to the next constructor); it is factorized once and never
    changes, so it survives every solve, commit and state swap.

    Args:
        K_el: the elastic reduced stiffness (a copy is kept).
        bc: name of the boundary condition it was built for.
        petsc_options_prefix: prefix of its LU KSP's options.
    """

    def __init__(self, K_el: PETSc.Mat, bc: str, petsc_options_prefix: str) -> None:
        t0 = time.perf_counter()
        self.A = K_el.copy()
        self.bc = bc
        self.norm = _frobenius_norm(self.A)
        self.ksp = create_ksp(self.A, "direct", petsc_options_prefix)
        self.setup_time = time.perf_counter() - t0
        self.applications = 0

    def matches(self, K_el: PETSc.Mat, bc: str) -> bool:
        """Whether this factorization belongs to an RVE with elastic reduced stiffness K_el."""
        if bc != self.bc or K_el.getSizes() != self.A.getSizes():
            return False
        return abs(_frobenius_norm(K_el) - self.norm) <= 1e-12 * self.norm

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """PETSc python-PC interface: y = K_el⁻¹ x."""
        self.ksp.solve(x, y)
        self.applications += 1


class ConstrainedNewtonPC:
    """Newton step of the bordered SUBC system with the multiplier eliminated: y = Π J⁻¹ b.

    [J −Gᵀ; G 0] [dx; dλ] = [b; 0] gives dx = (I − X S⁻¹ G) J⁻¹ b with X = J⁻¹ Gᵀ (one
    back-substitution per constraint row and Jacobian, :class:`SchurComplement`). The step lies
    in ker G and does not depend on λ, so Newton runs on x alone (SNES with its line search).

    Args:
        inner: the KSP that solves with J (finite strain: with its sparse part J_p).
        schur: the Schur complement of the constraint rows, refactored with each Jacobian.
        version: the Jacobian's current version (tags the factored Schur complement).
        rotations: under finite strain, the eliminated rotations whose low-rank update turns
            J_p⁻¹ into J⁻¹ (None: J is the sparse matrix itself).
    """

    def __init__(
        self,
        inner: PETSc.KSP,
        schur: SchurComplement,
        version: Callable[[], int],
        rotations: RotationElimination | None = None,
    ) -> None:
        self.inner, self.schur, self._version = inner, schur, version
        self.rotations = rotations
        self.failed = False
        self.warm_start = False  # Krylov inner solver: start X from the last Jacobian's

    def _inner_solve(self, b: PETSc.Vec, y: PETSc.Vec) -> None:
        """One inner solve y = J_p⁻¹ b (the sparse part); a failure is remembered and raised."""
        self.inner.solve(b, y)
        if self.inner.getConvergedReason() < 0:  # type: ignore[operator]  # an int at run time
            self.failed = True
            raise SolverError("RVE linear solve (SUBC inner) failed")

    def solve(self, b: PETSc.Vec, y: PETSc.Vec) -> None:
        """Solve y = J⁻¹ b with the inner solver; a failure is remembered and raised."""
        if self.rotations is None:
            self._inner_solve(b, y)
        else:
            self.rotations.solve(self._inner_solve, b, y)

    def factor(self, J: PETSc.Mat) -> None:
        """X = J⁻¹ Gᵀ and S = G X for the Jacobian J (finite strain: its sparse part)."""
        self.inner.setOperators(J)
        self.inner.setInitialGuessNonzero(self.warm_start)
        try:
            if self.rotations is not None:
                self.rotations.factor(self._inner_solve)
            self.schur.factor(self.solve, self._version())
        finally:
            self.inner.setInitialGuessNonzero(False)

    def constrained_solve(self, b: PETSc.Vec, y: PETSc.Vec) -> None:
        """Solve y = Π J⁻¹ b, the y of the bordered system [J −Gᵀ; G 0] [y; μ] = [b; 0].

        After :meth:`factor`.
        """
        self.solve(b, y)
        self.schur.project(y)

    def setUp(self, pc: PETSc.PC) -> None:
        """PETSc python-PC interface: factor for the new operator."""
        self.factor(pc.getOperators()[1])

    def apply(self, pc: PETSc.PC, b: PETSc.Vec, y: PETSc.Vec) -> None:
        """PETSc python-PC interface: the constrained Newton step."""
        self.constrained_solve(b, y)


@dataclass
class NewtonLinearSolver:
    """The configured linear solvers of one RVE problem.

    Attributes:
        strategy: ``"direct"`` or ``"shared_elastic"``.
        elastic: the shared elastic factorization (``"shared_elastic"`` only).
        constrained: the SUBC Newton PC (SUBC only).
        tangent_ksp: the KSP of the tangent's corrector solves.
        user_atol: whether the user set ``snes_atol`` (else the problem scales it).
    """

    strategy: str
    elastic: ElasticFactorization | None
    constrained: ConstrainedNewtonPC | None
    tangent_ksp: PETSc.KSP
    user_atol: bool

    def tangent_solve(self) -> LinearSolve:
        """``solve(b, x)`` with the tangent's KSP, raising SolverError on failure."""
        ksp = self.tangent_ksp

        def solve(b: PETSc.Vec, x: PETSc.Vec) -> None:
            ksp.solve(b, x)
            if ksp.getConvergedReason() < 0:  # type: ignore[operator]  # an int at run time
                raise SolverError("RVE tangent condensation: the linear solve failed")

        return solve


def configure_newton(
    snes: PETSc.SNES,
    J: PETSc.Mat,
    strategy: str,
    petsc_options_prefix: str,
    petsc_options: Mapping[str, object] | None,
    schur: SchurComplement | None,
    jacobian_version: Callable[[], int],
    bc: str,
    elastic_factorization: ElasticFactorization | None,
    rotations: RotationElimination | None = None,
) -> NewtonLinearSolver:
    """Set ``snes`` up with fe2x's defaults for ``strategy`` and the user's options.

    ``J`` must hold the elastic reduced stiffness when ``"shared_elastic"`` builds its own
    factorization (right after set-up). Under SUBC (``schur`` given) the ksp/pc options go to
    the inner solver of J (prefix ``<prefix>inner_``). ``jacobian_version`` must not keep
    its owner alive (PETSc holds the PC contexts in C; see ``petsc_setup.weak_method``).
    ``rotations``: the finite-strain SUBC's eliminated rotations (its PC then solves with the
    full J by their low-rank update).
    """
    if strategy not in LINEAR_SOLVERS:
        allowed = ("auto", *LINEAR_SOLVERS)
        raise ValueError(f"unknown linear_solver {strategy!r}; allowed: {allowed}")
    if elastic_factorization is not None and strategy != "shared_elastic":
        raise ValueError("elastic_factorization is only used with 'shared_elastic'")
    elastic = None
    if strategy == "shared_elastic":
        elastic = _shared_elastic(J, bc, petsc_options_prefix, elastic_factorization)
    defaults = dict(DEFAULT_OPTIONS)
    if J.getComm().size == 1 and J.getSize()[0] < SMALL_DIRECT_MAX_DOFS:
        defaults["pc_factor_mat_solver_type"] = "petsc"
    if elastic is not None:
        for key in ("ksp_type", "pc_type", "pc_factor_mat_solver_type"):
            defaults.pop(key)
        defaults.update(KRYLOV_OPTIONS)
    merged = merged_options(petsc_options_prefix, defaults, petsc_options)
    user_atol = "snes_atol" in merged or PETSc.Options().hasName(f"{petsc_options_prefix}snes_atol")
    linear_prefix = f"{petsc_options_prefix}inner_" if schur is not None else petsc_options_prefix
    options = {
        f"{linear_prefix if key.startswith(('ksp_', 'pc_')) else petsc_options_prefix}{key}": v
        for key, v in merged.items()
    }
    constrained = None
    with pushed(options):
        snes.setFromOptions()
        linear = snes.getKSP()
        if schur is not None:
            linear.setType("preonly")
            inner = PETSc.KSP().create(snes.getComm())
            inner.setOptionsPrefix(linear_prefix)
            inner.setFromOptions()
            constrained = ConstrainedNewtonPC(inner, schur, jacobian_version, rotations)
            linear.getPC().setType("python")
            linear.getPC().setPythonContext(constrained)
            linear = inner
        else:
            linear.setFromOptions()
        if elastic is not None:
            linear.getPC().setType("python")
            linear.getPC().setPythonContext(elastic)
    tangent_ksp = snes.getKSP() if constrained is None else constrained.inner
    if elastic is not None and constrained is not None:
        constrained.warm_start = True
    elif elastic is not None:
        tangent_ksp = _warm_tangent_ksp(snes, J, elastic)
    return NewtonLinearSolver(strategy, elastic, constrained, tangent_ksp, user_atol)


def _shared_elastic(
    J: PETSc.Mat, bc: str, prefix: str, given: ElasticFactorization | None
) -> ElasticFactorization:
    """The given elastic factorization if it fits ``J`` and ``bc``, else a new one of ``J``."""
    if given is None:
        return ElasticFactorization(J, bc, f"{prefix}elastic_")
    if not given.matches(J, bc):
        raise Fe2xError(
            "elastic_factorization belongs to another microstructure, boundary "
            "condition, degree or elastic moduli"
        )
    return given


def _warm_tangent_ksp(snes: PETSc.SNES, J: PETSc.Mat, elastic: ElasticFactorization) -> PETSc.KSP:
    """A Krylov solver of the tangent correctors preconditioned by the elastic factorization.

    Its own KSP: the SNES's carries Eisenstat–Walker's loose tolerances (a pre-solve hook),
    and this one starts from the last correctors.
    """
    newton_ksp = snes.getKSP()
    ksp = PETSc.KSP().create(snes.getComm())
    ksp.setOperators(J)
    ksp.setType(newton_ksp.getType())
    ksp.setNormType(newton_ksp.getNormType())
    ksp.setTolerances(*newton_ksp.getTolerances())
    ksp.getPC().setType("python")
    ksp.getPC().setPythonContext(elastic)
    ksp.setInitialGuessNonzero(True)
    return ksp
