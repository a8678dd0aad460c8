"""Finite-strain kinematics and stress-measure conversions on batches of 3×3 tensors.

Conventions (DESIGN.md, "Finite strain conventions"): a second-order tensor ``T`` of ``n``
points is ``(n, 3, 3)`` here and ``(n, 9)`` at a law's boundary, row-major 11, 12, 13, 21, ...,
33; a fourth-order tensor ``X_ijkl`` is the ``(n, 9, 9)`` matrix ``X[3i+j, 3k+l]``. The first
Piola–Kirchhoff tangent is ``A[3i+J, 3k+L] = ∂P_iJ/∂F_kL``, never symmetrised. Lagrangian
tangents ``∂S/∂E`` are minor symmetric in both index pairs (derivatives of a symmetric tensor
with respect to the symmetric ``E``), as are the small-strain stiffnesses they meet at F = I.
The Hencky strain, its derivatives and the push-forward to ``(P, A)`` are compiled point loops
(numba); their public functions take and return batches.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from fe2x.errors import SolverError

__all__ = [
    "PLANE_STRAIN_ENTRIES",
    "LogStrain",
    "cauchy_from_piola",
    "checked_deformation",
    "embed_plane_strain",
    "flatten",
    "green_lagrange",
    "log_divided_difference",
    "log_second_divided_difference",
    "log_strain",
    "log_stress_to_piola",
    "log_stress_to_pk2",
    "piola_from_kirchhoff",
    "piola_from_pk2",
    "reduce_plane_strain",
    "tangent_from_pk2",
    "unflatten",
]

PLANE_STRAIN_ENTRIES = (0, 1, 3, 4)
"""Entries 11, 12, 21, 22 of a row-major 3×3 tensor: the 2D (n, 4) row-major tensor."""


def flatten(T: np.ndarray) -> np.ndarray:
    """Row-major ``(n, 9)`` from ``(n, 3, 3)`` tensors.

    >>> flatten(np.arange(9.0).reshape(1, 3, 3)).tolist()
    [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]
    """
    T = np.asarray(T, dtype=float)
    return T.reshape(T.shape[0], 9)


def unflatten(T: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` tensors from row-major ``(n, 9)``: ``T[:, 3 i + j] -> T[:, i, j]``.

    >>> unflatten(np.arange(9.0)[None])[0, 0, 1], unflatten(np.arange(9.0)[None])[0, 1, 0]
    (np.float64(1.0), np.float64(3.0))
    """
    T = np.asarray(T, dtype=float)
    if T.ndim != 2 or T.shape[1] != 9:
        raise ValueError(f"expected (n, 9) row-major tensors, got shape {T.shape}")
    return T.reshape(T.shape[0], 3, 3)


def checked_deformation(F: np.ndarray, who: str, positive: bool = True) -> np.ndarray:
    """``J = det F`` ``(n,)`` of ``(n, 3, 3)`` deformation gradients, or a SolverError.

    Raises:
        SolverError: ``F`` is not finite, or (if ``positive``) ``det F <= 0`` (inverted or
            collapsed material) at some point; the caller then cuts the step back.
    """
    finite = np.isfinite(F).all(axis=(1, 2))
    if not finite.all():
        bad = int(np.count_nonzero(~finite))
        raise SolverError(f"{who}: deformation gradient is not finite at {bad} point(s)")
    J = np.linalg.det(F)
    if positive and not (J > 0.0).all():
        bad = int(np.count_nonzero(~(J > 0.0)))
        raise SolverError(
            f"{who}: det F <= 0 at {bad} point(s) (smallest {J.min():.3g}); "
            "the material is inverted"
        )
    return J


def green_lagrange(F: np.ndarray) -> np.ndarray:
    """Green–Lagrange strain ``E = (Fᵀ F − I) / 2`` of ``(n, 3, 3)`` tensors."""
    return 0.5 * (np.swapaxes(F, 1, 2) @ F - np.eye(3))


def piola_from_pk2(F: np.ndarray, S: np.ndarray) -> np.ndarray:
    """First Piola–Kirchhoff stress ``P = F S`` from the second, ``(n, 3, 3)``."""
    return F @ S


