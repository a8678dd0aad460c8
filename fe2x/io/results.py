"""Result files written atomically by rank 0, so that a failed run leaves none half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mpi4py import MPI


def temporary_beside(path: Path) -> Path:
    """A new empty hidden file in ``path``'s directory (made if missing), to be renamed onto
    ``path`` once complete: a rename within one file system is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds."""
    tmp = temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_on_root(comm: MPI.Comm, path: Path, write: Callable[[Path], None]) -> None:
    """Collective: rank 0 runs ``write(tmp)`` and renames tmp onto ``path``."""
    error = None
    if comm.rank == 0:
        try:
            with atomic_path(path) as tmp:
                write(tmp)
        except OSError as e:
            error = f"cannot write {path}: {e.strerror or e}"
    error = comm.bcast(error, root=0)
    if error:
        raise OSError(error)


def write_json(comm: MPI.Comm, path: Path, data: Any) -> None:
    """Collective: rank 0 writes ``data`` as JSON to ``path`` atomically."""
    write_on_root(comm, path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))
