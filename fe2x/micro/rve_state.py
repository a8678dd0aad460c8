"""The committed state of a nonlinear RVE in plain numpy: packed, and checked on the way back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.fem.quadrature_laws import PhaseStates, QuadratureLaws
from fe2x.materials.law import pack_state, unpack_state

__all__ = ["packed_state", "unpacked_state"]


def packed_state(laws: QuadratureLaws, E: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    """The state ``E``, ``x`` and ``history`` of the laws' committed states (copies).

    ``history``: phase -> its points' law state packed as ``(m, width)`` by
    :func:`~fe2x.materials.law.pack_state`, for the phases whose law has a state.
    """
    return {
        "E": E.copy(),
        "x": x.copy(),
        "history": {
            name: pack_state(laws.laws[name].state_shapes, state)
            for name, state in laws.committed.items()
            if laws.laws[name].state_shapes
        },
    }


def unpacked_state(
    laws: QuadratureLaws, state: Mapping[str, Any], n_local: int, n_strain: int
) -> tuple[PhaseStates, np.ndarray, np.ndarray]:
    """The committed law states, E and this rank's ``n_local`` fluctuation dofs x of ``state``.

    An Fe2xError if x or a phase's history does not fit this RVE.
    """
    x = np.asarray(state["x"], dtype=float)
    if x.shape != (n_local,):
        raise Fe2xError(f"state has {x.shape[0]} fluctuation dofs on this rank; expected {n_local}")
    committed: PhaseStates = {}
    for name, law in laws.laws.items():
        if not law.state_shapes:
            committed[name] = {}
            continue
        packed = np.asarray(state["history"].get(name, np.zeros((0, 0))), dtype=float)
        try:
            if packed.shape[0] != laws.points[name].size:
                raise ValueError
            committed[name] = unpack_state(law.state_shapes, packed)
        except (ValueError, IndexError):
            raise Fe2xError(f"state history of phase {name!r} does not match this RVE") from None
    E = np.asarray(state["E"], dtype=float)
    if E.size != n_strain:
        raise Fe2xError(f"state has {E.size} macro strain components; expected {n_strain}")
    return committed, E.reshape(n_strain).copy(), x
