"""What the reduced-FE² tests share: config files written once for all ranks, the micro table of
a cell's config, and the force history of a run."""

import csv
from pathlib import Path

from mpi4py import MPI

import numpy as np


def write(workdir: Path, name: str, text: str) -> Path:
    """``workdir/name`` holding ``text``, written by rank 0 and seen by every rank."""
    path = workdir / name
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(text)
    MPI.COMM_WORLD.barrier()
    return path


def micro_table(name: str, cell: str, model: str = "rve", extra: str = "") -> str:
    """The ``[micro.<name>]`` table of the cell config ``cell``, with ``extra`` keys."""
    lines = [f'[micro.{name}]\nmodel = "{model}"\n{extra}']
    for line in cell.strip().splitlines():
        lines.append(f"[micro.{name}." + line[1:] if line.startswith("[") else line)
    return "\n".join(lines) + "\n"


def forces(directory: Path) -> np.ndarray:
    """The ``F_right_x`` column of a run's ``history.csv``."""
    with (directory / "history.csv").open() as f:
        return np.array([float(r["F_right_x"]) for r in csv.DictReader(f)])
