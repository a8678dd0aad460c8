"""Communicator layout: the macro communicator split into RVE groups of consecutive ranks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mpi4py import MPI

from fe2x.errors import Fe2xError

__all__ = [
    "GroupLayout",
    "LaunchError",
    "LayoutError",
    "check_launch",
    "count_groups",
    "split_groups",
]

# Variables an MPI launcher sets to the size of the job it started (MPICH/Hydra and Slurm's
# PMI-2 plugin: PMI_SIZE; Open MPI: OMPI_COMM_WORLD_SIZE).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


class LayoutError(Fe2xError, ValueError):
    """The ranks cannot be split into groups of the requested size."""


class LaunchError(Fe2xError, RuntimeError):
    """The job was started so that MPI sees fewer ranks than the launcher started."""


def count_groups(size: int, group_size: int) -> int:
    """Number of RVE groups, ``size // group_size``, after checking that it divides evenly.

    >>> count_groups(6, 2)
    3
    """
    if group_size < 1:
        raise LayoutError(f"RVE group size must be a positive integer, got {group_size}")
    if size % group_size != 0:
        raise LayoutError(
            f"{size} MPI ranks cannot be split into RVE groups of {group_size} ranks: "
            f"the number of ranks must be a multiple of the group size"
        )
    return size // group_size


@dataclass(frozen=True)
class GroupLayout:
    """The macro communicator and the RVE group this rank belongs to.

    Group ``g`` holds the consecutive world ranks ``g * group_size ... (g + 1) * group_size - 1``.

    Attributes:
        world: the macro communicator that was split.
        group: this rank's RVE group (a sub-communicator of ``group_size`` ranks).
        group_size: ranks per group.
        group_index: index of this rank's group, ``world.rank // group_size``.
        n_groups: number of groups, ``world.size // group_size``.
    """

    world: MPI.Comm
    group: MPI.Comm
    group_size: int
    group_index: int
    n_groups: int

    @property
    def is_leader(self) -> bool:
        """Whether this rank is rank 0 of its group."""
        return self.group.rank == 0

    def leader_rank(self, group_index: int) -> int:
        """World rank of the leader (rank 0) of group ``group_index``."""
        return self.member_rank(group_index, 0)

    def member_rank(self, group_index: int, group_rank: int) -> int:
        """World rank of rank ``group_rank`` of group ``group_index``.

        Migrating a distributed RVE's state moves the piece on group rank k to group rank k.
        """
        if not 0 <= group_index < self.n_groups:
            raise IndexError(f"group index {group_index} not in [0, {self.n_groups})")
        if not 0 <= group_rank < self.group_size:
            raise IndexError(f"group rank {group_rank} not in [0, {self.group_size})")
        return group_index * self.group_size + group_rank

    def free(self) -> None:
        """Free the group communicator (collective over the group)."""
        if self.group != MPI.COMM_NULL:
            self.group.Free()


def split_groups(comm: MPI.Comm, group_size: int) -> GroupLayout:
    """Split ``comm`` into groups of ``group_size`` consecutive ranks (collective).

    Args:
        comm: the macro communicator.
        group_size: ranks per RVE group; must divide ``comm.size``.

    Raises:
        LayoutError: (a ``ValueError``) if ``group_size < 1`` or it does not divide ``comm.size``.
    """
    n_groups = count_groups(comm.size, group_size)
    group_index = comm.rank // group_size
    group = comm.Split(color=group_index, key=comm.rank)
    return GroupLayout(
        world=comm, group=group, group_size=group_size, group_index=group_index, n_groups=n_groups
    )


def check_launch(comm: MPI.Comm, environ: Mapping[str, str] = os.environ) -> None:
    """Raise if the launcher started several tasks but MPI sees each of them alone.

    Plain ``srun`` without a PMI plugin starts N independent single-rank copies of the
    program, which would each run the whole job.

    Raises:
        LaunchError: when ``comm.size == 1`` while Slurm or the MPI launcher started more tasks.
    """
    if comm.size != 1:
        return
    for name in _LAUNCHER_SIZE_VARIABLES:
        if name in environ:
            launched = _positive_int(environ[name])
            if launched > 1:
                raise LaunchError(
                    f"the MPI launcher started {launched} processes ({name}={environ[name]}) "
                    f"but MPI sees 1 rank: mpi4py is linked to a different MPI library than "
                    f"the launcher; use the mpiexec that belongs to the MPI mpi4py was built with"
                )
            return  # an MPI launcher started exactly one process: deliberate
    name = "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in environ else "SLURM_NTASKS"
    tasks = _positive_int(environ.get(name, "1"))
    if tasks > 1:
        raise LaunchError(
            f"Slurm started {tasks} tasks ({name}={environ[name]}) but MPI sees 1 rank: plain "
            f"`srun` without a PMI plugin starts {tasks} independent single-rank copies; "
            f"launch with `srun --mpi=pmi2 ...` (or another plugin from `srun --mpi=list`) "
            f"or `mpiexec -n {tasks} ...`"
        )


def _positive_int(text: str) -> int:
    """An integer from a launcher variable; unparsable values count as 1 (no check)."""
    try:
        # Slurm may write e.g. "4(x2)" in some variables; only a plain count is used.
        return max(int(text.strip()), 1)
    except ValueError:
        return 1
