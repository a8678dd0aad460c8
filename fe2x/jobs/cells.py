"""What the jobs share about RVE cells: the lost-volume warning and the cell-data files.

The warning is given when a mesh loses phase volume; the files hold the cells' data (grains and
orientations).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mpi4py import MPI

from dolfinx import fem

from fe2x.config import CellTable
from fe2x.geometry import RVEMesh
from fe2x.io.fields import write_micro_fields
from fe2x.io.grains import write_grains
from fe2x.micro.cell_fields import cell_data_fields

__all__ = ["warn_if_volume_lost", "write_cell_data"]

logger = logging.getLogger(__name__)


def warn_if_volume_lost(cell: CellTable, realized: dict[str, float], comm: MPI.Comm) -> None:
    """Warn (on rank 0) when a phase volume fraction of the mesh is more than 1 % off nominal.

    The nominal fraction is the one the geometry asks for; straight or coarse elements cut a
    curved inclusion short.
    """
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


def write_cell_data(cell: RVEMesh, out: Path) -> list[Path]:
    """Write the cell's data for ParaView and its grains' table and pole figures.

    The data go to ``out/fields/cell_data.bp`` (grain ids, Bunge angles), the grains to
    ``out/grains.csv`` and ``out/pole_figures.png``. Collective.

    Returns:
        The paths written, none for a cell without cell data.
    """
    fields = cell_data_fields(cell, fem.functionspace(cell.mesh, ("DG", 0)))
    if not fields:
        return []
    paths = [write_micro_fields(fields, out / "fields" / "cell_data.bp")]
    return paths + write_grains(fields, out)
