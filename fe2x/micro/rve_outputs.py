"""What a nonlinear RVE's committed state shows: phase fractions, averages, displacement, mode."""

from __future__ import annotations

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
from dolfinx import fem

from fe2x.materials.mandel import mandel_to_tensor
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["instability_mode", "micro_displacement", "output_averages", "volume_fractions"]


def volume_fractions(problem: RVEProblem) -> dict[str, float]:
    """Volume fraction of each phase in the meshed cell, by quadrature (collective)."""
    weights = problem.rule.point_weights()
    phases = problem.cell.phases
    local = np.array([weights[problem.points[name]].sum() for name in phases])
    total = problem.comm.allreduce(local, op=MPI.SUM)
    return {name: float(v / problem.volume) for name, v in zip(phases, total, strict=True)}


def output_averages(problem: RVEProblem) -> dict[str, float]:
    """The volume average ⟨q⟩ = (1/|Ω|) ∫ q dy of each output field q of the laws (collective)."""
    weights = problem.rule.point_weights()
    names = problem.laws.output_names
    fields = problem.laws.outputs()
    local = np.array([float(weights @ fields[name]) for name in names])
    total = np.empty_like(local)
    problem.comm.Allreduce(local, total, op=MPI.SUM)
    return {name: float(v) / problem.volume for name, v in zip(names, total, strict=True)}


def micro_displacement(problem: RVEProblem, x: PETSc.Vec, E: np.ndarray) -> fem.Function:
    """The micro displacement u = (E − E₀)·(y − y_c) + P x, as a new function (collective).

    E₀ is the undeformed measure (Mandel: the strain tensor; finite strain: F̄ − I); u is a
    function of the displacement space.
    """
    dim, cell = problem.dim, problem.cell
    H_flat = E - problem.identity
    H = (
        H_flat.reshape(dim, dim)
        if problem.kinematics == "finite"
        else mandel_to_tensor(H_flat, dim)
    )
    centre = np.asarray(cell.origin) + 0.5 * np.asarray(cell.lengths)
    u = fem.Function(problem.V, name="u")
    u.interpolate(lambda y: H @ (y[:dim] - centre[:, None]))
    w = problem.P.createVecLeft()
    problem.P.mult(x, w)
    u.x.petsc_vec.axpy(1.0, w)
    w.destroy()
    u.x.scatter_forward()
    return u


def instability_mode(problem: RVEProblem) -> tuple[float, fem.Function]:
    """The lowest eigenpair of the reduced Jacobian of the last solve (collective).

    The diagnostic λ_min / λ_ref and the fluctuation P x of its eigenvector, scaled to
    max |w| = 1.
    """
    x, w = problem.P.createVecRight(), problem.P.createVecLeft()
    try:
        value = problem.lowest_eigenvalue(x)
        problem.P.mult(x, w)
        mode = fem.Function(problem.V, name="instability_mode")
        mode.x.petsc_vec.axpy(1.0, w)
        mode.x.scatter_forward()
    finally:
        x.destroy()
        w.destroy()
    peak = problem.comm.allreduce(float(np.abs(mode.x.array).max(initial=0.0)), op=MPI.MAX)
    mode.x.array[:] /= max(peak, 1e-300)
    return value, mode
