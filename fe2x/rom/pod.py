"""Proper orthogonal decomposition of snapshot matrices in an SPD inner product.

On one rank, or with the snapshot rows distributed over MPI ranks.

The POD of snapshots ``X = [x_1 ... x_m]`` (``n × m``) in the inner product ``⟨u, v⟩_M = uᵀ M v``
is the SVD of ``M^{1/2} X = Ψ S Wᵀ``; the basis is ``Φ = M^{-1/2} Ψ`` (so ``Φᵀ M Φ = I``) and,
by Eckart–Young, its first ``r`` columns minimise ``Σ_j ‖x_j − Φ_r Φ_rᵀ M x_j‖²_M``, which is
then ``Σ_{i>r} s_i²``. ``M^{1/2}`` is never formed: both functions here work from ``X`` and
``M X`` alone, which is what a rank holding some rows of ``X`` (and of ``M X``, from PETSc's
matrix product with ghost exchange) has.

Method of snapshots, twice. Pass 1 diagonalises the Gram matrix ``Xᵀ M X = V Λ Vᵀ`` and takes
``Φ₀ = X V Λ^{-1/2}``; its M-orthonormality is only as good as ``ε s_max² / (s_i s_j)``
(the Gram matrix squares the condition number). Pass 2 re-orthonormalises ``Φ₀`` with the
Cholesky factor of ``Φ₀ᵀ M Φ₀ = L Lᵀ`` and takes the SVD of the coefficients
``L⁻¹ Φ₀ᵀ M X = U S Wᵀ``, so ``Φ = Φ₀ L⁻ᵀ U``: the analogue of CholeskyQR2, which brings the
orthonormality error down to about ``ε s_max / s_i``. Every product that couples rows is a
sum over rows, one reduction per pass; the small eigen- and singular-value problems are solved
on rank 0 and broadcast, so every rank holds the same coefficients and the basis does not
depend on the number of ranks beyond round-off.

Modes whose Gram eigenvalue is below ``m · 10³ ε`` of the largest (singular values below about
``√(m · 10³ ε)`` of the largest) are not resolved by the Gram matrix and are not returned.
The captured energy is measured against ``trace(Xᵀ M X) = ‖X‖²_M``, which includes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from mpi4py import MPI

import numpy as np
import scipy.linalg
import scipy.sparse

from fe2x.errors import Fe2xError

__all__ = ["PODBasis", "pod_basis", "pod_basis_distributed"]

#: Gram eigenvalues below this times ``m · λ_max`` are round-off, not modes.
GRAM_RESOLUTION = 1e3 * np.finfo(float).eps


class _Share(Protocol):
    """Rank 0's value, the same on every rank (``comm.bcast``; the identity on one rank)."""

    def __call__[T](self, value: T, /) -> T: ...


class PODBasis(NamedTuple):
    """A POD basis and the spectrum it was cut from.

    Attributes:
        Phi: the basis ``(n, r)`` (on a distributed call: this rank's rows), ``Φᵀ M Φ = I``.
        singular_values: all resolved singular values of ``M^{1/2} X``, descending (the first
            ``r`` belong to ``Phi``).
        energy: captured energy fraction ``Σ_{i≤r} s_i² / ‖X‖²_M``.
    """

    Phi: np.ndarray
    singular_values: np.ndarray
    energy: float


def pod_basis(
    snapshots: np.ndarray,
    M: scipy.sparse.sparray | scipy.sparse.spmatrix | np.ndarray | None = None,
    energy_tol: float | None = None,
    size: int | None = None,
) -> PODBasis:
    """The M-orthonormal POD basis of the columns of ``snapshots`` ``(n, m)``.

    The size is the smallest ``r`` with uncaptured energy ``1 − Σ_{i≤r} s_i² / ‖X‖²_M ≤
    energy_tol``, or ``size``, or (neither given) every resolved mode.

    Args:
        snapshots: one snapshot per column.
        M: the SPD inner-product matrix ``(n, n)``, sparse or dense (None: the identity).
        energy_tol: allowed uncaptured energy fraction, in ``[0, 1)``.
        size: number of modes.
    """
    X = _checked_snapshots(snapshots)
    if M is None:
        MX = X
    else:
        if M.shape != (X.shape[0], X.shape[0]):
            raise Fe2xError(f"M has shape {M.shape}; expected {(X.shape[0], X.shape[0])}")
        MX = np.asarray(M @ X, dtype=float)
    return _pod(X, MX, lambda a: a, lambda a: a, energy_tol, size)


