"""Random sequential addition of equal non-overlapping circles/spheres in a periodic box."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

from fe2x.errors import GeometryError


def ball_volume(dim: int, radius: float) -> float:
    """Area of a circle (dim 2) or volume of a sphere (dim 3) of the given radius."""
    return math.pi * radius**2 if dim == 2 else 4.0 / 3.0 * math.pi * radius**3


def periodic_distances(a: npt.ArrayLike, b: npt.ArrayLike, lengths: npt.ArrayLike) -> np.ndarray:
    """Minimum-image distances ``|a_i - b_j|`` in a periodic box, shape (len(a), len(b)).

    >>> periodic_distances([[0.1, 0.5]], [[0.9, 0.5]], [1.0, 1.0]).round(12).tolist()
    [[0.2]]
    """
    L = np.asarray(lengths, dtype=np.float64)
    d = np.asarray(a, dtype=np.float64)[:, None, :] - np.asarray(b, dtype=np.float64)[None, :, :]
    d -= L * np.round(d / L)
    return np.sqrt(np.einsum("ijk,ijk->ij", d, d))


def _face_clearances(centres: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Distances of each centre to the nearest face, edge line and corner of the cell.

    For every non-empty set S of axes this is ``sqrt(sum_{i in S} d_i^2)`` with ``d_i`` the
    distance to the nearest face normal to axis ``i``; shape (n, 2**dim - 1).
    """
    d = np.minimum(centres, lengths - centres)
    dim = lengths.size
    cols = []
    for k in range(1, dim + 1):
        for axes in itertools.combinations(range(dim), k):
            cols.append(np.sqrt(np.sum(d[:, list(axes)] ** 2, axis=1)))
    return np.stack(cols, axis=1)


def random_sequential_addition(
    dim: int,
    lengths: npt.ArrayLike,
    volume_fraction: float,
    min_gap: float,
    seed: int,
    radius: float | None = None,
    number: int | None = None,
    max_attempts: int = 200_000,
    face_margin: float | None = None,
) -> tuple[np.ndarray, float]:
    """Place equal circles/spheres at random, rejecting overlaps, in the periodic box.

    Centres are drawn uniformly in ``[0, L)``; a candidate is accepted when its minimum-image
    distance to every accepted centre is at least ``2 r + min_gap``. Inclusions may cross the
    faces (the mesher wraps them round), but the surface must stay clear of every face, cell
    edge and corner: ``|dist(c, F) - r| >= face_margin`` for each face, edge line and corner F.
    A surface that grazes a face (or whose cut disk grazes an edge) would cut slivers off the
    box that force tiny or degenerate elements on the periodic faces.

    Args:
        dim: 2 (circles) or 3 (spheres).
        lengths: Cell edge lengths, shape (dim,).
        volume_fraction: Target inclusion fraction, in (0, 1).
        min_gap: Least surface-to-surface distance between inclusions (>= 0).
        seed: Seed of ``numpy.random.default_rng``; same seed, same packing, on any rank.
        radius: Inclusion radius; the number is then ``round(vf |cell| / |ball|)``.
        number: Number of inclusions; the radius then gives exactly ``volume_fraction``.
        max_attempts: Candidate centres drawn before giving up.
        face_margin: Clearance of surfaces from faces/edges/corners; default ``min_gap / 2``.

    Returns:
        ``(centres, radius)`` with centres of shape (n, dim) in ``[0, L)``.

    Raises:
        GeometryError: Impossible inputs, or the target not reached within ``max_attempts``.
    """
    if dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")
    L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if L.size != dim or not np.all(L > 0):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {L.tolist()}")
    if not 0.0 < volume_fraction < 1.0:
        raise GeometryError(f"volume_fraction must be in (0, 1), got {volume_fraction}")
    if min_gap < 0:
        raise GeometryError(f"min_gap must be >= 0, got {min_gap}")
    number, radius = _number_and_radius(dim, float(np.prod(L)), volume_fraction, radius, number)
    margin = 0.5 * min_gap if face_margin is None else float(face_margin)
    if margin < 0:
        raise GeometryError(f"face_margin must be >= 0, got {face_margin}")
    if 2.0 * radius + min_gap > L.min():
        raise GeometryError(
            f"radius {radius:.4g} too large for the cell: 2*radius + min_gap = "
            f"{2 * radius + min_gap:.4g} exceeds the shortest edge {L.min():.4g}"
        )
    centres, attempts = _draw_centres(L, number, radius, min_gap, margin, seed, max_attempts)
    if len(centres) < number:
        cell_volume = float(np.prod(L))
        reached = len(centres) * ball_volume(dim, radius) / cell_volume
        achievable = number * ball_volume(dim, radius) / cell_volume
        raise GeometryError(
            f"random sequential addition reached vf {reached:.3g} of requested "
            f"{achievable:.3g} ({len(centres)} of {number} inclusions) after {attempts} "
            "attempts; lower volume_fraction or min_gap"
        )
    return centres, radius


def _number_and_radius(
    dim: int, cell_volume: float, volume_fraction: float, radius: float | None, number: int | None
) -> tuple[int, float]:
    """The inclusion count and radius from exactly one of them and the volume fraction."""
    if (radius is None) == (number is None):
        raise GeometryError("give exactly one of radius or number for random inclusions")
    if number is not None:
        if int(number) != number or number < 1:
            raise GeometryError(f"number of inclusions must be a positive integer, got {number}")
        number = int(number)
        return number, (volume_fraction * cell_volume / (number * ball_volume(dim, 1.0))) ** (
            1.0 / dim
        )
    assert radius is not None
    if radius <= 0:
        raise GeometryError(f"radius must be positive, got {radius}")
    number = round(volume_fraction * cell_volume / ball_volume(dim, radius))
    if number < 1:
        raise GeometryError(
            f"radius {radius:g} is too large for volume_fraction {volume_fraction:g}: "
            f"one inclusion alone gives vf {ball_volume(dim, radius) / cell_volume:.3g}"
        )
    return number, float(radius)


def _draw_centres(
    L: np.ndarray,
    number: int,
    radius: float,
    min_gap: float,
    margin: float,
    seed: int,
    max_attempts: int,
) -> tuple[np.ndarray, int]:
    """Accepted centres (at most ``number``) and the candidates drawn to find them."""
    rng = np.random.default_rng(seed)
    centres = np.empty((number, L.size))
    n = 0
    attempts = 0
    batch = 256
    sep = 2.0 * radius + min_gap
    while n < number and attempts < max_attempts:
        size = min(batch, max_attempts - attempts)
        cand = rng.random((size, L.size)) * L
        ok_faces = np.all(np.abs(_face_clearances(cand, L) - radius) >= margin, axis=1)
        for i in range(size):
            attempts += 1
            if not ok_faces[i]:
                continue
            if n > 0 and periodic_distances(cand[i : i + 1], centres[:n], L).min() < sep:
                continue
            centres[n] = cand[i]
            n += 1
            if n == number:
                break
    return centres[:n], attempts
