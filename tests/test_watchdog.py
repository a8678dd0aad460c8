"""An error on one rank only ends a parallel run instead of hanging it (fe2x.parallel.watchdog).

A rank-local error cannot be produced by bad input (fe2x agrees on those), so the fault is
injected: on rank 1 only, reading the config raises, as a bug or a node's failing file system
would, while rank 0 goes on into the run's collective calls.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from mpi4py import MPI

import pytest
from test_field_files import CONFIG
from test_output_dir import BIN, ROOT, TIMEOUT

from fe2x.parallel.watchdog import Watchdog

GRACE = 3.0


def test_every_rank_leaving_keeps_its_code():
    """All ranks arrive: each returns its own exit code, nothing is aborted."""
    assert Watchdog(MPI.COMM_WORLD).leave(0, grace=GRACE) == 0
    assert Watchdog(MPI.COMM_WORLD).leave(2, "agreed error", grace=GRACE) == 2


def run_two_ranks(tmp_path: Path, fault: str) -> tuple[subprocess.CompletedProcess, float]:
    """``fe2x homogenize`` of a small cell on 2 ranks with ``fault`` injected; (result, seconds)."""
    config = tmp_path / "cell.toml"
    config.write_text(CONFIG)
    command = [str(BIN / "mpiexec"), "-n", "2", sys.executable, __file__, str(config), fault]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    return done, time.monotonic() - start


@pytest.mark.parametrize("fault", ["RuntimeError", "Fe2xError"])
def test_an_error_on_one_rank_aborts_the_job(tmp_path, fault):
    """Rank 1 fails alone: the job ends non-zero within the grace time plus start-up, and
    says which rank stopped and why (rank 0, which prints agreed errors, never saw it)."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec in a subprocess; serial only")
    done, seconds = run_two_ranks(tmp_path, fault)
    assert done.returncode != 0, done.stderr[-2000:]
    assert seconds < TIMEOUT / 2, seconds
    assert "rank 1 stopped" in done.stderr and "injected fault" in done.stderr, done.stderr
    assert "aborting the job so that it does not hang" in done.stderr, done.stderr


def test_a_healthy_run_leaves_together(tmp_path):
    """Without the fault the same run ends with exit 0 and no abort."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec in a subprocess; serial only")
    done, _ = run_two_ranks(tmp_path, "none")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "aborting" not in done.stderr, done.stderr


if __name__ == "__main__":
    import fe2x.cli
    import fe2x.parallel.watchdog
    from fe2x.errors import Fe2xError

    config_path, fault = sys.argv[1], sys.argv[2]
    fe2x.parallel.watchdog.GRACE_SECONDS = GRACE
    if fault != "none" and MPI.COMM_WORLD.rank == 1:
        error = {"RuntimeError": RuntimeError, "Fe2xError": Fe2xError}[fault]

        def broken_read(args):
            raise error("injected fault")

        fe2x.cli._read_config = broken_read  # type: ignore[assignment]
    out = Path(config_path).parent / "out"
    sys.exit(fe2x.cli.main(["homogenize", config_path, "--out", str(out), "--quiet"]))
