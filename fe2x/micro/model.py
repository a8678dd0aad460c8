"""The micro-model contract that path drivers and the FE² engine rely on, and its result type."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class RVEResult(NamedTuple):
    """Outcome of one micro increment.

    Attributes:
        Sigma: homogenized stress ⟨σ⟩, Mandel (3 in 2D, 6 in 3D); NaN when not converged.
        C: consistent homogenized tangent dΣ/dE, Mandel; NaN when not converged.
        hill_mandel_residual: |⟨σ:ε⟩ − Σ·⟨ε⟩| / (|Σ| |⟨ε⟩|).
        converged: whether the increment (possibly substepped) converged.
        reason: "converged", or why not.
        iterations: Newton iterations summed over all attempts.
        residual_history: ‖R‖ per Newton iteration, one array per Newton solve (substep).
    """

    Sigma: np.ndarray
    C: np.ndarray
    hill_mandel_residual: float
    converged: bool
    reason: str
    iterations: int
    residual_history: tuple[np.ndarray, ...]


@runtime_checkable
class MicroModel(Protocol):
    """A macro point's micro model: solve on a trial history, commit, swap state in and out.

    The state is opaque and serialisable: the same calls serve cutback, migration between
    ranks and restart.
    """

    def solve(self, E: np.ndarray) -> RVEResult:
        """Σ and C = dΣ/dE for macro strain E (Mandel), from the committed history."""
        ...

    def commit(self) -> None:
        """Make the last trial history the committed one."""
        ...

    def get_state(self) -> Any:
        """A copy of the committed state."""
        ...

    def set_state(self, state: Any) -> None:
        """Replace the committed state."""
        ...
