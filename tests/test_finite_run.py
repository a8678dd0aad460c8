"""`fe2x run` with `[macro] kinematics = "finite"`: a complete run, restart equal to the
uninterrupted run, and one-line errors for models of the other kinematics."""

import csv
import json
import re
import shutil
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command

from fe2x.cli import main

CONFIG = """
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 0.5
kinematics = "{kinematics}"

[[boundary]]
name = "left"
ux = 0.0
uy = 0.0
[[boundary]]
name = "right"
ux = 0.6
uy = 0.6

[loading]
steps = 3

[checkpoint]
every_steps = 1

[micro.layers]
[micro.layers.cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "stiff"]
mesh_size = 0.5
geometry_order = 1
[micro.layers.materials.soft]
model = "{soft}"
E = 75.0
nu = 0.3
[micro.layers.materials.stiff]
model = "neo_hookean"
E = 400.0
nu = 0.2
[micro.layers.rve]
degree = 1
"""
FINITE = CONFIG.format(kinematics="finite", soft="neo_hookean")


def history(directory: Path) -> dict[str, np.ndarray]:
    with (directory / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("finite") if comm.rank == 0 else None))
    config = work / "cfg.toml"
    if comm.rank == 0:
        config.write_text(FINITE)
    comm.barrier()
    assert main(["run", str(config), "--out", str(work / "full"), "--quiet"]) == 0
    return config, work / "full"


def test_complete_run(uninterrupted):
    _, out = uninterrupted
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] and len(summary["steps"]) == 3
    assert summary["rves"]["layers"]["kinematics"] == "finite"
    last = summary["steps"][-1]
    assert last["micro_unstable_points"] == 0 and 0.0 < last["min_micro_stability"] < 2.0
    assert last["ellipticity_lost_points"] == 0
    rows = history(out)
    assert rows["u_right_x"][-1] == pytest.approx(0.6)
    assert rows["F_right_x"][-1] > 0.0 and rows["F_right_y"][-1] > 0.0
    assert (out / "fields" / "macro_points.bp").is_dir()


def test_restart_reproduces_the_run(uninterrupted):
    """Continuing from the checkpoint after step 2 gives the uninterrupted history."""
    config, full = uninterrupted
    again = full.parent / "again"
    if MPI.COMM_WORLD.rank == 0:
        shutil.copytree(full, again)
    MPI.COMM_WORLD.barrier()
    assert main(["run", str(config), "--restart", str(again), "--quiet"]) == 0
    a, b = history(again), history(full)
    assert a.keys() == b.keys() and len(a["step"]) == len(b["step"]) == 3
    force = max(np.abs(v).max() for k, v in b.items() if k.startswith("F_"))
    for key in b:
        assert np.allclose(a[key], b[key], rtol=0, atol=1e-8 * force), key


@pytest.mark.parametrize(
    ("kinematics", "soft", "message"),
    [
        (
            "small",
            "neo_hookean",
            r"\[micro.layers\] answers in finite strain .* kinematics = 'small'",
        ),
        ("finite", "elastic", r"phase\(s\) \['stiff'\] have finite-strain models and \['soft'\]"),
        ("finite", "j2", r"have finite-strain models and \['soft'\] small-strain ones"),
    ],
)
def test_models_of_the_other_kinematics_are_refused(workdir, capsys, kinematics, soft, message):
    text = CONFIG.format(kinematics=kinematics, soft=soft)
    if soft == "j2":
        text = text.replace("nu = 0.3\n", "nu = 0.3\nsigma_y = 1.0\n", 1)
    code, err, out = run_command("run", workdir, text, capsys)
    assert code != 0
    assert not (out / "summary.json").exists()
    if MPI.COMM_WORLD.rank == 0:  # rank 0 prints the error
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err
