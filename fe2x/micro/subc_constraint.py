"""SUBC's mean-strain constraint G x = 0 on the nonlinear RVE's reduced fluctuation.

The rows of G = B_ε P (g_i = Pᵀ ∫ ε(v)_i dy), the least-squares multipliers that the residual
sheds (λ = (G Gᵀ)⁻¹ G Pᵀ f), the Schur complement of the Newton steps and, under finite strain,
the elimination of the rigid rotations (:mod:`fe2x.micro.subc_rotations`) with the low-rank
Jacobian J = J_p + U K Vᵀ that the line search multiplies with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

from fe2x.micro.correctors import SchurComplement
from fe2x.micro.subc_rotations import RotationElimination

if TYPE_CHECKING:
    from fe2x.micro.rve_problem import RVEProblem

__all__ = ["MeanStrainConstraint", "jacobian_operator"]


class MeanStrainConstraint:
    """The constraint rows of SUBC, its multipliers and (finite strain) eliminated rotations.

    Args:
        problem: the RVE problem, set up as far as its operators, P and the tangent field of
            its assembled Jacobian.

    Attributes:
        rows: the rows of the multipliers (the symmetric ones under finite strain).
        rotations: the eliminated rotations (finite strain), or None.
        schur: the Schur complement of the Newton steps on :attr:`rows`.
    """

    def __init__(self, problem: RVEProblem) -> None:
        n, ops, tangent = problem.n_strain, problem.ops, problem.laws.tangent
        rows: list[PETSc.Vec] = []  # G = B_ε P: g_i = Pᵀ ∫ ε(v)_i dy
        for i in range(n):
            rows.append(problem.P.createVecRight())
            ops.residual(np.broadcast_to(np.eye(n)[i], (problem.rule.n_points, n)), rows[-1])
        self.rotations: RotationElimination | None = None
        if problem.kinematics == "finite":  # the skew rows eliminate the rotations, sym ones stay
            self.rotations = RotationElimination(
                rows, problem.dim, problem.volume, problem.weights, problem.comm
            )
            self.rotations.update(tangent, ops.residual)  # J's, assembled
            for g in rows:
                g.destroy()
            rows = self.rotations.sym_rows
        self.rows = rows
        self._GGt_inv = np.linalg.inv(np.array([g.mDot(rows) for g in rows]))
        self.schur = SchurComplement(rows)

    def shed_multipliers(self, f: PETSc.Vec) -> None:
        """F = Pᵀ f − Gᵀ λ in place, with λ = (G Gᵀ)⁻¹ G Pᵀ f."""
        multipliers = self._GGt_inv @ np.asarray(f.mDot(self.rows))
        f.maxpy([-float(m) for m in multipliers], self.rows)


def jacobian_operator(
    J_p: PETSc.Mat, rotations: RotationElimination | None, comm: MPI.Comm
) -> PETSc.Mat:
    """The operator of the Newton steps: J_p itself, or J = J_p + U K Vᵀ with rotations."""
    if rotations is None:
        return J_p
    operator = PETSc.Mat().createPython(
        J_p.getSizes(),  # type: ignore[arg-type]  # the sizes it gave
        comm=comm,  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
    )
    operator.setPythonContext(_LowRankJacobian(rotations, J_p))
    operator.setUp()
    return operator


class _LowRankJacobian:
    """PETSc python-matrix context: y = J x with J = J_p + U K Vᵀ (finite-strain SUBC)."""

    def __init__(self, rotations: RotationElimination, J_p: PETSc.Mat) -> None:
        self.rotations, self.J_p = rotations, J_p

    def mult(self, A: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """Apply y = J x."""
        self.rotations.mult(self.J_p, x, y)
