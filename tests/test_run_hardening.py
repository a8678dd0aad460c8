"""The jobs fail cleanly and keep what was committed: output directories, PETSc options,
checkpoints across signals and fresh runs, and the summary of a restarted run."""

import json
import logging
import os
import signal
from pathlib import Path

from mpi4py import MPI

import pytest
from conftest import run_command
from test_checkpoint import CONFIG, history, same

from fe2x.cli import main
from fe2x.io.checkpoint import read_checkpoint
from fe2x.io.output_dir import prepare_output_dir
from fe2x.jobs import REQUEUE_STATUS, checkpointing
from fe2x.macro.fe2 import FE2Engine

HOMOGENIZE = """
[cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
mesh_size = 0.5
geometry_order = 1
[materials.layer0]
E = 1.0
nu = 0.3
[materials.layer1]
E = 2.0
nu = 0.3
[homogenize]
bcs = ["periodic"]
degree = 1
"""


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fe2x: error: "), err
        assert pattern in lines[0], lines[0]


def shared_path(tmp_path_factory, name: str) -> Path:
    comm = MPI.COMM_WORLD
    return Path(comm.bcast(tmp_path_factory.mktemp(name) if comm.rank == 0 else None))


def test_unusable_output_directories_are_refused_before_computing(workdir, capsys):
    config = workdir / "cfg.toml"
    blocker = workdir / "a_file"
    if MPI.COMM_WORLD.rank == 0:
        config.write_text(HOMOGENIZE)
        blocker.write_text("not a directory")
    MPI.COMM_WORLD.barrier()
    for out, pattern in (("", "empty"), (str(blocker), "not a directory")):
        code = main(["homogenize", str(config), "--out", out, "--quiet"])
        one_line_error(code, capsys.readouterr().err, pattern)
    held = workdir / "held"
    with prepare_output_dir(MPI.COMM_WORLD, held):  # another run holds it
        code = main(["homogenize", str(config), "--out", str(held), "--quiet"])
        one_line_error(code, capsys.readouterr().err, "in use")
    assert not (held / "result.json").exists()
    assert main(["homogenize", str(config), "--out", str(held), "--quiet"]) == 0  # released


def test_petsc_payloads_in_a_config_do_not_run(workdir, capsys):
    """A config may not make PETSc run a Python file, import a module or write a viewer
    file; the payload is refused before any solver exists, and its marker never appears."""
    marker = workdir / "marker"
    payload = workdir / "payload.py"
    if MPI.COMM_WORLD.rank == 0:
        payload.write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Ctx: pass\n")
    MPI.COMM_WORLD.barrier()
    cases = {
        "python pc": (f'pc_type = "python", pc_python_type = "{payload}:Ctx"', "python"),
        "viewer file": (f'ksp_view = "ascii:{workdir}/view.txt"', "ksp_view"),
    }
    for options, pattern in cases.values():
        text = HOMOGENIZE + f"petsc_options = {{{options}}}\n"
        code, err, out = run_command("homogenize", workdir, text, capsys)
        one_line_error(code, err, pattern)
        assert not (out / "result.json").exists()
        assert not marker.exists() and not (workdir / "view.txt").exists()
    code, err, _ = run_command(
        "homogenize", workdir, HOMOGENIZE + 'petsc_options = {ksp_type = "foo"}\n', capsys
    )
    one_line_error(code, err, "'ksp_type' = 'foo'")


def test_signals_keep_the_fallback_and_the_summary_lists_every_step(
    tmp_path_factory, monkeypatch, caplog
):
    """A stop signal during step 3: the final checkpoint is written with the handlers still
    installed (a second signal cannot kill the write), checkpoint.prev.h5 holds an older step
    than checkpoint.h5, and after the restart summary.json lists all four steps; a fresh run
    into the same directory first removes the old checkpoints."""
    comm = MPI.COMM_WORLD
    work = shared_path(tmp_path_factory, "signals")
    config, out = work / "cfg.toml", work / "out"
    if comm.rank == 0:
        config.write_text(CONFIG)
    comm.barrier()
    step, constitutive, save = FE2Engine.step, FE2Engine.constitutive, checkpointing.save
    count = {"steps": 0, "evaluations": 0}
    handlers = []

    def counting_step(engine, load_factor):
        count["steps"] += 1
        count["evaluations"] = 0
        return step(engine, load_factor)

    def signalling_constitutive(engine, E):
        count["evaluations"] += 1
        if (count["steps"], count["evaluations"], comm.rank) == (3, 1, 0):
            os.kill(os.getpid(), signal.SIGUSR1)
        return constitutive(engine, E)

    def watched_save(*args):
        handlers.append(signal.getsignal(signal.SIGUSR1))
        return save(*args)

    monkeypatch.setattr(FE2Engine, "step", counting_step)
    monkeypatch.setattr(FE2Engine, "constitutive", signalling_constitutive)
    monkeypatch.setattr(checkpointing, "save", watched_save)
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == REQUEUE_STATUS
    monkeypatch.undo()
    assert handlers and all(h not in (signal.SIG_DFL, signal.SIG_IGN) for h in handlers)
    digest = json.loads((out / "steps.json").read_text())[0] if comm.rank == 0 else None
    assert comm.rank or digest["step"] == 1
    newest = read_checkpoint(comm, out / "checkpoint.h5", _digest(config))
    previous = read_checkpoint(comm, out / "checkpoint.prev.h5", _digest(config))
    assert newest.step == 2 and previous.step < newest.step
    assert main(["run", str(config), "--restart", str(out), "--quiet"]) == 0
    steps = json.loads((out / "summary.json").read_text())["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    fresh = work / "fresh"
    assert main(["run", str(config), "--out", str(fresh), "--quiet"]) == 0
    assert same(history(fresh), history(out))
    comm.barrier()
    if comm.rank == 0:  # a stale checkpoint of another run in the directory of a new one
        (fresh / "checkpoint.h5").write_bytes((out / "checkpoint.prev.h5").read_bytes())
    comm.barrier()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["run", str(config), "--out", str(fresh), "--quiet"]) == 0
    assert comm.rank or "of an earlier run" in caplog.text


def _digest(config: Path) -> str:
    from fe2x.config import read_run_config

    return read_run_config(config).digest


@pytest.mark.parametrize("size", ["1e-6", "1e-7"])
def test_runaway_mesh_requests_are_refused_with_the_estimate(workdir, capsys, size):
    text = HOMOGENIZE.replace("mesh_size = 0.5", f"mesh_size = {size}")
    code, err, _ = run_command("homogenize", workdir, text, capsys)
    one_line_error(code, err, "would make about")
