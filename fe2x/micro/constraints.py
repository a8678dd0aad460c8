"""Boundary conditions of the RVE fluctuation as objects: a prolongation u_full = P u_reduced.

For SUBC they add the mean-strain constraint on the reduced dofs.

Periodic (PBC), affine (KUBC) and minimal-kinematic (SUBC) conditions are all linear maps from a
reduced set of free dofs to the full dof vector. Each row of P holds at most one 1:

* a free dof maps to its own reduced column;
* a periodic slave dof (on an upper face) maps to the column of its master on the lower face;
* a fixed dof (KUBC boundary, or a point pinned against rigid motion) has an empty row.

The reduced operator is then ``P^T K P`` (PETSc's PtAP), which works on any number of ranks, also
when a slave and its master are owned by different ranks. This replaces dolfinx_mpc.

SUBC keeps every dof but the rigid motions free and adds the constraint ⟨ε(P x)⟩ = 0 (uniform
traction), imposed by multipliers (:attr:`BoundaryCondition.mean_strain_constraint`). The
conditions are registered by name in :data:`fe2x.registry.BOUNDARY_CONDITIONS`. The same objects
serve scalar spaces (conduction: uniform temperature gradient, uniform flux), where only the
translation (a constant) is pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx
import numpy as np

from fe2x.geometry.periodicity import on_boundary, periodic_images
from fe2x.registry import BOUNDARY_CONDITIONS

__all__ = [
    "BOUNDARY_CONDITIONS",
    "Affine",
    "BoundaryCondition",
    "MinimalKinematic",
    "Periodic",
    "Prolongation",
    "boundary_condition",
    "build_prolongation",
]


@dataclass(frozen=True)
class Prolongation:
    """The map ``u = P u_red`` from free (reduced) dofs to all dofs of a vector space.

    Attributes:
        P: PETSc matrix of shape (full dofs, reduced dofs), rows laid out as the space's dofs.
        n_reduced: global number of reduced dofs.
        pinned_points: coordinates of points fixed against rigid-body motion.
    """

    P: PETSc.Mat
    n_reduced: int
    pinned_points: np.ndarray


def _owned_node_coordinates(V: dolfinx.fem.FunctionSpace) -> np.ndarray:
    n_owned = V.dofmap.index_map.size_local
    gdim = V.mesh.geometry.dim
    return V.tabulate_dof_coordinates()[:n_owned, :gdim]


def _pinned_components(
    x: np.ndarray, bs: int, origin: np.ndarray, lengths: np.ndarray, rigid: str, tol: float
) -> np.ndarray:
    """Per owned node and component, whether it is pinned against rigid-body motion.

    ``rigid = "translations"``: the corner node at the origin (all components) removes the
    translations, the only rigid motions a periodic fluctuation has. ``"motions"``: also the
    rotations of a vector field, by fixing the normal components at the corners
    ``origin + L_x e_x`` (y, z) and ``origin + L_y e_y`` (z). ``"none"``: nothing.
    """
    dim = x.shape[1]
    pinned = np.zeros((x.shape[0], bs), dtype=bool)
    if rigid == "none":
        return pinned
    corners = [(np.zeros(dim), np.ones(bs, dtype=bool))]
    if rigid == "motions" and bs == dim:
        e_x = np.zeros(dim)
        e_x[0] = 1.0
        corners.append((e_x, np.arange(dim) > 0))
        if dim == 3:
            e_y = np.zeros(dim)
            e_y[1] = 1.0
            corners.append((e_y, np.arange(dim) > 1))
    for offset, components in corners:
        point = origin + offset * lengths
        at_point = np.all(np.abs(x - point) < tol, axis=1)
        pinned[np.ix_(at_point, components)] = True
    return pinned


def _expected_pins(bs: int, dim: int, rigid: str) -> int:
    """How many components :func:`_pinned_components` pins in all."""
    if rigid == "none":
        return 0
    if rigid == "motions" and bs == dim:
        return bs * (bs + 1) // 2
    return bs


def build_prolongation(
    V: dolfinx.fem.FunctionSpace,
    origin: np.ndarray,
    lengths: np.ndarray,
    periodic: bool,
    fixed_boundary: bool,
    rigid: str,
) -> Prolongation:
    """P of a box cell ``[origin, origin + lengths]`` under one kind of constraint.

    Args:
        V: Lagrange space of the fluctuation (vector, block size = dimension; or scalar).
        origin: lower corner of the cell.
        lengths: edge lengths of the cell.
        periodic: upper-face dofs are slaves of their lower-face images.
        fixed_boundary: every boundary dof is fixed (zero fluctuation).
        rigid: pin ``"translations"``, rigid ``"motions"`` (vector fields) or ``"none"``.
    """
    comm = V.mesh.comm
    index_map = V.dofmap.index_map
    bs = V.dofmap.index_map_bs
    n_owned = index_map.size_local
    first_node = index_map.local_range[0]
    x = _owned_node_coordinates(V)
    origin = np.asarray(origin, dtype=float)
    lengths = np.asarray(lengths, dtype=float)
    tol = 1e-8 * float(np.max(lengths))

    boundary = on_boundary(x, origin, lengths, tol)
    pinned = _pinned_components(x, bs, origin, lengths, rigid, tol)
    if comm.allreduce(int(pinned.sum()), op=MPI.SUM) != _expected_pins(bs, x.shape[1], rigid):
        raise ValueError("the cell corners are not mesh nodes; cannot fix rigid-body motion")

    # Owned nodes whose dofs own a reduced column: every node but fixed boundary nodes and
    # periodic slaves. A periodic slave is a boundary node whose master is another node.
    owns_column = ~pinned
    if fixed_boundary:
        owns_column[boundary] = False

    boundary_nodes = np.flatnonzero(boundary)
    boundary_global = first_node + boundary_nodes
    if periodic:
        all_global, master_global = _periodic_masters(
            comm, x, boundary_nodes, first_node, origin, lengths, tol
        )
        owns_column[boundary_nodes[master_global != boundary_global]] = False

    n_local_columns = int(owns_column.sum())
    column_offset = comm.exscan(n_local_columns) if comm.size > 1 else 0
    column_offset = column_offset or 0
    n_reduced = comm.allreduce(n_local_columns, op=MPI.SUM)
    columns = np.full((n_owned, bs), -1, dtype=np.int64)
    columns[owns_column] = column_offset + np.arange(n_local_columns)

    if periodic:
        # The reduced columns of masters, looked up in the gathered boundary set.
        all_columns = np.vstack(comm.allgather(columns[boundary_nodes])).reshape(-1, bs)
        order = np.argsort(all_global)
        master_rows = order[np.searchsorted(all_global[order], master_global)]
        slaves = master_global != boundary_global
        # A slave of a pinned master stays fixed (-1), like its master.
        columns[boundary_nodes[slaves]] = all_columns[master_rows][slaves]

    P = _selection_matrix(comm, columns, index_map.size_global * bs, n_local_columns, n_reduced)
    pinned_points = np.vstack(comm.allgather(x[pinned.any(axis=1)])).reshape(-1, x.shape[1])
    return Prolongation(P=P, n_reduced=n_reduced, pinned_points=pinned_points)


def _periodic_masters(
    comm: MPI.Comm,
    x: np.ndarray,
    boundary_nodes: np.ndarray,
    first_node: int,
    origin: np.ndarray,
    lengths: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Global numbers of all boundary nodes, and the master of each of this rank's.

    Boundary nodes are a surface set: they are gathered on every rank and matched to their
    lower-face images there. A node that is its own master is no slave.
    """
    counts = comm.allgather(len(boundary_nodes))
    all_x = np.vstack(comm.allgather(x[boundary_nodes])).reshape(-1, x.shape[1])
    all_global = np.concatenate(comm.allgather(first_node + boundary_nodes))
    images = periodic_images(all_x, origin, lengths, tol)
    start = sum(counts[: comm.rank])
    return all_global, all_global[images[start : start + len(boundary_nodes)]]


