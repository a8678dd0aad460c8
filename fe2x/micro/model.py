"""The micro-model contract, whole: what every micro model does, and the optional capabilities.

The path driver, the pool of an RVE group and the FE² engine see a micro model only through
:class:`MicroModel`: ``solve(E)`` on a trial history from the committed one, ``commit()``,
and ``get_state()``/``set_state()`` with an opaque, serialisable state (the same calls serve
cutback, migration between ranks and restart). What a model may offer besides is a small
protocol of its own, checked once at set-up (:meth:`Capabilities.of`), never per call:

- :class:`TimeIncrement`: a rate-dependent model is told how long the next increment lasts;
- :class:`ElasticShortcut`: answer a virgin point without a solve, when that is exact;
- :class:`Diagnostics`: named scalars of the committed state (e.g. a mean plastic strain),
  which the engine gathers and the writers write as they get them;
- :class:`MicroFields`: fields of the committed state for ParaView;
- :class:`PortableState`: a partition-independent state (a distributed RVE on a checkpoint
  read by another number of ranks or group size);
- :class:`ReplicatedState`: a model whose state is the same on every rank of its group (a
  material point): any rank's copy restores it;
- :class:`Described`: what the run log and summary say of the model (dofs, volume fractions);
- :class:`FiniteStrain`: a model whose E is the deformation gradient F̄ (row-major), answering
  P̄ and dP̄/dF̄ (``kinematics = "finite"``); every other model is small-strain (Mandel).
- :class:`FluctuationSnapshots`: the fluctuation field of a state, for training data.
- :class:`WarmStart`: a model whose Newton can start from an earlier answer of the same step
  (each macro iteration solves every point again from its committed state);
- :class:`Certified`: a model whose trial answers are checked once per converged step, before
  commit (a reduced model against its full one): the caller certifies every trial state and
  answers the rejected points again by :meth:`Certified.solve_full` before committing.

A model that is distributed over its group, has no portable state and is not replicated can
only be restarted with the group size its checkpoint was written with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Capabilities",
    "Certified",
    "Described",
    "Diagnostics",
    "ElasticShortcut",
    "FiniteStrain",
    "FluctuationSnapshots",
    "MicroFields",
    "MicroModel",
    "PortableState",
    "RVEResult",
    "ReplicatedState",
    "TimeIncrement",
    "WarmStart",
]


class RVEResult(NamedTuple):
    """Outcome of one micro increment.

    Attributes:
        Sigma: homogenized stress ⟨σ⟩, Mandel (3 in 2D, 6 in 3D); NaN when not converged.
        C: consistent homogenized tangent dΣ/dE, Mandel; NaN when not converged.
        hill_mandel_residual: |⟨σ:ε⟩ − Σ·⟨ε⟩| / (|Σ| |⟨ε⟩|).
        converged: whether the increment (possibly substepped) converged.
        reason: "converged", or why not.
        iterations: Newton iterations summed over all attempts.
        residual_history: ‖R‖ per Newton iteration, one array per Newton solve (substep).
    """

    Sigma: np.ndarray
    C: np.ndarray
    hill_mandel_residual: float
    converged: bool
    reason: str
    iterations: int
    residual_history: tuple[np.ndarray, ...]


@runtime_checkable
class MicroModel(Protocol):
    """A macro point's micro model: solve on a trial history, commit, swap state in and out."""

    def solve(self, E: np.ndarray) -> RVEResult:
        """Σ and C = dΣ/dE for macro strain E (Mandel) from the committed history.

        The trial history is kept until :meth:`commit`.
        """
        ...

    def commit(self) -> None:
        """Make the last trial history the committed one."""
        ...

    def get_state(self) -> Any:
        """A copy of the committed state (nested dicts of numpy arrays, or None)."""
        ...

    def set_state(self, state: Any) -> None:
        """Replace the committed state (the trial one is dropped)."""
        ...


@runtime_checkable
class TimeIncrement(Protocol):
    """A model whose response depends on time (rate-dependent laws)."""

    def set_time_increment(self, dt: float) -> None:
        """The next :meth:`MicroModel.solve` goes from the committed state over time ``dt``."""
        ...


@runtime_checkable
class ElasticShortcut(Protocol):
    """Answers points that never left the elastic range without solving, when exact.

    Their response is Σ = C_elastic E, C = C_elastic.
    """

    C_elastic: np.ndarray

    def stays_elastic(self, E: np.ndarray) -> np.ndarray:
        """For macro strains E ``(m, n)`` of virgin points, which stay elastic ``(m,)``.

        It neither reads nor changes the committed state. One collective for the whole batch.
        """
        ...


@runtime_checkable
class Diagnostics(Protocol):
    """Named scalar diagnostics of the committed state."""

    diagnostic_names: tuple[str, ...]

    def diagnostics(self) -> dict[str, float]:
        """Each of :attr:`diagnostic_names` for the committed state (collective)."""
        ...


@runtime_checkable
class MicroFields(Protocol):
    """Fields of the committed state for output."""

    def micro_fields(self) -> dict[str, Any]:
        """Name -> DOLFINx function on the model's mesh (collective)."""
        ...


