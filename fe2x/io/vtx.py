"""VTX (ADIOS2) field files that fail like every other result file: one line, never an abort.

ADIOS2 reports a failed write (a full disk, a vanished directory) by a C++ exception, raised
again by ``close`` and then by the writer's destructor, which ends the process in
``std::terminate`` (exit 134) after two tracebacks. So a :class:`FieldFile` first checks, on
rank 0 for all ranks, that the file system can hold the step (its data with a margin) and
refuses with :class:`~fe2x.io.results.OutputError` otherwise; a write that fails anyway is
turned into an OutputError too, and the broken writer is kept out of reach of the garbage
collector (:func:`abandoned`): the command line then ends the process without running
destructors (:func:`end_if_abandoned`) once it has said what went wrong.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mpi4py import MPI

from fe2x.io.results import OutputError, reason

if TYPE_CHECKING:
    from dolfinx import fem

__all__ = ["FieldFile", "abandoned", "end_if_abandoned"]

#: Writers ADIOS2 failed in: destroying them would call std::terminate.
_ABANDONED: list[Any] = []

#: Margin on the estimated size of a step (ADIOS2 metadata, file-system blocks).
_MARGIN_FACTOR, _MARGIN_BYTES = 1.5, 1 << 20


def step_bytes(functions: Sequence[fem.Function], with_mesh: bool) -> int:
    """Bytes that one step of ``functions`` takes on disk, estimated.

    Their global sizes at 8 bytes a value, plus the mesh's geometry and topology when
    ``with_mesh`` (the first step).
    """
    total = 0
    for f in functions:
        index_map = f.function_space.dofmap.index_map
        total += 8 * index_map.size_global * f.function_space.dofmap.index_map_bs
    if with_mesh and functions:
        mesh = functions[0].function_space.mesh
        dim = mesh.topology.dim
        nodes = mesh.geometry.index_map().size_global
        cells = mesh.topology.index_map(dim).size_global
        total += 8 * 3 * nodes + 8 * cells * (mesh.geometry.dofmaps[0].shape[1] + 1)
    return total


def _adios_reason(error: BaseException) -> str:
    """The system's words for the errno in an ADIOS2 message, else its first line."""
    match = re.search(r"errno = (\d+)", str(error))
    if match:
        return os.strerror(int(match.group(1)))
    return reason(error)


class FieldFile:
    """A ``.bp`` folder of ``functions`` (one mesh), written step by step (collective).

    Args:
        comm: the mesh's communicator.
        path: the ``.bp`` folder.
        functions: the functions written at every step (their names are the field names).
    """

    def __init__(self, comm: MPI.Comm, path: Path, functions: Sequence[fem.Function]) -> None:
        self.comm, self.path, self.functions = comm, path, list(functions)
        self._steps = 0
        self._writer: Any = None  # a dolfinx.io.VTXWriter once open
        self._check_space(step_bytes(self.functions, with_mesh=True))
        self._guard(self._open)

    def _open(self) -> None:
        from dolfinx import io  # DOLFINx only where fields are written

        self._writer = io.VTXWriter(self.comm, self.path, self.functions, engine="BP4")

    def _check_space(self, needed: int) -> None:
        """Refuse, on every rank, a step the file system has no room for.

        Also a file whose directory is not one (ADIOS2 would fail only when writing).
        """
        free: int | str | None = None
        if self.comm.rank == 0:
            if not self.path.parent.is_dir():
                free = f"{self.path.parent} is not a directory"
            else:
                try:
                    free = shutil.disk_usage(self.path.parent).free
                except OSError:
                    free = None  # nothing to tell; the write itself will say
        free = self.comm.bcast(free, root=0)
        if isinstance(free, str):
            raise OutputError(f"cannot write {self.path}: {free}")
        need = int(needed * _MARGIN_FACTOR) + _MARGIN_BYTES
        if free is not None and free < need:
            raise OutputError(
                f"cannot write {self.path}: no space left on device ({free / 1e6:.1f} MB free, "
                f"about {need / 1e6:.1f} MB needed)"
            )

    def _guard(self, action: Callable[[], object]) -> None:
        """Run ``action``; a failure on any rank raises OutputError on every rank."""
        why = None
        try:
            action()
        except RuntimeError as error:  # ADIOS2's exceptions
            why = _adios_reason(error)
        whys = [w for w in self.comm.allgather(why) if w is not None]
        if whys:
            if self._writer is not None:
                _ABANDONED.append(self._writer)  # its destructor would throw again
                self._writer = None
            raise OutputError(f"cannot write {self.path}: {whys[0]}")

    def write(self, t: float) -> None:
        """Write the functions' current values as step ``t``."""
        if self._writer is None:
            raise OutputError(f"cannot write {self.path}: the file is closed")
        self._check_space(step_bytes(self.functions, with_mesh=self._steps == 0))
        writer = self._writer
        self._guard(lambda: writer.write(t))
        self._steps += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._writer is not None:
            writer = self._writer
            self._guard(writer.close)
            self._writer = None

    def __enter__(self) -> FieldFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
        elif self._writer is not None:  # unwinding another error: close, keep that error
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except RuntimeError:
                _ABANDONED.append(writer)


def abandoned() -> bool:
    """Whether a field writer failed in this process (see the module notes)."""
    return bool(_ABANDONED)


def end_if_abandoned(code: int) -> None:
    """End the process with ``code`` at once if a field writer failed; return if none did.

    The streams are flushed and no destructor runs (ADIOS2's would abort).
    """
    if _ABANDONED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
