"""Unit macro strain fields of an RVE and the corrector solves that condense them."""

from __future__ import annotations

import numpy as np
from dolfinx import fem

from fe2x.geometry import RVEMesh
from fe2x.materials.mandel import mandel_to_tensor

__all__ = ["unit_strain_fields"]


def unit_strain_fields(V: fem.FunctionSpace, cell: RVEMesh) -> list[fem.Function]:
    """u_E,k = e_k·(y − y_c) for each Mandel unit strain e_k, y_c the cell centre.

    Interpolated exactly: the fields are linear, and V's degree is at least the geometry's.
    """
    dim = V.mesh.topology.dim
    n = 3 if dim == 2 else 6
    centre = np.asarray(cell.origin) + 0.5 * np.asarray(cell.lengths)
    fields = []
    for k in range(n):
        E = mandel_to_tensor(np.eye(n)[k], dim)
        u = fem.Function(V, name=f"u_E{k}")
        u.interpolate(lambda x, E=E: E @ (x[:dim] - centre[:, None]))
        fields.append(u)
    return fields
