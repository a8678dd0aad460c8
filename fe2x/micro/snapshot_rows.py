"""The partition-independent numbering of an RVE's reduced fluctuation dofs.

It gives the rows of the RVE's training snapshots.

PETSc numbers the reduced dofs x (u = E·y + P x) by rank, so the same RVE on 1 or 2 ranks
orders them differently, and a training file written by a distributed RVE could not be reduced
on one rank. The canonical row of a reduced dof orders the dofs by their first image under P:
the lexicographically smallest (node coordinate relative to the cell, component) of the full
dofs it prolongs to (for periodic dofs the image on the cell's lower faces; one image
otherwise), which depends on the mesh only.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["canonical_rows"]

#: Relative coordinates are compared after rounding to this many digits.
DIGITS = 10


def canonical_rows(problem: RVEProblem) -> np.ndarray:
    """The canonical row (module notes) of each of this rank's reduced dofs (collective).

    Raises:
        Fe2xError: if two reduced dofs share their first image (no canonical order).
    """
    P, dim, cell = problem.P, problem.dim, problem.cell
    indptr, columns, values = P.getValuesCSR()
    n_nodes = problem.V.dofmap.index_map.size_local
    coordinates = problem.V.tabulate_dof_coordinates()[:n_nodes, :dim]
    relative = np.round((coordinates - cell.origin) / cell.lengths, DIGITS)
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))[values != 0]
    columns = columns[values != 0]
    keys = np.column_stack([relative[rows // dim], rows % dim])
    comm: MPI.Comm = problem.comm
    columns = np.concatenate(comm.allgather(columns))
    keys = np.vstack(comm.allgather(keys))
    order = np.lexsort(keys.T[::-1])  # by the first coordinate, then the next, ..., component
    ordered = columns[order]
    _, first = np.unique(ordered, return_index=True)
    first.sort()
    first_keys = keys[order][first]
    if first.size != problem.n_reduced or np.any(np.all(first_keys[1:] == first_keys[:-1], axis=1)):
        raise Fe2xError("the reduced fluctuation dofs have no partition-independent order")
    row = np.empty(problem.n_reduced, dtype=np.int64)
    row[ordered[first]] = np.arange(first.size)
    start, end = P.getOwnershipRangeColumn()
    return row[start:end]
