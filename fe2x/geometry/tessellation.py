"""Periodic Voronoi and Laguerre (power) tessellations of a box.

Seeds, voxel labels, and the exact cell volumes and boundary areas that the voxels converge to.

A seed ``s_i`` with weight ``w_i`` (a squared length) owns the points nearest to it in the
power distance under the periodic (minimum-image) metric of the box,

    π_i(x) = min_k |x - s_i - k∘L|² - w_i,   k ∈ Z^dim,

which is the Voronoi tessellation when all weights are equal. Seeds are drawn from
``numpy.random.default_rng(seed)``, so the same seed gives the same tessellation on any rank.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError, cKDTree

from fe2x.errors import GeometryError
from fe2x.geometry.packing import ball_volume, random_sequential_addition

__all__ = [
    "CellMeasures",
    "box_lengths",
    "cell_measures",
    "grain_labels",
    "random_seeds",
    "voxel_centres",
    "voxel_measures",
]


def box_lengths(dim: int, lengths: npt.ArrayLike) -> np.ndarray:
    """The edge lengths of a 2D or 3D box as a positive (dim,) array, or a GeometryError."""
    if dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")
    try:
        L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {lengths!r}") from None
    if L.size != dim or not np.all(np.isfinite(L)) or not np.all(L > 0):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {L.tolist()}")
    return L


def _seeds(seeds: npt.ArrayLike, L: np.ndarray) -> np.ndarray:
    """Seeds as an (n, dim) array wrapped into ``[0, L)``."""
    try:
        s = np.asarray(seeds, dtype=np.float64)
    except (TypeError, ValueError):
        raise GeometryError(f"seeds must be an (n, {L.size}) array of numbers") from None
    if s.ndim != 2 or s.shape[1] != L.size or s.shape[0] < 1 or not np.all(np.isfinite(s)):
        raise GeometryError(f"seeds must be a finite (n, {L.size}) array, n >= 1, got {s.shape}")
    s = np.mod(s, L)
    return np.where(s >= L, 0.0, s)


def _weights(weights: npt.ArrayLike | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"weights must be {n} numbers, got {weights!r}") from None
    if w.size != n or not np.all(np.isfinite(w)):
        raise GeometryError(f"weights must be {n} finite numbers (one per seed), got {w.size}")
    return w


def random_seeds(
    dim: int,
    lengths: npt.ArrayLike,
    n_grains: int,
    seed: int,
    min_distance: float | None = None,
    max_attempts: int = 200_000,
) -> np.ndarray:
    """``n_grains`` random seeds in the box ``[0, L)``, uniform or with a hard-core distance.

    Without ``min_distance`` the seeds are uniform (Poisson–Voronoi grains, whose volumes
    scatter widely: coefficient of variation ≈ 0.53 in 2D, 0.42 in 3D). With it, seeds come
    from random sequential addition with periodic distances ``>= min_distance``, which narrows
    the grain-size distribution the more, the nearer ``min_distance`` is to the jamming limit.

    Args:
        dim: 2 or 3.
        lengths: Box edge lengths, shape (dim,).
        n_grains: Number of seeds, >= 1.
        seed: Seed of ``numpy.random.default_rng``.
        min_distance: Least periodic distance between seeds; None for uniform seeds.
        max_attempts: Candidates drawn before random sequential addition gives up.

    Returns:
        Seeds, shape (n_grains, dim).

    Raises:
        GeometryError: Bad input, or ``min_distance`` too large to place the seeds.
    """
    L = box_lengths(dim, lengths)
    if int(n_grains) != n_grains or n_grains < 1:
        raise GeometryError(f"n_grains must be a positive integer, got {n_grains}")
    n = int(n_grains)
    if min_distance is None or min_distance == 0:
        return np.random.default_rng(seed).random((n, dim)) * L
    if not min_distance > 0:
        raise GeometryError(f"min_distance must be positive, got {min_distance}")
    r = 0.5 * float(min_distance)
    fraction = n * ball_volume(dim, r) / float(np.prod(L))
    if 2.0 * r > L.min() or fraction >= 1.0:
        raise GeometryError(
            f"min_distance {min_distance:g} is too large for {n} seeds in a "
            f"{' x '.join(f'{x:g}' for x in L)} box"
        )
    try:
        centres, _ = random_sequential_addition(
            dim, L, fraction, 0.0, seed, number=n, max_attempts=max_attempts, face_margin=0.0
        )
    except GeometryError as e:
        raise GeometryError(
            f"cannot place {n} seeds {min_distance:g} apart by random sequential addition "
            f"({e}); lower min_distance or n_grains"
        ) from None
    return centres


def voxel_centres(shape: tuple[int, ...], lengths: np.ndarray) -> np.ndarray:
    """Centres ``((i + ½) h_x, (j + ½) h_y, ...)`` of a voxel grid, in C order, (N, dim)."""
    axes = [(np.arange(n) + 0.5) * (Li / n) for n, Li in zip(shape, lengths, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))


def grain_labels(
    resolution: tuple[int, ...] | list[int],
    lengths: npt.ArrayLike,
    seeds: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> np.ndarray:
    """The grain (seed index) of each voxel centre: periodic Voronoi, or Laguerre with weights.

    The power distance is a Euclidean one in one more dimension: a seed lifted to height
    ``sqrt(max(w) - w_i)`` and a point at height 0 are ``π_i(x) + max(w)`` apart squared, so a
    periodic KD-tree query finds the nearest seed under either distance.

    Args:
        resolution: Voxels per axis, (nx, ny(, nz)).
        lengths: Box edge lengths, shape (dim,).
        seeds: (n, dim) seed points (wrapped into the box).
        weights: (n,) power weights (squared lengths); None for Voronoi.

    Returns:
        int64 labels of shape ``resolution``, ``labels[i, j(, k)]`` at x, y(, z)
        (:mod:`fe2x.geometry.voxels`).
    """
    shape = tuple(int(n) for n in resolution)
    L = box_lengths(len(shape), lengths)
    if any(n < 1 for n in shape):
        raise GeometryError(f"resolution must be >= 1 voxel per axis, got {list(shape)}")
    s = _seeds(seeds, L)
    w = _weights(weights, s.shape[0])
    x = voxel_centres(shape, L)
    if w is None:
        _, idx = cKDTree(s, boxsize=L).query(x)
    else:
        height = np.sqrt(w.max() - w)
        box = np.append(L, 2.0 * height.max() + L.max())  # the extra axis never wraps
        tree = cKDTree(np.column_stack([s, height]), boxsize=box)
        _, idx = tree.query(np.column_stack([x, np.zeros(len(x))]))
    return np.asarray(idx, dtype=np.int64).reshape(shape)


class CellMeasures(NamedTuple):
    """Volumes and grain-boundary areas of a tessellation of a periodic box.

    Attributes:
        volumes: Area (2D) or volume (3D) of each grain, shape (n,).
        boundary_area: Total grain-boundary length (2D) or area (3D); facets between a grain
            and its own periodic image are not grain boundaries.
        projected_area: ``Σ_f A_f |n_f,i|`` over the grain-boundary facets, per axis i,
            shape (dim,). A voxel image's boundary (voxel faces between different grains)
            converges to this, not to the true area: its total tends to ``Σ_f A_f ||n_f||_1``.
    """

    volumes: np.ndarray
    boundary_area: float
    projected_area: np.ndarray


def voxel_measures(
    labels: npt.ArrayLike, lengths: npt.ArrayLike, n_grains: int | None = None
) -> CellMeasures:
    """Grain volumes and boundary (voxel faces between different labels) of a periodic image.

    Args:
        labels: Non-negative grain ids ``[x, y(, z)]``.
        lengths: Box edge lengths, shape (dim,).
        n_grains: Length of ``volumes``; default ``labels.max() + 1``.

    Returns:
        CellMeasures with ``boundary_area = projected_area.sum()`` (the stair-stepped area).
    """
    a = np.asarray(labels)
    L = box_lengths(a.ndim, lengths)
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
        raise GeometryError("grain labels must be non-negative integers")
    h = L / np.array(a.shape)
    n = int(a.max()) + 1 if n_grains is None else int(n_grains)
    volumes = np.bincount(a.ravel(), minlength=n)[:n] * float(np.prod(h))
    faces = np.array(
        [
            np.count_nonzero(a != np.roll(a, -1, axis=axis)) * float(np.prod(h)) / h[axis]
            for axis in range(a.ndim)
        ]
    )
    return CellMeasures(volumes, float(faces.sum()), faces)


def _facet_measure(points: np.ndarray, normal: np.ndarray) -> float:
    """Length (2D) or area (3D) of the convex facet spanned by ``points`` in a plane."""
    if points.shape[1] == 2:
        t = points @ np.array([-normal[1], normal[0]])
        return float(t.max() - t.min()) if t.size >= 2 else 0.0
    if points.shape[0] < 3:
        return 0.0
    u = np.cross(normal, np.eye(3)[int(np.argmin(np.abs(normal)))])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    try:
        return float(ConvexHull(np.column_stack([points @ u, points @ v])).volume)
    except QhullError:  # collinear: the facet is an edge or a vertex
        return 0.0


def _chebyshev_centre(A: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the largest ball in ``{x : A x <= c}``."""
    norms = np.linalg.norm(A, axis=1)
    dim = A.shape[1]
    cost = np.zeros(dim + 1)
    cost[-1] = -1.0
    result = linprog(
        cost,
        A_ub=np.column_stack([A, norms]),
        b_ub=c,
        bounds=[(None, None)] * dim + [(0.0, None)],
        method="highs",
    )
    if result.status != 0:
        return np.zeros(dim), 0.0
    return result.x[:dim], float(result.x[-1])


