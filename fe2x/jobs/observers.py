"""What an FE² run does after each converged step, one small observer per job.

The jobs are the load history, the diagnostics, the macro and micro fields, the progress line
and per-step record, and checkpoints (which also turn a stop signal into an orderly exit).

``run_fe2`` calls every observer's :meth:`StepObserver.after_step` in order after each
converged step (all collective), and :meth:`StepObserver.close` once when the run ends, also
when it ends by an error.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from mpi4py import MPI

import numpy as np

from fe2x.config import RunConfig, as_dict
from fe2x.errors import Fe2xError
from fe2x.io.fe2_files import MacroFieldWriter, history_csv, plot_load_displacement
from fe2x.io.results import write_json, write_on_root
from fe2x.jobs import checkpointing
from fe2x.macro.diagnostics import (
    loses_ellipticity,
    point_regions,
    strain_gradient_indicator,
    summarise,
    warnings_for,
)
from fe2x.macro.fe2 import FE2Engine
from fe2x.macro.problem import StepResult
from fe2x.micro.nonlinear import STABILITY

__all__ = [
    "Checkpointer",
    "ConvergedStep",
    "Diagnostician",
    "FieldWriter",
    "HistoryWriter",
    "Interrupted",
    "MicroFieldWriter",
    "StepLog",
    "StepObserver",
    "StopRequest",
]

logger = logging.getLogger(__name__)

_AXES = "xyz"


class Interrupted(Fe2xError):
    """The run was asked to stop (SIGTERM/SIGUSR1) and left a checkpoint to restart from."""


@dataclass(frozen=True)
class ConvergedStep:
    """A converged load step as the observers see it.

    Attributes:
        number: its number (1-based, continuing across restarts).
        result: the macro Newton outcome.
        cutbacks: halvings it took.
        increment: the load increment the next step will try.
        seconds: wall time since the previous converged step.
    """

    number: int
    result: StepResult
    cutbacks: int
    increment: float
    seconds: float

    @property
    def load_factor(self) -> float:
        """The load factor reached."""
        return self.result.load_factor


class StepObserver(Protocol):
    """Something done after every converged step (collective)."""

    def after_step(self, step: ConvergedStep) -> None:
        """React to a converged step."""
        ...

    def close(self) -> None:
        """Finish (files closed, last outputs written); called once at the end."""
        ...


class StopRequest:
    """Within its block, SIGTERM and SIGUSR1 set ``requested`` instead of killing the process.

    SIGUSR1 is Slurm's warning before the time limit; the handlers are restored on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class HistoryWriter:
    """``history.csv`` after every step, and the load–displacement plot at the end.

    Each row holds step, load factor, Newton iterations, and per boundary its prescribed
    displacements, tractions and reaction forces.
    """

    def __init__(
        self,
        config: RunConfig,
        engine: FE2Engine,
        specimen: Any,
        out: Path,
        rows: list[list[float]],
    ) -> None:
        self.config, self.problem, self.specimen, self.out = config, engine.problem, specimen, out
        self.comm = engine.layout.world
        self.rows = rows
        self.header = ["step", "load_factor", "newton_iterations"]
        dim = config.macro.dim
        for spec in config.boundaries:
            self.header += [f"u_{spec.name}_{_AXES[c]}" for c in spec.displacement]
            self.header += (
                [f"t_{spec.name}_{_AXES[c]}" for c in range(dim)] if spec.traction else []
            )
            self.header += (
                [f"F_{spec.name}_{_AXES[c]}" for c in range(dim)] if spec.displacement else []
            )

    def after_step(self, step: ConvergedStep) -> None:
        """Append the step's row (reactions are collective) and rewrite the file."""
        lam = step.load_factor
        row: list[float] = [step.number, lam, step.result.iterations]
        for spec in self.config.boundaries:
            row += [lam * v for v in spec.displacement.values()]
            row += [lam * t for t in spec.traction] if spec.traction else []
            if spec.displacement:
                row += self.problem.reactions(self.specimen.boundaries[spec.name]).tolist()
        self.rows.append(row)
        text = history_csv(self.header, self.rows)
        write_on_root(self.comm, self.out / "history.csv", lambda tmp: tmp.write_text(text))

    def close(self) -> None:
        """Nothing to finish (the file is complete after every step)."""

    def plot(self) -> None:
        """``load_displacement.png``: force against prescribed displacement (collective).

        One curve per boundary pulled in some direction.
        """
        curves = {}
        for spec in self.config.boundaries:
            pulled = [c for c, v in spec.displacement.items() if v != 0]
            if not pulled:
                continue
            names = [f"u_{spec.name}_{_AXES[pulled[0]]}", f"F_{spec.name}_{_AXES[pulled[0]]}"]
            columns = [self.header.index(n) for n in names]
            data = np.array([[0.0, 0.0]] + [[r[i] for i in columns] for r in self.rows])
            curves[spec.name] = (data[:, 0], data[:, 1])
        if curves:
            path = self.out / "load_displacement.png"
            write_on_root(
                self.comm,
                path,
                lambda tmp: plot_load_displacement(curves, "prescribed displacement", tmp),
            )


