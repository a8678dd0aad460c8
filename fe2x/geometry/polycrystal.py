"""Periodic polycrystal cells: a Voronoi or Laguerre tessellation sampled on voxels, meshed."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpi4py import MPI

import numpy as np
import numpy.typing as npt

from fe2x.errors import GeometryError
from fe2x.geometry.mesh_file import RVEMesh
from fe2x.geometry.tessellation import box_lengths, grain_labels, random_seeds
from fe2x.geometry.voxels import voxel_cell

logger = logging.getLogger(__name__)

__all__ = ["GRAIN", "polycrystal_cell"]

#: The cell-data name of the grain id of each cell.
GRAIN = "grain"
_ROOT = 0


def _resolution(dim: int, resolution: int | npt.ArrayLike) -> tuple[int, ...]:
    r = np.asarray(resolution).reshape(-1)
    if r.size == 1:
        r = np.repeat(r, dim)
    if r.size != dim or not np.issubdtype(r.dtype, np.integer) or np.any(r < 1):
        shown = np.asarray(resolution).tolist()
        raise GeometryError(f"resolution must be a positive integer or {dim} of them, got {shown}")
    return tuple(int(n) for n in r)


def _grains(
    dim: int,
    L: np.ndarray,
    n: int,
    shape: tuple[int, ...],
    seed: int,
    weights: npt.ArrayLike | None,
    seeds: npt.ArrayLike | None,
    min_distance: float | None,
) -> np.ndarray:
    """The grain id of every voxel (rank 0's work)."""
    if seeds is None:
        points = random_seeds(dim, L, n, seed, min_distance)
    else:
        points = np.asarray(seeds, dtype=np.float64)
        if points.shape != (n, dim):
            raise GeometryError(f"seeds must have shape ({n}, {dim}), got {points.shape}")
    labels = grain_labels(shape, L, points, weights)
    empty = n - np.unique(labels).size
    if empty:
        logger.warning("%d of %d grains hold no voxel centre at resolution %s", empty, n, shape)
    return labels


def polycrystal_cell(
    comm: MPI.Comm,
    dim: int,
    lengths: npt.ArrayLike,
    n_grains: int,
    resolution: int | npt.ArrayLike,
    seed: int,
    weights: npt.ArrayLike | None = None,
    seeds: npt.ArrayLike | None = None,
    min_distance: float | None = None,
    phase_name: str = "grains",
    per_grain_phases: bool = False,
    grain_data: Mapping[str, npt.ArrayLike] | None = None,
) -> RVEMesh:
    """A periodic box of ``n_grains`` Voronoi (or Laguerre) grains, one hexahedron per voxel.

    The grains are those of :func:`fe2x.geometry.tessellation.grain_labels` on the voxel
    centres, from :func:`~fe2x.geometry.tessellation.random_seeds` ``(dim, lengths, n_grains,
    seed, min_distance)`` unless ``seeds`` are given; the same call there gives the seeds, and
    :func:`~fe2x.geometry.tessellation.cell_measures` their exact volumes. Every cell carries
    its grain id in ``cell_data["grain"]``, so a crystal-plasticity law reads a per-grain
    orientation per cell and all grains cost one batched law call when they share a phase.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3.
        lengths: Cell edge lengths, shape (dim,).
        n_grains: Number of grains (seeds).
        resolution: Voxels per axis: one integer for every axis, or one per axis.
        seed: Seed of the random seeds (same seed, same cell on any number of ranks).
        weights: (n_grains,) Laguerre weights (squared lengths); None for Voronoi.
        seeds: (n_grains, dim) seed points instead of random ones.
        min_distance: Hard-core distance of random seeds (narrower grain sizes).
        phase_name: The one phase of all grains.
        per_grain_phases: One phase per grain instead, named ``grain<id>`` (tag id + 1).
        grain_data: Per-grain arrays by name, each (n_grains, ...), e.g. orientations; each is
            expanded to ``cell_data[name]``, one row per local cell.

    Returns:
        The RVEMesh on every rank.

    Raises:
        GeometryError: Bad input (more grains than voxels, resolution < 1, ...).
    """
    L = box_lengths(dim, lengths)
    shape = _resolution(dim, resolution)
    if int(n_grains) != n_grains or n_grains < 1:
        raise GeometryError(f"n_grains must be a positive integer, got {n_grains}")
    n = int(n_grains)
    if n > int(np.prod(shape)):
        raise GeometryError(f"{n} grains do not fit in {int(np.prod(shape))} voxels {list(shape)}")
    if not per_grain_phases and (not isinstance(phase_name, str) or not phase_name):
        raise GeometryError(f"phase_name must be a non-empty string, got {phase_name!r}")
    data = {}
    for name, values in (grain_data or {}).items():
        v = np.asarray(values)
        if v.ndim < 1 or v.shape[0] != n:
            raise GeometryError(
                f"grain data {name!r} must have one row per grain ({n}), got shape {v.shape}"
            )
        if name == GRAIN:
            raise GeometryError(f"grain data may not be named {GRAIN!r} (the grain id)")
        data[name] = v

    verdict: tuple[str, str | None] = ("ok", None)
    labels = cell_data = None
    if comm.rank == _ROOT:
        try:
            labels = _grains(dim, L, n, shape, seed, weights, seeds, min_distance)
            cell_data = {GRAIN: labels, **{name: v[labels] for name, v in data.items()}}
        except GeometryError as e:
            verdict = ("error", str(e))
    verdict = comm.bcast(verdict, root=_ROOT)
    if verdict[0] == "error":
        raise GeometryError(verdict[1])
    phases = {g: (f"grain{g}" if per_grain_phases else phase_name) for g in range(n)}
    # Periodic by construction: no seam check.
    return voxel_cell(
        comm, labels, lengths=L, phases=phases, cell_data=cell_data, periodicity="ignore"
    )