def pod_basis_distributed(
    comm: MPI.Comm,
    snapshots: np.ndarray,
    M_snapshots: np.ndarray | None = None,
    energy_tol: float | None = None,
    size: int | None = None,
) -> PODBasis:
    """Collective: the POD basis of snapshots whose rows are distributed over ``comm``.

    Each rank passes the rows it owns (no ghost rows: every row on exactly one rank) of the
    snapshots and of ``M X``. The returned ``Phi`` holds the same rows; every rank gets the
    same singular values and energy. See :func:`pod_basis` for the size.

    Args:
        comm: the ranks that share the rows.
        snapshots: this rank's rows of the snapshot matrix ``(n_local, m)``.
        M_snapshots: the same rows of ``M X`` (None: ``M`` is the identity).
        energy_tol: allowed uncaptured energy fraction, in ``[0, 1)``.
        size: number of modes.
    """
    X = _checked_snapshots(snapshots, allow_empty_rows=True)
    MX = X if M_snapshots is None else np.asarray(M_snapshots, dtype=float)
    columns = comm.allgather(X.shape[1])
    error = None
    if len(set(columns)) > 1:
        error = f"the ranks hold different numbers of snapshots {columns}"
    elif MX.shape != X.shape:
        error = f"M_snapshots has shape {MX.shape}; expected the snapshots' {X.shape}"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise Fe2xError(errors[0])

    def total(a: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(a, dtype=float)
        out = np.empty_like(local)
        comm.Allreduce(local, out, op=MPI.SUM)
        return out

    return _pod(X, MX, total, lambda a: comm.bcast(a, root=0), energy_tol, size)


def _checked_snapshots(snapshots: np.ndarray, allow_empty_rows: bool = False) -> np.ndarray:
    X = np.asarray(snapshots, dtype=float)
    if X.ndim != 2 or X.shape[1] == 0 or (X.shape[0] == 0 and not allow_empty_rows):
        raise Fe2xError(f"snapshots must be a non-empty (n, m) matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise Fe2xError("snapshots contain NaN or infinite values")
    return X


def _pod(
    X: np.ndarray,
    MX: np.ndarray,
    total: Callable[[np.ndarray], np.ndarray],
    share: _Share,
    energy_tol: float | None,
    size: int | None,
) -> PODBasis:
    """Both passes of the POD and the choice of its size.

    ``total`` sums over the ranks and ``share`` broadcasts rank 0's value (identities on one
    rank).
    """
    if energy_tol is not None and size is not None:
        raise Fe2xError("give the POD size by energy_tol or by size, not both")
    if energy_tol is not None and not 0.0 <= energy_tol < 1.0:
        raise Fe2xError(f"energy_tol = {energy_tol!r} must be in [0, 1)")
    if size is not None and (int(size) != size or size < 1):
        raise Fe2xError(f"size = {size!r} must be a positive integer")
    m = X.shape[1]
    gram = total(X.T @ MX)
    A0 = share(_first_pass(gram))
    if isinstance(A0, str):
        raise Fe2xError(A0)
    Phi0, MPhi0 = X @ A0, MX @ A0
    A1, s = share(_second_pass(total(Phi0.T @ MPhi0), total(MPhi0.T @ X)))
    energy_total = float(np.trace(gram))
    captured = np.cumsum(s**2) / energy_total
    if size is not None:
        if size > s.size:
            raise Fe2xError(
                f"POD size {size} asked for, but the {m} snapshots resolve only {s.size} modes"
            )
        r = int(size)
    elif energy_tol is not None:
        enough = np.flatnonzero(1.0 - captured <= energy_tol)
        if enough.size == 0:
            raise Fe2xError(
                f"POD energy tolerance {energy_tol:g} cannot be met: all {s.size} resolved "
                f"modes leave {1.0 - captured[-1]:.2e} of the energy uncaptured"
            )
        r = int(enough[0]) + 1
    else:
        r = s.size
    return PODBasis(Phi0 @ A1[:, :r], s, float(captured[r - 1]))


def _first_pass(gram: np.ndarray) -> np.ndarray | str:
    """``V Λ^{-1/2}`` of the resolved modes of the Gram matrix, or why there are none."""
    gram = 0.5 * (gram + gram.T)
    lam, V = np.linalg.eigh(gram)
    lam, V = lam[::-1], V[:, ::-1]
    scale = float(np.max(np.abs(lam)))
    if scale == 0.0:
        return "the snapshots are all zero (in the M-norm)"
    if lam[-1] < -1e-8 * scale:
        return (
            f"M is not positive definite on the snapshots (Gram eigenvalue {lam[-1]:.3e} "
            f"against {lam[0]:.3e})"
        )
    resolved = lam > gram.shape[0] * GRAM_RESOLUTION * lam[0]
    return V[:, resolved] / np.sqrt(lam[resolved])


def _second_pass(G: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L⁻ᵀ U`` and ``S`` from ``Φ₀ᵀ M Φ₀ = L Lᵀ`` and ``L⁻¹ Φ₀ᵀ M X = U S Wᵀ``.

    Each mode's sign is fixed by making the largest entry of its right singular vector positive.
    """
    L = scipy.linalg.cholesky(0.5 * (G + G.T), lower=True)
    U, s, Wt = np.linalg.svd(scipy.linalg.solve_triangular(L, B, lower=True), full_matrices=False)
    signs = np.sign(Wt[np.arange(Wt.shape[0]), np.argmax(np.abs(Wt), axis=1)])
    return scipy.linalg.solve_triangular(L.T, U * signs, lower=False), s
