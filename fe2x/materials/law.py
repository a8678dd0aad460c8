"""The constitutive-law contract: one batched update over quadrature points, on numpy arrays.

Every law fe2x solves with (elastic, J2, and what comes next) implements
:class:`ConstitutiveLaw`: it declares the internal state it carries (names and per-point
shapes) and the per-point parameters it reads (e.g. a grain orientation), builds the initial
state of ``n`` points, and maps ``(strain, state, dt, parameters)`` to
``(stress, tangent, new_state)`` for all points at once. A law never sees a mesh; the
evaluator (:class:`fe2x.fem.quadrature_laws.QuadratureLaws`) binds laws to the quadrature
points of their phase and keeps the committed and trial states.

Conventions (see DESIGN.md):

- ``kinematics = "small"``: the strain is the 3D Mandel small strain ``(n, 6)`` (plane strain
  is embedded by the evaluator with ε₃₃ = ε₂₃ = ε₁₃ = 0), the stress the Mandel Cauchy stress
  and the tangent dσ/dε ``(n, 6, 6)``.
- ``kinematics = "finite"``: the strain is the deformation gradient ``F`` ``(n, 9)``, row-major
  11, 12, 13, 21, ..., 33; the stress the first Piola–Kirchhoff ``P`` ``(n, 9)`` and the
  tangent ``A[3i+J, 3k+L] = ∂P_iJ/∂F_kL`` ``(n, 9, 9)``, never symmetrised in storage.

A state is a dict of arrays with one row per point; a law never modifies the arrays it is
given, so a state can be kept for cutback, swapped between macro points and checkpointed.
A law that cannot integrate a point (e.g. a local Newton that does not converge) raises
:class:`fe2x.errors.SolverError`; the caller then cuts the step back.

Optional capabilities are small protocols of their own, checked once with ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "KINEMATICS",
    "ConstitutiveLaw",
    "ElasticLimit",
    "ElasticStiffness",
    "LawResponse",
    "LinearLaw",
    "OutputFields",
    "State",
    "check_law",
    "is_linear",
    "pack_state",
    "strain_size",
    "take_state",
    "unpack_state",
]

#: The strain measures a law can be written in.
KINEMATICS: tuple[str, ...] = ("small", "finite")

#: Internal state of n points: variable name -> array of shape (n, *shape).
State = dict[str, np.ndarray]


class LawResponse(NamedTuple):
    """Result of one :meth:`ConstitutiveLaw.update` (unpacks as ``stress, tangent, state``).

    Attributes:
        stress: Mandel stress ``(n, 6)`` (small) or P ``(n, 9)`` (finite).
        tangent: consistent (algorithmic) tangent ``(n, 6, 6)`` or ``(n, 9, 9)``.
        state: the trial state at the new strain, to be committed once the step converges.
    """

    stress: np.ndarray
    tangent: np.ndarray
    state: State


@runtime_checkable
class ConstitutiveLaw(Protocol):
    """A constitutive law batched over points.

    Attributes:
        name: label used in messages (the phase name, when built from a config).
        kinematics: ``"small"`` or ``"finite"`` (the strain measure, see the module notes).
        state_shapes: internal variable name -> shape per point (``()`` for a scalar).
        parameter_shapes: per-point parameter name -> shape per point, read from the cell data
            of the mesh (e.g. ``{"orientation": (3, 3)}``); empty for most laws.
    """

    @property
    def name(self) -> str:
        """Label used in messages (the phase name, when built from a config)."""
        ...

    @property
    def kinematics(self) -> str:
        """``"small"`` or ``"finite"`` (the strain measure, see the module notes)."""
        ...

    @property
    def state_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Internal variables and their shape per point."""
        ...

    @property
    def parameter_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Per-point parameters and their shape per point."""
        ...

    def initial_state(self, n: int) -> State:
        """The virgin state of ``n`` points."""
        ...

    def update(
        self,
        strain: np.ndarray,
        state: State,
        dt: float = 0.0,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> LawResponse:
        """Stress, consistent tangent and trial state at ``strain`` from ``state`` over ``dt``."""
        ...


@runtime_checkable
class ElasticStiffness(Protocol):
    """A law with an initial (virgin-state) elastic stiffness.

    It is the tangent for small strains from the initial state, used by the exact elastic
    shortcut and for bounds.
    """

    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """3D Mandel stiffness ``(6, 6)``, or ``(n, 6, 6)`` with per-point parameters."""
        ...


@runtime_checkable
class ElasticLimit(Protocol):
    """A law that can tell, from its initial state, whether a strain stays elastic.

    For the elastic shortcut: a virgin RVE answers C_eff E exactly while every point does.
    """

    def stays_elastic(
        self, strain: np.ndarray, parameters: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Per point, whether ``strain`` (from the initial state) causes no inelastic flow."""
        ...


