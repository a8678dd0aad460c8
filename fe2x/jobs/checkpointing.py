"""Checkpoints of an FE² run: writing after a step (keeping the previous one) and restoring the
newest usable one, falling back to the previous when the newest is damaged."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from fe2x.io.checkpoint import Checkpoint, CheckpointError, read_checkpoint, write_checkpoint
from fe2x.macro.fe2 import FE2Engine

__all__ = ["CHECKPOINT", "PREVIOUS_CHECKPOINT", "has_checkpoint", "restore_latest", "save"]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.h5"
PREVIOUS_CHECKPOINT = "checkpoint.prev.h5"


def has_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint to restart from (either file)."""
    return (out / CHECKPOINT).exists() or (out / PREVIOUS_CHECKPOINT).exists()


def restore_latest(engine: FE2Engine, out: Path, digest: str) -> Checkpoint:
    """Restore ``engine`` from the newest usable checkpoint in ``out`` and return it; a corrupt
    one (unreadable, or a micro state failing its checksum) falls back to the previous."""
    comm = engine.layout.world
    try:
        checkpoint = read_checkpoint(comm, out / CHECKPOINT, digest)
        engine.restore(checkpoint)
        return checkpoint
    except CheckpointError as error:
        if not comm.bcast((out / PREVIOUS_CHECKPOINT).exists(), root=0):
            raise
        if comm.rank == 0:
            logger.warning("%s; using the previous checkpoint", error)
    checkpoint = read_checkpoint(comm, out / PREVIOUS_CHECKPOINT, digest)
    engine.restore(checkpoint)
    return checkpoint


def save(
    engine: FE2Engine,
    digest: str,
    out: Path,
    rows: list[list[float]],
    number: int,
    load_factor: float,
    increment: float,
) -> None:
    """Write ``out/checkpoint.h5`` after step ``number``, keeping the last one as the previous
    (collective)."""
    comm, dim = engine.layout.world, engine.problem.dim
    if comm.rank == 0 and (out / CHECKPOINT).exists():
        os.replace(out / CHECKPOINT, out / PREVIOUS_CHECKPOINT)
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
    write_checkpoint(comm, out / CHECKPOINT, checkpoint, engine.checkpoint_part())
    if comm.rank == 0:
        size = (out / CHECKPOINT).stat().st_size / 2**20
        seconds = time.perf_counter() - t0
        logger.info("checkpoint of step %d written: %.1f MB in %.2f s", number, size, seconds)
