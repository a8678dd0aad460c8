"""Drive one micro model along a macro loading path with mixed strain/stress control.

Each Mandel component is either strain-controlled (E_i(t) given) or stress-controlled
(Σ_i(t) given, typically 0 for uniaxial stress). At every step the free strains solve
Σ_s(E) = Σ_s,target by Newton's method with the consistent tangent:
ΔE_s = C_ss⁻¹ (Σ_s,target − Σ_s).
A step whose micro solve or control iteration fails is cut into halves, up to ``max_cutbacks``
times; then the path stops, reporting why, with every converged step kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from fe2x.micro.model import MicroModel, TimeIncrement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadPath:
    """A piecewise-linear macro loading path in pseudo-time.

    Attributes:
        times: increasing knot times, shape (m,), starting at 0.
        values: Mandel strain or stress values at the knots, shape (m, n).
        stress_controlled: per component, whether ``values`` prescribes stress (else strain).
        steps: number of equal increments over [0, times[-1]].
    """

    times: np.ndarray
    values: np.ndarray
    stress_controlled: np.ndarray
    steps: int

    def __post_init__(self) -> None:
        if self.times.ndim != 1 or len(self.times) < 2 or np.any(np.diff(self.times) <= 0):
            raise ValueError("path times must be at least two strictly increasing values")
        if self.values.shape != (len(self.times), len(self.stress_controlled)):
            raise ValueError("path values must have one row per time and one column per component")
        if self.steps < 1:
            raise ValueError("a path needs at least one step")

    def target(self, t: float) -> np.ndarray:
        """Prescribed strain/stress components at time ``t`` (linear between knots)."""
        return np.array(
            [np.interp(t, self.times, self.values[:, i]) for i in range(self.values.shape[1])]
        )


class PathStep(NamedTuple):
    """One converged step: time, macro strain and stress, tangent, and the work it took."""

    t: float
    E: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    micro_iterations: int
    control_iterations: int
    cutbacks: int


@dataclass
class PathResult:
    """All converged steps; ``completed`` is False when the path stopped early (see ``message``)."""

    steps: list[PathStep] = field(default_factory=list)
    completed: bool = True
    message: str = ""


def _solve_mixed(
    model: MicroModel,
    E_guess: np.ndarray,
    target: np.ndarray,
    stress_controlled: np.ndarray,
    stress_scale: float,
    rtol: float,
    max_iterations: int,
) -> tuple[Any, np.ndarray, int, int, str]:
    """E with E[~s] = target[~s] and Σ(E)[s] = target[s].

    Returns (last result, E, control iterations, micro iterations, why it failed or "").
    """
    s = stress_controlled
    E = E_guess.copy()
    E[~s] = target[~s]
    micro = 0
    for iteration in range(1, max_iterations + 1):
        result = model.solve(E)
        micro += result.iterations
        if not result.converged:
            return result, E, iteration, micro, f"micro solve failed: {result.reason}"
        misfit = target[s] - result.Sigma[s]
        if not s.any() or np.abs(misfit).max() <= rtol * max(stress_scale, 1e-300):
            return result, E, iteration, micro, ""
        E[s] += np.linalg.solve(result.C[np.ix_(s, s)], misfit)
    return result, E, max_iterations, micro, "stress control did not converge"


def drive(
    model: MicroModel,
    path: LoadPath,
    stress_scale: float,
    rtol: float = 1e-8,
    max_cutbacks: int = 6,
    max_control_iterations: int = 25,
    on_step: Callable[[int, PathStep], None] | None = None,
) -> PathResult:
    """Follow ``path`` with ``model``, committing its history after every converged step.

    The path's times are physical times: a rate-dependent model
    (:class:`~fe2x.micro.model.TimeIncrement`) is told each step's duration.

    Args:
        model: the micro model (an RVE, or a material point).
        path: the loading path.
        stress_scale: stress magnitude for the control tolerance (e.g. the yield stress).
        rtol: stress-controlled components converge to ``rtol * stress_scale``.
        max_cutbacks: a failed step is retried in halves at most this many times.
        max_control_iterations: Newton iterations of the mixed control per step.
        on_step: called with (step index, step) after each converged step (progress, output).
    """
    s = np.asarray(path.stress_controlled, dtype=bool)
    n = len(s)
    result = PathResult()
    E = np.zeros(n)
    t, dt_full = 0.0, path.times[-1] / path.steps
    t_end = path.times[-1]
    E_rate = np.zeros(n)
    while t < t_end - 1e-12 * t_end:
        dt, cutbacks = min(dt_full, t_end - t), 0
        while True:
            guess = E + E_rate * dt
            if isinstance(model, TimeIncrement):  # path times are physical times
                model.set_time_increment(dt)
            out, E_new, its, micro, why = _solve_mixed(
                model, guess, path.target(t + dt), s, stress_scale, rtol, max_control_iterations
            )
            if not why:
                break
            if cutbacks == max_cutbacks:
                result.completed = False
                result.message = f"step at t = {t + dt:.6g} failed after {cutbacks} cutbacks: {why}"
                logger.warning(result.message)
                return result
            cutbacks += 1
            dt /= 2.0
            logger.info("t = %.6g: %s; cutting back to dt = %.3g", t + 2 * dt, why, dt)
        model.commit()
        E_rate = (E_new - E) / dt
        E, t = E_new, t + dt
        step = PathStep(t, E.copy(), out.Sigma.copy(), out.C.copy(), micro, its, cutbacks)
        result.steps.append(step)
        if on_step is not None:
            on_step(len(result.steps) - 1, step)
    return result
