"""Cell-wise (DG0) output fields of an RVE: its cell data and its committed state.

The cell data are grain ids and orientations as Bunge angles; the committed state gives the
laws' output fields and the von Mises stress.
"""

from __future__ import annotations

from petsc4py import PETSc

import numpy as np
from dolfinx import fem

from fe2x.geometry import RVEMesh
from fe2x.materials.orientations import matrix_to_euler
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["EULER_NAMES", "cell_data_fields", "committed_cell_fields"]

#: The fields of the Bunge Euler angles (degrees) of ``cell_data["orientation"]``.
EULER_NAMES = ("phi1", "Phi", "phi2")


def cell_data_fields(cell: RVEMesh, space: fem.FunctionSpace) -> dict[str, fem.Function]:
    """The cell data of ``cell`` as functions in the scalar DG0 ``space``.

    Every scalar array is taken as it is (e.g. ``"grain"``), and an ``"orientation"`` (crystal
    -> sample rotations) as its Bunge Euler angles ``phi1, Phi, phi2`` in degrees; other arrays
    are left out. Local, no collective.
    """
    fields: dict[str, np.ndarray] = {}
    for name, values in (cell.cell_data or {}).items():
        values = np.asarray(values)
        if values.ndim == 1:
            fields[name] = values.astype(float)
        elif name == "orientation" and values.shape[1:] == (3, 3):
            euler = matrix_to_euler(values, degrees=True).reshape(-1, 3)
            fields.update(zip(EULER_NAMES, euler.T, strict=True))
    functions = {}
    for name, values in fields.items():
        f = fem.Function(space, name=name)
        f.x.array[space.dofmap.list[: values.size, 0]] = values
        functions[name] = f
    return functions


def committed_cell_fields(
    problem: RVEProblem, x: PETSc.Vec, E: np.ndarray, space: fem.FunctionSpace
) -> dict[str, fem.Function]:
    """The committed fields at fluctuation ``x`` and macro strain ``E`` in the DG0 ``space``.

    The cell data of :func:`cell_data_fields` come first, then every output field of the laws
    (e.g. ``"equivalent_plastic_strain"``, 0 in phases without it) and ``"von_mises_stress"`` of
    the committed stress (in 2D plane strain with σ33), as cell means of the point values
    weighted by quadrature weight × |det J|, i.e. L2 projections onto DG0. The committed stress
    is re-evaluated from the committed strain and state with no time step, so the fields follow
    a swapped-in state. Collective.
    """
    rule = problem.rule
    eps = problem.strains(x, E)
    sigma = problem.laws.stresses(eps, problem.laws.committed)
    dev = sigma.copy()
    dev[:, :3] -= sigma[:, :3].mean(axis=1, keepdims=True)
    values = dict(problem.laws.outputs())
    values["von_mises_stress"] = np.sqrt(1.5 * np.einsum("ij,ij->i", dev, dev))
    w = rule.point_weights().reshape(-1, rule.n_q)
    cell_volume = w.sum(axis=1)
    dofs = space.dofmap.list[: rule.n_cells, 0]
    fields = cell_data_fields(problem.cell, space)
    for name, point_values in values.items():
        f = fem.Function(space, name=name)
        f.x.array[dofs] = (w * point_values.reshape(-1, rule.n_q)).sum(axis=1) / cell_volume
        f.x.scatter_forward()
        fields[name] = f
    return fields
