"""Moving records keyed by global id (strains, stresses, RVE states) to the ranks that need them.

``route`` moves arbitrary picklable objects (e.g. ``(gauss_point_id, state)`` records when the
assignment changes); ``route_arrays`` moves fixed-width numeric rows (strains, stress and
tangent) with ``Alltoallv`` and no pickling. Both are collective over ``comm``, and both
return what this rank received sorted by id, so the result does not depend on where the
items came from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mpi4py import MPI

import numpy as np

__all__ = ["route", "route_arrays"]


def route[T](
    comm: MPI.Comm, items: Mapping[int, T], destination: Callable[[int], int]
) -> dict[int, T]:
    """Send each item to rank ``destination(id)``; return the items sent to this rank.

    Collective. Ids must be unique across ranks. Objects travel pickled (``comm.alltoall``).

    Args:
        comm: the communicator the destination ranks refer to.
        items: this rank's items, keyed by global id.
        destination: rank in ``comm`` that each id goes to.

    Returns:
        The items received by this rank (its own included), keyed by id, in increasing id order.

    Raises:
        ValueError: on every rank, if any rank gives a destination outside ``[0, comm.size)``.
    """
    outgoing: list[list[tuple[int, T]]] = [[] for _ in range(comm.size)]
    bad = None
    for key, item in items.items():
        rank = int(destination(key))
        if not 0 <= rank < comm.size:
            bad = (key, rank)
            break
        outgoing[rank].append((key, item))
    _raise_on_all(comm, bad)
    incoming = comm.alltoall(outgoing)
    received = [record for records in incoming for record in records]
    received.sort(key=lambda record: record[0])
    return dict(received)


def route_arrays(
    comm: MPI.Comm, ids: np.ndarray, data: np.ndarray, dest: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Send row ``data[i]`` with id ``ids[i]`` to rank ``dest[i]``; return the rows received.

    Collective; two ``Alltoallv`` calls (ids, rows) after an ``Alltoall`` of counts. Row width
    and dtype must agree on all ranks, including ranks that send nothing (pass shape (0, w)).

    Args:
        comm: the communicator the destination ranks refer to.
        ids: global id of each row, shape (n,), integer.
        data: rows, shape (n,) or (n, w), numeric (e.g. strains, or stress and tangent).
        dest: destination rank of each row, shape (n,).

    Returns:
        ``(ids, data)`` received by this rank, sorted by id; ids are int64 and data keeps
        the input's dtype and trailing shape.

    Raises:
        ValueError: on every rank, if any rank gives a destination outside ``[0, comm.size)``
            or the ranks disagree on row shape or dtype.
    """
    ids = np.asarray(ids)
    data = np.asarray(data)
    dest = np.asarray(dest)
    n = ids.shape[0] if ids.ndim == 1 else -1
    if ids.ndim != 1 or data.shape[:1] != (n,) or dest.shape != (n,):
        raise ValueError(
            f"ids, data and dest must have the same length, got shapes "
            f"{ids.shape}, {data.shape}, {dest.shape}"
        )
    if data.dtype.hasobject:
        raise ValueError("route_arrays moves numeric rows; use route for Python objects")
    ids = ids.astype(np.int64, copy=False)
    dest = dest.astype(np.int64, copy=False)
    bad = None
    if n and (dest.min() < 0 or dest.max() >= comm.size):
        i = int(np.flatnonzero((dest < 0) | (dest >= comm.size))[0])
        bad = (int(ids[i]), int(dest[i]))
    row_shape = data.shape[1:]
    _raise_on_all(comm, bad, (row_shape, data.dtype.str))

    width = int(np.prod(row_shape, dtype=np.int64))
    order = np.argsort(dest, kind="stable")
    send_ids = np.ascontiguousarray(ids[order])
    send_data = np.ascontiguousarray(data[order].reshape(n, width))
    send_counts = np.bincount(dest, minlength=comm.size).astype(np.int64)
    recv_counts = np.empty(comm.size, dtype=np.int64)
    comm.Alltoall(send_counts, recv_counts)

    recv_ids = np.empty(int(recv_counts.sum()), dtype=np.int64)
    comm.Alltoallv(
        [send_ids, (send_counts, _offsets(send_counts)), MPI.INT64_T],
        [recv_ids, (recv_counts, _offsets(recv_counts)), MPI.INT64_T],
    )
    # Rows travel as raw bytes, which serves every fixed-width dtype alike.
    row_bytes = width * data.dtype.itemsize
    recv_data = np.empty((recv_ids.size, width), dtype=data.dtype)
    send_spec = (send_counts * row_bytes, _offsets(send_counts) * row_bytes)
    recv_spec = (recv_counts * row_bytes, _offsets(recv_counts) * row_bytes)
    comm.Alltoallv(
        [send_data.view(np.uint8), send_spec, MPI.BYTE],
        [recv_data.view(np.uint8), recv_spec, MPI.BYTE],
    )

    order = np.argsort(recv_ids, kind="stable")
    return recv_ids[order], recv_data[order].reshape((recv_ids.size, *row_shape))


def _offsets(counts: np.ndarray) -> np.ndarray:
    """Displacements of consecutive blocks: exclusive cumulative sum of ``counts``."""
    offsets = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=offsets[1:])
    return offsets


def _raise_on_all(
    comm: MPI.Comm, bad: tuple[int, int] | None, layout: tuple[object, str] | None = None
) -> None:
    """Raise on every rank, so none is left waiting, if any rank has a bad destination.

    Args:
        comm: communicator of the exchange.
        bad: this rank's first ``(id, destination)`` outside the communicator, or None.
        layout: this rank's ``(row shape, dtype)``, which must agree on all ranks, or None.
    """
    reports = comm.allgather((bad, layout))
    for rank, (found, _) in enumerate(reports):
        if found is not None:
            key, destination = found
            raise ValueError(
                f"item {key} (on rank {rank}) has destination rank {destination}, "
                f"outside [0, {comm.size})"
            )
    layouts = {found for _, found in reports}
    if len(layouts) > 1:
        raise ValueError(
            f"route_arrays needs the same row shape and dtype on all ranks, got {sorted(layouts)}"
        )
