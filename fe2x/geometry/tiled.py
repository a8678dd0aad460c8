"""A rectangle tiled with copies of a periodic cell: the specimen of a direct numerical simulation.

The cells are those of :func:`~fe2x.geometry.inclusion_cell` and
:func:`~fe2x.geometry.laminate_cell`, repeated n_x × n_y times and meshed with gmsh on rank 0, so
that a DNS (:mod:`fe2x.macro.dns`) resolves every cell alike whatever their number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import NamedTuple

from mpi4py import MPI

import dolfinx
import gmsh
import numpy as np

from fe2x.errors import GeometryError
from fe2x.geometry.mesh_file import build_on_root
from fe2x.geometry.packing import ball_volume

__all__ = ["CELL_KINDS", "TiledSpecimen", "tiled_specimen"]

logger = logging.getLogger(__name__)

#: The periodic cells :func:`tiled_specimen` can tile.
CELL_KINDS = ("inclusion", "laminate")

# gmsh options set here; build_on_root restores them.
_OPTIONS = (
    "General.Terminal",
    "Mesh.MeshSizeMin",
    "Mesh.MeshSizeMax",
    "Mesh.MeshSizeFromPoints",
    "Mesh.MeshSizeFromCurvature",
    "Mesh.MeshSizeExtendFromBoundary",
)
# A centred inclusion stays this fraction of the shorter cell edge clear of the cell faces
# (as in fe2x.geometry.cells.inclusion_cell).
_CENTRED_CLEARANCE = 0.025
_BOUNDARIES = ("left", "right", "bottom", "top")


class TiledSpecimen(NamedTuple):
    """A rectangle of n_x × n_y periodic cells, meshed for DOLFINx.

    Attributes:
        mesh: The distributed 2D mesh.
        cell_tags: Cell markers, one value per phase.
        facet_tags: Boundary facet markers (left, right, bottom, top).
        phases: Phase name -> cell tag value (as the single cell has them).
        boundaries: Boundary name -> facet tag value.
        counts: Cells along x and y, ``(n_x, n_y)``.
        cell_lengths: Edge lengths of one cell, ``lengths / counts``.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags
    phases: dict[str, int]
    boundaries: dict[str, int]
    counts: tuple[int, int]
    cell_lengths: np.ndarray


class _SpecimenInfo(NamedTuple):
    """What rank 0 learns from the gmsh model and broadcasts (picklable)."""

    dim: int
    phases: dict[str, int]
    boundaries: dict[str, int]


def tiled_specimen(
    comm: MPI.Comm,
    n: int,
    cell_kind: str = "inclusion",
    lengths: Sequence[float] = (1.0, 1.0),
    volume_fraction: float = 0.3,
    fractions: Sequence[float] = (0.5, 0.5),
    axis: int = 0,
    phase_names: Sequence[str] | None = None,
    elements_per_cell: float = 6.0,
) -> TiledSpecimen:
    """Mesh ``[0, L_x] × [0, L_y]`` tiled with n_x = n by n_y = max(1, round(n L_y / L_x)) cells.

    The cell is that of :func:`~fe2x.geometry.inclusion_cell` (a centred circle of
    ``volume_fraction``, phases ``matrix`` and ``inclusion``) or of
    :func:`~fe2x.geometry.laminate_cell` (layers normal to ``axis`` with thickness
    ``fractions``, phases ``phase_names``, default ``layer0``, ...), of size ``lengths / counts``.
    The largest element size is ``min(cell_lengths) / elements_per_cell``, so every cell is
    resolved alike whatever n.

    Args:
        comm: Communicator of the mesh.
        n: Cells along x, at least 1.
        cell_kind: ``"inclusion"`` or ``"laminate"``.
        lengths: Specimen size ``(L_x, L_y)``, fixed as n varies.
        volume_fraction: Inclusion area over cell area (``"inclusion"``).
        fractions: Layer thickness fractions, positive, summing to 1 (``"laminate"``).
        axis: Stacking direction of the layers, 0 or 1 (``"laminate"``).
        phase_names: One name per layer, repeats share a phase (``"laminate"``).
        elements_per_cell: Cell edge over the largest element size.

    Returns:
        The TiledSpecimen, with boundaries left, right (x), bottom, top (y).

    Raises:
        GeometryError: a value out of range (named with the allowed range), or gmsh failed.
    """
    if cell_kind not in CELL_KINDS:
        raise GeometryError(f"cell_kind = {cell_kind!r} is unknown; allowed: {CELL_KINDS}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise GeometryError(f"n = {n!r} must be a positive integer")
    L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if L.size != 2 or not np.all(np.isfinite(L)) or not np.all(L > 0):
        raise GeometryError(f"lengths must be 2 positive numbers, got {L.tolist()}")
    if not (math.isfinite(elements_per_cell) and elements_per_cell > 0):
        raise GeometryError(f"elements_per_cell must be positive, got {elements_per_cell}")
    counts = (int(n), max(1, round(n * L[1] / L[0])))
    cell = L / np.asarray(counts)
    mesh_size = float(cell.min()) / elements_per_cell
    if cell_kind == "inclusion":
        radius = _inclusion_radius(cell, volume_fraction)
        names = ["matrix", "inclusion"]
    else:
        names, cuts = _layer_cuts(cell, fractions, axis, phase_names)

    def work() -> _SpecimenInfo:
        if cell_kind == "inclusion":
            groups = _add_inclusion_tiles(L, cell, counts, radius)
        else:
            groups = _add_layer_tiles(L, cell, counts, names, cuts, axis)
        gmsh.model.occ.synchronize()
        phases: dict[str, int] = {}
        for tag, (name, entities) in enumerate(groups.items(), start=1):
            gmsh.model.addPhysicalGroup(2, sorted(set(entities)), tag=tag, name=name)
            phases[name] = tag
        boundaries = _tag_sides(L)
        gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.0)
        gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
        gmsh.model.mesh.generate(2)
        return _SpecimenInfo(2, phases, boundaries)

    data, info = build_on_root(comm, f"tiled {cell_kind} specimen", work, _OPTIONS)
    if data.cell_tags is None or data.facet_tags is None:
        raise GeometryError("the tiled specimen lost its phase or boundary tags")
    logger.debug("tiled specimen: %d x %d %s cells, mesh size %g", *counts, cell_kind, mesh_size)
    return TiledSpecimen(
        data.mesh,
        data.cell_tags,
        data.facet_tags,
        dict(info.phases),
        dict(info.boundaries),
        counts,
        cell,
    )


