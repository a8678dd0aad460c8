"""Hand gmsh models and user mesh files of periodic cells to DOLFINx as an RVEMesh.

Mesh files are read as meshes, never run as scripts: the extension must be one of
:data:`MESH_FORMATS` and the file must begin as that format does, before any reader sees it (a
gmsh ``.geo`` script, which can run shell commands, is refused, also when renamed ``.msh``).
Files other than gmsh's are read with meshio and loaded into a gmsh model, so that every format
goes through the same phase, flatness and periodicity checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mpi4py import MPI

import dolfinx
import gmsh
import numpy as np
from dolfinx.io.gmsh import MeshData, model_to_mesh

from fe2x.errors import GeometryError
from fe2x.geometry.periodicity import on_boundary, periodic_images

logger = logging.getLogger(__name__)

_ROOT = 0
# gmsh options fe2x sets; their previous values are restored afterwards.
_OPTIONS = (
    "General.Terminal",
    "Mesh.MeshSizeMin",
    "Mesh.MeshSizeMax",
    "Mesh.MeshSizeFromPoints",
    "Mesh.HighOrderPeriodic",
    "Mesh.SecondOrderLinear",
    "Mesh.HighOrderOptimize",
)

MESH_FORMATS = {".msh": "gmsh", ".inp": "abaqus", ".vtu": "vtu", ".xdmf": "xdmf", ".xmf": "xdmf"}
"""Accepted mesh-file extensions and their formats (gmsh MSH, Abaqus input, VTK XML, XDMF)."""
_FORMAT_NAMES = {"gmsh": "gmsh .msh", "abaqus": "Abaqus .inp", "vtu": "VTK .vtu", "xdmf": "XDMF"}
_HEAD_BYTES = 4096
# meshio cell type -> gmsh element type and the permutation from meshio's (VTK) node order to
# gmsh's; the quadratic tetrahedron lists its edges (1,3) and (2,3) the other way round.
_GMSH_ELEMENTS = {
    "triangle": (2, None),
    "triangle6": (9, None),
    "quad": (3, None),
    "tetra": (4, None),
    "tetra10": (11, (0, 1, 2, 3, 4, 5, 6, 7, 9, 8)),
    "hexahedron": (5, None),
}


class RVEMesh(NamedTuple):
    """A periodic box cell meshed for DOLFINx.

    Attributes:
        mesh: The distributed mesh (geometry order 1 or 2).
        cell_tags: Cell markers, one value per phase.
        phases: Phase name -> cell tag value, in phase order.
        origin: Lower corner of the cell, shape (dim,).
        lengths: Edge lengths of the cell, shape (dim,).
        cell_data: Per-cell arrays by name, one row per local cell (owned and ghost), e.g. a
            grain orientation ``(n_cells, 3, 3)``; the laws read their per-point parameters
            (:attr:`fe2x.materials.law.ConstitutiveLaw.parameter_shapes`) from it. None when
            the cell has none.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    phases: dict[str, int]
    origin: np.ndarray
    lengths: np.ndarray
    cell_data: dict[str, np.ndarray] | None = None


class CellInfo(NamedTuple):
    """What rank 0 learns from a gmsh model and broadcasts (picklable)."""

    dim: int
    phases: dict[str, int]
    origin: np.ndarray
    lengths: np.ndarray


def build_on_root(
    comm: MPI.Comm,
    what: str,
    work: Callable[[], Any],
    options: tuple[str, ...] = _OPTIONS,
) -> tuple[MeshData, Any]:
    """Run ``work`` in a fresh gmsh model on rank 0 of ``comm`` and distribute its mesh.

    ``work`` builds (or loads) a meshed model and returns what rank 0 learnt of it (picklable,
    with a ``dim`` attribute). Its verdict is broadcast, so a GeometryError raised on rank 0 is
    raised on every rank. gmsh is initialised if needed, the given ``options`` are restored and
    the model removed afterwards.

    Args:
        comm: Communicator of the mesh.
        what: Description used in error messages, e.g. ``"inclusion cell"``.
        work: Callable run on rank 0 only.
        options: gmsh options that ``work`` may change.

    Returns:
        DOLFINx's MeshData and ``work``'s answer, on every rank of ``comm``.
    """
    verdict: tuple[str, Any] | None = None
    initialized_here = False
    saved: dict[str, float] = {}
    previous_model = ""
    if comm.rank == _ROOT:
        if not gmsh.isInitialized():
            gmsh.initialize(readConfigFiles=False, interruptible=False)
            initialized_here = True
        saved = {name: gmsh.option.getNumber(name) for name in options}
        gmsh.option.setNumber("General.Terminal", 0)
        previous_model = gmsh.model.getCurrent()
        gmsh.model.add(f"fe2x_{what.replace(' ', '_')}")
        try:
            verdict = ("ok", work())
        except GeometryError as e:
            verdict = ("error", str(e))
        except Exception as e:  # gmsh raises bare Exceptions; report them on every rank
            verdict = ("error", f"gmsh could not build the {what}: {e}")
    verdict = comm.bcast(verdict, root=_ROOT)
    try:
        if verdict[0] == "error":
            raise GeometryError(verdict[1])
        info = verdict[1]
        model = gmsh.model if comm.rank == _ROOT else None
        try:
            data = model_to_mesh(model, comm, _ROOT, gdim=info.dim)
        except RuntimeError as e:  # raised collectively by model_to_mesh
            raise GeometryError(f"DOLFINx cannot use the {what}: {e}") from e
    finally:
        if comm.rank == _ROOT:
            gmsh.model.remove()
            if previous_model:
                try:
                    gmsh.model.setCurrent(previous_model)
                except Exception:
                    logger.debug("gmsh model %s vanished", previous_model)
            for name, value in saved.items():
                gmsh.option.setNumber(name, value)
            if initialized_here:
                gmsh.finalize()
    return data, info


