"""The ``fe2x run`` job: macro specimen, RVE groups, adaptive load steps and result files."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from fe2x.config import RunConfig, as_dict
from fe2x.errors import ConfigError, SolverError
from fe2x.fem.quadrature import tag_of_cells
from fe2x.io.checkpoint import CheckpointError
from fe2x.io.grains import write_grains
from fe2x.io.results import write_json
from fe2x.jobs import checkpointing
from fe2x.jobs.cells import warn_if_volume_lost
from fe2x.jobs.observers import (
    Checkpointer,
    ConvergedStep,
    Diagnostician,
    FieldWriter,
    HistoryWriter,
    Interrupted,
    MicroFieldWriter,
    StepLog,
    StepObserver,
    StopRequest,
)
from fe2x.jobs.reduced_report import ReducedModelReport
from fe2x.jobs.solver_options import check_solver_options
from fe2x.jobs.training import TrainingCapture
from fe2x.macro.fe2 import FE2Engine, StepAbandoned
from fe2x.macro.problem import DirichletSpec, MacroProblem, StepResult, TractionSpec
from fe2x.macro.stepping import SteppingResult, run_load_steps
from fe2x.parallel.layout import check_launch, split_groups

__all__ = ["REQUEUE_STATUS", "Interrupted", "run_fe2"]

logger = logging.getLogger(__name__)

REQUEUE_STATUS = 75  # EX_TEMPFAIL: "checkpointed, run me again with --restart"


def _point_microstructures(config: RunConfig, specimen: Any, problem: MacroProblem) -> list[str]:
    """The microstructure name of every owned macro point, from the cell regions."""
    if len(config.micro) == 1 and not next(iter(config.micro.values())).regions:
        return [next(iter(config.micro))] * problem.n_points
    by_region = {r: name for name, m in config.micro.items() for r in m.regions}
    unknown = [r for r in by_region if r not in specimen.regions]
    if unknown:
        raise ConfigError(
            f"{config.path}: unknown region(s) {unknown}; the specimen has {list(specimen.regions)}"
        )
    nq = problem.points_per_cell
    tags = tag_of_cells(specimen.cell_tags, problem.n_points // nq, default=0)
    name_of_tag = {tag: by_region.get(region) for region, tag in specimen.regions.items()}
    names = [name_of_tag.get(int(t)) for t in tags]
    if any(n is None for n in names):
        missing = sorted({r for r, t in specimen.regions.items() if name_of_tag[t] is None})
        raise ConfigError(f"{config.path}: region(s) {missing} have no microstructure")
    return [n for n in names if n is not None for _ in range(nq)]


def _macro_problem(config: RunConfig, specimen: Any) -> MacroProblem:
    """The macro problem on the specimen, with the config's boundary conditions."""
    dirichlet, tractions = [], []
    small = config.macro.kinematics == "small"
    extent = _specimen_extent(specimen.mesh) if small else np.inf
    for spec in config.boundaries:
        if spec.name not in specimen.boundaries:
            raise ConfigError(
                f"{config.path}: [[boundary]] {spec.name!r} is not a boundary of the specimen; "
                f"it has {list(specimen.boundaries)}"
            )
        tag = specimen.boundaries[spec.name]
        if small:
            _check_small_displacement(config, spec.name, spec.displacement, extent)
        dirichlet += [DirichletSpec(tag, c, v) for c, v in spec.displacement.items()]
        if spec.traction is not None:
            tractions.append(TractionSpec(tag, spec.traction))
    return MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        config.macro.dim,
        degree=config.macro.degree,
        dirichlet=dirichlet,
        tractions=tractions,
        kinematics=config.macro.kinematics,
    )


def _specimen_extent(mesh: Any) -> float:
    """The largest edge of the specimen's bounding box (collective)."""
    x = mesh.geometry.x
    low, high = x.min(axis=0, initial=np.inf), x.max(axis=0, initial=-np.inf)
    mesh.comm.Allreduce(MPI.IN_PLACE, low, op=MPI.MIN)
    mesh.comm.Allreduce(MPI.IN_PLACE, high, op=MPI.MAX)
    return float(np.max(high - low))


