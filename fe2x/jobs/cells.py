"""What the jobs share about RVE cells: the warning when a mesh loses phase volume."""

from __future__ import annotations

import logging

from mpi4py import MPI

from fe2x.config import CellTable

__all__ = ["warn_if_volume_lost"]

logger = logging.getLogger(__name__)


def warn_if_volume_lost(cell: CellTable, realized: dict[str, float], comm: MPI.Comm) -> None:
    """Warn (on rank 0) when the mesh holds a phase volume fraction more than 1 % away from the
    one the geometry asks for: straight or coarse elements cut a curved inclusion short."""
    nominal = cell.nominal_volume_fractions()
    change = {p: realized[p] / v - 1.0 for p, v in nominal.items()}
    off = {p: c for p, c in change.items() if abs(c) > 0.01}
    if off and comm.rank == 0:
        straight = getattr(cell, "geometry_order", 2) == 1
        logger.warning(
            "the RVE mesh holds the volume fraction(s) %s instead of %s; refine mesh_size%s",
            ", ".join(f"{p} {realized[p]:.4f} ({100 * c:+.1f} %)" for p, c in off.items()),
            ", ".join(f"{nominal[p]:.4g}" for p in off),
            " or set geometry_order = 2" if straight else "",
        )
