"""Training data from every run: the RVE answers of each converged step, appended to files.

They are the training-data files of :mod:`fe2x.io.training_data`, one file per RVE group (per
rank of a distributed RVE).

What is written is the answer of every macro point at the *end* of each converged step (the
last of its evaluations in that step), not every evaluation: these are the states the history
is committed at, so each point's records form the sequence along which its history can be
replayed (:mod:`fe2x.micro.reduction` needs exactly that), and the intermediate macro Newton
iterates are neither equilibrium states nor on the loading path (they would also multiply the
data by the Newton iteration count). Points answered by the elastic shortcut have no
fluctuation (their state is the virgin one); their E, Σ and C are written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fe2x.io.training_data import Evaluation, TrainingDataWriter, training_data_path
from fe2x.macro.fe2 import FE2Engine
from fe2x.micro.model import FluctuationSnapshots, MicroModel

__all__ = ["TRAINING_DIRECTORY", "PathRecorder", "TrainingCapture", "training_writer"]

logger = logging.getLogger(__name__)

#: The training files' directory in a job's output directory.
TRAINING_DIRECTORY = "training"


def training_writer(
    directory: Path,
    n_strain: int,
    models: Mapping[str, MicroModel],
    summaries: tuple[str, ...],
    group: int,
    part: int,
    n_parts: int,
    fluctuations: bool,
    append: bool = False,
) -> TrainingDataWriter:
    """The training-data writer of one group rank for ``models`` (by microstructure name).

    The strain has Mandel size ``n_strain``; fluctuation rows come from the models that have
    them (none if not ``fluctuations``).
    """
    sizes, rows = {}, {}
    for name, model in models.items():
        if fluctuations and isinstance(model, FluctuationSnapshots):
            sizes[name], rows[name] = model.fluctuation_rows
        else:
            sizes[name], rows[name] = 0, np.zeros(0, dtype=np.int64)
    return TrainingDataWriter(
        training_data_path(directory, group, part, n_parts),
        n_strain,
        sizes,
        summaries,
        rows,
        group=group,
        part=part,
        n_parts=n_parts,
        mode="a" if append else "w",
    )


class TrainingCapture:
    """FE² step observer: every macro point's answer of each converged step, to a training file.

    The file is its group's (``out/training/group<g>.h5``; parts per rank of distributed RVEs).

    Args:
        engine: the FE² engine (its pool keeps each step's last answers from now on).
        out: the run's output directory.
        fluctuations: also write the fluctuation fields.
        append: continue the files of an earlier part of the run (a restart).
    """

    def __init__(self, engine: FE2Engine, out: Path, fluctuations: bool, append: bool) -> None:
        layout, pool = engine.layout, engine.pool
        self.engine, self.fluctuations = engine, fluctuations
        pool.keep_answers = True
        self.writer = training_writer(
            out / TRAINING_DIRECTORY,
            engine.problem.n_strain,
            pool.models,
            pool.diagnostic_names,
            layout.group_index,
            layout.group.rank,
            layout.group_size,
            fluctuations,
            append,
        )
        self._snapshots = {
            name: fluctuations and c.snapshots for name, c in pool.capabilities.items()
        }
        if layout.world.rank == 0:
            logger.info("training data to %s", out / TRAINING_DIRECTORY)

    def after_step(self, step: Any) -> None:
        """Append the step's answers of this group's points (and this rank's fluctuation rows)."""
        pool = self.engine.pool
        names = pool.diagnostic_names
        batch = []
        for point in sorted(pool.committed_answers):
            answer = pool.committed_answers[point]
            state = pool.committed.get(point)
            model = pool.models[answer.name]
            x = None
            if state is not None and self._snapshots[answer.name]:
                x = model.fluctuation(state)  # type: ignore[attr-defined]
            own = pool.capabilities[answer.name].diagnostics
            summaries = {
                d: float(v) for d, v in zip(names, answer.diagnostics, strict=True) if d in own
            }
            batch.append(
                Evaluation(
                    point,
                    step.number,
                    step.load_factor,
                    answer.name,
                    answer.E,
                    answer.Sigma,
                    answer.C,
                    answer.converged,
                    summaries,
                    x,
                )
            )
        self.writer.append(batch)

    def close(self) -> None:
        """Close the file."""
        self.writer.close()


class PathRecorder:
    """Training data of one micro model driven along paths (``fe2x rve-path``, ``fe2x sample``).

    Each converged step of path ``point_id`` is one record (collective for distributed RVEs).

    Args:
        writer: the group rank's writer (:func:`training_writer`).
        model: the micro model.
        name: its microstructure name in the file.
        fluctuations: also write the fluctuation field.
    """

    def __init__(
        self, writer: TrainingDataWriter, model: MicroModel, name: str, fluctuations: bool
    ) -> None:
        self.writer, self.model, self.name = writer, model, name
        self.snapshots = fluctuations and isinstance(model, FluctuationSnapshots)
        self.diagnostics = getattr(model, "diagnostic_names", None) is not None

    def record(self, point_id: int, number: int, t: float, step: Any) -> None:
        """Append step ``number`` (at time ``t``) of path ``point_id``.

        The model's committed state is that step's (``step`` has E, Sigma and C).
        """
        model = self.model
        x = model.fluctuation(model.get_state()) if self.snapshots else None  # type: ignore[attr-defined]
        summaries = model.diagnostics() if self.diagnostics else None  # type: ignore[attr-defined]
        self.writer.append(
            [
                Evaluation(
                    point_id, number, t, self.name, step.E, step.Sigma, step.C, True, summaries, x
                )
            ]
        )
