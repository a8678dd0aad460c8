"""Single homogeneous material points as micro models: the cheapest members of the contract."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fe2x.errors import SolverError
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.materials.law import ConstitutiveLaw
from fe2x.micro.model import RVEResult

__all__ = ["ElasticPoint", "MaterialPoint"]


class MaterialPoint:
    """One point of a constitutive law (plane strain in 2D) answering ``solve(E, dt)``.

    Used where a macro region needs no RVE, and as an exact reference: an RVE made of one
    material must reproduce it. A finite-strain law takes F̄ (row-major) for E and answers P̄
    and dP̄/dF̄ (:attr:`kinematics`).
    """

    state_replicated: ClassVar[bool] = True

    def __init__(self, law: ConstitutiveLaw, dim: int) -> None:
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.law, self.dim = law, dim
        self.kinematics: str = law.kinematics
        self._laws = QuadratureLaws(
            {"point": law}, {"point": np.array([0])}, dim, 1, kinematics=law.kinematics
        )
        self._dt = 0.0

    def set_time_increment(self, dt: float) -> None:
        """The next solves go over time ``dt``."""
        self._dt = float(dt)

    def solve(self, E: np.ndarray) -> RVEResult:
        """Σ and C of the law at strain E (Mandel, or F̄ row-major) from the committed state."""
        E = np.asarray(E, dtype=float).reshape(1, -1)
        try:
            self._laws.evaluate(E, dt=self._dt)
        except SolverError as error:
            n = E.shape[1]
            nan = np.full(n, np.nan)
            return RVEResult(nan, np.full((n, n), np.nan), np.nan, False, str(error), 0, ())
        sigma, C = self._laws.stress[0].copy(), self._laws.tangent[0].copy()
        return RVEResult(sigma, C, 0.0, True, "converged", 1, ())

    def commit(self) -> None:
        """The state of the last solve becomes the committed one."""
        self._laws.commit()

    def get_state(self) -> Any:
        """The committed state of the law (a dict of arrays, one row)."""
        return dict(self._laws.committed["point"])

    def set_state(self, state: Any) -> None:
        """Install a committed state of :meth:`get_state`."""
        self._laws.committed = {"point": dict(state)}
        self._laws.discard()


class ElasticPoint:
    """A linear elastic point, Σ = C E (Mandel): a macro region that needs no RVE."""

    state_replicated: ClassVar[bool] = True

    def __init__(self, C: np.ndarray) -> None:
        self.C = np.asarray(C, dtype=float)

    def solve(self, E: np.ndarray) -> RVEResult:
        """Σ = C E and the tangent C."""
        return RVEResult(
            self.C @ np.asarray(E, dtype=float), self.C.copy(), 0.0, True, "converged", 0, ()
        )

    def commit(self) -> None:
        """Nothing to commit: the response has no history."""

    def get_state(self) -> Any:
        """No history: None."""
        return None

    def set_state(self, state: Any) -> None:
        """Nothing to set: the response has no history."""