def _inclusion_radius(cell: np.ndarray, volume_fraction: float) -> float:
    """Radius of the centred circle of ``volume_fraction`` that keeps clear of the cell faces."""
    r_max = (0.5 - _CENTRED_CLEARANCE) * float(cell.min())
    vf_max = ball_volume(2, r_max) / float(np.prod(cell))
    if not 0.0 < volume_fraction <= vf_max:
        raise GeometryError(
            f"volume_fraction must be in (0, {vf_max:.4g}] for a centred circle in a "
            f"{cell[0]:g} x {cell[1]:g} cell, got {volume_fraction}"
        )
    return math.sqrt(volume_fraction * float(np.prod(cell)) / math.pi)


def _layer_cuts(
    cell: np.ndarray, fractions: Sequence[float], axis: int, phase_names: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Phase name of each layer and the layer boundaries along ``axis`` within one cell."""
    f = np.asarray(fractions, dtype=np.float64).reshape(-1)
    if f.size < 1 or not np.all(f > 0) or abs(f.sum() - 1.0) > 1e-10:
        raise GeometryError(f"layer fractions must be positive and sum to 1, got {f.tolist()}")
    if axis not in (0, 1):
        raise GeometryError(f"laminate axis must be 0 or 1, got {axis!r}")
    names = [f"layer{i}" for i in range(f.size)] if phase_names is None else list(phase_names)
    if len(names) != f.size or not all(isinstance(s, str) and s for s in names):
        raise GeometryError(f"need {f.size} non-empty phase names, got {names}")
    cuts = np.concatenate([[0.0], np.cumsum(f)]) * cell[axis]
    cuts[-1] = cell[axis]
    return names, cuts


def _add_inclusion_tiles(
    L: np.ndarray, cell: np.ndarray, counts: tuple[int, int], radius: float
) -> dict[str, list[int]]:
    """The specimen rectangle fragmented by one centred disk per cell; surfaces per phase."""
    occ = gmsh.model.occ
    box = (2, occ.addRectangle(0.0, 0.0, 0.0, L[0], L[1]))
    disks = [
        (2, occ.addDisk((i + 0.5) * cell[0], (j + 0.5) * cell[1], 0.0, radius, radius))
        for i in range(counts[0])
        for j in range(counts[1])
    ]
    _, out_map = occ.fragment([box], disks)
    inclusion = {t for m in out_map[1:] for _, t in m}
    return {
        "matrix": sorted({t for _, t in out_map[0]} - inclusion),
        "inclusion": sorted(inclusion),
    }


def _add_layer_tiles(
    L: np.ndarray,
    cell: np.ndarray,
    counts: tuple[int, int],
    names: list[str],
    cuts: np.ndarray,
    axis: int,
) -> dict[str, list[int]]:
    """Strips across the specimen, the layers of every cell along ``axis``; surfaces per phase."""
    occ = gmsh.model.occ
    groups: dict[str, list[int]] = {name: [] for name in dict.fromkeys(names)}
    strips, owners = [], []
    for c in range(counts[axis]):
        for k, name in enumerate(names):
            lo, size = np.zeros(2), L.copy()
            lo[axis] = c * cell[axis] + cuts[k]
            size[axis] = cuts[k + 1] - cuts[k]
            strips.append((2, occ.addRectangle(lo[0], lo[1], 0.0, size[0], size[1])))
            owners.append(name)
    out_map = occ.fragment(strips[:1], strips[1:])[1] if len(strips) > 1 else [strips]
    for name, pieces in zip(owners, out_map, strict=True):
        groups[name].extend(t for _, t in pieces)
    return groups


def _tag_sides(L: np.ndarray) -> dict[str, int]:
    """Physical groups of the left, right, bottom and top boundary curves; name -> tag."""
    tol = 1e-6 * float(L.max())
    sides: dict[str, list[int]] = {name: [] for name in _BOUNDARIES}
    surfaces = gmsh.model.getEntities(2)
    for _, t in gmsh.model.getBoundary(surfaces, combined=True, oriented=False):
        box = np.asarray(gmsh.model.getBoundingBox(1, abs(t)))
        if box[3] < tol:
            sides["left"].append(abs(t))
        elif box[0] > L[0] - tol:
            sides["right"].append(abs(t))
        elif box[4] < tol:
            sides["bottom"].append(abs(t))
        elif box[1] > L[1] - tol:
            sides["top"].append(abs(t))
        else:
            raise GeometryError(f"boundary curve {t} lies on no side of the specimen")
    boundaries: dict[str, int] = {}
    for tag, name in enumerate(_BOUNDARIES, start=1):
        gmsh.model.addPhysicalGroup(1, sorted(set(sides[name])), tag=tag, name=name)
        boundaries[name] = tag
    return boundaries
