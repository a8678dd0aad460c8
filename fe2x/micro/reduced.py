"""The reduced RVE as a micro model: POD-Galerkin, empirical cubature, certified fallback.

Galerkin projection on a POD basis, the laws evaluated at the empirical cubature points only,
and each converged step's answers certified, with a fallback to the full RVE.

With the basis Φ ``(n_reduced, r)`` of the reduced fluctuation (x = Φ q) and the cubature
``{(z_k, ω_k)}`` (:class:`~fe2x.io.reduced_basis.ReducedBasis`), the RVE equations become r
equations at m points, with A_k = (B Φ)(z_k) ``(n, r)`` the strain of the modes at point z_k:

- ε_k = E + A_k q, σ_k and C_k from the laws at z_k (a :class:`QuadratureLaws` on these points);
- residual r(q) = Σ_k ω_k A_kᵀ σ_k = Φᵀ R(Φ q) integrated by the cubature, Jacobian
  J = Σ_k ω_k A_kᵀ C_k A_k; Newton on q;
- Σ = Σ_k ω_k σ_k / |Ω| and the consistent tangent condensed like the full one (reduced
  correctors): C = (Σ_k ω_k C_k − H J⁻¹ G) / |Ω| with G = Σ_k ω_k A_kᵀ C_k and
  H = Σ_k ω_k C_k A_k, the exact derivative of Σ(E), so the macro Newton stays quadratic.

Hill–Mandel holds by the Galerkin projection: ⟨σ : ε⟩ − Σ · E = qᵀ r(q) / |Ω| = 0 at the
converged q (averages by the cubature; E is the macro strain by construction).

Error control, once per converged step (:class:`~fe2x.micro.model.Certified`): :meth:`solve`
runs the reduced Newton only, and its trial state records how to lift the answer (the substeps
(E_i, q_i, dt_i) and the committed full history it started from; arrays are never modified in
place, so a reference suffices). Before the step is committed, :meth:`certify` lifts it,
u = E·y + P Φ q, updates the laws at *all* quadrature points along the substeps and assembles
the full residual R = Pᵀ ∫ σ : ε(v) dy. The indicator is the change of Σ that one full Newton
step from there would make, to first order:

    ΔΣ ≈ (Σ_h − Σ) + ⟨C_T ε(P δ)⟩,   J_T δ = −R,

with Σ_h the full-rule average of the lifted stress (the cubature's error) and δ from a few
conjugate-gradient steps on the matrix-free tangent J_T = Pᵀ K(C_T) P, preconditioned by the
elastic J_el factorized once at set-up. η = ‖ΔΣ‖ / ‖σ‖_rms, relative to the RMS micro stress
√⟨σ : σ⟩ (|Σ| for a uniform stress; meaningful where Σ passes through zero; floored at
10⁻⁸ ‖⟨C_el⟩‖ ‖E‖, below which stresses are round-off). Why not ‖R‖: a
committed reduced state is not in full equilibrium, and its residual persists through elastic
steps whose Σ the basis (holding the elastic correctors) gives exactly; ‖R‖ then ranks the
errors of Σ badly (Spearman 0.58 against 0.97 on the plate cell), where ΔΣ sees that
C_el-weighted corrections of that residual leave Σ unchanged. κ η, with the effectivity κ
calibrated on the training data, bounds the relative error of Σ. Above the tolerance the point
is rejected: the caller solves the step again with that point answered by :meth:`solve_full`,
the full RVE from the same committed state. For ‖E‖ beyond the training range, or when the
reduced Newton fails, :meth:`solve` itself answers by the full RVE.

The fallback needs the point's full history, so every committed state holds it: the full RVE's
(fluctuation x and every point's law state) plus q and the reduced Newton's own law state at
the cubature points (from which the next increment starts, so that the reduced path does not
depend on when it is lifted). An evaluation costs the reduced Newton only, O(m r² n),
independent of the mesh; a certification, once per step and point, one law update at all
points per substep and, per CG step, one elastic back-substitution and two sparse products.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.io.reduced_basis import ReducedBasis, read_reduced_basis
from fe2x.materials.law import pack_state, unpack_state
from fe2x.micro.model import RVEResult
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.reduced_equations import ReducedEquations
from fe2x.micro.reduced_indicator import INDICATOR_STEPS, StressChangeIndicator
from fe2x.micro.reduced_operators import energy_inner_product, mode_strains, stress_rms
from fe2x.micro.reduced_provenance import check_provenance, rve_provenance

__all__ = [
    "DIAGNOSTICS",
    "ReducedRVE",
    "check_provenance",
    "energy_inner_product",
    "mode_strains",
    "rve_provenance",
    "stress_rms",
]

logger = logging.getLogger(__name__)

#: The reduced model's own diagnostics: whether the last evaluation fell back (0 or 1), and its
#: error indicator η.
DIAGNOSTICS = ("rom_fallback", "rom_indicator")

#: Stresses below this times ⟨C_el⟩ ‖E‖ are round-off: the indicator's (and errors') floor.
STRESS_FLOOR = 1e-8

#: The keys of an uncertified state's substeps (E_i, q_i, dt_i) from its base history.
SUBSTEPS = ("E_steps", "q_steps", "dt_steps")


class ReducedOutcome(NamedTuple):
    """What the last evaluation did: indicator, fallback, reduced Newton iterations.

    The indicator η (NaN if not computed), the fallback's reason ("" if the reduced answer was
    kept), and the reduced Newton iterations.
    """

    indicator: float
    fallback: str
    iterations: int


def _indicator_tolerance(
    rve: NonlinearRVE,
    basis: ReducedBasis,
    tolerance: float | None,
    indicator_tolerance: float | None,
    strain_range: float | None,
    source: str,
) -> float | None:
    """The threshold on η, once the RVE, the basis and the tolerances are checked.

    Arguments as for :class:`ReducedRVE`.
    """
    p = rve.problem
    if p.comm.size != 1:
        raise Fe2xError(
            "a reduced RVE runs on one rank per RVE group: set [parallel] group_size = 1"
        )
    check_provenance(basis.provenance, rve_provenance(rve), source)
    if p.bc.mean_strain_constraint:
        raise Fe2xError(f"reduced RVEs support the periodic and kubc conditions, not {p.bc.name}")
    for name, value in (("tolerance", tolerance), ("indicator_tolerance", indicator_tolerance)):
        if value is not None and not value > 0:
            raise Fe2xError(f"reduced RVE: {name} = {value!r} must be > 0")
    if strain_range is not None and not strain_range > 0:
        raise Fe2xError(f"reduced RVE: strain_range = {strain_range!r} must be > 0")
    if indicator_tolerance is None and tolerance is not None:
        if not np.isfinite(basis.effectivity) or basis.effectivity <= 0:
            raise Fe2xError(
                f"{source} has no calibrated effectivity: give indicator_tolerance instead "
                "of tolerance"
            )
        indicator_tolerance = tolerance / basis.effectivity
    return indicator_tolerance


def _phases(states: Mapping[str, Any], names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The law states of the phases ``names``, empty for those missing (as in checkpoints)."""
    return {name: dict(states.get(name, {})) for name in names}


