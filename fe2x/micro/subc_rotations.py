"""The rigid rotations of a finite-strain SUBC fluctuation, eliminated by its mean gradient.

Eliminated through the mean-gradient constraint: the strain correction, the residual term and
the low-rank (Woodbury) update of the Newton solves.

Under SUBC the fluctuation w is free but for its translations and ⟨∇w⟩ = 0. The reduced space
of the small-strain SUBC also pins the infinitesimal rotations of w (harmless there: ε(w)
ignores them), and under finite strain that would over-constrain w. So the pinned rotations
are given back as unknowns α: w = P x + Σ_m α_m r_m with r_m = W_m·(y − y₀) and ∇r_m = W_m
(W_m an orthonormal basis of the skew tensors, m = 1 in 2D, 3 in 3D). The skew part of
⟨∇w⟩ = 0 fixes α_m = −g_m·x / |Ω| (g_m = Gᵀ W_m, G x = ∫ ∇(P x)), leaving the symmetric part
as the constraint of the multipliers. In x alone:

- strain: F = F̄ + ∇(P x) + ΔF(x), ΔF(x) = −Σ_m W_m (g_m·x) / |Ω|;
- residual: R = Pᵀ ∫ P : ∇v − Σ_m (W_m : ⟨P⟩) g_m;
- Jacobian: J = J_p + U K Vᵀ with J_p = Pᵀ K_A P (the sparse one), U = [C, G_s], V = [G_s, D],
  K = [[−I, 0], [Ā_s / |Ω|, −I]] / |Ω|, C and D the columns Pᵀ ∫ ∇v : A W_m and
  Pᵀ ∫ ∇v : Aᵀ W_m, G_s the columns g_m and Ā_s = W_m : (∫ A) : W_l;
- J⁻¹ b = y₀ − Z (K⁻¹ + Vᵀ Z)⁻¹ Vᵀ y₀ with y₀ = J_p⁻¹ b and Z = J_p⁻¹ U (2m solves with
  J_p's factorization per Jacobian).

J_p is the Jacobian on the rotation-pinned space, positive definite at F̄ = I; the full J is
singular there along the rotations (zero energy at zero stress), which is why the rotations
are eliminated rather than unpinned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mpi4py import MPI
from petsc4py import PETSc

import numpy as np

__all__ = ["RotationElimination", "skew_basis"]

#: ``solve(b, y)``: y = J_p⁻¹ b with the current factorization.
Solve = Callable[[PETSc.Vec, PETSc.Vec], None]


def skew_basis(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases of the skew and of the symmetric tensors as row-major vectors.

    Shapes ``(m, dim²)`` and ``(dim² − m, dim²)``.

    >>> skew, sym = skew_basis(2)
    >>> skew.round(4).tolist(), sym.shape
    ([[0.0, 0.7071, -0.7071, 0.0]], (3, 4))
    """
    n = dim * dim
    skew: list[np.ndarray] = []
    sym: list[np.ndarray] = []
    for i in range(dim):
        e = np.zeros(n)
        e[dim * i + i] = 1.0
        sym.append(e)
        for j in range(i + 1, dim):
            for sign, basis in ((1.0, sym), (-1.0, skew)):
                e = np.zeros(n)
                e[dim * i + j], e[dim * j + i] = 1.0, sign
                basis.append(e / np.sqrt(2.0))
    return np.array(skew), np.array(sym)


