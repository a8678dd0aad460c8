"""Drive one micro model along a macro loading path with mixed strain/stress control.

Each component is either strain-controlled (E_i(t) given) or stress-controlled (Σ_i(t) given,
typically 0 for uniaxial stress). At every step the free strains solve Σ_s(E) = Σ_s,target by
Newton's method with the consistent tangent: ΔE_s = C_ss⁻¹ (Σ_s,target − Σ_s).
A step whose micro solve or control iteration fails is cut into halves, up to ``max_cutbacks``
times; then the path stops, reporting why, with every converged step kept. A certified model
(:class:`~fe2x.micro.model.Certified`, a reduced RVE) has its converged step certified before it
is committed; a rejected step is solved again from the same committed state by the full model.

Small strain: Mandel E and Σ. Finite strain: the components of F̄ and P̄ (row-major), starting
from F̄ = I. A rigid rotation Q changes P̄ into Q P̄ and leaves the stretch alone, so a path
must prescribe enough of F̄ to fix it: for every pair i < j at least one of F_ij, F_ji
(:func:`free_rotations`; at F̄ = I, P̄ = 0 the rotation W = e_i ⊗ e_j − e_j ⊗ e_i would
otherwise be a null direction of the control Jacobian). A step whose F̄ would have
det F̄ <= 0 fails and is cut back. A stress-controlled component may prescribe the Cauchy
stress σ̄ = P̄ F̄ᵀ / det F̄ instead of P̄ (``cauchy``), the control Newton then uses ∂σ̄/∂F̄
(:func:`cauchy_stress`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from fe2x.micro.model import Certified, Diagnostics, MicroModel, RVEResult, TimeIncrement

__all__ = ["LoadPath", "PathResult", "PathStep", "cauchy_stress", "drive", "free_rotations"]

logger = logging.getLogger(__name__)

_TENSOR_DIM = {4: 2, 9: 3}  # components of a row-major F -> its dimension


def free_rotations(stress_controlled: np.ndarray) -> list[tuple[int, int]]:
    """The planes (i, j), i < j, of a finite-strain path in which the rigid rotation is free.

    There both F_ij and F_ji are stress-controlled (``stress_controlled`` per row-major
    component of F).

    >>> free_rotations(np.array([False, True, True, False]))
    [(0, 1)]
    >>> free_rotations(np.array([False, True, False, False]))
    []
    """
    s = np.asarray(stress_controlled, dtype=bool)
    if s.size not in _TENSOR_DIM:
        raise ValueError(f"{s.size} components are not a 2×2 or 3×3 deformation gradient")
    dim = _TENSOR_DIM[s.size]
    return [
        (i, j) for i in range(dim) for j in range(i + 1, dim) if s[dim * i + j] and s[dim * j + i]
    ]


@dataclass(frozen=True)
class LoadPath:
    """A piecewise-linear macro loading path in pseudo-time.

    Attributes:
        times: increasing knot times, shape (m,), starting at 0.
        values: strain or stress values at the knots, shape (m, n): Mandel (small strain), or
            components of F̄ and P̄ row-major (finite strain).
        stress_controlled: per component, whether ``values`` prescribes stress (else strain).
        steps: number of equal increments over [0, times[-1]].
        kinematics: ``"small"`` or ``"finite"`` (the path starts at E = 0, or at F̄ = I).
        cauchy: finite strain: per component, whether its stress target is the Cauchy σ̄_ij
            rather than P̄_ij (a subset of ``stress_controlled``; default none).
    """

    times: np.ndarray
    values: np.ndarray
    stress_controlled: np.ndarray
    steps: int
    kinematics: str = "small"
    cauchy: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.times.ndim != 1 or len(self.times) < 2 or np.any(np.diff(self.times) <= 0):
            raise ValueError("path times must be at least two strictly increasing values")
        if self.values.shape != (len(self.times), len(self.stress_controlled)):
            raise ValueError("path values must have one row per time and one column per component")
        if self.steps < 1:
            raise ValueError("a path needs at least one step")
        if self.kinematics not in ("small", "finite"):
            raise ValueError(f"kinematics {self.kinematics!r} must be 'small' or 'finite'")
        if self.cauchy is not None:
            cauchy = np.asarray(self.cauchy, dtype=bool)
            if self.kinematics != "finite" and cauchy.any():
                raise ValueError("Cauchy stress targets need finite kinematics")
            if cauchy.shape != np.shape(self.stress_controlled) or np.any(
                cauchy & ~np.asarray(self.stress_controlled, dtype=bool)
            ):
                raise ValueError("Cauchy targets must be among the stress-controlled components")
        if self.kinematics == "finite":
            free = free_rotations(self.stress_controlled)
            if free:
                i, j = free[0]
                raise ValueError(
                    f"F{i + 1}{j + 1} and F{j + 1}{i + 1} are both stress-controlled: the rigid "
                    f"rotation in the {i + 1}-{j + 1} plane is free (P̄(Q F̄) = Q P̄(F̄)); "
                    f"prescribe one of them"
                )

    @property
    def start(self) -> np.ndarray:
        """The undeformed macro strain the path starts from: 0, or F̄ = I row-major."""
        n = len(self.stress_controlled)
        if self.kinematics == "small":
            return np.zeros(n)
        return np.eye(_TENSOR_DIM[n]).reshape(n)

    def target(self, t: float) -> np.ndarray:
        """Prescribed strain/stress components at time ``t`` (linear between knots)."""
        return np.array(
            [np.interp(t, self.times, self.values[:, i]) for i in range(self.values.shape[1])]
        )


class PathStep(NamedTuple):
    """One converged step: time, macro strain and stress, tangent, work, and diagnostics.

    The work is what the step took; the diagnostics are the model's named ones of the
    committed state (empty for a model without them).
    """

    t: float
    E: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    micro_iterations: int
    control_iterations: int
    cutbacks: int
    diagnostics: Mapping[str, float] = MappingProxyType({})


@dataclass
class PathResult:
    """All converged steps; ``completed`` is False when the path stopped early (see ``message``)."""

    steps: list[PathStep] = field(default_factory=list)
    completed: bool = True
    message: str = ""


def cauchy_stress(F: np.ndarray, P: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Cauchy stress σ = P Fᵀ / J, J = det F, and its derivative by F, all row-major.

    ∂σ_ij/∂F_kL = (A_iJkL F_jJ + P_iL δ_jk) / J − σ_ij F⁻¹_Lk.

    Args:
        F: deformation gradient, shape (d·d,), d = 2 or 3, with det F > 0.
        P: first Piola–Kirchhoff stress at F, shape (d·d,).
        A: its tangent dP/dF, shape (d·d, d·d).

    Returns:
        σ (d·d,) and ∂σ/∂F (d·d, d·d).
    """
    d = _TENSOR_DIM[F.size]
    F, P, A = F.reshape(d, d), P.reshape(d, d), A.reshape(d, d, d, d)
    J = np.linalg.det(F)
    sigma = P @ F.T / J
    dsigma = (np.einsum("iJkL,jJ->ijkL", A, F) + np.einsum("iL,jk->ijkL", P, np.eye(d))) / J
    dsigma -= np.einsum("ij,Lk->ijkL", sigma, np.linalg.inv(F))
    return sigma.reshape(d * d), dsigma.reshape(d * d, d * d)


