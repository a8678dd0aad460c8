"""Test-suite set-up: collective clean-up after each test (PETSc destructors are collective),
shared directories and CLI runner, and the local Slurm of the batch tests."""

import gc
import os
import sys
import time
from pathlib import Path

from mpi4py import MPI

import pytest
from batch_jobs import RUN_CONFIG
from slurm_cluster import SLURM_COMMANDS, SLURM_PACKAGES, SlurmCluster, SlurmError, ensure_commands


@pytest.fixture(autouse=True)
def _collective_cleanup():
    yield
    gc.collect()
    MPI.COMM_WORLD.barrier()


@pytest.fixture
def workdir(tmp_path_factory) -> Path:
    """A temporary directory shared by all ranks."""
    comm = MPI.COMM_WORLD
    return Path(comm.bcast(tmp_path_factory.mktemp("work") if comm.rank == 0 else None, root=0))


def run_command(command: str, workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    """``fe2x COMMAND cfg.toml --out DIR --quiet`` on a config text: (exit code, stderr, DIR)."""
    from fe2x.cli import main

    config = workdir / "cfg.toml"
    if MPI.COMM_WORLD.rank == 0:
        config.write_text(text)
    MPI.COMM_WORLD.barrier()
    out = workdir / "out"
    code = main([command, str(config), "--out", str(out), "--quiet"])
    MPI.COMM_WORLD.barrier()  # rank 0 releases the lock as the run ends: look after that
    return code, capsys.readouterr().err, out


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A single-node Slurm with 2 CPUs for the whole session (Debian packages, installed once)."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the local Slurm is for the serial pass of the suite")
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


@pytest.fixture(scope="session")
def uninterrupted(slurm, job_env, tmp_path_factory):
    """``slurm/fe2x_run.sbatch`` on RUN_CONFIG, run once to the end: (job info, output dir)."""
    work = tmp_path_factory.mktemp("fe2x_run")
    (work / "run.toml").write_text(RUN_CONFIG)
    script = Path(__file__).resolve().parents[1] / "slurm" / "fe2x_run.sbatch"
    job = slurm.sbatch(str(script), "run.toml", "out", cwd=work, env=job_env)
    return slurm.wait(job, timeout=120), work / "out"