def _selection_matrix(
    comm: MPI.Comm, columns: np.ndarray, n_global_rows: int, n_local_columns: int, n_reduced: int
) -> PETSc.Mat:
    """The 0/1 matrix with one entry per dof that has a reduced column (``columns >= 0``)."""
    flat = columns.reshape(-1)
    has_entry = flat >= 0
    indptr = np.concatenate([[0], np.cumsum(has_entry)]).astype(PETSc.IntType)
    indices = flat[has_entry].astype(PETSc.IntType)
    values = np.ones(len(indices), dtype=PETSc.ScalarType)
    P = PETSc.Mat().createAIJ(
        size=((flat.size, n_global_rows), (n_local_columns, n_reduced)),
        csr=(indptr, indices, values),  # type: ignore[arg-type]  # arrays, not only sequences
        comm=comm,  # type: ignore[arg-type]  # petsc4py takes mpi4py communicators
    )
    P.assemble()
    return P


@runtime_checkable
class BoundaryCondition(Protocol):
    """A boundary condition of the RVE fluctuation.

    Attributes:
        name: its registry name (``fe2x.registry.BOUNDARY_CONDITIONS``).
        mean_strain_constraint: whether the reduced fluctuation must also satisfy
            ⟨ε(P x)⟩ = 0 by multipliers (SUBC); the multipliers are the macro stress.
    """

    name: str
    mean_strain_constraint: bool

    def prolongation(
        self, V: dolfinx.fem.FunctionSpace, origin: np.ndarray, lengths: np.ndarray
    ) -> Prolongation:
        """The map from the free dofs to all dofs of ``V`` on the cell box."""
        ...


