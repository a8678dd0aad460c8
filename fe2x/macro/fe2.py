"""The FE² engine: macro Newton steps whose every quadrature point is answered by a micro model.

Data flow of one macro residual evaluation (collective on the macro communicator):

1. each rank evaluates the macro strain E at its owned quadrature points;
2. the strains travel to the leader of the RVE group each point is assigned to, which shares
   them with its group;
3. every group evaluates its points in id order through its :class:`MicroPool` (one set-up per
   microstructure, histories swapped in, the elastic shortcut where it is exact);
4. Σ and C travel back to the owners of the points, which assemble residual and Jacobian.

Converged steps commit every history, failed ones discard the trial histories and are cut
back. Between steps the points are re-assigned to groups by their measured cost (LPT), and the
histories of moved points migrate with them. A step can also be abandoned at any evaluation (a
stop signal): it is discarded like a failed one and :class:`StepAbandoned` raised, so that the
run can checkpoint its last converged step at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.fields import write_micro_fields
from fe2x.macro.problem import MacroProblem, StepResult
from fe2x.micro.model import MicroModel
from fe2x.micro.pool import MicroPool
from fe2x.parallel.assignment import assign_lpt, imbalance
from fe2x.parallel.exchange import route, route_arrays
from fe2x.parallel.layout import GroupLayout

logger = logging.getLogger(__name__)

#: Rows of the per-step record of every macro point's micro work.
_SECONDS, _SHORTCUT, _ITERATIONS, _PLASTIC = range(4)

MicroFactory = Callable[[MPI.Comm], MicroModel]


class StepAbandoned(Fe2xError):
    """The step was abandoned because a stop was requested; the last converged state is
    restored (macro displacement and every committed history)."""


@dataclass
class FE2Statistics:
    """Counters and wall times of an FE² run, summed on this rank."""

    micro_seconds: float = 0.0
    communication_seconds: float = 0.0
    waiting_seconds: float = 0.0
    full_solves: int = 0
    shortcut_solves: int = 0
    micro_iterations: int = 0
    evaluations: int = 0
    migrated_points: int = 0
    step_shortcut: int = 0  # shortcut answers in the current step
    step_full: int = 0
    per_point_iterations: dict[int, int] = field(default_factory=dict)


class FE2Engine:
    """Couples a :class:`MacroProblem` with micro models evaluated by RVE groups.

    Args:
        problem: the macro problem (mesh distributed over ``layout.world``).
        layout: the RVE groups.
        microstructure: for each owned macro point, the name of its microstructure.
        factories: microstructure name -> function building its micro model on a group
            communicator (called once per group, for the names in use).
        balance: re-assign points to groups by measured cost between steps.
        shortcut: use the exact elastic shortcut of models that offer one.
        stop_requested: asked at the start of every micro evaluation, on every rank; if it is
            true on any rank, the step is abandoned without solving the RVEs any further
            (:meth:`step` raises :class:`StepAbandoned`).
    """

    def __init__(
        self,
        problem: MacroProblem,
        layout: GroupLayout,
        microstructure: Sequence[str],
        factories: Mapping[str, MicroFactory],
        balance: bool = True,
        shortcut: bool = True,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        world = layout.world
        if len(microstructure) != problem.n_points:
            raise ValueError("one microstructure name per owned macro point is needed")
        self.problem, self.layout, self.balance = problem, layout, balance
        self._stop_requested, self._abandoning = stop_requested, False
        names = sorted(set().union(*world.allgather(set(microstructure))))
        unknown = [n for n in names if n not in factories]
        if unknown:
            raise ValueError(f"no micro model for microstructure(s) {unknown}")
        self.names = names
        self.pool = MicroPool(
            {name: factories[name](layout.group) for name in names}, use_shortcut=shortcut
        )
        # Global point table, identical on every rank: ids, owner rank, microstructure.
        ids = world.allgather(problem.point_ids)
        self.ids = np.concatenate(ids)
        self.owner = np.concatenate([np.full(len(a), r) for r, a in enumerate(ids)])
        index = {n: i for i, n in enumerate(names)}
        self.micro_index = np.concatenate(
            world.allgather(np.array([index[m] for m in microstructure], dtype=np.int64))
        )
        order = np.argsort(self.ids)
        self.ids, self.owner, self.micro_index = (
            self.ids[order],
            self.owner[order],
            self.micro_index[order],
        )
        if len(np.unique(self.ids)) != len(self.ids):
            raise ValueError("macro point ids are not unique")
        # Where this rank's macro points (in the order of problem.point_ids) lie in the table.
        self.local_points = np.searchsorted(self.ids, problem.point_ids)
        # First assignment: each point to the group of its owner (no traffic).
        self.assignment = self.owner // layout.group_size
        self.costs = np.ones(len(self.ids))
        self._step_record = np.zeros((4, len(self.ids)))
        self.stats = FE2Statistics()
        self.solved = np.zeros(len(self.ids), dtype=bool)  # last answer came from a solve
        self.last_iterations = np.zeros(len(self.ids), dtype=np.int64)
        self.plastic_strain = np.zeros(len(self.ids))  # RVE average of p, last evaluation
        self.separation = np.zeros(len(self.ids))  # scale-separation indicator, last step
        self.ellipticity_lost = np.zeros(len(self.ids), dtype=bool)

    @property
    def n_points(self) -> int:
        """Global number of macro quadrature points."""
        return len(self.ids)

    # -- one collective micro evaluation ---------------------------------------------------
    def constitutive(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Σ and C at this rank's points for strains E (collective on the macro comm)."""
        layout, world = self.layout, self.layout.world
        n = E.shape[1]
        if self._abandoning or world.allreduce(bool(self._stop_requested()), op=MPI.LOR):
            self._abandoning = True  # the macro Newton step fails here, and step() raises
            nan = np.full((len(E), n, n), np.nan)
            return nan[:, :, 0], nan, False
        t0 = time.perf_counter()
        mine = self.local_points
        leaders = np.array([layout.leader_rank(g) for g in self.assignment[mine]], dtype=np.int64)
        rows = np.column_stack([E, self.micro_index[mine].astype(float)])
        ids, rows = route_arrays(world, self.ids[mine], rows, leaders)
        ids, rows = layout.group.bcast((ids, rows) if layout.is_leader else None, root=0)
        t1 = time.perf_counter()
        answer = self.pool.evaluate(
            ids, [self.names[int(k)] for k in rows[:, n]], np.ascontiguousarray(rows[:, :n])
        )
        t2 = time.perf_counter()
        world.Barrier()  # the time spent here is load imbalance
        t3 = time.perf_counter()
        back = np.column_stack(
            [
                answer.Sigma,
                answer.C.reshape(len(ids), n * n),
                answer.converged,
                answer.iterations,
                answer.seconds,
                answer.shortcut,
            ]
        )
        if not layout.is_leader:  # one copy of each answer goes back
            ids, back = ids[:0], back[:0]
        position = np.searchsorted(self.ids, ids)
        back_ids, back = route_arrays(world, ids, back, self.owner[position])
        t4 = time.perf_counter()
        # Per-point work, kept by the leader that evaluated the point; shared once per step.
        record, where = self._step_record, position
        record[_SECONDS, where] += answer.seconds[: len(ids)]
        record[_SHORTCUT, where] = answer.shortcut[: len(ids)]
        record[_ITERATIONS, where] = answer.iterations[: len(ids)]
        record[_PLASTIC, where] = answer.plastic_strain[: len(ids)]
        if layout.is_leader:
            self.stats.step_shortcut += int(answer.shortcut.sum())
            self.stats.step_full += int((~answer.shortcut).sum())
            self.stats.micro_iterations += int(answer.iterations.sum())
        self.stats.micro_seconds += t2 - t1
        self.stats.waiting_seconds += t3 - t2
        self.stats.communication_seconds += (t1 - t0) + (t4 - t3)
        self.stats.evaluations += 1
        order = np.searchsorted(back_ids, self.problem.point_ids)
        back = back[order]
        Sigma = back[:, :n]
        C = back[:, n : n + n * n].reshape(-1, n, n)
        ok = bool(np.all(back[:, n + n * n] > 0.5))
        return Sigma, C, ok

    # -- load steps ------------------------------------------------------------------------
    def step(self, load_factor: float) -> StepResult:
        """One macro load step; commits all histories if it converged, else discards them."""
        self._step_record[:] = 0.0
        self.stats.step_shortcut = self.stats.step_full = 0
        saved = self.problem.save_state()
        result = self.problem.solve_step(load_factor, self.constitutive)
        # Each point was evaluated by one group leader (the assignment is fixed within a step),
        # and every other rank holds zeros for it: a sum gathers the step's per-point record.
        record = np.empty_like(self._step_record)
        self.layout.world.Allreduce(self._step_record, record, op=MPI.SUM)
        self.solved = record[_SHORTCUT] < 0.5
        self.last_iterations = record[_ITERATIONS].astype(np.int64)
        self.plastic_strain = record[_PLASTIC]
        if result.converged:
            self.pool.commit()
            self.costs = np.maximum(record[_SECONDS], 1e-9)
            self.stats.full_solves += self.stats.step_full
            self.stats.shortcut_solves += self.stats.step_shortcut
        else:
            self.pool.discard()
            self.problem.restore_state(saved)
            if self._abandoning:
                self._abandoning = False
                raise StepAbandoned(f"the step to load factor {load_factor:.6g} was abandoned")
        return result

    def nearest_points(self, coordinates: np.ndarray) -> list[int]:
        """Global ids of the macro points nearest to each of ``coordinates`` (collective)."""
        problem = self.problem
        ids = np.concatenate(self.layout.world.allgather(problem.point_ids))
        x = np.vstack(self.layout.world.allgather(problem.point_coordinates))
        coordinates = np.atleast_2d(np.asarray(coordinates, dtype=float))[:, : problem.dim]
        nearest = np.argmin(((x[None, :, :] - coordinates[:, None, :]) ** 2).sum(axis=2), axis=1)
        return [int(ids[i]) for i in nearest]

    def write_micro_fields(self, points: list[int], directory: Path, step: int) -> None:
        """Write the committed micro fields of the given macro points (collective).

        The group holding each point writes ``point<id>_step<step>.bp`` from its RVE, with the
        point's history swapped in. Points whose model has no micro fields are skipped.
        """
        for point in sorted(set(points)):
            index = int(np.searchsorted(self.ids, point))
            if self.assignment[index] != self.layout.group_index:
                continue
            model = self.pool.load(point, self.names[self.micro_index[index]])
            if hasattr(model, "micro_fields"):
                path = directory / f"point{point}_step{step}.bp"
                write_micro_fields(model.micro_fields(), path, float(step))

    def rebalance(self) -> float:
        """Re-assign points to groups by their last step's cost; migrate moved histories.

        Returns the predicted load imbalance (max/mean − 1) of the new assignment.
        """
        layout = self.layout
        if not self.balance or layout.n_groups == 1:
            return imbalance(self.costs, self.assignment, layout.n_groups)
        new = assign_lpt(self.costs, layout.n_groups, current=self.assignment)
        moved = np.flatnonzero(new != self.assignment)
        if layout.world.allreduce(len(moved), op=MPI.MAX):
            mine = moved[self.assignment[moved] == layout.group_index]
            states = self.pool.release(self.ids[mine].tolist())
            target = dict(zip(self.ids[moved].tolist(), new[moved].tolist(), strict=True))
            arrived = route(
                layout.world,
                states,
                lambda point: layout.member_rank(target[point], layout.group.rank),
            )
            self.pool.adopt(arrived)
            self.stats.migrated_points += len(moved)
            self.assignment = new
        return imbalance(self.costs, self.assignment, layout.n_groups)

    # -- checkpoint and restart ------------------------------------------------------------
    def _state_key(self, point: int) -> int:
        return point * self.layout.group_size + self.layout.group.rank

    def checkpoint_part(self) -> dict:
        """This rank's share of a checkpoint: owned displacement nodes, held micro states, and
        the layouts of the models whose states are stored partition-independently (collective).
        """
        V = self.problem.V
        n_owned = V.dofmap.index_map.size_local
        dim = self.problem.dim
        layout = self.layout
        models = self.pool.models
        portable = {name for name, model in models.items() if hasattr(model, "portable_state")}
        states = {}
        for point in sorted(self.pool.committed):  # the same order on every rank of the group
            state = self.pool.committed[point]
            name = self.names[self.micro_index[np.searchsorted(self.ids, point)]]
            if state is not None and name in portable:
                state = models[name].portable_state(state)
            states[self._state_key(point)] = state
        return {
            "coordinates": V.tabulate_dof_coordinates()[:n_owned, :dim],
            "displacement": self.problem.u.x.array.reshape(-1, V.dofmap.index_map_bs)[:n_owned],
            "states": states,
            "layouts": {
                f"{name}/{layout.group_index}/{layout.group.rank}": models[name].state_layout()
                for name in sorted(portable)
            },
        }

    def restore(self, checkpoint) -> None:
        """Continue from ``checkpoint`` (an :class:`fe2x.io.checkpoint.Checkpoint`), which may
        come from another number of ranks or RVE group size."""
        from scipy.spatial import cKDTree

        from fe2x.io.checkpoint import CheckpointError, read_micro_states

        layout, problem = self.layout, self.problem
        if not np.array_equal(np.sort(checkpoint.point_ids), self.ids):
            raise CheckpointError("the checkpoint's macro points differ from this run's mesh")
        V = problem.V
        x = V.tabulate_dof_coordinates()[:, : problem.dim]
        distance, index = cKDTree(checkpoint.coordinates).query(x)
        scale = float(np.ptp(checkpoint.coordinates, axis=0).max())
        if layout.world.allreduce(float(distance.max(initial=0.0)), op=MPI.MAX) > 1e-8 * scale:
            raise CheckpointError("the checkpoint's macro mesh differs from this run's mesh")
        problem.u.x.array[:] = checkpoint.displacement[index].reshape(-1)
        problem.u.x.scatter_forward()
        problem.force_scale = checkpoint.force_scale
        order = np.searchsorted(self.ids, checkpoint.point_ids)
        saved_groups = np.empty_like(self.assignment)
        saved_groups[order] = checkpoint.assignment
        same_groups = (
            checkpoint.group_size == layout.group_size and saved_groups.max() < layout.n_groups
        )
        self.assignment = (
            saved_groups if same_groups else assign_lpt(checkpoint.costs, layout.n_groups)
        )
        self.costs = np.empty(len(self.ids))
        self.costs[order] = checkpoint.costs
        g = checkpoint.group_size
        mine = np.flatnonzero(self.assignment == layout.group_index)
        models = self.pool.models
        portable = [  # points whose saved pieces are reassembled through their layouts
            i
            for i in mine
            if hasattr(models[self.names[self.micro_index[i]]], "state_importer")
            and int(self.ids[i]) * g in checkpoint.state_parts
        ]
        saved, saved_layouts = read_micro_states(
            layout.world,
            checkpoint,
            [int(self.ids[i]) * g + rank for i in mine for rank in range(g)],
            sorted(
                {
                    f"{self.names[self.micro_index[i]]}/{int(saved_groups[i])}/{rank}"
                    for i in portable
                    for rank in range(g)
                }
            ),
        )
        importers = {}
        states = {}
        for index in mine.tolist():
            point = int(self.ids[index])
            pieces = [saved.get(point * g + rank) for rank in range(g)]
            if pieces[0] is None:
                continue
            name, group = self.names[self.micro_index[index]], int(saved_groups[index])
            model = models[name]
            if not hasattr(model, "state_importer"):
                states[point] = pieces[0]  # the same on every rank of its group
                continue
            if (name, group) not in importers:
                layouts = [saved_layouts[f"{name}/{group}/{rank}"] for rank in range(g)]
                try:
                    importers[name, group] = model.state_importer(layouts)
                except Fe2xError as error:
                    raise CheckpointError(f"microstructure {name!r}: {error}") from None
            states[point] = importers[name, group](pieces)
        self.pool.committed = states
