"""Checkpoints of an FE² run: written after a step, restored on restart, cleared for a fresh run.

Writing keeps the previous, older checkpoint as the fallback; restoring takes the newest usable
one; clearing removes those of an earlier run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.io.checkpoint import (
    CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    Checkpoint,
    restore_latest,
    rotate_and_write,
)
from fe2x.macro.fe2 import FE2Engine

__all__ = ["CHECKPOINT", "PREVIOUS_CHECKPOINT", "clear", "has_checkpoint", "restore", "save"]

logger = logging.getLogger(__name__)


def has_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint to restart from (either file)."""
    return (out / CHECKPOINT).exists() or (out / PREVIOUS_CHECKPOINT).exists()


def clear(comm: MPI.Comm, out: Path) -> None:
    """Remove the checkpoints an earlier run left in ``out``, on rank 0, saying so (collective).

    A fresh run must never be restarted from them.
    """
    if comm.rank == 0:
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            if (out / name).is_file():
                (out / name).unlink()
                logger.info("removed %s of an earlier run", out / name)
    comm.barrier()


def restore(engine: FE2Engine, out: Path, digest: str) -> Checkpoint:
    """Restore ``engine`` from the newest usable checkpoint in ``out`` and return it (collective).

    A damaged one (on any rank, at any stage) falls back to the previous on every rank.
    """
    return restore_latest(engine.layout.world, out, digest, engine.restore)


def save(
    engine: FE2Engine,
    digest: str,
    out: Path,
    rows: list[list[float]],
    number: int,
    load_factor: float,
    increment: float,
    started: float | None,
) -> None:
    """Write ``out/checkpoint.h5`` after step ``number`` (collective).

    Temporaries of killed writers older than ``started`` are removed.
    """
    comm, dim = engine.layout.world, engine.problem.dim
    checkpoint = Checkpoint(
        step=number,
        load_factor=load_factor,
        increment=increment,
        config_digest=digest,
        group_size=engine.layout.group_size,
        coordinates=np.empty((0, dim)),  # gathered from the ranks' parts
        displacement=np.empty((0, dim)),
        point_ids=engine.ids,
        assignment=engine.assignment,
        costs=engine.costs,
        history=rows,
        force_scale=engine.problem.force_scale,
    )
    t0 = time.perf_counter()
    rotate_and_write(comm, out, checkpoint, engine.checkpoint_part(), started=started)
    if comm.rank == 0:
        size = (out / CHECKPOINT).stat().st_size / 2**20
        seconds = time.perf_counter() - t0
        logger.info("checkpoint of step %d written: %.1f MB in %.2f s", number, size, seconds)
