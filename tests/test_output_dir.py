"""Output directories refused before computing when unusable, locked against a second run;
result files written with the umask's mode, failing on full or read-only disks with one line
and leaving the last good files.

Run as a script (``python tests/test_output_dir.py SCENARIO DIR``, under ``mpiexec -n 2`` in
a small tmpfs by the tests) it plays one scenario and prints one line per rank.
"""

import faulthandler
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

import fe2x
from fe2x.errors import Fe2xError
from fe2x.io.checkpoint import Checkpoint, write_checkpoint
from fe2x.io.output_dir import LOCK, OutputDirError, prepare_output_dir
from fe2x.io.results import OutputError, atomic_path, write_json, write_on_root

ROOT = Path(fe2x.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT = 120


@pytest.fixture(autouse=True)
def _watchdog():
    """A hang (ranks waiting for each other) ends the process with tracebacks, not never."""
    faulthandler.dump_traceback_later(TIMEOUT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def rank0_pid() -> int:
    return MPI.COMM_WORLD.bcast(os.getpid(), root=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: "", "the output directory is an empty string"),
        (lambda d: "  ", "the output directory is an empty string"),
        (lambda d: d / "file", "exists and is not a directory"),
        (lambda d: d / "file" / "out", "cannot create output directory .*: Not a directory"),
    ],
    ids=["empty", "blank", "a file", "under a file"],
)
def test_unusable_output_paths_are_refused(workdir, make, message):
    """Refused with one line on every rank, before anything is written."""
    if MPI.COMM_WORLD.rank == 0:
        (workdir / "file").write_text("not a directory")
    MPI.COMM_WORLD.barrier()
    with pytest.raises(OutputDirError, match=message) as error:
        prepare_output_dir(MPI.COMM_WORLD, make(workdir))
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in workdir.iterdir()) == ["file"]


def test_the_lock_refuses_a_second_run_and_is_released(workdir):
    """While a run holds the directory a second is refused, naming the first; the lock goes
    when the first ends, also when it ends by an exception."""
    comm = MPI.COMM_WORLD
    out = workdir / "out"
    with prepare_output_dir(comm, str(out)) as held:
        comm.barrier()
        assert held.path == out and (out / LOCK).is_file()
        assert (held.lock is not None) == (comm.rank == 0)
        name = rf"pid {rank0_pid()} on host {socket.gethostname()}"
        with pytest.raises(OutputDirError, match=f"in use by another fe2x run \\({name}"):
            prepare_output_dir(comm, str(out))
        comm.barrier()  # a root's bcast does not wait: keep rank 0 in the block until here
    comm.barrier()  # rank 0 releases the lock when it leaves the block
    assert not (out / LOCK).exists()
    comm.barrier()  # ... and takes it again below
    with pytest.raises(RuntimeError), prepare_output_dir(comm, str(out)):
        raise RuntimeError("the run failed")
    comm.barrier()
    assert not (out / LOCK).exists()


def test_a_second_process_is_refused(workdir):
    """Two processes writing to the same directory: the second is refused while the first
    runs, and gets the directory once the first has exited."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts a second process; serial only")
    out = workdir / "shared"
    hold = (
        "import sys; from mpi4py import MPI; from fe2x.io.output_dir import prepare_output_dir\n"
        f"with prepare_output_dir(MPI.COMM_SELF, {str(out)!r}):\n"
        "    print('locked', flush=True); sys.stdin.readline()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-c", hold],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirError, match=f"in use by another fe2x run \\(pid {first.pid} "):
            prepare_output_dir(MPI.COMM_WORLD, str(out))
    finally:
        first.communicate("\n", timeout=TIMEOUT)
    assert first.returncode == 0
    prepare_output_dir(MPI.COMM_WORLD, str(out)).release()


def holder_of(**changes) -> dict:
    """A lock's content as this process would write it, with ``changes``."""
    from fe2x.io.output_dir import _holder

    return {**_holder(), **changes}


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])


def parent_holder(**changes) -> dict:
    pid = os.getppid()
    return holder_of(**{"pid": pid, "start_ticks": start_ticks(pid), **changes})


