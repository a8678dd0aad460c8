"""Build or read macro specimens (block, plate with hole, notched bar, beam) as tagged meshes."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from mpi4py import MPI

import dolfinx
import gmsh
import numpy as np

from fe2x.errors import GeometryError
from fe2x.geometry.budget import check_element_budget
from fe2x.geometry.mesh_file import _OPTIONS, build_on_root, mesh_format

logger = logging.getLogger(__name__)

# Size fields need gmsh's other size sources off; these are restored too.
_MACRO_OPTIONS = (
    *_OPTIONS,
    "Mesh.MeshSizeFromPoints",
    "Mesh.MeshSizeFromCurvature",
    "Mesh.MeshSizeExtendFromBoundary",
)
# Mesh size near a stress raiser, as a fraction of mesh_size.
_REFINEMENT = 1.0 / 3.0
# Relative tolerance on (loose, OCC) bounding boxes when naming boundary entities.
_TOL = 1e-5
# Most sampling points per curve (or per surface direction) of a distance field.
_MAX_SAMPLING = 100

_MACRO_FORMATS = {".msh": "gmsh"}
"""Mesh files :func:`read_macro` accepts."""

DimTag = tuple[int, int]
Box = np.ndarray  # a gmsh bounding box (xmin, ymin, zmin, xmax, ymax, zmax)


class MacroMesh(NamedTuple):
    """A macro specimen meshed for DOLFINx.

    Attributes:
        mesh: The distributed mesh (geometry order 1 or 2).
        cell_tags: Cell markers, one value per region.
        facet_tags: Boundary facet markers, one value per named boundary.
        regions: Region name -> cell tag value (``{"body": 1}`` for the built-in shapes).
        boundaries: Boundary name -> facet tag value.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags | None
    facet_tags: dolfinx.mesh.MeshTags
    regions: dict[str, int]
    boundaries: dict[str, int]


class _ModelInfo(NamedTuple):
    """What rank 0 learns from a gmsh model and broadcasts (picklable)."""

    dim: int
    regions: dict[str, int]
    boundaries: dict[str, int]


def _build_on_root(comm: MPI.Comm, what: str, work: Callable[[], _ModelInfo]) -> MacroMesh:
    """:func:`build_on_root` for a macro specimen, keeping its facet tags."""
    data, info = build_on_root(comm, what, work, _MACRO_OPTIONS)
    if data.facet_tags is None:
        raise GeometryError(f"the {what} has no tagged boundary facets")
    _warn_untagged(data.mesh, data.facet_tags, what)
    logger.debug("built %s: regions %s, boundaries %s", what, info.regions, info.boundaries)
    return MacroMesh(
        data.mesh, data.cell_tags, data.facet_tags, dict(info.regions), dict(info.boundaries)
    )


def _warn_untagged(mesh: dolfinx.mesh.Mesh, facet_tags: dolfinx.mesh.MeshTags, what: str) -> None:
    """Log (collectively) how many exterior facets carry no boundary tag."""
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    n_owned = mesh.topology.index_map(tdim - 1).size_local
    exterior = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    exterior = exterior[exterior < n_owned]
    untagged = np.setdiff1d(exterior, facet_tags.indices).size
    untagged = mesh.comm.allreduce(untagged, op=MPI.SUM)
    if untagged and mesh.comm.rank == 0:
        logger.warning("%s: %d exterior facets carry no boundary tag", what, untagged)


def _check_common(dim: int, mesh_size: float, order: int) -> None:
    if dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")
    if not (math.isfinite(mesh_size) and mesh_size > 0):
        raise GeometryError(f"mesh_size must be positive, got {mesh_size}")
    if order not in (1, 2):
        raise GeometryError(f"order must be 1 or 2, got {order}")


def _check_budget(
    dim: int, extent: tuple[float, float], thickness: float | None, mesh_size: float, what: str
) -> None:
    """The specimen's bounding volume meshed at ``mesh_size`` fits the element cap."""
    volume = extent[0] * extent[1] * (thickness if dim == 3 and thickness else 1.0)
    check_element_budget(volume, dim, mesh_size, what)


def _check_positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is None or not (math.isfinite(value) and value > 0):
            raise GeometryError(f"{name} must be positive, got {value}")


def _check_thickness(dim: int, thickness: float | None) -> None:
    if dim == 3:
        _check_positive(thickness=thickness)
    elif thickness is not None:
        raise GeometryError(f"thickness is only for dim=3, got thickness={thickness} with dim=2")


