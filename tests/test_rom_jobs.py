"""The reduced-order jobs end to end: ``fe2x sample`` (the design, rank independence),
training data from ``fe2x rve-path`` and ``fe2x run`` (records that the laws reproduce),
``fe2x reduce`` (one-line errors, no partial files) and FE² of the plate with a hole with the
reduced RVE (within 1 % of full FE², ranks, restart, group size)."""

import json
import re
import shutil
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command
from rom_cases import forces, micro_table, write
from scipy.stats import qmc

from fe2x.cli import main
from fe2x.config import read_run_config
from fe2x.config.rom_tables import read_sample_config
from fe2x.io.training_data import read_training_data
from fe2x.jobs import run_fe2
from fe2x.jobs.sample import run_sample, strain_design
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.reduction import snapshot_fluctuations, snapshot_sequences

ROOT = Path(__file__).resolve().parents[1]

RVE = """
[cell]
type = "inclusion"
dim = 2
volume_fraction = 0.4
mesh_size = 0.14
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
SAMPLE = """
[sample]
paths = 24
steps = 8
max_strain = 0.04
"""
REDUCE = """
[reduce]
modes = 16
cubature_tolerance = 0.01
"""


def replayed_stresses(workdir: Path, data, name: str) -> np.ndarray:
    """Σ of every record with a fluctuation, recomputed here: the laws of the RVE of ``RVE``
    replayed along each point's records, Σ = ⟨σ(E + B x)⟩ (an independent check of what was
    written)."""
    config = read_sample_config(write(workdir, "replay.toml", RVE + SAMPLE), "sample")
    rve = NonlinearRVE(config.cell.build(MPI.COMM_SELF), config.materials, degree=1)
    p = rve.problem
    snapshots = data.fluctuations[name]
    X = snapshot_fluctuations(rve, data, name)  # the file's rows in this RVE's dof order
    row = {int(e): k for k, e in enumerate(snapshots.evaluation)}
    Sigma = np.full_like(data.Sigma, np.nan)
    x = p.P.createVecRight()
    for records in snapshot_sequences(data, name):
        state = p.laws.initial_state()
        for record in records.tolist():
            x.array[:] = X[row[record]]
            p.laws.evaluate(p.strains(x, data.E[record]), state)
            state = p.laws.trial
            Sigma[record] = p.weights @ p.laws.stress / p.volume
    return Sigma


def on_rank_0(task):
    """``task()`` on rank 0 only, its value (or its error, as a failure) on every rank: a failing
    rank 0 does not leave the others waiting in a collective."""
    comm = MPI.COMM_WORLD
    value = error = None
    if comm.rank == 0:
        try:
            value = task()
        except Exception as exc:  # re-raised on every rank below
            error = f"{type(exc).__name__}: {exc}"
    value, error = comm.bcast((value, error))
    assert error is None, error
    return value


# -- fe2x sample ----------------------------------------------------------------------------
@pytest.mark.parametrize("design", ["sobol", "lhs"])
def test_strain_design(design):
    """Unit directions, amplitudes in range and, for LHS, one amplitude in each of the n equal
    bins (the stratification); a seed gives the same design, another seed another."""
    d, a = strain_design(16, 3, design, 5, 0.01, 0.03)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.all((a >= 0.01) & (a <= 0.03))
    if design == "lhs":
        bins = np.floor((a - 0.01) / 0.02 * 16).astype(int)
        assert sorted(bins.tolist()) == list(range(16))
    again = strain_design(16, 3, design, 5, 0.01, 0.03)[0]
    other = strain_design(16, 3, design, 6, 0.01, 0.03)[0]
    assert np.array_equal(again, d) and not np.allclose(other, d)
    # the directions' first moments vanish (uniform on the sphere), roughly at n = 256
    d, _ = strain_design(256, 3, design, 0, 0.0, 1.0)
    assert np.abs(d.mean(axis=0)).max() < 0.1
    assert qmc.discrepancy((d + 1) / 2) < 0.2


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """``fe2x sample`` on every rank of the world (paths spread over groups of one rank)."""
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("sample") if comm.rank == 0 else None))
    config = write(work, "rve.toml", RVE + SAMPLE + REDUCE)
    assert main(["sample", str(config), "--out", str(work / "out"), "--quiet"]) == 0
    return config, work


def test_sample_writes_every_step_of_every_path(sampled):
    """Every path's every step is a record (ids = path, steps 1..8); Σ replayed from the stored
    fluctuations is the recorded one; the records equal a one-rank run's, whatever the
    number of ranks and groups."""
    config, work = sampled
    data = read_training_data(work / "out" / "training")
    summary = json.loads((work / "out" / "sample.json").read_text())
    assert data.E.shape == (24 * 8, 3) and summary["records"] == 24 * 8
    assert sorted(set(data.point_id.tolist())) == list(range(24))
    assert np.array_equal(np.sort(data.step[data.point_id == 3]), np.arange(1, 9))
    assert data.fluctuations["rve"].x.shape == (24 * 8, data.n_dofs["rve"])
    assert np.allclose(replayed_stresses(work, data, "rve"), data.Sigma, rtol=1e-8, atol=0)
    d, a = np.array(summary["directions"]), np.array(summary["amplitudes"])
    last = data.E[(data.point_id == 5) & (data.step == 8)][0]  # "unload": back to 0
    peak = data.E[(data.point_id == 5) & (data.step == 4)][0]
    assert np.allclose(peak, a[5] * d[5], rtol=1e-12) and np.allclose(last, 0.0, atol=1e-15)
    if MPI.COMM_WORLD.size == 1:
        return

    def alone_equal() -> bool:
        serial = work / "serial"
        run_sample(read_sample_config(config, "sample"), serial, MPI.COMM_SELF)
        alone = read_training_data(serial / "training")
        return bool(
            np.array_equal(alone.point_id, data.point_id)
            and np.allclose(alone.Sigma, data.Sigma, rtol=1e-12, atol=0)
            and np.allclose(alone.fluctuations["rve"].x, data.fluctuations["rve"].x, atol=1e-14)
        )

    assert on_rank_0(alone_equal)


# -- training data from rve-path and run -------------------------------------------------------
def test_rve_path_writes_training_data(workdir, capsys):
    """Each converged step of the path is a record with the path.json strain, stress and
    tangent; Σ replayed from its fluctuation is the recorded one."""
    text = (
        RVE
        + """