STALE = [
    ("dead pid", lambda: holder_of(pid=dead_pid())),
    ("pid reused", lambda: parent_holder(start_ticks=start_ticks(os.getppid()) + 1)),
    ("rebooted", lambda: parent_holder(boot_id="another-boot")),
    ("requeued", lambda: holder_of(host="elsewhere", slurm_job_id="77", slurm_restart_count="0")),
]
LIVE = [
    ("live", parent_holder, "in use by another fe2x run"),
    ("other host", lambda: holder_of(host="elsewhere"), "on host elsewhere.*delete .*fe2x-lock"),
    ("same job", lambda: parent_holder(slurm_job_id="77", slurm_restart_count="1"), "in use"),
    ("garbled", lambda: "{not json", "names no run; delete it if no fe2x run writes there"),
]


@pytest.mark.parametrize("holder", [s[1] for s in STALE], ids=[s[0] for s in STALE])
def test_a_stale_lock_is_taken_over(workdir, monkeypatch, holder):
    """A lock whose holder is known to be gone is taken over: a dead pid on this host, a pid
    reused by another process, a lock from before a reboot, an earlier incarnation of a
    requeued Slurm job."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    if MPI.COMM_WORLD.rank == 0:
        (workdir / LOCK).write_text(json.dumps(holder()))
    MPI.COMM_WORLD.barrier()
    with prepare_output_dir(MPI.COMM_WORLD, str(workdir)):
        MPI.COMM_WORLD.barrier()
        owner = json.loads((workdir / LOCK).read_text())
        assert owner["pid"] == rank0_pid()
        MPI.COMM_WORLD.barrier()
    MPI.COMM_WORLD.barrier()
    assert sorted(p.name for p in workdir.iterdir()) == []


@pytest.mark.parametrize(("holder", "message"), [s[1:] for s in LIVE], ids=[s[0] for s in LIVE])
def test_a_lock_of_a_live_or_unknown_run_is_kept(workdir, monkeypatch, holder, message):
    """A lock of a live process, of another host, of the same Slurm incarnation, or that names
    no run is kept and the run refused."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    content = holder()
    text = MPI.COMM_WORLD.bcast(content if isinstance(content, str) else json.dumps(content))
    if MPI.COMM_WORLD.rank == 0:
        (workdir / LOCK).write_text(text)
    MPI.COMM_WORLD.barrier()
    with pytest.raises(OutputDirError, match=message):
        prepare_output_dir(MPI.COMM_WORLD, str(workdir))
    assert (workdir / LOCK).read_text() == text


