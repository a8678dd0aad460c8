"""Hand gmsh models and user .msh files of periodic cells to DOLFINx as an RVEMesh."""

from __future__ import annotations

import logging
from collections.abc import Callable
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


def read_cell(comm: MPI.Comm, path: str | Path, dim: int | None = None) -> RVEMesh:
    """Read a periodic box cell from a gmsh .msh file.

    Phases are the physical groups of the top dimension, named by their physical names
    (``phase<tag>`` when unnamed). The cell box is the bounding box of the nodes, and the nodes
    on its faces must pair up periodically (high-order nodes included).

    Args:
        comm: Communicator of the mesh.
        path: The .msh file.
        dim: Expected dimension (2 or 3); default: the top dimension of the physical groups.

    Returns:
        The RVEMesh on every rank of ``comm``.

    Raises:
        GeometryError: Missing or unreadable file, no or duplicate phases, non-periodic mesh.
    """
    path = Path(path)
    if dim is not None and dim not in (2, 3):
        raise GeometryError(f"dim must be 2 or 3, got {dim}")

    def work() -> CellInfo:
        if not path.is_file():
            raise GeometryError(f"mesh file not found: {path}")
        try:
            gmsh.merge(str(path))
        except Exception as e:
            raise GeometryError(f"cannot read mesh file {path}: {e}") from None
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
