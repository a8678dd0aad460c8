"""Moving records between ranks by global id: route (pickled objects) and route_arrays (rows)."""

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.parallel.exchange import route, route_arrays

COMMS = pytest.mark.parametrize("comm", [MPI.COMM_WORLD, MPI.COMM_SELF], ids=["world", "self"])


def owner(item_id: int, size: int) -> int:
    """Owner of an id: rank 0 owns nothing when there are several ranks."""
    return 0 if size == 1 else 1 + item_id % (size - 1)


def destination(item_id: int, size: int) -> int:
    return (7 * item_id + 3) % size


def owned_ids(comm: MPI.Comm, n_total: int) -> np.ndarray:
    return np.array([i for i in range(n_total) if owner(i, comm.size) == comm.rank], dtype=int)


def state(item_id: int) -> dict:
    """A variable-size, serialisable stand-in for an RVE state."""
    return {"id": item_id, "eps_p": np.full(item_id % 5, 0.5 * item_id), "tag": f"gp{item_id}"}


def assert_states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["id"] == b[key]["id"] and a[key]["tag"] == b[key]["tag"]
        assert np.array_equal(a[key]["eps_p"], b[key]["eps_p"])


@COMMS
def test_route_lands_where_destination_says_and_back(comm):
    n_total = 23
    items = {int(i): state(int(i)) for i in owned_ids(comm, n_total)}
    received = route(comm, items, lambda i: destination(i, comm.size))
    expected = [i for i in range(n_total) if destination(i, comm.size) == comm.rank]
    assert list(received) == expected  # sorted by id
    assert_states_equal(received, {i: state(i) for i in expected})
    # Every item arrived exactly once somewhere.
    arrived = [i for ids in comm.allgather(list(received)) for i in ids]
    assert sorted(arrived) == list(range(n_total))

    back = route(comm, received, lambda i: owner(i, comm.size))
    assert_states_equal(back, items)


@COMMS
def test_route_all_to_one_and_empty_ranks(comm):
    items = {i: state(i) for i in range(5)} if comm.rank == comm.size - 1 else {}
    received = route(comm, items, lambda i: 0)
    assert list(received) == (list(range(5)) if comm.rank == 0 else [])
    assert route(comm, {}, lambda i: 0) == {}


@COMMS
def test_route_rejects_bad_destination_on_every_rank(comm):
    items = {comm.rank: "x"} if comm.rank == 0 else {}
    with pytest.raises(ValueError, match=rf"item 0 \(on rank 0\) has destination rank {comm.size}"):
        route(comm, items, lambda i: comm.size)


@COMMS
@pytest.mark.parametrize(
    ("row_shape", "dtype"),
    [((), np.float64), ((3,), np.float64), ((3 + 9,), np.float64), ((6, 6), np.float32),
     ((2,), np.int32)],
)  # fmt: skip
def test_route_arrays_round_trip(comm, row_shape, dtype):
    n_total = 31
    ids = owned_ids(comm, n_total)
    rng = np.random.default_rng(0)
    all_rows = (rng.standard_normal((n_total, *row_shape)) * 100).astype(dtype)
    data = all_rows[ids]
    dest = np.array([destination(i, comm.size) for i in ids], dtype=int)

    got_ids, got_data = route_arrays(comm, ids, data, dest)
    expected = [i for i in range(n_total) if destination(i, comm.size) == comm.rank]
    assert got_ids.tolist() == expected
    assert got_ids.dtype == np.int64
    assert got_data.dtype == dtype and got_data.shape == (len(expected), *row_shape)
    assert np.array_equal(got_data, all_rows[expected])

    back_dest = np.array([owner(i, comm.size) for i in got_ids], dtype=int)
    back_ids, back_data = route_arrays(comm, got_ids, got_data, back_dest)
    assert np.array_equal(back_ids, ids)
    assert np.array_equal(back_data, data)


@COMMS
def test_route_arrays_all_empty_and_all_to_one(comm):
    ids, data = route_arrays(comm, np.zeros(0, int), np.zeros((0, 4)), np.zeros(0, int))
    assert ids.shape == (0,) and data.shape == (0, 4)

    mine = comm.rank == comm.size - 1
    ids = np.arange(6) if mine else np.zeros(0, int)
    data = np.outer(ids, np.ones(4)).astype(float)
    got_ids, got_data = route_arrays(comm, ids, data, np.zeros(ids.size, int))
    if comm.rank == 0:
        assert got_ids.tolist() == list(range(6))
        assert np.array_equal(got_data, np.outer(np.arange(6), np.ones(4)))
    else:
        assert got_ids.size == 0 and got_data.shape == (0, 4)


@COMMS
def test_route_arrays_errors(comm):
    with pytest.raises(ValueError, match="same length"):
        route_arrays(comm, np.arange(2), np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(ValueError, match="numeric rows"):
        route_arrays(comm, np.arange(1), np.array([object()]), np.zeros(1, int))
    bad = np.array([-1]) if comm.rank == 0 else np.zeros(0, int)
    with pytest.raises(ValueError, match="destination rank -1, outside"):
        route_arrays(comm, np.arange(bad.size), np.zeros((bad.size, 2)), bad)


def test_route_arrays_rejects_mismatched_rows_on_every_rank():
    comm = MPI.COMM_WORLD
    if comm.size == 1:
        pytest.skip("needs two ranks")
    width = 3 if comm.rank == 0 else 4
    with pytest.raises(ValueError, match="same row shape and dtype"):
        route_arrays(comm, np.zeros(0, int), np.zeros((0, width)), np.zeros(0, int))
