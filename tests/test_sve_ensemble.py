"""SVE ensembles: BC ordering per realization, variance decay, rank independence, output files."""

import csv
import json
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.io.sve_files import write_sve_results
from fe2x.materials import IsotropicElastic
from fe2x.sve import SVEStudy, run_sve_study, task_seed

MATERIALS = {"matrix": IsotropicElastic(1.0, 0.3), "inclusion": IsotropicElastic(50.0, 0.25)}


def tiny_study(**kw) -> SVEStudy:
    """Coarse 2D cells, P1 on straight elements: a few tenths of a second per realization.

    Five elements per diameter: a circle meshed with straight edges loses about 3 % of its area
    (with three, ~7 %, more than the volume-fraction check allows)."""
    settings = dict(
        dim=2,
        sizes=[2.0, 4.0],
        realizations=5,
        volume_fraction=0.3,
        materials=MATERIALS,
        min_gap=0.1,
        elements_per_diameter=5.0,
        degree=1,
        geometry_order=1,
        seed=1,
        precision=0.02,
    )
    settings.update(kw)
    return SVEStudy(**settings)


@pytest.fixture(scope="module")
def study():
    return run_sve_study(tiny_study(), MPI.COMM_WORLD)


def test_every_realization_is_present_and_sorted(study):
    keys = [(r.size_index, r.realization) for r in study.realizations]
    assert keys == [(i, k) for i in range(2) for k in range(5)]
    for r in study.realizations:  # the first seed, or a retry's derived seed
        assert r.seed in [task_seed(1, r.size_index, r.realization, a) for a in range(5)]
    for r in study.realizations:
        assert r.volume_fractions["inclusion"] == pytest.approx(0.3, abs=0.02)


def test_kubc_pbc_subc_ordering_for_every_realization(study):
    for r in study.realizations:
        K = {bc: r.property(bc, "bulk") for bc in ("kubc", "periodic", "subc")}
        assert K["kubc"] >= K["periodic"] >= K["subc"]
        scale = np.linalg.norm(r.C["kubc"])
        for stiff, soft in (("kubc", "periodic"), ("periodic", "subc")):
            D = r.C[stiff] - r.C[soft]
            assert np.linalg.eigvalsh(0.5 * (D + D.T)).min() >= -1e-8 * scale


def test_pbc_mean_inside_bracket(study):
    for name in ("bulk", "shear", "C1111"):
        for i in range(2):
            mean = {bc: study.statistics[bc][name][i].mean for bc in study.settings.bcs}
            assert mean["subc"] <= mean["periodic"] <= mean["kubc"]
            assert study.bracket[name][i] == pytest.approx(mean["kubc"] - mean["subc"])
    # the bracket narrows with size
    assert study.bracket["bulk"][1] < study.bracket["bulk"][0]


def test_variance_falls_with_size(study):
    for bc in ("periodic", "kubc"):
        var = study.variances(bc, "bulk")
        assert var[1] < var[0]
        assert study.decay[bc]["bulk"].exponent < 0
        needed = study.realizations_needed[bc]["bulk"]
        assert needed[1] <= needed[0]


def test_ergodicity_compares_equal_volumes(study):
    e = study.ergodicity["periodic"]["bulk"]
    assert e["small_count"] == 4  # (4/2)^2 cells of edge 2 have the volume of one of edge 4
    assert e["small_total_volume"] == e["large_volume"] == 16.0
    assert e["large_value"] == study.realizations[5].property("periodic", "bulk")


def test_homogeneous_random_medium_has_zero_variance():
    same = {"matrix": MATERIALS["matrix"], "inclusion": MATERIALS["matrix"]}
    result = run_sve_study(
        tiny_study(materials=same, sizes=[2.0, 3.0], realizations=3), MPI.COMM_WORLD
    )
    for bc in result.settings.bcs:
        for name in ("bulk", "shear", "C1111"):
            for s in result.statistics[bc][name]:
                assert s.std <= 1e-10 * abs(s.mean)
            assert result.realizations_needed[bc][name] == [1, 1]
    lam_mu = MATERIALS["matrix"].plane_strain_bulk_modulus
    assert result.statistics["periodic"]["bulk"][0].mean == pytest.approx(lam_mu, rel=1e-10)


def _comparable(result):
    return np.array([[r.C[bc] for bc in result.settings.bcs] for r in result.realizations])


@pytest.mark.parametrize("group_size", [1, "world"])
def test_same_results_on_world_groups_and_self(group_size):
    comm = MPI.COMM_WORLD
    gs = comm.size if group_size == "world" else group_size
    settings = tiny_study(sizes=[2.0, 3.0], realizations=2, group_size=gs)
    on_world = run_sve_study(settings, comm)
    on_self = run_sve_study(tiny_study(sizes=[2.0, 3.0], realizations=2), MPI.COMM_SELF)
    a, b = _comparable(on_world), _comparable(on_self)
    assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
    assert [r.seed for r in on_world.realizations] == [r.seed for r in on_self.realizations]


def test_files(study, tmp_path):
    comm = MPI.COMM_WORLD
    directory = Path(comm.bcast(str(tmp_path), root=0))
    paths = write_sve_results(comm, directory, study)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "sve.json",
            "sve_L2.csv",
            "sve_L4.csv",
            "sve_property_vs_size.png",
            "sve_variance_decay.png",
        ]
    )
    if comm.rank == 0:
        data = json.loads((directory / "sve.json").read_text())  # strict: no NaN literals
        assert len(data["realizations"]) == 10
        assert data["statistics"]["periodic"]["bulk"]["mean"][0] == pytest.approx(
            study.statistics["periodic"]["bulk"][0].mean
        )
        with open(directory / "sve_L4.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 5 * 3
        assert {row["bc"] for row in rows} == {"periodic", "kubc", "subc"}
        first = next(row for row in rows if row["bc"] == "kubc")
        r = study.realizations[5]
        assert float(first["bulk"]) == pytest.approx(r.property("kubc", "bulk"), rel=1e-10)
        assert float(first["C1111"]) == pytest.approx(r.C["kubc"][0, 0], rel=1e-10)
        assert float(first["C_11_22"]) == pytest.approx(r.C["kubc"][0, 1], rel=1e-10)
        for png in ("sve_property_vs_size.png", "sve_variance_decay.png"):
            assert (directory / png).read_bytes()[:4] == b"\x89PNG"
    comm.barrier()


def test_settings_errors():
    with pytest.raises(ValueError, match="strictly increasing"):
        tiny_study(sizes=[4.0, 2.0])
    with pytest.raises(ValueError, match="one per size"):
        tiny_study(realizations=[3])
    with pytest.raises(ValueError, match="missing"):
        tiny_study(materials={"matrix": MATERIALS["matrix"]})
    with pytest.raises(ValueError, match="bcs must be"):
        tiny_study(bcs=("periodic", "dirichlet"))
    with pytest.raises(ValueError, match="seed must be"):
        tiny_study(seed=-1)


def test_task_seeds_are_distinct():
    seeds = {task_seed(5, i, r) for i in range(4) for r in range(50)}
    assert len(seeds) == 200
    assert task_seed(5, 1, 2, attempt=1) != task_seed(5, 1, 2)
