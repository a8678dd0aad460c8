"""The Slurm templates in `slurm/`, submitted with sbatch to a real single-node Slurm."""

import csv
import json
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from batch_jobs import (
    LAMINATE_FRACTIONS,
    RUN_CONFIG,
    RUN_STEPS,
    assert_laminate_results,
    assert_same_history,
    history_rows,
    signal_after_first_step,
    write_laminate_configs,
)
from slurm_cluster import ensure_commands

pytestmark = pytest.mark.skipif(
    MPI.COMM_WORLD.size > 1, reason="Slurm tests run once, in the serial pass of the suite"
)

TEMPLATES = Path(__file__).resolve().parents[1] / "slurm"


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
    assert history_rows(out / "history.csv") == RUN_STEPS
    assert "starts run.toml" in info.output() and info.restarts == 0


@pytest.mark.parametrize("template", ["fe2x_run.sbatch", "sve_array.sbatch"])
def test_container_refuses_uneven_tasks_per_node(tmp_path, template):
    """With FE2X_IMAGE, tasks spread unevenly over nodes (which ch-run --join cannot count)
    stop the job at once with a message, instead of leaving ranks waiting for peers. (Run by
    bash with the variables Slurm would set: the local Slurm has a single node.)"""
    env = {
        "PATH": "/usr/bin:/bin",
        "FE2X_IMAGE": str(tmp_path / "image"),
        "SLURM_JOB_ID": "7",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_TASKS_PER_NODE": "3,2",
    }
    done = subprocess.run(
        ["bash", str(TEMPLATES / template), "cfg.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert (
        "same number of tasks on every node" in done.stderr and "--ntasks-per-node" in done.stderr
    )


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
    write_laminate_configs(tmp_path / "configs")
    array = slurm.sbatch(
        f"--array=0-{len(LAMINATE_FRACTIONS) - 1}",
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
    assert_laminate_results(tmp_path / "results")
    with (tmp_path / "results" / "ensemble.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["task"]) for r in rows] == list(range(len(LAMINATE_FRACTIONS)))
    for row in rows:
        result = tmp_path / "results" / f"task_{row['task']}" / "result.json"
        C_eff = np.array(json.loads(result.read_text())["bc"]["periodic"]["C_eff"])
        C_csv = [[float(row[f"bc.periodic.C_eff.{i}.{j}"]) for j in range(3)] for i in range(3)]
        assert np.allclose(C_csv, C_eff, rtol=1e-12, atol=0)


def test_signal_checkpoint_requeue(slurm, job_env, tmp_path, uninterrupted):
    """SIGUSR1 (what --signal sends before the time limit) mid-run: fe2x checkpoints and exits
    75, the template requeues the job, the next start restarts from the checkpoint, and the
    history equals the uninterrupted run's."""
    (tmp_path / "run.toml").write_text(RUN_CONFIG)
    job = slurm.sbatch(
        str(TEMPLATES / "fe2x_run.sbatch"), "run.toml", "out", cwd=tmp_path, env=job_env
    )
    signal_after_first_step(slurm, job, tmp_path / "out")
    info = slurm.wait(job, timeout=120)
    output = info.output()
    assert (info.state, info.exit_code) == ("COMPLETED", 0), output
    assert info.restarts == 1 and "requeueing job" in output, output
    assert "continues from out" in output
    assert_same_history(uninterrupted[1], tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["completed"] and summary["n_ranks"] == 2
