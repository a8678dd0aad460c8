"""The command line: a complete run, and one-line errors with no result file for bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command

from fe2x.cli import main

GOOD = """
[cell]
type = "inclusion"
dim = 2
volume_fraction = 0.3
mesh_size = 0.2

[materials.matrix]
E = 3.0e9
nu = 0.35

[materials.inclusion]
E = 70.0e9
nu = 0.2

[homogenize]
bcs = ["periodic", "subc"]
"""


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("homogenize", workdir, text, capsys)


def test_complete_run_writes_result(workdir, capsys):
    code, _, out = run(workdir, GOOD, capsys)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["notation"] == "mandel" and result["dim"] == 2
    assert set(result["bc"]) == {"periodic", "subc"}
    C = np.array(result["bc"]["periodic"]["C_eff"])
    assert C.shape == (3, 3)
    assert result["bc"]["periodic"]["hill_mandel_residual"] < 1e-10
    assert abs(result["volume_fractions"]["inclusion"] - 0.3) < 1e-3
    assert (out / "fields" / "periodic_correctors.bp").is_dir()
    assert "hashin_shtrikman" in result["bounds"]


LAMINATE_ABA = """
[cell]
type = "laminate"
dim = 2
fractions = [0.25, 0.5, 0.25]
phases = ["a", "b", "a"]
mesh_size = 0.25
geometry_order = 1

[materials.a]
E = 1.0
nu = 0.3

[materials.b]
E = 10.0
nu = 0.3
"""


def test_warns_when_the_mesh_loses_inclusion_volume(workdir, capsys, caplog):
    """Straight elements inscribe the circle, so the mesh holds less inclusion than asked and
    the run says so; curved elements keep it, and a laminate (flat layers, a phase in two
    layers) holds its fractions exactly: no warning."""
    straight = GOOD.replace("mesh_size = 0.2", "mesh_size = 0.2\ngeometry_order = 1")
    assert run(workdir, straight, capsys)[0] == 0
    held = json.loads((workdir / "out" / "result.json").read_text())["volume_fractions"]
    assert held["inclusion"] < 0.99 * 0.3
    if MPI.COMM_WORLD.rank == 0:
        assert f"inclusion {held['inclusion']:.4f} (" in caplog.text
        assert "geometry_order = 2" in caplog.text
    for silent in (GOOD, LAMINATE_ABA):
        caplog.clear()
        assert run(workdir, silent, capsys)[0] == 0
        assert "volume fraction" not in caplog.text


BAD_INPUTS = {
    "malformed": ("[cell\ntype = 1", r"malformed TOML"),
    "unknown key": (GOOD.replace("mesh_size", "mesh_sise"), r"unknown key 'mesh_sise'"),
    "unknown table": (GOOD + "\n[solver]\nx = 1\n", r"unknown key 'solver'"),
    "impossible fraction": (
        GOOD.replace("volume_fraction = 0.3", "volume_fraction = 0.9"),
        r"volume_fraction must be in",
    ),
    "fraction out of range": (
        GOOD.replace("volume_fraction = 0.3", "volume_fraction = 1.5"),
        r"volume_fraction = 1.5",
    ),
    "bad poisson": (GOOD.replace("nu = 0.2", "nu = 0.5"), r"nu = 0.5 must lie in"),
    "negative modulus": (GOOD.replace("E = 3.0e9", "E = -3.0e9"), r"E = -3000000000.0"),
    "unknown bc": (GOOD.replace('"subc"]', '"dirichlet"]'), r"bcs = .*expected"),
    "missing phase": (
        GOOD.replace("[materials.inclusion]", "[materials.fibre]"),
        r"missing \['inclusion'\]",
    ),
    "missing mesh file": (
        '[cell]\ntype = "file"\npath = "nowhere.msh"\n[materials.a]\nE = 1.0\nnu = 0.3\n',
        r"mesh file not found",
    ),
    "wrong type": (GOOD.replace("dim = 2", 'dim = "2"'), r"dim = '2': expected 2 or 3"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_error(workdir, capsys, case):
    text, pattern = BAD_INPUTS[case]
    code, err, out = run(workdir, text, capsys)
    assert code != 0
    assert not (out / "result.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("fe2x: error: ")
        assert re.search(pattern, lines[0]), lines[0]


def test_missing_config_file(workdir, capsys):
    code = main(["homogenize", str(workdir / "absent.toml"), "--out", str(workdir / "o")])
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:
        assert "config file not found" in capsys.readouterr().err


def test_non_periodic_mesh_file(workdir, capsys):
    """A mesh whose opposite faces do not match is rejected, naming the file."""
    import gmsh

    mesh_file = workdir / "skew.msh"
    if MPI.COMM_WORLD.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("skew")
        gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [1], name="matrix")
        gmsh.model.mesh.setSize(gmsh.model.getEntities(0), 0.3)
        gmsh.model.mesh.setSize([(0, 3)], 0.05)  # refined near one corner only: faces differ
        gmsh.model.mesh.generate(2)
        gmsh.write(str(mesh_file))
        gmsh.finalize()
    text = (
        f'[cell]\ntype = "file"\npath = "{mesh_file.name}"\n[materials.matrix]\nE = 1.0\nnu = 0.3\n'
    )
    code, err, out = run(workdir, text, capsys)
    assert code != 0
    assert not (out / "result.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        assert "not periodic" in err or "no partner" in err or "periodic" in err
        assert len(err.strip().splitlines()) == 1


def test_help_and_version():
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("runs the console script in a subprocess; serial only")
    exe = [sys.executable, "-m", "fe2x.cli"]
    assert (
        "homogenize"
        in subprocess.run([*exe, "--help"], capture_output=True, text=True, check=True).stdout
    )
    out = subprocess.run(
        [*exe, "homogenize", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "result.json" in out
    version = subprocess.run([*exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("fe2x ")
