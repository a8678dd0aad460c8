"""The jobs behind the command line: a validated config in, result files out."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import (
    CellConfig,
    HomogenizationConfig,
    MacroSettings,
    MicroSettings,
    RunConfig,
    RVEPathConfig,
    as_dict,
)
from fe2x.errors import ConfigError, Fe2xError, SolverError
from fe2x.geometry import RVEMesh, inclusion_cell, laminate_cell, random_cell, read_cell
from fe2x.geometry import macro as macro_shapes
from fe2x.io.checkpoint import Checkpoint, CheckpointError, read_checkpoint, write_checkpoint
from fe2x.io.fe2_files import MacroFieldWriter, history_csv, plot_load_displacement
from fe2x.io.fields import write_micro_fields, write_unit_strain_fields
from fe2x.io.path_files import path_csv, path_summary, plot_path
from fe2x.io.results import write_json, write_on_root
from fe2x.macro.diagnostics import (
    loses_ellipticity,
    point_regions,
    strain_gradient_indicator,
    summarise,
    warnings_for,
)
from fe2x.macro.fe2 import FE2Engine, MicroFactory, StepAbandoned
from fe2x.macro.problem import DirichletSpec, MacroProblem, StepResult, TractionSpec
from fe2x.macro.stepping import SteppingResult, run_load_steps
from fe2x.materials import component_labels, mandel_weights
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.homogenization import HomogenizationResult, homogenize
from fe2x.micro.material_point import ElasticPoint
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, PathResult, PathStep, drive
from fe2x.parallel.layout import check_launch, split_groups

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.h5"
PREVIOUS_CHECKPOINT = "checkpoint.prev.h5"


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


def warn_if_volume_lost(cell: CellConfig, realized: dict[str, float], comm: MPI.Comm) -> None:
    """Warn (on rank 0) when the mesh holds a phase volume fraction more than 1 % away from the
    one the geometry asks for: straight or coarse elements cut a curved inclusion short."""
    nominal = cell.nominal_volume_fractions()
    change = {p: realized[p] / v - 1.0 for p, v in nominal.items()}
    off = {p: c for p, c in change.items() if abs(c) > 0.01}
    if off and comm.rank == 0:
        logger.warning(
            "the RVE mesh holds the volume fraction(s) %s instead of %s; refine mesh_size%s",
            ", ".join(f"{p} {realized[p]:.4f} ({100 * c:+.1f} %)" for p, c in off.items()),
            ", ".join(f"{nominal[p]:.4g}" for p in off),
            " or set geometry_order = 2" if cell.geometry_order == 1 else "",
        )


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
    labels = component_labels(config.cell.dim)
    w = mandel_weights(config.cell.dim)  # progress shows tensor components
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


class _StopRequest:
    """Within its block, SIGTERM and SIGUSR1 (Slurm's warning before the time limit) set
    ``requested`` instead of killing the process; the handlers are restored on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __enter__(self) -> _StopRequest:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def build_macro(comm: MPI.Comm, macro: MacroSettings) -> macro_shapes.MacroMesh:
    """Mesh the specimen a ``[macro]`` table describes."""
    if macro.shape == "file":
        return macro_shapes.read_macro(comm, macro.parameters["path"])
    build = getattr(macro_shapes, macro.shape)
    return build(comm, macro.dim, mesh_size=macro.mesh_size, order=macro.order, **macro.parameters)


def _micro_factory(micro: MicroSettings, dim: int) -> MicroFactory:
    """A function building this microstructure's model on an RVE group's communicator."""
    if micro.model == "elastic":
        return lambda comm: ElasticPoint(micro.elastic.stiffness(dim))
    return lambda comm: NonlinearRVE(
        build_cell(comm, micro.cell),
        micro.materials,
        bc=micro.rve.bc,
        degree=micro.rve.degree,
        petsc_options_prefix=f"fe2x_rve_{micro.name}_",
        petsc_options=micro.rve.petsc_options,
        linear_solver=micro.rve.solver,
    )


def _point_microstructures(config: RunConfig, specimen, problem: MacroProblem) -> list[str]:
    """The microstructure name of every owned macro point, from the cell regions."""
    if len(config.micro) == 1 and not next(iter(config.micro.values())).regions:
        return [next(iter(config.micro))] * problem.n_points
    by_region = {r: m.name for m in config.micro.values() for r in m.regions}
    unknown = [r for r in by_region if r not in specimen.regions]
    if unknown:
        raise ConfigError(
            f"{config.path}: unknown region(s) {unknown}; the specimen has {list(specimen.regions)}"
        )
    n_cells = problem.n_points // problem.points_per_cell
    tag_of_cell = np.zeros(n_cells, dtype=np.int64)
    if specimen.cell_tags is not None:
        keep = specimen.cell_tags.indices < n_cells
        tag_of_cell[specimen.cell_tags.indices[keep]] = specimen.cell_tags.values[keep]
    name_of_tag = {tag: by_region.get(region) for region, tag in specimen.regions.items()}
    names = [name_of_tag.get(int(t)) for t in tag_of_cell]
    if any(n is None for n in names):
        missing = sorted({r for r, t in specimen.regions.items() if name_of_tag[t] is None})
        raise ConfigError(f"{config.path}: region(s) {missing} have no microstructure")
    return [n for n in names for _ in range(problem.points_per_cell)]


class Interrupted(Fe2xError):
    """The run was asked to stop (SIGTERM/SIGUSR1) and left a checkpoint to restart from."""


REQUEUE_STATUS = 75  # EX_TEMPFAIL: "checkpointed, run me again with --restart"


def _restore_latest_checkpoint(engine: FE2Engine, out: Path, digest: str) -> Checkpoint:
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


def _diagnose(config: RunConfig, engine, problem: MacroProblem, specimen, step: int) -> dict:
    """Scale-separation indicator and loss of ellipticity after a step; warns on rank 0."""
    comm = problem.comm
    tangents = problem.tangents()
    lost = loses_ellipticity(tangents, problem.dim) if len(tangents) else np.zeros(0, bool)
    n_lost = comm.allreduce(int(lost.sum()), op=MPI.SUM)
    engine.ellipticity_lost[engine.local_points] = lost
    out: dict[str, object] = {"ellipticity_lost_points": n_lost}
    if n_lost and comm.rank == 0:
        logger.warning(
            "step %d: the homogenized tangent lost ellipticity at %d macro point(s): onset of "
            "localization; the first-order FE² solution becomes mesh dependent beyond here",
            step,
            n_lost,
        )
    if config.rve_size > 0:
        indicator = strain_gradient_indicator(problem, config.rve_size)
        engine.separation[engine.local_points] = indicator
        regions = point_regions(problem, specimen.cell_tags) if specimen.cell_tags else None
        names = {tag: name for name, tag in specimen.regions.items()}
        summary = summarise(
            indicator, config.separation_threshold, problem.point_coordinates, regions, comm
        )
        for line in warnings_for(summary, step, config.separation_threshold, names):
            if comm.rank == 0:
                logger.warning(line)
        out["scale_separation"] = as_dict({k: v for k, v in summary.items() if k != "regions"})
    return out


def _macro_problem(config: RunConfig, specimen: macro_shapes.MacroMesh) -> MacroProblem:
    """The macro problem on the specimen, with the config's boundary conditions."""
    dirichlet, tractions = [], []
    for spec in config.boundaries:
        if spec.name not in specimen.boundaries:
            raise ConfigError(
                f"{config.path}: [[boundary]] {spec.name!r} is not a boundary of the specimen; "
                f"it has {list(specimen.boundaries)}"
            )
        tag = specimen.boundaries[spec.name]
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
    )