class Diagnostician:
    """Scale separation, loss of ellipticity and micro instability, checked after each step.

    Micro instability is checked where the micro models report it; warnings come from rank 0
    and the step's summary is kept in :attr:`last`.
    """

    def __init__(self, config: RunConfig, engine: FE2Engine, specimen: Any) -> None:
        self.config, self.engine, self.specimen = config, engine, specimen
        self.last: dict[str, Any] = {}

    def after_step(self, step: ConvergedStep) -> None:
        """Check the step's tangents and strain field."""
        engine, problem, config = self.engine, self.engine.problem, self.config
        comm = problem.comm
        tangents = problem.tangents()
        lost = (
            loses_ellipticity(tangents, problem.dim, kinematics=problem.kinematics)
            if len(tangents)
            else np.zeros(0, bool)
        )
        n_lost = comm.allreduce(int(lost.sum()), op=MPI.SUM)
        engine.ellipticity_lost[engine.local_points] = lost
        self.last = {"ellipticity_lost_points": n_lost}
        if n_lost and comm.rank == 0:
            logger.warning(
                "step %d: the homogenized tangent lost ellipticity at %d macro point(s): onset "
                "of localization; the first-order FE² solution becomes mesh dependent beyond "
                "here",
                step.number,
                n_lost,
            )
        if STABILITY in engine.diagnostics:  # the same global array on every rank
            reporting = [  # microstructures whose models compute it (the others hold 0)
                k
                for k, name in enumerate(engine.names)
                if STABILITY in engine.pool.capabilities[name].diagnostics
            ]
            values = engine.diagnostics[STABILITY][np.isin(engine.micro_index, reporting)]
            unstable = int(np.count_nonzero(values <= 0.0))
            self.last["micro_unstable_points"] = unstable
            self.last[f"min_{STABILITY}"] = float(values.min()) if values.size else 1.0
            if unstable and comm.rank == 0:
                logger.warning(
                    "step %d: the RVE Jacobian lost positive definiteness at %d macro point(s) "
                    "(min %s %.3g): first-order periodic RVE loses its meaning: micro buckling",
                    step.number,
                    unstable,
                    STABILITY,
                    float(values.min()),
                )
        if config.rve_size > 0:
            specimen = self.specimen
            indicator = strain_gradient_indicator(problem, config.rve_size)
            engine.separation[engine.local_points] = indicator
            regions = point_regions(problem, specimen.cell_tags) if specimen.cell_tags else None
            names = {tag: name for name, tag in specimen.regions.items()}
            summary = summarise(
                indicator, config.separation_threshold, problem.point_coordinates, regions, comm
            )
            for line in warnings_for(summary, step.number, config.separation_threshold, names):
                if comm.rank == 0:
                    logger.warning(line)
            self.last["scale_separation"] = as_dict(
                {k: v for k, v in summary.items() if k != "regions"}
            )

    def close(self) -> None:
        """Nothing to finish."""


