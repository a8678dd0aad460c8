"""The FE² engine: macro Newton steps whose every quadrature point is answered by a micro model.

Data flow of one macro residual evaluation (collective on the macro communicator):

1. each rank evaluates the macro strain E at its owned quadrature points;
2. the strains travel to the leader of the RVE group each point is assigned to, which shares
   them with its group;
3. every group evaluates its points in id order through its :class:`MicroPool` (one set-up per
   microstructure, histories swapped in, the elastic shortcut where it is exact);
4. Σ and C travel back to the owners of the points, which assemble residual and Jacobian.

Converged steps commit every history, failed ones discard the trial histories and are cut
back. Before a commit, the trial answers of certified models (a reduced RVE) are certified; if
any is rejected, the step is solved again from its converged state with the rejected points
answered by their full model (:data:`CERTIFICATION_ROUNDS` times at most, else it fails and is
cut back), so that every committed answer passed the certification or is the full model's.
Between steps the points are re-assigned to groups by their measured cost (LPT), and the
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
from typing import cast

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.fields import write_micro_fields
from fe2x.macro.problem import MacroProblem, StepResult
from fe2x.micro.model import MicroModel, PortableState
from fe2x.micro.pool import MicroPool
from fe2x.parallel.assignment import assign_lpt, imbalance
from fe2x.parallel.exchange import route, route_arrays
from fe2x.parallel.layout import GroupLayout

logger = logging.getLogger(__name__)

MicroFactory = Callable[[MPI.Comm], MicroModel]

#: Re-solves of a step for the points rejected at certification (the set only grows: each
#: re-solve usually takes 1–2 macro iterations, and rarely rejects another point).
CERTIFICATION_ROUNDS = 3


def _request_dtype(n: int) -> np.dtype:
    """A strain request travelling to an RVE group: macro strain and microstructure index."""
    return np.dtype([("E", np.float64, (n,)), ("micro", np.int64)])


def _answer_dtype(n: int) -> np.dtype:
    """An answer travelling back to the point's owner."""
    return np.dtype(
        [
            ("Sigma", np.float64, (n,)),
            ("C", np.float64, (n, n)),
            ("converged", np.bool_),
            ("iterations", np.int64),
            ("seconds", np.float64),
            ("shortcut", np.bool_),
        ]
    )


class StepRecord:
    """Every macro point's micro work in one step, by name.

    It holds seconds, whether the shortcut answered, Newton iterations, and the models'
    diagnostics. Each point is filled by the one group leader that evaluated it (zeros
    elsewhere), so a sum over the ranks gathers it.
    """

    def __init__(self, n_points: int, diagnostic_names: Sequence[str]) -> None:
        self.names = ("seconds", "shortcut", "iterations", *diagnostic_names)
        self.values = np.zeros((len(self.names), n_points))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[self.names.index(name)]

    def clear(self) -> None:
        """Zero every entry (a new step)."""
        self.values[:] = 0.0

    def gathered(self, comm: MPI.Comm) -> StepRecord:
        """The record summed over the ranks of ``comm`` (collective)."""
        total = StepRecord(self.values.shape[1], self.names[3:])
        comm.Allreduce(self.values, total.values, op=MPI.SUM)
        return total


