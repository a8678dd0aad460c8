"""Checkpoints that are damaged or crafted are refused on every rank alike, never half-used,
never hang; rotation keeps an older fallback; a full disk leaves the last good checkpoint.

Run as a script (``python tests/test_checkpoint_hardening.py SCENARIO DIR``, under
``mpiexec -n 2`` by the tests) it plays one parallel scenario and prints one line per rank.
"""

import faulthandler
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest

import fe2x
from fe2x.io.checkpoint import (
    CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    Checkpoint,
    CheckpointError,
    _header_digest,
    read_checkpoint,
    read_micro_states,
    restore_latest,
    rotate_and_write,
    write_checkpoint,
)

ROOT = Path(fe2x.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT = 120  # seconds; every scenario takes a few
WATCHDOG = 900  # seconds; the FE² run below takes about a minute on a busy machine
TMPFS = "96k"  # holds the checkpoints of steps 2 and 3 and the temporary of one more


@pytest.fixture(autouse=True)
def _watchdog():
    """A hang (ranks waiting for each other) ends the process with tracebacks, not never."""
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def header(step: int = 2, **changes) -> Checkpoint:
    """A checkpoint header of 4 macro points per rank, one RVE group per rank."""
    n = 4 * MPI.COMM_WORLD.size
    values = dict(
        step=step,
        load_factor=0.25 * step,
        increment=0.25,
        config_digest="digest",
        group_size=1,
        coordinates=np.empty((0, 2)),
        displacement=np.empty((0, 2)),
        point_ids=np.arange(n),
        assignment=np.arange(n) % MPI.COMM_WORLD.size,
        costs=np.ones(n),
        history=[[s + 1.0, 0.25 * (s + 1), 3.0] for s in range(step)],
        force_scale=1.0,
    )
    values.update(changes)
    return Checkpoint(**values)


def local_part(comm: MPI.Comm, scale: float = 1.0) -> dict:
    """This rank's part: its points' states (every third None) and its layout."""
    rank = comm.rank
    states = {}
    for key in range(rank, 4 * comm.size, comm.size):
        states[key] = (
            None
            if key % 3 == 0
            else {"x": np.full(3, scale * key), "phase": {"eps_p": np.ones((2, 4)), "k": 1.0}}
        )
    return {
        "coordinates": np.array([[rank, 0.0], [rank, 1.0]]),
        "displacement": scale * np.array([[0.0, rank], [1.0, rank]]),
        "states": states,
        "layouts": {
            f"m/{rank}/0": {"nodes": np.full((3, 2), float(rank)), "points": {"p": np.arange(4)}}
        },
    }


def write(comm: MPI.Comm, path: Path, step: int = 2, **changes) -> None:
    write_checkpoint(comm, path, header(step, **changes), local_part(comm))


def flip(path: Path, dataset: str) -> None:
    """Flip one bit in the middle of the stored data of ``dataset`` (rank 0 only)."""
    if MPI.COMM_WORLD.rank == 0:
        with h5py.File(path, "r") as f:
            chunk = f[dataset].id.get_chunk_info(0)
            offset = chunk.byte_offset + chunk.size // 2
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x10
        path.write_bytes(bytes(data))
    MPI.COMM_WORLD.barrier()


def on_root(action) -> None:
    if MPI.COMM_WORLD.rank == 0:
        action()
    MPI.COMM_WORLD.barrier()


def read_all(comm: MPI.Comm, path: Path) -> None:
    """Read the checkpoint and, on every rank, all states and the layout of its own part."""
    checkpoint = read_checkpoint(comm, path, "digest")
    read_micro_states(comm, checkpoint, range(4 * comm.size), [f"m/{comm.rank}/0"])


def test_round_trip_of_the_synthetic_checkpoint(workdir):
    """The checkpoint the damage tests start from reads back as written."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    checkpoint = read_checkpoint(comm, path, "digest")
    assert checkpoint.step == 2 and checkpoint.history == header().history
    assert checkpoint.coordinates.shape == (2 * comm.size, 2)
    states, layouts = read_micro_states(comm, checkpoint, range(4 * comm.size), ["m/0/0"])
    assert sorted(states) == [k for k in range(4 * comm.size) if k % 3]
    assert all(np.array_equal(s["x"], np.full(3, float(k))) for k, s in states.items())
    assert float(next(iter(states.values()))["phase"]["k"]) == 1.0
    assert np.array_equal(layouts["m/0/0"]["points"]["p"], np.arange(4))


HEADER_DATASETS = ["history", "point_ids", "assignment", "costs", "coordinates", "displacement"]
PART_DATASETS = ["parts/0/ids", "parts/0/states/x/ids", "parts/0/states/x/shapes"]


@pytest.mark.parametrize("dataset", HEADER_DATASETS + PART_DATASETS)
def test_a_flipped_bit_in_any_dataset_is_refused(workdir, dataset):
    """Every dataset deciding the run has a checksum, read when the header is checked: one
    flipped bit in any of them (history, ids, shapes...) refuses the file on every rank."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    flip(path, dataset)
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        read_checkpoint(comm, path, "digest")


@pytest.mark.parametrize("dataset", ["parts/0/states/x/data", "parts/0/layouts/m|0|0/nodes"])
def test_a_flipped_bit_in_rank_0s_micro_data_fails_on_every_rank(workdir, dataset):
    """A flipped bit in a micro state or a layout of rank 0's part: only the ranks reading it
    meet the checksum, yet every rank raises the same error (the fallback is collective)."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    flip(path, dataset)
    checkpoint = read_checkpoint(comm, path, "digest")  # the header is intact
    wanted = [1, 2] if comm.rank == 0 else [k for k in range(4 * comm.size) if k % comm.size]
    with pytest.raises(CheckpointError, match="cannot read rank 0's micro states") as error:
        read_micro_states(comm, checkpoint, wanted, [f"m/{comm.rank}/0"])
    assert "checksum" in str(error.value)


def forge(path: Path, edit) -> None:
    """Edit the file with h5py (rank 0), then rewrite the header digest to match, as a crafted
    file would: what is refused then is refused by the value checks, not the digest."""

    def apply() -> None:
        with h5py.File(path, "r+") as f:
            edit(f)
            attrs = {
                k: f.attrs[k] for k in ("format", "n_parts", *header().__dict__) if k in f.attrs
            }
            arrays = {k: f[k][...] for k in (*HEADER_DATASETS,)}
            f.attrs["header_sha256"] = _header_digest(attrs, arrays)

    on_root(apply)


def replace(f: h5py.File, name: str, data) -> None:
    del f[name]
    f.create_dataset(name, data=np.asarray(data), fletcher32=True)


def points(f: h5py.File) -> int:
    return 4 * int(f.attrs["n_parts"])  # as in header()


def attribute(name: str, value):
    return lambda f: f.attrs.modify(name, value)


FORGED = [
    ("load_factor nan", attribute("load_factor", np.nan), "load_factor = nan"),
    ("load_factor 1.5", attribute("load_factor", 1.5), r"load_factor = 1.5"),
    ("load_factor < 0", attribute("load_factor", -0.1), "load_factor = -0.1"),
    ("increment < 0", attribute("increment", -0.25), "increment = -0.25"),
    ("increment 0", attribute("increment", 0.0), r"increment = 0.0 is not in \("),
    ("increment inf", attribute("increment", np.inf), "increment = inf"),
    ("step < 0", attribute("step", -1), "step = -1 is below 0"),
    ("step float", lambda f: f.attrs.__setitem__("step", 2.5), "step = 2.5 is not an integer"),
    ("step vs rows", attribute("step", 3), "history has 2 rows for 3 steps"),
    ("group_size 0", attribute("group_size", 0), "group_size = 0 is below 1"),
    ("force_scale", attribute("force_scale", np.nan), "force_scale = nan"),
    ("history inf", lambda f: replace(f, "history", [[1, 0.25, 3], [2, np.inf, 3]]), "history"),
    ("ids twice", lambda f: replace(f, "point_ids", np.zeros(points(f), int)), "unique"),
    ("negative id", lambda f: replace(f, "point_ids", -1 - np.arange(points(f))), "non-negative"),
    ("few ids", lambda f: replace(f, "point_ids", np.arange(3)), "one entry per point"),
    ("assignment", lambda f: replace(f, "assignment", np.full(points(f), 99)), "groups outside"),
    ("costs nan", lambda f: replace(f, "costs", np.full(points(f), np.nan)), "not finite"),
    ("costs < 0", lambda f: replace(f, "costs", -np.ones(points(f))), "costs are negative"),
    ("coordinates", lambda f: replace(f, "coordinates", np.full((2, 3), np.nan)), "coordinates"),
]


@pytest.mark.parametrize(("edit", "message"), [f[1:] for f in FORGED], ids=[f[0] for f in FORGED])
def test_values_out_of_range_are_refused(workdir, edit, message):
    """A header whose digest matches but whose values cannot be (NaN or out-of-range load
    factor, a backward increment, duplicate ids, ...) is refused, naming the value."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    forge(path, edit)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(comm, path, "digest")


def test_a_header_edited_without_its_digest_is_refused(workdir):
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)

    def edit() -> None:
        with h5py.File(path, "r+") as f:
            f.attrs.modify("load_factor", 0.75)  # in range, but not what was written

    on_root(edit)
    with pytest.raises(CheckpointError, match="does not match its SHA-256 digest"):
        read_checkpoint(comm, path, "digest")


