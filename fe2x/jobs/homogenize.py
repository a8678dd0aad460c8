"""The ``fe2x homogenize`` job: the cell's effective stiffness under each boundary condition."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

from fe2x.config import HomogenizationConfig, as_dict
from fe2x.io.fields import write_unit_strain_fields
from fe2x.io.results import write_json
from fe2x.jobs.cells import warn_if_volume_lost, write_cell_data
from fe2x.micro.homogenization import HomogenizationResult, homogenize

__all__ = ["run_homogenize"]

logger = logging.getLogger(__name__)


def run_homogenize(
    config: HomogenizationConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD
) -> HomogenizationResult:
    """Build the cell, homogenize it, write fields (with the cell data of polycrystals: grain
    ids, orientations, ``grains.csv`` and pole figures) and ``out/result.json`` (last,
    atomically)."""
    t0 = time.perf_counter()
    cell = config.cell.build(comm)
    meshing = time.perf_counter() - t0
    logger.info("meshed %s cell in %.2f s", config.cell.type, meshing)
    settings = config.homogenize
    result = homogenize(
        cell,
        config.materials,
        bcs=settings.bcs,
        degree=settings.degree,
        solver=settings.solver,
        petsc_options=dict(settings.petsc_options),
    )
    result.timings["meshing"] = meshing
    warn_if_volume_lost(config.cell, result.rve.volume_fractions, comm)
    summary = result.to_dict()
    if settings.write_fields:
        fields = {}
        for bc, response in result.responses.items():
            paths = write_unit_strain_fields(
                bc, response.fluctuations, response.displacements, out / "fields"
            )
            fields[bc] = [str(p.relative_to(out)) for p in paths]
        summary["fields"] = fields
    grain_files = write_cell_data(cell, out)
    if grain_files:
        summary["cell_data"] = [str(p.relative_to(out)) for p in grain_files]
    summary["config"] = as_dict(config)
    write_json(comm, out / "result.json", summary)
    return result
