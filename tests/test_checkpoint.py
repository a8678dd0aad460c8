"""Checkpoint and restart of `fe2x run`: the uninterrupted history, on any number of ranks."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest
from configs import J2_LAMINATE_RVE

from fe2x.cli import main
from fe2x.config import read_run_config
from fe2x.io.checkpoint import Checkpoint, read_checkpoint, read_micro_states, write_checkpoint
from fe2x.jobs import REQUEUE_STATUS
from fe2x.macro.fe2 import FE2Engine

CONFIG = """
[macro]
shape = "plate_with_hole"
dim = 2
width = 2.0
height = 2.0
radius = 0.4
mesh_size = 0.6

[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "right"
ux = 0.04

[loading]
steps = 4

[checkpoint]
every_steps = 1
""" + J2_LAMINATE_RVE.format(mesh_size=0.5)


def history(directory: Path) -> dict[str, np.ndarray]:
    with (directory / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Histories agree to solver tolerance: forces relative to the largest force, the rest
    exactly up to round-off."""
    if a.keys() != b.keys() or len(a["step"]) != len(b["step"]):
        return False
    force = max(np.abs(v).max() for k, v in a.items() if k.startswith("F_"))
    return all(
        np.allclose(a[k], b[k], rtol=0, atol=1e-8 * (force if k.startswith("F_") else 1.0))
        for k in a
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    """The config, and the directory of a complete run with a checkpoint after every step."""
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("ckpt") if comm.rank == 0 else None))
    config = work / "cfg.toml"
    if comm.rank == 0:
        config.write_text(CONFIG)
    comm.barrier()
    assert main(["run", str(config), "--out", str(work / "full"), "--quiet"]) == 0
    return config, work / "full"


def copy_run(source: Path, target: Path) -> None:
    if MPI.COMM_WORLD.rank == 0:
        shutil.copytree(source, target)
    MPI.COMM_WORLD.barrier()


def test_restart_reproduces_the_run(uninterrupted):
    """Continuing from the checkpoint after step 3 (written on any number of ranks) gives the
    uninterrupted history; under mpiexec the two runs may even use other rank counts."""
    config, full = uninterrupted
    again = full.parent / "again"
    copy_run(full, again)
    assert main(["run", str(config), "--restart", str(again), "--quiet"]) == 0
    assert same(history(again), history(full))


def test_restart_with_another_group_size(uninterrupted):
    """A checkpoint of one-rank RVEs continues with RVEs spread over 2 ranks, and one of 2-rank
    RVEs with one-rank RVEs (their plastic histories moved between partitions of the RVE
    mesh): both give the uninterrupted history. Changing ``[parallel]`` is allowed on restart,
    as it does not change what is computed."""
    comm = MPI.COMM_WORLD
    if comm.size % 2:
        pytest.skip("RVE groups of 2 ranks need an even number of ranks")
    config, full = uninterrupted
    grouped = full.parent / "grouped.toml"
    if comm.rank == 0:
        grouped.write_text(CONFIG + "\n[parallel]\ngroup_size = 2\n")
    comm.barrier()
    checkpoint = read_checkpoint(comm, full / "checkpoint.h5", read_run_config(config).digest)
    assert checkpoint.state_parts, "nothing plastic"

    widened = full.parent / "widened"
    copy_run(full, widened)
    assert main(["run", str(grouped), "--restart", str(widened), "--quiet"]) == 0
    assert same(history(widened), history(full))

    narrowed = full.parent / "narrowed"
    assert main(["run", str(grouped), "--out", str(narrowed), "--quiet"]) == 0
    assert main(["run", str(config), "--restart", str(narrowed), "--quiet"]) == 0
    assert same(history(narrowed), history(full))