def _controlled(
    E: np.ndarray, Sigma: np.ndarray, C: np.ndarray, cauchy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The controlled stress and its derivative by E: Σ and C, Cauchy rows where ``cauchy``.

    The rows of the ``cauchy`` components are replaced by those of σ̄ and ∂σ̄/∂F̄
    (:func:`cauchy_stress`).
    """
    if not cauchy.any():
        return Sigma, C
    sigma, dsigma = cauchy_stress(E, Sigma, C)
    return np.where(cauchy, sigma, Sigma), np.where(cauchy[:, None], dsigma, C)


def _solve_mixed(
    solve: Callable[[np.ndarray], RVEResult],
    E_guess: np.ndarray,
    target: np.ndarray,
    stress_controlled: np.ndarray,
    stress_scale: float,
    rtol: float,
    max_iterations: int,
    finite: bool = False,
    cauchy: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, int, int, str]:
    """E with E[~s] = target[~s] and Σ(E)[s] = target[s], Σ(E) by ``solve``.

    ``finite``: E = F̄, which must keep det F̄ > 0; ``cauchy``: the components whose targets
    are Cauchy stresses.

    Returns (last result, E, control iterations, micro iterations, why it failed or "").
    """
    s = stress_controlled
    cauchy = np.zeros(len(s), dtype=bool) if cauchy is None else cauchy
    E = E_guess.copy()
    E[~s] = target[~s]
    micro = 0
    result = None
    for iteration in range(1, max_iterations + 1):
        if finite:
            dim = _TENSOR_DIM[E.size]
            J = float(np.linalg.det(E.reshape(dim, dim)))
            if not J > 0.0:
                return result, E, iteration, micro, f"det F̄ = {J:.4g} <= 0 (inverted material)"
        result = solve(E)
        micro += result.iterations
        if not result.converged:
            return result, E, iteration, micro, f"micro solve failed: {result.reason}"
        stress, tangent = _controlled(E, result.Sigma, result.C, cauchy)
        misfit = target[s] - stress[s]
        if not s.any() or np.abs(misfit).max() <= rtol * max(stress_scale, 1e-300):
            return result, E, iteration, micro, ""
        E[s] += np.linalg.solve(tangent[np.ix_(s, s)], misfit)
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
    E = path.start
    finite = path.kinematics == "finite"
    cauchy = np.zeros(n, dtype=bool) if path.cauchy is None else np.asarray(path.cauchy, bool)
    diagnosed = isinstance(model, Diagnostics)
    timed = isinstance(model, TimeIncrement)
    certified = isinstance(model, Certified)
    t, dt_full = 0.0, path.times[-1] / path.steps
    t_end = path.times[-1]
    E_rate = np.zeros(n)

    def mixed(solve: Callable[[np.ndarray], RVEResult], guess: np.ndarray, t: float, dt: float):
        """The mixed-control solve of the step from t over dt, Σ(E) by ``solve``."""
        if timed:  # path times are physical times
            model.set_time_increment(dt)  # type: ignore[attr-defined]
        target = path.target(t + dt)
        return _solve_mixed(
            solve, guess, target, s, stress_scale, rtol, max_control_iterations, finite, cauchy
        )

    while t < t_end - 1e-12 * t_end:
        dt, cutbacks = min(dt_full, t_end - t), 0
        start = model.get_state() if certified else None
        while True:
            out, E_new, its, micro, why = mixed(model.solve, E + E_rate * dt, t, dt)
            if not why and certified:
                model.commit()
                ok, state = model.certify(model.get_state())  # type: ignore[attr-defined]
                model.set_state(state if ok else start)
                if not ok:
                    logger.info(
                        "t = %.6g: rejected at certification; the full model answers", t + dt
                    )
                    full = partial(model.solve_full, rejected=state)  # type: ignore[attr-defined]
                    out, E_new, more, full_micro, why = mixed(full, E_new, t, dt)
                    its, micro = its + more, micro + full_micro
                    if not why:
                        model.commit()
            elif not why:
                model.commit()
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
        E_rate = (E_new - E) / dt
        E, t = E_new, t + dt
        diagnostics = model.diagnostics() if diagnosed else {}  # type: ignore[attr-defined]
        step = PathStep(
            t, E.copy(), out.Sigma.copy(), out.C.copy(), micro, its, cutbacks, diagnostics
        )
        result.steps.append(step)
        if on_step is not None:
            on_step(len(result.steps) - 1, step)
    return result
