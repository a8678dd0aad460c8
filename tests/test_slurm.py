"""The Slurm templates in `slurm/`, submitted with sbatch to a real single-node Slurm."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from reference import laminate_stiffness
from slurm_cluster import (
    SLURM_COMMANDS,
    SLURM_PACKAGES,
    SlurmCluster,
    SlurmError,
    ensure_commands,
)

from fe2x.materials import IsotropicElastic

pytestmark = pytest.mark.skipif(
    MPI.COMM_WORLD.size > 1, reason="Slurm tests run once, in the serial pass of the suite"
)

TEMPLATES = Path(__file__).resolve().parents[1] / "slurm"

# An elastoplastic laminate RVE under a 2D block: many cheap steps, so that a signal sent after
# the first step arrives while the run still has work to do.
RUN_CONFIG = """
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 0.5

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
steps = 24

[micro.composite]
[micro.composite.cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "hard"]
mesh_size = 0.25
geometry_order = 1
[micro.composite.materials.soft]
model = "j2"
E = 3.0e9
nu = 0.3
sigma_y = 30.0e6
H = 300.0e6
[micro.composite.materials.hard]
E = 70.0e9
nu = 0.2
[micro.composite.rve]
degree = 1
"""

HOMOGENIZE_CONFIG = """
[cell]
type = "laminate"
dim = 2
fractions = [{f}, {rest}]
phases = ["soft", "hard"]
mesh_size = 0.25
geometry_order = 1

[materials.soft]
E = 3.0e9
nu = 0.3

[materials.hard]
E = 70.0e9
nu = 0.2

