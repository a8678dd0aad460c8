"""The micro-instability diagnostic: the lowest eigenvalue of an RVE's reduced Jacobian.

On the RVE's fluctuation space, by SLEPc (Krylov–Schur with shift-and-invert).

At a converged RVE state the reduced Jacobian J = Pᵀ K P is the second variation of the RVE's
energy over the admissible fluctuations (PBC: periodic, KUBC: zero on the boundary). While its
lowest eigenvalue λ_min is positive the state is stable; λ_min ≤ 0 means a fluctuation mode
costs no energy (a bifurcation, e.g. the buckling of the ligaments of a porous cell): the
first-order periodic RVE then no longer represents the material, whose response depends on
the cell size and on which cells the pattern spans.

λ_min is reported relative to its virgin value λ_ref (J at the undeformed, unloaded state,
positive definite), which makes it independent of units and mesh size: 1 undeformed, 0 at a
bifurcation. The shift σ = −λ_ref lies below the whole spectrum as long as λ_min > −λ_ref, so
the two eigenvalues nearest σ include the lowest one; an eigenvalue found below σ is deeper
than the diagnostic needs to resolve (it is reported as found, well below zero).
"""

from __future__ import annotations

from petsc4py import PETSc

import numpy as np
from slepc4py import SLEPc

from fe2x.errors import SolverError

__all__ = ["LowestEigenvalue"]

#: Relative tolerance of the eigenpairs (the diagnostic needs the sign and a few digits).
EPS_TOL = 1e-8
#: Below this many rows on one rank the shifted matrix is factorized by PETSc's own LU.
SMALL_LU_ROWS = 1000


class LowestEigenvalue:
    """λ_min(J) / λ_ref for reduced Jacobians of one RVE (collective on J's communicator).

    Args:
        J_ref: the virgin reduced Jacobian (symmetric positive definite); its lowest eigenvalue
            is the reference λ_ref.
        petsc_options_prefix: prefix of the eigensolver's options (``<prefix>eps_...``,
            ``<prefix>st_...``), read once at set-up.
    """

    def __init__(self, J_ref: PETSc.Mat, petsc_options_prefix: str) -> None:
        self._prefix = petsc_options_prefix
        self.reference = self._lowest(J_ref, 0.0)
        if not self.reference > 0.0:
            raise SolverError(
                f"the virgin RVE Jacobian is not positive definite (lowest eigenvalue "
                f"{self.reference:.3g}); the boundary condition leaves a rigid motion free"
            )

    def _lowest(self, J: PETSc.Mat, shift: float, mode: PETSc.Vec | None = None) -> float:
        """The lowest of the two eigenvalues of J nearest ``shift``.

        Its eigenvector goes into ``mode``, if given.
        """
        eps = SLEPc.EPS().create(J.getComm())
        try:
            eps.setOptionsPrefix(self._prefix)
            eps.setOperators(J)
            eps.setProblemType(SLEPc.EPS.ProblemType.NHEP)
            eps.setDimensions(nev=2)
            eps.setWhichEigenpairs(SLEPc.EPS.Which.TARGET_REAL)
            eps.setTarget(shift)
            eps.setTolerances(EPS_TOL, 500)
            st = eps.getST()
            st.setType(SLEPc.ST.Type.SINVERT)
            ksp = st.getKSP()
            ksp.setType("preonly")
            pc = ksp.getPC()
            pc.setType("lu")
            small = J.getComm().size == 1 and J.getSize()[0] < SMALL_LU_ROWS
            pc.setFactorSolverType("petsc" if small else "mumps")
            eps.setFromOptions()
            eps.solve()
            found = [eps.getEigenvalue(i).real for i in range(eps.getConverged())]
            if found and mode is not None:
                eps.getEigenvector(int(np.argmin(found)), mode)
        finally:
            eps.destroy()
        if not found:
            raise SolverError("micro stability: the eigensolver found no eigenvalue")
        return min(found)

    def __call__(self, J: PETSc.Mat, mode: PETSc.Vec | None = None) -> float:
        """λ_min(J) / λ_ref of a reduced Jacobian of the same RVE.

        Its eigenvector (the instability mode of the fluctuation dofs) goes into ``mode``, if
        given.
        """
        return self._lowest(J, -self.reference, mode) / self.reference
