"""A group's micro models: one set-up per microstructure, every macro point's history swapped in.

Every rank of an RVE group holds the same pool and calls :meth:`MicroPool.evaluate` with the
same points in the same order (the calls are collective on the group's communicator when its
RVEs are distributed). A point's history is either ``None`` (never left the elastic range) or
the opaque state its model returned; states are committed or discarded together with the macro
step, so a cut-back step leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from fe2x.micro.model import MicroModel


class PoolResponse(NamedTuple):
    """Responses of a batch of macro points, in the order they were asked for."""

    Sigma: np.ndarray  # (m, n)
    C: np.ndarray  # (m, n, n)
    converged: np.ndarray  # (m,) bool
    iterations: np.ndarray  # (m,) micro Newton iterations (0 for the elastic shortcut)
    seconds: np.ndarray  # (m,) wall time of each point
    shortcut: np.ndarray  # (m,) bool: answered by the elastic shortcut, no solve
    plastic_strain: np.ndarray  # (m,) RVE average of the equivalent plastic strain (trial)


class MicroPool:
    """Micro models by microstructure name, and the committed/trial history of each point.

    Args:
        models: microstructure name -> its micro model, set up once on this group.
        use_shortcut: answer points that never yielded by the exact elastic shortcut
            (``model.elastic_shortcut(E)``, when the model has one) instead of a solve.
    """

    def __init__(self, models: Mapping[str, MicroModel], use_shortcut: bool = True) -> None:
        self.models = dict(models)
        self.use_shortcut = use_shortcut
        self._initial = {name: model.get_state() for name, model in self.models.items()}
        self.committed: dict[int, Any] = {}
        self.trial: dict[int, Any] = {}

    def evaluate(self, ids: np.ndarray, names: list[str], E: np.ndarray) -> PoolResponse:
        """Σ and C of each point ``ids[i]`` of microstructure ``names[i]`` at strain ``E[i]``."""
        m = len(ids)
        n = E.shape[1] if m else 0
        Sigma, C = np.full((m, n), np.nan), np.full((m, n, n), np.nan)
        converged = np.zeros(m, dtype=bool)
        iterations = np.zeros(m, dtype=np.int64)
        seconds, shortcut, plastic = np.zeros(m), np.zeros(m, dtype=bool), np.zeros(m)
        for i, (point, name) in enumerate(zip(ids.tolist(), names, strict=True)):
            t0 = time.perf_counter()
            model = self.models[name]
            state = self.committed.get(point)
            answer = None
            if state is None and self.use_shortcut and hasattr(model, "elastic_shortcut"):
                answer = model.elastic_shortcut(E[i])
                shortcut[i] = answer is not None
            if answer is None:
                answer = self.load(point, name).solve(E[i])
                if answer.converged:
                    model.commit()
                    self.trial[point] = model.get_state()
                    plastic[i] = getattr(model, "mean_equivalent_plastic_strain", 0.0)
            else:
                self.trial.pop(point, None)
            Sigma[i], C[i] = answer.Sigma, answer.C
            converged[i], iterations[i] = answer.converged, answer.iterations
            seconds[i] = time.perf_counter() - t0
        return PoolResponse(Sigma, C, converged, iterations, seconds, shortcut, plastic)

    def load(self, point: int, name: str) -> MicroModel:
        """The model of microstructure ``name`` holding the committed history of ``point``."""
        model = self.models[name]
        state = self.committed.get(point)
        model.set_state(self._initial[name] if state is None else state)
        return model

    def commit(self) -> None:
        """The trial histories of the last evaluations become the committed ones."""
        self.committed.update(self.trial)
        self.trial.clear()

    def discard(self) -> None:
        """Forget the trial histories (the macro step was cut back)."""
        self.trial.clear()

    def release(self, ids: list[int]) -> dict[int, Any]:
        """Remove and return the committed states of points moving to another group."""
        return {point: self.committed.pop(point) for point in ids if point in self.committed}

    def adopt(self, states: Mapping[int, Any]) -> None:
        """Take over the committed states of points moving into this group."""
        self.committed.update(states)
