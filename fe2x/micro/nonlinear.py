"""The nonlinear RVE as a micro model: history, substepping, shortcut and portable state.

:class:`NonlinearRVE` keeps the committed and trial history of one macro point (the laws'
states and the fluctuation; packed by :mod:`fe2x.micro.rve_state`), solves an increment with
:class:`~fe2x.micro.rve_problem.RVEProblem` (retrying in substeps when it fails,
:mod:`fe2x.micro.substepping`), answers virgin points by the exact elastic shortcut
(:mod:`fe2x.micro.elastic_shortcut`), moves its state between partitions
(:mod:`fe2x.micro.portable_state`) and shows it (:mod:`fe2x.micro.rve_outputs`). It
implements the micro-model contract of :mod:`fe2x.micro.model` and its optional capabilities.
With finite-strain laws its "E" is the macro deformation gradient F̄ (row-major), Σ is P̄ and C
is dP̄/dF̄, and it reports the micro-instability diagnostic ``micro_stability``
(:mod:`fe2x.micro.stability`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
from dolfinx import fem

from fe2x.errors import Fe2xError
from fe2x.fem.quadrature_laws import PhaseStates
from fe2x.geometry import RVEMesh
from fe2x.materials.law import ConstitutiveLaw
from fe2x.micro import portable_state, rve_outputs
from fe2x.micro.cell_fields import committed_cell_fields
from fe2x.micro.constraints import BoundaryCondition, boundary_condition
from fe2x.micro.elastic_shortcut import ElasticLocalization
from fe2x.micro.linear_solvers import ElasticFactorization
from fe2x.micro.model import RVEResult
from fe2x.micro.rve_problem import RVEProblem, kinematics_of
from fe2x.micro.rve_state import packed_state, unpacked_state
from fe2x.micro.snapshot_rows import canonical_rows
from fe2x.micro.substepping import Increment, substepped_increment
from fe2x.petsc_setup import unique_prefix

__all__ = ["STABILITY", "NonlinearRVE"]

logger = logging.getLogger(__name__)

#: Name of the micro-instability diagnostic: λ_min of the reduced Jacobian over its virgin value.
STABILITY = "micro_stability"


def _hill_mandel(Sigma: np.ndarray, mean_strain: np.ndarray, energy: float) -> float:
    """The Hill–Mandel defect |⟨σ : ε⟩ − Σ : ⟨ε⟩| / (|Σ| |⟨ε⟩|)."""
    denominator = max(np.linalg.norm(Sigma) * np.linalg.norm(mean_strain), 1e-300)
    return float(abs(energy - Sigma @ mean_strain) / denominator)


def _failed(n: int, step: Increment) -> RVEResult:
    """The answer to an increment that failed: Σ and C NaN, with the attempts' account."""
    nan = np.full(n, np.nan)
    return RVEResult(
        nan, np.full((n, n), np.nan), np.nan, False, step.reason, step.iterations, step.histories
    )