_AXES = "xyz"


def _history_header(config: RunConfig) -> list[str]:
    """Columns of history.csv: step, load factor, Newton iterations, then per boundary its
    prescribed displacements, tractions and reaction forces."""
    header = ["step", "load_factor", "newton_iterations"]
    dim = config.macro.dim
    for spec in config.boundaries:
        header += [f"u_{spec.name}_{_AXES[c]}" for c in spec.displacement]
        header += [f"t_{spec.name}_{_AXES[c]}" for c in range(dim)] if spec.traction else []
        header += [f"F_{spec.name}_{_AXES[c]}" for c in range(dim)] if spec.displacement else []
    return header


def _history_row(
    config: RunConfig, problem: MacroProblem, specimen, number: int, step: StepResult
) -> list[float]:
    """The history.csv row of a converged step (reactions are collective)."""
    lam = step.load_factor
    row: list[float] = [number, lam, step.iterations]
    for spec in config.boundaries:
        row += [lam * v for v in spec.displacement.values()]
        row += [lam * t for t in spec.traction] if spec.traction else []
        if spec.displacement:
            row += problem.reactions(specimen.boundaries[spec.name]).tolist()
    return row


def _save_checkpoint(
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


def _run_summary(
    config: RunConfig,
    result: SteppingResult,
    engine: FE2Engine,
    rves: dict,
    per_step: list,
    times: dict[str, float],
) -> dict:
    """summary.json of an FE² run: outcome, layout, per-step records, counts, and ``times``
    followed by the split of the work (collective; per-rank maxima, the critical path of each
    part, except the sum of the micro solves)."""
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
        "rves": rves,
        "steps": per_step,
        "cutbacks": result.cutbacks,
        "rve_full_solves": total(stats.full_solves),
        "rve_shortcut_solves": total(stats.shortcut_solves),
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


def _plot_history(
    config: RunConfig, header: list[str], rows: list[list[float]], path: Path, comm: MPI.Comm
) -> None:
    """Force against prescribed displacement of every boundary pulled in some direction."""
    curves = {}
    for spec in config.boundaries:
        pulled = [c for c, v in spec.displacement.items() if v != 0]
        if not pulled:
            continue
        names = [f"u_{spec.name}_{_AXES[pulled[0]]}", f"F_{spec.name}_{_AXES[pulled[0]]}"]
        columns = [header.index(n) for n in names]
        data = np.array([[0.0, 0.0]] + [[r[i] for i in columns] for r in rows])
        curves[spec.name] = (data[:, 0], data[:, 1])
    if curves:
        write_on_root(
            comm, path, lambda tmp: plot_load_displacement(curves, "prescribed displacement", tmp)
        )


def run_fe2(
    config: RunConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD, restart: bool = False
) -> SteppingResult:
    """The FE² job: macro specimen, RVE groups, adaptive load steps and result files.

    Writes ``out/history.csv`` after every converged step, macro fields under ``out/fields``,
    and ``out/summary.json`` and ``out/load_displacement.png`` at the end; a run that cannot
    proceed keeps these for its last converged step and raises SolverError. Checkpoints go to
    ``out/checkpoint.h5`` as the config asks, and when SIGTERM or SIGUSR1 arrives: the run then
    abandons the step in progress at its next micro evaluation (or, arriving after the last
    one, finishes it), writes one of the last converged step and raises :class:`Interrupted`.
    With ``restart`` the run continues from the checkpoint in ``out``.
    """
    check_launch(comm)
    if restart and not comm.bcast(
        (out / CHECKPOINT).exists() or (out / PREVIOUS_CHECKPOINT).exists()
    ):
        raise CheckpointError(f"no checkpoint at {out / CHECKPOINT}")  # before any set-up
    t_start = time.perf_counter()
    dim = config.macro.dim
    for micro in config.micro.values():
        if micro.cell is not None and micro.cell.dim != dim:
            raise ConfigError(
                f"{config.path}: [micro.{micro.name}.cell] dim = {micro.cell.dim} differs from "
                f"[macro] dim = {dim}"
            )
    specimen = build_macro(comm, config.macro)
    problem = _macro_problem(config, specimen)
    layout = split_groups(comm, config.group_size)
    stop = _StopRequest()
    t0 = time.perf_counter()
    engine = FE2Engine(
        problem,
        layout,
        _point_microstructures(config, specimen, problem),
        {name: _micro_factory(m, dim) for name, m in config.micro.items()},
        balance=config.balance,
        shortcut=config.elastic_shortcut,
        stop_requested=lambda: stop.requested,
    )
    setup_seconds = time.perf_counter() - t0
    logger.info(
        "FE²: %d macro points, %d RVE group(s) of %d rank(s), microstructures %s",
        engine.n_points,
        layout.n_groups,
        layout.group_size,
        engine.names,
    )
    rves = {}
    for name, model in engine.pool.models.items():  # the same names in every group
        if engine.pool.capabilities[name].described:
            rves[name] = model.describe()
            fractions = ", ".join(f"{k} {v:.4f}" for k, v in rves[name]["volume_fractions"].items())
            logger.info("RVE %s: %d dofs, volume fractions %s", name, model.n_dofs, fractions)
            warn_if_volume_lost(config.micro[name].cell, rves[name]["volume_fractions"], comm)
    header = _history_header(config)
    rows: list[list[float]] = []
    per_step: list[dict[str, object]] = []
    start, increment, first_step = 0.0, None, 1
    if restart:
        checkpoint = _restore_latest_checkpoint(engine, out, config.digest)
        rows = [[int(r[0]), *r[1:]] for r in checkpoint.history]
        start, increment, first_step = (
            checkpoint.load_factor,
            checkpoint.increment,
            checkpoint.step + 1,
        )
        logger.info("restarting after step %d at load factor %.6g", checkpoint.step, start)
    micro_points = engine.nearest_points(config.micro_points) if config.micro_points else []
    field_dir = out / ("fields" if first_step == 1 else f"fields_from_step{first_step}")
    fields = (
        MacroFieldWriter(
            problem.u, problem.points_per_cell, problem.n_strain, engine.diagnostic_names, field_dir
        )
        if config.write_fields
        else None
    )
    step_start = [time.perf_counter()]
    last_checkpoint = [time.perf_counter()]
    converged = [first_step - 1, start, increment or 1.0 / config.steps]  # the last step's

    def after_step(number: int, step: StepResult, cutbacks: int, increment: float) -> None:
        lam = step.load_factor
        converged[:] = number, lam, increment
        rows.append(_history_row(config, problem, specimen, number, step))
        text = history_csv(header, rows)
        write_on_root(comm, out / "history.csv", lambda tmp: tmp.write_text(text))
        diagnosis = _diagnose(config, engine, problem, specimen, number)
        mine = engine.local_points
        if fields is not None:
            fields.write(
                lam,
                {
                    "macro_strain": problem.strains(),
                    "macro_stress": problem.stresses(),
                    **{f"rve_{k}": v[mine] for k, v in engine.diagnostics.items()},
                    "rve_newton_iterations": engine.last_iterations[mine],
                    "rve_solved": engine.solved[mine],
                    "scale_separation_indicator": engine.separation[mine],
                    "ellipticity_lost": engine.ellipticity_lost[mine],
                },
            )
        if number in config.micro_steps and micro_points:
            engine.write_micro_fields(micro_points, out / "micro", number)
        seconds = time.perf_counter() - step_start[0]
        full = comm.allreduce(engine.stats.step_full, op=MPI.SUM)
        shortcut = comm.allreduce(engine.stats.step_shortcut, op=MPI.SUM)
        per_step.append(
            {
                "step": number,
                "load_factor": lam,
                "newton_iterations": step.iterations,
                "residual_history": step.residual_history,
                "rve_full_solves": full,
                "rve_shortcut_solves": shortcut,
                "cutbacks": cutbacks,
                "seconds": seconds,
                **diagnosis,
            }
        )
        logger.info(
            "step %d  λ = %.4g  Newton its %d  RVE solves %d full / %d shortcut%s  %.1f s",
            number,
            lam,
            step.iterations,
            full,
            shortcut,
            f"  cutbacks {cutbacks}" if cutbacks else "",
            seconds,
        )
        every, minutes = config.checkpoint_steps, config.checkpoint_minutes
        due = bool(every and number % every == 0)
        due |= bool(minutes) and comm.bcast(
            time.perf_counter() - last_checkpoint[0] >= 60.0 * minutes, root=0
        )
        interrupted = comm.allreduce(stop.requested, op=MPI.LOR)
        if (due or interrupted) and step.load_factor < 1.0 - 1e-12:
            _save_checkpoint(engine, config.digest, out, rows, number, lam, increment)
            last_checkpoint[0] = time.perf_counter()
        if interrupted and step.load_factor < 1.0 - 1e-12:
            raise Interrupted(
                f"stopped by a signal after step {number}; checkpoint written, continue with "
                f"`fe2x run CONFIG --restart {out}`"
            )
        step_start[0] = time.perf_counter()

    try:
        with stop:
            result = run_load_steps(
                engine.step,
                config.steps,
                config.max_cutbacks,
                before_step=engine.rebalance,
                after_step=after_step,
                start=start,
                increment=increment,
                first_step=first_step,
            )
    except StepAbandoned:
        number, lam, increment = converged
        _save_checkpoint(engine, config.digest, out, rows, number, lam, increment)
        raise Interrupted(
            f"stopped by a signal during step {number + 1}, which was abandoned; checkpoint of "
            f"step {number} written, continue with `fe2x run CONFIG --restart {out}`"
        ) from None
    finally:
        if fields is not None:
            fields.close()
    times = {"total": time.perf_counter() - t_start, "setup_micro": setup_seconds}
    summary = _run_summary(config, result, engine, rves, per_step, times)
    _plot_history(config, header, rows, out / "load_displacement.png", comm)
    write_json(comm, out / "summary.json", summary)
    # The RVEs' PETSc objects keep their own duplicate of the group communicator; freeing ours
    # keeps MPI's communicator ids from running out when a program runs many FE² jobs.
    layout.free()
    if not result.completed:
        raise SolverError(f"the FE² run stopped: {result.message} (results so far in {out})")
    return result
