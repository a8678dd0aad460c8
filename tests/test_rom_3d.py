"""A 3D FE² with the reduced RVE: the notched bar of ``demos/notched_bar_3d.toml``, coarse, with
a basis trained on a coarse particle cell, against full FE² (the load-displacement curve within
1 %, every committed answer certified, Hill–Mandel at the reduced answers)."""

import json
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from rom_cases import forces, micro_table, write

from fe2x.cli import main
from fe2x.config import read_run_config
from fe2x.io.training_data import read_training_data

pytestmark = pytest.mark.slow  # the set-up samples, reduces and runs FE² twice: ≈ 13 s

RVE = """
[cell]
type = "inclusion"
dim = 3
volume_fraction = 0.2
mesh_size = 0.25
geometry_order = 1
[materials.matrix]
model = "j2"
E = 3.0e9
nu = 0.35
sigma_y = 30.0e6
H = 300.0e6
[materials.inclusion]
E = 70.0e9
nu = 0.2
[rve]
bc = "periodic"
degree = 1
"""
TRAINING = """
[sample]
paths = 12
steps = 6
max_strain = 0.06
[reduce]
modes = 16
cubature_tolerance = 0.01
"""
BAR = """
[macro]
shape = "notched_bar"
dim = 3
length = 20.0e-3
width = 10.0e-3
notch_depth = 2.5e-3
notch_radius = 2.5e-3
thickness = 2.0e-3
mesh_size = 30.0e-3
[[boundary]]
name = "left"
ux = 0.0
uy = 0.0
uz = 0.0
[[boundary]]
name = "right"
ux = 0.3e-3
[loading]
steps = 2
[parallel]
group_size = 1
"""


def micro(model: str = "rve", extra: str = "") -> str:
    """The bar's [micro.particles] table: the cell of RVE, with ``extra`` keys."""
    return micro_table("particles", RVE, model, extra)


@pytest.fixture(scope="module")
def bar_runs(tmp_path_factory):
    """Training paths and basis of the cell of RVE, then full and reduced FE² of the bar (on
    every rank of the world; the full run records each point's strains)."""
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("rom3d") if comm.rank == 0 else None))
    rve = write(work, "rve.toml", RVE + TRAINING)
    for job in ("sample", "reduce"):
        assert main([job, str(rve), "--out", str(work / "offline"), "--quiet"]) == 0
    basis = work / "offline" / "basis.h5"
    output = "[output]\nfields = false\n"
    full = write(
        work,
        "full.toml",
        BAR + micro() + output + "training_data = true\ntraining_fluctuations = false\n",
    )
    reduced = write(work, "reduced.toml", BAR + micro("reduced", f"basis = '{basis}'\n") + output)
    for config, out in ((full, "full"), (reduced, "reduced")):
        assert main(["run", str(config), "--out", str(work / out), "--quiet"]) == 0
    return work, reduced


def test_reduced_3d_fe2_follows_full_fe2(bar_runs):
    """The reduced load-displacement curve within 1 % of full FE² (its largest force)."""
    work, _ = bar_runs
    full, reduced = forces(work / "full"), forces(work / "reduced")
    assert full.shape == reduced.shape == (2,)
    assert np.abs(reduced - full).max() <= 0.01 * np.abs(full).max()


def test_every_committed_answer_is_certified(bar_runs):
    """Each evaluation is a reduced answer or the full RVE's; a reduced answer rejected at
    certification is answered by the full RVE (the step solved again), and every point a step
    committed with a reduced answer has its indicator within the tolerance."""
    work, _ = bar_runs
    summary = json.loads((work / "reduced" / "summary.json").read_text())
    report = summary["reduced_models"]
    tolerance = summary["rves"]["particles"]["reduced"]["indicator_tolerance"]
    assert report["microstructures"] == ["particles"] and len(report["steps"]) == 2
    totals = report["totals"]
    assert totals["evaluations"] == totals["reduced"] + totals["fallbacks"]
    assert totals["evaluations"] == summary["rve_full_solves"] and totals["reduced"] > 0
    assert summary["rve_rejected_at_certification"] == totals["rejected"]
    for step in report["steps"]:
        assert (step["rejected"] > 0) == (step["fallbacks_by_cause"]["indicator"] > 0)
        if step["points_answered_by_full_rve"] == 0:
            assert step["max_indicator"] <= tolerance
    assert summary["certification_resolves"] == sum(1 for s in report["steps"] if s["rejected"])
    rows = (work / "reduced" / "rom_fallbacks.csv").read_text().splitlines()
    assert rows[0] == "step,point,x,y,z,indicator"
    assert len(rows) - 1 == sum(s["points_answered_by_full_rve"] for s in report["steps"])


def test_reduced_answers_satisfy_hill_mandel(bar_runs):
    """Along the strains of the full run's most strained point within the training range, the
    reduced RVE (certified after each step, as in FE²) reports Σ·E = ⟨σ:ε⟩ to round-off, and
    its Σ is the full RVE's within 1 % of ‖Σ‖."""
    work, reduced_config = bar_runs
    data = read_training_data(work / "full" / "training")
    summary = json.loads((work / "reduced" / "summary.json").read_text())
    limit = summary["rves"]["particles"]["reduced"]["strain_limit"]
    norms = np.linalg.norm(data.E, axis=1)
    point = data.point_id[np.argmax(np.where(norms <= limit, norms, -1.0))]
    path = data.E[data.point_id == point][np.argsort(data.step[data.point_id == point])]
    assert np.linalg.norm(path[-1]) > 0.005  # beyond yield
    full = read_run_config(work / "full.toml").micro_factories()["particles"](MPI.COMM_SELF)
    reduced = read_run_config(reduced_config).micro_factories()["particles"](MPI.COMM_SELF)
    for E in path:
        mine, theirs = reduced.solve(E), full.solve(E)
        assert mine.converged and theirs.converged
        assert mine.reason.startswith("reduced")
        assert mine.hill_mandel_residual <= 1e-8
        assert np.linalg.norm(mine.Sigma - theirs.Sigma) <= 0.01 * np.linalg.norm(theirs.Sigma)
        reduced.commit()
        full.commit()
        certified, state = reduced.certify(reduced.get_state())
        assert certified
        reduced.set_state(state)
