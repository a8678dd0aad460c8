"""The ``fe2x rve-path`` job: one nonlinear RVE along a macro loading path."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import RVEPathConfig, as_dict
from fe2x.errors import SolverError
from fe2x.io.fields import write_micro_fields
from fe2x.io.path_files import path_csv, path_summary, plot_path
from fe2x.io.results import write_json, write_on_root
from fe2x.jobs.cells import warn_if_volume_lost
from fe2x.jobs.training import TRAINING_DIRECTORY, PathRecorder, training_writer
from fe2x.materials import component_labels, mandel_weights
from fe2x.materials.law import ElasticStiffness
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, PathResult, PathStep, drive

__all__ = ["run_rve_path"]

logger = logging.getLogger(__name__)

#: The microstructure name of the path's training data (as of ``fe2x sample``).
PATH_NAME = "rve"


def _stress_scale(config: RVEPathConfig) -> float:
    """A stress for tolerances: the smallest yield stress of the laws that have one, else the
    largest prescribed value times the stiffest elastic modulus."""
    yields = [m.sigma_y for m in config.materials.values() if hasattr(m, "sigma_y")]
    if yields:
        return float(min(yields))
    values = np.abs(np.asarray(config.load.values))
    moduli = [
        float(np.max(np.abs(m.elastic_stiffness())))
        for m in config.materials.values()
        if isinstance(m, ElasticStiffness)
    ]
    return float(max(values.max() * max(moduli, default=1.0), 1e-300))


def run_rve_path(config: RVEPathConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD) -> PathResult:
    """Drive the configured RVE along its path; write path.json, path.csv and path.png.

    A path that cannot be completed keeps its converged steps in the files and raises
    SolverError afterwards (non-zero exit).
    """
    t0 = time.perf_counter()
    cell = config.cell.build(comm)
    logger.info("meshed %s cell in %.2f s", config.cell.type, time.perf_counter() - t0)
    rve = NonlinearRVE(
        cell,
        config.materials,
        bc=config.rve.bc,
        degree=config.rve.degree,
        petsc_options_prefix="fe2x_rve_",
        petsc_options=dict(config.rve.petsc_options),
        linear_solver=config.rve.solver,
    )
    logger.info("nonlinear RVE set up: %d dofs on %d rank(s)", rve.n_dofs, comm.size)
    warn_if_volume_lost(config.cell, rve.volume_fractions(), comm)
    load = config.load
    path = LoadPath(
        np.asarray(load.times),
        np.asarray(load.values),
        np.asarray(load.stress_controlled),
        load.steps,
    )
    dim = config.cell.dim
    labels = component_labels(dim)
    w = mandel_weights(dim)  # progress shows tensor components
    driven = [
        i
        for i, s in enumerate(load.stress_controlled)
        if not s and np.any(np.asarray(load.values)[:, i] != 0)
    ]
    recorder = None
    if config.output.training_data:
        fluctuations = config.output.training_fluctuations
        writer = training_writer(
            out / TRAINING_DIRECTORY,
            rve.n_strain,
            {PATH_NAME: rve},
            rve.diagnostic_names,
            0,
            comm.rank,
            comm.size,
            fluctuations,
        )
        recorder = PathRecorder(writer, rve, PATH_NAME, fluctuations)
    t_start = time.perf_counter()

    def progress(index: int, step: PathStep) -> None:
        shown = driven or [0]
        logger.info(
            "step %d  t = %.4g  %s  Newton its %d  control its %d%s  (%.1f s)",
            index + 1,
            step.t,
            "  ".join(
                f"E{labels[i]} = {step.E[i] / w[i]:.4e} S{labels[i]} = {step.Sigma[i] / w[i]:.4e}"
                for i in shown
            ),
            step.micro_iterations,
            step.control_iterations,
            f"  cutbacks {step.cutbacks}" if step.cutbacks else "",
            time.perf_counter() - t_start,
        )
        if index + 1 in load.output_steps:
            write_micro_fields(rve.micro_fields(), out / "micro" / f"step{index + 1}.bp", step.t)
        if recorder is not None:
            recorder.record(0, index + 1, step.t, step)

    try:
        result = drive(rve, path, _stress_scale(config), on_step=progress)
    finally:
        if recorder is not None:
            recorder.writer.close()
    summary = path_summary(result, dim, path.stress_controlled)
    summary["timings"] = {**rve.timings, "path": time.perf_counter() - t_start}
    summary["n_dofs"] = rve.n_dofs
    summary["n_ranks"] = comm.size
    summary["config"] = as_dict(config)
    write_on_root(comm, out / "path.csv", lambda tmp: tmp.write_text(path_csv(result, dim)))
    write_on_root(comm, out / "path.png", lambda tmp: plot_path(result, dim, driven or [0], tmp))
    write_json(comm, out / "path.json", summary)
    if not result.completed:
        raise SolverError(
            f"the path stopped early: {result.message} (converged steps kept in {out})"
        )
    return result
