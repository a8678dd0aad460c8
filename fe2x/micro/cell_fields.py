"""Cell-wise (DG0) output fields of an RVE's committed state: the laws' output fields and the
von Mises stress."""

from __future__ import annotations

from petsc4py import PETSc

import numpy as np
from dolfinx import fem

from fe2x.micro.rve_problem import RVEProblem

__all__ = ["committed_cell_fields"]


def committed_cell_fields(
    problem: RVEProblem, x: PETSc.Vec, E: np.ndarray, space: fem.FunctionSpace
) -> dict[str, fem.Function]:
    """The committed fields at fluctuation ``x`` and macro strain ``E`` in the DG0 ``space``.

    Every output field of the laws (e.g. ``"equivalent_plastic_strain"``, 0 in phases without
    it) and ``"von_mises_stress"`` of the committed stress (in 2D plane strain with σ33), as
    cell means of the point values weighted by quadrature weight × |det J|, i.e. L2
    projections onto DG0. The committed stress is re-evaluated from the committed strain and
    state with no time step, so the fields follow a swapped-in state. Collective.
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
    fields = {}
    for name, point_values in values.items():
        f = fem.Function(space, name=name)
        f.x.array[dofs] = (w * point_values.reshape(-1, rule.n_q)).sum(axis=1) / cell_volume
        f.x.scatter_forward()
        fields[name] = f
    return fields
