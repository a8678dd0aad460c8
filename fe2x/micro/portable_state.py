"""States of a distributed RVE that do not depend on its partition, for checkpoints.

A state of :class:`~fe2x.micro.nonlinear.NonlinearRVE` holds this rank's reduced fluctuation
dofs and the history of its owned quadrature points. Its portable form replaces the reduced
dofs by the full fluctuation w = P x at the owned nodes, and the *layout* says where these lie:
the node coordinates and, per phase with a history, the key ``input cell index · n_q + q`` of
each owned point. On another partition (other ranks or group size) the pieces are matched by
coordinates and keys, and the reduced dofs recovered exactly as x = Pᵀ w / Pᵀ 1 (every
periodic image holds the same value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["portable_state", "state_importer", "state_layout"]


def _owned_nodes(problem: RVEProblem) -> np.ndarray:
    V = problem.V
    return V.tabulate_dof_coordinates()[: V.dofmap.index_map.size_local]


def _history_phases(problem: RVEProblem) -> list[str]:
    """The phases whose law carries a state."""
    return [name for name, law in problem.laws.laws.items() if law.state_shapes]


def state_layout(problem: RVEProblem) -> dict[str, Any]:
    """Where this rank's part of a state lies.

    The owned node coordinates (rows of w) and the keys of each history phase's owned points.
    """
    keys = problem.rule.point_keys()
    return {
        "nodes": _owned_nodes(problem).copy(),
        "points": {name: keys[problem.points[name]] for name in _history_phases(problem)},
    }


def portable_state(problem: RVEProblem, state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the reduced fluctuation ``x`` replaced by ``w = P x`` (collective).

    ``w`` holds the values at the owned nodes of :func:`state_layout`.
    """
    P = problem.P
    x, w = P.createVecRight(), P.createVecLeft()
    try:
        x.array[:] = state["x"]
        P.mult(x, w)
        full = w.array_r.reshape(-1, problem.dim).copy()
    finally:
        x.destroy()
        w.destroy()
    return {"E": state["E"], "w": full, "history": state["history"]}


def state_importer(
    problem: RVEProblem, layouts: Sequence[Mapping[str, Any]]
) -> Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]:
    """A function from the portable states of another partition of this RVE to this rank's state.

    Those are the states of all ranks of that partition (``layouts[r]`` and ``pieces[r]`` from
    rank r). Nodes are matched by coordinates and points by their keys; a mismatch (another RVE)
    raises Fe2xError on every rank. Building it and calling it are collective.
    """
    from scipy.spatial import cKDTree

    nodes = np.vstack([np.asarray(layout["nodes"]) for layout in layouts])
    distance, node_index = cKDTree(nodes).query(_owned_nodes(problem))
    scale = float(np.max(problem.cell.lengths))
    local_keys = state_layout(problem)["points"]
    point_index: dict[str, np.ndarray | None] = {}
    for name in _history_phases(problem):
        keys = np.concatenate([np.asarray(layout["points"][name]) for layout in layouts])
        order = np.argsort(keys)
        where = order[np.searchsorted(keys[order], local_keys[name]).clip(0, max(keys.size - 1, 0))]
        if keys.size == 0 or not np.array_equal(keys[where], local_keys[name]):
            where = None
        point_index[name] = where
    matched = distance.max(initial=0.0) <= 1e-9 * scale and all(
        v is not None for v in point_index.values()
    )
    if not problem.comm.allreduce(matched, op=MPI.LAND):
        raise Fe2xError("the checkpointed RVE states do not fit this RVE's mesh")
    P = problem.P
    counts, ones = P.createVecRight(), P.createVecLeft()
    ones.set(1.0)
    P.multTranspose(ones, counts)
    ones.destroy()

    def local_state(pieces: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        w_all = np.vstack([np.asarray(p["w"]).reshape(-1, problem.dim) for p in pieces])
        w, x = P.createVecLeft(), P.createVecRight()
        try:
            w.array[:] = w_all[node_index].ravel()
            P.multTranspose(w, x)
            x.pointwiseDivide(x, counts)
            reduced = x.array_r.copy()
        finally:
            w.destroy()
            x.destroy()
        history = {
            name: np.vstack([np.asarray(p["history"][name]) for p in pieces])[index]
            for name, index in point_index.items()
        }
        return {"E": np.asarray(pieces[0]["E"]).copy(), "x": reduced, "history": history}

    return local_state
