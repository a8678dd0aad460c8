"""`fe2x sve`: a tiny study from a config file, and one-line errors for bad input."""

import json
import re
from pathlib import Path

from mpi4py import MPI

import pytest
from conftest import run_command

GOOD = """
[sve]
dim = 2
sizes = [1.5, 2.5]
realizations = 2
volume_fraction = 0.25
elements_per_diameter = 3
degree = 1
geometry_order = 1
seed = 3

[materials.matrix]
E = 1.0
nu = 0.3

[materials.inclusion]
E = 20.0
nu = 0.2
"""


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("sve", workdir, text, capsys)


def test_tiny_study(workdir, capsys):
    code, _, out = run(workdir, GOOD, capsys)
    assert code == 0
    result = json.loads((out / "sve.json").read_text())
    assert len(result["realizations"]) == 4
    assert (out / "sve_variance_decay.png").stat().st_size > 0


BAD = {
    "sizes not increasing": (GOOD.replace("[1.5, 2.5]", "[2.5, 1.5]"), r"strictly increasing"),
    "unknown key": (GOOD.replace("seed = 3", "sead = 3"), r"unknown key 'sead'"),
    "wrong phases": (GOOD.replace("[materials.inclusion]", "[materials.fibre]"), r"'inclusion'"),
    "bad material": (GOOD.replace("E = 20.0", "E = -20.0"), r"E = -20.0"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(workdir, capsys, case):
    text, pattern = BAD[case]
    code, err, out = run(workdir, text, capsys)
    assert code != 0
    assert not (out / "sve.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fe2x: error: "), err
        assert re.search(pattern, lines[0]), lines[0]
