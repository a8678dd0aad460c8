"""The reduced RVE's error indicator: the change of Σ one full Newton step would make.

At the lifted solution u = E·y + P Φ q, ΔΣ ≈ (Σ_h − Σ) + ⟨C_T ε(P δ)⟩ with J_T δ = −R from a
few preconditioned conjugate-gradient steps, and η = ‖ΔΣ‖ / max(‖σ‖_rms, floor)
(:mod:`fe2x.micro.reduced`).
"""

from __future__ import annotations

from collections.abc import Iterable

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np
import scipy.sparse

from fe2x.errors import SolverError
from fe2x.fem.quadrature_laws import PhaseStates, QuadratureLaws
from fe2x.micro.reduced_operators import stress_rms
from fe2x.micro.rve_problem import RVEProblem

__all__ = ["INDICATOR_RTOL", "INDICATOR_STEPS", "StressChangeIndicator"]

#: The indicator's conjugate gradients stop when the preconditioned residual has dropped by this
#: factor, or after this many steps: with 1 step the estimate misses plastic errors up to
#: 14-fold on the plate cell, with 3 fixed steps it ranks the errors of a 976-point cell with
#: Spearman 0.86 (converged: 0.95), and with the relative stop it takes 1 step where the
#: increment is elastic.
INDICATOR_RTOL, INDICATOR_STEPS = 1e-2, 12


class StressChangeIndicator:
    """The indicator η of a reduced answer, from the full laws at all points.

    Args:
        p: the full RVE's problem (one rank).
        full_laws: the laws at all quadrature points that track the full history.
        M: the energy inner product Pᵀ K_el P, factorized once as the CG preconditioner.
    """

    def __init__(
        self, p: RVEProblem, full_laws: QuadratureLaws, M: scipy.sparse.csr_matrix
    ) -> None:
        self.problem, self.full_laws = p, full_laws
        # The preconditioner: M is SPD, so a Cholesky factor; PETSc's with nested-dissection
        # ordering back-substitutes 1.4-1.8× faster than SuperLU's symmetric-mode LU in 2D
        # (974 dofs: 84 against 151 µs; 2,730: 278 against 487 µs), 1.4× in 3D (5,667: 5.4
        # against 7.9 ms), where its factorization is slow (3.3 s; once per RVE group).
        csr = M.tocsr()
        self._M = PETSc.Mat().createAIJ(
            size=csr.shape,
            csr=(csr.indptr, csr.indices, csr.data),  # type: ignore[arg-type]  # arrays
            comm=MPI.COMM_SELF,  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
        )
        self._elastic = PETSc.KSP().create(MPI.COMM_SELF)  # type: ignore[arg-type]
        self._elastic.setOperators(self._M)
        self._elastic.setType("preonly")
        pc = self._elastic.getPC()
        pc.setType("cholesky")
        pc.setFactorOrdering("nd")
        self._elastic.setUp()
        self._load, self._solution = self._M.createVecRight(), self._M.createVecRight()
        self._x, self._R, self._z = (p.P.createVecRight() for _ in range(3))

    def lift(
        self,
        Phi: np.ndarray,
        substeps: Iterable[tuple[np.ndarray, np.ndarray, float]],
        committed: PhaseStates,
    ) -> PhaseStates | None:
        """The laws at all points updated along the substeps at u = E_i·y + P Φ q_i.

        From the committed full history; returns the trial full history (None if a law
        failed). The full residual R at the last substep is left in ``_R``.
        """
        p, laws, x = self.problem, self.full_laws, self._x
        base = committed
        try:
            for E_i, q_i, dt_i in substeps:
                x.array[:] = Phi @ q_i
                laws.evaluate(p.strains(x, E_i), base, dt_i)
                assert laws.trial is not None, "set by the successful evaluate"
                base = laws.trial
        except SolverError:
            return None
        p.ops.residual(laws.stress, self._R)
        return base

    def estimate(self, Sigma: np.ndarray, floor: float, steps: int) -> float:
        """The indicator η at the lifted solution of :meth:`lift` (module notes).

        η = ‖(Σ_h − Σ) + ⟨C_T ε(P δ)⟩‖ / max(‖σ‖_rms, floor) with δ from CG on J_T δ = −R.
        """
        p, laws = self.problem, self.full_laws
        w, V = p.weights, p.volume
        sigma, C = laws.stress, laws.tangent
        rms = max(stress_rms(sigma, w, V), floor)
        if rms == 0.0:
            return 0.0
        zero = np.zeros(p.n_strain)
        x, z = self._x, self._z

        def strain(v: np.ndarray) -> np.ndarray:
            x.array[:] = v
            return p.strains(x, zero)

        def tangent_times(v: np.ndarray) -> np.ndarray:
            p.ops.residual(np.einsum("pij,pj->pi", C, strain(v)), z)
            return z.array_r.copy()

        load, solution = self._load, self._solution

        def precondition(v: np.ndarray) -> np.ndarray:
            load.array[:] = v
            self._elastic.solve(load, solution)
            return solution.array_r.copy()

        r = -self._R.array_r.copy()
        delta = np.zeros_like(r)
        y = precondition(r)
        d, ry = y.copy(), float(r @ y)
        stop = (INDICATOR_RTOL**2) * ry  # on the preconditioned residual norm squared
        for k in range(steps):
            if not ry > stop or not ry > 0.0:
                break
            Jd = tangent_times(d)
            curvature = float(d @ Jd)
            if not curvature > 0.0:
                break
            alpha = ry / curvature
            delta += alpha * d
            if k + 1 == steps:
                break
            r -= alpha * Jd
            y = precondition(r)
            ry, previous = float(r @ y), ry
            d = y + (ry / previous) * d
        change = (w @ sigma) / V - Sigma + w @ np.einsum("pij,pj->pi", C, strain(delta)) / V
        return float(np.linalg.norm(change)) / rms
