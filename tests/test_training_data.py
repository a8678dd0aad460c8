"""Training-data files: round trip over several groups (one file per rank), batches and
appending, a killed writer, a distributed RVE's parts merged, plain-h5py reading, and refusal
of corrupt, truncated, foreign and mismatched files."""

import os
import pickle
import signal
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

from mpi4py import MPI

import h5py
import numpy as np
import pytest

from fe2x.io.training_data import (
    FORMAT,
    VERSION,
    Evaluation,
    TrainingDataError,
    TrainingDataWriter,
    read_training_data,
    training_data_path,
)

MICROSTRUCTURES = {"matrix_fibre": 11, "porous": 7}
SUMMARIES = ("newton_iterations", "mean_plastic_strain")


def evaluations(group: int, n_steps: int = 3, points: tuple[int, ...] = (4, 1, 7)):
    """Deterministic evaluations of a group's points, per step: any rank can rebuild any
    group's (the oracle of the reader)."""
    rng = np.random.default_rng(100 + group)
    out = []
    for step in range(n_steps):
        for p in points:
            name = "porous" if p % 2 else "matrix_fibre"
            summaries = {"newton_iterations": float(rng.integers(1, 9))}
            if step > 0:
                summaries["mean_plastic_strain"] = float(rng.uniform())
            out.append(
                Evaluation(
                    point_id=p + 100 * group,
                    step=step,
                    load_factor=0.25 * (step + 1),
                    microstructure=name,
                    E=rng.standard_normal(3),
                    Sigma=rng.standard_normal(3),
                    C=rng.standard_normal((3, 3)),
                    converged=bool(rng.uniform() < 0.8),
                    summaries=summaries,
                    fluctuation=rng.standard_normal(MICROSTRUCTURES[name]) if step != 1 else None,
                )
            )
    return out


def write(path: Path, batches, **kwargs) -> None:
    with TrainingDataWriter(path, 3, MICROSTRUCTURES, SUMMARIES, **kwargs) as writer:
        for batch in batches:
            writer.append(batch)


def expected(records):
    """The records sorted by (step, point id), as the reader must return them."""
    return sorted(records, key=lambda e: (e.step, e.point_id))


def assert_matches(data, records):
    records = expected(records)
    assert data.point_id.tolist() == [e.point_id for e in records]
    assert data.step.tolist() == [e.step for e in records]
    assert data.microstructure.tolist() == [e.microstructure for e in records]
    assert data.converged.tolist() == [e.converged for e in records]
    assert np.array_equal(data.load_factor, [e.load_factor for e in records])
    assert np.array_equal(data.E, np.stack([e.E for e in records]))
    assert np.array_equal(data.Sigma, np.stack([e.Sigma for e in records]))
    assert np.array_equal(data.C, np.stack([e.C for e in records]))
    for name in SUMMARIES:
        want = np.array([e.summaries.get(name, np.nan) for e in records])
        assert np.array_equal(data.summaries[name], want, equal_nan=True)
    for name in MICROSTRUCTURES:
        held = [
            i
            for i, e in enumerate(records)
            if e.microstructure == name and e.fluctuation is not None
        ]
        assert data.fluctuations[name].evaluation.tolist() == held
        want = np.array([records[i].fluctuation for i in held]).reshape(-1, MICROSTRUCTURES[name])
        assert np.array_equal(data.fluctuations[name].x, want)
    assert data.order == ("11", "22", "12")
    assert data.n_dofs == MICROSTRUCTURES


def test_round_trip_one_file_per_rank(workdir):
    """Every rank writes its own group's file in two batches; every rank reads them all."""
    comm = MPI.COMM_WORLD
    records = evaluations(comm.rank)
    try:  # the barrier is reached even if this rank fails, so the ranks stay in step
        write(training_data_path(workdir, comm.rank), [records[:4], records[4:]], group=comm.rank)
    finally:
        comm.barrier()
    data = read_training_data(workdir)
    assert_matches(data, [e for g in range(comm.size) for e in evaluations(g)])
    assert sorted(set(data.group.tolist())) == list(range(comm.size))
    files = [training_data_path(workdir, g) for g in range(comm.size)]
    assert_matches(read_training_data(files[:1]), evaluations(0))


def test_batches_and_appending_after_reopening(tmp_path):
    records = evaluations(0)
    write(tmp_path / "one.h5", [records])
    write(tmp_path / "many.h5", [records[i : i + 2] for i in range(0, len(records), 2)])
    write(tmp_path / "reopened.h5", [records[:5]])
    write(tmp_path / "reopened.h5", [records[5:]], mode="a")
    for name in ("one", "many", "reopened"):
        assert_matches(read_training_data([tmp_path / f"{name}.h5"]), records)
    with pytest.raises(
        TrainingDataError, match=r"cannot append to \S+one\.h5: it has part = 0, this writer 1"
    ):
        TrainingDataWriter(
            tmp_path / "one.h5", 3, MICROSTRUCTURES, SUMMARIES, n_parts=2, part=1, mode="a"
        )
    with pytest.raises(TrainingDataError, match=r"cannot append to \S+one\.h5: it has summaries"):
        TrainingDataWriter(tmp_path / "one.h5", 3, MICROSTRUCTURES, mode="a")