def tangent_from_pk2(F: np.ndarray, S: np.ndarray, dS_dE: np.ndarray) -> np.ndarray:
    """``A = ∂P/∂F`` ``(n, 9, 9)`` of ``P = F S(E)`` from the Lagrangian ``S`` and ``ℂ = ∂S/∂E``.

    ``A_iJkL = δ_ik S_JL + F_iI ℂ_IJLN F_kN``, which needs ``ℂ`` minor symmetric in its last
    pair (``ℂ[3I+J, 3L+N] = ℂ[3I+J, 3N+L]``).

    Args:
        F: deformation gradients ``(n, 3, 3)``.
        S: second Piola–Kirchhoff stresses ``(n, 3, 3)``, symmetric.
        dS_dE: ``ℂ[3I+J, 3K+L] = ∂S_IJ/∂E_KL`` ``(n, 9, 9)``.
    """
    F = np.asarray(F, dtype=float)
    A = np.empty((F.shape[0], 9, 9))
    _tangent_kernel(F, np.asarray(S, dtype=float), np.asarray(dS_dE, dtype=float), A)
    return A


def piola_from_kirchhoff(F: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """First Piola–Kirchhoff stress ``P = τ F⁻ᵀ`` from the Kirchhoff stress, ``(n, 3, 3)``."""
    return np.swapaxes(np.linalg.solve(F, np.swapaxes(tau, 1, 2)), 1, 2)


def cauchy_from_piola(F: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Cauchy stress ``σ = P Fᵀ / J`` ``(n, 3, 3)``, ``J = det F``."""
    return (P @ np.swapaxes(F, 1, 2)) / np.linalg.det(F)[:, None, None]


def embed_plane_strain(F2: np.ndarray) -> np.ndarray:
    """3D row-major ``F`` ``(n, 9)`` of in-plane row-major ``F`` ``(n, 4)`` (11, 12, 21, 22).

    The embedding has ``F33 = 1`` and ``F13 = F23 = F31 = F32 = 0``.

    >>> embed_plane_strain(np.array([[1.0, 2.0, 3.0, 4.0]])).tolist()
    [[1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 1.0]]
    """
    F2 = np.asarray(F2, dtype=float)
    if F2.ndim != 2 or F2.shape[1] != 4:
        raise ValueError(f"expected (n, 4) in-plane deformation gradients, got shape {F2.shape}")
    F = np.zeros((F2.shape[0], 9))
    F[:, PLANE_STRAIN_ENTRIES] = F2
    F[:, 8] = 1.0
    return F


def reduce_plane_strain(P: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane ``P`` ``(n, 4)`` and ``A`` ``(n, 4, 4)`` of 3D ``(n, 9)``, ``(n, 9, 9)``.

    The tangent block needs no condensation: ``F13, F23, F31, F32, F33`` are prescribed.
    """
    rows = list(PLANE_STRAIN_ENTRIES)
    return P[:, rows], A[:, rows][:, :, rows]


# -- the Lagrangian logarithmic (Hencky) strain --------------------------------------------

#: |z| below which g(z) = artanh(z)/z is its series 1 + z²/3 + z⁴/5 (error z⁶/7 < 2e-25).
_Z_SERIES = 1e-4

#: Relative spread (max − min) / mean of the arguments below which the second divided
#: difference of the logarithm is its Taylor series (relative error below 1e-12 either side).
_SERIES_SPREAD = 1e-3

#: Jacobi sweeps after which the eigen-decomposition gives up (a 3×3 needs at most 6 or so).
_MAX_SWEEPS = 30

#: Row, column and weight (1 or √2) of each 3D Mandel component, and the component of each
#: (row, column).
_MANDEL_I = np.array([0, 1, 2, 1, 0, 0])
_MANDEL_J = np.array([0, 1, 2, 2, 2, 1])
_MANDEL_W = np.array([1.0, 1.0, 1.0, math.sqrt(2.0), math.sqrt(2.0), math.sqrt(2.0)])
_MANDEL_OF = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])
_INV_W = 1.0 / _MANDEL_W
_HALF_WW = 0.5 * np.outer(_MANDEL_W, _MANDEL_W)
_INV_WW = np.outer(_INV_W, _INV_W)


@numba.vectorize(["float64(float64, float64)"], cache=True)
def log_divided_difference(x, y):  # pragma: no cover (compiled; the tests check its results)
    """First divided difference of ``f = ½ ln`` for positive arrays, without cancellation.

    ``f[x, y] = ½ (ln x − ln y) / (x − y)``, ``f[x, x] = 1 / (2 x)``.

    Uses ``ln(x / y) = 2 artanh(z)``, ``z = (x − y) / (x + y)``: ``f[x, y] = g(z) / (x + y)``,
    ``g(z) = artanh(z) / z = 1 + z²/3 + z⁴/5 + ...``. A compiled ufunc: it broadcasts over
    arrays, and the compiled kernels call it on scalars.

    >>> float(log_divided_difference(np.array(2.0), np.array(2.0)))
    0.25
    """
    s = x + y
    z = (x - y) / s
    if abs(z) < _Z_SERIES:
        z2 = z * z
        return (1.0 + z2 / 3.0 + z2 * z2 / 5.0) / s
    return math.atanh(z) / z / s