def overwrite(name: str, values) -> object:
    """An edit writing ``values`` into dataset ``name`` in place (its checksum recomputed)."""
    return lambda f: f[name].write_direct(np.asarray(values))


SHAPES = "parts/0/states/x/shapes"
PART_EDITS = [
    ("state id twice", lambda f: replace(f, "parts/0/ids", [1, 1]), "ids of part 0 are not unique"),
    ("shapes wrong", overwrite(SHAPES, np.full((2, 1), 7)), "inconsistent"),
    ("shapes negative", overwrite(SHAPES, np.full((2, 1), -3)), "inconsistent"),
    ("entry id not held", overwrite("parts/0/states/x/ids", [1, 99]), "inconsistent"),
    (
        "layout renamed",
        lambda f: f.move("parts/0/layouts/m|0|0", "parts/0/layouts/m|7|5"),
        "part 0",
    ),
    ("part missing", lambda f: f.move("parts/0", "lost"), "parts missing"),
]


@pytest.mark.parametrize(
    ("edit", "message"), [e[1:] for e in PART_EDITS], ids=[e[0] for e in PART_EDITS]
)
def test_inconsistent_parts_are_refused(workdir, edit, message):
    """Parts edited with valid checksums (a damaged ``shapes`` that once gave an IndexError on
    rank 0 only, a renamed layout, a lost part) are refused on every rank."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)

    def apply() -> None:
        with h5py.File(path, "r+") as f:
            edit(f)

    on_root(apply)
    with pytest.raises(CheckpointError, match=message):
        read_all(comm, path)


def add_foreign_object(kind: str, path: Path, other: Path) -> str:
    """Replace ``/history`` by an object reading ``other``'s bytes; the name it is refused by."""
    rows = np.array([[1.0, 0.25, 8e9], [2.0, 0.5, 8e9]])
    with h5py.File(other, "w") as g:
        g.create_dataset("rows", data=rows)
    raw = other.with_suffix(".bin")
    raw.write_bytes(rows.tobytes())
    with h5py.File(path, "r+") as f:
        del f["history"]
        if kind == "external link":
            f["history"] = h5py.ExternalLink(str(other), "/rows")
        elif kind == "external storage":
            f.create_dataset("history", shape=rows.shape, dtype="f8", external=[(str(raw), 0, 48)])
        elif kind == "virtual dataset":
            layout = h5py.VirtualLayout(shape=rows.shape, dtype="f8")
            layout[...] = h5py.VirtualSource(str(other), "rows", shape=rows.shape)
            f.create_virtual_dataset("history", layout)
        else:
            f.create_dataset("rows", data=rows, fletcher32=True)
            f["history"] = h5py.SoftLink("/rows")
    return {
        "external link": "/history is an external link",
        "external storage": "/history keeps its data in external file",
        "virtual dataset": "/history is a virtual dataset",
        "soft link": "/history is a soft link",
    }[kind]


