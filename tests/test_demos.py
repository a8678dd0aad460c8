"""Run each demo serially and on two ranks (coarse) and check that its RESULT number agrees."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
DEMO_SCRIPTS = sorted(p.name for p in DEMOS.glob("demo_*.py"))
RESULT = re.compile(r"^RESULT (\S+)$", re.MULTILINE)


def _mpiexec() -> str | None:
    """The mpiexec beside the running Python (the venv's, matching its MPI), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _run(command: list[str], tmp_path: Path) -> float:
    """Run a demo in coarse mode; return the number on its ``RESULT`` line."""
    env = {**os.environ, "FE2X_DEMO_COARSE": "1", "FE2X_DEMO_OUT": str(tmp_path / "out")}
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    results = RESULT.findall(done.stdout)
    assert len(results) == 1, f"expected one RESULT line from {command}:\n{done.stdout}"
    return float(results[0])


def test_demos_are_found():
    expected = {
        "demo_elastoplastic_composite.py",
        "demo_fibre_composite_2d.py",
        "demo_finite_strain.py",
        "demo_laminate.py",
        "demo_particle_composite_3d.py",
        "demo_reduced_fe2.py",
        "demo_thermal_export.py",
        "demo_polycrystal.py",
    }
    assert expected <= set(DEMO_SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", DEMO_SCRIPTS)
def test_demo_serial_and_parallel_agree(script, tmp_path):
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("demos start their own mpiexec; not nested inside an MPI job")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec found")
    demo = str(DEMOS / script)
    serial = _run([sys.executable, demo], tmp_path)
    parallel = _run([mpiexec, "-n", "2", sys.executable, demo], tmp_path)
    assert parallel == pytest.approx(serial, rel=1e-8)
