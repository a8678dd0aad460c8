"""Mixed control in (F̄, P̄) along a path: the exact laminate in uniaxial stress, the rotation
that a path must fix, inverted material, and `fe2x rve-path` with finite-strain materials."""

import json
import re
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command
from finite_laminate import laminate
from scipy.optimize import brentq

from fe2x.geometry import laminate_cell
from fe2x.materials.hyperelastic import NeoHookean
from fe2x.materials.kinematics import embed_plane_strain
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.nonlinear import STABILITY, NonlinearRVE
from fe2x.micro.path import LoadPath, drive, free_rotations

SOFT = NeoHookean(75.0, 0.3, "soft")
STIFF = NeoHookean(400.0, 0.2, "stiff")
N1 = np.array([1.0, 0.0, 0.0])


def uniaxial(stretch: float, steps: int) -> LoadPath:
    """F11 from 1 to ``stretch``, P22 = 0, F12 = F21 = 0 (plane strain, row-major 11 12 21 22)."""
    values = np.array([[1.0, 0.0, 0.0, 0.0], [stretch, 0.0, 0.0, 0.0]])
    return LoadPath(
        np.array([0.0, 1.0]), values, np.array([False, False, False, True]), steps, "finite"
    )


def laminate_uniaxial(stretch: float) -> tuple[float, float]:
    """The exact laminate under F̄ = diag(λ, F22) with F22 solving P̄22(F22) = 0: (F22, P̄11)."""

    def response(F22: float) -> np.ndarray:
        F = embed_plane_strain(np.array([[stretch, 0.0, 0.0, F22]]))
        return laminate(F, (SOFT, STIFF), (0.5, 0.5), N1).P[0]

    F22 = brentq(lambda f: response(f)[4], 0.3, 1.5, xtol=1e-15, rtol=1e-15)
    return F22, response(F22)[0]


def test_uniaxial_stress_of_the_laminate_is_exact():
    """Stretch across the layers with the lateral stress free: F̄22 and P̄11 at every step are
    those of the exact laminate with P̄22 = 0 solved for F22 by root finding."""
    cell = laminate_cell(
        MPI.COMM_WORLD, 2, [1.0, 1.0], [0.5, 0.5], 0, 0.25, 1, phase_names=["soft", "stiff"]
    )
    rve = NonlinearRVE(cell, {"soft": SOFT, "stiff": STIFF}, degree=1)
    result = drive(rve, uniaxial(1.6, 4), 75.0, rtol=1e-12)
    assert result.completed
    for step in result.steps:
        F22, P11 = laminate_uniaxial(step.E[0])
        assert step.E[3] == pytest.approx(F22, rel=1e-10)
        assert step.Sigma[0] == pytest.approx(P11, rel=1e-9)
        assert abs(step.Sigma[3]) < 1e-11 * 75.0
        assert step.E[1] == step.E[2] == 0.0
        assert 0.0 < step.diagnostics[STABILITY] <= 1.5
    assert result.steps[-1].E[3] < 0.95  # the lateral contraction


def test_a_path_must_fix_the_rotation():
    assert free_rotations(np.array([True, True, True, False])) == [(0, 1)]
    assert free_rotations(np.array([False] * 9)) == []
    assert free_rotations(np.array([0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=bool)) == [(0, 2)]
    with pytest.raises(ValueError, match="F12 and F21 are both stress-controlled"):
        LoadPath(np.array([0.0, 1.0]), np.zeros((2, 4)), np.array([0, 1, 1, 0], bool), 1, "finite")


def test_an_inverting_path_stops_with_a_clear_message():
    """F11 from 1 to −1: the steps beyond F11 = 0 are cut back, then the path stops."""
    values = np.array([[1.0, 0.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 1.0]])
    path = LoadPath(np.array([0.0, 1.0]), values, np.zeros(4, dtype=bool), 4, "finite")
    result = drive(MaterialPoint(SOFT, 2), path, 75.0, max_cutbacks=3)
    assert not result.completed
    assert "det F̄" in result.message and "inverted" in result.message
    assert result.steps and all(s.E[0] > 0.0 for s in result.steps)


CONFIG = """
[cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "stiff"]
mesh_size = 0.25
geometry_order = 1

[materials.soft]
model = "neo_hookean"
E = 75.0
nu = 0.3

[materials.stiff]
model = "neo_hookean"
K = 222.222222222222
G = 166.666666666667

[rve]
degree = 1

[path]
times = [0.0, 1.0]
steps = 3
{path}
"""
UNIAXIAL = "F11 = [1.0, 1.6]\nP22 = 0.0"


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("rve-path", workdir, text, capsys)


def test_rve_path_with_finite_strain_materials(workdir, capsys):
    code, _, out = run(workdir, CONFIG.format(path=UNIAXIAL), capsys)
    assert code == 0
    result = json.loads((out / "path.json").read_text())
    assert result["kinematics"] == "finite" and result["notation"] == "row-major"
    assert result["control"] == {"11": "strain", "12": "strain", "21": "strain", "22": "stress"}
    last = result["steps"][-1]
    assert last["F"][0] == pytest.approx(1.6) and last["F"][1:3] == [0.0, 0.0]
    stiff = NeoHookean.from_bulk_shear(222.222222222222, 166.666666666667)
    assert stiff.E == pytest.approx(400.0) and stiff.nu == pytest.approx(0.2)
    F22, P11 = laminate_uniaxial(1.6)
    assert last["F"][3] == pytest.approx(F22, rel=1e-7)
    assert last["P"][0] == pytest.approx(P11, rel=1e-7)
    assert 0.0 < last["diagnostics"][STABILITY] < 1.5
    assert result["micro_instability_step"] is None
    rows = (out / "path.csv").read_text().splitlines()
    assert rows[0].startswith("step,t,F_11,F_12,F_21,F_22,P_11") and STABILITY in rows[0]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("E11 = [0.0, 0.1]", r"E11: the materials are finite-strain models, driven by F11, P11"),
        ("F11 = [1.0, 1.2]\nP12 = 0.0\nP21 = 0.0", r"rotation in the 1-2 plane is left free"),
        ("F11 = [1.0, -0.5]", r"det F = .* <= 0 at t = .*the path inverts the material"),
        ("F11 = [1.0, 1.2]\nF33 = 1.1", r"unknown key 'F33' for a 2D cell"),
        ("F11 = [1.0, 1.2]\nP11 = 0.0", r"F11 and P11 both given"),
    ],
)
def test_bad_finite_paths_are_refused(workdir, capsys, path, message):
    code, err, _ = run(workdir, CONFIG.format(path=path), capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:  # rank 0 prints the error
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            '[materials.soft]\nmodel = "elastic"\nE = 75.0\nnu = 0.3',
            r"\['stiff'\] have finite-strain models and \['soft'\] small-strain ones",
        ),
        ('[materials.soft]\nmodel = "neo_hookean"\nE = 75.0', r"give E and nu, or K and G"),
    ],
)
def test_bad_finite_materials_are_refused(workdir, capsys, change, message):
    text = CONFIG.format(path=UNIAXIAL)
    table = change.split("\n", 1)[0]
    start = text.index(table)
    end = text.index("\n[", start + 1)
    code, err, _ = run(workdir, text[:start] + change + "\n" + text[end:], capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err
