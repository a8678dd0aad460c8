"""`fe2x rve-path`: a complete run and one-line errors for bad input."""

import json
import re
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command

from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.path import LoadPath, drive

GOOD = """
[cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "hard"]
mesh_size = 0.5
geometry_order = 1

[materials.soft]
model = "j2"
E = 3.0e9
nu = 0.3
sigma_y = 30.0e6
H = 300.0e6

[materials.hard]
E = 70.0e9
nu = 0.2

[rve]
degree = 1

[path]
times = [0.0, 1.0]
steps = 4
E22 = [0.0, 0.03]
S11 = 0.0
S12 = 0.0
output_steps = [4]
"""


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("rve-path", workdir, text, capsys)


def test_complete_run(workdir, capsys):
    """Layers normal to x loaded along y under Σ11 = Σ12 = 0: a Voigt-type (parallel) mixture."""
    code, _, out = run(workdir, GOOD, capsys)
    assert code == 0
    result = json.loads((out / "path.json").read_text())
    assert result["completed"] and len(result["steps"]) == 4
    assert result["control"] == {"11": "stress", "22": "strain", "12": "stress"}
    last = result["steps"][-1]
    assert last["E"][1] == pytest.approx(0.03)
    assert abs(last["S"][0]) < 1e-6 * 30e6 and abs(last["S"][2]) < 1e-6 * 30e6
    assert np.array(last["C"]).shape == (3, 3)
    assert (out / "path.png").stat().st_size > 0
    assert (out / "micro" / "step4.bp").is_dir()  # micro fields for ParaView
    # Each layer carries the same E22 with σ11 = σ12 = 0 (traction continuity): a material point
    # per layer under the same mixed control gives Σ22 = (σ22_soft + σ22_hard) / 2.
    path = LoadPath(
        np.array([0.0, 1.0]), np.array([[0, 0, 0], [0, 0.03, 0]]), np.array([1, 0, 1], bool), 4
    )
    soft = J2Plasticity(3.0e9, 0.3, 30.0e6, H=300.0e6)
    hard = J2Plasticity(70.0e9, 0.2, 1e30)
    layers = [drive(MaterialPoint(law, 2), path, 30e6).steps for law in (soft, hard)]
    for step, a, b in zip(result["steps"], *layers, strict=True):
        assert step["S"][1] == pytest.approx(0.5 * (a.Sigma[1] + b.Sigma[1]), rel=1e-8)
    assert layers[0][-1].Sigma[1] < 0.5 * 3.0e9 * 0.03  # the soft layer did yield
    rows = (out / "path.csv").read_text().splitlines()
    assert rows[0].startswith("step,t,E_11") and len(rows) == 5


BAD = {
    "negative yield stress": (GOOD.replace("sigma_y = 30.0e6", "sigma_y = -30.0e6"), r"sigma_y"),
    "unknown hardening": (
        GOOD.replace("H = 300.0e6", 'hardening = "exponential"'),
        r"hardening = 'exponential' is unknown",
    ),
    "E and S of one component": (GOOD.replace("S11 = 0.0", "S11 = 0.0\nE11 = 0.0"), r"both given"),
    "all stress": (
        GOOD.replace("E22 = [0.0, 0.03]", "S22 = [0.0, 1.0e6]"),
        r"every component is stress-controlled",
    ),
    "wrong length": (GOOD.replace("E22 = [0.0, 0.03]", "E22 = [0.0, 0.01, 0.02]"), r"one per time"),
    "decreasing times": (GOOD.replace("times = [0.0, 1.0]", "times = [0.0, -1.0]"), r"increase"),
    "unknown component": (GOOD + "E33 = 0.0\n", r"unknown key 'E33'"),
    "unknown solver": (GOOD.replace("degree = 1", 'degree = 1\nsolver = "cg"'), r"solver = 'cg'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(workdir, capsys, case):
    text, pattern = BAD[case]
    code, err, out = run(workdir, text, capsys)
    assert code != 0
    assert not (out / "path.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fe2x: error: "), err
        assert re.search(pattern, lines[0]), lines[0]
