"""The output directory of a run: checked before any computing and locked for the run.

A run writes into its directory alone: :func:`prepare_output_dir` creates the lock file
``.fe2x-lock`` there with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFS
from version 3, on Lustre and GPFS, unlike ``flock``, which some parallel file systems do
not support or keep per node) and writes into it who holds it: host, pid, the process's start
time, the boot id and the Slurm job. The lock is released when the run ends, also on errors.
A run that was killed leaves its lock behind; a later run takes it over only when it can tell
that the holder is dead:

- same host and boot: no process of that pid, or one started at another time (pid reused);
- same host, another boot id: the host rebooted since;
- the same Slurm job id with another restart count: a requeued job's earlier incarnation,
  which Slurm ends before requeueing.

Otherwise (another host, no way to know) the run is refused with a message naming the
holder and the lock file to delete if that run is gone.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mpi4py import MPI

from fe2x.errors import Fe2xError
from fe2x.io.results import reason

LOCK = ".fe2x-lock"

logger = logging.getLogger(__name__)


class OutputDirError(Fe2xError):
    """An output directory cannot be used: not a directory, not writable, or in use."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])  # field 22 of proc(5), after the name


def _holder() -> dict[str, object]:
    """Who this process is, as written into the lock."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start_ticks": _start_ticks(os.getpid()),
        "boot_id": _boot_id(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_restart_count": os.environ.get("SLURM_RESTART_COUNT", "0"),
        "token": os.urandom(8).hex(),
    }


def _is_dead(holder: dict[str, object]) -> bool:
    """Whether the process that wrote ``holder`` is known to be gone (see the module doc)."""
    me = _holder()
    job = holder.get("slurm_job_id")
    if job and job == me["slurm_job_id"]:
        if holder.get("slurm_restart_count") != me["slurm_restart_count"]:
            return True
    if holder.get("host") != me["host"]:
        return False
    if holder.get("boot_id") and me["boot_id"] and holder["boot_id"] != me["boot_id"]:
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    ticks = _start_ticks(pid)
    return ticks is not None and holder.get("start_ticks") not in (None, ticks)


def _describe(holder: dict[str, object]) -> str:
    job = f", Slurm job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')}{job}, "
        f"started {holder.get('started')}"
    )


def _read_holder(lock: Path) -> dict[str, object] | None:
    """The holder written in ``lock``, None if it is unreadable or not one."""
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


@dataclass
class OutputDir:
    """A checked, locked output directory; a context manager releasing the lock at its end.

    Attributes:
        path: the directory.
        started: when it was prepared (seconds since the epoch): files of fe2x older than
            this are left by earlier runs (see :func:`fe2x.io.checkpoint.remove_orphans`).
        lock: the lock file on rank 0, None on the other ranks and once released.
    """

    path: Path
    started: float
    lock: Path | None = None
    _token: str = field(default="", repr=False)

    def release(self) -> None:
        """Remove the lock if it is still this run's (idempotent, not collective)."""
        lock, self.lock = self.lock, None
        if lock is None:
            return
        holder = _read_holder(lock)
        if holder is not None and holder.get("token") == self._token:
            try:
                lock.unlink()
            except OSError:
                pass  # nothing better to do at the end of a run; a later run takes it over

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _create_lock(lock: Path, holder: dict[str, object]) -> None:
    """Create ``lock`` exclusively and write ``holder`` into it (FileExistsError if held)."""
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (json.dumps(holder) + "\n").encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        lock.unlink(missing_ok=True)
        raise
    os.close(fd)