@pytest.mark.parametrize(
    "kind", ["external link", "external storage", "virtual dataset", "soft link"]
)
def test_objects_reading_other_files_are_refused(workdir, kind):
    """A crafted file whose history is an external link, external storage or a virtual dataset
    (bytes of another local file) is refused naming the object, before anything is read; the
    payload is real: h5py reads the other file's rows through it."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    message = None
    if comm.rank == 0:
        message = add_foreign_object(kind, path, workdir / "other.h5")
        with h5py.File(path, "r") as f:
            assert f["history"][0, 2] == 8e9
    message = comm.bcast(message, root=0)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(comm, path, "digest")


def test_datasets_without_checksum_and_old_formats_are_refused(workdir):
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)

    def unchecked() -> None:
        with h5py.File(path, "r+") as f:
            rows = f["history"][...]
            del f["history"]
            f.create_dataset("history", data=rows)

    on_root(unchecked)
    with pytest.raises(CheckpointError, match="/history carries no checksum"):
        read_checkpoint(comm, path, "digest")
    write(comm, path)
    forge(path, lambda f: f.attrs.modify("format", "fe2x-checkpoint-3"))
    with pytest.raises(CheckpointError, match="not an fe2x-checkpoint-4 file"):
        read_checkpoint(comm, path, "digest")


def test_bad_values_are_not_written(workdir):
    """A NaN load factor or a backward increment is refused when writing too: the last good
    checkpoint stays, and no temporary is left."""
    comm = MPI.COMM_WORLD
    path = workdir / "c.h5"
    write(comm, path)
    for change in ({"load_factor": np.nan}, {"increment": -0.1}):
        with pytest.raises(CheckpointError, match="cannot write checkpoint"):
            write(comm, path, step=3, **change)
    assert read_checkpoint(comm, path, "digest").step == 2
    assert not list(workdir.glob(".c.*"))


def steps(directory: Path) -> tuple[int | None, int | None]:
    """Steps of the newest and previous checkpoints in ``directory`` (None: none or invalid)."""
    out = []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        try:
            out.append(read_checkpoint(MPI.COMM_WORLD, directory / name, "digest").step)
        except CheckpointError:
            out.append(None)
    return out[0], out[1]


def test_rotation_keeps_an_older_fallback(workdir):
    """prev always holds an older step than the newest: the same step written again (after a
    signal) replaces only the newest, and a corrupt newest is not kept as the fallback."""
    comm = MPI.COMM_WORLD
    for step in (1, 2):
        rotate_and_write(comm, workdir, header(step), local_part(comm))
    assert steps(workdir) == (2, 1)
    rotate_and_write(comm, workdir, header(2), local_part(comm, scale=2.0))
    assert steps(workdir) == (2, 1)
    on_root(lambda: (workdir / CHECKPOINT).write_bytes(b"\x89HDF\r\n\x1a\n broken"))
    rotate_and_write(comm, workdir, header(3), local_part(comm))
    assert steps(workdir) == (3, 1)
    rotate_and_write(comm, workdir, header(4), local_part(comm))
    assert steps(workdir) == (4, 3)


def test_rotation_removes_orphaned_temporaries_only(workdir):
    """Temporaries of killed writers (older than the run) are removed, newer ones are kept."""
    comm = MPI.COMM_WORLD
    old, new = workdir / ".checkpoint.killed1.h5", workdir / ".checkpoint.other.h5"
    started = time.time() - 60
    if comm.rank == 0:
        old.write_bytes(b"partial")
        os.utime(old, (started - 3600, started - 3600))
        new.write_bytes(b"partial")
    comm.barrier()
    rotate_and_write(comm, workdir, header(1), local_part(comm), started=started)
    assert not old.exists() and new.exists()
    assert sorted(p.name for p in workdir.iterdir()) == [".checkpoint.other.h5", CHECKPOINT]


def test_a_directory_in_place_of_the_checkpoint_fails_on_every_rank(workdir):
    """checkpoint.h5 replaced by a directory: the write fails on rank 0, every rank raises
    (none waits in a gather), the previous checkpoint is intact and no temporary is left."""
    comm = MPI.COMM_WORLD
    for step in (1, 2):
        rotate_and_write(comm, workdir, header(step), local_part(comm))

    def make_directory() -> None:
        shutil.copy(workdir / CHECKPOINT, workdir / "kept.h5")
        (workdir / CHECKPOINT).unlink()
        (workdir / CHECKPOINT).mkdir()
        (workdir / CHECKPOINT / "x").write_text("x")

    on_root(make_directory)
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint .*{CHECKPOINT}"):
        rotate_and_write(comm, workdir, header(3), local_part(comm))
    assert steps(workdir)[1] == 1
    assert not list(workdir.glob(".checkpoint.*"))


def test_restore_failing_on_one_rank_falls_back_on_all(workdir, caplog):
    """``restore`` raising on rank 0 only, with an exception nobody foresaw: every rank falls
    back to the previous checkpoint together."""
    comm = MPI.COMM_WORLD
    for step in (1, 2):
        rotate_and_write(comm, workdir, header(step), local_part(comm))
    restored = []

    def restore(checkpoint: Checkpoint) -> None:
        if checkpoint.step == 2 and comm.rank == 0:
            raise IndexError("index 7 is out of bounds")
        restored.append(checkpoint.step)

    checkpoint = restore_latest(comm, workdir, "digest", restore)
    assert checkpoint.step == 1 and restored[-1] == 1
    assert comm.rank or "using the previous checkpoint" in caplog.text
    assert comm.rank or "IndexError: index 7 is out of bounds" in caplog.text
    on_root(lambda: (workdir / PREVIOUS_CHECKPOINT).unlink())
    with pytest.raises(CheckpointError, match="on rank 0: IndexError"):
        restore_latest(comm, workdir, "digest", restore)


def test_a_run_restarts_from_the_previous_checkpoint_when_a_layout_is_damaged(workdir, caplog):
    """The whole FE² job: a flipped bit in a layout of rank 0's part of checkpoint.h5 (on 2
    ranks only rank 0 reads it) makes every rank fall back to checkpoint.prev.h5 together,
    and the restarted run ends with the uninterrupted history."""
    from test_checkpoint import CONFIG, history, same

    from fe2x.cli import main

    comm = MPI.COMM_WORLD
    config = workdir / "cfg.toml"
    on_root(lambda: config.write_text(CONFIG))
    assert main(["run", str(config), "--out", str(workdir / "full"), "--quiet"]) == 0
    on_root(lambda: shutil.copytree(workdir / "full", workdir / "damaged"))
    with h5py.File(workdir / "damaged" / CHECKPOINT, "r") as f:
        nodes = [k for k in f["parts/0/layouts"] if k.endswith("|0")]
    flip(workdir / "damaged" / CHECKPOINT, f"parts/0/layouts/{nodes[0]}/nodes")
    assert main(["run", str(config), "--restart", str(workdir / "damaged"), "--quiet"]) == 0
    assert comm.rank or "micro states (a checksum does not match" in caplog.text
    assert comm.rank or "using the previous checkpoint" in caplog.text
    assert same(history(workdir / "damaged"), history(workdir / "full"))


# The scenarios of the issue, on 2 ranks in a subprocess with a timeout ----------------------


def scenario(name: str, directory: Path) -> str:
    """Play scenario ``name`` in ``directory`` on COMM_WORLD; what this rank saw."""
    comm = MPI.COMM_WORLD
    for step in (1, 2):
        rotate_and_write(comm, directory, header(step), local_part(comm))
    path = directory / CHECKPOINT
    try:
        if name == "layout":
            flip(path, "parts/0/layouts/m|0|0/nodes")
            read_all(comm, path)
        elif name == "shapes":
            flip(path, "parts/0/states/x/shapes")
            read_all(comm, path)
        elif name == "directory":
            on_root(lambda: (path.unlink(), path.mkdir()))
            rotate_and_write(comm, directory, header(3), local_part(comm))
        elif name == "full":  # the directory is a small tmpfs
            rotate_and_write(comm, directory, header(3), local_part(comm, scale=1.0))
            big = local_part(comm)
            big["states"] = {k: {"x": np.linspace(0.0, 1.0, 4000)} for k in big["states"]}
            rotate_and_write(comm, directory, header(4), big)
    except CheckpointError as error:
        return f"CheckpointError: {error}"
    return "no error"


def run_on_two_ranks(name: str, directory: Path, mount: bool = False) -> list[str]:
    """The lines of both ranks playing ``name`` under ``mpiexec -n 2`` (with a timeout), in
    ``directory``, or in a small tmpfs mounted there for the subprocess alone."""
    play = [str(BIN / "mpiexec"), "-n", "2", sys.executable, __file__, name, str(directory)]
    if mount:
        script = f'mount -t tmpfs -o size={TMPFS} tmpfs "$0" && exec "$@"'
        play = ["unshare", "-m", "sh", "-c", script, str(directory), *play]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(play, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("layout", "cannot read rank 0's micro states"),
        ("shapes", "unreadable or corrupt"),
        ("directory", "cannot write checkpoint"),
    ],
)
def test_the_hangs_of_the_issue_raise_on_both_ranks(tmp_path, name, message):
    """The three 2-rank hangs of the issue: each raises the same CheckpointError on both ranks
    within the timeout."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec -n 2 in a subprocess; serial only")
    lines = run_on_two_ranks(name, tmp_path)
    assert len(lines) == 2
    assert all(message in line and "CheckpointError" in line for line in lines), lines
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]  # the same error