@numba.njit(cache=True, nogil=True)
def _clustered_second_difference(x, y, w):  # pragma: no cover (compiled; tests check it)
    """``f[x, y, w]`` of ``f = ½ ln`` by its Taylor series about the mean (clustered arguments)."""
    m = (x + y + w) / 3.0
    # f^(2+k)(m) / (2+k)! = (-1)^(k+1) / (2 (k+2) m^(k+2)); h1 = 0 since Σ d = 0
    dx, dy, dw = x - m, y - m, w - m
    p2 = dx * dx + dy * dy + dw * dw
    p3 = dx * dx * dx + dy * dy * dy + dw * dw * dw
    p4 = dx**4 + dy**4 + dw**4
    h2, h3, h4 = p2 / 2.0, p3 / 3.0, (p2 * p2 + 2.0 * p4) / 8.0
    u = 1.0 / m
    return -(u * u) / 4.0 * (1.0 + u * u * (h2 / 2.0 - 0.4 * u * h3 + u * u * h4 / 3.0))


@numba.vectorize(["float64(float64, float64, float64)"], cache=True)
def log_second_divided_difference(x, y, w):  # pragma: no cover (compiled; tests check it)
    """Second divided difference ``f[x, y, w]`` of ``f = ½ ln`` for positive arrays.

    It is symmetric in its arguments and defined for coincident ones too
    (``f[x, x, x] = f''(x)/2 = −1/(4 x²)``).

    Spread arguments: ``(f[lo, mid] − f[mid, hi]) / (lo − hi)``. Clustered arguments (relative
    spread below 1e-3): ``Σ_k f⁽²⁺ᵏ⁾(m)/(2+k)! h_k(d)``, ``m`` their mean, ``d`` the deviations
    from it, ``h_k`` the complete homogeneous symmetric polynomials, to ``k = 4``. A compiled
    ufunc, as :func:`log_divided_difference`.

    >>> float(log_second_divided_difference(np.array(0.5), np.array(0.5), np.array(0.5)))
    -1.0
    """
    lo, hi = min(x, y, w), max(x, y, w)
    mid = max(min(x, y), min(max(x, y), w))
    if (hi - lo) / ((x + y + w) / 3.0) >= _SERIES_SPREAD:
        return (log_divided_difference(lo, mid) - log_divided_difference(mid, hi)) / (lo - hi)
    return _clustered_second_difference(x, y, w)


class LogStrain(NamedTuple):
    """The Hencky strain ``e = ½ ln C`` of ``n`` deformation gradients, with the spectral form of C.

    The spectral form ``C = Σ_a c_a N_a ⊗ N_a`` is what the derivatives of ``e`` need.

    In the eigenbasis ``{N_a}`` the derivatives of ``e`` with respect to ``E = (C − I)/2`` are
    diagonal (Daleckii–Krein): ``de_ab = d1_ab dE_ab`` and
    ``d²e_ab[dE, dE'] = Σ_c d2_acb (dE_ac dE'_cb + dE'_ac dE_cb)``.

    Attributes:
        e: Hencky strain, Mandel ``(n, 6)``.
        N: orthonormal eigenvectors of ``C`` as columns ``(n, 3, 3)``.
        c: eigenvalues of ``C`` ``(n, 3)``, in the order of the columns of ``N``.
        d1: ``2 f[c_a, c_b]`` ``(n, 3, 3)``, ``f = ½ ln``.
        d2: ``4 f[c_a, c_b, c_c]`` ``(n, 3, 3, 3)``.
    """

    e: np.ndarray
    N: np.ndarray
    c: np.ndarray
    d1: np.ndarray
    d2: np.ndarray


