"""Scale-separation and ellipticity diagnostics of `fe2x run`: silent on a smooth problem,
loud where the macro strain varies over the RVE size."""

import json
from pathlib import Path

from mpi4py import MPI

from fe2x.cli import main

ELASTIC_MICRO = """
[micro.matrix]
model = "elastic"
E = 3.0e9
nu = 0.3
"""

SMOOTH = (
    """
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 0.5
degree = 2

[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "right"
ux = 0.002

[loading]
steps = 1

[diagnostics]
rve_size = 0.1
threshold = 0.5
"""
    + ELASTIC_MICRO
)

NOTCHED = (
    """
[macro]
shape = "notched_bar"
dim = 2
length = 4.0
width = 1.0
notch_depth = 0.3
notch_radius = 0.1
mesh_size = 0.25
degree = 2

[[boundary]]
name = "left"
ux = 0.0
uy = 0.0
[[boundary]]
name = "right"
ux = 0.004

[loading]
steps = 1

[diagnostics]
rve_size = 0.1          # the RVE is as large as the notch radius
threshold = 0.5
"""
    + ELASTIC_MICRO
)


def run(workdir: Path, name: str, text: str, caplog) -> tuple[dict, str]:
    config = workdir / f"{name}.toml"
    if MPI.COMM_WORLD.rank == 0:
        config.write_text(text)
    MPI.COMM_WORLD.barrier()
    out = workdir / name
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text()), caplog.text


def test_smooth_problem_reports_nothing(workdir, caplog):
    summary, log = run(workdir, "smooth", SMOOTH, caplog)
    step = summary["steps"][-1]
    assert step["scale_separation"]["max"] < 1e-6
    assert step["ellipticity_lost_points"] == 0
    assert "questionable" not in log and "ellipticity" not in log


def test_notch_comparable_to_the_rve_is_reported(workdir, caplog):
    summary, log = run(workdir, "notched", NOTCHED, caplog)
    step = summary["steps"][-1]
    assert step["scale_separation"]["max"] > 0.5
    assert step["scale_separation"]["n_above"] > 0
    x = step["scale_separation"]["worst_coordinates"][0]
    assert abs(x - 2.0) < 0.5  # at the notches, mid-length
    if MPI.COMM_WORLD.rank == 0:
        assert "scale separation questionable" in log