class _Cell(NamedTuple):
    volume: float
    facets: list[tuple[int, float, np.ndarray]]  # (neighbour grain, measure, unit normal)
    radius: float  # largest distance of a vertex from the seed


def _power_cell(
    s: np.ndarray,
    w_s: float,
    others: np.ndarray,
    w_others: np.ndarray,
    grains: np.ndarray,
    L: np.ndarray,
    equal: bool,
) -> _Cell | None:
    """The power cell of seed ``s`` against the given seed copies; None if it is empty.

    It is cut to the box centred at ``s`` (the cell against its own images). A Laguerre cell can
    be empty.
    """
    dim = L.size
    t = others - s  # coordinates relative to the seed
    # |x - s|² - w_s <= |x - t|² - w_t  <=>  2 t·x <= |t|² - w_t + w_s  (x relative to s)
    A = np.vstack([2.0 * t, np.eye(dim), -np.eye(dim)])
    c = np.concatenate([np.einsum("ij,ij->i", t, t) - w_others + w_s, 0.5 * L, 0.5 * L])
    if equal:
        centre, radius = np.zeros(dim), float(np.min(c / np.linalg.norm(A, axis=1)))
    else:
        centre, radius = _chebyshev_centre(A, c)
    if radius <= 1e-12 * float(L.max()):
        return None
    halfspaces = np.column_stack([A, -c])
    try:
        cell = HalfspaceIntersection(halfspaces, centre)
    except QhullError:
        return None
    vertices = cell.intersections
    volume = float(ConvexHull(vertices).volume)
    owners: dict[int, list[int]] = {}
    for v, planes in enumerate(cell.dual_facets):
        for plane in planes:
            owners.setdefault(int(plane), []).append(v)
    facets = []
    for plane, members in owners.items():
        if plane >= t.shape[0]:
            continue  # a face of the box: the cell meets its own periodic image there
        normal = A[plane] / np.linalg.norm(A[plane])
        measure = _facet_measure(vertices[members], normal)
        if measure > 0.0:
            facets.append((int(grains[plane]), measure, normal))
    return _Cell(volume, facets, float(np.linalg.norm(vertices, axis=1).max()))


