"""Periodic pairing of points on the faces of an axis-aligned box cell."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from fe2x.errors import GeometryError

_AXES = "xyz"


def _prepare(
    points: npt.ArrayLike, origin: npt.ArrayLike, lengths: npt.ArrayLike, tol: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise GeometryError(f"points must be an (n, dim) array, got shape {x.shape}")
    dim = x.shape[1]
    o = np.asarray(origin, dtype=np.float64).reshape(-1)
    L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if o.shape != (dim,) or L.shape != (dim,):
        raise GeometryError(
            f"origin and lengths must have {dim} entries like the points, "
            f"got {o.shape[0]} and {L.shape[0]}"
        )
    if np.any(L <= 0):
        raise GeometryError(f"cell lengths must be positive, got {L.tolist()}")
    if tol is None:
        tol = 1e-8 * float(L.max())
    return x, o, L, float(tol)


def on_boundary(
    points: npt.ArrayLike,
    origin: npt.ArrayLike,
    lengths: npt.ArrayLike,
    tol: float | None = None,
) -> np.ndarray:
    """Mask of the points lying on a face of the box ``[origin, origin + lengths]``.

    Args:
        points: Coordinates, shape (n, dim).
        origin: Lower corner, shape (dim,).
        lengths: Edge lengths, shape (dim,).
        tol: Absolute distance to a face counted as on it; default ``1e-8 * max(lengths)``.

    Returns:
        Boolean array (n,), True where some coordinate is within ``tol`` of a face.

    >>> on_boundary([[0.0, 0.5], [0.5, 0.5], [0.5, 1.0]], [0, 0], [1, 1]).tolist()
    [True, False, True]
    """
    x, o, L, tol = _prepare(points, origin, lengths, tol)
    lower = np.abs(x - o) <= tol
    upper = np.abs(x - (o + L)) <= tol
    return np.any(lower | upper, axis=1)


def periodic_images(
    points: npt.ArrayLike,
    origin: npt.ArrayLike,
    lengths: npt.ArrayLike,
    tol: float | None = None,
) -> np.ndarray:
    """Index of each point's periodic master in a box cell.

    The master of ``x`` is the point at ``x - sum_i L_i e_i`` over every axis ``i`` with
    ``x_i = origin_i + L_i`` (all upper coordinates moved to the lower face at once), so corner
    and edge points map directly to the final master, e.g. ``(L, L) -> (0, 0)``. Points on no
    upper face are their own master. Matching is in the max-norm within ``tol``.

    Args:
        points: Coordinates, shape (n, dim); e.g. DOLFINx dof coordinates, gathered.
        origin: Lower corner, shape (dim,).
        lengths: Edge lengths, shape (dim,).
        tol: Matching tolerance; default ``1e-8 * max(lengths)``.

    Returns:
        Integer array (n,) with ``master[i] == i`` for masters.

    Raises:
        GeometryError: Some point on an upper face has no partner; names the first one.

    >>> periodic_images([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]],
    ...                 [0, 0], [1, 1]).tolist()
    [0, 0, 0, 0, 4]
    """
    x, o, L, tol = _prepare(points, origin, lengths, tol)
    n = x.shape[0]
    master = np.arange(n, dtype=np.int64)
    if n == 0:
        return master
    upper = np.abs(x - (o + L)) <= tol
    slaves = np.flatnonzero(upper.any(axis=1))
    if slaves.size == 0:
        return master
    target = x[slaves] - upper[slaves] * L
    # Candidates for masters: points with no coordinate on an upper face.
    candidates = np.flatnonzero(~upper.any(axis=1))
    if candidates.size > 0:
        tree = cKDTree(x[candidates])
        bound = np.nextafter(tol, np.inf)
        dist, idx = tree.query(target, k=1, p=np.inf, distance_upper_bound=bound)
        found = np.isfinite(dist)
    else:
        idx = np.zeros(slaves.size, dtype=np.int64)
        found = np.zeros(slaves.size, dtype=bool)
    if not np.all(found):
        missing = np.flatnonzero(~found)
        first = slaves[missing[0]]
        faces = ", ".join(
            f"{_AXES[i] if i < 3 else i}={o[i] + L[i]:.6g}" for i in np.flatnonzero(upper[first])
        )
        coords = ", ".join(f"{c:.10g}" for c in x[first])
        raise GeometryError(
            f"point ({coords}) on face {faces} has no periodic partner within tol {tol:.3g} "
            f"({missing.size} of {slaves.size} upper-face points lack one)"
        )
    master[slaves] = candidates[idx]
    return master