class RotationElimination:
    """The rotation unknowns of a finite-strain SUBC fluctuation, eliminated (module notes).

    Args:
        rows: the mean-gradient rows g_i = Pᵀ ∫ ∇(v)_i dy, one per row-major component.
        dim: 2 or 3.
        volume: |Ω|.
        weights: the quadrature weights of this rank's points.
        comm: the RVE's communicator.

    Attributes:
        sym_rows: the rows of the symmetric part of the constraint (the multipliers' rows).
    """

    def __init__(
        self,
        rows: Sequence[PETSc.Vec],
        dim: int,
        volume: float,
        weights: np.ndarray,
        comm: MPI.Comm,
    ) -> None:
        self.W, Y = skew_basis(dim)
        self.volume, self.weights, self.comm = float(volume), weights, comm
        self.g = [self._combine(rows, w) for w in self.W]
        self.sym_rows = [self._combine(rows, y) for y in Y]
        m = len(self.W)
        self._C = [rows[0].duplicate() for _ in range(m)]
        self._D = [rows[0].duplicate() for _ in range(m)]
        self._Z = [rows[0].duplicate() for _ in range(2 * m)]
        self._K = np.zeros((2 * m, 2 * m))
        self.tangent_integral = np.zeros((len(rows), len(rows)))
        self._small: np.ndarray | None = None  # (K⁻¹ + Vᵀ Z)⁻¹ of the current factorization

    @staticmethod
    def _combine(rows: Sequence[PETSc.Vec], coefficients: np.ndarray) -> PETSc.Vec:
        out = rows[0].duplicate()
        out.set(0.0)
        out.maxpy([float(c) for c in coefficients], list(rows))
        return out

    def correction(self, x: PETSc.Vec) -> np.ndarray:
        """ΔF(x) = −Σ_m W_m (g_m·x) / |Ω|, row-major (collective)."""
        return -(np.asarray(x.mDot(self.g)) @ self.W) / self.volume

    def correct_residual(self, stress: np.ndarray, f: PETSc.Vec) -> None:
        """Subtract from f the rotations' term: f ← f − Σ_m (W_m : ⟨P⟩) g_m (collective).

        For the stress field at this rank's points.
        """
        mean = np.empty(stress.shape[1])
        self.comm.Allreduce(self.weights @ stress, mean, op=MPI.SUM)
        f.maxpy([-float(c) for c in self.W @ (mean / self.volume)], self.g)

    def update(
        self, tangent: np.ndarray, residual: Callable[[np.ndarray, PETSc.Vec], None]
    ) -> None:
        """The low-rank terms of the Jacobian at the tangent field A (collective).

        ``residual(σ, f)`` is the operator f = Pᵀ ∫ σ : ∇v dy.
        """
        for w, c, d in zip(self.W, self._C, self._D, strict=True):
            residual(tangent @ w, c)
            residual(np.einsum("pji,j->pi", tangent, w), d)
        mean = np.empty(tangent.shape[1:])
        self.comm.Allreduce(np.einsum("p,pij->ij", self.weights, tangent), mean, op=MPI.SUM)
        self.tangent_integral = mean
        m = len(self.W)
        K = np.zeros((2 * m, 2 * m))
        K[:m, :m] = K[m:, m:] = -np.eye(m)
        K[m:, :m] = self.W @ mean @ self.W.T / self.volume
        self._K = K / self.volume
        self._small = None

    def factor(self, solve: Solve) -> None:
        """Z = J_p⁻¹ U and (K⁻¹ + Vᵀ Z)⁻¹ with J_p's current factorization (2m solves)."""
        for u, z in zip([*self._C, *self.g], self._Z, strict=True):
            solve(u, z)
        V = [*self.g, *self._D]
        VtZ = np.array([z.mDot(V) for z in self._Z]).T
        self._small = np.linalg.inv(np.linalg.inv(self._K) + VtZ)

    def solve(self, solve: Solve, b: PETSc.Vec, y: PETSc.Vec) -> None:
        """Solve y = J⁻¹ b by the Woodbury formula on J_p's solves (after :meth:`factor`)."""
        assert self._small is not None, "factor() comes before solve()"
        solve(b, y)
        coefficients = self._small @ np.asarray(y.mDot([*self.g, *self._D]))
        y.maxpy([-float(c) for c in coefficients], self._Z)

    def mult(self, J_p: PETSc.Mat, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """Apply y = J x = J_p x + U K Vᵀ x (after :meth:`update`)."""
        J_p.mult(x, y)
        coefficients = self._K @ np.asarray(x.mDot([*self.g, *self._D]))
        y.maxpy([float(c) for c in coefficients], [*self._C, *self.g])

    def tangent_load(self, k: int, out: PETSc.Vec) -> None:
        """Add the ⟨P⟩ term's part of −∂R/∂F̄_k to ``out``.

        out ← out + Σ_m (W_m : Ā e_k) g_m / |Ω| with Ā = ∫ A of the last :meth:`update`: the
        part of −∂R/∂F̄_k that comes from the residual's ⟨P⟩ term.
        """
        column = self.tangent_integral[:, k] / self.volume
        out.maxpy([float(c) for c in self.W @ column], self.g)

    def destroy(self) -> None:
        """Free the PETSc vectors."""
        for v in (*self.g, *self.sym_rows, *self._C, *self._D, *self._Z):
            v.destroy()
