"""The ``fe2x sample`` job: one RVE driven along designed macro strain paths, for training data.

The paths are spread over groups of ranks, and no macro problem is needed.

Path k goes through the knots of ``[sample] shape`` times A_k d_k: the unit direction d_k in
Mandel strain space and the amplitude A_k ∈ [min_strain, max_strain] come from one point of a
scrambled Sobol' or Latin-hypercube design in n + 1 dimensions (n the Mandel size): its first n
coordinates mapped to a standard normal vector and normalised (uniform on the sphere), the last
one scaled to the amplitude range. Path k is driven by group k mod n_groups; each converged step
is one record of the group's training file (point id k, step number, time).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np
import scipy.special
from scipy.stats import qmc

from fe2x.config.rom_tables import PATH_SHAPES, SampleConfig, SampleTable
from fe2x.errors import Fe2xError
from fe2x.io.results import write_json
from fe2x.jobs.solver_options import check_solver_options
from fe2x.jobs.training import TRAINING_DIRECTORY, PathRecorder, training_writer
from fe2x.micro.path import LoadPath, PathStep, drive
from fe2x.parallel.layout import GroupLayout, split_groups

__all__ = ["SAMPLE_NAME", "run_sample", "strain_design"]

logger = logging.getLogger(__name__)

#: The microstructure name of sampled training data.
SAMPLE_NAME = "rve"


def strain_design(
    n_paths: int, n: int, design: str, seed: int, min_strain: float, max_strain: float
) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions ``(n_paths, n)`` and amplitudes ``(n_paths,)`` of the paths (module notes).

    >>> d, a = strain_design(8, 3, "sobol", 0, 0.01, 0.02)
    >>> bool(np.allclose(np.linalg.norm(d, axis=1), 1.0)), bool(((a >= 0.01) & (a <= 0.02)).all())
    (True, True)
    """
    if design == "sobol":
        sampler: qmc.QMCEngine = qmc.Sobol(d=n + 1, scramble=True, seed=seed)
    elif design == "lhs":
        sampler = qmc.LatinHypercube(d=n + 1, seed=seed)
    else:
        raise Fe2xError(f"unknown design {design!r}; allowed: sobol, lhs")
    with warnings.catch_warnings():  # Sobol' balance wants powers of 2: any count is allowed
        warnings.simplefilter("ignore", UserWarning)
        u = sampler.random(n_paths)
    tiny = np.finfo(float).eps
    g = scipy.special.ndtri(np.clip(u[:, :n], tiny, 1.0 - tiny))
    directions = g / np.linalg.norm(g, axis=1, keepdims=True)
    return directions, min_strain + (max_strain - min_strain) * u[:, n]


def _drive_group_paths(
    config: SampleConfig,
    settings: SampleTable,
    out: Path,
    layout: GroupLayout,
    directions: np.ndarray,
    amplitudes: np.ndarray,
) -> tuple[list[dict[str, Any]], int, dict[str, float]]:
    """Drive this group's paths (k mod n_groups = group index) into its training file.

    Returns the record of each path, the RVE's dofs and the seconds of set-up and paths.
    """
    n = directions.shape[1]
    knots = np.asarray(PATH_SHAPES[settings.shape])
    times = np.arange(knots.size, dtype=float)
    mine = [k for k in range(settings.paths) if k % layout.n_groups == layout.group_index]
    records: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    rve = config.rve.nonlinear_rve(
        config.cell.build(layout.group), config.materials, "fe2x_rve_sample_"
    )
    seconds["setup"] = time.perf_counter() - t0
    writer = training_writer(
        out / TRAINING_DIRECTORY,
        n,
        {SAMPLE_NAME: rve},
        rve.diagnostic_names,
        layout.group_index,
        layout.group.rank,
        layout.group_size,
        settings.fluctuations,
    )
    recorder = PathRecorder(writer, rve, SAMPLE_NAME, settings.fluctuations)
    initial = rve.get_state()
    t0 = time.perf_counter()
    with writer:
        for k in mine:
            rve.set_state(initial)
            path = LoadPath(
                times,
                np.outer(knots, amplitudes[k] * directions[k]),
                np.zeros(n, dtype=bool),
                settings.steps,
            )

            def on_step(i: int, s: PathStep, k: int = k) -> None:
                recorder.record(k, i + 1, s.t, s)

            result = drive(
                rve,
                path,
                1.0,  # every component is strain-controlled: no stress tolerance needed
                on_step=on_step,
            )
            records.append(
                {
                    "path": k,
                    "group": layout.group_index,
                    "steps": len(result.steps),
                    "completed": result.completed,
                    "message": result.message,
                }
            )
    seconds["paths"] = time.perf_counter() - t0
    return records, rve.n_dofs, seconds


def run_sample(config: SampleConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD) -> dict[str, Any]:
    """Drive the configured RVE along the ``[sample]`` paths, write its training data and report.

    They are ``out/training/`` and ``out/sample.json`` (the design and, per path, its group and
    the steps reached).

    A path whose RVE fails is kept up to its last converged step and reported; an error on any
    group (e.g. a file that cannot be written) raises on every rank.
    """
    settings = config.sample
    if settings is None:
        raise Fe2xError(f"{config.path}: fe2x sample needs a [sample] table")
    check_solver_options(comm, config.path, [("rve", "fe2x_rve_", config.rve.petsc_options)])
    t_start = time.perf_counter()
    layout = split_groups(comm, settings.group_size)
    n = 3 if config.cell.dim == 2 else 6
    directions, amplitudes = strain_design(
        settings.paths, n, settings.design, settings.seed, settings.min_strain, settings.max_strain
    )
    logger.info(
        "sampling %d %s paths over %d group(s) of %d rank(s)",
        settings.paths,
        settings.shape,
        layout.n_groups,
        layout.group_size,
    )
    records: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    error, n_dofs = None, 0
    try:
        records, n_dofs, seconds = _drive_group_paths(
            config, settings, out, layout, directions, amplitudes
        )
    except Exception as e:  # reported collectively below, so no group is left waiting
        error = f"sampling on group {layout.group_index}: {type(e).__name__}: {e}"
    gathered = comm.allgather((records if layout.is_leader else [], error, seconds))
    layout.free()
    errors = [e for _, e, _ in gathered if e]
    if errors:
        raise Fe2xError(errors[0])
    paths = sorted((r for recs, _, _ in gathered for r in recs), key=lambda r: r["path"])
    summary = {
        "paths": paths,
        "directions": directions.tolist(),
        "amplitudes": amplitudes.tolist(),
        "shape": settings.shape,
        "design": settings.design,
        "seed": settings.seed,
        "steps_per_path": settings.steps,
        "n_dofs": n_dofs,
        "n_ranks": comm.size,
        "group_size": settings.group_size,
        "microstructure": SAMPLE_NAME,
        "records": int(sum(r["steps"] for r in paths)),
        "incomplete_paths": [r["path"] for r in paths if not r["completed"]],
        "timings": {
            "total": time.perf_counter() - t_start,
            "paths_slowest_group": max(s.get("paths", 0.0) for _, _, s in gathered),
        },
    }
    write_json(comm, out / "sample.json", summary)
    return summary