def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def test_a_full_disk_keeps_the_last_checkpoint(tmp_path):
    """On a 96 kB tmpfs the checkpoint of step 4 does not fit: both ranks raise one-line
    CheckpointErrors naming the file and ENOSPC (no crash of HDF5), and the directory holds
    the checkpoints of steps 3 and 2 as before, without temporaries."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec -n 2 in a subprocess; serial only")
    if not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (needs unshare and mount rights)")
    lines = run_on_two_ranks("full", tmp_path, mount=True)
    assert len(lines) == 2 and all("No space left on device" in line for line in lines), lines
    assert all(f"cannot write checkpoint {tmp_path / CHECKPOINT}" in line for line in lines)
    assert all(line.endswith("kept steps 3 2 temporaries []") for line in lines), lines


def report_after_full() -> str:
    """After the full-disk scenario, still on the tmpfs: what the directory holds."""
    directory = Path(sys.argv[2])
    newest, previous = steps(directory)
    left = sorted(p.name for p in directory.iterdir() if p.name.startswith("."))
    return f"kept steps {newest} {previous} temporaries {left}"


if __name__ == "__main__":
    name, where = sys.argv[1], Path(sys.argv[2])
    seen = scenario(name, where)
    if name == "full":
        seen += "; " + report_after_full()
    lines = MPI.COMM_WORLD.gather(f"rank {MPI.COMM_WORLD.rank}: {seen}", root=0)
    if MPI.COMM_WORLD.rank == 0:  # one writer, so that the lines do not interleave
        print("\n".join(lines), flush=True)
