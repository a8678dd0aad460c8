"""Finite-strain kinematics and stress-measure conversions on batches of 3×3 tensors.

Conventions (DESIGN.md, "Finite strain conventions"): a second-order tensor ``T`` of ``n``
points is ``(n, 3, 3)`` here and ``(n, 9)`` at a law's boundary, row-major 11, 12, 13, 21, ...,
33; a fourth-order tensor ``X_ijkl`` is the ``(n, 9, 9)`` matrix ``X[3i+j, 3k+l]``. The first
Piola–Kirchhoff tangent is ``A[3i+J, 3k+L] = ∂P_iJ/∂F_kL``, never symmetrised. Lagrangian
tangents ``∂S/∂E`` are minor symmetric in both index pairs (derivatives of a symmetric tensor
with respect to the symmetric ``E``), as are the small-strain stiffnesses they meet at F = I.
"""

from __future__ import annotations

from typing import NamedTuple

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
    "log_stress_to_pk2",
    "piola_from_kirchhoff",
    "piola_from_pk2",
    "reduce_plane_strain",
    "tangent_from_pk2",
    "unflatten",
]

PLANE_STRAIN_ENTRIES = (0, 1, 3, 4)
"""Entries 11, 12, 21, 22 of a row-major 3×3 tensor: the 2D (n, 4) row-major tensor."""

#: Relative spread (max − min) / mean of the arguments below which the divided differences of
#: the logarithm switch to their Taylor series (relative error below 1e-12 either side).
_SERIES_SPREAD = 1e-3

#: The 10 index triples a <= b <= c (the second divided differences are symmetric), and the
#: triple of each of the 27 (a, b, c) in row-major order.
_TRIPLES = np.array([(a, b, c) for a in range(3) for b in range(a, 3) for c in range(b, 3)]).T
_TRIPLE_OF = np.array(
    [
        [tuple(t) for t in _TRIPLES.T].index(tuple(sorted((a, b, c))))
        for a in range(3)
        for b in range(3)
        for c in range(3)
    ]
)


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
    n = F.shape[0]
    # X[I, J, L, k] = ℂ_IJLN F_kN, then F_iI X[I, J, L, k] -> (i, J, L, k)
    X = np.ascontiguousarray(dS_dE).reshape(n, 27, 3) @ np.swapaxes(F, 1, 2)
    A = (F @ X.reshape(n, 3, 27)).reshape(n, 3, 3, 3, 3).transpose(0, 1, 2, 4, 3)
    A = A.reshape(n, 9, 9)
    for i in range(3):
        A[:, 3 * i : 3 * i + 3, 3 * i : 3 * i + 3] += S
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


def log_divided_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """First divided difference of ``f = ½ ln`` for positive arrays, without cancellation.

    ``f[x, y] = ½ (ln x − ln y) / (x − y)``, ``f[x, x] = 1 / (2 x)``.

    Uses ``ln(x / y) = 2 artanh(z)``, ``z = (x − y) / (x + y)``: ``f[x, y] = g(z) / (x + y)``,
    ``g(z) = artanh(z) / z = 1 + z²/3 + z⁴/5 + ...``.

    >>> float(log_divided_difference(np.array(2.0), np.array(2.0)))
    0.25
    """
    s = x + y
    z = (x - y) / s
    z2 = z * z
    small = np.abs(z) < 1e-4
    safe = np.where(small, 0.5, z)
    g = np.where(small, 1.0 + z2 / 3.0 + z2 * z2 / 5.0, np.arctanh(safe) / safe)
    return g / s


