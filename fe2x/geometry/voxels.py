"""Periodic quadrilateral/hexahedral DOLFINx meshes of box cells from voxel label arrays.

Axis convention: ``labels[i, j]`` (2D) or ``labels[i, j, k]`` (3D) is the voxel whose centre is
``origin + ((i + ½) h_x, (j + ½) h_y, (k + ½) h_z)`` with ``h = lengths / labels.shape``: array
axis 0 is x, axis 1 is y, axis 2 is z (in numpy's C order z varies fastest in memory). Every
voxel becomes one cell; a structured grid of the box carries matching nodes on opposite faces,
so the mesh is periodic whatever the labels are. Whether the *image* is periodic (its
microstructure continues across the faces) is another matter: :func:`check_periodic_labels`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from mpi4py import MPI

import dolfinx
import numpy as np
import numpy.typing as npt
from dolfinx.mesh import CellType, GhostMode

from fe2x.errors import GeometryError
from fe2x.geometry.budget import max_elements
from fe2x.geometry.mesh_file import RVEMesh
from fe2x.geometry.periodicity import on_boundary, periodic_images

logger = logging.getLogger(__name__)

__all__ = [
    "PERIODICITY",
    "SeamCheck",
    "as_labels",
    "check_periodic_labels",
    "make_periodic",
    "voxel_cell",
]

_ROOT = 0
_AXES = "xyz"
#: What :func:`voxel_cell` does with an image whose faces do not match (see :func:`make_periodic`).
PERIODICITY: tuple[str, ...] = ("check", "mirror", "trim", "ignore")
# A seam passes when it is at most this many binomial standard deviations above the midpoint
# between the interior and the unrelated-layer mismatch (0.13 % false refusals on white noise).
_SEAM_SIGMAS = 3.0
# "trim" removes at most this fraction of the layers along an axis.
_TRIM_MAX = 0.25


def as_labels(labels: npt.ArrayLike, what: str = "labels") -> np.ndarray:
    """A 2D or 3D integer label array (int64), or a one-line GeometryError naming ``what``.

    Booleans count as 0/1; floating-point values are accepted when all are whole numbers.

    >>> as_labels([[0, 1], [1.0, 2]]).dtype
    dtype('int64')
    """
    try:
        a = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise GeometryError(f"{what} are not an array: {e}") from None
    if a.ndim not in (2, 3):
        raise GeometryError(f"{what} must be a 2D or 3D array, got shape {a.shape}")
    if a.size == 0:
        raise GeometryError(f"{what} have an empty axis: shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.integer):
        if a.dtype == np.uint64 and int(a.max()) > np.iinfo(np.int64).max:
            raise GeometryError(f"{what} exceed the int64 range")
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a) | (a != np.round(a))
        if np.any(bad):
            raise GeometryError(
                f"{what} must be integers; {int(bad.sum())} of {a.size} values are not"
            )
        if np.abs(a).max() > 2.0**53:
            raise GeometryError(f"{what} stored as floats exceed 2^53, too large to be exact")
        return a.astype(np.int64)
    raise GeometryError(f"{what} must be integers, got dtype {a.dtype}")


class SeamCheck(NamedTuple):
    """How the wrap-around seam of a label image along one axis compares with its interior.

    Mismatch fractions are fractions of voxel pairs with different labels between two layers
    normal to ``axis``.

    Attributes:
        axis: 0, 1 or 2 (x, y, z).
        seam: mismatch between the last and the first layer (neighbours across the faces).
        interior: mean mismatch between neighbouring interior layers (what a periodic seam
            shows on average).
        unrelated: mismatch expected between two unrelated layers with the label frequencies
            of the first and the last layer, ``1 - Σ_l p_l(first) p_l(last)`` (what a cut shows).
        periodic: whether the seam passes (see :func:`check_periodic_labels`).
    """

    axis: int
    seam: float
    interior: float
    unrelated: float
    periodic: bool

    def describe(self) -> str:
        """One phrase naming the faces and the mismatch, for messages."""
        a = _AXES[self.axis]
        return (
            f"faces {a}=0 and {a}=L differ in {100 * self.seam:.1f}% of voxel pairs "
            f"(interior neighbours {100 * self.interior:.1f}%, "
            f"unrelated layers {100 * self.unrelated:.1f}%)"
        )


def _seam_check(layers: np.ndarray, axis: int, interior: np.ndarray) -> SeamCheck:
    """SeamCheck of ``layers`` (axis moved first) given its interior mismatch per layer pair."""
    first, last = layers[0].ravel(), layers[-1].ravel()
    n_pairs = first.size
    seam_count = int(np.count_nonzero(first != last))
    seam = seam_count / n_pairs
    m = float(interior.mean()) if interior.size else seam
    values, inverse = np.unique(np.concatenate([first, last]), return_inverse=True)
    p_first = np.bincount(inverse[:n_pairs], minlength=values.size) / n_pairs
    p_last = np.bincount(inverse[n_pairs:], minlength=values.size) / n_pairs
    unrelated = float(1.0 - p_first @ p_last)
    threshold = 0.5 * (m + unrelated) + _SEAM_SIGMAS * np.sqrt(m * (1.0 - m) / n_pairs)
    # A layered structure with an interface on the cell face: the seam is a complete interface
    # like some interior pair of layers.
    interface = seam_count == n_pairs and interior.size > 0 and bool(np.any(interior == 1.0))
    return SeamCheck(axis, seam, m, unrelated, bool(seam <= threshold or interface))


def _interior_mismatch(layers: np.ndarray) -> np.ndarray:
    flat = layers.reshape(layers.shape[0], -1)
    return np.count_nonzero(flat[1:] != flat[:-1], axis=1) / flat.shape[1]


def check_periodic_labels(labels: npt.ArrayLike) -> list[SeamCheck]:
    """Compare, along each axis, the seam across the opposite faces with the interior layers.

    A periodic image continues across its faces, so its seam (last layer next to the first)
    looks like a pair of neighbouring interior layers; a cut image (e.g. micro-CT) has a seam
    like two unrelated layers. The seam passes when its mismatch fraction is nearer the mean
    interior one ``m`` than the unrelated one ``r``, up to binomial noise over the ``N`` pairs,
    ``seam <= (m + r)/2 + 3 sqrt(m (1 - m) / N)``, or when it is a complete interface (every
    pair differs) as some interior layer pair also is (a laminate with an interface on the
    face). This is a screen, not a proof: images with few, coarse features can pass cut.

    Args:
        labels: 2D or 3D integer label array (axis convention of the module).

    Returns:
        One SeamCheck per axis.
    """
    a = as_labels(labels)
    checks = []
    for axis in range(a.ndim):
        layers = np.moveaxis(a, axis, 0)
        checks.append(_seam_check(layers, axis, _interior_mismatch(layers)))
    return checks


def _trim_axis(layers: np.ndarray, axis: int) -> slice | None:
    """The layer range removing fewest layers (at most a quarter) whose seam passes."""
    n = layers.shape[0]
    interior = _interior_mismatch(layers)
    for removed in range(1, int(_TRIM_MAX * n) + 1):
        best: tuple[float, slice] | None = None
        for start in range(removed + 1):
            keep = slice(start, n - (removed - start))
            check = _seam_check(layers[keep], axis, interior[keep.start : keep.stop - 1])
            if check.periodic and (best is None or check.seam < best[0]):
                best = (check.seam, keep)
        if best is not None:
            return best[1]
    return None


def make_periodic(labels: npt.ArrayLike, periodicity: str = "check") -> list[np.ndarray]:
    """Voxel indices along each axis that make a label image pass :func:`check_periodic_labels`.

    ``periodicity`` says what to do with each axis whose seam fails:

    - ``"check"``: refuse, with a GeometryError naming the faces and their mismatch;
    - ``"mirror"``: append the image reflected along that axis (twice the length; the seams
      of the result are mirror planes, periodic by construction; note that it adds a mirror
      symmetry normal to the axis, which the effective properties then carry);
    - ``"trim"``: drop the fewest layers at either end (at most a quarter of the axis) for
      which the new seam passes; refuse if none does;
    - ``"ignore"``: keep the image as it is, unchecked (for images periodic by construction,
      or on the user's word): the mesh is periodic, but a cut image is not representative.

    Args:
        labels: 2D or 3D integer label array.
        periodicity: One of :data:`PERIODICITY`.

    Returns:
        Per axis, the indices of the original layers in the result (apply with
        ``labels[np.ix_(*index)]``).

    Raises:
        GeometryError: Unknown ``periodicity``; a failing seam under ``"check"``; no passing
            trim under ``"trim"``.
    """
    if periodicity not in PERIODICITY:
        raise GeometryError(f"periodicity must be one of {list(PERIODICITY)}, got {periodicity!r}")
    a = as_labels(labels)
    index = [np.arange(n) for n in a.shape]
    if periodicity == "ignore":
        return index
    failing = [c for c in check_periodic_labels(a) if not c.periodic]
    if not failing:
        return index
    if periodicity == "check":
        raise GeometryError(
            "label image is not periodic: "
            + "; ".join(c.describe() for c in failing)
            + "; pass periodicity='mirror', 'trim' or 'ignore'"
        )
    for c in failing:
        n = a.shape[c.axis]
        if periodicity == "mirror":
            index[c.axis] = np.concatenate([np.arange(n), np.arange(n)[::-1]])
            continue
        keep = _trim_axis(np.moveaxis(a, c.axis, 0), c.axis)
        if keep is None:
            raise GeometryError(
                f"trimming up to {int(_TRIM_MAX * n)} of {n} layers finds no periodic seam "
                f"along {_AXES[c.axis]} ({c.describe()}); use periodicity='mirror'"
            )
        index[c.axis] = np.arange(n)[keep]
    logger.info(
        "label image made periodic (%s): shape %s -> %s",
        periodicity,
        a.shape,
        tuple(i.size for i in index),
    )
    return index


class _VoxelImage(NamedTuple):
    """What rank 0 validates and broadcasts: tag and cell data of every voxel."""

    tags: np.ndarray
    cell_data: dict[str, np.ndarray]
    phases: dict[str, int]
    origin: np.ndarray
    lengths: np.ndarray


def _vector(value: npt.ArrayLike | None, dim: int, default: np.ndarray, what: str) -> np.ndarray:
    if value is None:
        return default.astype(np.float64)
    try:
        v = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"{what} must be {dim} numbers, got {value!r}") from None
    if v.size != dim or not np.all(np.isfinite(v)):
        raise GeometryError(f"{what} must be {dim} finite numbers, got {v.tolist()}")
    return v


def _phase_tags(
    present: np.ndarray, phases: Mapping[int, str] | None
) -> tuple[dict[str, int], dict[int, int]]:
    """Phase name -> tag (1, 2, ... by smallest label) and label -> tag of the present labels."""
    names: dict[int, str] = {}
    for label in present.tolist():
        if phases is None:
            names[label] = f"phase{label}"
            continue
        if label not in phases:
            shown = [int(x) for x in present if int(x) not in phases][:10]
            raise GeometryError(f"labels {shown} have no phase name in the phase mapping")
        name = phases[label]
        if not isinstance(name, str) or not name:
            raise GeometryError(f"phase name of label {label} must be a non-empty string")
        names[label] = name
    tags: dict[str, int] = {}
    for label in sorted(names):  # present is sorted already; tags by smallest label
        tags.setdefault(names[label], len(tags) + 1)
    return tags, {label: tags[name] for label, name in names.items()}


def _prepare(
    labels: npt.ArrayLike,
    lengths: npt.ArrayLike | None,
    phases: Mapping[int, str] | None,
    origin: npt.ArrayLike | None,
    cell_data: Mapping[str, npt.ArrayLike] | None,
    periodicity: str,
) -> _VoxelImage:
    a = as_labels(labels)
    dim = a.ndim
    shape = np.array(a.shape)
    L = _vector(lengths, dim, shape.astype(np.float64), "lengths")
    if not np.all(L > 0):
        raise GeometryError(f"lengths must be positive, got {L.tolist()}")
    o = _vector(origin, dim, np.zeros(dim), "origin")
    data: dict[str, np.ndarray] = {}
    for name, values in (cell_data or {}).items():
        v = np.asarray(values)
        if v.shape[:dim] != a.shape:
            raise GeometryError(
                f"cell data {name!r} must have one entry per voxel, shape {a.shape} + value "
                f"shape, got {v.shape}"
            )
        data[name] = v
    if phases is not None and not isinstance(phases, Mapping):
        raise GeometryError(f"phases must map labels to phase names, got {type(phases).__name__}")
    index = make_periodic(a, periodicity)
    grid = np.ix_(*index)
    a = a[grid]
    data = {name: v[grid] for name, v in data.items()}
    h = L / shape
    L = h * np.array(a.shape)
    present, inverse = np.unique(a, return_inverse=True)
    phase_tags, tag_of_label = _phase_tags(present, phases)
    tag_of_present = np.array([tag_of_label[int(x)] for x in present], dtype=np.int32)
    tags = tag_of_present[inverse.reshape(a.shape)]
    return _VoxelImage(tags, data, phase_tags, o, L)


def _check_mesh_periodic(mesh: dolfinx.mesh.Mesh, origin: np.ndarray, lengths: np.ndarray) -> None:
    """Check on rank 0 that the mesh nodes on the box faces pair up periodically."""
    dim = origin.size
    x = mesh.geometry.x[:, :dim]
    x = x[on_boundary(x, origin, lengths)]
    gathered = mesh.comm.gather(x, root=_ROOT)
    verdict = None
    if mesh.comm.rank == _ROOT:
        try:
            periodic_images(np.unique(np.vstack(gathered), axis=0), origin, lengths)
        except GeometryError as e:
            verdict = f"voxel mesh is not periodic: {e}"
    verdict = mesh.comm.bcast(verdict, root=_ROOT)
    if verdict is not None:
        raise GeometryError(verdict)


def voxel_cell(
    comm: MPI.Comm,
    labels: npt.ArrayLike | None,
    lengths: npt.ArrayLike | None = None,
    phases: Mapping[int, str] | None = None,
    origin: npt.ArrayLike | None = None,
    cell_data: Mapping[str, npt.ArrayLike] | None = None,
    periodicity: str = "check",
) -> RVEMesh:
    """A periodic box cell meshed with one quadrilateral (2D) or hexahedron (3D) per voxel.

    Only rank 0's arguments are used (other ranks may pass None for ``labels``): rank 0
    validates them and broadcasts the voxels. Each rank then finds the voxel of each of its
    cells from the cell's midpoint, so the tags and cell data follow DOLFINx's distribution
    and reordering of cells on any number of ranks.

    Phases are the distinct names of the labels present, ``phases[label]`` (default
    ``phase<label>``); several labels may share a name (e.g. all grains one phase). The phases
    are tagged 1, 2, ... in the order of their smallest label.

    Args:
        comm: Communicator of the mesh.
        labels: 2D (nx, ny) or 3D (nx, ny, nz) integer array, ``labels[i, j, k]`` at x, y, z
            (module notes).
        lengths: Edge lengths of the image box, shape (dim,); default: the shape (unit voxels).
        phases: Label -> phase name; must name every label present.
        origin: Lower corner, shape (dim,); default zeros.
        cell_data: Per-voxel arrays by name, each of shape ``labels.shape + value_shape``
            (e.g. a grain id, or per-grain orientations expanded to voxels); they become
            :attr:`RVEMesh.cell_data` rows, one per local cell.
        periodicity: What to do if the image's faces do not match (:func:`make_periodic`):
            ``"check"`` (refuse, the default), ``"mirror"``, ``"trim"`` or ``"ignore"``.
            Mirroring or trimming changes the cell lengths; the voxel size is kept.

    Returns:
        The RVEMesh on every rank; its ``lengths`` are those of the (possibly mirrored or
        trimmed) image.

    Raises:
        GeometryError: Bad labels, lengths, origin, phases or cell data; a non-periodic image
            under ``"check"``.
    """
    verdict: tuple[str, object] | None = None
    if comm.rank == _ROOT:
        try:
            if labels is None:
                raise GeometryError(f"labels are None on rank {_ROOT}, the rank that reads them")
            prepared = _prepare(labels, lengths, phases, origin, cell_data, periodicity)
            if prepared.tags.size > max_elements():
                raise GeometryError(
                    f"a voxel cell of {prepared.tags.size:.3g} voxels is more than the limit of "
                    f"{max_elements():.3g} elements; coarsen the image, or raise the limit with "
                    "FE2X_MAX_ELEMENTS"
                )
            verdict = ("ok", prepared)
        except GeometryError as e:
            verdict = ("error", str(e))
    verdict = comm.bcast(verdict, root=_ROOT)
    if verdict[0] == "error":
        raise GeometryError(verdict[1])
    image: _VoxelImage = verdict[1]  # type: ignore[assignment]
    shape = np.array(image.tags.shape)
    dim = shape.size
    corners = [image.origin, image.origin + image.lengths]
    if dim == 2:
        mesh = dolfinx.mesh.create_rectangle(
            comm, corners, shape.tolist(), CellType.quadrilateral, ghost_mode=GhostMode.none
        )
    else:
        mesh = dolfinx.mesh.create_box(
            comm, corners, shape.tolist(), CellType.hexahedron, ghost_mode=GhostMode.none
        )
    tdim = mesh.topology.dim
    cell_map = mesh.topology.index_map(tdim)
    cells = np.arange(cell_map.size_local + cell_map.num_ghosts, dtype=np.int32)
    midpoints = dolfinx.mesh.compute_midpoints(mesh, tdim, cells)[:, :dim]
    h = image.lengths / shape
    ijk = np.clip(np.floor((midpoints - image.origin) / h).astype(np.int64), 0, shape - 1)
    voxel = np.ravel_multi_index(tuple(ijk.T), tuple(shape))
    cell_tags = dolfinx.mesh.meshtags(mesh, tdim, cells, image.tags.reshape(-1)[voxel])
    data = {
        name: v.reshape(-1, *v.shape[dim:])[voxel].copy() for name, v in image.cell_data.items()
    }
    _check_mesh_periodic(mesh, image.origin, image.lengths)
    logger.debug("voxel cell %s: phases %s", tuple(shape), image.phases)
    return RVEMesh(mesh, cell_tags, dict(image.phases), image.origin, image.lengths, data or None)