class NonlinearRVE:
    """An RVE with a constitutive law per phase, solved by Newton on the fluctuation.

    Set up once; then ``solve(E, dt)`` on a trial history, ``commit()``, and
    ``get_state()``/``set_state()`` to swap the history of one macro point for another.

    Args:
        cell: mesh, phase tags and box of the cell.
        materials: phase name -> constitutive law (:mod:`fe2x.materials.law`; 2D is plane
            strain), all small-strain or all finite-strain.
        bc: boundary condition, a name of :data:`fe2x.registry.BOUNDARY_CONDITIONS` or an object.
        degree: Lagrange degree of the displacement.
        petsc_options_prefix: prefix of this RVE's SNES/KSP options (default: a unique
            ``fe2x_rve_<k>_``).
        petsc_options: SNES/KSP options overriding fe2x's defaults
            (:mod:`fe2x.micro.linear_solvers`).
        max_cutbacks: an increment that fails is retried in 2, 4, ... 2**max_cutbacks substeps.
        linear_solver: ``"direct"`` (factorize each Jacobian) or ``"shared_elastic"`` (Krylov
            preconditioned by one elastic LU).
        elastic_factorization: with ``"shared_elastic"``, the factorization of another RVE of
            the same microstructure to reuse (:attr:`elastic_factorization`).
        stability: report the micro-instability diagnostic ``micro_stability`` of every
            converged solve (one eigen-solve each); default: for finite-strain laws under
            PBC or KUBC.
    """

    def __init__(
        self,
        cell: RVEMesh,
        materials: Mapping[str, ConstitutiveLaw],
        bc: str | BoundaryCondition = "periodic",
        degree: int = 2,
        petsc_options_prefix: str | None = None,
        petsc_options: Mapping[str, object] | None = None,
        max_cutbacks: int = 4,
        linear_solver: str = "direct",
        elastic_factorization: ElasticFactorization | None = None,
        stability: bool | None = None,
    ) -> None:
        self._prefix = petsc_options_prefix or unique_prefix("fe2x_rve")
        if stability is None:
            constrained = boundary_condition(bc).mean_strain_constraint
            stability = kinematics_of(materials) == "finite" and not constrained
        self.problem = RVEProblem(
            cell,
            materials,
            bc,
            degree,
            self._prefix,
            petsc_options,
            linear_solver,
            elastic_factorization,
            stability,
        )
        self.materials = dict(materials)
        self.max_cutbacks = int(max_cutbacks)
        P = self.problem.P
        self._x = P.createVecRight()
        self._x_committed = self._x.copy()
        self._E_committed = self.problem.identity.copy()
        self._stability = (1.0, np.nan)  # (committed, trial): λ_min / λ_ref, 1 when virgin
        self._trial: PhaseStates | None = None
        self._E_trial: np.ndarray | None = None
        self._dt = 0.0
        self._localization: ElasticLocalization | None = None
        self._dg0: fem.FunctionSpace | None = None
        self._snapshot_rows: np.ndarray | None = None
        logger.debug(
            "NonlinearRVE: %d dofs, %d reduced, %d quadrature points per cell, phases %s",
            self.n_dofs,
            self.n_reduced,
            self.problem.rule.n_q,
            {name: type(m).__name__ for name, m in self.materials.items()},
        )

    # -- what the problem exposes ----------------------------------------------------------
    @property
    def comm(self) -> MPI.Comm:
        """Communicator of the cell's mesh."""
        return self.problem.comm

    @property
    def cell(self) -> RVEMesh:
        """The meshed cell."""
        return self.problem.cell

    @property
    def dim(self) -> int:
        """Spatial dimension (2: plane strain)."""
        return self.problem.dim

    @property
    def n_strain(self) -> int:
        """Components of E: Mandel 3 (2D) or 6 (3D); finite strain F̄ row-major, 4 or 9."""
        return self.problem.n_strain

    @property
    def kinematics(self) -> str:
        """``"small"`` (E Mandel strain, Σ Cauchy stress) or ``"finite"`` (F̄, P̄, dP̄/dF̄)."""
        return self.problem.kinematics

    @property
    def snes(self) -> PETSc.SNES:
        """The Newton solver on the reduced fluctuation."""
        return self.problem.snes

    @property
    def ksp(self) -> PETSc.KSP:
        """The SNES's linear solver."""
        return self.problem.ksp

    @property
    def linear_ksp(self) -> PETSc.KSP:
        """The KSP that solves with J (for SUBC the inner one)."""
        return self.problem.linear_ksp

    @property
    def J(self) -> PETSc.Mat:
        """Reduced Jacobian Pᵀ K_alg P."""
        return self.problem.J

    @property
    def P(self) -> PETSc.Mat:
        """Prolongation u_fluct = P x."""
        return self.problem.P

    @property
    def elastic_factorization(self) -> ElasticFactorization | None:
        """The shared elastic LU of ``linear_solver="shared_elastic"`` (None otherwise)."""
        return self.problem.solver.elastic

    @property
    def n_dofs(self) -> int:
        """Global number of displacement dofs (before the constraint)."""
        return self.problem.n_dofs

    @property
    def n_reduced(self) -> int:
        """Global number of free fluctuation dofs."""
        return self.problem.n_reduced

    @property
    def volume(self) -> float:
        """|Ω|."""
        return self.problem.volume

    @property
    def timings(self) -> dict[str, float]:
        """Seconds spent in set-up ("forms", "constraints", ...), residuals, Jacobians, tangents."""
        return self.problem.timings

    @property
    def time_per_iteration(self) -> float:
        """Mean wall time of one Newton iteration so far (s)."""
        return self.problem.time_per_iteration

    @property
    def E_committed(self) -> np.ndarray:
        """Macro strain of the committed state."""
        return self._E_committed.copy()

    def volume_fractions(self) -> dict[str, float]:
        """Volume fraction of each phase in the meshed cell, by quadrature (collective).

        With straight-sided elements a coarse mesh holds visibly less of a curved inclusion.
        """
        return rve_outputs.volume_fractions(self.problem)

    def describe(self) -> dict[str, Any]:
        """What the run log and summary say of this model: dofs, volume fractions, kinematics.

        The volume fractions are the realized ones.
        """
        return {
            "dofs": self.n_dofs,
            "volume_fractions": self.volume_fractions(),
            "kinematics": self.kinematics,
        }

    # -- the micro-model contract ----------------------------------------------------------
    def set_time_increment(self, dt: float) -> None:
        """The next increments last ``dt`` (rate-dependent laws; others ignore it)."""
        self._dt = float(dt)

    def solve(self, E: Any, dt: float | None = None) -> RVEResult:
        """Σ and dΣ/dE at macro strain ``E`` from the committed history, over the time ``dt``.

        ``E`` is Mandel; under finite strain F̄ row-major, giving P̄ and dP̄/dF̄. ``dt``
        defaults to the one set by :meth:`set_time_increment`, initially 0.

        The trial history is kept until :meth:`commit`. A failed increment is retried in
        2, 4, ... substeps from the committed strain; if all fail, ``converged`` is False.
        """
        dt = self._dt if dt is None else float(dt)
        n = self.n_strain
        E = np.asarray(E, dtype=float).reshape(n)
        step = substepped_increment(
            self.problem, self._x, self._x_committed, self._E_committed, E, dt, self.max_cutbacks
        )
        if not step.converged:
            logger.warning("RVE increment to E = %s failed: %s", E.tolist(), step.reason)
            self._trial, self._E_trial = None, None
            self._x_committed.copy(self._x)
            return _failed(n, step)
        reason = f"converged in {step.n_sub} substeps" if step.n_sub > 1 else step.reason
        self._trial, self._E_trial = step.state, E.copy()
        Sigma, mean_strain, energy = self.problem.averages(self._x)
        C = self.problem.tangent()
        if self.problem.stability is not None:
            self._stability = (self._stability[0], self.problem.lowest_eigenvalue())
        hill_mandel = _hill_mandel(Sigma, mean_strain, energy)
        return RVEResult(Sigma, C, hill_mandel, True, reason, step.iterations, step.histories)

    def solve_from(self, E: Any, trial: Mapping[str, Any]) -> RVEResult:
        """As :meth:`solve`, the Newton started from the fluctuation of an earlier answer.

        ``trial`` is a state of :meth:`get_state` after a solve from the same committed
        history (an earlier macro iteration of this step): the answer is the same to the
        Newton tolerance, in fewer iterations. Substeps after a failure restart from the
        committed fluctuation. Successive answers of a point then start from different places,
        so their errors (within the Newton tolerance) no longer vary smoothly with E: a macro
        Newton's residual stalls near 1e-13 of its first value (cold starts: near 1e-15), far
        below its tolerance.
        """
        x = np.asarray(trial["x"])
        if x.shape != (self._x.getLocalSize(),):
            raise Fe2xError(f"trial state with {x.shape} fluctuation dofs does not fit this RVE")
        self._x.array[:] = x
        return self.solve(E)

    def commit(self) -> None:
        """Make the last converged trial history (and fluctuation) the committed one."""
        if self._trial is None:
            raise Fe2xError("nothing to commit: no converged solve since the last commit")
        assert self._E_trial is not None, "set together with _trial"
        self.problem.laws.committed = self._trial
        self._E_committed = self._E_trial
        self._x.copy(self._x_committed)
        self._stability = (self._stability[1], np.nan)
        self._trial, self._E_trial = None, None

    def get_state(self) -> dict[str, Any]:
        """The committed state, in plain numpy (serialisable).

        ``E``, fluctuation dofs ``x`` (this rank's part) and ``history`` (phase -> its points'
        law state packed as ``(m, width)`` by :func:`~fe2x.materials.law.pack_state`, for the
        phases whose law has a state).
        """
        return packed_state(self.problem.laws, self._E_committed, self._x_committed.array_r)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Install a state made by :meth:`get_state` as the committed one (trial dropped)."""
        laws = self.problem.laws
        committed, E, x = unpacked_state(laws, state, self._x.getLocalSize(), self.n_strain)
        laws.committed = committed
        self._E_committed = E
        self._x_committed.array[:] = x
        self._x_committed.copy(self._x)
        self._stability = (np.nan, np.nan)  # not part of the state: known after a solve
        self._trial, self._E_trial = None, None

    # -- capability: fluctuation snapshots (training data) ---------------------------------
    @property
    def fluctuation_rows(self) -> tuple[int, np.ndarray]:
        """The global count of reduced fluctuation dofs and the canonical row of each local one.

        The rows are partition-independent (:mod:`fe2x.micro.snapshot_rows`); collective the
        first time.
        """
        if self._snapshot_rows is None:
            self._snapshot_rows = canonical_rows(self.problem)
        return self.n_reduced, self._snapshot_rows

    def fluctuation(self, state: Mapping[str, Any]) -> np.ndarray:
        """This rank's reduced fluctuation dofs x of ``state`` (of :meth:`get_state`)."""
        return np.asarray(state["x"])

    # -- capability: partition-independent states (checkpoints) ----------------------------
    def state_layout(self) -> dict[str, Any]:
        """Where this rank's part of a state lies (see :mod:`fe2x.micro.portable_state`)."""
        return portable_state.state_layout(self.problem)

    def portable_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state`` with the fluctuation at the owned nodes (collective)."""
        return portable_state.portable_state(self.problem, state)

    def state_importer(
        self, layouts: Sequence[Mapping[str, Any]]
    ) -> Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]:
        """From the portable pieces of another partition to this rank's state (collective)."""
        return portable_state.state_importer(self.problem, layouts)

    # -- capability: the exact elastic shortcut --------------------------------------------
    @property
    def C_elastic(self) -> np.ndarray:
        """C_el: the homogenized stiffness of the virgin (all-elastic) RVE.

        Collective on the first call, which builds the elastic localization.
        """
        return self._elastic_localization().C.copy()

    def _elastic_localization(self) -> ElasticLocalization:
        if self._localization is None:
            self._localization = ElasticLocalization(
                self.problem, f"{self._prefix}elastic_shortcut_"
            )
        return self._localization

    def stays_elastic(self, E: np.ndarray) -> np.ndarray:
        """For macro strains E ``(m, n)``: whether the virgin RVE answers each by C_el E exactly.

        All False when a law cannot tell. One collective.
        """
        E = np.atleast_2d(np.asarray(E, dtype=float))
        if not self.problem.laws.has_elastic_limit:
            return np.zeros(E.shape[0], dtype=bool)
        return self._elastic_localization().stays_elastic(E)

    def elastic_shortcut(self, E: Any) -> RVEResult | None:
        """The answer of a virgin RVE at ``E`` without Newton, or None if any point would yield.

        None as well if a law cannot tell. It ignores and never changes the committed or trial
        state: it answers for a point that has never been solved. Collective.
        """
        if not self.problem.laws.has_elastic_limit:
            return None
        return self._elastic_localization().answer(E)

    # -- capability: diagnostics and micro fields ------------------------------------------
    @property
    def diagnostic_names(self) -> tuple[str, ...]:
        """Names of the scalar diagnostics :meth:`diagnostics` reports.

        The laws' outputs, and :data:`STABILITY` when it is computed.
        """
        stability = (STABILITY,) if self.problem.stability is not None else ()
        return (*self.problem.laws.output_names, *stability)

    def diagnostics(self) -> dict[str, float]:
        """The RVE volume average of each output field of the committed state (collective).

        When computed, also :data:`STABILITY` of the last committed solve (NaN after
        :meth:`set_state` until the next one; 1 for the virgin cell).
        """
        values = rve_outputs.output_averages(self.problem)
        if self.problem.stability is not None:
            values[STABILITY] = float(self._stability[0])
        return values

    @property
    def mean_equivalent_plastic_strain(self) -> float:
        """Volume average of the committed equivalent plastic strain (0 without one)."""
        return self.diagnostics().get("equivalent_plastic_strain", 0.0)

    def displacement(self) -> fem.Function:
        """The committed micro displacement u = (E − E₀)·(y − y_c) + P x (collective).

        E₀ is the undeformed measure (Mandel: the strain tensor; finite strain: F̄ − I). A new
        function of the displacement space (e.g. to show the deformed or buckled cell).
        """
        return rve_outputs.micro_displacement(self.problem, self._x_committed, self._E_committed)

    def instability_mode(self) -> tuple[float, fem.Function]:
        """The lowest eigenpair of the reduced Jacobian of the last solve (collective).

        :data:`STABILITY` and the fluctuation P x of its eigenvector, scaled to max |w| = 1 (the
        shape in which the cell buckles when the value reaches 0).
        """
        return rve_outputs.instability_mode(self.problem)

    def micro_fields(self) -> dict[str, fem.Function]:
        """Cell-wise (DG0) fields of the committed state, for output (e.g. ParaView).

        Every output field of the laws and the von Mises stress
        (:func:`~fe2x.micro.cell_fields.committed_cell_fields`). New functions on every call.
        Collective.
        """
        if self._dg0 is None:
            self._dg0 = fem.functionspace(self.cell.mesh, ("DG", 0))
        return committed_cell_fields(self.problem, self._x_committed, self._E_committed, self._dg0)
