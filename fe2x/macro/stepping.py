"""Adaptive load stepping: equal nominal increments, halved on failure, grown back on success."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fe2x.macro.problem import StepResult

logger = logging.getLogger(__name__)


@dataclass
class SteppingResult:
    """Converged steps in order; ``completed`` is False if the run could not reach λ = 1."""

    steps: list[StepResult] = field(default_factory=list)
    cutbacks: int = 0
    completed: bool = True
    message: str = ""


def run_load_steps(
    solve: Callable[[float], StepResult],
    n_steps: int,
    max_cutbacks: int = 5,
    before_step: Callable[[], None] | None = None,
    after_step: Callable[[int, StepResult, int, float], None] | None = None,
    start: float = 0.0,
    increment: float | None = None,
    first_step: int = 1,
) -> SteppingResult:
    """Drive the load factor λ from ``start`` to 1 in ``n_steps`` nominal increments.

    A failed step is retried with half the increment, at most ``max_cutbacks`` times in a row;
    after a success the increment doubles again up to the nominal one.

    Args:
        solve: solves one step to the given λ (and commits or discards its state itself).
        n_steps: nominal number of increments over [0, 1].
        max_cutbacks: successive halvings allowed before giving up.
        before_step: called before every attempt (e.g. load balancing).
        after_step: called after each converged step with (step number, result, cutbacks,
            the increment the next step will try).
        start: load factor already reached (restart).
        increment: the increment to try first (restart; default nominal).
        first_step: number of the first step (restart).
    """
    nominal = 1.0 / n_steps
    result = SteppingResult()
    lam, dlam, halvings = start, increment or nominal, 0
    while lam < 1.0 - 1e-12:
        dlam = min(dlam, 1.0 - lam)
        if before_step is not None:
            before_step()
        step = solve(lam + dlam)
        if step.converged:
            lam += dlam
            result.steps.append(step)
            cutbacks, halvings = halvings, 0
            dlam = min(2.0 * dlam, nominal)
            if after_step is not None:
                after_step(first_step + len(result.steps) - 1, step, cutbacks, dlam)
            continue
        if halvings == max_cutbacks:
            result.completed = False
            result.message = (
                f"the step to load factor {lam + dlam:.6g} failed after {halvings} cutbacks "
                f"({step.reason}); last converged load factor {lam:.6g}"
            )
            logger.warning(result.message)
            return result
        halvings += 1
        result.cutbacks += 1
        logger.info("step to λ = %.6g failed (%s): cutting back", lam + dlam, step.reason)
        dlam /= 2.0
    return result