@dataclass(frozen=True)
class Periodic:
    """PBC: periodic fluctuation, the corner at the origin pinned (translations)."""

    name: str = "periodic"
    mean_strain_constraint: bool = False

    def prolongation(
        self, V: dolfinx.fem.FunctionSpace, origin: np.ndarray, lengths: np.ndarray
    ) -> Prolongation:
        """Upper-face dofs follow their lower-face images; one corner pinned."""
        return build_prolongation(V, origin, lengths, True, False, "translations")


@dataclass(frozen=True)
class Affine:
    """KUBC: zero fluctuation on the whole boundary (the affine macro field there)."""

    name: str = "kubc"
    mean_strain_constraint: bool = False

    def prolongation(
        self, V: dolfinx.fem.FunctionSpace, origin: np.ndarray, lengths: np.ndarray
    ) -> Prolongation:
        """Every boundary dof fixed."""
        return build_prolongation(V, origin, lengths, False, True, "none")


@dataclass(frozen=True)
class MinimalKinematic:
    """SUBC (minimal kinematic): only ⟨ε(w)⟩ = 0; the boundary traction is uniform, Σ·n."""

    name: str = "subc"
    mean_strain_constraint: bool = True

    def prolongation(
        self, V: dolfinx.fem.FunctionSpace, origin: np.ndarray, lengths: np.ndarray
    ) -> Prolongation:
        """Every dof free but the rigid motions."""
        return build_prolongation(V, origin, lengths, False, False, "motions")


PERIODIC, AFFINE, MINIMAL_KINEMATIC = Periodic(), Affine(), MinimalKinematic()


def boundary_condition(bc: str | BoundaryCondition) -> BoundaryCondition:
    """The boundary condition registered as ``bc`` (or ``bc`` itself, if an object)."""
    if isinstance(bc, BoundaryCondition):
        return bc
    if bc not in BOUNDARY_CONDITIONS:
        raise ValueError(BOUNDARY_CONDITIONS.unknown(bc))
    return BOUNDARY_CONDITIONS[bc]
