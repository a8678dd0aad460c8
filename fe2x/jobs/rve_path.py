"""The ``fe2x rve-path`` job: one nonlinear RVE along a macro loading path.

Small strain in (E, Σ), finite strain in (F̄, P̄).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from fe2x.config import RVEPathConfig, as_dict
from fe2x.errors import SolverError
from fe2x.io.fields import write_micro_fields
from fe2x.io.path_files import path_csv, path_labels, path_summary, plot_path
from fe2x.io.results import write_json, write_on_root
from fe2x.jobs.cells import warn_if_volume_lost, write_cell_data
from fe2x.jobs.solver_options import check_solver_options
from fe2x.jobs.training import TRAINING_DIRECTORY, PathRecorder, training_writer
from fe2x.materials.law import ElasticStiffness
from fe2x.micro.nonlinear import STABILITY, NonlinearRVE
from fe2x.micro.path import LoadPath, PathResult, PathStep, cauchy_stress, drive

__all__ = ["run_rve_path"]

logger = logging.getLogger(__name__)

#: The microstructure name of the path's training data (as of ``fe2x sample``).
PATH_NAME = "rve"


def _stress_scale(config: RVEPathConfig, start: np.ndarray) -> float:
    """A stress for tolerances: the smallest yield stress of the laws, or a strain times modulus.

    Without a law that has a yield stress, it is the largest prescribed value (strains from
    ``start``, the undeformed value) times the stiffest elastic modulus.
    """
    laws = [getattr(m, "small", m) for m in config.materials.values()]  # lifted laws' own
    yields = [m.sigma_y for m in laws if hasattr(m, "sigma_y")]
    if yields:
        return float(min(yields))
    values = np.asarray(config.load.values)
    strain = ~np.asarray(config.load.stress_controlled)
    values = np.abs(np.where(strain, values - start, values))
    moduli = [
        float(np.max(np.abs(m.elastic_stiffness())))
        for m in config.materials.values()
        if isinstance(m, ElasticStiffness)
    ]
    return float(max(values.max() * max(moduli, default=1.0), 1e-300))


def _nonlinear_rve(config: RVEPathConfig, comm: MPI.Comm) -> tuple[Any, NonlinearRVE]:
    """The meshed cell and the nonlinear RVE on it, as the config asks (collective)."""
    t0 = time.perf_counter()
    cell = config.cell.build(comm)
    logger.info("meshed %s cell in %.2f s", config.cell.type, time.perf_counter() - t0)
    rve = config.rve.nonlinear_rve(cell, config.materials, "fe2x_rve_")
    logger.info(
        "nonlinear RVE set up: %d dofs on %d rank(s), %s strain",
        rve.n_dofs,
        comm.size,
        rve.kinematics,
    )
    warn_if_volume_lost(config.cell, rve.volume_fractions(), comm)
    return cell, rve


def _load_path(config: RVEPathConfig) -> LoadPath:
    """The macro loading path of the config's ``[path]``."""
    load = config.load
    return LoadPath(
        np.asarray(load.times),
        np.asarray(load.values),
        np.asarray(load.stress_controlled),
        load.steps,
        load.kinematics,
        np.asarray(load.cauchy) if load.cauchy else None,
    )


def _recorder(
    config: RVEPathConfig, rve: NonlinearRVE, out: Path, comm: MPI.Comm
) -> PathRecorder | None:
    """The recorder of the path's training data, if the config asks for it."""
    if not config.output.training_data:
        return None
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
    return PathRecorder(writer, rve, PATH_NAME, fluctuations)


def _summary(
    result: PathResult, config: RVEPathConfig, path: LoadPath, labels: list[str]
) -> dict[str, Any]:
    """The steps and control of path.json; finite strain adds σ̄ = P̄ F̄ᵀ / det F̄ to each step."""
    dim, kinematics = config.cell.dim, config.load.kinematics
    summary = path_summary(result, dim, path.stress_controlled, kinematics)
    if kinematics == "finite":
        cauchy = np.flatnonzero(config.load.cauchy)
        summary["control"].update({labels[i]: "cauchy" for i in cauchy})
        for record, step in zip(summary["steps"], result.steps, strict=True):
            record["sigma"] = cauchy_stress(step.E, step.Sigma, step.C)[0].tolist()
    return summary


def run_rve_path(config: RVEPathConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD) -> PathResult:
    """Drive the configured RVE along its path; write path.json, path.csv and path.png.

    A path that cannot be completed keeps its converged steps in the files and raises
    SolverError afterwards (non-zero exit).
    """
    check_solver_options(comm, config.path, [("rve", "fe2x_rve_", config.rve.petsc_options)])
    cell, rve = _nonlinear_rve(config, comm)
    load = config.load
    path = _load_path(config)
    dim, kinematics = config.cell.dim, load.kinematics
    labels, w, strain, stress = path_labels(dim, kinematics)  # progress shows tensor values
    driven = [
        i
        for i, s in enumerate(load.stress_controlled)
        if not s and np.any(np.asarray(load.values)[:, i] != path.start[i])
    ]
    recorder = _recorder(config, rve, out, comm)
    t_start = time.perf_counter()
    buckled: list[int] = []

    def progress(index: int, step: PathStep) -> None:
        shown = driven or [0]
        logger.info(
            "step %d  t = %.4g  %s  Newton its %d  control its %d%s  (%.1f s)",
            index + 1,
            step.t,
            "  ".join(
                f"{strain}{labels[i]} = {step.E[i] / w[i]:.4e} "
                f"{stress}{labels[i]} = {step.Sigma[i] / w[i]:.4e}"
                for i in shown
            ),
            step.micro_iterations,
            step.control_iterations,
            f"  cutbacks {step.cutbacks}" if step.cutbacks else "",
            time.perf_counter() - t_start,
        )
        stable = step.diagnostics.get(STABILITY, 1.0)
        if stable <= 0.0 and not buckled:
            buckled.append(index + 1)
            if comm.rank == 0:
                logger.warning(
                    "step %d: the RVE's Jacobian lost positive definiteness (%s = %.3g): "
                    "first-order periodic RVE loses its meaning: micro buckling",
                    index + 1,
                    STABILITY,
                    stable,
                )
        if index + 1 in load.output_steps:
            write_micro_fields(rve.micro_fields(), out / "micro" / f"step{index + 1}.bp", step.t)
        if recorder is not None:
            recorder.record(0, index + 1, step.t, step)

    grain_files = write_cell_data(cell, out)
    try:
        result = drive(rve, path, _stress_scale(config, path.start), on_step=progress)
    finally:
        if recorder is not None:
            recorder.writer.close()
    summary = _summary(result, config, path, labels)
    summary["micro_instability_step"] = buckled[0] if buckled else None
    summary["timings"] = {**rve.timings, "path": time.perf_counter() - t_start}
    summary["n_dofs"] = rve.n_dofs
    summary["n_ranks"] = comm.size
    if grain_files:
        summary["cell_data"] = [str(p.relative_to(out)) for p in grain_files]
    summary["config"] = as_dict(config)
    csv_text = path_csv(result, dim, kinematics)
    write_on_root(comm, out / "path.csv", lambda tmp: tmp.write_text(csv_text))
    write_on_root(
        comm, out / "path.png", lambda tmp: plot_path(result, dim, driven or [0], tmp, kinematics)
    )
    write_json(comm, out / "path.json", summary)
    if not result.completed:
        raise SolverError(
            f"the path stopped early: {result.message} (converged steps kept in {out})"
        )
    return result
