"""Cost of an FE² checkpoint: write and read times, file size, and memory per rank.

The micro states are synthetic but shaped like those of a 2D J2 RVE of about 20k dofs (what
``NonlinearRVE.portable_state`` gives: the fluctuation at the nodes, and per plastic phase the
plastic strain, back stress and accumulated plastic strain at every quadrature point), about
3 MB each. Each rank holds ``points / size`` of them, writes the checkpoint with
:func:`fe2x.io.checkpoint.write_checkpoint` and reads back the header and its own states, as a
restart does. Memory is the growth of the peak resident set over the run, per rank: it follows
the rank's own share of the states, not the whole checkpoint.

    .venv/bin/mpiexec -n 2 .venv/bin/python benchmarks/checkpoint.py [--points 64] [--repeat 3]

Writes ``benchmarks/results/checkpoint.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.io.checkpoint import Checkpoint, read_checkpoint, read_micro_states, write_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def rve_state(rng: np.random.Generator, nodes: int, points: int) -> dict:
    """A state of the size of a 2D J2 RVE's: fluctuation at the nodes, history per point."""
    history = {
        "eps_p": rng.random((points, 6)),
        "back_stress": rng.random((points, 6)),
        "alpha": rng.random(points),
    }
    return {"w": rng.random((nodes, 2)), "matrix": history}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64, help="macro points (RVE states)")
    parser.add_argument("--nodes", type=int, default=10_000, help="RVE nodes per state")
    parser.add_argument("--quadrature-points", type=int, default=30_000, help="per state")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest counts")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "checkpoint.json"
    )
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    baseline = comm.allreduce(peak_mb(), op=MPI.MAX)
    rng = np.random.default_rng(comm.rank)
    mine = range(comm.rank, args.points, comm.size)
    states = {p: rve_state(rng, args.nodes, args.quadrature_points) for p in mine}
    held_mb = sum(a.nbytes for s in states.values() for a in (s["w"], *s["matrix"].values()))
    held_mb /= 2**20
    with_states = comm.allreduce(peak_mb(), op=MPI.MAX)
    header = Checkpoint(
        step=1,
        load_factor=0.5,
        increment=0.1,
        config_digest="benchmark",
        group_size=1,
        coordinates=np.zeros((0, 2)),
        displacement=np.zeros((0, 2)),
        point_ids=np.arange(args.points),
        assignment=np.arange(args.points) % comm.size,
        costs=np.ones(args.points),
        history=[[1.0, 0.5]],
    )
    local = {
        "coordinates": np.zeros((0, 2)),
        "displacement": np.zeros((0, 2)),
        "states": states,
        "layouts": {},
    }
    directory = Path(comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None))
    path = directory / "checkpoint.h5"
    writes, reads = [], []
    for _ in range(args.repeat):
        comm.barrier()
        t0 = time.perf_counter()
        write_checkpoint(comm, path, header, local)
        writes.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        comm.barrier()
        t0 = time.perf_counter()
        checkpoint = read_checkpoint(comm, path, "benchmark")
        restored, _ = read_micro_states(comm, checkpoint, list(mine))
        reads.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        assert len(restored) == len(mine)
        del restored
    size_mb = path.stat().st_size / 2**20 if comm.rank == 0 else 0.0
    result = {
        "ranks": comm.size,
        "points": args.points,
        "state_mb": held_mb / max(len(mine), 1),
        "checkpoint_mb": size_mb,
        "write_seconds": min(writes),
        "read_seconds": min(reads),
        "write_mb_per_s": size_mb / min(writes),
        "states_held_per_rank_mb": comm.allreduce(held_mb, op=MPI.MAX),
        "peak_growth_per_rank_mb": comm.allreduce(peak_mb(), op=MPI.MAX) - with_states,
        "peak_before_states_mb": baseline,
    }
    if comm.rank == 0:
        path.unlink()
        directory.rmdir()
        for key, value in result.items():
            print(f"{key:28s} {value:.4g}" if isinstance(value, float) else f"{key:28s} {value}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
