"""The substepped increment of a nonlinear RVE: Newton retried in 2, 4, ... substeps."""

from __future__ import annotations

import logging
from typing import NamedTuple

from petsc4py import PETSc

import numpy as np

from fe2x.fem.quadrature_laws import PhaseStates
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["Increment", "substepped_increment"]

logger = logging.getLogger(__name__)


class Increment(NamedTuple):
    """One increment: its outcome, Newton iterations, ‖R‖ histories and the state it reached.

    Attributes:
        converged: whether the last attempt converged in all its substeps.
        reason: the SNES reason of the last Newton solve (with the law's words on failure).
        iterations: Newton iterations summed over all attempts.
        histories: ‖R‖ per Newton iteration, one array per Newton solve (substep).
        n_sub: substeps of the last attempt.
        state: the laws' trial state at the end of the increment (meaningless if not converged).
    """

    converged: bool
    reason: str
    iterations: int
    histories: tuple[np.ndarray, ...]
    n_sub: int
    state: PhaseStates


def substepped_increment(
    problem: RVEProblem,
    x: PETSc.Vec,
    x_committed: PETSc.Vec,
    E_n: np.ndarray,
    E: np.ndarray,
    dt: float,
    max_cutbacks: int,
) -> Increment:
    """Newton from the committed state at ``E_n`` to ``E`` over ``dt``, cut back on failure.

    Attempt c solves 2**c equal substeps E_n + (E − E_n) i / 2**c, each from the state the
    previous one reached, for c = 0 ... max_cutbacks; a retry restarts ``x`` from
    ``x_committed``. On success ``x`` is the converged fluctuation.
    """
    committed = problem.laws.committed
    identity = problem.identity
    strain_scale = float(max(np.max(np.abs(E - identity)), np.max(np.abs(E_n - identity))))
    iterations, histories = 0, []
    reason, converged, n_sub, base = "not started", False, 1, committed
    for cut in range(max_cutbacks + 1):
        n_sub, base = 2**cut, committed
        if cut > 0:
            x_committed.copy(x)
            logger.info("RVE increment failed (%s); retrying in %d substeps", reason, n_sub)
        for i in range(1, n_sub + 1):
            outcome = problem.newton(
                x, E_n + (E - E_n) * (i / n_sub), base, dt / n_sub, strain_scale
            )
            converged, reason = outcome.converged, outcome.reason
            iterations += outcome.iterations
            histories.append(outcome.history)
            if not converged:
                break
            assert problem.laws.trial is not None, "set by the converged solve"
            base = problem.laws.trial
        if converged:
            break
    return Increment(converged, reason, iterations, tuple(histories), n_sub, base)