def _take_over(lock: Path, stale: dict[str, object]) -> bool:
    """Move the stale ``lock`` aside if it is still the one judged stale; True if it was removed.

    Two runs taking it over at once must not remove each other's.
    """
    aside = lock.with_name(f"{LOCK}.stale.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # removed by another run meanwhile: try to create it again
    if _read_holder(aside) == stale:
        aside.unlink(missing_ok=True)
        return True
    try:  # another run's fresh lock: put it back
        os.link(aside, lock)
    except OSError:
        pass
    aside.unlink(missing_ok=True)
    return False


def _lock(directory: Path) -> tuple[Path, str]:
    """Lock ``directory`` for this process: the lock path and this run's token."""
    lock = directory / LOCK
    holder = _holder()
    for _ in range(2):
        try:
            _create_lock(lock, holder)
            return lock, str(holder["token"])
        except FileExistsError:
            other = _read_holder(lock)
            if other is None:
                raise OutputDirError(
                    f"output directory {directory} is locked by {lock}, which names no run; "
                    "delete it if no fe2x run writes there"
                ) from None
            if not (_is_dead(other) and _take_over(lock, other)):
                raise OutputDirError(
                    f"output directory {directory} is in use by another fe2x run "
                    f"({_describe(other)}); choose another output directory, or delete {lock} "
                    "if that run is gone"
                ) from None
    raise OutputDirError(f"output directory {directory}: cannot take over the lock {lock}")


#: A temporary of :func:`fe2x.io.results.temporary_beside`: ``.<stem>.<8 random chars><suffix>``.
_TEMPORARY = re.compile(r"\.[^/]+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?")


def remove_temporaries(directory: Path, started: float) -> int:
    """Remove the temporaries that killed writers of earlier runs left in ``directory``.

    Only files named like fe2x's temporaries (``.history.k2j4x_9a.csv``, ``.checkpoint.*.h5``)
    and last changed before ``started`` are removed; call it holding the directory's lock.
    Returns how many were removed.
    """
    removed = 0
    for path in directory.iterdir():
        if not _TEMPORARY.fullmatch(path.name) or path.name.startswith(LOCK):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < started:
                path.unlink()
                removed += 1
        except OSError:
            pass  # gone meanwhile, or not ours to remove: left as it is
    return removed


def _prepare(path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """Rank 0's checks and lock: the directory, its lock and the token, or OutputDirError."""
    text = os.fspath(path)
    if not text.strip():
        raise OutputDirError("the output directory is an empty string")
    directory = Path(text)
    if directory.exists() and not directory.is_dir():
        raise OutputDirError(f"output directory {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputDirError(
            f"cannot create output directory {directory}: {reason(error)}"
        ) from None
    try:
        lock, token = _lock(directory)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise OutputDirError(
                f"cannot write in output directory {directory}: {reason(error)}"
            ) from None
        raise OutputDirError(f"output directory {directory}: {reason(error)}") from None
    return directory, lock, token


def prepare_output_dir(comm: MPI.Comm, path: str | os.PathLike[str]) -> OutputDir:
    """Collective: check, create and lock the output directory ``path`` for this run.

    Pass the user's string as given (``Path("")`` is already ``"."``): an empty string, a
    path that is a file, a directory that cannot be created or written, and a directory
    locked by a live run are refused with one line, on every rank, before any computing.
    Rank 0 decides and holds the lock; use the result as a context manager (or call
    :meth:`OutputDir.release`) so that the lock is released however the run ends.
    """
    verdict: tuple[str, str, str, float] | str
    if comm.rank == 0:
        started = time.time()
        try:
            directory, lock, token = _prepare(path)
            if removed := remove_temporaries(directory, started):
                logger.info("removed %d temporary file(s) of an earlier run in %s", removed, path)
            verdict = (str(directory), str(lock), token, started)
        except OutputDirError as error:
            verdict = str(error)
        except Exception as error:  # shared, so that no rank waits for rank 0
            verdict = f"output directory {os.fspath(path)!s}: {reason(error)}"
    verdict = comm.bcast(verdict if comm.rank == 0 else None, root=0)
    if isinstance(verdict, str):
        raise OutputDirError(verdict)
    directory_text, lock_text, token, started = verdict
    if comm.rank == 0:
        return OutputDir(Path(directory_text), started, Path(lock_text), token)
    return OutputDir(Path(directory_text), started)
