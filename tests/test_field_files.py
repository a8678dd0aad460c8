"""Field files (VTX/ADIOS2) fail like every other result file: one line, no abort.

Without the guard of :mod:`fe2x.io.vtx`, a full disk made ADIOS2 throw from ``write``, again
from ``close`` and then from the writer's destructor, ending ``fe2x homogenize`` in
``std::terminate`` (exit 134) after two tracebacks.
"""

import os
import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest
from dolfinx import fem, mesh
from test_output_dir import BIN, ROOT, TIMEOUT, can_mount_tmpfs

from fe2x.io.results import OutputError
from fe2x.io.vtx import FieldFile, abandoned, end_if_abandoned, step_bytes

CONFIG = """
[cell]
type = "inclusion"
dim = 2
volume_fraction = 0.3
mesh_size = 0.08

[materials.matrix]
E = 1.0
nu = 0.3

[materials.inclusion]
E = 10.0
nu = 0.2

[homogenize]
bcs = ["periodic"]
"""


def unit_field(comm: MPI.Comm) -> fem.Function:
    domain = mesh.create_unit_square(comm, 4, 4)
    u = fem.Function(fem.functionspace(domain, ("Lagrange", 1, (2,))), name="u")
    u.x.array[:] = 1.0
    return u


def test_a_field_file_under_a_file_is_refused_before_adios2(workdir):
    """A .bp folder under a regular file: OutputError naming it on every rank, before ADIOS2
    opens anything (nothing kept that would abort the process later)."""
    comm = MPI.COMM_WORLD
    blocker = workdir / "blocker"
    if comm.rank == 0:
        blocker.write_text("a file, not a directory")
    comm.barrier()
    u = unit_field(comm)
    with pytest.raises(OutputError, match=f"cannot write {blocker / 'u.bp'}: .* not a directory"):
        FieldFile(comm, blocker / "u.bp", [u])
    assert not abandoned()


def failing_adios2(directory: Path) -> str:
    """With the checks of FieldFile off, write under a file: what this rank saw."""
    FieldFile._check_space = lambda self, needed: None  # let ADIOS2 meet the failure
    comm = MPI.COMM_WORLD
    blocker = directory / "blocker"
    if comm.rank == 0:
        blocker.write_text("a file, not a directory")
    comm.barrier()
    try:
        with FieldFile(comm, blocker / "u.bp", [unit_field(comm)]) as fields:
            fields.write(0.0)
        return "no error"
    except OutputError as error:
        return f"OutputError: {error}; abandoned {abandoned()}"


@pytest.mark.parametrize("ranks", [1, 2])
def test_an_adios2_failure_is_one_output_error_and_no_abort(tmp_path, ranks):
    """ADIOS2 failing in a write: OutputError on every rank, and end_if_abandoned ends the
    process with the given status instead of std::terminate's 134."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec in a subprocess; serial only")
    command = [str(BIN / "mpiexec"), "-n", str(ranks), sys.executable, __file__, str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "terminate" not in done.stderr, done.stderr[-2000:]
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    expected = f"OutputError: cannot write {tmp_path / 'blocker' / 'u.bp'}: "
    assert len(lines) == ranks, done.stdout
    assert all(line.split(": ", 1)[1].startswith(expected) for line in lines), lines
    assert all(line.endswith("abandoned True") for line in lines), lines


def test_a_field_file_writes_steps(workdir):
    """Two steps of a field are written and the file closed; the size estimate covers the
    values (8 bytes each) and the mesh."""
    comm = MPI.COMM_WORLD
    u = unit_field(comm)
    path = workdir / "steps.bp"
    with FieldFile(comm, path, [u]) as fields:
        fields.write(0.0)
        u.x.array[:] = 2.0
        fields.write(1.0)
    assert (path / "md.idx").exists()
    values = 8 * 2 * 25
    assert step_bytes([u], with_mesh=False) == values
    assert step_bytes([u], with_mesh=True) > values + 8 * 3 * 25


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_full_disk_stops_homogenize_with_one_line(tmp_path, ranks):
    """``fe2x homogenize`` with fields into a 300 kB tmpfs: exit 2, no traceback, no abort,
    the last line names the field file and the space left."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts mpiexec in a subprocess; serial only")
    if not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (needs unshare and mount rights)")
    config = tmp_path / "cell.toml"
    config.write_text(CONFIG)
    disk = tmp_path / "disk"
    disk.mkdir()
    fe2x = [str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "fe2x"), "homogenize"]
    fe2x += [str(config), "--out", str(disk / "out"), "--quiet"]
    script = 'mount -t tmpfs -o size=300k tmpfs "$0" && exec "$@"'
    command = ["unshare", "-m", "sh", "-c", script, str(disk), *fe2x]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "terminate" not in done.stderr, done.stderr
    assert lines[-1].startswith("fe2x: error: cannot write "), lines
    assert "periodic_correctors.bp: no space left on device" in lines[-1], lines
    assert all(line.startswith("fe2x:") for line in lines), lines


if __name__ == "__main__":
    seen = failing_adios2(Path(sys.argv[1]))
    lines = MPI.COMM_WORLD.gather(f"rank {MPI.COMM_WORLD.rank}: {seen}", root=0)
    if MPI.COMM_WORLD.rank == 0:  # one writer: mpiexec may interleave two ranks' output
        print("\n".join(lines), flush=True)
    end_if_abandoned(3)