class ReducedRVE:
    """A hyper-reduced RVE (POD + empirical cubature) with a fallback to the full RVE.

    Set up once per microstructure and RVE group (of one rank); it implements the micro-model
    contract (:mod:`fe2x.micro.model`) with certification, the elastic shortcut, time
    increments, diagnostics (the laws' outputs, exact averages of the full history, and
    :data:`DIAGNOSTICS`), micro fields and a description. Used alone, :meth:`outcome` and
    :meth:`diagnostics` lift an uncertified answer when asked.

    Args:
        rve: the full RVE the basis was built for (it answers the fallbacks).
        basis: the basis and cubature (:func:`fe2x.io.reduced_basis.read_reduced_basis`).
        tolerance: relative error of Σ allowed per committed answer, estimated by κ η with the
            basis's effectivity κ; above it the certification rejects the answer (None: never).
        indicator_tolerance: the threshold on η itself (overrides ``tolerance``).
        strain_range: the full RVE answers when ‖E‖ exceeds this times the training data's
            largest ‖E‖ (None: no range check).
        max_iterations: reduced Newton iterations per (sub)step.
        max_cutbacks: a failing reduced increment is retried in 2, ... 2**max_cutbacks
            substeps before falling back.
        indicator_steps: most CG steps of the indicator's Newton step.
        source: the basis's name in messages (e.g. its file).
    """

    state_replicated = False

    def __init__(
        self,
        rve: NonlinearRVE,
        basis: ReducedBasis,
        tolerance: float | None = 0.01,
        indicator_tolerance: float | None = None,
        strain_range: float | None = 1.0,
        max_iterations: int = 25,
        max_cutbacks: int = 4,
        indicator_steps: int = INDICATOR_STEPS,
        source: str = "the reduced basis",
    ) -> None:
        t0 = time.perf_counter()
        p = rve.problem
        indicator_tolerance = _indicator_tolerance(
            rve, basis, tolerance, indicator_tolerance, strain_range, source
        )
        self.rve, self.basis, self.source = rve, basis, source
        self.indicator_tolerance = indicator_tolerance
        self.strain_limit = None if strain_range is None else strain_range * basis.strain_bound
        self.max_iterations, self.max_cutbacks = int(max_iterations), int(max_cutbacks)
        n = p.n_strain
        self._equations = equations = ReducedEquations(p, basis, source)
        self.Phi, self.BPhi, self.omega = equations.Phi, equations.BPhi, equations.omega
        r, m = equations.n_modes, equations.n_points
        self.n_modes, self.n_points = r, m
        self.ecm_laws = equations.ecm_laws
        # The full history is tracked by laws of their own (the full RVE's are its Newton's).
        self.full_laws = QuadratureLaws(
            p.laws.laws, p.points, p.dim, p.rule.n_points, p.laws.parameters
        )
        self.volume = p.volume
        C_el = p.laws.elastic_stiffness()
        self.stiffness_scale = float(np.linalg.norm(p.weights @ C_el.reshape(-1, n * n) / p.volume))
        self.indicator_steps = int(indicator_steps)
        M = energy_inner_product(p)
        self.MPhi = np.asarray(M @ self.Phi)
        self._error_indicator = StressChangeIndicator(p, self.full_laws, M)
        self._initial = {
            "E": np.zeros(n),
            "q": np.zeros(r),
            "x": np.zeros(p.n_reduced),
            "history": self.full_laws.initial_state(),
            "indicator": np.zeros(()),
            "fallback": np.zeros(()),
        }
        self._committed: dict[str, Any] = self._initial
        self._trial: dict[str, Any] | None = None
        self._dt = 0.0
        self._last = ReducedOutcome(np.nan, "", 0)
        self._pending: dict[str, Any] | None = None  # the last answer, if its η is not known
        #: Counts of evaluations (all, answered reduced, by the full RVE by cause: "range",
        #: "newton", "indicator" for the points rejected at certification) and of the
        #: certifications (passed, rejected).
        self.counts = dict.fromkeys(
            ("evaluations", "reduced", "range", "indicator", "newton", "certified", "rejected"), 0
        )
        self.timings = dict.fromkeys(("reduced", "certify", "fallback"), 0.0)
        self.timings["setup"] = time.perf_counter() - t0
        logger.debug(
            "ReducedRVE: %d modes, %d cubature points (of %d), η tolerance %s",
            r,
            m,
            p.rule.n_points,
            indicator_tolerance,
        )

    @classmethod
    def from_file(cls, rve: NonlinearRVE, path: Path, **kwargs: Any) -> ReducedRVE:
        """The reduced RVE of the basis file ``path`` (keywords as for the constructor)."""
        return cls(rve, read_reduced_basis(path), source=str(path), **kwargs)

    # -- what the model is -----------------------------------------------------------------
    @property
    def comm(self) -> MPI.Comm:
        """The communicator of the RVE (one rank)."""
        return self.rve.comm

    @property
    def n_strain(self) -> int:
        """Mandel components: 3 (2D) or 6 (3D)."""
        return self.rve.n_strain

    @property
    def fallbacks(self) -> int:
        """Evaluations answered by the full RVE so far."""
        return self.counts["range"] + self.counts["indicator"] + self.counts["newton"]

    def describe(self) -> dict[str, Any]:
        """The full RVE's facts and the reduction's: modes, cubature points, tolerance."""
        facts = self.rve.describe()
        facts["reduced"] = {
            "modes": self.n_modes,
            "cubature_points": self.n_points,
            "quadrature_points": self.rve.problem.rule.n_points,
            "indicator_tolerance": self.indicator_tolerance,
            "strain_limit": self.strain_limit,
            "basis": self.source,
        }
        return facts

    # -- the micro-model contract ----------------------------------------------------------
    def set_time_increment(self, dt: float) -> None:
        """The next increments last ``dt`` (rate-dependent laws; others ignore it)."""
        self._dt = float(dt)

    def solve(self, E: Any) -> RVEResult:
        """Σ and dΣ/dE at macro strain ``E`` from the committed state, by the reduced Newton.

        O(cubature points): the trial state records how to lift the answer and is complete
        once certified (:meth:`certify`). The full RVE answers beyond the training range and
        where the reduced Newton fails (see the module notes). The Newton starts from the
        last trial answer since the commit, else the committed one, moved to E by its tangent
        predictor q + (dq/dE) (E − E_q) where it has one (as the full RVE starts from its last
        fluctuation).
        """
        E = np.asarray(E, dtype=float).reshape(self.n_strain)
        latest = self._committed if self._trial is None else self._trial
        return self._solve(E, self._predictor(latest, E))

    def solve_from(self, E: Any, trial: Mapping[str, Any]) -> RVEResult:
        """As :meth:`solve`, the Newton started from an earlier answer of this step.

        ``trial`` is a state of :meth:`get_state` after a solve from the same committed state;
        its q, moved by its tangent predictor to ``E``, is the first guess (the answer is the
        same to the Newton tolerance, in fewer iterations).
        """
        E = np.asarray(E, dtype=float).reshape(self.n_strain)
        return self._solve(E, self._predictor(trial, E))

    @staticmethod
    def _predictor(state: Mapping[str, Any], E: np.ndarray) -> np.ndarray | None:
        """The reduced coordinates of ``state`` moved to ``E`` by its dq/dE (None: it has none)."""
        if "dq_dE" not in state:
            return None
        return np.asarray(state["q"]) + np.asarray(state["dq_dE"]) @ (E - np.asarray(state["E"]))

    def _solve(self, E: np.ndarray, guess: np.ndarray | None) -> RVEResult:
        """The reduced answer at ``E`` from the committed state, Newton from ``guess``."""
        self.counts["evaluations"] += 1
        committed = self._committed
        norm = float(np.linalg.norm(E))
        if self.strain_limit is not None and not norm <= self.strain_limit:
            return self._fallback(E, "range", f"|E| = {norm:.3e} beyond the training range", np.nan)
        t0 = time.perf_counter()
        start = committed.get("cubature")
        if start is None:  # a full history: the initial state, or a full RVE's answer
            start = self._equations.start(committed["history"])
        reduced = self._equations.increment(
            E,
            committed["E"],
            committed["q"],
            start,
            self._dt,
            self.max_iterations,
            self.max_cutbacks,
            guess,
        )
        self.timings["reduced"] += time.perf_counter() - t0
        if reduced is None:
            return self._fallback(E, "newton", "the reduced Newton did not converge", np.nan)
        steps: tuple[np.ndarray, ...] = (reduced.E_steps, reduced.q_steps, reduced.dt_steps)
        if "base" in committed:  # committed uncertified: lifted later along both increments
            base = committed["base"]
            steps = tuple(
                np.concatenate([committed[k], v]) for k, v in zip(SUBSTEPS, steps, strict=True)
            )
        else:
            base = committed["history"]
        self._trial = {
            "E": E.copy(),
            "q": reduced.q_steps[-1],
            "dq_dE": reduced.dq_dE,
            "Sigma": reduced.Sigma,
            "floor": np.asarray(self.stress_floor(E)),
            **dict(zip(SUBSTEPS, steps, strict=True)),
            "base": base,
            "cubature": reduced.cubature,
            "indicator": np.asarray(np.nan),
            "fallback": np.zeros(()),
        }
        self._pending = self._trial
        self.counts["reduced"] += 1
        self._last = ReducedOutcome(np.nan, "", reduced.iterations)
        k = reduced.dt_steps.size
        reason = "reduced" if k == 1 else f"reduced in {k} substeps"
        return RVEResult(
            reduced.Sigma,
            reduced.C,
            reduced.hill_mandel,
            True,
            reason,
            reduced.iterations,
            reduced.histories,
        )

    def certify(self, state: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Lift a trial state to all points and compare its indicator η with the tolerance.

        Returns (η ≤ tolerance, the lifted state with its full history and η); a state that
        holds a full history already (a full RVE's answer, or lifted) passes as it is. A law
        failing on the lifted solution rejects it with η = NaN.
        """
        if "base" not in state:
            return True, dict(state)
        t0 = time.perf_counter()
        lifted, indicator = self._lift(state)
        self.timings["certify"] += time.perf_counter() - t0
        tol = self.indicator_tolerance
        ok = lifted is not None and (tol is None or indicator <= tol)
        self.counts["certified" if ok else "rejected"] += 1
        if lifted is None:
            return False, dict(state)
        return ok, lifted

    def solve_full(self, E: Any, rejected: Mapping[str, Any]) -> RVEResult:
        """The full RVE's Σ and dΣ/dE at ``E`` from the committed state (a rejected point).

        ``rejected`` is the trial state :meth:`certify` refused; its η is kept as the answer's
        ``rom_indicator``.
        """
        E = np.asarray(E, dtype=float).reshape(self.n_strain)
        self.counts["evaluations"] += 1
        indicator = float(rejected["indicator"])
        why = (
            f"rejected at certification: indicator {indicator:.2e} > {self.indicator_tolerance:.2e}"
            if np.isfinite(indicator) and self.indicator_tolerance is not None
            else "rejected at certification: a law failed on the lifted solution"
        )
        return self._fallback(E, "indicator", why, indicator)

    def outcome(self) -> ReducedOutcome:
        """What the last evaluation did, its η estimated now if it was not (one lift)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            lifted, indicator = self._lift(pending)
            self._last = self._last._replace(indicator=indicator)
            if lifted is not None and self._committed is pending:
                self._committed = lifted
            if lifted is not None and self._trial is pending:
                self._trial = lifted
        return self._last

    def stress_floor(self, E: np.ndarray) -> float:
        """The stress scale below which stresses of an increment to ``E`` are round-off.

        The floor of ‖σ‖_rms in relative errors: 10⁻⁸ ‖⟨C_el⟩‖ max(‖E‖, ‖E_n‖) with E_n
        committed (not zero where E returns to 0 after a load).
        """
        norm = max(float(np.linalg.norm(E)), float(np.linalg.norm(self._committed["E"])))
        return STRESS_FLOOR * self.stiffness_scale * norm

    def commit(self) -> None:
        """Make the last converged trial state the committed one."""
        if self._trial is None:
            raise Fe2xError("nothing to commit: no converged solve since the last commit")
        self._committed, self._trial = self._trial, None

    def get_state(self) -> dict[str, Any]:
        """The committed state; its arrays are never modified in place.

        Certified (or a full RVE's): ``E``, ``q``, ``dq_dE`` (the reduced tangent's predictor;
        absent after a full RVE's answer), the fluctuation ``x`` (Φ q, or the full RVE's),
        ``history`` (phase -> its points' law state, all points), ``cubature`` (the
        reduced Newton's law state at the cubature points; absent after a full RVE's answer),
        the evaluation's ``indicator`` and ``fallback``. Uncertified (a reduced answer before
        :meth:`certify`): ``E``, ``q``, ``dq_dE``, ``Sigma``, the indicator's stress ``floor``, the
        substeps ``E_steps``, ``q_steps``, ``dt_steps`` from the full history ``base``,
        ``cubature``, ``indicator`` (NaN) and ``fallback``.
        """
        return dict(self._committed)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Install a state made by :meth:`get_state` as the committed one (trial dropped)."""
        q = np.asarray(state["q"], dtype=float)
        if q.shape != (self.n_modes,) or np.size(state["E"]) != self.n_strain:
            raise Fe2xError(
                f"state with {q.shape} modes and {np.size(state['E'])} macro strain components "
                f"does not fit this reduced RVE ({self.n_modes}, {self.n_strain})"
            )
        if "base" in state:
            self._check_history(state["base"])
            self._committed = dict(state)
            self._committed["base"] = _phases(state["base"], self.full_laws.laws)
            self._committed["cubature"] = _phases(state["cubature"], self._equations.ecm_index)
            self._trial = None
            return
        x = np.asarray(state["x"], dtype=float)
        if x.shape != (self.Phi.shape[0],):
            raise Fe2xError(
                f"state with {x.shape} fluctuation dofs does not fit this reduced RVE "
                f"({self.Phi.shape[0]})"
            )
        history = state["history"]
        self._check_history(history)
        self._committed = {
            "E": np.asarray(state["E"], dtype=float).reshape(self.n_strain),
            "q": q,
            "x": x,
            "history": _phases(history, self.full_laws.laws),
            "indicator": np.asarray(state.get("indicator", 0.0)),
            "fallback": np.asarray(state.get("fallback", 0.0)),
        }
        if "cubature" in state:
            self._committed["cubature"] = _phases(state["cubature"], self._equations.ecm_index)
        if "dq_dE" in state:
            self._committed["dq_dE"] = np.asarray(state["dq_dE"], dtype=float)
        self._trial = None

    def _check_history(self, history: Mapping[str, Any]) -> None:
        """Raise Fe2xError unless ``history`` has every phase's law state at all its points."""
        laws = self.full_laws
        for name in laws.laws:
            shapes = laws.laws[name].state_shapes
            have = history.get(name, {})
            if set(have) != set(shapes) or any(
                np.shape(have[k])[0] != laws.points[name].size for k in shapes
            ):
                raise Fe2xError(f"state history of phase {name!r} does not match this RVE")

    # -- lifting and the fallback ----------------------------------------------------------
    def _lift(self, state: Mapping[str, Any]) -> tuple[dict[str, Any] | None, float]:
        """An uncertified state lifted to all points, and its indicator η (module notes).

        The laws at all points are updated along its substeps from its ``base`` history;
        (None, NaN) if a law fails there.
        """
        substeps = zip(*(state[k] for k in SUBSTEPS), strict=True)
        history = self._error_indicator.lift(self.Phi, substeps, state["base"])
        if history is None:
            return None, np.nan
        floor = float(state["floor"])
        indicator = self._error_indicator.estimate(state["Sigma"], floor, self.indicator_steps)
        q = state["q"]
        lifted = {
            "E": state["E"],
            "q": q,
            "dq_dE": state["dq_dE"],
            "x": self.Phi @ q,
            "history": history,
            "cubature": state["cubature"],
            "indicator": np.asarray(indicator),
            "fallback": np.zeros(()),
        }
        return lifted, indicator

    def _complete(self, state: Mapping[str, Any]) -> Mapping[str, Any]:
        """``state`` with its full history: lifted if it is uncertified."""
        if "base" not in state:
            return state
        lifted, _ = self._lift(state)
        if lifted is None:
            raise Fe2xError("a law failed on the lifted reduced solution: no full history")
        return lifted

    def _fallback(self, E: np.ndarray, cause: str, why: str, indicator: float) -> RVEResult:
        """The full RVE's answer from the committed state (the trial state follows it)."""
        t0 = time.perf_counter()
        self.counts[cause] += 1
        rve, committed = self.rve, self._complete(self._committed)
        rve.set_state(self.full_state(committed))
        rve.set_time_increment(self._dt)
        result = rve.solve(E)
        self._pending = None
        self._last = ReducedOutcome(indicator, why, result.iterations)
        if result.converged:
            rve.commit()
            state = rve.get_state()
            x = np.asarray(state["x"])
            history = dict(committed["history"])
            for name, packed in state["history"].items():
                history[name] = unpack_state(self.full_laws.laws[name].state_shapes, packed)
            self._trial = {
                "E": E.copy(),
                "q": self.MPhi.T @ x,  # the energy projection: the next reduced start
                "x": x,
                "history": history,
                "indicator": np.asarray(indicator),
                "fallback": np.ones(()),
            }
        else:
            self._trial = None
        self.timings["fallback"] += time.perf_counter() - t0
        return result._replace(reason=f"full RVE ({why}): {result.reason}")

    def full_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state`` (of :meth:`get_state`) as the full RVE's (:meth:`NonlinearRVE.get_state`).

        The full RVE continues from it exactly (an uncertified state is lifted first).
        """
        state = self._complete(state)
        laws = self.full_laws.laws
        return {
            "E": state["E"],
            "x": state["x"],
            "history": {
                name: pack_state(laws[name].state_shapes, values)
                for name, values in state["history"].items()
                if laws[name].state_shapes
            },
        }

    # -- capabilities ----------------------------------------------------------------------
    @property
    def C_elastic(self) -> np.ndarray:
        """The full RVE's elastic homogenized stiffness (the exact elastic shortcut)."""
        return self.rve.C_elastic

    def stays_elastic(self, E: np.ndarray) -> np.ndarray:
        """Whether the virgin full RVE stays elastic under each of the strains E ``(m, n)``."""
        return self.rve.stays_elastic(E)

    @property
    def diagnostic_names(self) -> tuple[str, ...]:
        """The laws' output fields (averaged) and :data:`DIAGNOSTICS`."""
        return (*self.full_laws.output_names, *DIAGNOSTICS)

    def diagnostics(self) -> dict[str, float]:
        """Volume averages of the laws' outputs in the committed history, its fallback, indicator.

        The averages are over the full history; then whether its evaluation fell back, and its
        indicator.
        """
        self._committed = committed = dict(self._complete(self._committed))
        weights = self.rve.problem.weights
        fields = self.full_laws.outputs(committed["history"])
        values = {name: float(weights @ v) / self.volume for name, v in fields.items()}
        values["rom_fallback"] = float(committed["fallback"])
        values["rom_indicator"] = float(committed["indicator"])
        return values

    def micro_fields(self) -> dict[str, Any]:
        """The full RVE's cell fields of the committed state (lifted, or the fallback's)."""
        self.rve.set_state(self.full_state(self._committed))
        return self.rve.micro_fields()

    def fluctuation(self, state: Mapping[str, Any]) -> np.ndarray:
        """The reduced fluctuation dofs of ``state`` (training-data snapshots)."""
        return np.asarray(state["x"]) if "x" in state else self.Phi @ state["q"]

    @property
    def fluctuation_rows(self) -> tuple[int, np.ndarray]:
        """Global number of fluctuation dofs and the global index of each of this rank's."""
        return self.rve.fluctuation_rows