def run_on_root(comm: MPI.Comm, what: str, work: Callable[[], CellInfo]) -> RVEMesh:
    """:func:`build_on_root` for an RVE: ``work`` makes one physical group per phase."""
    data, info = build_on_root(comm, what, work)
    if data.cell_tags is None:  # DOLFINx tags no cells of a mesh of several cell types
        raise GeometryError(f"the {what} has no cell tags (are its cells of several types?)")
    logger.debug("built %s: %s", what, info.phases)
    return RVEMesh(data.mesh, data.cell_tags, dict(info.phases), info.origin, info.lengths)


def check_model_periodic(
    dim: int, origin: np.ndarray, lengths: np.ndarray, source: str, tol: float | None = None
) -> None:
    """Check on rank 0 that the current gmsh model's nodes on the box faces pair up periodically.

    Raises:
        GeometryError: Naming ``source`` and the first node without a partner.
    """
    _, coords, _ = gmsh.model.mesh.getNodes(returnParametricCoord=False)
    x = coords.reshape(-1, 3)[:, :dim]
    x = x[on_boundary(x, origin, lengths, tol)]
    try:
        periodic_images(x, origin, lengths, tol)
    except GeometryError as e:
        raise GeometryError(f"{source} is not periodic: {e}") from None


def mesh_format(path: Path, formats: Mapping[str, str] = MESH_FORMATS) -> str:
    """The format of mesh file ``path``, from its extension, checked against its first bytes.

    gmsh .msh must start with ``$MeshFormat``, Abaqus .inp with a keyword line (``*``), .vtu with
    an XML ``<VTKFile type="UnstructuredGrid"`` header and XDMF with an ``<Xdmf`` element.

    Raises:
        GeometryError: Naming the file and the accepted formats when either check fails.
    """
    accepted = ", ".join(f"{ext} ({_FORMAT_NAMES[f]})" for ext, f in formats.items())
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise GeometryError(
            f"mesh file {path}: extension {path.suffix or '(none)'!r} is not a mesh format; "
            f"accepted: {accepted} (scripts such as .geo are never run)"
        )
    with open(path, "rb") as file:
        head = file.read(_HEAD_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
    text = head.decode("latin-1")
    if fmt == "gmsh":
        ok = text.startswith("$MeshFormat")
    elif fmt == "abaqus":
        ok = text.startswith("*")
    elif fmt == "vtu":
        ok = text.startswith("<") and "<VTKFile" in text and "UnstructuredGrid" in text
    else:
        ok = text.startswith("<") and "<Xdmf" in text
    if not ok:
        raise GeometryError(
            f"mesh file {path} does not start as a {_FORMAT_NAMES[fmt]} mesh does; "
            f"accepted: {accepted} (scripts such as .geo are never run)"
        )
    return fmt


def read_cell(
    comm: MPI.Comm, path: str | Path, dim: int | None = None, phase_data: str | None = None
) -> RVEMesh:
    """Read a periodic box cell from a mesh file: gmsh .msh, Abaqus .inp, VTK .vtu or XDMF.

    Phases are, by format:

    - .msh: the physical groups of the top dimension, named by their physical names
      (``phase<tag>`` when unnamed);
    - .inp: the element sets (``*ELSET``, or ``ELSET=`` on ``*ELEMENT``) of top-dimension cells,
      tagged 1, 2, ... in file order; a set of every cell (such as ``EALL``) is ignored when
      others exist, and the rest must hold each cell exactly once;
    - .vtu, .xdmf: the values v >= 1 of the integer cell-data array ``phase_data``, named
      ``phase<v>`` and tagged v; by default the array ``phase``, else the first integer array.

    meshio reads the formats other than .msh (pip package ``meshio``); their cells of the top
    dimension must be all of one type among triangles and tetrahedra of order 1 or 2 and
    quadrilaterals and hexahedra of order 1, and cells of lower dimension are ignored. The cell
    box is the bounding box of the nodes, and the nodes on its faces must pair up periodically
    (high-order nodes included).

    Args:
        comm: Communicator of the mesh.
        path: The mesh file; its extension names its format (:data:`MESH_FORMATS`).
        dim: Expected dimension (2 or 3); default: the top dimension of the phases.
        phase_data: Name of the cell-data array holding the phases (.vtu and .xdmf only).

    Returns:
        The RVEMesh on every rank of ``comm``.

    Raises:
        GeometryError: Missing, unaccepted or unreadable file, unsupported cells, no or
            duplicate phases, non-periodic mesh.
    """
    path = Path(path)
    if dim is not None and dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")

    def work() -> CellInfo:
        if path.is_dir():
            raise GeometryError(f"mesh file {path} is a directory")
        if not path.is_file():
            raise GeometryError(f"mesh file not found: {path}")
        fmt = mesh_format(path)
        if phase_data is not None and fmt not in ("vtu", "xdmf"):
            raise GeometryError(
                f"mesh file {path}: phase_data applies to .vtu and .xdmf files, not {path.suffix}"
            )
        if fmt == "gmsh":
            try:
                gmsh.merge(str(path))
            except Exception as e:
                raise GeometryError(f"cannot read mesh file {path}: {e}") from None
        else:
            _load_with_meshio(path, fmt, phase_data)
        groups = gmsh.model.getPhysicalGroups()
        if not groups:
            raise GeometryError(f"mesh file {path} has no physical groups (one per phase needed)")
        top = max(d for d, _ in groups)
        if dim is not None and top != dim:
            raise GeometryError(
                f"mesh file {path} has physical groups up to dimension {top}, expected {dim}"
            )
        if top not in (2, 3):
            raise GeometryError(f"mesh file {path}: top physical dimension {top} is not 2 or 3")
        phases: dict[str, int] = {}
        for d, tag in sorted(groups):
            if d != top:
                continue
            name = gmsh.model.getPhysicalName(d, tag) or f"phase{tag}"
            if name in phases:
                raise GeometryError(f"mesh file {path}: phase name {name!r} used twice")
            phases[name] = tag
        _, coords, _ = gmsh.model.mesh.getNodes(returnParametricCoord=False)
        x = coords.reshape(-1, 3)
        if x.shape[0] == 0:
            raise GeometryError(f"mesh file {path} has no nodes")
        if top == 2 and np.ptp(x[:, 2]) > 1e-12 * max(np.ptp(x[:, :2]), 1.0):
            raise GeometryError(f"mesh file {path}: 2D mesh is not flat in z")
        origin = x[:, :top].min(axis=0)
        lengths = x[:, :top].max(axis=0) - origin
        if np.any(lengths <= 0):
            raise GeometryError(f"mesh file {path}: degenerate bounding box {lengths.tolist()}")
        check_model_periodic(top, origin, lengths, f"mesh file {path}")
        return CellInfo(top, phases, origin, lengths)

    return run_on_root(comm, f"mesh file {path}", work)


def _load_with_meshio(path: Path, fmt: str, phase_data: str | None) -> None:
    """Read ``path`` with meshio and add its top-dimension cells and phases to the gmsh model.

    Only the nodes of those cells are added; each phase becomes a discrete entity and a
    physical group of the same tag.
    """
    try:
        import meshio
        from meshio._mesh import topological_dimension
    except ImportError:
        raise GeometryError(
            f"reading {path.suffix} mesh files needs the meshio package (pip install meshio)"
        ) from None
    try:
        mesh = meshio.read(path, file_format=fmt)
    except Exception as e:  # meshio raises many kinds of errors on malformed files
        raise GeometryError(f"cannot read mesh file {path}: {e}") from None
    if not mesh.cells:
        raise GeometryError(f"mesh file {path} has no cells")
    top = max(topological_dimension.get(b.type, -1) for b in mesh.cells)
    blocks = [i for i, b in enumerate(mesh.cells) if topological_dimension.get(b.type) == top]
    types = sorted({mesh.cells[i].type for i in blocks})
    for cell_type in types:
        if cell_type not in _GMSH_ELEMENTS:
            raise GeometryError(
                f"mesh file {path}: cell type {cell_type!r} is not supported (supported: "
                "triangle, triangle6, tetra, tetra10, quad, hexahedron)"
            )
    if len(types) > 1:
        raise GeometryError(f"mesh file {path} mixes cell types {types}; one type is needed")
    element, order = _GMSH_ELEMENTS[types[0]]
    cells = np.concatenate([mesh.cells[i].data for i in blocks])
    if order is not None:
        cells = cells[:, order]
    if fmt == "abaqus":
        tags, names = _element_set_phases(path, mesh.cell_sets, blocks, mesh.cells)
    else:
        tags, names = _cell_data_phases(path, mesh.cell_data, blocks, phase_data)
    used = np.unique(cells)
    x = np.zeros((used.size, 3))
    x[:, : mesh.points.shape[1]] = mesh.points[used]
    connectivity = np.searchsorted(used, cells) + 1
    element_tags = np.arange(1, cells.shape[0] + 1)
    for k, (tag, name) in enumerate(zip(np.unique(tags), names, strict=True)):
        gmsh.model.addDiscreteEntity(top, int(tag))
        if k == 0:
            gmsh.model.mesh.addNodes(top, int(tag), np.arange(1, used.size + 1), x.ravel())
        mask = tags == tag
        gmsh.model.mesh.addElementsByType(
            int(tag), element, element_tags[mask], connectivity[mask].ravel()
        )
        gmsh.model.addPhysicalGroup(top, [int(tag)], tag=int(tag), name=name)


def _element_set_phases(
    path: Path, cell_sets: dict[str, list[np.ndarray]], blocks: list[int], cells: list[Any]
) -> tuple[np.ndarray, list[str]]:
    """Phase tag of each top-dimension cell and the phase names, from Abaqus element sets."""
    offsets = np.cumsum([0] + [len(cells[i].data) for i in blocks])
    n = int(offsets[-1])
    members: dict[str, np.ndarray] = {}
    for name, per_block in cell_sets.items():
        parts = [
            np.asarray(per_block[i], dtype=np.int64) + offsets[k]
            for k, i in enumerate(blocks)
            if i < len(per_block) and per_block[i] is not None and len(per_block[i])
        ]
        if parts:
            members[name] = np.unique(np.concatenate(parts))
    if not members:
        raise GeometryError(f"mesh file {path} has no element sets (one *ELSET per phase needed)")
    if len(members) > 1:
        members = {k: v for k, v in members.items() if v.size < n} or members
    tags = np.zeros(n, dtype=np.int64)
    for tag, (name, index) in enumerate(members.items(), start=1):
        taken = index[tags[index] != 0]
        if taken.size:
            other = list(members)[int(tags[taken[0]]) - 1]
            raise GeometryError(
                f"mesh file {path}: element sets {other!r} and {name!r} overlap "
                f"({taken.size} cells); each cell must be in one phase"
            )
        tags[index] = tag
    if np.any(tags == 0):
        raise GeometryError(
            f"mesh file {path}: {int(np.sum(tags == 0))} of {n} cells are in no element set"
        )
    return tags, list(members)


def _cell_data_phases(
    path: Path, cell_data: dict[str, list[np.ndarray]], blocks: list[int], phase_data: str | None
) -> tuple[np.ndarray, list[str]]:
    """Phase tag of each top-dimension cell and the phase names, from a cell-data array."""

    def integral(values: list[np.ndarray]) -> bool:
        return all(np.issubdtype(np.asarray(v).dtype, np.integer) for v in values)

    name = phase_data
    if name is None:
        candidates = ["phase"] if "phase" in cell_data else []
        candidates += [k for k, v in cell_data.items() if integral(v)]
        if not candidates:
            raise GeometryError(
                f"mesh file {path} has no integer cell-data array to take phases from "
                f"(arrays: {sorted(cell_data)}); name one with phase_data"
            )
        name = candidates[0]
    elif name not in cell_data:
        raise GeometryError(
            f"mesh file {path} has no cell-data array {name!r} (arrays: {sorted(cell_data)})"
        )
    values = [np.asarray(cell_data[name][i]) for i in blocks]
    tags = np.concatenate([v.reshape(v.shape[0], -1)[:, 0] for v in values])
    if not integral(values) and not np.all(tags == np.round(tags)):
        raise GeometryError(f"mesh file {path}: cell-data array {name!r} is not integer-valued")
    tags = tags.astype(np.int64)
    if tags.size and tags.min() < 1:
        raise GeometryError(
            f"mesh file {path}: phases in cell-data array {name!r} must be integers >= 1 "
            f"(gmsh physical tags), found {int(tags.min())}"
        )
    return tags, [f"phase{t}" for t in np.unique(tags)]
