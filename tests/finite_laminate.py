"""The exact homogenized response of a rank-one laminate of two hyperelastic phases (test oracle).

Layers of normal ``N`` (reference configuration) with fractions ``f_1 + f_2 = 1``. Compatibility
across the interfaces and the average ``⟨F⟩ = F̄`` leave one vector unknown per point:
``F_1 = F̄ + f_2 a ⊗ N``, ``F_2 = F̄ − f_1 a ⊗ N`` (so ``Σ f_k F_k = F̄``); equilibrium is the
traction continuity ``r(a) = (P_1 − P_2) N = 0``, solved by Newton with the phase tangents:
``∂r/∂a = f_2 Q_1 + f_1 Q_2``, ``(Q_k)_ij = (A_k)_iJjL N_J N_L`` (acoustic tensors). Then
``P̄ = Σ f_k P_k`` and, differentiating ``r(a(F̄), F̄) = 0``,
``da/dF̄ = −(f_2 Q_1 + f_1 Q_2)⁻¹ (A_1 − A_2)·N`` and
``Ā = f_1 A_1 + f_2 A_2 + f_1 f_2 (A_1 − A_2) (da/dF̄ ⊗ N)``: exact, no finite differences.

Depends only on the phase laws' ``update`` (their P and A), not on any FE code.
"""

from typing import NamedTuple

import numpy as np

from fe2x.errors import SolverError
from fe2x.materials.law import ConstitutiveLaw


class LaminateResponse(NamedTuple):
    """The laminate at ``n`` macro deformation gradients.

    Attributes:
        P: homogenized first Piola–Kirchhoff stress ``(n, 9)``.
        A: homogenized tangent ``dP̄/dF̄`` ``(n, 9, 9)``.
        F_phases: ``(2, n, 9)`` the deformation gradient in each phase.
        P_phases: ``(2, n, 9)`` the stress in each phase.
        a: ``(n, 3)`` the jump vector, ``F_1 − F_2 = a ⊗ N``.
        iterations: Newton iterations taken.
    """

    P: np.ndarray
    A: np.ndarray
    F_phases: np.ndarray
    P_phases: np.ndarray
    a: np.ndarray
    iterations: int


def _outer_N(a: np.ndarray, N: np.ndarray) -> np.ndarray:
    """Row-major ``a ⊗ N`` ``(n, 9)``."""
    return (a[:, :, None] * N[None, None, :]).reshape(a.shape[0], 9)


def _traction_operator(A: np.ndarray, N: np.ndarray) -> np.ndarray:
    """``(A·N)[i, kL] = A[iJ, kL] N_J`` ``(n, 3, 9)``."""
    return np.einsum("niJm,J->nim", A.reshape(A.shape[0], 3, 3, 9), N)


def _acoustic(A: np.ndarray, N: np.ndarray) -> np.ndarray:
    """Acoustic tensors ``Q_ij = A[iJ, jL] N_J N_L`` ``(n, 3, 3)``."""
    return np.einsum("niJjL,J,L->nij", A.reshape(A.shape[0], 3, 3, 3, 3), N, N)


def laminate(
    F_bar: np.ndarray,
    laws: tuple[ConstitutiveLaw, ConstitutiveLaw],
    fractions: tuple[float, float],
    N: np.ndarray,
    a0: np.ndarray | None = None,
    rtol: float = 1e-13,
    max_iterations: int = 50,
) -> LaminateResponse:
    """Exact laminate response at the macro deformation gradients ``F_bar (n, 9)``.

    Args:
        F_bar: macro deformation gradients, row-major ``(n, 9)``.
        laws: the two stateless finite-strain phase laws.
        fractions: ``(f_1, f_2)``, positive, summing to 1.
        N: layer normal (reference configuration), normalised here.
        a0: initial guess of the jump vector ``(n, 3)`` (default 0), e.g. the last load step's.
        rtol: Newton stops when ``|r| <= rtol |P̄ N| + 1e-14 max|A| max|F̄|`` at every point
            (the second term is the round-off level of the stresses, e.g. near F̄ = I).
        max_iterations: Newton iterations before a SolverError.
    """
    F_bar = np.asarray(F_bar, dtype=float)
    n = F_bar.shape[0]
    N = np.asarray(N, dtype=float) / np.linalg.norm(N)
    f1, f2 = fractions
    if not (f1 > 0 and f2 > 0 and abs(f1 + f2 - 1) < 1e-12):
        raise ValueError(f"laminate: fractions {fractions} must be positive and sum to 1")
    a = np.zeros((n, 3)) if a0 is None else np.array(a0, dtype=float)
    states = [law.initial_state(n) for law in laws]
    roundoff = np.abs(F_bar).max(axis=1)
    for iteration in range(max_iterations + 1):
        jump = _outer_N(a, N)
        F1, F2 = F_bar + f2 * jump, F_bar - f1 * jump
        (P1, A1, _), (P2, A2, _) = (
            law.update(F, s) for law, F, s in zip(laws, (F1, F2), states, strict=True)
        )
        r = np.einsum("niJ,J->ni", (P1 - P2).reshape(n, 3, 3), N)
        t = np.einsum("niJ,J->ni", (f1 * P1 + f2 * P2).reshape(n, 3, 3), N)
        tol = rtol * np.linalg.norm(t, axis=1) + 1e-14 * roundoff * np.maximum(
            np.abs(A1).max(axis=(1, 2)), np.abs(A2).max(axis=(1, 2))
        )
        K = f2 * _acoustic(A1, N) + f1 * _acoustic(A2, N)
        if np.all(np.linalg.norm(r, axis=1) <= tol):
            break
        if iteration == max_iterations:
            raise SolverError(f"laminate: Newton did not converge in {max_iterations} iterations")
        a = a - np.linalg.solve(K, r[:, :, None])[:, :, 0]
    # implicit differentiation of r(a(F̄), F̄) = 0 at the converged point
    da = -np.linalg.solve(K, _traction_operator(A1 - A2, N))  # (n, 3, 9): da_j / dF̄_kL
    D = (da[:, :, None, :] * N[None, None, :, None]).reshape(n, 9, 9)  # d(a ⊗ N)/dF̄
    A = f1 * A1 + f2 * A2 + f1 * f2 * (A1 - A2) @ D
    return LaminateResponse(
        f1 * P1 + f2 * P2, A, np.stack([F1, F2]), np.stack([P1, P2]), a, iteration
    )