def log_second_divided_difference(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Second divided difference ``f[x, y, w]`` of ``f = ½ ln`` for positive arrays.

    It is symmetric in its arguments and defined for coincident ones too
    (``f[x, x, x] = f''(x)/2 = −1/(4 x²)``).

    Spread arguments: ``(f[lo, mid] − f[mid, hi]) / (lo − hi)``. Clustered arguments (relative
    spread below 1e-3): ``Σ_k f⁽²⁺ᵏ⁾(m)/(2+k)! h_k(d)``, ``m`` their mean, ``d`` the deviations
    from it, ``h_k`` the complete homogeneous symmetric polynomials, to ``k = 4``.
    """
    lo = np.minimum(np.minimum(x, y), w)
    hi = np.maximum(np.maximum(x, y), w)
    mid = x + y + w - lo - hi
    m = (x + y + w) / 3.0
    spread = (hi - lo) / m
    series = spread < _SERIES_SPREAD
    gap = np.where(series, 1.0, lo - hi)
    exact = (log_divided_difference(lo, mid) - log_divided_difference(mid, hi)) / gap
    # f^(2+k)(m) / (2+k)! = (-1)^(k+1) / (2 (k+2) m^(k+2)); h1 = 0 since Σ d = 0
    d = np.stack([x - m, y - m, w - m])
    p2, p3, p4 = (d**2).sum(axis=0), (d**3).sum(axis=0), (d**4).sum(axis=0)
    h2, h3, h4 = p2 / 2.0, p3 / 3.0, (p2 * p2 + 2.0 * p4) / 8.0
    u = 1.0 / m
    taylor = -(u**2) / 4.0 * (1.0 + u * u * (h2 / 2.0 - 0.4 * u * h3 + u * u * h4 / 3.0))
    return np.where(series, taylor, exact)


class LogStrain(NamedTuple):
    """The Hencky strain ``e = ½ ln C`` of ``n`` deformation gradients, with the spectral form of C.

    The spectral form ``C = Σ_a c_a N_a ⊗ N_a`` is what the derivatives of ``e`` need.

    In the eigenbasis ``{N_a}`` the derivatives of ``e`` with respect to ``E = (C − I)/2`` are
    diagonal (Daleckii–Krein): ``de_ab = d1_ab dE_ab`` and
    ``d²e_ab[dE, dE'] = Σ_c d2_acb (dE_ac dE'_cb + dE'_ac dE_cb)``.

    Attributes:
        e: Hencky strain ``(n, 3, 3)``.
        N: eigenvectors of ``C`` as columns ``(n, 3, 3)``.
        c: eigenvalues of ``C`` ``(n, 3)``.
        d1: ``2 f[c_a, c_b]`` ``(n, 3, 3)``, ``f = ½ ln``.
        d2: ``4 f[c_a, c_b, c_c]`` ``(n, 3, 3, 3)``.
    """

    e: np.ndarray
    N: np.ndarray
    c: np.ndarray
    d1: np.ndarray
    d2: np.ndarray


def log_strain(F: np.ndarray) -> LogStrain:
    """Hencky strain ``e = ½ ln(Fᵀ F)`` of ``(n, 3, 3)`` deformation gradients (``det F ≠ 0``).

    It comes with its first and second derivative coefficients (:class:`LogStrain`).
    """
    c, N = np.linalg.eigh(np.swapaxes(F, 1, 2) @ F)
    e = (N * (0.5 * np.log(c))[:, None, :]) @ np.swapaxes(N, 1, 2)
    n = c.shape[0]
    d1 = 2.0 * log_divided_difference(c[:, :, None], c[:, None, :])
    a, b, m = _TRIPLES
    d2 = 4.0 * log_second_divided_difference(c[:, a], c[:, b], c[:, m])[:, _TRIPLE_OF]
    return LogStrain(e, N, c, d1, d2.reshape(n, 3, 3, 3))


def _basis_change(N: np.ndarray) -> np.ndarray:
    """The basis change ``R[3i+j, 3a+b] = N_ia N_jb`` ``(n, 9, 9)`` to the eigenbasis ``{N_a}``.

    A fourth-order tensor ``X`` in the basis ``{N_a}`` is ``Rᵀ X R``.
    """
    n = N.shape[0]
    return (N[:, :, None, :, None] * N[:, None, :, None, :]).reshape(n, 9, 9)


def log_stress_to_pk2(
    strain: LogStrain, T: np.ndarray, dT_de: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Second Piola–Kirchhoff stress and ``∂S/∂E`` of a law ``T(e)`` in the Hencky strain.

    With ``ℙ = ∂e/∂E``: ``S = T : ℙ`` and ``∂S/∂E = ℙ : (∂T/∂e) : ℙ + T : ∂²e/∂E∂E``
    (Miehe, Apel & Lambrecht 2002, eqs. 3.9–3.11), evaluated in the eigenbasis of ``C``.

    Args:
        strain: the Hencky strain of the deformation gradients (:func:`log_strain`).
        T: stresses conjugate to ``e`` ``(n, 3, 3)``, symmetric.
        dT_de: ``∂T/∂e`` ``(n, 9, 9)``, minor symmetric.

    Returns:
        ``S`` ``(n, 3, 3)`` and ``∂S/∂E`` ``(n, 9, 9)`` (minor symmetric).
    """
    n = T.shape[0]
    N, d1, d2 = strain.N, strain.d1, strain.d2
    R = _basis_change(N)
    T_hat = np.swapaxes(N, 1, 2) @ T @ N
    S = N @ (d1 * T_hat) @ np.swapaxes(N, 1, 2)
    w = d1.reshape(n, 9)
    D_hat = w[:, :, None] * (np.swapaxes(R, 1, 2) @ dT_de @ R) * w[:, None, :]
    # T : d²e = Σ_abj V_ajb (dE_aj dE'_jb + dE'_aj dE_jb), V_ajb = T_ab d2_ajb symmetric in
    # (a, b); its minor-symmetric form puts V/2 at (a,j,j,b), (j,a,j,b), (a,j,b,j), (j,a,b,j)
    L = np.zeros((n, 3, 3, 3, 3))
    for j in range(3):
        V = 0.5 * T_hat * d2[:, :, j, :]
        L[:, :, j, j, :] += V
        L[:, j, :, j, :] += V
        L[:, :, j, :, j] += V
        L[:, j, :, :, j] += V
    C_hat = D_hat + L.reshape(n, 9, 9)
    return S, R @ C_hat @ np.swapaxes(R, 1, 2)
