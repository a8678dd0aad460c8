"""RVE group layout from Comm.Split, and the check against single-rank copies under plain srun."""

from types import SimpleNamespace

from mpi4py import MPI

import pytest

from fe2x.errors import Fe2xError
from fe2x.parallel.layout import (
    LaunchError,
    LayoutError,
    check_launch,
    count_groups,
    split_groups,
)


@pytest.mark.parametrize(("size", "group_size", "n_groups"), [(1, 1, 1), (4, 2, 2), (6, 3, 2)])
def test_count_groups(size, group_size, n_groups):
    assert count_groups(size, group_size) == n_groups


@pytest.mark.parametrize(
    ("size", "group_size", "match"),
    [
        (4, 3, "4 MPI ranks cannot be split into RVE groups of 3"),
        (2, 0, "positive"),
        (2, -1, "positive"),
    ],
)
def test_count_groups_errors(size, group_size, match):
    with pytest.raises(ValueError, match=match):
        count_groups(size, group_size)
    with pytest.raises(Fe2xError):  # the CLI reports it on one line
        count_groups(size, group_size)


@pytest.mark.parametrize("comm", [MPI.COMM_WORLD, MPI.COMM_SELF], ids=["world", "self"])
@pytest.mark.parametrize("group_size", [1, 2, 3])
def test_split_groups(comm, group_size):
    if comm.size % group_size:
        with pytest.raises(LayoutError, match="multiple of the group size"):
            split_groups(comm, group_size)
        return
    layout = split_groups(comm, group_size)
    try:
        assert layout.world is comm
        assert layout.group.size == group_size
        assert layout.n_groups == comm.size // group_size
        assert layout.group_index == comm.rank // group_size
        assert layout.is_leader == (comm.rank % group_size == 0)
        # Groups are consecutive world ranks, in order.
        members = layout.group.allgather(comm.rank)
        first = layout.group_index * group_size
        assert members == list(range(first, first + group_size))
        assert layout.leader_rank(layout.group_index) == first
        assert [layout.leader_rank(g) for g in range(layout.n_groups)] == list(
            range(0, comm.size, group_size)
        )
        assert layout.member_rank(layout.group_index, layout.group.rank) == comm.rank
        # Every rank agrees on who leads each group.
        leaders = comm.allgather(comm.rank if layout.is_leader else None)
        assert [r for r in leaders if r is not None] == list(range(0, comm.size, group_size))
        with pytest.raises(IndexError, match="group index"):
            layout.leader_rank(layout.n_groups)
        with pytest.raises(IndexError, match="group rank"):
            layout.member_rank(0, group_size)
    finally:
        layout.free()


def test_layout_is_frozen():
    layout = split_groups(MPI.COMM_SELF, 1)
    try:
        with pytest.raises(AttributeError):
            layout.group_index = 3
    finally:
        layout.free()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"SLURM_NTASKS": "1"},
        {"SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "1"},  # srun -n 1 in a 4-task job
        {"SLURM_NTASKS": "4", "PMI_SIZE": "1"},  # mpiexec -n 1 in a 4-task job
        {"SLURM_NTASKS": "garbled"},
    ],
)
def test_check_launch_accepts(environ):
    check_launch(MPI.COMM_SELF, environ)


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"SLURM_NTASKS": "4"}, r"Slurm started 4 tasks .* `srun --mpi=pmi2 \.\.\.`.*mpiexec -n 4"),
        ({"SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "2"}, "SLURM_STEP_NUM_TASKS=2"),
        ({"PMI_SIZE": "3"}, "launcher started 3 processes .* different MPI library"),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, "OMPI_COMM_WORLD_SIZE=2"),
    ],
)
def test_check_launch_rejects_single_rank_copies(environ, match):
    with pytest.raises(LaunchError, match=match):
        check_launch(MPI.COMM_SELF, environ)


def test_check_launch_multi_rank_comm_passes():
    check_launch(SimpleNamespace(size=4), {"SLURM_NTASKS": "4", "PMI_SIZE": "4"})
    check_launch(MPI.COMM_WORLD)  # however this test suite was launched, it was launched right