def _extrude(dim: int, surfaces: list[DimTag], thickness: float | None) -> list[DimTag]:
    """Return the body: the 2D surfaces, or their extrusion by ``thickness`` along z in 3D."""
    if dim == 2:
        return surfaces
    assert thickness is not None  # checked by _check_thickness in 3D
    out = gmsh.model.occ.extrude(surfaces, 0.0, 0.0, float(thickness))
    return [(d, t) for d, t in out if d == 3]


def _tag_body(
    dim: int,
    body: list[DimTag],
    classify: Callable[[Box], str],
    names: Sequence[str],
    thickness: float | None,
    tol: float,
) -> _ModelInfo:
    """Add the physical groups: region ``body`` and one boundary group per name in ``names``.

    In 3D the faces z = 0 and z = thickness become ``front`` and ``back``; every other boundary
    entity is named by ``classify`` from its bounding box.
    """
    gmsh.model.occ.synchronize()
    gmsh.model.addPhysicalGroup(dim, [t for _, t in body], tag=1, name="body")
    z_back = math.inf if thickness is None else float(thickness) - tol  # a face above it is "back"
    names = [*names, "front", "back"] if dim == 3 else list(names)
    groups: dict[str, list[int]] = {name: [] for name in names}
    for d, t in gmsh.model.getBoundary(body, combined=True, oriented=False):
        box = np.asarray(gmsh.model.getBoundingBox(d, t))
        if dim == 3 and box[5] < tol:
            name = "front"
        elif dim == 3 and box[2] > z_back:
            name = "back"
        else:
            name = classify(box)
        groups[name].append(t)
    boundaries: dict[str, int] = {}
    for tag, (name, entities) in enumerate(groups.items(), start=1):
        if not entities:
            raise GeometryError(f"boundary {name!r} is missing from the model")
        gmsh.model.addPhysicalGroup(dim - 1, sorted(set(entities)), tag=tag, name=name)
        boundaries[name] = tag
    return _ModelInfo(dim, {"body": 1}, boundaries)


def _refine_near(
    dim: int, boundaries: dict[str, int], names: Sequence[str], mesh_size: float, reach: float
) -> None:
    """Grade the size from ``mesh_size/3`` on the named boundaries to ``mesh_size`` at ``reach``."""
    entities: list[int] = []
    for name in names:
        entities += list(gmsh.model.getEntitiesForPhysicalGroup(dim - 1, boundaries[name]))
    fine = _REFINEMENT * mesh_size
    lo, hi = np.inf, -np.inf
    for t in entities:
        box = np.asarray(gmsh.model.getBoundingBox(dim - 1, t))
        lo, hi = min(lo, box[:3].min()), max(hi, box[3:].max())
    extent = max(float(np.max(hi - lo)), fine)
    sampling = int(min(_MAX_SAMPLING, max(20, math.ceil(4 * math.pi * extent / fine))))
    fields = gmsh.model.mesh.field
    distance = fields.add("Distance")
    fields.setNumbers(distance, "CurvesList" if dim == 2 else "SurfacesList", entities)
    fields.setNumber(distance, "Sampling", sampling)
    threshold = fields.add("Threshold")
    fields.setNumber(threshold, "InField", distance)
    fields.setNumber(threshold, "SizeMin", fine)
    fields.setNumber(threshold, "SizeMax", mesh_size)
    fields.setNumber(threshold, "DistMin", 0.0)
    fields.setNumber(threshold, "DistMax", max(reach, mesh_size))
    fields.setAsBackgroundMesh(threshold)