class StepAbandoned(Fe2xError):
    """The step was abandoned because a stop was requested.

    The last converged state is restored (macro displacement and every committed history).
    """


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
    rejected_points: int = 0  # trial answers rejected at certification (by this rank's pool)
    certification_resolves: int = 0  # steps solved again for rejected points (each rank)
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
        end_time: the time at load factor 1: a step from λ to λ' lasts (λ' − λ) · end_time
            (for rate-dependent micro laws; rate-independent ones ignore it).
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
        end_time: float = 1.0,
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
        self._certified = any(c.certified for c in self.pool.capabilities.values())
        other = [n for n, c in self.pool.capabilities.items() if c.kinematics != problem.kinematics]
        if other:
            raise Fe2xError(
                f"microstructure(s) {other}: their micro models are not {problem.kinematics}-"
                f"strain, as the macro problem is ([macro] kinematics)"
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
        self.end_time, self.load_factor, self._dt = float(end_time), 0.0, 0.0
        self._failure: str | None = None
        self.diagnostic_names = self.pool.diagnostic_names
        self._step_record = StepRecord(len(self.ids), self.diagnostic_names)
        self.stats = FE2Statistics()
        self.solved = np.zeros(len(self.ids), dtype=bool)  # last answer came from a solve
        self.last_iterations = np.zeros(len(self.ids), dtype=np.int64)
        #: The models' diagnostics of every point at its last evaluation, by name.
        self.diagnostics = {name: np.zeros(len(self.ids)) for name in self.diagnostic_names}
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
            if not self._abandoning and world.rank == 0:
                logger.info("stop requested: abandoning the step in progress")
            self._abandoning = True  # the macro Newton step fails here, and step() raises
            nan = np.full((len(E), n, n), np.nan)
            return nan[:, :, 0], nan, False
        t0 = time.perf_counter()
        mine = self.local_points
        leaders = np.array([layout.leader_rank(g) for g in self.assignment[mine]], dtype=np.int64)
        requests = np.zeros(len(mine), dtype=_request_dtype(n))
        requests["E"], requests["micro"] = E, self.micro_index[mine]
        ids, requests = route_arrays(world, self.ids[mine], requests, leaders)
        ids, requests = layout.group.bcast((ids, requests) if layout.is_leader else None, root=0)
        t1 = time.perf_counter()
        answer = self.pool.evaluate(
            ids,
            [self.names[int(k)] for k in requests["micro"]],
            np.ascontiguousarray(requests["E"]).reshape(len(ids), n),
            self._dt,
        )
        t2 = time.perf_counter()
        world.Barrier()  # the time spent here is load imbalance
        t3 = time.perf_counter()
        back = np.zeros(len(ids), dtype=_answer_dtype(n))
        for key in ("Sigma", "C", "converged", "iterations", "seconds", "shortcut"):
            back[key] = getattr(answer, key)
        if not layout.is_leader:  # one copy of each answer goes back
            ids, back = ids[:0], back[:0]
        position = np.searchsorted(self.ids, ids)
        back_ids, back = route_arrays(world, ids, back, self.owner[position])
        t4 = time.perf_counter()
        # Per-point work, kept by the leader that evaluated the point; shared once per step.
        record, m = self._step_record, len(ids)
        record["seconds"][position] += answer.seconds[:m]
        record["shortcut"][position] = answer.shortcut[:m]
        record["iterations"][position] = answer.iterations[:m]
        for k, name in enumerate(self.diagnostic_names):
            record[name][position] = answer.diagnostics[:m, k]
        if layout.is_leader:
            self.stats.step_shortcut += int(answer.shortcut.sum())
            self.stats.step_full += int((~answer.shortcut).sum())
            self.stats.micro_iterations += int(answer.iterations.sum())
        self.stats.micro_seconds += t2 - t1
        self.stats.waiting_seconds += t3 - t2
        self.stats.communication_seconds += (t1 - t0) + (t4 - t3)
        self.stats.evaluations += 1
        back = back[np.searchsorted(back_ids, self.problem.point_ids)]
        ok = bool(np.all(back["converged"]))
        self._note_failures(ok)
        return back["Sigma"], back["C"], ok

    def _note_failures(self, ok: bool) -> None:
        """Remember why the micro models failed in this evaluation, for the step's reason.

        Collective: one allreduce, and a gather only when something failed.
        """
        world = self.layout.world
        failed = world.allreduce(int(not ok), op=MPI.SUM)
        if not failed:
            return
        mine = self.pool.failure if self.layout.is_leader else None
        first = next((f for f in world.allgather(mine) if f is not None), None)
        if first is not None and self._failure is None:
            point, reason = first
            self._failure = f"an RVE did not converge (macro point {point}: {reason})"

    # -- load steps ------------------------------------------------------------------------
    def step(self, load_factor: float) -> StepResult:
        """One macro load step; commits all histories if it converged, else discards them."""
        self._step_record.clear()
        self._failure = None
        self.stats.step_shortcut = self.stats.step_full = 0
        self._dt = (load_factor - self.load_factor) * self.end_time
        saved = self.problem.save_state()
        result = self.problem.solve_step(load_factor, self.constitutive)
        if self._certified:
            result = self._certify_step(load_factor, result)
        # Each point was evaluated by one group leader (the assignment is fixed within a step),
        # and every other rank holds zeros for it: a sum gathers the step's per-point record.
        record = self._step_record.gathered(self.layout.world)
        self.solved = record["shortcut"] < 0.5
        self.last_iterations = record["iterations"].astype(np.int64)
        self.diagnostics = {name: record[name].copy() for name in self.diagnostic_names}
        if result.converged:
            self.pool.commit()
            self.load_factor = float(load_factor)
            self.costs = np.maximum(record["seconds"], 1e-9)
            self.stats.full_solves += self.stats.step_full
            self.stats.shortcut_solves += self.stats.step_shortcut
        else:
            self.pool.discard()
            self.problem.restore_state(saved)
            if self._abandoning:
                self._abandoning = False
                raise StepAbandoned(f"the step to load factor {load_factor:.6g} was abandoned")
            if self._failure is not None:  # the macro SNES only saw a NaN residual
                result = result._replace(reason=self._failure)
        return result

    def _certify_step(self, load_factor: float, result: StepResult) -> StepResult:
        """Certify a converged step's trial answers; re-solve it while some are rejected.

        The re-solve starts from the converged macro state, with the rejected points answered
        by their full model; the result sums the iterations, evaluations and residual
        histories of all solves. Collective.
        """
        for resolves in range(CERTIFICATION_ROUNDS + 1):
            if not result.converged:
                return result
            rejected = self._certify()
            if not rejected:
                return result
            if resolves == CERTIFICATION_ROUNDS:
                break
            if self.layout.world.rank == 0:
                logger.info(
                    "load factor %.6g: %d point(s) rejected at certification; solving the step "
                    "again with their full model",
                    load_factor,
                    rejected,
                )
            self.stats.certification_resolves += 1
            again = self.problem.solve_step(load_factor, self.constitutive)
            result = again._replace(
                iterations=result.iterations + again.iterations,
                residual_history=result.residual_history + again.residual_history,
                evaluations=result.evaluations + again.evaluations,
            )
        return result._replace(
            converged=False,
            reason=f"{rejected} point(s) still rejected at certification after "
            f"{CERTIFICATION_ROUNDS} re-solves with the full model",
        )

    def _certify(self) -> int:
        """Certify the pool's trial answers; the number rejected on all ranks (collective).

        Every rank of a group certifies (as it evaluates); its leader records the points'
        certification time and the diagnostics of the certified states.
        """
        layout = self.layout
        t0 = time.perf_counter()
        outcome = self.pool.certify()
        self.stats.micro_seconds += time.perf_counter() - t0
        m = outcome.ids.size if layout.is_leader else 0
        position = np.searchsorted(self.ids, outcome.ids[:m])
        passed = outcome.passed[:m]
        record = self._step_record
        record["seconds"][position] += outcome.seconds[:m]
        for k, name in enumerate(self.diagnostic_names):
            record[name][position[passed]] = outcome.diagnostics[:m][passed, k]
        local = int(m - passed.sum())
        self.stats.rejected_points += local
        return int(layout.world.allreduce(local, op=MPI.SUM))

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
            name = self.names[self.micro_index[index]]
            if self.pool.capabilities[name].fields:
                model = self.pool.load(point, name)
                path = directory / f"point{point}_step{step}.bp"
                write_micro_fields(model.micro_fields(), path, float(step))  # type: ignore[attr-defined]

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
        """This rank's share of a checkpoint (collective).

        It holds the owned displacement nodes, the held micro states, and the layouts of the
        models whose states are stored partition-independently.
        """
        V = self.problem.V
        n_owned = V.dofmap.index_map.size_local
        dim = self.problem.dim
        layout = self.layout
        models = self.pool.models
        portable = {name for name, c in self.pool.capabilities.items() if c.portable}
        states = {}
        for point in sorted(self.pool.committed):  # the same order on every rank of the group
            state = self.pool.committed[point]
            name = self.names[self.micro_index[np.searchsorted(self.ids, point)]]
            if state is not None and name in portable:
                state = cast(PortableState, models[name]).portable_state(state)
            states[self._state_key(point)] = state
        return {
            "coordinates": V.tabulate_dof_coordinates()[:n_owned, :dim],
            "displacement": self.problem.u.x.array.reshape(-1, V.dofmap.index_map_bs)[:n_owned],
            "states": states,
            "layouts": {
                f"{name}/{layout.group_index}/{layout.group.rank}": cast(
                    PortableState, models[name]
                ).state_layout()
                for name in sorted(portable)
            },
        }

    def restore(self, checkpoint) -> None:
        """Continue from ``checkpoint`` (an :class:`fe2x.io.checkpoint.Checkpoint`).

        It may come from another number of ranks or RVE group size.
        """
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
        self.load_factor = float(checkpoint.load_factor)
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
        models, capabilities = self.pool.models, self.pool.capabilities
        fixed = [n for n, c in capabilities.items() if not (c.portable or c.replicated)]
        if fixed and g != layout.group_size:  # the same verdict on every rank
            raise CheckpointError(
                f"microstructure(s) {fixed}: the micro model has no partition-independent state; "
                f"restart with the RVE group size of the checkpoint ({g})"
            )
        mine = np.flatnonzero(self.assignment == layout.group_index)
        portable = [  # points whose saved pieces are reassembled through their layouts
            i
            for i in mine
            if capabilities[self.names[self.micro_index[i]]].portable
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
            if capabilities[name].replicated:
                states[point] = pieces[0]  # the same on every rank of its group
                continue
            if not capabilities[name].portable:
                states[point] = pieces[layout.group.rank]  # this rank's own piece (same g)
                continue
            if (name, group) not in importers:
                layouts = [saved_layouts[f"{name}/{group}/{rank}"] for rank in range(g)]
                try:
                    importers[name, group] = cast(PortableState, model).state_importer(layouts)
                except Fe2xError as error:
                    raise CheckpointError(f"microstructure {name!r}: {error}") from None
            # A state saved by a group's first rank was saved by all its ranks (all or none).
            states[point] = importers[name, group](pieces)  # type: ignore[arg-type]
        self.pool.committed = states
