"""Result files written atomically by rank 0, so that a failed run leaves none half-written."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mpi4py import MPI

from fe2x.errors import Fe2xError


class OutputError(Fe2xError, OSError):
    """A result file cannot be written (full disk, read-only or missing directory, ...).

    Also an OSError, as :func:`write_on_root` raised OSError before this class existed.
    """


def reason(error: BaseException) -> str:
    """One line saying why ``error`` happened.

    The system's words for an errno (``No space left on device``), else the first line of the
    message, after the class name for unforeseen ones.
    """
    number = getattr(error, "errno", None)
    if isinstance(number, int) and number > 0:
        return os.strerror(number)
    text = next(iter(str(error).strip().splitlines()), "")
    for number in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES):
        if os.strerror(number).lower() in text.lower():  # h5py puts errno in its text only
            return os.strerror(number)
    if isinstance(error, Fe2xError | OSError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def current_umask() -> int:
    """The process's file-mode creation mask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it for a moment
    os.umask(mask)
    return mask


def temporary_beside(path: Path) -> Path:
    """A new empty hidden file in ``path``'s directory (made if missing), to rename onto ``path``.

    A rename within one file system is atomic, so ``path`` appears only once complete.

    Its mode is ``0o666 & ~umask``, as for any file the user creates (``mkstemp`` alone gives
    0600, which the rename would carry onto the result).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds.

    The temporary is removed whatever happens, so a failed write (full disk, ...) leaves the
    previous ``path`` as it was and nothing beside it. Failing to make the temporary or to
    rename it raises :class:`OutputError` naming ``path``.
    """
    try:
        tmp = temporary_beside(path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {reason(error)}") from error
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {reason(error)}") from error
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; OutputError if it cannot."""
    text = json.dumps(data, indent=2) + "\n"
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {reason(error)}") from error


def write_on_root(comm: MPI.Comm, path: Path, write: Callable[[Path], object]) -> None:
    """Collective: rank 0 runs ``write(tmp)`` and renames tmp onto ``path``.

    Any failure of rank 0 (not only an OSError) is shared, so every rank raises
    :class:`OutputError` with the one-line reason, e.g. ``cannot write out/history.csv: No
    space left on device``; rank 0's error is chained to the original exception.
    """
    error: str | None = None
    cause: BaseException | None = None
    if comm.rank == 0:
        try:
            with atomic_path(path) as tmp:
                write(tmp)
        except OutputError as e:
            error, cause = str(e), e
        except Exception as e:  # shared, so that no rank waits for rank 0 in the bcast
            error, cause = f"cannot write {path}: {reason(e)}", e
    error = comm.bcast(error, root=0)
    if error:
        raise OutputError(error) from cause


def write_json(comm: MPI.Comm, path: Path, data: Any) -> None:
    """Collective: rank 0 writes ``data`` as JSON to ``path`` atomically."""
    write_on_root(comm, path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))