@runtime_checkable
class OutputFields(Protocol):
    """A law with named scalar output fields of its state (e.g. an equivalent plastic strain).

    Models average them, and writers write them, as they get them.
    """

    output_names: tuple[str, ...]

    def outputs(self, state: State) -> dict[str, np.ndarray]:
        """Each output field at every point, ``(n,)``."""
        ...


@runtime_checkable
class LinearLaw(Protocol):
    """A law whose stress is ``C ε`` with a constant tangent and no state (``linear`` is True).

    Evaluators assemble its tangent once and skip its updates.
    """

    linear: bool

    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The constant 3D Mandel stiffness ``(6, 6)`` (or per point ``(n, 6, 6)``)."""
        ...


def strain_size(kinematics: str) -> int:
    """Entries of one point's strain: 6 (small, Mandel) or 9 (finite, F row-major).

    >>> strain_size("small"), strain_size("finite")
    (6, 9)
    """
    if kinematics not in KINEMATICS:
        raise ValueError(f"unknown kinematics {kinematics!r}; allowed: {KINEMATICS}")
    return 6 if kinematics == "small" else 9


def is_linear(law: object) -> bool:
    """Whether ``law`` declares itself linear (:class:`LinearLaw` with ``linear`` True)."""
    return isinstance(law, LinearLaw) and bool(law.linear)


def check_law(law: object, who: str = "law") -> ConstitutiveLaw:
    """``law`` if it implements :class:`ConstitutiveLaw`, else a TypeError saying what it lacks."""
    if isinstance(law, ConstitutiveLaw):
        if law.kinematics in KINEMATICS:
            return law
        detail = f"kinematics {law.kinematics!r}"
    else:
        required = ("name", "kinematics", "state_shapes", "parameter_shapes", "initial_state")
        missing = [a for a in (*required, "update") if not hasattr(law, a)]
        detail = f"missing {missing}"
    raise TypeError(f"{who}: {type(law).__name__} is not a constitutive law ({detail})")


def take_state(state: State, index: np.ndarray) -> State:
    """The state of the points ``index`` (integer indices or a boolean mask), as copies."""
    return {name: values[index] for name, values in state.items()}


def pack_state(shapes: Mapping[str, tuple[int, ...]], state: State) -> np.ndarray:
    """The state of n points as one ``(n, width)`` array, for checkpoints and migration.

    The variables of ``shapes``, each flattened per point, lie side by side in the declared
    order: a compact, law-agnostic form.
    """
    n = len(next(iter(state.values()))) if state else 0
    columns = [
        np.asarray(state[name], dtype=float).reshape(n, int(np.prod(shape, dtype=np.int64)))
        for name, shape in shapes.items()
    ]
    return np.hstack(columns) if columns else np.zeros((n, 0))


def unpack_state(shapes: Mapping[str, tuple[int, ...]], packed: np.ndarray) -> State:
    """The inverse of :func:`pack_state` (copies); a ValueError if the width does not fit."""
    packed = np.asarray(packed, dtype=float)
    widths = [int(np.prod(shape, dtype=np.int64)) for shape in shapes.values()]
    if packed.ndim != 2 or packed.shape[1] != sum(widths):
        raise ValueError(f"packed state of shape {packed.shape}; expected (n, {sum(widths)})")
    state, start = {}, 0
    for (name, shape), width in zip(shapes.items(), widths, strict=True):
        state[name] = packed[:, start : start + width].reshape(len(packed), *shape).copy()
        start += width
    return state
