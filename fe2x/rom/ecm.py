"""The Empirical Cubature Method: a few of the FE quadrature points, with positive weights.

They integrate a set of sampled integrands as the full rule does.

After Hernández, Caicedo & Ferrer (2017), "Dimensional hyper-reduction of nonlinear finite
element models via empirical cubature", CMAME 313, and the optimizing cubature of An, Kim &
James (2009). Given the integrands sampled at the ``n`` FE points, ``G`` ``(n, m)``, and the FE
weights ``w`` (weight × |det J|, positive), the SVD of the weighted matrix
``diag(√w) G = Ū S Vᵀ`` gives an L²(w)-orthonormal basis ``U_k(x_i) = Ū_ik / √w_i`` of the
integrands' span, to which the constant function is added (so that the volume is integrated
exactly). Its exact integrals are ``b = Ūᵀ √w``. Points are then selected greedily: each step
adds the point whose basis values are best aligned with the residual ``r = b − J_z ω``
(``J_z``: the basis values at the selected points ``z``), the weights are the non-negative
least-squares fit ``min_{ω ≥ 0} ‖J_z ω − b‖``, and points whose weight drops to zero leave the
set. The NNLS residual decreases strictly at every step, so no set is visited twice.

The error reported is the worst relative integration error over the span,
``max_{f ∈ span} |∫f − Σ_z ω_z f(x_z)| / (√V ‖f‖_{L²})`` with ``V = Σ w``, which equals
``‖b − J_z ω‖ / ‖b‖`` since ``‖b‖ = √V`` once the constant is in the span; it is the relative
error of the volume too and, with the SVD untruncated, bounds that of every training integrand
and of any function of their span, including those whose integral vanishes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.optimize

from fe2x.errors import Fe2xError

__all__ = ["ROUNDOFF", "Cubature", "empirical_cubature", "integration_errors"]

#: The relative integration error that ``tol = 0`` stands for (the round-off of the weights'
#: least-squares fit).
ROUNDOFF = 1e3 * np.finfo(float).eps


class Cubature(NamedTuple):
    """A reduced quadrature rule ``∫f ≈ Σ_k weights[k] f(x_{points[k]})``.

    Attributes:
        points: indices of the selected FE points, ascending.
        weights: their weights, all positive, summing to the volume ``Σ w``.
        error: worst relative integration error over the span of the integrands (module notes).
        n_modes: dimension of the orthogonal basis integrated (the constant included).
    """

    points: np.ndarray
    weights: np.ndarray
    error: float
    n_modes: int


def empirical_cubature(
    G: np.ndarray,
    w: np.ndarray,
    tol: float,
    svd_tol: float = 0.0,
    max_points: int | None = None,
) -> Cubature:
    """The ECM rule integrating the columns of ``G`` to the relative error ``tol``.

    Args:
        G: integrand snapshots ``(n_points, n_integrands)``: values at the FE points.
        w: the FE weights ``(n_points,)``, positive.
        tol: worst relative integration error allowed over the span (module notes); 0 asks
            for round-off (:data:`ROUNDOFF`).
        svd_tol: relative Frobenius norm of ``diag(√w) G`` that the basis may leave out,
            ``√(Σ_{k>r} s_k²) / √(Σ s_k²) ≤ svd_tol``; 0 keeps every numerically nonzero mode.
            With ``svd_tol > 0`` the error is over the truncated span: check the training
            integrands with :func:`integration_errors`.
        max_points: most points the rule may have (default: no limit beyond ``n_points``).

    Raises:
        Fe2xError: bad input, or ``tol`` cannot be met (the message gives the best error
            reached and with how many points).
    """
    G, w = _checked(G, w)
    if not tol >= 0.0:
        raise Fe2xError(f"ECM tolerance tol = {tol!r} must be >= 0")
    if not 0.0 <= svd_tol < 1.0:
        raise Fe2xError(f"ECM svd_tol = {svd_tol!r} must be in [0, 1)")
    n = w.size
    limit = n if max_points is None else int(max_points)
    if limit < 1:
        raise Fe2xError(f"ECM max_points = {max_points!r} must be at least 1")
    sqrt_w = np.sqrt(w)
    U = _orthogonal_basis(G * sqrt_w[:, None], sqrt_w, svd_tol)
    b = U.T @ sqrt_w
    norm_b = float(np.linalg.norm(b))
    J = U / sqrt_w[:, None]  # basis values at the points, (n, n_modes)
    row_norms = np.linalg.norm(U, axis=1)  # > 0: the constant is in the basis
    target = max(float(tol), ROUNDOFF)
    z = np.zeros(0, dtype=np.int64)
    omega = np.zeros(0)
    residual, error = b, 1.0
    reason = ""
    for _ in range(10 * U.shape[1] + 10):
        if error <= target:
            break
        if z.size >= limit:
            reason = f"max_points = {limit} reached"
            break
        score = (U @ residual) / row_norms  # ‖r‖ cos(angle of the point's values, r)
        score[z] = -np.inf
        best = int(np.argmax(score))
        if not score[best] > 0.0:
            reason = "no remaining point reduces the residual"
            break
        z = np.append(z, best)
        omega, _ = scipy.optimize.nnls(J[z].T, b)
        z, omega = z[omega > 0.0], omega[omega > 0.0]
        residual = b - J[z].T @ omega
        error = _volume_exact_error(J[z], omega, b, w.sum()) / norm_b
    else:
        reason = "iteration limit reached"
    if error > target:
        raise Fe2xError(
            f"empirical cubature: tolerance {tol:g} not met ({reason}); best relative error "
            f"{error:.3e} with {z.size} points"
        )
    order = np.argsort(z)
    weights = omega[order] * (w.sum() / omega.sum())
    return Cubature(z[order], weights, float(error), int(U.shape[1]))


def integration_errors(G: np.ndarray, w: np.ndarray, cubature: Cubature) -> np.ndarray:
    """Per integrand (column of ``G``), ``|∫f − Σ_k ω_k f(x_k)| / (√V ‖f‖_{L²})``.

    The relative error in the measure of the module notes, for training or held-out
    integrands; 0 for an integrand that vanishes at every point.
    """
    G, w = _checked(G, w)
    exact = w @ G
    reduced = cubature.weights @ G[cubature.points]
    scale = np.sqrt(w.sum() * (w @ G**2))
    return np.abs(exact - reduced) / np.where(scale > 0.0, scale, 1.0)


def _checked(G: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    G, w = np.asarray(G, dtype=float), np.asarray(w, dtype=float)
    if G.ndim != 2 or 0 in G.shape:
        raise Fe2xError(
            f"integrand snapshots G must be a non-empty (n_points, m) matrix: {G.shape}"
        )
    if w.shape != (G.shape[0],):
        raise Fe2xError(f"FE weights w have shape {w.shape}; expected ({G.shape[0]},)")
    if not (np.isfinite(G).all() and np.isfinite(w).all()):
        raise Fe2xError("integrand snapshots or FE weights contain NaN or infinite values")
    if np.any(w <= 0.0):
        raise Fe2xError(f"{int(np.sum(w <= 0.0))} FE weight(s) are not positive")
    return G, w


def _orthogonal_basis(Gw: np.ndarray, sqrt_w: np.ndarray, svd_tol: float) -> np.ndarray:
    """Orthonormal columns spanning the (truncated) range of ``Gw`` and ``√w``."""
    U, s, _ = np.linalg.svd(Gw, full_matrices=False)
    rank = int(np.sum(s > max(Gw.shape) * np.finfo(float).eps * s[0])) if s[0] > 0 else 0
    if svd_tol > 0.0 and rank > 0:
        tail = np.sqrt(np.cumsum((s[:rank] ** 2)[::-1])[::-1]) / np.linalg.norm(s)
        rank = int(np.sum(tail > svd_tol))  # tail[r] = norm left out by keeping r modes
    U = U[:, :rank]
    q = sqrt_w - U @ (U.T @ sqrt_w)
    q -= U @ (U.T @ q)  # twice is enough
    if np.linalg.norm(q) > 1e-8 * np.linalg.norm(sqrt_w):
        U = np.column_stack([U, q / np.linalg.norm(q)])
    return U


def _volume_exact_error(J_z: np.ndarray, omega: np.ndarray, b: np.ndarray, V: float) -> float:
    """``‖b − J_zᵀ ω'‖`` for the weights ``ω' = ω V / Σω`` that integrate the volume exactly."""
    return float(np.linalg.norm(b - J_z.T @ (omega * (V / omega.sum()))))
