"""The jobs the batch tests submit (Slurm templates, with and without a container), and their
results: an FE² run long enough to be signalled mid-way, and a laminate homogenization with a
closed-form answer."""

import csv
import json
import time
from pathlib import Path

import numpy as np
from configs import J2_LAMINATE_RVE, PULLED_BLOCK
from reference import laminate_stiffness
from slurm_cluster import SlurmCluster

from fe2x.materials import IsotropicElastic

# An elastoplastic laminate RVE under a 2D block: many cheap steps, so that a signal sent after
# the first step arrives while the run still has work to do.
RUN_STEPS = 24
RUN_CONFIG = (
    PULLED_BLOCK.format(ux=0.04)
    + f"""
[loading]
steps = {RUN_STEPS}
"""
    + J2_LAMINATE_RVE.format(mesh_size=0.25)
)

# Two-phase periodic laminates: their effective stiffness is known in closed form.
LAMINATE_FRACTIONS = (0.3, 0.6)
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


def read_history(path: Path) -> dict[str, np.ndarray]:
    """``history.csv`` of an FE² output directory, column by column."""
    with (path / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def history_rows(path: Path) -> int:
    """Number of steps written to a ``history.csv`` so far (0 if it does not exist yet)."""
    try:
        return max(len(path.read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


def signal_after_first_step(slurm: SlurmCluster, job: str, out: Path, timeout: float = 60):
    """Send SIGUSR1 to ``job``'s tasks once its first step is done, as ``--signal`` would before
    the time limit, then let the requeued job start at once."""
    deadline = time.monotonic() + timeout
    while history_rows(out / "history.csv") < 1:
        assert time.monotonic() < deadline, f"no step finished within {timeout:.0f} s"
        time.sleep(0.05)
    slurm.run(["scancel", "--signal=USR1", job])
    slurm.start_requeued_now(job)


def assert_same_history(reference: Path, other: Path) -> None:
    """Two FE² runs gave the same history to solver tolerance (forces relative to their max)."""
    expected, actual = read_history(reference), read_history(other)
    assert expected.keys() == actual.keys()
    force = max(np.abs(v).max() for k, v in expected.items() if k.startswith("F_"))
    for key, values in expected.items():
        scale = force if key.startswith("F_") else 1.0
        assert np.allclose(actual[key], values, rtol=0, atol=1e-8 * scale), key


def write_laminate_configs(directory: Path) -> None:
    """``task_<i>.toml`` for each of LAMINATE_FRACTIONS, as ``slurm/sve_array.sbatch`` reads."""
    directory.mkdir(parents=True, exist_ok=True)
    for task, f in enumerate(LAMINATE_FRACTIONS):
        text = HOMOGENIZE_CONFIG.format(f=f, rest=round(1.0 - f, 12))
        (directory / f"task_{task}.toml").write_text(text)


def assert_laminate_results(results: Path) -> None:
    """Each task's ``result.json`` holds the closed-form laminate stiffness (exact under PBC)."""
    phases = [IsotropicElastic(3.0e9, 0.3).stiffness(2), IsotropicElastic(70.0e9, 0.2).stiffness(2)]
    for task, f in enumerate(LAMINATE_FRACTIONS):
        result = json.loads((results / f"task_{task}" / "result.json").read_text())
        C = laminate_stiffness([f, 1.0 - f], phases, (0, 2))
        C_eff = np.array(result["bc"]["periodic"]["C_eff"])
        assert np.allclose(C_eff, C, rtol=1e-8, atol=1e-8 * np.abs(C).max())