[path]
times = [0.0, 1.0, 2.0]
steps = 6
E11 = [0.0, 0.02, 0.0]
S22 = 0.0
[output]
training_data = true
"""
    )
    code, err, out = run_command("rve-path", workdir, text, capsys)
    assert code == 0, err
    steps = json.loads((out / "path.json").read_text())["steps"]
    data = read_training_data(out / "training")
    assert data.E.shape[0] == len(steps) == 6
    assert np.allclose(data.E, [s["E"] for s in steps], rtol=1e-12, atol=1e-15)
    assert np.allclose(data.Sigma, [s["S"] for s in steps], rtol=1e-12)
    assert np.allclose(data.C, [s["C"] for s in steps], rtol=1e-12)
    assert data.summaries["equivalent_plastic_strain"][-1] > 0
    replayed = replayed_stresses(workdir, data, "rve")
    assert np.allclose(replayed, data.Sigma, rtol=1e-8, atol=1e-6 * np.abs(data.Sigma).max())


PLATE = """
[macro]
shape = "plate_with_hole"
dim = 2
width = 20.0e-3
height = 20.0e-3
radius = 4.0e-3
mesh_size = 8.0e-3
[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "right"
ux = 0.2e-3
[loading]
steps = 3
"""


def micro(model: str = "rve", extra: str = "") -> str:
    """The plate's [micro.composite] table: the RVE of RVE, with ``extra`` keys."""
    return micro_table("composite", RVE, model, extra)


@pytest.mark.slow
@pytest.mark.parametrize("group_size", [1, 2])
def test_fe2_writes_one_record_per_point_and_step(workdir, capsys, group_size):
    """FE² with training data: every macro point once per converged step; the points answered
    by the elastic shortcut have no fluctuation (and Σ = C_el E there); Σ replayed on one rank
    from the stored fluctuations is the recorded one, also for RVEs distributed over a group
    of 2 (the snapshot rows do not depend on the partition) and for points that migrated
    between groups of 1."""
    if MPI.COMM_WORLD.size % group_size:
        pytest.skip(f"group size {group_size} needs a multiple of {group_size} ranks")
    text = (
        PLATE
        + micro()
        + f"[output]\ntraining_data = true\nfields = false\n[parallel]\ngroup_size = {group_size}\n"
    )
    code, err, out = run_command("run", workdir, text, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    data = read_training_data(out / "training")
    n = summary["macro_points"]
    assert data.E.shape[0] == 3 * n
    for step in (1, 2, 3):
        assert sorted(data.point_id[data.step == step].tolist()) == list(range(n))
    snapshots = data.fluctuations["composite"]
    shortcut = np.setdiff1d(np.arange(data.E.shape[0]), snapshots.evaluation)
    assert shortcut.size > 0 and snapshots.evaluation.size > 0
    C_el = data.C[shortcut[0]]
    assert np.allclose(data.C[shortcut], C_el, rtol=1e-12)
    assert np.allclose(data.Sigma[shortcut], data.E[shortcut] @ C_el.T, rtol=1e-10)
    replayed = replayed_stresses(workdir, data, "composite")
    held = snapshots.evaluation
    assert np.allclose(replayed[held], data.Sigma[held], rtol=1e-7)


# -- fe2x reduce --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def basis(sampled):
    """``fe2x reduce`` on the sampled training data: DIR/basis.h5."""
    config, work = sampled
    assert main(["reduce", str(config), "--out", str(work / "out"), "--quiet"]) == 0
    return work / "out" / "basis.h5"


def test_reduce_reports(basis):
    report = json.loads((basis.parent / "reduce.json").read_text())
    assert report["modes"] == 16 and report["elastic_modes"] == 3
    assert report["energy_captured"] > 0.999
    assert report["training_integration_error"] <= 0.01
    assert 0 < report["cubature_points"] <= report["quadrature_points"]
    assert report["effectivity"] > 0


@pytest.mark.parametrize(
    ("reduce", "match"),
    [
        ("modes = 500", "hold 192 fluctuation snapshots of 'rve'; modes = 500 needs"),
        (
            "modes = 10\ncubature_tolerance = 0.0",
            r"cubature_tolerance = 0.0: expected a number > 0",
        ),
        (
            "modes = 10\nenergy_tolerance = 1e-4",
            "give the basis size by modes or by energy_tolerance",
        ),
        (
            "modes = 10\nmicrostructure = 'fibres'",
            "microstructure = 'fibres' is not in the training",
        ),
        ("modes = 10\ntraining = 'nowhere'", "no training-data file"),
    ],
)
def test_reduce_bad_input(sampled, capsys, reduce, match):
    """One line, exit 2, and no basis file."""
    _, work = sampled
    training = "" if "training =" in reduce else f"training = '{work / 'out' / 'training'}'\n"
    bad = write(work, "bad.toml", RVE + f"[reduce]\n{reduce}\n{training}")
    out = work / "bad_out"
    code = main(["reduce", str(bad), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    if MPI.COMM_WORLD.rank == 0:
        assert len(err.strip().splitlines()) == 1 and re.search(match, err), err
    assert not (out / "basis.h5").exists()


def test_reduce_needs_its_table(sampled, capsys):
    _, work = sampled
    bare = write(work, "bare.toml", RVE)
    assert main(["reduce", str(bare), "--out", str(work / "bare"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert MPI.COMM_WORLD.rank or "fe2x reduce needs a [reduce] table" in err


# -- FE² with the reduced RVE --------------------------------------------------------------------
@pytest.fixture(scope="module")
def plate_runs(basis, sampled):
    """Full and reduced FE² of the coarse plate (on every rank of the world)."""
    _, work = sampled
    full = write(work, "full.toml", PLATE + micro() + "[output]\nfields = false\n")
    reduced = write(
        work,
        "reduced.toml",
        PLATE + micro("reduced", f"basis = '{basis}'\n") + "[output]\nfields = false\n"
        "[checkpoint]\nevery_steps = 1\n",
    )
    for config, out in ((full, "full"), (reduced, "reduced")):
        assert main(["run", str(config), "--out", str(work / out), "--quiet"]) == 0
    return work, reduced


@pytest.mark.slow
def test_reduced_fe2_follows_full_fe2(plate_runs):
    """The load-displacement curve within 1 % of full FE²; the macro Newton converges
    quadratically (the reduced tangent is consistent): the last contraction has order ≥ 1.5
    (measured ≥ 1.75, round-off ends it), and it takes the full run's iterations in steps
    where no answer was rejected at certification, at most two more where the step was solved
    again from its converged state with the rejected points answered by the full RVE (measured
    4 + 2 against 4 in step 3, one point rejected); the summary counts the reduced answers, the
    rejected ones and the full RVE's, and lists where the full RVE answered."""
    work, _ = plate_runs
    full, reduced = forces(work / "full"), forces(work / "reduced")
    assert np.abs(reduced - full).max() <= 0.01 * np.abs(full).max()
    s_full = json.loads((work / "full" / "summary.json").read_text())
    s_red = json.loads((work / "reduced" / "summary.json").read_text())
    report = s_red["reduced_models"]
    for mine, theirs, rom in zip(s_red["steps"], s_full["steps"], report["steps"], strict=True):
        extra = mine["newton_iterations"] - theirs["newton_iterations"]
        assert extra == 0 if rom["rejected"] == 0 else 0 < extra <= 2
        r = np.array(mine["residual_history"]) / mine["residual_history"][0]
        assert np.log(r[-1]) / np.log(r[-2]) >= 1.5
    assert report["microstructures"] == ["composite"] and len(report["steps"]) == 3
    totals = report["totals"]
    assert totals["evaluations"] == totals["reduced"] + totals["fallbacks"] > 0
    assert totals["evaluations"] == s_red["rve_full_solves"]
    assert 0 < totals["rejected"] <= totals["fallbacks"] == totals_by_cause(report)["indicator"]
    assert s_red["rve_rejected_at_certification"] == totals["rejected"]
    resolved_steps = sum(1 for rom in report["steps"] if rom["rejected"])
    assert s_red["certification_resolves"] >= resolved_steps > 0
    assert s_full["rve_rejected_at_certification"] == s_full["certification_resolves"] == 0
    rows = (work / "reduced" / "rom_fallbacks.csv").read_text().splitlines()
    assert rows[0] == "step,point,x,y,indicator"
    assert len(rows) - 1 == sum(s["points_answered_by_full_rve"] for s in report["steps"]) > 0


def totals_by_cause(report: dict) -> dict[str, int]:
    """The fallbacks of all steps by cause."""
    causes = report["steps"][0]["fallbacks_by_cause"]
    return {c: sum(s["fallbacks_by_cause"][c] for s in report["steps"]) for c in causes}


@pytest.mark.slow
def test_reduced_fe2_on_one_rank_is_the_same(plate_runs, monkeypatch):
    """The run on this world's ranks against a run on one rank (rank 0, COMM_SELF; the
    launcher's size is hidden from run_fe2's launch check, which would take COMM_SELF for a
    mislinked MPI)."""
    work, config = plate_runs
    comm = MPI.COMM_WORLD
    if comm.size == 1:
        pytest.skip("compares a parallel run with a serial one")

    def deviation() -> float:
        for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
            monkeypatch.delenv(name, raising=False)
        run_fe2(read_run_config(config), work / "serial", MPI.COMM_SELF)
        serial, parallel = forces(work / "serial"), forces(work / "reduced")
        return float(np.abs(serial - parallel).max() / np.abs(serial).max())

    assert on_rank_0(deviation) <= 1e-8


@pytest.mark.slow
def test_reduced_fe2_restart_equals_uninterrupted(plate_runs):
    """Continuing from the checkpoint after step 2 gives the uninterrupted history (the
    reduced states, full histories included, are checkpointed like any other)."""
    work, config = plate_runs
    comm = MPI.COMM_WORLD
    again = work / "again"
    if comm.rank == 0:
        shutil.rmtree(again, ignore_errors=True)
        shutil.copytree(work / "reduced", again)
    comm.barrier()
    assert main(["run", str(config), "--restart", str(again), "--quiet"]) == 0
    assert np.allclose(forces(again), forces(work / "reduced"), rtol=1e-9)


def test_reduced_model_refuses_groups_and_foreign_bases(plate_runs, sampled, capsys):
    """A group of two ranks, and a basis of another RVE, are refused with one line."""
    work, _ = plate_runs
    basis = work / "out" / "basis.h5"
    comm = MPI.COMM_WORLD
    if comm.size == 2:
        text = PLATE + micro("reduced", f"basis = '{basis}'\n") + "[parallel]\ngroup_size = 2\n"
        grouped = write(work, "grouped.toml", text)
        assert main(["run", str(grouped), "--out", str(work / "g"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert comm.rank or "runs on one rank per RVE group" in err
    other = micro("reduced", f"basis = '{basis}'\n").replace("sigma_y = 30.0e6", "sigma_y = 40.0e6")
    config = write(work, "foreign.toml", PLATE + other)
    code = main(["run", str(config), "--out", str(work / "f"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    if comm.rank == 0:
        assert "was built for other laws (phase 'matrix': sigma_y" in err
        assert len(err.strip().splitlines()) == 1
