"""The jobs behind the command line: a validated config in, result files out."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import CellConfig, HomogenizationConfig, RVEPathConfig, as_dict
from fe2x.errors import SolverError
from fe2x.geometry import RVEMesh, inclusion_cell, laminate_cell, random_cell, read_cell
from fe2x.io.fields import write_unit_strain_fields
from fe2x.io.path_files import path_csv, path_summary, plot_path
from fe2x.io.results import write_json, write_on_root
from fe2x.materials import component_labels
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.homogenization import HomogenizationResult, homogenize
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, PathResult, PathStep, drive

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


def _stress_scale(config: RVEPathConfig) -> float:
    """A stress for tolerances: the smallest yield stress, else the largest prescribed stress."""
    yields = [m.sigma_y for m in config.materials.values() if isinstance(m, J2Plasticity)]
    if yields:
        return min(yields)
    values = np.abs(np.asarray(config.load.values))
    moduli = [getattr(m, "E", 0.0) for m in config.materials.values()]
    return float(max(values.max() * max(moduli, default=1.0), 1e-300))


def run_rve_path(config: RVEPathConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD) -> PathResult:
    """Drive the configured RVE along its path; write path.json, path.csv and path.png.

    A path that cannot be completed keeps its converged steps in the files and raises
    SolverError afterwards (non-zero exit).
    """
    t0 = time.perf_counter()
    cell = build_cell(comm, config.cell)
    logger.info("meshed %s cell in %.2f s", config.cell.type, time.perf_counter() - t0)
    rve = NonlinearRVE(
        cell,
        config.materials,
        bc=config.rve.bc,
        degree=config.rve.degree,
        petsc_options=config.rve.petsc_options,
    )
    logger.info("nonlinear RVE set up: %d dofs on %d rank(s)", rve.n_dofs, comm.size)
    load = config.load
    path = LoadPath(
        np.asarray(load.times),
        np.asarray(load.values),
        np.asarray(load.stress_controlled),
        load.steps,
    )
    labels = component_labels(config.cell.dim)
    driven = [
        i
        for i, s in enumerate(load.stress_controlled)
        if not s and np.any(np.asarray(load.values)[:, i] != 0)
    ]
    t_start = time.perf_counter()

    def progress(index: int, step: PathStep) -> None:
        shown = driven or [0]
        logger.info(
            "step %d  t = %.4g  %s  Newton its %d  control its %d%s  (%.1f s)",
            index + 1,
            step.t,
            "  ".join(
                f"E{labels[i]} = {step.E[i]:.4e} S{labels[i]} = {step.Sigma[i]:.4e}" for i in shown
            ),
            step.micro_iterations,
            step.control_iterations,
            f"  cutbacks {step.cutbacks}" if step.cutbacks else "",
            time.perf_counter() - t_start,
        )

    result = drive(rve, path, _stress_scale(config), on_step=progress)
    summary = path_summary(result, config.cell.dim, path.stress_controlled)
    summary["timings"] = {**rve.timings, "path": time.perf_counter() - t_start}
    summary["n_dofs"] = rve.n_dofs
    summary["n_ranks"] = comm.size
    summary["config"] = as_dict(config)
    write_on_root(
        comm, out / "path.csv", lambda tmp: tmp.write_text(path_csv(result, config.cell.dim))
    )
    write_on_root(
        comm, out / "path.png", lambda tmp: plot_path(result, config.cell.dim, driven or [0], tmp)
    )
    write_json(comm, out / "path.json", summary)
    if not result.completed:
        raise SolverError(
            f"the path stopped early: {result.message} (converged steps kept in {out})"
        )
    return result