def _check_small_displacement(
    config: RunConfig, name: str, displacement: dict[int, float], extent: float
) -> None:
    """Refuse a small-strain run whose prescribed displacement exceeds the specimen's size.

    Such a load means strains of order one or more, where small-strain kinematics is no longer
    a model of anything.
    """
    for component, value in displacement.items():
        if abs(value) > extent:
            raise ConfigError(
                f"{config.path}: [[boundary]] {name!r} u{'xyz'[component]} = {value:g} exceeds "
                f"the specimen's size ({extent:g}), far beyond small strain; prescribe less or "
                f'set [macro] kinematics = "finite"'
            )


#: A group of several ranks shares one RVE's solves; below these sizes (dofs, by dimension) it
#: is slower than one rank per RVE (measured with benchmarks/groups.py: a 2-rank group pays off
#: from a few 10k dofs in 2D and about 10k in 3D; the README gives the figures).
GROUP_MIN_DOFS = {2: 50_000, 3: 10_000}


def _describe_models(config: RunConfig, engine: FE2Engine) -> dict[str, Any]:
    """What each micro model says of itself (dofs, volume fractions), logged (collective).

    It warns when a group of several ranks holds an RVE too small to gain from it.
    """
    described = {}
    comm = engine.layout.world
    size, dim = engine.layout.group_size, config.macro.dim
    for name, model in engine.pool.models.items():  # the same names in every group
        if not engine.pool.capabilities[name].described:
            continue
        described[name] = facts = model.describe()  # type: ignore[attr-defined]
        fractions = facts.get("volume_fractions", {})
        text = ", ".join(f"{k} {v:.4f}" for k, v in fractions.items())
        logger.info("RVE %s: %d dofs, volume fractions %s", name, facts.get("dofs", 0), text)
        cell = getattr(config.micro[name], "cell", None)
        if cell is not None and fractions:
            warn_if_volume_lost(cell, fractions, comm)
        dofs = facts.get("dofs", 0)
        if size > 1 and 0 < dofs < GROUP_MIN_DOFS[dim] and comm.rank == 0:
            logger.warning(
                "RVE %s has %d dofs: a group of %d ranks is slower for it than one rank per "
                "RVE (from about %d dofs in %dD a group pays off); consider group_size = 1",
                name,
                dofs,
                size,
                GROUP_MIN_DOFS[dim],
                dim,
            )
    return described


def _write_grains(engine: FE2Engine, out: Path) -> None:
    """``<name>_grains.csv`` and ``<name>_pole_figures.png`` of each microstructure with grains.

    Those are the microstructures whose micro fields hold grains; the files come from the RVE of
    the first group (collective over that group).
    """
    if engine.layout.group_index != 0:
        return
    for name, model in engine.pool.models.items():
        if engine.pool.capabilities[name].fields:
            write_grains(model.micro_fields(), out, f"{name}_")  # type: ignore[attr-defined]


def _run_summary(
    result: SteppingResult,
    config: RunConfig,
    engine: FE2Engine,
    models: dict,
    per_step: list,
    times: dict[str, float],
) -> dict:
    """summary.json of an FE² run: outcome, layout, per-step records, counts and times.

    ``times`` is followed by the split of the work (collective; per-rank maxima, the critical
    path of each part, except the sum of the micro solves).
    """
    comm, layout, problem, stats = engine.layout.world, engine.layout, engine.problem, engine.stats
    timings = problem.timings

    def total(value: float) -> float:
        return comm.allreduce(value, op=MPI.SUM)

    def slowest(value: float) -> float:
        return comm.allreduce(value, op=MPI.MAX)

    return {
        "completed": result.completed,
        "message": result.message,
        "n_ranks": comm.size,
        "group_size": layout.group_size,
        "n_groups": layout.n_groups,
        "macro_points": engine.n_points,
        "microstructures": engine.names,
        "rves": models,
        "steps": per_step,
        "cutbacks": result.cutbacks,
        "rve_full_solves": total(stats.full_solves),
        "rve_shortcut_solves": total(stats.shortcut_solves),
        "rve_rejected_at_certification": total(stats.rejected_points),
        "certification_resolves": stats.certification_resolves,
        "micro_newton_iterations": total(stats.micro_iterations),
        "migrated_points": stats.migrated_points,
        "timings": {
            **times,
            "micro_solves": slowest(stats.micro_seconds),
            "micro_solves_sum": total(stats.micro_seconds),
            "waiting": slowest(stats.waiting_seconds),
            "communication": slowest(stats.communication_seconds),
            "macro_assembly": slowest(
                timings["residual"] + timings["jacobian"] - timings["constitutive"]
            ),
            "macro_solve": slowest(timings["solve"] - timings["residual"] - timings["jacobian"]),
        },
        "config": as_dict(config),
    }