def _generate(dim: int, mesh_size: float, order: int) -> None:
    """Mesh with at most ``mesh_size`` (and any background field), then raise to ``order``."""
    gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
    gmsh.option.setNumber("Mesh.MeshSizeMin", 0.0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.SecondOrderLinear", 0)  # curved nodes on the true geometry
    gmsh.option.setNumber("Mesh.HighOrderOptimize", 0)
    gmsh.logger.start()
    try:
        gmsh.model.mesh.generate(dim)
        if order > 1:
            gmsh.model.mesh.setOrder(order)
        errors = [m for m in gmsh.logger.get() if m.startswith("Error")]
    finally:
        gmsh.logger.stop()
    if errors:
        raise GeometryError(f"meshing failed: {errors[0]}")
    types, _, _ = gmsh.model.mesh.getElements(dim)
    if len(types) == 0:
        raise GeometryError(f"gmsh produced no {dim}D elements")


def _side_classifier(L: float, H: float, tol: float, inner: str) -> Callable[[Box], str]:
    """Name entities on x = 0, x = L, y = 0, y = H as left/right/bottom/top, others ``inner``."""

    def classify(box: Box) -> str:
        if box[3] < tol:
            return "left"
        if box[0] > L - tol:
            return "right"
        if box[4] < tol:
            return "bottom"
        if box[1] > H - tol:
            return "top"
        return inner

    return classify


def block(
    comm: MPI.Comm, dim: int, lengths: Sequence[float], mesh_size: float, order: int = 1
) -> MacroMesh:
    """Mesh the box [0, L_x] × [0, L_y] (× [0, L_z]) uniformly.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3.
        lengths: Edge lengths, ``dim`` positive numbers.
        mesh_size: Target element size.
        order: Geometry order, 1 or 2.

    Returns:
        The MacroMesh with boundaries left, right (x), bottom, top (y) and, in 3D, front, back (z).
    """
    _check_common(dim, mesh_size, order)
    try:
        L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {lengths!r}") from None
    if L.size != dim or not np.all(np.isfinite(L)) or not np.all(L > 0):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {L.tolist()}")
    _check_budget(dim, (L[0], L[1]), L[2] if dim == 3 else None, mesh_size, "the block")
    tol = _TOL * float(L.max())

    def work() -> _ModelInfo:
        surface = [(2, gmsh.model.occ.addRectangle(0.0, 0.0, 0.0, L[0], L[1]))]
        body = _extrude(dim, surface, L[2] if dim == 3 else None)
        classify = _side_classifier(L[0], L[1], tol, inner="")
        info = _tag_body(
            dim, body, classify, ["left", "right", "bottom", "top"], L[2] if dim == 3 else None, tol
        )
        _generate(dim, mesh_size, order)
        return info

    return _build_on_root(comm, "block", work)


def plate_with_hole(
    comm: MPI.Comm,
    dim: int,
    width: float,
    height: float,
    radius: float,
    mesh_size: float,
    order: int = 1,
    thickness: float | None = None,
) -> MacroMesh:
    """Mesh the plate [0, width] × [0, height] (× [0, thickness]) with a centred circular hole.

    The size is graded from ``mesh_size/3`` on the hole to ``mesh_size`` one radius away.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3 (3: the plate extruded by ``thickness`` along z).
        width: Plate extent along x.
        height: Plate extent along y.
        radius: Hole radius; the hole must fit inside the plate.
        mesh_size: Target element size away from the hole.
        order: Geometry order, 1 or 2 (2: curved edges on the hole).
        thickness: Extent along z; required in 3D only.

    Returns:
        The MacroMesh with boundaries left, right, bottom, top, hole (+ front, back in 3D).
    """
    _check_common(dim, mesh_size, order)
    _check_positive(width=width, height=height, radius=radius)
    _check_thickness(dim, thickness)
    if 2 * radius >= min(width, height):
        raise GeometryError(
            f"hole diameter {2 * radius} must be smaller than the plate ({width} x {height})"
        )
    _check_budget(dim, (width, height), thickness, mesh_size, "the plate")
    tol = _TOL * max(width, height)

    def work() -> _ModelInfo:
        occ = gmsh.model.occ
        plate = occ.addRectangle(0.0, 0.0, 0.0, width, height)
        hole = occ.addDisk(width / 2, height / 2, 0.0, radius, radius)
        surface, _ = occ.cut([(2, plate)], [(2, hole)])
        body = _extrude(dim, surface, thickness)
        classify = _side_classifier(width, height, tol, inner="hole")
        info = _tag_body(
            dim, body, classify, ["left", "right", "bottom", "top", "hole"], thickness, tol
        )
        _refine_near(dim, info.boundaries, ["hole"], mesh_size, reach=radius)
        _generate(dim, mesh_size, order)
        return info

    return _build_on_root(comm, "plate with hole", work)


def notched_bar(
    comm: MPI.Comm,
    dim: int,
    length: float,
    width: float,
    notch_depth: float,
    notch_radius: float,
    mesh_size: float,
    order: int = 1,
    thickness: float | None = None,
) -> MacroMesh:
    """Mesh the bar [0, length] × [0, width] (× [0, thickness]) with two U notches at mid-length.

    Each notch, cut from y = 0 and from y = width, ends in a half circle of ``notch_radius``
    whose tip lies ``notch_depth`` deep; straight flanks fill the rest when the depth exceeds
    the radius (depth = radius: a semicircle; depth < radius: a shallow circular segment).
    The size is graded from ``mesh_size/3`` on the notches to ``mesh_size`` a notch radius away.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3 (3: the bar extruded by ``thickness`` along z).
        length: Bar extent along x (the loading axis).
        width: Bar extent along y.
        notch_depth: Depth of each notch; less than half the width.
        notch_radius: Radius of the notch root.
        mesh_size: Target element size away from the notches.
        order: Geometry order, 1 or 2.
        thickness: Extent along z; required in 3D only.

    Returns:
        The MacroMesh with boundaries left, right (the bar ends), notch (both notches), free
        (the rest of the long sides) and, in 3D, front, back.
    """
    _check_common(dim, mesh_size, order)
    _check_positive(length=length, width=width, notch_depth=notch_depth, notch_radius=notch_radius)
    _check_thickness(dim, thickness)
    if notch_depth >= width / 2:
        raise GeometryError(
            f"notch_depth {notch_depth} must be less than half the width ({width / 2})"
        )
    _check_budget(dim, (length, width), thickness, mesh_size, "the notched bar")
    if 2 * notch_radius >= length:
        raise GeometryError(
            f"notch width 2*notch_radius = {2 * notch_radius} must be less than length {length}"
        )
    tol = _TOL * max(length, width)
    rho, d = notch_radius, notch_depth

    def work() -> _ModelInfo:
        occ = gmsh.model.occ
        bar = occ.addRectangle(0.0, 0.0, 0.0, length, width)
        tools: list[DimTag] = []
        for edge, inward in ((0.0, 1.0), (width, -1.0)):
            centre = edge + inward * (d - rho)  # centre of the root circle
            tools.append((2, occ.addDisk(length / 2, centre, 0.0, rho, rho)))
            if d > rho:  # straight flanks from the edge to the root circle (overshoot the edge)
                y0 = min(edge - inward * rho, centre)
                tools.append((2, occ.addRectangle(length / 2 - rho, y0, 0.0, 2 * rho, d)))
        surface, _ = occ.cut([(2, bar)], tools)
        body = _extrude(dim, surface, thickness)
        sides = _side_classifier(length, width, tol, inner="notch")

        def classify(box: Box) -> str:
            name = sides(box)
            return "free" if name in ("bottom", "top") else name

        info = _tag_body(dim, body, classify, ["left", "right", "notch", "free"], thickness, tol)
        _refine_near(dim, info.boundaries, ["notch"], mesh_size, reach=rho)
        _generate(dim, mesh_size, order)
        return info

    return _build_on_root(comm, "notched bar", work)


def three_point_bending(
    comm: MPI.Comm,
    dim: int,
    length: float,
    height: float,
    mesh_size: float,
    order: int = 1,
    thickness: float | None = None,
    support_width: float | None = None,
    load_width: float | None = None,
    span: float | None = None,
) -> MacroMesh:
    """Mesh the beam [0, length] × [0, height] (× [0, thickness]) for three-point bending.

    Two support segments of ``support_width`` on y = 0 are centred at x = (length ∓ span)/2,
    the load segment of ``load_width`` on y = height at x = length/2. The size is graded from
    ``mesh_size/3`` on these segments to ``mesh_size`` a few segment widths away.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3 (3: the beam extruded by ``thickness`` along z).
        length: Beam extent along x.
        height: Beam extent along y.
        mesh_size: Target element size away from the supports and the load.
        order: Geometry order, 1 or 2.
        thickness: Extent along z; required in 3D only.
        support_width: Width of each support segment; default ``length/20``.
        load_width: Width of the load segment; default ``length/20``.
        span: Distance between the support centres; default ``length - 2*support_width``.

    Returns:
        The MacroMesh with boundaries supports (both segments), load, free (all the rest of
        the outline) and, in 3D, front, back.
    """
    _check_common(dim, mesh_size, order)
    sw = length / 20 if support_width is None else support_width
    lw = length / 20 if load_width is None else load_width
    _check_positive(length=length, height=height, support_width=sw, load_width=lw)
    S = length - 2 * sw if span is None else span
    _check_positive(span=S)
    _check_thickness(dim, thickness)
    _check_budget(dim, (length, height), thickness, mesh_size, "the beam")
    if S + sw >= length:
        raise GeometryError(
            f"supports must lie inside the beam: span + support_width = {S + sw} >= length {length}"
        )
    if sw >= S:
        raise GeometryError(f"support_width {sw} must be less than the span {S}")
    if lw >= length:
        raise GeometryError(f"load_width {lw} must be less than length {length}")
    tol = _TOL * max(length, height)
    supports = [((length - S) / 2 - sw / 2, (length - S) / 2 + sw / 2)]
    supports.append((supports[0][0] + S, supports[0][1] + S))
    load = (length / 2 - lw / 2, length / 2 + lw / 2)

    def work() -> _ModelInfo:
        occ = gmsh.model.occ
        outline = [(0.0, 0.0)]
        outline += [(x, 0.0) for segment in supports for x in segment]
        outline += [(length, 0.0), (length, height), (load[1], height), (load[0], height)]
        outline.append((0.0, height))
        points = [occ.addPoint(x, y, 0.0) for x, y in outline]
        lines = [occ.addLine(a, b) for a, b in zip(points, points[1:] + points[:1], strict=True)]
        surface = [(2, occ.addPlaneSurface([occ.addCurveLoop(lines)]))]
        body = _extrude(dim, surface, thickness)

        def within(box: Box, segment: tuple[float, float]) -> bool:
            return box[0] > segment[0] - tol and box[3] < segment[1] + tol

        def classify(box: Box) -> str:
            if box[4] < tol and any(within(box, s) for s in supports):
                return "supports"
            if box[1] > height - tol and within(box, load):
                return "load"
            return "free"

        info = _tag_body(dim, body, classify, ["supports", "load", "free"], thickness, tol)
        _refine_near(dim, info.boundaries, ["supports", "load"], mesh_size, reach=2 * max(sw, lw))
        _generate(dim, mesh_size, order)
        return info

    return _build_on_root(comm, "three-point-bending beam", work)


def read_macro(comm: MPI.Comm, path: str | Path) -> MacroMesh:
    """Read a macro mesh from a gmsh .msh file with named physical groups.

    The file is read as a mesh only: its extension must be .msh and it must start with
    ``$MeshFormat`` (a gmsh script, e.g. a .geo file renamed, is refused, never run). The mesh
    dimension is the model's top dimension. Physical groups of that dimension are
    regions and those one below are boundaries, both named by their physical names
    (``region<tag>``/``boundary<tag>`` when unnamed). Without region groups all cells form
    region ``body`` (tag 1). Exterior facets left untagged are only logged.

    Args:
        comm: Communicator of the mesh.
        path: The .msh file.

    Returns:
        The MacroMesh on every rank of ``comm``.

    Raises:
        GeometryError: Missing, non-.msh or unreadable file, no boundary groups, duplicate
            names.
    """
    path = Path(path)

    def work() -> _ModelInfo:
        if path.is_dir():
            raise GeometryError(f"mesh file {path} is a directory")
        if not path.is_file():
            raise GeometryError(f"mesh file not found: {path}")
        mesh_format(path, _MACRO_FORMATS)
        try:
            gmsh.merge(str(path))
        except Exception as e:
            raise GeometryError(f"cannot read mesh file {path}: {e}") from None
        dim = gmsh.model.getDimension()
        if dim not in (2, 3):
            raise GeometryError(f"mesh file {path}: dimension {dim} is not 2 or 3")
        _, coords, _ = gmsh.model.mesh.getNodes(returnParametricCoord=False)
        x = coords.reshape(-1, 3)
        if x.shape[0] == 0:
            raise GeometryError(f"mesh file {path} has no nodes")
        if dim == 2 and np.ptp(x[:, 2]) > 1e-12 * max(np.ptp(x[:, :2]), 1.0):
            raise GeometryError(f"mesh file {path}: 2D mesh is not flat in z")
        types, _, _ = gmsh.model.mesh.getElements(dim)
        if len(types) == 0:
            raise GeometryError(
                f"mesh file {path} has no {dim}D elements (add region groups or set Mesh.SaveAll)"
            )
        groups = sorted(gmsh.model.getPhysicalGroups())
        found: dict[int, dict[str, int]] = {dim: {}, dim - 1: {}}
        for d, tag in groups:
            if d not in found:
                continue
            default = f"region{tag}" if d == dim else f"boundary{tag}"
            name = gmsh.model.getPhysicalName(d, tag) or default
            if name in found[d]:
                raise GeometryError(f"mesh file {path}: physical name {name!r} used twice")
            found[d][name] = tag
        if not found[dim - 1]:
            raise GeometryError(
                f"mesh file {path} has no physical groups of dimension {dim - 1} (boundaries)"
            )
        if not found[dim]:
            entities = [t for _, t in gmsh.model.getEntities(dim)]
            gmsh.model.addPhysicalGroup(dim, entities, tag=1, name="body")
            found[dim] = {"body": 1}
        return _ModelInfo(dim, found[dim], found[dim - 1])

    return _build_on_root(comm, f"mesh file {path}", work)