def test_each_rank_writes_the_states_it_holds(uninterrupted):
    """The micro states lie in one part per rank of the run that wrote them, each holding the
    pieces of its own group's points (so no rank gathers the others' states)."""
    config, full = uninterrupted
    checkpoint = read_checkpoint(
        MPI.COMM_WORLD, full / "checkpoint.h5", read_run_config(config).digest
    )
    g = checkpoint.group_size
    group = dict(zip(checkpoint.point_ids.tolist(), checkpoint.assignment.tolist(), strict=True))
    for key, part in checkpoint.state_parts.items():
        assert (group[key // g], key % g) == (part // g, part % g)
    assert set(checkpoint.state_parts.values()) <= set(range(MPI.COMM_WORLD.size))


def test_micro_states_round_trip(tmp_path_factory):
    """States of different structures (nested dicts, scalars, integer and empty arrays, None)
    come back as written, each rank asking only for some of them, whichever rank wrote them."""
    comm = MPI.COMM_WORLD
    path = Path(comm.bcast(tmp_path_factory.mktemp("parts") if comm.rank == 0 else None)) / "c.h5"
    rng = np.random.default_rng(7)

    def state(key: int):
        if key % 3 == 0:
            return None
        if key % 3 == 1:
            return {"x": rng.random(key), "phase": {"eps_p": rng.random((2, 6)), "k": np.arange(3)}}
        return {"alpha": float(key), "empty": np.zeros((0, 4))}

    keys = range(10 * comm.size)
    every = {k: state(k) for k in keys}  # the same on every rank (same seed, same order)
    mine = {k: every[k] for k in keys if k % comm.size == comm.rank}
    header = Checkpoint(
        step=1,
        load_factor=0.5,
        increment=0.1,
        config_digest="d",
        group_size=1,
        coordinates=np.zeros((0, 2)),
        displacement=np.zeros((0, 2)),
        point_ids=np.arange(3),
        assignment=np.zeros(3, dtype=int),
        costs=np.ones(3),
        history=[[1.0, 0.5, 3.0]],
    )
    local = {
        "coordinates": np.full((1, 2), comm.rank),
        "displacement": np.zeros((1, 2)),
        "states": mine,
        "layouts": {f"m/{comm.rank}/0": {"nodes": np.full((2, 2), comm.rank)}},
    }
    write_checkpoint(comm, path, header, local)
    checkpoint = read_checkpoint(comm, path, "d")
    assert checkpoint.coordinates.shape == (comm.size, 2)
    assert checkpoint.history == [[1.0, 0.5, 3.0]]
    assert sorted(checkpoint.state_parts) == [k for k in keys if every[k] is not None]
    wanted = [k for k in keys if k % comm.size != comm.rank]  # what the other ranks wrote
    other = (comm.rank + 1) % comm.size
    states, layouts = read_micro_states(comm, checkpoint, wanted, [f"m/{other}/0"])
    assert sorted(states) == [k for k in wanted if every[k] is not None]
    for key, value in states.items():
        expected = every[key]
        assert value.keys() == expected.keys()
        if "x" in value:
            assert np.array_equal(value["x"], expected["x"])
            assert np.array_equal(value["phase"]["eps_p"], expected["phase"]["eps_p"])
            assert np.array_equal(value["phase"]["k"], expected["phase"]["k"])
        else:
            assert value["alpha"] == expected["alpha"] and value["empty"].shape == (0, 4)
    assert np.array_equal(layouts[f"m/{other}/0"]["nodes"], np.full((2, 2), other))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_bit_of_a_micro_state(path: Path) -> None:
    """Flip one bit inside the stored data of the first micro state entry of part 0."""
    with h5py.File(path, "r") as f:
        entry = next(iter(f["parts/0/states"].values()))
        chunk = entry["data"].id.get_chunk_info(0)
        offset = chunk.byte_offset + chunk.size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, flip_a_bit_of_a_micro_state])
