"""The jobs behind the command line: a validated config in, result files out."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

from fe2x.config import CellConfig, HomogenizationConfig, as_dict
from fe2x.geometry import RVEMesh, inclusion_cell, laminate_cell, random_cell, read_cell
from fe2x.io.fields import write_unit_strain_fields
from fe2x.io.results import write_json
from fe2x.micro.homogenization import HomogenizationResult, homogenize

logger = logging.getLogger(__name__)


def build_cell(comm: MPI.Comm, cell: CellConfig) -> RVEMesh:
    """Mesh the microstructure a ``[cell]`` table describes."""
    common = {"mesh_size": cell.mesh_size, "geometry_order": cell.geometry_order}
    if cell.type == "inclusion":
        return inclusion_cell(comm, cell.dim, cell.lengths, cell.volume_fraction, **common)
    if cell.type == "laminate":
        return laminate_cell(
            comm,
            cell.dim,
            cell.lengths,
            cell.fractions,
            cell.axis,
            phase_names=cell.phases,
            **common,
        )
    if cell.type == "random":
        return random_cell(
            comm,
            cell.dim,
            cell.lengths,
            cell.volume_fraction,
            seed=cell.seed,
            min_gap=cell.min_gap,
            radius=cell.radius,
            number=cell.number,
            **common,
        )
    return read_cell(comm, cell.path, cell.dim)


def run_homogenize(
    config: HomogenizationConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD
) -> HomogenizationResult:
    """Build the cell, homogenize it, write fields and ``out/result.json`` (last, atomically)."""
    t0 = time.perf_counter()
    cell = build_cell(comm, config.cell)
    meshing = time.perf_counter() - t0
    logger.info("meshed %s cell in %.2f s", config.cell.type, meshing)
    settings = config.homogenize
    result = homogenize(
        cell,
        config.materials,
        bcs=settings.bcs,
        degree=settings.degree,
        solver=settings.solver,
        petsc_options=settings.petsc_options,
    )
    result.timings["meshing"] = meshing
    summary = result.to_dict()
    if settings.write_fields:
        fields = {}
        for bc, response in result.responses.items():
            paths = write_unit_strain_fields(response, out / "fields")
            fields[bc] = [str(p.relative_to(out)) for p in paths]
        summary["fields"] = fields
    summary["config"] = as_dict(config)
    write_json(comm, out / "result.json", summary)
    return result