[homogenize]
bcs = ["periodic"]
degree = 1
write_fields = false
"""


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A single-node Slurm with 2 CPUs for the whole session (Debian packages, installed once)."""
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root (slurmd runs jobs as any user)")
    reason = ensure_commands(SLURM_COMMANDS, SLURM_PACKAGES)
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=2)
    start = time.perf_counter()
    try:
        cluster.start()
    except SlurmError as error:
        pytest.skip(f"could not start a local Slurm: {error}")
    print(f"\nlocal Slurm up in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def job_env(slurm) -> dict[str, str]:
    """The environment jobs are submitted with: this venv's fe2x, the test cluster."""
    return {**slurm.env, "FE2X_VENV": sys.prefix}


def read_history(path: Path) -> dict[str, np.ndarray]:
    with (path / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def history_rows(path: Path) -> int:
    try:
        return max(len(path.read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="session")
def uninterrupted(slurm, job_env, tmp_path_factory):
    """The FE² template run once to the end: (job info, output directory)."""
    work = tmp_path_factory.mktemp("fe2x_run")
    (work / "run.toml").write_text(RUN_CONFIG)
    job = slurm.sbatch(str(TEMPLATES / "fe2x_run.sbatch"), "run.toml", "out", cwd=work, env=job_env)
    return slurm.wait(job, timeout=120), work / "out"


def test_shellcheck():
    reason = ensure_commands(("shellcheck",), ("shellcheck",))
    if reason:
        pytest.skip(reason)
    scripts = sorted(TEMPLATES.glob("*.sbatch"))
    assert len(scripts) >= 3
    done = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_fe2_run(uninterrupted):
    """The FE² template completes a run on the 2 tasks of the allocation, as 2 MPI ranks."""
    info, out = uninterrupted
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.output()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] and summary["n_ranks"] == 2
    assert history_rows(out / "history.csv") == 24
    assert "starts run.toml" in info.output() and info.restarts == 0


def test_plain_srun_is_stopped(slurm, job_env, tmp_path):
    """Plain srun (no PMI plugin; MpiDefault=none here) starts 2 singletons: fe2x refuses."""
    (tmp_path / "run.toml").write_text(RUN_CONFIG)
    command = f"{sys.prefix}/bin/fe2x run run.toml --out out"
    job = slurm.sbatch(
        "-n", "2", "-o", "plain.out", f"--wrap=srun -n 2 {command}", cwd=tmp_path, env=job_env
    )
    info = slurm.wait(job, timeout=60)
    assert info.state == "FAILED" and info.exit_code != 0
    output = info.output()
    assert "Slurm started 2 tasks" in output, output
    assert "plain `srun` without a PMI plugin" in output and "srun --mpi=pmi2" in output
    assert not (tmp_path / "out" / "summary.json").exists()


def test_array_and_collect(slurm, job_env, tmp_path):
    """Two laminates as a job array, collected into one CSV: one row per task, each with the
    closed-form laminate stiffness (exact under periodic BCs)."""
    fractions = [0.3, 0.6]
    (tmp_path / "configs").mkdir()
    for task, f in enumerate(fractions):
        text = HOMOGENIZE_CONFIG.format(f=f, rest=round(1.0 - f, 12))
        (tmp_path / "configs" / f"task_{task}.toml").write_text(text)
    array = slurm.sbatch(
        f"--array=0-{len(fractions) - 1}",
        str(TEMPLATES / "sve_array.sbatch"),
        "configs",
        "results",
        cwd=tmp_path,
        env=job_env,
    )
    collect = slurm.sbatch(
        f"--dependency=afterok:{array}",
        str(TEMPLATES / "collect.sbatch"),
        "results",
        "results/ensemble.csv",
        cwd=tmp_path,
        env=job_env,
    )
    assert slurm.wait(array, timeout=90).state == "COMPLETED"
    info = slurm.wait(collect, timeout=30)
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.output()
    with (tmp_path / "results" / "ensemble.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["task"]) for r in rows] == [0, 1]
    phases = [IsotropicElastic(3.0e9, 0.3).stiffness(2), IsotropicElastic(70.0e9, 0.2).stiffness(2)]
    for row, f in zip(rows, fractions, strict=True):
        C = laminate_stiffness([f, 1.0 - f], phases, (0, 2))
        C_csv = np.array(
            [[float(row[f"bc.periodic.C_eff.{i}.{j}"]) for j in range(3)] for i in range(3)]
        )
        assert np.allclose(C_csv, C, rtol=1e-8, atol=1e-8 * np.abs(C).max())


def _has_restart() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "fe2x.cli", "run", "--help"], capture_output=True, text=True
    )
    return "--restart" in done.stdout


def test_signal_checkpoint_requeue(slurm, job_env, tmp_path, uninterrupted):
    """SIGUSR1 (what --signal sends before the time limit) mid-run: fe2x checkpoints and exits
    75, the template requeues the job, the next start restarts from the checkpoint, and the
    history equals the uninterrupted run's."""
    if not _has_restart():
        pytest.skip("needs fe2x run --restart (checkpointing)")
    (tmp_path / "run.toml").write_text(RUN_CONFIG)
    job = slurm.sbatch(
        str(TEMPLATES / "fe2x_run.sbatch"), "run.toml", "out", cwd=tmp_path, env=job_env
    )
    history = tmp_path / "out" / "history.csv"
    deadline = time.monotonic() + 60
    while history_rows(history) < 1:
        assert time.monotonic() < deadline, "no step finished within 60 s"
        time.sleep(0.05)
    # As Slurm does at --signal=USR1@seconds: the signal goes to the job step's tasks.
    slurm.run(["scancel", "--signal=USR1", job])
    slurm.start_requeued_now(job)
    info = slurm.wait(job, timeout=120)
    output = info.output()
    assert (info.state, info.exit_code) == ("COMPLETED", 0), output
    assert info.restarts == 1 and "requeueing job" in output, output
    assert "continues from out" in output
    reference, restarted = read_history(uninterrupted[1]), read_history(tmp_path / "out")
    assert reference.keys() == restarted.keys()
    force = max(np.abs(v).max() for k, v in reference.items() if k.startswith("F_"))
    for key, values in reference.items():
        scale = force if key.startswith("F_") else 1.0
        assert np.allclose(restarted[key], values, rtol=0, atol=1e-8 * scale), key
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["completed"] and summary["n_ranks"] == 2