def test_rows_beyond_the_committed_count_are_ignored_and_dropped_on_append(tmp_path):
    """A batch cut short (data written, count not yet updated) is invisible."""
    records = evaluations(0)
    path = tmp_path / "group0.h5"
    write(path, [records[:6]])
    with h5py.File(path, "r+") as f:  # a batch of 3 whose commit never happened
        for key in ("point_id", "E", "C", "summary/newton_iterations"):
            f["evaluations"][key].resize(9, axis=0)
        f["fluctuations/porous/x"].resize(f["fluctuations/porous/x"].shape[0] + 1, axis=0)
    assert_matches(read_training_data([path]), records[:6])
    write(path, [records[6:]], mode="a")
    assert_matches(read_training_data([path]), records)


def test_a_killed_writer_keeps_its_committed_batches(tmp_path):
    """A process killed (SIGKILL, no close) after two batches: both are read back."""
    if MPI.COMM_WORLD.rank > 0:
        return
    path, batches = tmp_path / "group0.h5", tmp_path / "batches.pickle"
    records = evaluations(0)
    batches.write_bytes(pickle.dumps([records[:3], records[3:7]]))
    script = f"""
import os, pickle, signal
from fe2x.io.training_data import TrainingDataWriter
writer = TrainingDataWriter({str(path)!r}, 3, {MICROSTRUCTURES!r}, {SUMMARIES!r})
for batch in pickle.loads(open({str(batches)!r}, "rb").read()):
    writer.append(batch)
os.kill(os.getpid(), signal.SIGKILL)
"""
    # a plain process: outside the launcher's PMI, and without MPI (mpi4py not initialised)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "HYDRA", "MPIR"))}
    env.update(PYTHONPATH=str(Path(__file__).parents[1]), MPI4PY_RC_INITIALIZE="0")
    log = tmp_path / "writer.log"
    with log.open("w") as out:
        run = subprocess.run(
            [sys.executable, "-c", script], env=env, stdout=out, stderr=out, timeout=120
        )
    assert run.returncode == -signal.SIGKILL, log.read_text()
    assert_matches(read_training_data([path]), records[:7])


def write_part(directory: Path, records, part: int, n_parts: int, batches=(5,)) -> None:
    """Part ``part`` of group 0: every evaluation, with the strided dofs ``part::n_parts`` of
    the fluctuations, in batches cut at ``batches``."""
    rows = {name: np.arange(part, n, n_parts) for name, n in MICROSTRUCTURES.items()}
    mine = [
        e._replace(
            fluctuation=None if e.fluctuation is None else e.fluctuation[rows[e.microstructure]]
        )
        for e in records
    ]
    cuts = [0, *batches, len(mine)]
    path = training_data_path(directory, 0, part, n_parts)
    write(
        path,
        [mine[a:b] for a, b in pairwise(cuts)],
        rows=rows,
        part=part,
        n_parts=n_parts,
    )


@pytest.mark.parametrize("n_parts", [MPI.COMM_WORLD.size, 3])
def test_distributed_rve_parts_are_merged(workdir, n_parts):
    """A group of n_parts ranks, its parts spread over the ranks: each part holds every
    evaluation and its share of the fluctuation dofs; the reader rebuilds the full vectors."""
    comm = MPI.COMM_WORLD
    directory = workdir / f"parts{n_parts}"
    records = evaluations(0)
    try:
        for part in range(comm.rank, n_parts, comm.size):
            write_part(directory, records, part, n_parts)
    finally:
        comm.barrier()
    assert_matches(read_training_data(directory), records)


def test_missing_part_is_refused(tmp_path):
    records = evaluations(0)
    for part in (0, 2):
        write_part(tmp_path, records, part, 3)
    with pytest.raises(TrainingDataError, match=r"group 0: part\(s\) \[1\] of 3 missing"):
        read_training_data(tmp_path)


def test_parts_that_committed_different_counts_give_the_common_evaluations(tmp_path):
    """A killed distributed writer whose part 1 committed fewer batches than part 0."""
    records = evaluations(0)
    write_part(tmp_path, records, 0, 2, batches=(6,))
    write_part(tmp_path, records[:6], 1, 2, batches=())
    assert_matches(read_training_data(tmp_path), records[:6])


