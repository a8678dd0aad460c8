"""What a reduced basis was built from, and the check that it fits the RVE it is used on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.reduced_operators import phase_of_points

__all__ = ["check_provenance", "rve_provenance"]


def _digest(*arrays: np.ndarray) -> str:
    """The first 16 hex digits of the SHA-256 of the arrays' bytes."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _law_facts(law: object) -> dict[str, Any]:
    """The public constants of a law, as JSON values."""
    facts = {k: v for k, v in vars(law).items() if not k.startswith("_") and k != "name"}
    return {"type": type(law).__name__, **json.loads(json.dumps(facts, default=str))}


def rve_provenance(rve: NonlinearRVE) -> dict[str, Any]:
    """What a reduced basis of ``rve`` depends on: discretisation, mesh, phases and laws.

    The mesh digest covers the dof coordinates (relative to the cell), the prolongation's
    pattern (boundary condition and numbering) and the quadrature weights; the phase digest
    the phase of every quadrature point. One rank (the reduced RVE's layout).
    """
    p = rve.problem
    if p.comm.size != 1:
        raise Fe2xError("a reduced basis describes an RVE on one rank")
    cell = p.cell
    coordinates = p.V.tabulate_dof_coordinates()[:, : p.dim]
    relative = np.round((coordinates - cell.origin) / cell.lengths, 8)
    indptr, indices, _ = p.P.getValuesCSR()
    weights = np.round(p.weights / p.volume, 12)
    return {
        "dim": p.dim,
        "bc": p.bc.name,
        "degree": int(p.V.ufl_element().embedded_superdegree),
        "n_dofs": p.n_dofs,
        "n_reduced": p.n_reduced,
        "n_points": p.rule.n_points,
        "lengths": [float(v) for v in cell.lengths],
        "phases": {name: int(points.size) for name, points in p.points.items()},
        "mesh_digest": _digest(relative, indptr, indices, weights),
        "phase_digest": _digest(phase_of_points(p)),
        "laws": {name: _law_facts(law) for name, law in p.laws.laws.items()},
    }


def check_provenance(recorded: Mapping[str, Any], actual: Mapping[str, Any], source: str) -> None:
    """Raise one line naming what differs if a basis for ``recorded`` is used on ``actual``.

    A basis recorded for the RVE of ``recorded`` used on the RVE of ``actual``: another
    discretisation, mesh, microstructure or law.
    """
    for key in ("dim", "bc", "degree", "n_dofs", "n_reduced", "n_points", "lengths"):
        if recorded.get(key) != actual.get(key):
            raise Fe2xError(
                f"{source} was built for another RVE mesh or discretisation ({key} "
                f"{recorded.get(key)!r} there, {actual.get(key)!r} here)"
            )
    if recorded.get("phases") != actual.get("phases") or recorded.get("phase_digest") != actual.get(
        "phase_digest"
    ):
        raise Fe2xError(
            f"{source} was built for another microstructure (phases {recorded.get('phases')} "
            f"there, {actual.get('phases')} here, or laid out differently)"
        )
    if recorded.get("mesh_digest") != actual.get("mesh_digest"):
        raise Fe2xError(f"{source} was built for another RVE mesh (same sizes, other nodes)")
    laws, here = recorded.get("laws", {}), actual.get("laws", {})
    for name in sorted(set(laws) | set(here)):
        there, mine = laws.get(name), here.get(name)
        if there != mine:
            keys = sorted(
                k
                for k in set(there or {}) | set(mine or {})
                if (there or {}).get(k) != (mine or {}).get(k)
            )
            detail = ", ".join(
                f"{k} {(there or {}).get(k)!r} there, {(mine or {}).get(k)!r} here" for k in keys
            )
            raise Fe2xError(f"{source} was built for other laws (phase {name!r}: {detail})")
