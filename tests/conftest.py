"""Test-suite set-up: collective clean-up after each test (PETSc destructors are collective)."""

import gc
from pathlib import Path

from mpi4py import MPI

import pytest


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
    return code, capsys.readouterr().err, out