def log_strain(F: np.ndarray, who: str = "log_strain") -> LogStrain:
    """Hencky strain ``e = ½ ln(Fᵀ F)`` of ``(n, 3, 3)`` deformation gradients (``det F > 0``).

    It comes with its first and second derivative coefficients (:class:`LogStrain`). ``C`` is
    diagonalised as ``E = (H + Hᵀ + Hᵀ H)/2``, ``H = F − I``, by cyclic Jacobi rotations:
    orthonormal eigenvectors for equal eigenvalues too, and ``½ ln c_a = ½ log1p(2 E_a)``
    without cancellation near ``F = I``.

    Raises:
        SolverError: ``F`` is not finite or ``det F <= 0`` at some point (the message names
            ``who``); the caller then cuts the step back.
    """
    F = np.asarray(F, dtype=float)
    if F.ndim != 3 or F.shape[1:] != (3, 3):
        raise ValueError(f"expected (n, 3, 3) deformation gradients, got shape {F.shape}")
    n = F.shape[0]
    e, N, c = np.empty((n, 6)), np.empty((n, 3, 3)), np.empty((n, 3))
    d1, d2 = np.empty((n, 3, 3)), np.empty((n, 3, 3, 3))
    if _log_strain_kernel(F, e, N, c, d1, d2):
        checked_deformation(F, who)  # raises, saying what is wrong
        raise SolverError(f"{who}: the Jacobi eigen-solver did not converge")  # pragma: no cover
    return LogStrain(e, N, c, d1, d2)