def _preflight(config: RunConfig, out: Path, comm: MPI.Comm, restart: bool) -> None:
    """Check the launch, the checkpoint to restart from and the RVE solver options (collective).

    A fresh run then removes the checkpoints an earlier run left in ``out``.
    """
    check_launch(MPI.COMM_WORLD)  # the launcher's processes, whatever comm the run is given
    if restart and not comm.bcast(checkpointing.has_checkpoint(out)):
        raise CheckpointError(f"no checkpoint at {out / checkpointing.CHECKPOINT}")
    rves = [
        (f"micro.{n}.rve", f"fe2x_rve_{n}_", m.rve.petsc_options)
        for n, m in config.micro.items()
        if hasattr(m, "rve")
    ]
    check_solver_options(comm, config.path, rves)
    if not restart:
        checkpointing.clear(comm, out)


def _engine(config: RunConfig, comm: MPI.Comm, stop: StopRequest) -> tuple[Any, FE2Engine, float]:
    """The specimen, the FE² engine on it and the seconds its micro models took to set up."""
    specimen = config.macro.build(comm)
    problem = _macro_problem(config, specimen)
    layout = split_groups(comm, config.group_size)
    t0 = time.perf_counter()
    engine = FE2Engine(
        problem,
        layout,
        _point_microstructures(config, specimen, problem),
        config.micro_factories(),
        balance=config.balance,
        shortcut=config.elastic_shortcut,
        stop_requested=lambda: stop.requested,
        end_time=config.end_time,
    )
    setup_seconds = time.perf_counter() - t0
    logger.info(
        "FE²: %d macro points, %d RVE group(s) of %d rank(s), microstructures %s",
        engine.n_points,
        layout.n_groups,
        layout.group_size,
        engine.names,
    )
    return specimen, engine, setup_seconds


def _resume(
    config: RunConfig, engine: FE2Engine, out: Path
) -> tuple[list[list[float]], float, float | None, int]:
    """History rows, load factor, next increment and first step number of a restarted run."""
    checkpoint = checkpointing.restore(engine, out, config.digest)
    rows = [[int(r[0]), *r[1:]] for r in checkpoint.history]
    logger.info(
        "restarting after step %d at load factor %.6g", checkpoint.step, checkpoint.load_factor
    )
    return rows, checkpoint.load_factor, checkpoint.increment, checkpoint.step + 1


