"""`fe2x run`: a complete FE² run from a config file, and one-line errors for bad input."""

import csv
import json
import re
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from configs import PULLED_BLOCK
from conftest import run_command
from reference import laminate_stiffness

from fe2x.config import read_run_config, with_resolution
from fe2x.materials import IsotropicElastic

GOOD = (
    PULLED_BLOCK.format(ux=0.002)
    + """
[loading]
steps = 2

[output]
micro_points = [[1.0, 0.5]]
micro_steps = [2]

[micro.composite]
[micro.composite.cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "hard"]
mesh_size = 0.5
geometry_order = 1
[micro.composite.materials.soft]
E = 3.0e9
nu = 0.3
[micro.composite.materials.hard]
E = 70.0e9
nu = 0.2
[micro.composite.rve]
degree = 1
"""
)


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("run", workdir, text, capsys)


def test_complete_run(workdir, capsys):
    """Elastic layers normal to x, stretched along x with free lateral faces: the block is in
    uniform uniaxial stress, F / height = ε / S_11 with S = C⁻¹ the closed-form laminate
    compliance (plane strain)."""
    code, _, out = run(workdir, GOOD, capsys)
    assert code == 0
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["load_factor"]) for r in rows] == [0.5, 1.0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] and summary["macro_points"] > 0
    fractions = summary["rves"]["composite"]["volume_fractions"]
    assert fractions == pytest.approx({"soft": 0.5, "hard": 0.5}, abs=1e-12)  # flat layers
    assert summary["rve_full_solves"] + summary["rve_shortcut_solves"] > 0
    assert (out / "load_displacement.png").stat().st_size > 0
    assert (out / "fields" / "displacement.bp").is_dir()
    assert len(list((out / "micro").glob("point*_step2.bp"))) == 1  # the RVE at (1, 0.5)
    materials = [IsotropicElastic(3.0e9, 0.3), IsotropicElastic(70.0e9, 0.2)]
    C = laminate_stiffness([0.5, 0.5], [m.stiffness(2) for m in materials], (0, 2))
    strain = 0.002 / 2.0
    force = float(rows[-1]["F_right_x"])
    assert force / 1.0 == pytest.approx(strain / np.linalg.inv(C)[0, 0], rel=1e-8)


BAD = {
    "unknown shape": (GOOD.replace('shape = "block"', 'shape = "sphere"'), r"shape = 'sphere'"),
    "parameter of another shape": (GOOD.replace("lengths", "radius = 1.0\nlengths"), r"radius"),
    "unknown boundary": (
        GOOD.replace('name = "right"', 'name = "east"'),
        r"'east' is not a boundary",
    ),
    "boundary without condition": (GOOD + '[[boundary]]\nname = "top"\n', r"prescribes nothing"),
    "unknown region": (
        GOOD.replace("[micro.composite]\n", '[micro.composite]\nregions = ["core"]\n')
        + '[micro.steel]\nmodel = "elastic"\nE = 2.0e11\nnu = 0.3\nregions = ["body"]\n',
        r"unknown region",
    ),
    "displacement beyond small strain": (
        GOOD.replace("ux = 0.002", "ux = 1e30"),
        r"'right' ux = 1e\+30 exceeds the specimen's size \(2\), far beyond small strain",
    ),
    "bad group size": (GOOD + "[parallel]\ngroup_size = 0\n", r"group_size = 0"),
    "negative yield": (
        GOOD.replace(
            "[micro.composite.materials.soft]\n",
            '[micro.composite.materials.soft]\nmodel = "j2"\nsigma_y = -1.0\n',
        ),
        r"sigma_y",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(workdir, capsys, case):
    text, pattern = BAD[case]
    code, err, out = run(workdir, text, capsys)
    assert code != 0
    assert not (out / "summary.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fe2x: error: "), err
        assert re.search(pattern, lines[0]), lines[0]


def test_group_size_must_divide_ranks(workdir, capsys):
    size = MPI.COMM_WORLD.size
    code, err, _ = run(workdir, GOOD + f"[parallel]\ngroup_size = {size + 1}\n", capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:
        assert "group" in err and len(err.strip().splitlines()) == 1


def test_with_resolution_changes_only_sizes_and_steps(workdir):
    config_file = workdir / "good.toml"
    if MPI.COMM_WORLD.rank == 0:
        config_file.write_text(GOOD)
    MPI.COMM_WORLD.barrier()
    config = read_run_config(config_file)
    finer = with_resolution(config, macro_size=0.25, cell_size=0.1, steps=7)
    assert (finer.macro.mesh_size, finer.micro["composite"].cell.mesh_size, finer.steps) == (
        0.25,
        0.1,
        7,
    )
    assert finer.boundaries == config.boundaries and finer.digest != config.digest
    assert finer.micro["composite"].materials == config.micro["composite"].materials
    assert with_resolution(config) == config
