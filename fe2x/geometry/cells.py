"""Build periodic meshes of box cells (inclusion, laminate, random inclusions) with gmsh OCC."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from mpi4py import MPI

import gmsh
import numpy as np
import numpy.typing as npt

from fe2x.errors import GeometryError
from fe2x.geometry.budget import check_element_budget
from fe2x.geometry.mesh_file import CellInfo, RVEMesh, check_model_periodic, run_on_root
from fe2x.geometry.packing import ball_volume, random_sequential_addition

logger = logging.getLogger(__name__)

# A centred inclusion stays this fraction of the shortest edge clear of the faces.
_CENTRED_CLEARANCE = 0.025

DimTag = tuple[int, int]


def _check_common(dim: int, lengths: npt.ArrayLike, mesh_size: float, order: int) -> np.ndarray:
    if dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")
    try:
        L = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {lengths!r}") from None
    if L.size != dim or not np.all(np.isfinite(L)) or not np.all(L > 0):
        raise GeometryError(f"lengths must be {dim} positive numbers, got {L.tolist()}")
    if not mesh_size > 0:
        raise GeometryError(f"mesh_size must be positive, got {mesh_size}")
    if order not in (1, 2):
        raise GeometryError(f"geometry_order must be 1 or 2, got {order}")
    check_element_budget(float(np.prod(L)), dim, mesh_size, "the cell")
    return L


def _add_box(dim: int, L: np.ndarray, lo: Sequence[float] | np.ndarray | None = None) -> int:
    lo = [0.0] * dim if lo is None else list(lo)
    if dim == 2:
        return gmsh.model.occ.addRectangle(lo[0], lo[1], 0.0, L[0], L[1])
    return gmsh.model.occ.addBox(lo[0], lo[1], lo[2], L[0], L[1], L[2])


def _add_ball(dim: int, centre: Sequence[float] | np.ndarray, r: float) -> int:
    if dim == 2:
        return gmsh.model.occ.addDisk(centre[0], centre[1], 0.0, r, r)
    return gmsh.model.occ.addSphere(centre[0], centre[1], centre[2], r)


def _set_periodic(dim: int, L: np.ndarray) -> None:
    """Make every boundary entity on upper faces the periodic slave of its lower-face twin.

    An entity lying on the upper faces of the axes in a set S (a face piece, or in 3D also a
    curve on a cell edge) is paired with the entity whose bounding box is its own shifted by
    ``-sum_{i in S} L_i e_i``, i.e. directly with the final master, never through a chain. gmsh
    then copies the master mesh onto the slave by the affine translation. Surfaces and curves
    are paired explicitly: gmsh's own deduction of curve pairs from surface pairs can fail on
    faces cut into small pieces by inclusions crossing cell edges.
    """
    tol = 1e-6 * float(L.max())
    # OCC bounding boxes of curved entities are loose; match to a looser tolerance.
    match_tol = 1e-3 * float(L.max())
    for edim in range(dim - 1, 0, -1):
        entities = gmsh.model.getEntities(edim)
        tags = [t for _, t in entities]
        boxes = np.array([gmsh.model.getBoundingBox(edim, t) for t in tags]).reshape(-1, 6)
        lo, hi = boxes[:, :3], boxes[:, 3:]
        Lp = np.zeros(3)
        Lp[:dim] = L
        upper = (np.abs(lo - Lp) < tol) & (np.abs(hi - Lp) < tol)
        upper[:, dim:] = False
        for i in np.flatnonzero(upper.any(axis=1)):
            shift = upper[i] * Lp
            target = boxes[i] - np.concatenate([shift, shift])
            errors = np.abs(boxes - target).max(axis=1)
            errors[upper.any(axis=1)] = np.inf
            best = int(np.argmin(errors))
            if errors[best] > match_tol:
                raise GeometryError(
                    f"no periodic twin for the {edim}D boundary entity with bounding box "
                    f"{np.round(boxes[i], 6).tolist()} on an upper cell face"
                )
            affine = np.eye(4)
            affine[:3, 3] = shift
            gmsh.model.mesh.setPeriodic(edim, [tags[i]], [tags[best]], affine.ravel().tolist())


def _generate(dim: int, L: np.ndarray, mesh_size: float, order: int) -> None:
    _set_periodic(dim, L)
    gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
    gmsh.option.setNumber("Mesh.MeshSizeMin", 0.0)
    # OpenCASCADE gives its points a size of about a tenth of the model, which would cap the
    # element size far below a coarse mesh_size.
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.SecondOrderLinear", 0)  # curved nodes on the true geometry
    gmsh.option.setNumber("Mesh.HighOrderOptimize", 0)  # keep high-order nodes where placed
    gmsh.option.setNumber("Mesh.HighOrderPeriodic", 2)  # copy slave high-order nodes
    gmsh.logger.start()
    try:
        gmsh.model.mesh.generate(dim)
        if order > 1:
            gmsh.model.mesh.setOrder(order)
            # Curving onto coarse inclusions can fold elements: only then relax the interior
            # nodes elastically (the boundary nodes, hence periodicity, stay where they are);
            # on a good mesh the optimisation costs most of the meshing and changes nothing.
            folded = _folded_elements(dim)
            if folded:
                logger.info("%d curved element(s) folded: optimising the high-order mesh", folded)
                gmsh.model.mesh.optimize("HighOrderElastic")
        errors = [m for m in gmsh.logger.get() if m.startswith("Error")]
    finally:
        gmsh.logger.stop()
    if errors:
        raise GeometryError(errors[0])
    types, elements, _ = gmsh.model.mesh.getElements(dim)
    if len(types) == 0:
        raise GeometryError(f"gmsh produced no {dim}D elements")
    if order > 1:
        folded = _folded_elements(dim)
        if folded:
            logger.warning(
                "%d of %d curved elements have a non-positive Jacobian somewhere; "
                "refine mesh_size or use geometry_order=1",
                folded,
                sum(len(e) for e in elements),
            )


def _folded_elements(dim: int) -> int:
    """Elements of the current mesh whose scaled Jacobian is non-positive somewhere."""
    _, elements, _ = gmsh.model.mesh.getElements(dim)
    if not elements:
        return 0
    quality = gmsh.model.mesh.getElementQualities(np.concatenate(elements), "minSJ")
    return int(np.count_nonzero(quality <= 0.0))


def _mesh(dim: int, L: np.ndarray, mesh_size: float, order: int) -> None:
    """Mesh the synchronised model periodically, raise it to ``order`` and check periodicity."""
    try:
        _generate(dim, L, mesh_size, order)
    except Exception as e:
        raise GeometryError(
            f"periodic meshing failed: {e}; try another mesh_size, seed or a larger min_gap"
        ) from None
    check_model_periodic(dim, np.zeros(dim), L, "the generated mesh", tol=1e-8 * float(L.max()))


def _add_phases(dim: int, groups: dict[str, list[int]]) -> dict[str, int]:
    phases: dict[str, int] = {}
    for tag, (name, entities) in enumerate(groups.items(), start=1):
        if not entities:
            raise GeometryError(f"phase {name!r} has no {dim}D region in the cell")
        gmsh.model.addPhysicalGroup(dim, sorted(set(entities)), tag=tag, name=name)
        phases[name] = tag
    return phases


def _children(out_map: list[list[DimTag]], index: int) -> list[int]:
    return [t for _, t in out_map[index]]


def inclusion_cell(
    comm: MPI.Comm,
    dim: int,
    lengths: npt.ArrayLike,
    volume_fraction: float,
    mesh_size: float,
    geometry_order: int = 2,
) -> RVEMesh:
    """One centred circle (2D) or sphere (3D) in a periodic box cell.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3.
        lengths: Cell edge lengths, shape (dim,).
        volume_fraction: Inclusion area/volume over cell area/volume.
        mesh_size: Largest element size.
        geometry_order: 1 (straight) or 2 (curved, on the true inclusion surface).

    Returns:
        RVEMesh with phases ``{"matrix": 1, "inclusion": 2}``.
    """
    L = _check_common(dim, lengths, mesh_size, geometry_order)
    cell_volume = float(np.prod(L))
    r_max = (0.5 - _CENTRED_CLEARANCE) * float(L.min())
    vf_max = ball_volume(dim, r_max) / cell_volume
    if not 0.0 < volume_fraction <= vf_max:
        shape = "circle" if dim == 2 else "sphere"
        raise GeometryError(
            f"volume_fraction must be in (0, {vf_max:.4g}] for a centred {shape} in a "
            f"{' x '.join(f'{x:g}' for x in L)} cell, got {volume_fraction}"
        )
    r = (volume_fraction * cell_volume / ball_volume(dim, 1.0)) ** (1.0 / dim)

    def work() -> CellInfo:
        box = _add_box(dim, L)
        ball = _add_ball(dim, 0.5 * L, r)
        _, out_map = gmsh.model.occ.fragment([(dim, box)], [(dim, ball)])
        gmsh.model.occ.synchronize()
        inclusion = _children(out_map, 1)
        matrix = [t for t in _children(out_map, 0) if t not in inclusion]
        phases = _add_phases(dim, {"matrix": matrix, "inclusion": inclusion})
        _mesh(dim, L, mesh_size, geometry_order)
        return CellInfo(dim, phases, np.zeros(dim), L.copy())

    return run_on_root(comm, "inclusion cell", work)


def laminate_cell(
    comm: MPI.Comm,
    dim: int,
    lengths: npt.ArrayLike,
    fractions: Sequence[float],
    axis: int,
    mesh_size: float,
    geometry_order: int = 2,
    phase_names: Sequence[str] | None = None,
) -> RVEMesh:
    """Layers normal to ``axis`` with the given thickness fractions, in a periodic box cell.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3.
        lengths: Cell edge lengths, shape (dim,).
        fractions: Layer thicknesses over ``lengths[axis]``, positive, summing to 1.
        axis: Stacking direction (0, 1 or 2), smaller than ``dim``.
        mesh_size: Largest element size.
        geometry_order: 1 or 2.
        phase_names: One name per layer (repeats share a phase); default ``layer0``, ...

    Returns:
        RVEMesh whose phases are the distinct names, tagged 1, 2, ... by first appearance.
    """
    L = _check_common(dim, lengths, mesh_size, geometry_order)
    f = np.asarray(fractions, dtype=np.float64).reshape(-1)
    if f.size < 1 or not np.all(f > 0) or abs(f.sum() - 1.0) > 1e-10:
        raise GeometryError(
            f"layer fractions must be positive and sum to 1, got {f.tolist()} (sum {f.sum():.12g})"
        )
    if axis not in range(dim):
        raise GeometryError(f"laminate axis must be 0..{dim - 1} for dim {dim}, got {axis}")
    names = [f"layer{i}" for i in range(f.size)] if phase_names is None else list(phase_names)
    if len(names) != f.size:
        raise GeometryError(f"{len(names)} phase names given for {f.size} layers")
    if not all(isinstance(n, str) and n for n in names):
        raise GeometryError(f"phase names must be non-empty strings, got {names}")
    cuts = np.concatenate([[0.0], np.cumsum(f)]) * L[axis]
    cuts[-1] = L[axis]

    def work() -> CellInfo:
        layers = []
        for k in range(f.size):
            lo = np.zeros(dim)
            size = L.copy()
            lo[axis] = cuts[k]
            size[axis] = cuts[k + 1] - cuts[k]
            layers.append((dim, _add_box(dim, size, lo)))
        if len(layers) > 1:
            _, out_map = gmsh.model.occ.fragment(layers[:1], layers[1:])
        else:
            out_map = [layers]
        gmsh.model.occ.synchronize()
        groups: dict[str, list[int]] = {}
        for k, name in enumerate(names):
            groups.setdefault(name, []).extend(_children(out_map, k))
        phases = _add_phases(dim, groups)
        _mesh(dim, L, mesh_size, geometry_order)
        return CellInfo(dim, phases, np.zeros(dim), L.copy())

    return run_on_root(comm, "laminate cell", work)


def _periodic_copies(centres: np.ndarray, r: float, L: np.ndarray) -> list[np.ndarray]:
    """Centres of every translate ``c + k L`` (k in {-1, 0, 1}^dim) whose ball meets the box."""
    copies = []
    for c in centres:
        for k in itertools.product((-1, 0, 1), repeat=c.size):
            x = c + np.asarray(k) * L
            if np.all(x + r > 0.0) and np.all(x - r < L):
                copies.append(x)
    return copies


def random_cell(
    comm: MPI.Comm,
    dim: int,
    lengths: npt.ArrayLike,
    volume_fraction: float,
    mesh_size: float,
    seed: int,
    min_gap: float,
    radius: float | None = None,
    number: int | None = None,
    geometry_order: int = 2,
    max_attempts: int = 200_000,
) -> RVEMesh:
    """Equal random non-overlapping circles/spheres, wrapped periodically, in a box cell.

    Centres come from :func:`random_sequential_addition` (same seed, same cell on any number
    of ranks); inclusions crossing a face are completed by their translates across it.

    Args:
        comm: Communicator of the mesh.
        dim: 2 or 3.
        lengths: Cell edge lengths, shape (dim,).
        volume_fraction: Target inclusion fraction (exact with ``number``; rounded to a whole
            number of inclusions with ``radius``).
        mesh_size: Largest element size.
        seed: Random seed.
        min_gap: Least surface-to-surface distance between inclusions.
        radius: Inclusion radius (exclusive with ``number``).
        number: Number of inclusions (exclusive with ``radius``).
        geometry_order: 1 or 2.
        max_attempts: Candidate centres drawn before giving up.

    Returns:
        RVEMesh with phases ``{"matrix": 1, "inclusion": 2}``.
    """
    L = _check_common(dim, lengths, mesh_size, geometry_order)
    centres, r = random_sequential_addition(
        dim,
        L,
        volume_fraction,
        min_gap,
        seed,
        radius=radius,
        number=number,
        max_attempts=max_attempts,
    )
    copies = _periodic_copies(centres, r, L)
    logger.debug("random cell: %d inclusions of radius %g, %d pieces", len(centres), r, len(copies))

    def work() -> CellInfo:
        # Clip the inclusions (and their translates) to the box first, so nothing outside it
        # is left to leave dangling faces behind; then fragment to make the mesh conforming.
        balls = [(dim, _add_ball(dim, c, r)) for c in copies]
        clip = _add_box(dim, L)
        pieces, _ = gmsh.model.occ.intersect(balls, [(dim, clip)])
        pieces = [(d, t) for d, t in pieces if d == dim]
        box = _add_box(dim, L)
        _, out_map = gmsh.model.occ.fragment([(dim, box)], pieces)
        gmsh.model.occ.synchronize()
        inside = set(_children(out_map, 0))
        in_balls = {t for k in range(1, len(out_map)) for t in _children(out_map, k)}
        inclusion = sorted(inside & in_balls)
        matrix = sorted(inside - in_balls)
        phases = _add_phases(dim, {"matrix": matrix, "inclusion": inclusion})
        _mesh(dim, L, mesh_size, geometry_order)
        return CellInfo(dim, phases, np.zeros(dim), L.copy())

    return run_on_root(comm, "random cell", work)