class FieldWriter:
    """Macro fields for ParaView after each step (``fields/*.bp``)."""

    def __init__(self, engine: FE2Engine, directory: Path) -> None:
        problem = engine.problem
        self.engine = engine
        self.writer = MacroFieldWriter(
            problem.u, problem.points_per_cell, problem.n_strain, engine.diagnostic_names, directory
        )

    def after_step(self, step: ConvergedStep) -> None:
        """Write the step's fields (collective)."""
        engine, problem = self.engine, self.engine.problem
        mine = engine.local_points
        self.writer.write(
            step.load_factor,
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

    def close(self) -> None:
        """Close the files."""
        self.writer.close()


class MicroFieldWriter:
    """The micro fields of chosen macro points at chosen steps (``micro/point<id>_step<k>.bp``)."""

    def __init__(self, config: RunConfig, engine: FE2Engine, out: Path) -> None:
        self.engine, self.out, self.steps = engine, out, config.micro_steps
        self.points = engine.nearest_points(config.micro_points) if config.micro_points else []

    def after_step(self, step: ConvergedStep) -> None:
        """Write them if this is one of the steps."""
        if step.number in self.steps and self.points:
            self.engine.write_micro_fields(self.points, self.out / "micro", step.number)

    def close(self) -> None:
        """Nothing to finish."""


@dataclass
class StepLog:
    """The progress line of each step and its record for ``summary.json``.

    The records are kept in ``steps.json`` after every step, so that a restarted run's summary
    lists every step.
    """

    engine: FE2Engine
    diagnostician: Diagnostician
    out: Path
    records: list[dict[str, Any]] = field(default_factory=list)

    STEPS: ClassVar[str] = "steps.json"

    def resume(self, last_step: int) -> None:
        """Take up the records of the steps up to ``last_step`` (a restart), read on rank 0."""
        comm = self.engine.layout.world
        records: list[dict[str, Any]] = []
        if comm.rank == 0 and (self.out / self.STEPS).is_file():
            try:
                records = json.loads((self.out / self.STEPS).read_text())
            except (OSError, ValueError) as error:
                logger.warning(
                    "cannot read %s (%s): the summary lists the new steps only",
                    self.out / self.STEPS,
                    error,
                )
        self.records = [r for r in comm.bcast(records, root=0) if r["step"] <= last_step]

    def after_step(self, step: ConvergedStep) -> None:
        """Log and record the step (the solve counts are collective)."""
        comm, stats = self.engine.layout.world, self.engine.stats
        full = comm.allreduce(stats.step_full, op=MPI.SUM)
        shortcut = comm.allreduce(stats.step_shortcut, op=MPI.SUM)
        self.records.append(
            {
                "step": step.number,
                "load_factor": step.load_factor,
                "newton_iterations": step.result.iterations,
                "residual_history": step.result.residual_history,
                "rve_full_solves": full,
                "rve_shortcut_solves": shortcut,
                "cutbacks": step.cutbacks,
                "seconds": step.seconds,
                **self.diagnostician.last,
            }
        )
        write_json(comm, self.out / self.STEPS, self.records)
        logger.info(
            "step %d  λ = %.4g  Newton its %d  RVE solves %d full / %d shortcut%s  %.1f s",
            step.number,
            step.load_factor,
            step.result.iterations,
            full,
            shortcut,
            f"  cutbacks {step.cutbacks}" if step.cutbacks else "",
            step.seconds,
        )

    def close(self) -> None:
        """Nothing to finish."""


class Checkpointer:
    """Checkpoints when the config asks (every n steps, every m minutes) and on a stop signal.

    After a signal it raises :class:`Interrupted`. It also remembers the last converged step,
    for a checkpoint after an abandoned step.
    """

    def __init__(
        self,
        config: RunConfig,
        engine: FE2Engine,
        out: Path,
        rows: list[list[float]],
        stop: StopRequest,
        last: tuple[int, float, float],
        started: float | None = None,
    ) -> None:
        self.config, self.engine, self.out, self.rows, self.stop = config, engine, out, rows, stop
        self.last = last  # (step number, load factor, next increment) of the last converged step
        self.started = started  # when the run began: older checkpoint temporaries are orphans
        self._written = time.perf_counter()

    def save_last(self) -> None:
        """Checkpoint the last converged step (collective)."""
        number, lam, increment = self.last
        digest = self.config.digest
        checkpointing.save(
            self.engine, digest, self.out, self.rows, number, lam, increment, self.started
        )
        self._written = time.perf_counter()

    def after_step(self, step: ConvergedStep) -> None:
        """Checkpoint if due or signalled; after a signal stop with :class:`Interrupted`."""
        comm, config = self.engine.layout.world, self.config
        self.last = (step.number, step.load_factor, step.increment)
        every, minutes = config.checkpoint_steps, config.checkpoint_minutes
        due = bool(every and step.number % every == 0)
        due |= bool(minutes) and comm.bcast(
            time.perf_counter() - self._written >= 60.0 * minutes, root=0
        )
        interrupted = comm.allreduce(self.stop.requested, op=MPI.LOR)
        unfinished = step.load_factor < 1.0 - 1e-12
        if (due or interrupted) and unfinished:
            self.save_last()
        if interrupted and unfinished:
            raise Interrupted(
                f"stopped by a signal after step {step.number}; checkpoint written, continue "
                f"with `fe2x run CONFIG --restart {self.out}`"
            )

    def close(self) -> None:
        """Nothing to finish."""