@runtime_checkable
class PortableState(Protocol):
    """A distributed state that can be moved to another partition of the model."""

    def state_layout(self) -> dict[str, Any]:
        """Where this rank's part of a state lies (plain numpy)."""
        ...

    def portable_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state`` (of get_state) in a partition-independent form (collective)."""
        ...

    def state_importer(
        self, layouts: Sequence[Mapping[str, Any]]
    ) -> Callable[[Sequence[Mapping[str, Any]]], Any]:
        """From the portable pieces of all ranks of another partition to this rank's state."""
        ...


@runtime_checkable
class ReplicatedState(Protocol):
    """A model whose state is identical on every rank of its group (``state_replicated``)."""

    state_replicated: bool


@runtime_checkable
class Described(Protocol):
    """A model that says what it is for the log and the run summary."""

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts, e.g. ``{"dofs": ..., "volume_fractions": {...}}`` (collective)."""
        ...


@runtime_checkable
class FiniteStrain(Protocol):
    """A model that says its kinematics.

    ``"finite"`` (E = F̄ row-major, Σ = P̄, C = dP̄/dF̄) or ``"small"`` (Mandel).
    """

    kinematics: str


@runtime_checkable
class FluctuationSnapshots(Protocol):
    """A model whose states hold a fluctuation field (the snapshots of reduced-order models)."""

    @property
    def fluctuation_rows(self) -> tuple[int, np.ndarray]:
        """The global number of fluctuation dofs and the global index of each of this rank's."""
        ...

    def fluctuation(self, state: Any) -> np.ndarray:
        """This rank's fluctuation dofs of ``state`` (one of :meth:`MicroModel.get_state`)."""
        ...


@runtime_checkable
class WarmStart(Protocol):
    """A model whose Newton can start from an earlier trial answer of the same step."""

    def solve_from(self, E: np.ndarray, trial: Any) -> RVEResult:
        """As :meth:`MicroModel.solve` (from the committed history), Newton started at ``trial``.

        ``trial`` is a state of :meth:`MicroModel.get_state` taken after an earlier solve and
        commit from the same committed state; the answer equals :meth:`MicroModel.solve`'s to
        the solver's tolerance.
        """
        ...


@runtime_checkable
class Certified(Protocol):
    """A model whose trial answers are certified once per converged step, before commit.

    Its :meth:`MicroModel.solve` answers cheaply and leaves a trial state that is complete only
    once certified. Whoever commits (the pool, the path driver) certifies every trial state of
    the step first; a rejected point is answered again from its committed state by
    :meth:`solve_full`, in every evaluation of that step that follows (the step is re-solved).
    """

    def certify(self, state: Any) -> tuple[bool, Any]:
        """Check a trial state (of :meth:`MicroModel.get_state` after a solve and commit).

        Returns (ok, the state completed for committing); when not ok, the returned state
        says why (the reference answer must replace it). A state from :meth:`solve_full`
        passes as it is.
        """
        ...

    def solve_full(self, E: np.ndarray, rejected: Any) -> RVEResult:
        """Σ and C by the reference model from the committed history (a rejected point).

        ``rejected`` is the state :meth:`certify` refused (its reason is kept in the answer's
        diagnostics). The trial history is kept until :meth:`MicroModel.commit`.
        """
        ...


@dataclass(frozen=True)
class Capabilities:
    """What a micro model offers beyond the contract, found once with ``isinstance``.

    Attributes:
        timed: it takes the time increment of each solve.
        shortcut: it has an exact elastic shortcut.
        diagnostics: the names of its scalar diagnostics (empty: none).
        fields: it writes micro fields.
        portable: its state is partition independent.
        replicated: its state is the same on every rank of its group.
        described: it describes itself for the log.
        kinematics: ``"small"`` (the default) or ``"finite"`` (:class:`FiniteStrain`).
        snapshots: its states hold a fluctuation field (training data).
        certified: its trial states are certified before commit (:class:`Certified`).
        warm: its Newton can start from an earlier answer of the step (:class:`WarmStart`).
    """

    timed: bool
    shortcut: bool
    diagnostics: tuple[str, ...]
    fields: bool
    portable: bool
    replicated: bool
    described: bool
    kinematics: str = "small"
    snapshots: bool = False
    certified: bool = False
    warm: bool = False

    @classmethod
    def of(cls, model: object, name: str = "micro model") -> Capabilities:
        """The capabilities of ``model``; a TypeError if it is not a :class:`MicroModel`."""
        if not isinstance(model, MicroModel):
            missing = [
                m for m in ("solve", "commit", "get_state", "set_state") if not hasattr(model, m)
            ]
            raise TypeError(
                f"{name}: {type(model).__name__} is not a micro model (missing {missing})"
            )
        return cls(
            timed=isinstance(model, TimeIncrement),
            shortcut=isinstance(model, ElasticShortcut),
            diagnostics=tuple(model.diagnostic_names) if isinstance(model, Diagnostics) else (),
            fields=isinstance(model, MicroFields),
            portable=isinstance(model, PortableState),
            replicated=isinstance(model, ReplicatedState) and bool(model.state_replicated),
            described=isinstance(model, Described),
            kinematics=str(model.kinematics) if isinstance(model, FiniteStrain) else "small",
            snapshots=isinstance(model, FluctuationSnapshots),
            certified=isinstance(model, Certified),
            warm=isinstance(model, WarmStart),
        )