def test_temporaries_of_a_killed_run_are_removed(workdir):
    """A run killed while writing leaves hidden temporaries (``.history.<8>.csv``): the next
    run removes those older than its start and nothing else (results, other hidden files)."""
    comm = MPI.COMM_WORLD
    names = [".history.k2j4x_9a.csv", ".checkpoint.ab12cd34.h5", ".notes.txt", "history.csv"]
    if comm.rank == 0:
        for name in names:
            (workdir / name).write_text("x")
            os.utime(workdir / name, (1.0e9, 1.0e9))
    comm.barrier()
    with prepare_output_dir(comm, str(workdir)):
        comm.barrier()
        assert sorted(p.name for p in workdir.iterdir()) == [
            ".fe2x-lock",
            ".notes.txt",
            "history.csv",
        ]
        comm.barrier()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_result_files_honour_the_umask(workdir, umask):
    """Results and checkpoints get mode 0666 & ~umask, as any file the user creates."""
    comm = MPI.COMM_WORLD
    previous = os.umask(umask)
    try:
        write_json(comm, workdir / "result.json", {"a": 1})
        header = Checkpoint(
            step=0,
            load_factor=0.0,
            increment=0.1,
            config_digest="d",
            group_size=1,
            coordinates=np.empty((0, 2)),
            displacement=np.empty((0, 2)),
            point_ids=np.arange(1),
            assignment=np.zeros(1, dtype=int),
            costs=np.ones(1),
        )
        node = {"coordinates": np.zeros((1, 2)), "displacement": np.zeros((1, 2))}
        write_checkpoint(comm, workdir / "c.h5", header, {**node, "states": {}, "layouts": {}})
        if comm.rank == 0:
            with atomic_path(workdir / "plain.txt") as tmp:
                tmp.write_text("x")
    finally:
        os.umask(previous)
    comm.barrier()
    for name in ("result.json", "c.h5", "plain.txt"):
        assert (workdir / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_failed_write_keeps_the_good_file(workdir):
    """A write failing part-way (here: an exception nobody foresaw, on rank 0 only) raises one
    OutputError on every rank naming the file; the previous file and no temporary remain."""
    comm = MPI.COMM_WORLD
    target = workdir / "history.csv"
    write_on_root(comm, target, lambda tmp: tmp.write_text("good\n"))

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise ValueError("cannot format row 3")

    with pytest.raises(OutputError, match=f"cannot write {target}: ValueError: cannot format"):
        write_on_root(comm, target, fails)
    assert target.read_text() == "good\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["history.csv"]
    assert issubclass(OutputError, Fe2xError) and issubclass(OutputError, OSError)


# Full and read-only file systems: a small tmpfs, mounted for a 2-rank subprocess alone ------


def scenario(name: str, directory: Path) -> str:
    """Play scenario ``name`` in ``directory`` on COMM_WORLD; what this rank saw."""
    comm = MPI.COMM_WORLD
    if name == "full":
        write_json(comm, directory / "result.json", {"good": True})
        try:
            write_json(comm, directory / "result.json", {"big": "x" * 200_000})
            return "no error"
        except OutputError as error:
            kept = json.loads((directory / "result.json").read_text())
            files = sorted(p.name for p in directory.iterdir())
            return f"OutputError: {error}; kept {kept} files {files}"
    try:
        prepare_output_dir(comm, str(directory))
        refused = "not refused"
    except OutputDirError as error:
        refused = str(error)
    try:
        write_json(comm, directory / "result.json", {"a": 1})
        return f"no error; {refused}"
    except OutputError as error:
        return f"OutputError: {error}; {refused}"


def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def on_tmpfs(name: str, directory: Path, options: str) -> list[str]:
    """Both ranks' lines for ``name`` played in a tmpfs mounted on ``directory`` with
    ``options``, under ``mpiexec -n 2`` with a timeout."""
    play = [str(BIN / "mpiexec"), "-n", "2", sys.executable, __file__, name, str(directory)]
    script = f'mount -t tmpfs -o {options} tmpfs "$0" && exec "$@"'
    command = ["unshare", "-m", "sh", "-c", script, str(directory), *play]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if line.startswith("rank ")]


@pytest.fixture
def tmpfs_allowed():
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec -n 2 in a subprocess; serial only")
    if not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (needs unshare and mount rights)")


def test_a_full_disk_fails_with_one_line_and_keeps_the_last_result(tmp_path, tmpfs_allowed):
    """Out of space (a 64 kB tmpfs): OutputError naming the file and ENOSPC on both ranks,
    the last good result.json intact, no temporary left."""
    lines = on_tmpfs("full", tmp_path, "size=64k")
    expected = (
        f"OutputError: cannot write {tmp_path / 'result.json'}: No space left on device; "
        "kept {'good': True} files ['result.json']"
    )
    assert lines == [f"rank 0: {expected}", f"rank 1: {expected}"]


def test_a_read_only_directory_is_refused_before_computing(tmp_path, tmpfs_allowed):
    """A read-only directory (even for root): prepare_output_dir refuses it, and a result
    write fails with one line naming the file."""
    lines = on_tmpfs("read-only", tmp_path, "ro,size=64k")
    expected = (
        f"OutputError: cannot write {tmp_path / 'result.json'}: Read-only file system; "
        f"cannot write in output directory {tmp_path}: Read-only file system"
    )
    assert lines == [f"rank 0: {expected}", f"rank 1: {expected}"]


if __name__ == "__main__":
    seen = scenario(sys.argv[1], Path(sys.argv[2]))
    lines = MPI.COMM_WORLD.gather(f"rank {MPI.COMM_WORLD.rank}: {seen}", root=0)
    if MPI.COMM_WORLD.rank == 0:
        print("\n".join(lines), flush=True)