def _follow_load_steps(
    config: RunConfig,
    engine: FE2Engine,
    observers: list[StepObserver],
    checkpointer: Checkpointer,
    stop: StopRequest,
    out: Path,
    start: float,
    increment: float | None,
    first_step: int,
) -> SteppingResult:
    """The adaptive load steps, each converged one handed to every observer, closed at the end.

    A signal abandons the step in progress: the last converged step is checkpointed and
    :class:`Interrupted` raised.
    """
    clock = [time.perf_counter()]

    def after_step(number: int, step: StepResult, cutbacks: int, increment: float) -> None:
        converged = ConvergedStep(number, step, cutbacks, increment, time.perf_counter() - clock[0])
        for observer in observers:
            observer.after_step(converged)
        clock[0] = time.perf_counter()

    # The handlers stay installed until the last checkpoint is written: a second signal
    # during that write must not kill the run with 15 instead of 75.
    with stop:
        try:
            return run_load_steps(
                engine.step,
                config.steps,
                config.max_cutbacks,
                before_step=engine.rebalance,  # type: ignore[arg-type]  # its imbalance unused
                after_step=after_step,
                start=start,
                increment=increment,
                first_step=first_step,
            )
        except StepAbandoned:
            checkpointer.save_last()
            number = checkpointer.last[0]
            raise Interrupted(
                f"stopped by a signal during step {number + 1}, which was abandoned; checkpoint "
                f"of step {number} written, continue with `fe2x run CONFIG --restart {out}`"
            ) from None
        finally:
            for observer in observers:
                observer.close()


def run_fe2(
    config: RunConfig,
    out: Path,
    comm: MPI.Comm = MPI.COMM_WORLD,
    restart: bool = False,
    started: float | None = None,
) -> SteppingResult:
    """The FE² job: macro specimen, RVE groups, adaptive load steps and result files.

    Writes ``out/history.csv`` after every converged step, macro fields under ``out/fields``,
    and ``out/summary.json`` and ``out/load_displacement.png`` at the end; a run that cannot
    proceed keeps these for its last converged step and raises SolverError. Checkpoints go to
    ``out/checkpoint.h5`` as the config asks, and when SIGTERM or SIGUSR1 arrives: the run then
    abandons the step in progress at its next micro evaluation (or, arriving after the last
    one, finishes it), writes one of the last converged step and raises :class:`Interrupted`.
    With ``restart`` the run continues from the checkpoint in ``out``; without, checkpoints
    an earlier run left there are removed. ``started`` (e.g.
    :attr:`fe2x.io.output_dir.OutputDir.started`): checkpoint temporaries older than this were
    left by killed writers.
    """
    _preflight(config, out, comm, restart)
    t_start = time.perf_counter()
    stop = StopRequest()
    specimen, engine, setup_seconds = _engine(config, comm, stop)
    models = _describe_models(config, engine)
    _write_grains(engine, out)
    rows: list[list[float]] = []
    start, increment, first_step = 0.0, None, 1
    if restart:
        rows, start, increment, first_step = _resume(config, engine, out)
    diagnostician = Diagnostician(config, engine, specimen)
    log = StepLog(engine, diagnostician, out)
    if restart:
        log.resume(first_step - 1)
    last = (first_step - 1, start, increment or 1.0 / config.steps)
    checkpointer = Checkpointer(config, engine, out, rows, stop, last, started)
    field_dir = out / ("fields" if first_step == 1 else f"fields_from_step{first_step}")
    history = HistoryWriter(config, engine, specimen, out, rows)
    report = ReducedModelReport(engine, out)
    reduced = report if report.models else None
    observers: list[StepObserver] = [
        history,
        diagnostician,
        *([FieldWriter(engine, field_dir)] if config.write_fields else []),
        MicroFieldWriter(config, engine, out),
        *([reduced] if reduced is not None else []),
        *(
            [TrainingCapture(engine, out, config.training_fluctuations, append=restart)]
            if config.training_data
            else []
        ),
        log,
        checkpointer,
    ]
    result = _follow_load_steps(
        config, engine, observers, checkpointer, stop, out, start, increment, first_step
    )
    times = {"total": time.perf_counter() - t_start, "setup_micro": setup_seconds}
    summary = _run_summary(result, config, engine, models, log.records, times)
    if reduced is not None:
        summary["reduced_models"] = reduced.summary()
    history.plot()
    write_json(comm, out / "summary.json", summary)
    # The RVEs' PETSc objects keep their own duplicate of the group communicator; freeing ours
    # keeps MPI's communicator ids from running out when a program runs many FE² jobs.
    engine.layout.free()
    if not result.completed:
        raise SolverError(f"the FE² run stopped: {result.message} (results so far in {out})")
    return result