def log_stress_to_pk2(
    strain: LogStrain, T: np.ndarray, dT_de: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Second Piola–Kirchhoff stress and ``∂S/∂E`` of a law ``T(e)`` in the Hencky strain.

    With ``ℙ = ∂e/∂E``: ``S = T : ℙ`` and ``∂S/∂E = ℙ : (∂T/∂e) : ℙ + T : ∂²e/∂E∂E``
    (Miehe, Apel & Lambrecht 2002, eqs. 3.9–3.11), evaluated in the eigenbasis of ``C``.

    Args:
        strain: the Hencky strain of the deformation gradients (:func:`log_strain`).
        T: stresses conjugate to ``e``, Mandel ``(n, 6)``.
        dT_de: ``∂T/∂e``, Mandel ``(n, 6, 6)``.

    Returns:
        ``S`` ``(n, 3, 3)`` and ``ℂ[3I+J, 3K+L] = ∂S_IJ/∂E_KL`` ``(n, 9, 9)`` (minor symmetric).
    """
    T, dT_de = _checked_log_stress(strain, T, dT_de)
    n = T.shape[0]
    S, dS_dE = np.empty((n, 3, 3)), np.empty((n, 9, 9))
    _log_stress_kernel(strain.N, strain.d1, strain.d2, T, dT_de, S, dS_dE)
    return S, dS_dE


def log_stress_to_piola(
    F: np.ndarray,
    strain: LogStrain,
    T: np.ndarray,
    dT_de: np.ndarray,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``P = F S`` ``(n, 3, 3)`` and ``A = ∂P/∂F`` ``(n, 9, 9)`` of a law ``T(e)``.

    :func:`log_stress_to_pk2` followed by :func:`tangent_from_pk2`, in one compiled pass.

    Args:
        F: deformation gradients ``(n, 3, 3)``.
        strain: their Hencky strain (:func:`log_strain`).
        T: stresses conjugate to ``e``, Mandel ``(n, 6)``.
        dT_de: ``∂T/∂e``, Mandel ``(n, 6, 6)``.
        out: C-contiguous arrays ``(n, 3, 3)`` and ``(n, 9, 9)`` to fill and return as
            ``P``, ``A``; default new ones.
    """
    T, dT_de = _checked_log_stress(strain, T, dT_de)
    n = T.shape[0]
    P, A = out if out is not None else (np.empty((n, 3, 3)), np.empty((n, 9, 9)))
    if P.shape != (n, 3, 3) or A.shape != (n, 9, 9):
        raise ValueError(f"out shapes {P.shape}, {A.shape}; expected ({n}, 3, 3), ({n}, 9, 9)")
    _log_piola_kernel(np.asarray(F, dtype=float), strain.N, strain.d1, strain.d2, T, dT_de, P, A)
    return P, A


def _checked_log_stress(
    strain: LogStrain, T: np.ndarray, dT_de: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``T`` and ``∂T/∂e`` as float arrays, or a ValueError if their shapes do not fit."""
    n = strain.N.shape[0]
    T, dT_de = np.asarray(T, dtype=float), np.asarray(dT_de, dtype=float)
    if T.shape != (n, 6) or dT_de.shape != (n, 6, 6):
        raise ValueError(
            f"expected Mandel T ({n}, 6) and dT/de ({n}, 6, 6), got {T.shape} and {dT_de.shape}"
        )
    return T, dT_de


# -- compiled point kernels ----------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _tangent_point(F, S, dS, A, X):  # pragma: no cover (compiled; the tests check its results)
    """``A_iJkL = δ_ik S_JL + F_iI ℂ_IJLN F_kN`` of one point; ``X`` ``(3, 3, 3, 3)`` is scratch."""
    # X[I, J, L, k] = ℂ_IJLN F_kN, then A_iJkL = δ_ik S_JL + F_iI X[I, J, L, k]
    for I in range(3):
        for J in range(3):
            for L in range(3):
                for k in range(3):
                    value = 0.0
                    for N in range(3):
                        value += dS[3 * I + J, 3 * L + N] * F[k, N]
                    X[I, J, L, k] = value
    for i in range(3):
        for J in range(3):
            for k in range(3):
                for L in range(3):
                    value = S[J, L] if i == k else 0.0
                    for I in range(3):
                        value += F[i, I] * X[I, J, L, k]
                    A[3 * i + J, 3 * k + L] = value


@numba.njit(cache=True, nogil=True)
def _tangent_kernel(F, S, dS, A):  # pragma: no cover (compiled; the tests check its results)
    """:func:`tangent_from_pk2` point by point, filling ``A``."""
    X = np.empty((3, 3, 3, 3))
    for k in range(F.shape[0]):
        _tangent_point(F[k], S[k], dS[k], A[k], X)


@numba.njit(cache=True, nogil=True)
def _negligible(apq, app, aqq):  # pragma: no cover (compiled; the tests check its results)
    """Rutishauser's test: a hundred times ``apq`` changes neither ``app`` nor ``aqq``."""
    g = 100.0 * abs(apq)
    return abs(app) + g == abs(app) and abs(aqq) + g == abs(aqq)


@numba.njit(cache=True, nogil=True)
def _rotation(app, aqq, apq):  # pragma: no cover (compiled; the tests check its results)
    """``t = tan φ``, ``s = sin φ`` and ``τ = s / (1 + cos φ)`` of the rotation zeroing ``apq``.

    ``t`` is the smaller root of ``t² + 2 θ t − 1 = 0``, ``θ = cot 2φ = (aqq − app) / (2 apq)``.
    """
    h = aqq - app
    t = 2.0 * apq / (abs(h) + math.sqrt(h * h + 4.0 * apq * apq))
    if h < 0.0:
        t = -t
    c = 1.0 / math.sqrt(t * t + 1.0)
    s = t * c
    return t, s, s / (1.0 + c)


@numba.njit(cache=True, nogil=True)
def _jacobi_eigen(A, V):  # pragma: no cover (compiled; the tests check its results)
    """Eigenvalues ``(λ₀, λ₁, λ₂, converged)`` of the symmetric 3×3 ``A`` by cyclic Jacobi.

    Fills ``V`` with the orthonormal eigenvectors as columns, ``A = V diag(λ) Vᵀ``. Each
    rotation zeroes one off-diagonal entry (``x' = x − s (y + τ x)``, ``y' = y + s (x − τ y)``);
    an entry is dropped once :func:`_negligible`. ``converged`` is False if ``_MAX_SWEEPS``
    sweeps did not diagonalise ``A``.
    """
    a00, a11, a22, a01, a02, a12 = A[0, 0], A[1, 1], A[2, 2], A[0, 1], A[0, 2], A[1, 2]
    v00 = v11 = v22 = 1.0
    v01 = v02 = v10 = v12 = v20 = v21 = 0.0
    for _ in range(_MAX_SWEEPS):
        if a01 == 0.0 and a02 == 0.0 and a12 == 0.0:
            break
        if _negligible(a01, a00, a11):  # (p, q) = (0, 1)
            a01 = 0.0
        else:
            t, s, tau = _rotation(a00, a11, a01)
            a00, a11, a01 = a00 - t * a01, a11 + t * a01, 0.0
            a02, a12 = a02 - s * (a12 + tau * a02), a12 + s * (a02 - tau * a12)
            v00, v01 = v00 - s * (v01 + tau * v00), v01 + s * (v00 - tau * v01)
            v10, v11 = v10 - s * (v11 + tau * v10), v11 + s * (v10 - tau * v11)
            v20, v21 = v20 - s * (v21 + tau * v20), v21 + s * (v20 - tau * v21)
        if _negligible(a02, a00, a22):  # (0, 2)
            a02 = 0.0
        else:
            t, s, tau = _rotation(a00, a22, a02)
            a00, a22, a02 = a00 - t * a02, a22 + t * a02, 0.0
            a01, a12 = a01 - s * (a12 + tau * a01), a12 + s * (a01 - tau * a12)
            v00, v02 = v00 - s * (v02 + tau * v00), v02 + s * (v00 - tau * v02)
            v10, v12 = v10 - s * (v12 + tau * v10), v12 + s * (v10 - tau * v12)
            v20, v22 = v20 - s * (v22 + tau * v20), v22 + s * (v20 - tau * v22)
        if _negligible(a12, a11, a22):  # (1, 2)
            a12 = 0.0
        else:
            t, s, tau = _rotation(a11, a22, a12)
            a11, a22, a12 = a11 - t * a12, a22 + t * a12, 0.0
            a01, a02 = a01 - s * (a02 + tau * a01), a02 + s * (a01 - tau * a02)
            v01, v02 = v01 - s * (v02 + tau * v01), v02 + s * (v01 - tau * v02)
            v11, v12 = v11 - s * (v12 + tau * v11), v12 + s * (v11 - tau * v12)
            v21, v22 = v21 - s * (v22 + tau * v21), v22 + s * (v21 - tau * v22)
    V[0, 0], V[0, 1], V[0, 2] = v00, v01, v02
    V[1, 0], V[1, 1], V[1, 2] = v10, v11, v12
    V[2, 0], V[2, 1], V[2, 2] = v20, v21, v22
    return a00, a11, a22, a01 == 0.0 and a02 == 0.0 and a12 == 0.0


@numba.njit(cache=True, nogil=True)
def _log_strain_kernel(F, e, N, c, d1, d2):  # pragma: no cover (compiled; tests check it)
    """:func:`log_strain` point by point, filling ``e, N, c, d1, d2``.

    Returns the number of points where ``F`` is not finite, ``det F <= 0`` or the Jacobi
    rotations did not converge (their outputs are left unset).
    """
    A = np.empty((3, 3))
    H = np.empty((3, 3))
    half_log = np.empty(3)
    failed = 0
    for k in range(F.shape[0]):
        f = F[k]
        J = (
            f[0, 0] * (f[1, 1] * f[2, 2] - f[1, 2] * f[2, 1])
            - f[0, 1] * (f[1, 0] * f[2, 2] - f[1, 2] * f[2, 0])
            + f[0, 2] * (f[1, 0] * f[2, 1] - f[1, 1] * f[2, 0])
        )
        if not (J > 0.0 and math.isfinite(J)):  # a non-finite entry makes J non-finite
            failed += 1
            continue
        for i in range(3):
            for j in range(3):
                H[i, j] = f[i, j] - 1.0 if i == j else f[i, j]
        for i in range(3):
            for j in range(i, 3):
                value = 0.5 * (H[i, j] + H[j, i])
                for m in range(3):
                    value += 0.5 * H[m, i] * H[m, j]
                A[i, j] = A[j, i] = value
        V = N[k]
        l0, l1, l2, converged = _jacobi_eigen(A, V)
        if not converged:
            failed += 1
            continue
        for a, lam in enumerate((l0, l1, l2)):
            c[k, a] = 1.0 + 2.0 * lam
            half_log[a] = 0.5 * math.log1p(2.0 * lam)
        for m in range(6):
            i, j = _MANDEL_I[m], _MANDEL_J[m]
            value = 0.0
            for a in range(3):
                value += half_log[a] * V[i, a] * V[j, a]
            e[k, m] = _MANDEL_W[m] * value
        for a in range(3):
            for b in range(a, 3):
                d1[k, a, b] = d1[k, b, a] = 2.0 * log_divided_difference(c[k, a], c[k, b])
        for a in range(3):
            for b in range(a, 3):
                for m in range(b, 3):
                    value = 2.0 * _second_from_first(c[k], d1[k], a, b, m)
                    d2[k, a, b, m] = d2[k, a, m, b] = d2[k, b, a, m] = value
                    d2[k, b, m, a] = d2[k, m, a, b] = d2[k, m, b, a] = value
    return failed


@numba.njit(cache=True, nogil=True)
def _second_from_first(c, d1, a, b, m):  # pragma: no cover (compiled; the tests check it)
    """``2 f[c_a, c_b, c_m]`` of ``f = ½ ln`` from the first differences ``d1 = 2 f[c_p, c_q]``.

    As :func:`log_second_divided_difference`, without evaluating the first differences again:
    spread arguments give ``(d1[lo, mid] − d1[mid, hi]) / (c_lo − c_hi)``.
    """
    x, y, w = c[a], c[b], c[m]
    i_lo, lo, i_hi, hi = (a, x, b, y) if x <= y else (b, y, a, x)
    if w < lo:
        i_mid, i_lo, lo = i_lo, m, w
    elif w > hi:
        i_mid, i_hi, hi = i_hi, m, w
    else:
        i_mid = m
    if 3.0 * (hi - lo) < _SERIES_SPREAD * (x + y + w):
        return 2.0 * _clustered_second_difference(x, y, w)
    return (d1[i_lo, i_mid] - d1[i_mid, i_hi]) / (lo - hi)


@numba.njit(cache=True, nogil=True)
def _product6(A, B, C):  # pragma: no cover (compiled; the tests check its results)
    """``C = A B`` of 6×6 matrices (``C`` distinct from both), a row of ``C`` in registers.

    Zero entries of ``A`` are skipped (the block-diagonal rotations of plane strain).
    """
    for r in range(6):
        c0 = c1 = c2 = c3 = c4 = c5 = 0.0
        for s in range(6):
            a = A[r, s]
            if a == 0.0:
                continue
            c0 += a * B[s, 0]
            c1 += a * B[s, 1]
            c2 += a * B[s, 2]
            c3 += a * B[s, 3]
            c4 += a * B[s, 4]
            c5 += a * B[s, 5]
        C[r, 0], C[r, 1], C[r, 2], C[r, 3], C[r, 4], C[r, 5] = c0, c1, c2, c3, c4, c5


@numba.njit(cache=True, nogil=True)
def _pk2_mandel_point(N, d1, d2, T, D, W, w, t):  # pragma: no cover (compiled; tests check it)
    """``S`` and ``ℂ`` of one point (:func:`log_stress_to_pk2`), left in ``w[3]`` and ``W[3]``.

    ``w[3][r] = S_IJ`` and ``W[3][r, m] = ℂ_IJKL`` for ``r, m`` the Mandel components of
    ``(I, J)``, ``(K, L)`` (without the Mandel weights).

    With ``Q`` the orthogonal Mandel matrix of the eigenbasis,
    ``Q[(i,j), (a,b)] = w_ij w_ab (N_ia N_jb + N_ib N_ja) / 2``, and ``W₁ = diag(d1)`` in
    Mandel order: ``Ŝ = W₁ Qᵀ T`` and ``Ĉ = W₁ Qᵀ D Q W₁ + T̂ : d2`` in the eigenbasis, then
    ``S = Q Ŝ``, ``ℂ = Q Ĉ Qᵀ``. ``W`` ``(4, 6, 6)``, ``w`` ``(4, 6)`` and ``t`` ``(3, 3)`` are
    scratch.
    """
    Q, Qt, X, C_hat = W[0], W[1], W[2], W[3]
    w1, T_hat, S_hat, S_m = w[0], w[1], w[2], w[3]
    for r in range(6):
        i, j = _MANDEL_I[r], _MANDEL_J[r]
        w1[r] = d1[i, j]
        for m in range(6):
            a, b = _MANDEL_I[m], _MANDEL_J[m]
            Q[r, m] = Qt[m, r] = _HALF_WW[r, m] * (N[i, a] * N[j, b] + N[i, b] * N[j, a])
    # T̂ = Qᵀ T, Ŝ = W₁ T̂, X = Qᵀ D Q (through C_hat = D Q)
    for m in range(6):
        value = 0.0
        for r in range(6):
            value += Qt[m, r] * T[r]
        T_hat[m] = value
        S_hat[m] = w1[m] * value
        t[_MANDEL_I[m], _MANDEL_J[m]] = t[_MANDEL_J[m], _MANDEL_I[m]] = _INV_W[m] * value
    _product6(D, Q, C_hat)
    _product6(Qt, C_hat, X)
    # T̂ : d²e, minor symmetric: L_pqrs = ½ (δ_qr T̂_ps d2_pqs + δ_pr T̂_qs d2_qps
    #   + δ_qs T̂_pr d2_pqr + δ_ps T̂_qr d2_qpr), with T̂_ab = t[a, b] = T̂[(a,b)] / w_ab
    for r in range(6):
        p, q = _MANDEL_I[r], _MANDEL_J[r]
        for m in range(6):
            u, v = _MANDEL_I[m], _MANDEL_J[m]
            L = 0.0
            if q == u:
                L += t[p, v] * d2[p, q, v]
            if p == u:
                L += t[q, v] * d2[q, p, v]
            if q == v:
                L += t[p, u] * d2[p, q, u]
            if p == v:
                L += t[q, u] * d2[q, p, u]
            C_hat[r, m] = w1[r] * X[r, m] * w1[m] + _HALF_WW[r, m] * L
    # back to the Cartesian basis: S = Q Ŝ, ℂ = Q Ĉ Qᵀ (through X = Ĉ Qᵀ)
    _product6(C_hat, Qt, X)
    _product6(Q, X, C_hat)
    for r in range(6):
        value = 0.0
        for s in range(6):
            value += Q[r, s] * S_hat[s]
        S_m[r] = _INV_W[r] * value
        for m in range(6):
            C_hat[r, m] *= _INV_WW[r, m]


@numba.njit(cache=True, nogil=True)
def _pk2_point(N, d1, d2, T, D, S, dS, W, w, t):  # pragma: no cover (compiled; tests check it)
    """``S`` ``(3, 3)`` and ``ℂ`` ``(9, 9)`` of one point (:func:`_pk2_mandel_point`)."""
    _pk2_mandel_point(N, d1, d2, T, D, W, w, t)
    S_m, C_hat = w[3], W[3]
    for I in range(3):
        for J in range(3):
            r = _MANDEL_OF[I, J]
            S[I, J] = S_m[r]
            for K in range(3):
                for M in range(3):
                    dS[3 * I + J, 3 * K + M] = C_hat[r, _MANDEL_OF[K, M]]


@numba.njit(cache=True, nogil=True)
def _log_stress_kernel(N, d1, d2, T, D, S, dS):  # pragma: no cover (compiled; tests check it)
    """:func:`log_stress_to_pk2` point by point, filling ``S`` and ``dS``."""
    W, w, t = np.empty((4, 6, 6)), np.empty((4, 6)), np.empty((3, 3))
    for k in range(N.shape[0]):
        _pk2_point(N[k], d1[k], d2[k], T[k], D[k], S[k], dS[k], W, w, t)


@numba.njit(cache=True, nogil=True)
def _log_piola_kernel(F, N, d1, d2, T, D, P, A):  # pragma: no cover (compiled; tests check it)
    """:func:`log_stress_to_piola` point by point, filling ``P`` and ``A``."""
    W, w, t = np.empty((4, 6, 6)), np.empty((4, 6)), np.empty((3, 3))
    X = np.empty((3, 6, 3))
    S_m, C = w[3], W[3]
    for k in range(N.shape[0]):
        _pk2_mandel_point(N[k], d1[k], d2[k], T[k], D[k], W, w, t)
        for i in range(3):
            for J in range(3):
                value = 0.0
                for I in range(3):
                    value += F[k, i, I] * S_m[_MANDEL_OF[I, J]]
                P[k, i, J] = value
        _mandel_tangent_point(F[k], S_m, C, A[k], X)


@numba.njit(cache=True, nogil=True)
def _mandel_tangent_point(F, S, C, A, X):  # pragma: no cover (compiled; tests check it)
    """``A_iJkL = δ_ik S_JL + F_iI ℂ_IJLN F_kN`` of one point from unweighted Mandel ``S``, ``ℂ``.

    ``S[r] = S_IJ``, ``C[r, m] = ℂ_IJKL`` (:func:`_pk2_mandel_point`); ``X`` ``(3, 6, 3)`` is
    scratch. Zero entries of ``F`` are skipped (plane strain).
    """
    # X[k, (I,J), L] = ℂ_IJLN F_kN, then A_iJkL = δ_ik S_JL + F_iI X[k, (I,J), L]
    X[:] = 0.0
    for k in range(3):
        for N in range(3):
            f = F[k, N]
            if f == 0.0:
                continue
            for L in range(3):
                col = _MANDEL_OF[L, N]
                for r in range(6):
                    X[k, r, L] += C[r, col] * f
    for i in range(3):
        for J in range(3):
            for k in range(3):
                for L in range(3):
                    A[3 * i + J, 3 * k + L] = S[_MANDEL_OF[J, L]] if i == k else 0.0
    for i in range(3):
        for I in range(3):
            f = F[i, I]
            if f == 0.0:
                continue
            for J in range(3):
                r = _MANDEL_OF[I, J]
                for k in range(3):
                    for L in range(3):
                        A[3 * i + J, 3 * k + L] += f * X[k, r, L]
