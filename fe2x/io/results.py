"""JSON result files, written atomically by rank 0 so that a failed run leaves none half-written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mpi4py import MPI


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(comm: MPI.Comm, path: Path, data: Any) -> None:
    """Collective: rank 0 writes ``data`` to ``path`` atomically; all ranks learn of failure."""
    error = None
    if comm.rank == 0:
        try:
            write_json_atomic(path, data)
        except OSError as e:
            error = f"cannot write {path}: {e.strerror}"
    error = comm.bcast(error, root=0)
    if error:
        raise OSError(error)