def cell_measures(
    seeds: npt.ArrayLike, lengths: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> CellMeasures:
    """Exact volumes and boundary areas of the periodic Voronoi/Laguerre tessellation.

    Each cell is the intersection of half-spaces (one per nearby copy ``s_j + k∘L``,
    k ∈ {-1, 0, 1}^dim, of another seed, and the box of half-edges about its own seed, which
    is its cell against its own images) computed by qhull. Copies within 3^dim boxes suffice:
    a copy farther than one box length along an axis is never nearer than its shift back.
    The nearest copies are tried first, and the set is grown until every copy left out lies
    beyond ``R + sqrt(R² + max(w) - w_i)`` (R: the cell's farthest vertex), beyond which no
    copy can cut the cell.

    Args:
        seeds: (n, dim) seeds (wrapped into the box).
        lengths: Box edge lengths, shape (dim,).
        weights: (n,) power weights; None for Voronoi.

    Returns:
        The CellMeasures; an empty Laguerre cell has volume 0.
    """
    s0 = np.asarray(seeds, dtype=np.float64)
    dim = s0.shape[1] if s0.ndim == 2 else 0
    L = box_lengths(dim, lengths)
    s = _seeds(s0, L)
    n = s.shape[0]
    w = _weights(weights, n)
    equal = w is None or bool(np.all(w == w[0]))
    w = np.zeros(n) if w is None else w
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=dim)), dtype=np.float64) * L
    copies = (s[None, :, :] + shifts[:, None, :]).reshape(-1, dim)
    grains = np.tile(np.arange(n), shifts.shape[0])
    tree = cKDTree(copies)
    volumes = np.zeros(n)
    projected = np.zeros(dim)
    area = 0.0
    for i in range(n):
        k = min(copies.shape[0], 8 * 2**dim + 3**dim)
        while True:
            dist, idx = tree.query(s[i], k=k)
            idx, dist = np.atleast_1d(idx), np.atleast_1d(dist)
            keep = grains[idx] != i
            cell = _power_cell(
                s[i], w[i], copies[idx[keep]], w[grains[idx[keep]]], grains[idx[keep]], L, equal
            )
            # More copies only cut a cell further: an empty cell stays empty.
            if cell is None or k == copies.shape[0]:
                break
            reach = cell.radius + math.sqrt(max(cell.radius**2 + w.max() - w[i], 0.0))
            if dist[-1] > reach:
                break
            k = min(2 * k, copies.shape[0])
        if cell is None:
            continue
        volumes[i] = cell.volume
        for j, measure, normal in cell.facets:
            if j != i:  # each grain boundary is seen from both sides: count half
                area += 0.5 * measure
                projected += 0.5 * measure * np.abs(normal)
    return CellMeasures(volumes, area, projected)