def test_readable_with_plain_h5py(tmp_path):
    """The documented layout, read with h5py alone."""
    records = evaluations(0)
    path = tmp_path / "group0.h5"
    write(path, [records[:4], records[4:]])
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["format_version"] == VERSION
        assert f.attrs["notation"] == "mandel" and f.attrs["order"] == "11 22 12"
        names = [str(n) for n in f.attrs["microstructures"]]
        assert dict(zip(names, f.attrs["n_dofs"].tolist(), strict=True)) == MICROSTRUCTURES
        assert [str(s) for s in f.attrs["summaries"]] == list(SUMMARIES)
        N = int(f.attrs["n_evaluations"])
        assert N == len(records)
        ev = f["evaluations"]
        assert ev["point_id"][:N].tolist() == [e.point_id for e in records]
        assert [names[i] for i in ev["microstructure"][:N]] == [e.microstructure for e in records]
        assert np.array_equal(ev["C"][:N], np.stack([e.C for e in records]))
        assert ev["converged"][:N].tolist() == [int(e.converged) for e in records]
        g = f["fluctuations/porous"]
        K = int(g.attrs["n_committed"])
        rows = g["evaluation"][:K]
        assert np.array_equal(g["x"][:K], np.stack([records[i].fluctuation for i in rows]))
        assert np.array_equal(g["rows"][...], np.arange(MICROSTRUCTURES["porous"]))


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    records = evaluations(0)
    good = tmp_path / "group0.h5"
    write(good, [records])
    data = good.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingDataError, match=r"truncated.h5 is unreadable or corrupt \("):
        read_training_data([truncated])
    needle = np.stack([e.C for e in records]).tobytes()[:64]  # raw bytes of the C dataset
    assert data.count(needle) == 1
    at = data.index(needle)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(data[:at] + bytes(64) + data[at + 64 :])
    with pytest.raises(TrainingDataError, match=r"corrupt.h5 is unreadable or corrupt \("):
        read_training_data([corrupt])
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("step,point\n")
    with pytest.raises(TrainingDataError, match=r"text\.h5 is unreadable or corrupt"):
        read_training_data([not_hdf5])


def test_other_formats_and_versions_are_refused(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["format"] = "fe2x-checkpoint-3"
    with pytest.raises(TrainingDataError, match=rf"foreign.h5 is not an {FORMAT} file"):
        read_training_data([foreign])
    future = tmp_path / "group0.h5"
    write(future, [evaluations(0)])
    with h5py.File(future, "r+") as f:
        f.attrs["format_version"] = VERSION + 1
    with pytest.raises(
        TrainingDataError, match=rf"version {VERSION + 1}; this fe2x reads version {VERSION}"
    ):
        read_training_data(tmp_path)
    with pytest.raises(TrainingDataError, match="no training-data file"):
        read_training_data([tmp_path / "absent.h5"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingDataError, match=r"no training-data files \(group\*.h5\) in"):
        read_training_data(empty)


def test_files_that_do_not_fit_together_are_refused(tmp_path):
    write(training_data_path(tmp_path, 0), [evaluations(0)])
    with TrainingDataWriter(
        training_data_path(tmp_path, 1), 3, {"porous": 7, "matrix_fibre": 11}, SUMMARIES, group=1
    ):
        pass
    with pytest.raises(
        TrainingDataError, match=r"group1\.h5 has n_dofs \[\('porous', 7\).*group0\.h5"
    ):
        read_training_data(tmp_path)
    write(training_data_path(tmp_path, 1), [evaluations(1)], group=0)
    with pytest.raises(TrainingDataError, match="are both part 0 of group 0"):
        read_training_data(tmp_path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"microstructure": "bone"}, "unknown microstructure 'bone'"),
        ({"E": np.zeros(6)}, r"E, Sigma, C have shapes \(6,\), \(3,\), \(3, 3\)"),
        ({"summaries": {"yield_ratio": 1.0}}, r"unknown summaries \['yield_ratio'\]"),
        ({"fluctuation": np.zeros(5)}, "fluctuation has 5 entries; this writer holds 11 rows"),
    ],
)
def test_bad_evaluations_write_nothing(tmp_path, change, match):
    good = evaluations(0)[0]
    path = tmp_path / "group0.h5"
    with TrainingDataWriter(path, 3, MICROSTRUCTURES, SUMMARIES) as writer:
        with pytest.raises(TrainingDataError, match=match):
            writer.append([good, good._replace(**change)])
        assert writer.n_evaluations == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_strain": 4}, "n_strain = 4 must be 3 .2D. or 6 .3D."),
        ({"microstructures": {}}, "needs at least one microstructure"),
        ({"microstructures": {"a/b": 3}}, "name 'a/b' must be non-empty and contain no '/'"),
        ({"microstructures": {"a": -1}}, "have a negative dof count"),
        ({"summaries": ("p", "p")}, "repeat"),
        (
            {"rows": {"a": [0, 3]}},
            r"rows of microstructure 'a' must be distinct dof indices in \[0, 3\)",
        ),
        ({"rows": {"b": [0]}}, r"rows given for unknown microstructure\(s\) \['b'\]"),
        ({"part": 2, "n_parts": 2}, "part = 2 is not a rank of a group of 2"),
        ({"mode": "r"}, "mode = 'r' must be 'w' or 'a'"),
    ],
)
def test_bad_writer_arguments(tmp_path, kwargs, match):
    arguments = {"n_strain": 3, "microstructures": {"a": 3}, **kwargs}
    with pytest.raises(TrainingDataError, match=match):
        TrainingDataWriter(tmp_path / "group0.h5", **arguments)
