"""A group's micro models: one set-up per microstructure, every macro point's history swapped in.

Every rank of an RVE group holds the same pool and calls :meth:`MicroPool.evaluate` with the
same points in the same order (the calls are collective on the group's communicator when its
RVEs are distributed). A point's history is either ``None`` (never left the elastic range) or
the opaque state its model returned; states are committed or discarded together with the macro
step, so a cut-back step leaves nothing behind. What each model can do beyond the contract is
found once, here (:class:`~fe2x.micro.model.Capabilities`).

The trial states of :class:`~fe2x.micro.model.Certified` models are certified once per
converged step, before commit (:meth:`MicroPool.certify`); the points rejected there are
answered by :meth:`~fe2x.micro.model.Certified.solve_full` in every later evaluation of the
step, and :meth:`MicroPool.commit` refuses trial states that were not certified.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.micro.model import Capabilities, Certified, MicroModel

__all__ = ["Certification", "MicroPool", "PointAnswer", "PoolResponse"]


class PointAnswer(NamedTuple):
    """A point's last answer in a step, kept for training data.

    Its microstructure, strain, stress, tangent, whether it converged, and its row of the
    diagnostics.
    """

    name: str
    E: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    converged: bool
    diagnostics: np.ndarray


class PoolResponse(NamedTuple):
    """Responses of a batch of macro points, in the order they were asked for.

    Attributes:
        Sigma: ``(m, n)`` stresses; C: ``(m, n, n)`` tangents (NaN where not converged).
        converged: ``(m,)``; iterations: ``(m,)`` micro Newton iterations (0 for the shortcut).
        seconds: ``(m,)`` wall time of each point; shortcut: ``(m,)`` answered without a solve.
        diagnostics: ``(m, len(MicroPool.diagnostic_names))`` the models' named diagnostics of
            the trial state (0 for models without that name).
    """

    Sigma: np.ndarray
    C: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray
    shortcut: np.ndarray
    diagnostics: np.ndarray


class Certification(NamedTuple):
    """One certification pass over the trial states of a step.

    Attributes:
        ids: the points certified (every trial point of a certified model), ascending.
        passed: ``(k,)`` whether each passed; the others are answered by the full model from
            now on in this step.
        diagnostics: ``(k, len(MicroPool.diagnostic_names))`` the diagnostics of the
            certified states (0 for the rejected ones).
        seconds: ``(k,)`` wall time of each point's certification.
    """

    ids: np.ndarray
    passed: np.ndarray
    diagnostics: np.ndarray
    seconds: np.ndarray

    @property
    def rejected(self) -> np.ndarray:
        """The points that failed."""
        return self.ids[~self.passed]


class MicroPool:
    """Micro models by microstructure name, and the committed/trial history of each point.

    Args:
        models: microstructure name -> its micro model, set up once on this group.
        use_shortcut: answer points that never yielded by the exact elastic shortcut of the
            models that have one, instead of a solve.
    """

    def __init__(self, models: Mapping[str, MicroModel], use_shortcut: bool = True) -> None:
        self.models = dict(models)
        self.capabilities = {name: Capabilities.of(m, name) for name, m in self.models.items()}
        self.use_shortcut = use_shortcut
        #: The names of every model's diagnostics, in the columns of PoolResponse.diagnostics.
        self.diagnostic_names = tuple(
            sorted({d for c in self.capabilities.values() for d in c.diagnostics})
        )
        self._columns = {
            name: [self.diagnostic_names.index(d) for d in c.diagnostics]
            for name, c in self.capabilities.items()
        }
        self._initial = {name: model.get_state() for name, model in self.models.items()}
        self.committed: dict[int, Any] = {}
        self.trial: dict[int, Any] = {}
        #: The first point of the last evaluation whose model failed, and why (else None).
        self.failure: tuple[int, str] | None = None
        #: Keep each point's last answer of a step; those of the last committed step are in
        #: :attr:`committed_answers` (for training data).
        self.keep_answers = False
        self.committed_answers: dict[int, PointAnswer] = {}
        self._answers: dict[int, PointAnswer] = {}
        #: Points rejected at certification in this step -> their rejected trial state.
        self.forced: dict[int, Any] = {}
        self._uncertified: dict[int, str] = {}  # trial states to certify -> their model

    def evaluate(
        self, ids: np.ndarray, names: list[str], E: np.ndarray, dt: float = 0.0
    ) -> PoolResponse:
        """Σ and C of each point ``ids[i]`` of microstructure ``names[i]`` at strain ``E[i]``."""
        m = len(ids)
        n = E.shape[1] if m else 0
        Sigma, C = np.full((m, n), np.nan), np.full((m, n, n), np.nan)
        converged = np.zeros(m, dtype=bool)
        iterations = np.zeros(m, dtype=np.int64)
        seconds, shortcut = np.zeros(m), np.zeros(m, dtype=bool)
        diagnostics = np.zeros((m, len(self.diagnostic_names)))
        self.failure = None
        if self.use_shortcut and m:
            self._shortcut_virgin(ids, names, E, Sigma, C, converged, shortcut, seconds)
        for i, (point, name) in enumerate(zip(ids.tolist(), names, strict=True)):
            if shortcut[i]:
                self.trial.pop(point, None)
                self._uncertified.pop(point, None)
                continue
            t0 = time.perf_counter()
            model, capabilities = self.models[name], self.capabilities[name]
            if capabilities.timed:
                model.set_time_increment(dt)  # type: ignore[attr-defined]
            self.load(point, name)
            if point in self.forced:
                answer = model.solve_full(E[i], self.forced[point])  # type: ignore[attr-defined]
            elif capabilities.warm and point in self.trial:  # an earlier iteration's answer
                answer = model.solve_from(E[i], self.trial[point])  # type: ignore[attr-defined]
            else:
                answer = model.solve(E[i])
            if answer.converged:
                model.commit()
                self.trial[point] = model.get_state()
                if capabilities.certified:  # diagnostics of the certified state, later
                    self._uncertified[point] = name
                elif capabilities.diagnostics:
                    diagnostics[i, self._columns[name]] = self._diagnostics_of(name)
            elif self.failure is None:
                self.failure = (int(point), answer.reason)
            Sigma[i], C[i] = answer.Sigma, answer.C
            converged[i], iterations[i] = answer.converged, answer.iterations
            seconds[i] = time.perf_counter() - t0
        if self.keep_answers:
            for i, (point, name) in enumerate(zip(ids.tolist(), names, strict=True)):
                self._answers[point] = PointAnswer(
                    name, E[i].copy(), Sigma[i], C[i], bool(converged[i]), diagnostics[i]
                )
        return PoolResponse(Sigma, C, converged, iterations, seconds, shortcut, diagnostics)

    def _shortcut_virgin(
        self,
        ids: np.ndarray,
        names: list[str],
        E: np.ndarray,
        Sigma: np.ndarray,
        C: np.ndarray,
        converged: np.ndarray,
        shortcut: np.ndarray,
        seconds: np.ndarray,
    ) -> None:
        """Answer the virgin points that stay elastic by Σ = C_el E, one batch per model."""
        virgin = np.array([self.committed.get(int(p)) is None for p in ids], dtype=bool)
        for name, capabilities in self.capabilities.items():
            if not capabilities.shortcut:
                continue
            t0 = time.perf_counter()
            mine = np.flatnonzero(virgin & (np.asarray(names, dtype=object) == name))
            model = self.models[name]
            elastic = model.stays_elastic(E[mine])  # type: ignore[attr-defined] # collective
            answered = mine[elastic]
            if answered.size:
                C_el = model.C_elastic  # type: ignore[attr-defined]
                Sigma[answered] = E[answered] @ C_el.T
                C[answered] = C_el
                converged[answered] = shortcut[answered] = True
                seconds[answered] = (time.perf_counter() - t0) / answered.size

    def _diagnostics_of(self, name: str) -> list[float]:
        """The named diagnostics of microstructure ``name``'s model, in the pool's order."""
        values = self.models[name].diagnostics()  # type: ignore[attr-defined]
        return [values[d] for d in self.capabilities[name].diagnostics]

    def load(self, point: int, name: str) -> MicroModel:
        """The model of microstructure ``name`` holding the committed history of ``point``."""
        model = self.models[name]
        state = self.committed.get(point)
        model.set_state(self._initial[name] if state is None else state)
        return model

    def certify(self) -> Certification:
        """Certify the trial states of the points whose models are certified (before commit).

        A state that passes replaces the trial one (completed for committing, e.g. its full
        history); a point that fails is answered by the full model (``solve_full``) in every
        later evaluation of this step, and its trial state stays uncertified until then.
        Collective on the group when its models are distributed.
        """
        ids = np.array(sorted(self._uncertified), dtype=np.int64)
        passed = np.zeros(ids.size, dtype=bool)
        diagnostics = np.zeros((ids.size, len(self.diagnostic_names)))
        seconds = np.zeros(ids.size)
        for i, point in enumerate(ids.tolist()):
            t0 = time.perf_counter()
            name = self._uncertified[point]
            model, capabilities = self.models[name], self.capabilities[name]
            ok, state = cast(Certified, model).certify(self.trial[point])
            passed[i] = ok
            if not ok:
                self.forced[point] = state
            else:
                self.trial[point] = state
                del self._uncertified[point]
            if ok and capabilities.diagnostics:
                model.set_state(state)
                diagnostics[i, self._columns[name]] = self._diagnostics_of(name)
                if point in self._answers:
                    row = diagnostics[i]
                    self._answers[point] = self._answers[point]._replace(diagnostics=row)
            seconds[i] = time.perf_counter() - t0
        return Certification(ids, passed, diagnostics, seconds)

    def commit(self) -> None:
        """The trial histories of the last evaluations become the committed ones.

        Raises Fe2xError if a trial state of a certified model was not certified.
        """
        if self._uncertified:
            raise Fe2xError(
                f"{len(self._uncertified)} trial state(s) not certified before commit "
                f"(macro point {min(self._uncertified)}): call certify() first"
            )
        self.committed.update(self.trial)
        self.trial.clear()
        self.forced.clear()
        self.committed_answers, self._answers = self._answers, {}

    def discard(self) -> None:
        """Forget the trial histories and the rejected points (the macro step was cut back)."""
        self.trial.clear()
        self.forced.clear()
        self._uncertified.clear()
        self._answers = {}

    def release(self, ids: list[int]) -> dict[int, Any]:
        """Remove and return the committed states of points moving to another group."""
        return {point: self.committed.pop(point) for point in ids if point in self.committed}

    def adopt(self, states: Mapping[int, Any]) -> None:
        """Take over the committed states of points moving into this group."""
        self.committed.update(states)
