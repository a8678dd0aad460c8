"""What the reduced RVEs of an FE² run did, step by step: evaluations, fallbacks, and where.

The fallbacks to the full RVE are counted by cause in ``summary.json``; where they fell back is
in ``rom_fallbacks.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from fe2x.io.results import write_on_root
from fe2x.macro.fe2 import FE2Engine
from fe2x.micro.reduced import ReducedRVE

__all__ = ["FALLBACK_FILE", "ReducedModelReport"]

#: Per step, the macro points whose last evaluation the full RVE answered.
FALLBACK_FILE = "rom_fallbacks.csv"
_CAUSES = ("range", "indicator", "newton")


class ReducedModelReport:
    """Step observer of the reduced RVEs: evaluations, fallbacks by cause, and the points.

    It counts the step's evaluations (all of them, the cut-back attempts, macro Newton
    iterations and re-solves after certification included), its fallbacks by cause (``range``:
    ‖E‖ beyond the training data, ``indicator``: the point was rejected at certification, its
    error estimate above the tolerance, ``newton``: the reduced Newton failed) and the reduced
    answers rejected at certification (``rejected``), and lists the points whose final answer
    of the step came from the full RVE, with their coordinates and indicator.

    Args:
        engine: the FE² engine.
        out: the run's output directory (``rom_fallbacks.csv`` is rewritten after each step).
    """

    def __init__(self, engine: FE2Engine, out: Path) -> None:
        self.engine, self.out = engine, out
        self.models = {n: m for n, m in engine.pool.models.items() if isinstance(m, ReducedRVE)}
        self._previous = self._counts()
        self.steps: list[dict[str, Any]] = []
        self.rows: list[str] = []
        dim = engine.problem.dim
        self.header = "step,point," + ",".join("xyz"[:dim]) + ",indicator"

    def _counts(self) -> np.ndarray:
        """This group's counts (its leader's; other ranks of a group hold zeros)."""
        keys = ("evaluations", "reduced", "rejected", *_CAUSES)
        counts = np.array(
            [[m.counts[k] for k in keys] for m in self.models.values()], dtype=np.int64
        ).sum(axis=0)
        return counts if self.engine.layout.is_leader else np.zeros_like(counts)

    def after_step(self, step: Any) -> None:
        """Record the step's counts and fallback points (collective)."""
        engine = self.engine
        comm = engine.layout.world
        counts = self._counts()
        delta = comm.allreduce(counts - self._previous, op=MPI.SUM)
        self._previous = counts
        fallback = engine.diagnostics.get("rom_fallback", np.zeros(engine.n_points))
        indicator = engine.diagnostics.get("rom_indicator", np.zeros(engine.n_points))
        mine = engine.local_points
        flagged = np.flatnonzero(fallback[mine] > 0.5)
        coordinates = engine.problem.point_coordinates[flagged]
        local = [
            f"{step.number},{int(engine.ids[mine[i]])},"
            + ",".join(f"{c:.9g}" for c in x)
            + f",{indicator[mine[i]]:.6g}"
            for i, x in zip(flagged, coordinates, strict=True)
        ]
        gathered = comm.gather(local, root=0)
        if comm.rank == 0:
            assert gathered is not None, "the root gathers"
            self.rows += sorted((r for part in gathered for r in part), key=_row_key)
        text = "\n".join([self.header, *self.rows]) + "\n"
        write_on_root(comm, self.out / FALLBACK_FILE, lambda tmp: tmp.write_text(text))
        self.steps.append(
            {
                "step": step.number,
                "evaluations": int(delta[0]),
                "reduced": int(delta[1]),
                "rejected": int(delta[2]),
                "fallbacks": int(delta[3:].sum()),
                "fallbacks_by_cause": dict(zip(_CAUSES, map(int, delta[3:]), strict=True)),
                "points_answered_by_full_rve": int(np.sum(fallback > 0.5)),
                "max_indicator": float(np.nanmax(indicator, initial=0.0)),  # NaN: not estimated
            }
        )

    def summary(self) -> dict[str, Any]:
        """The record for ``summary.json``: per step, and the totals."""
        total = {
            key: int(sum(s[key] for s in self.steps))
            for key in ("evaluations", "reduced", "rejected", "fallbacks")
        }
        return {"microstructures": sorted(self.models), "steps": self.steps, "totals": total}

    def close(self) -> None:
        """Nothing to finish (the file is complete after every step)."""


def _row_key(row: str) -> tuple[int, int]:
    step, point = row.split(",")[:2]
    return int(step), int(point)
