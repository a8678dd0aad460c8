"""A single homogeneous material point as a micro model: the cheapest member of the contract."""

from __future__ import annotations

from typing import Any

import numpy as np

from fe2x.errors import SolverError
from fe2x.materials.j2 import (
    J2Plasticity,
    J2State,
    plane_strain_reduce,
    plane_strain_strain,
    return_mapping,
)
from fe2x.micro.model import RVEResult


class MaterialPoint:
    """One J2 material point (plane strain in 2D) answering ``solve(E) -> RVEResult``.

    Used where a macro region needs no RVE, and as an exact reference: an RVE made of one
    material must reproduce it.
    """

    def __init__(self, law: J2Plasticity, dim: int) -> None:
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.law, self.dim = law, dim
        self._state = J2State.zeros(1)
        self._trial = self._state

    def solve(self, E: np.ndarray) -> RVEResult:
        E = np.asarray(E, dtype=float).reshape(1, -1)
        eps = plane_strain_strain(E) if self.dim == 2 else E
        try:
            update = return_mapping(self.law, eps, self._state)
        except SolverError as error:
            nan = np.full(E.shape[1], np.nan)
            return RVEResult(
                nan, np.full((len(nan),) * 2, np.nan), np.nan, False, str(error), 0, ()
            )
        sigma, C = update.sigma, update.C_alg
        if self.dim == 2:
            sigma, C = plane_strain_reduce(sigma, C)
        self._trial = update.state
        return RVEResult(sigma[0], C[0], 0.0, True, "converged", 1, ())

    def commit(self) -> None:
        self._state = self._trial

    def get_state(self) -> Any:
        return self._state.copy()

    def set_state(self, state: Any) -> None:
        self._state = self._trial = state.copy()


class ElasticPoint:
    """A linear elastic point, Σ = C E (Mandel): a macro region that needs no RVE."""

    def __init__(self, C: np.ndarray) -> None:
        self.C = np.asarray(C, dtype=float)

    def solve(self, E: np.ndarray) -> RVEResult:
        return RVEResult(
            self.C @ np.asarray(E, dtype=float), self.C.copy(), 0.0, True, "converged", 0, ()
        )

    def commit(self) -> None:
        """Nothing to commit: the response has no history."""

    def get_state(self) -> Any:
        return None

    def set_state(self, state: Any) -> None:
        """Nothing to set: the response has no history."""