def test_corrupt_checkpoint_falls_back_to_the_previous(uninterrupted, caplog, damage):
    """A truncated file is refused on opening, a damaged micro state by its checksum when read
    on restart; either way the run continues from the previous checkpoint."""
    config, full = uninterrupted
    broken = full.parent / f"broken_{damage.__name__}"
    copy_run(full, broken)
    if MPI.COMM_WORLD.rank == 0:
        damage(broken / "checkpoint.h5")
    MPI.COMM_WORLD.barrier()
    assert main(["run", str(config), "--restart", str(broken), "--quiet"]) == 0
    if MPI.COMM_WORLD.rank == 0:
        assert "using the previous checkpoint" in caplog.text
    assert same(history(broken), history(full))


def test_restart_errors(uninterrupted, capsys):
    config, full = uninterrupted
    other = full.parent / "other.toml"
    empty = full.parent / "empty"
    if MPI.COMM_WORLD.rank == 0:
        other.write_text(CONFIG.replace("steps = 4", "steps = 5"))
        empty.mkdir(exist_ok=True)
    MPI.COMM_WORLD.barrier()
    mismatch = full.parent / "mismatch"
    copy_run(full, mismatch)
    assert main(["run", str(other), "--restart", str(mismatch), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert MPI.COMM_WORLD.rank or "another configuration" in err
    assert main(["run", str(config), "--restart", str(empty), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert MPI.COMM_WORLD.rank or "no checkpoint at" in err


@pytest.mark.parametrize("during_step", [1, 3])
def test_signal_during_a_step_abandons_it(uninterrupted, monkeypatch, capsys, during_step):
    """SIGUSR1 arriving in the middle of a step (here: rank 0 signals itself at the first
    micro evaluation of the step): the run abandons the step without solving it, checkpoints
    the step before (or the initial state) and exits with the requeue status; the restart
    gives the uninterrupted history."""
    comm = MPI.COMM_WORLD
    config, full = uninterrupted
    out = full.parent / f"abandoned{during_step}"
    step, constitutive = FE2Engine.step, FE2Engine.constitutive
    count = {"steps": 0, "evaluations": 0}

    def counting_step(engine, load_factor):
        count["steps"] += 1
        count["evaluations"] = 0
        return step(engine, load_factor)

    def signalling_constitutive(engine, E):
        count["evaluations"] += 1
        if (count["steps"], count["evaluations"], comm.rank) == (during_step, 1, 0):
            os.kill(os.getpid(), signal.SIGUSR1)
        return constitutive(engine, E)

    monkeypatch.setattr(FE2Engine, "step", counting_step)
    monkeypatch.setattr(FE2Engine, "constitutive", signalling_constitutive)
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == REQUEUE_STATUS
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert comm.rank or f"during step {during_step}, which was abandoned" in err
    saved = read_checkpoint(comm, out / "checkpoint.h5", read_run_config(config).digest)
    assert saved.step == during_step - 1 and len(saved.history) == during_step - 1
    assert main(["run", str(config), "--restart", str(out), "--quiet"]) == 0
    assert same(history(out), history(full))


def test_signal_checkpoints_and_restart_on_two_ranks(uninterrupted):
    """SIGUSR1 mid-run (as Slurm sends before the time limit), from outside: the run
    checkpoints and exits with the requeue status; restarted on 2 ranks it completes with
    the uninterrupted history."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts fe2x in subprocesses; serial only")
    config, full = uninterrupted
    out = full.parent / "signalled"
    bindir = Path(sys.executable).parent
    command = [str(bindir / "fe2x"), "run", str(config), "--out", str(out), "--quiet"]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while not (out / "history.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGUSR1)
    assert process.wait(timeout=120) == REQUEUE_STATUS
    assert len(history(out)["step"]) < len(history(full)["step"])
    restart = [str(bindir / "mpiexec"), "-n", "2", str(bindir / "fe2x"), "run", str(config)]
    env = dict(os.environ)
    subprocess.run([*restart, "--restart", str(out), "--quiet"], check=True, env=env, timeout=300)
    assert same(history(out), history(full))
