"""The operators the reduced RVE's offline and online stages share, on one rank."""

from __future__ import annotations

import numpy as np
import scipy.sparse

from fe2x.micro.rve_problem import RVEProblem

__all__ = ["energy_inner_product", "mode_strains", "phase_of_points", "stress_rms"]


def stress_rms(sigma: np.ndarray, weights: np.ndarray, volume: float) -> float:
    """‖σ‖_rms = √⟨σ : σ⟩ of a Mandel stress field at the quadrature points.

    The stress scale of relative errors of Σ (|Σ| for a uniform stress, and not zero where Σ
    passes through 0).
    """
    return float(np.sqrt(weights @ np.einsum("pi,pi->p", sigma, sigma) / volume))


def phase_of_points(p: RVEProblem) -> np.ndarray:
    """The index of each quadrature point's phase (in the order of ``p.points``)."""
    phase = np.full(p.rule.n_points, -1, dtype=np.int64)
    for k, points in enumerate(p.points.values()):
        phase[points] = k
    return phase


def energy_inner_product(problem: RVEProblem) -> scipy.sparse.csr_matrix:
    """M = Pᵀ K_el P, the reduced elastic stiffness (SPD for PBC and KUBC), on one rank."""
    J = problem.ops.new_jacobian()
    try:
        problem.ops.jacobian(problem.laws.elastic_stiffness(), J)
        indptr, indices, values = J.getValuesCSR()
        M = scipy.sparse.csr_matrix((values, indices, indptr), shape=J.getSize())
    finally:
        J.destroy()
    return M


def mode_strains(
    problem: RVEProblem, Phi: np.ndarray, points: np.ndarray | None = None
) -> np.ndarray:
    """ε(P Φ_j) at the quadrature points ``points`` (default all): ``(m, n, r)``."""
    x = problem.P.createVecRight()
    zero = np.zeros(problem.n_strain)
    rows = slice(None) if points is None else points
    try:
        columns = []
        for j in range(Phi.shape[1]):
            x.array[:] = Phi[:, j]
            columns.append(problem.strains(x, zero)[rows])
    finally:
        x.destroy()
    return np.stack(columns, axis=2)
