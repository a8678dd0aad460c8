"""The three operators an RVE's Newton method needs, on the reduced fluctuation x.

With u = E·y + P x:

- ``strains(x, E)``: the strain measure at every owned quadrature point, ε(P x) + E (the affine
  part is exact: ε(E·y) = E);
- ``residual(sigma, f)``: f = Pᵀ ∫ σ : ε(v) dy for a stress field σ at the points;
- ``jacobian(C, J)``: J = Pᵀ (∫ ε(du) : C : ε(v) dy) P for a tangent field C at the points.

The measure ε is chosen by the kinematics (:func:`~fe2x.fem.forms.strain_measure`): the Mandel
small strain, or for finite strain the row-major displacement gradient ∇u, with which
``strains(x, F̄)`` is F = F̄ + ∇(P x), the residual ∫ P : ∇v and the Jacobian
∫ ∇du : A : ∇v (A = ∂P/∂F, not symmetric in storage). The operators are linear in x either way.

Everything else (averages, Hill–Mandel, the condensed tangent, the elastic localization) is
built from these and the quadrature weights. Two implementations:

- :class:`FormOperators`: DOLFINx forms with quadrature-space coefficients, assembled and
  restricted by PtAP; any number of ranks.
- :class:`PointOperators`: for an RVE on one rank (the FE² workhorse): the strain–displacement
  matrices of every cell's points are tabulated once, so a Newton iteration is a few batched
  numpy products and a scatter into the fixed pattern of J, with no form assembly.

:func:`rve_operators` picks the second on one rank. Both are tested against each other
(serial against 2-rank runs).
"""

from __future__ import annotations

from typing import Protocol

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem.petsc
import numpy as np
import ufl
from dolfinx import fem

from fe2x.fem.forms import measure_size, strain_measure
from fe2x.fem.quadrature import QuadratureRule

__all__ = ["FormOperators", "PointOperators", "RVEOperators", "rve_operators"]


class RVEOperators(Protocol):
    """Strains, residual and Jacobian of an RVE on its reduced fluctuation dofs."""

    def strains(self, x: PETSc.Vec, E: np.ndarray) -> np.ndarray:
        """ε(P x) + E at the owned points, ``(n_points, n)`` (finite strain: F = ∇(P x) + F̄)."""
        ...

    def residual(self, sigma: np.ndarray, f: PETSc.Vec) -> None:
        """Assemble f = Pᵀ ∫ σ : ε(v) dy (collective)."""
        ...

    def jacobian(self, C: np.ndarray, J: PETSc.Mat) -> None:
        """J = Pᵀ K(C) P in place, with J's pattern (collective)."""
        ...

    def new_jacobian(self) -> PETSc.Mat:
        """A matrix with the pattern of J (values unset)."""
        ...

    def force_norm(self, sigma: np.ndarray) -> float:
        """‖∫ σ : ε(v) dy‖ over all dofs, before any constraint (collective)."""
        ...


class FormOperators:
    """The operators by DOLFINx form assembly (any communicator).

    Args:
        V: the displacement space.
        rule: the quadrature rule of the stress and tangent.
        P: the prolongation of the boundary condition.
        kinematics: ``"small"`` or ``"finite"`` (the strain measure).
    """

    def __init__(
        self, V: fem.FunctionSpace, rule: QuadratureRule, P: PETSc.Mat, kinematics: str = "small"
    ) -> None:
        dim = V.mesh.topology.dim
        n = measure_size(dim, kinematics)
        self.rule, self.P, self.n = rule, P, n

        def measure(w):
            return strain_measure(w, dim, kinematics)

        self._sigma = rule.function((n,), "sigma")
        self._C = rule.function((n, n), "C_alg")
        self._sigma_rows = rule.rows(self._sigma)
        self._u = fem.Function(V, name="u")
        v, du = ufl.TestFunction(V), ufl.TrialFunction(V)
        self._strain = rule.expression(measure(self._u))
        dx = rule.dx
        self._L = fem.form(ufl.inner(self._sigma, measure(v)) * dx)
        self._a = fem.form(ufl.inner(ufl.dot(self._C, measure(du)), measure(v)) * dx)
        self._b = dolfinx.fem.petsc.create_vector(V)
        self._K = dolfinx.fem.petsc.create_matrix(self._a)

    def strains(self, x: PETSc.Vec, E: np.ndarray) -> np.ndarray:
        """ε(P x) + E at the owned points, from P x evaluated on the rule (collective)."""
        self.P.mult(x, self._u.x.petsc_vec)
        self._u.x.scatter_forward()
        return self.rule.evaluate(self._strain, self.n) + np.asarray(E)[None, :]

    def residual(self, sigma: np.ndarray, f: PETSc.Vec) -> None:
        """Assemble f = Pᵀ ∫ σ : ε(v) dy with σ as the quadrature coefficient (collective)."""
        self._sigma.x.array.reshape(-1, self.n)[self._sigma_rows] = sigma
        with self._b.localForm() as b_local:
            b_local.set(0.0)
        # assembly into b: singledispatch on the Vec, whose overload the stubs do not see
        dolfinx.fem.petsc.assemble_vector(self._b, self._L)  # type: ignore[arg-type]
        self._b.ghostUpdate(
            addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]  # enum members typed int
            mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
        )
        self.P.multTranspose(self._b, f)

    def _assemble_K(self, C: np.ndarray) -> None:
        n = self.n
        self._C.x.array.reshape(-1, n * n)[self._sigma_rows] = C.reshape(-1, n * n)
        self._K.zeroEntries()
        # assembly into K: singledispatch on the Mat, whose overload the stubs do not see
        dolfinx.fem.petsc.assemble_matrix(self._K, self._a)  # type: ignore[arg-type]
        self._K.assemble()

    def jacobian(self, C: np.ndarray, J: PETSc.Mat) -> None:
        """Assemble K(C) with C as the quadrature coefficient, and J = Pᵀ K P in place."""
        self._assemble_K(C)
        self._K.PtAP(self.P, result=J)

    def new_jacobian(self) -> PETSc.Mat:
        """A new Pᵀ K P with the pattern of J (K assembled at the unit tangent; collective)."""
        n = self.n
        self._assemble_K(np.broadcast_to(np.eye(n), (self.rule.n_points, n, n)))
        return self._K.PtAP(self.P)

    def force_norm(self, sigma: np.ndarray) -> float:
        """‖∫ σ : ε(v) dy‖ over all dofs, assembled before the restriction by P (collective)."""
        self._sigma.x.array.reshape(-1, self.n)[self._sigma_rows] = sigma
        with self._b.localForm() as b_local:
            b_local.set(0.0)
        # assembly into b: singledispatch on the Vec, whose overload the stubs do not see
        dolfinx.fem.petsc.assemble_vector(self._b, self._L)  # type: ignore[arg-type]
        self._b.ghostUpdate(
            addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]  # enum members typed int
            mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
        )
        return self._b.norm()  # type: ignore[return-value]  # one norm type: one float


class PointOperators:
    """The operators from tabulated strain–displacement matrices (an RVE on one rank).

    For cell c and its point q, ε_cq = B_cq u_c with u_c the cell's dofs. With the reduced
    index r(c, a) of each cell dof (dropped where P fixes it; periodic images share their
    master's) the strains are one sparse product ε = B_red x + E, the residual
    f = B_redᵀ (w σ), and the Jacobian J = Σ_cq w_cq B_cqᵀ C_cq B_cq: element matrices by one
    batched product, summed into J's fixed pattern by one sparse product.

    Args:
        V: the displacement space (on a one-rank mesh).
        rule: the quadrature rule of the stress and tangent.
        P: the prolongation of the boundary condition.
        kinematics: ``"small"`` or ``"finite"`` (the strain measure).
    """

    def __init__(
        self, V: fem.FunctionSpace, rule: QuadratureRule, P: PETSc.Mat, kinematics: str = "small"
    ) -> None:
        import scipy.sparse as sp

        if V.mesh.comm.size != 1:
            raise ValueError("PointOperators serve RVEs on one rank")
        mesh = V.mesh
        dim = mesh.topology.dim
        n = measure_size(dim, kinematics)
        self.rule, self.n = rule, n
        bs = V.dofmap.index_map_bs
        v = ufl.TestFunction(V)
        # (cells, points · n, cell dofs): strain of each cell basis function at each point
        B = fem.Expression(strain_measure(v, dim, kinematics), rule.points).eval(mesh, rule.cells)
        self.B = np.ascontiguousarray(B.reshape(rule.n_cells, rule.n_q * n, -1))
        nodes = V.dofmap.list[: rule.n_cells]
        self.dofs = (nodes[:, :, None] * bs + np.arange(bs)).reshape(rule.n_cells, -1)
        indptr, indices, _ = P.getValuesCSR()
        column = np.full(P.getSize()[0], -1, dtype=np.int64)
        has = np.diff(indptr) > 0
        column[has] = indices[indptr[:-1][has]]
        reduced = column[self.dofs]  # (cells, cell dofs), −1 where fixed
        self.n_reduced = m = P.getSize()[1]
        self.w = rule.point_weights()
        # ε = B_red x: row (point, component), column the reduced dof; fixed dofs dropped
        n_rows = rule.n_points * n
        rows = np.arange(n_rows).reshape(rule.n_cells, -1)[:, :, None]
        rows = np.broadcast_to(rows, self.B.shape)
        cols = np.broadcast_to(reduced[:, None, :], self.B.shape)
        keep = cols >= 0
        self._B_red = sp.csr_matrix((self.B[keep], (rows[keep], cols[keep])), (n_rows, m))
        self._B_redT = self._B_red.T.tocsr()
        cols = np.broadcast_to(self.dofs[:, None, :], self.B.shape)
        self._B_fullT = sp.csr_matrix(
            (self.B.reshape(-1), (cols.reshape(-1), rows.reshape(-1))), (P.getSize()[0], n_rows)
        )
        self._pattern, self._scatter = self._jacobian_pattern(reduced)

    def _jacobian_pattern(self, reduced: np.ndarray) -> tuple[tuple, object]:
        """J's CSR pattern, and the sparse matrix summing element entries into its values."""
        import scipy.sparse as sp

        nd = reduced.shape[1]
        rows = np.repeat(reduced[:, :, None], nd, axis=2).reshape(-1)
        cols = np.repeat(reduced[:, None, :], nd, axis=1).reshape(-1)
        keep = np.flatnonzero((rows >= 0) & (cols >= 0))
        m = self.n_reduced
        keys = rows[keep] * m + cols[keep]
        unique = np.unique(keys)
        indptr = np.searchsorted(unique // m, np.arange(m + 1)).astype(PETSc.IntType)
        indices = (unique % m).astype(PETSc.IntType)
        place = np.searchsorted(unique, keys)
        scatter = sp.csr_matrix((np.ones(keep.size), (place, keep)), (unique.size, rows.size))
        return (indptr, indices), scatter

    def strains(self, x: PETSc.Vec, E: np.ndarray) -> np.ndarray:
        """ε(P x) + E at the points, by one product with the tabulated reduced B matrix."""
        eps = (self._B_red @ x.array_r).reshape(-1, self.n)
        return eps + np.asarray(E)[None, :]

    def residual(self, sigma: np.ndarray, f: PETSc.Vec) -> None:
        """Set f = Pᵀ ∫ σ : ε(v) dy by one sparse product, without assembly."""
        f.array[:] = self._B_redT @ (self.w[:, None] * sigma).reshape(-1)

    def force_norm(self, sigma: np.ndarray) -> float:
        """‖∫ σ : ε(v) dy‖ over all dofs, before any constraint, by one sparse product."""
        return float(np.linalg.norm(self._B_fullT @ (self.w[:, None] * sigma).reshape(-1)))

    def _values(self, C: np.ndarray) -> np.ndarray:
        n, nq = self.n, self.rule.n_q
        wC = (self.w[:, None, None] * C).reshape(-1, nq, n, n)
        B = self.B.reshape(-1, nq, n, self.B.shape[2])
        CB = np.matmul(wC, B).reshape(self.B.shape)  # (cells, nq · n, cell dofs)
        Ke = np.matmul(self.B.transpose(0, 2, 1), CB)  # Σ over the cell's points
        return self._scatter @ Ke.reshape(-1)

    def jacobian(self, C: np.ndarray, J: PETSc.Mat) -> None:
        """Set J = Pᵀ K(C) P in place: the cells' Bᵀ C B summed into J's fixed CSR pattern."""
        indptr, indices = self._pattern
        J.setValuesCSR(indptr, indices, self._values(C))  # type: ignore[arg-type]  # arrays
        J.assemble()

    def new_jacobian(self) -> PETSc.Mat:
        """A new sequential matrix with J's fixed pattern, zero values."""
        indptr, indices = self._pattern
        m = self.n_reduced
        J = PETSc.Mat().createAIJ(
            size=(m, m),
            csr=(indptr, indices, np.zeros(indices.size)),  # type: ignore[arg-type]  # arrays
            comm=MPI.COMM_SELF,  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
        )
        J.assemble()
        return J


def rve_operators(
    V: fem.FunctionSpace, rule: QuadratureRule, P: PETSc.Mat, kinematics: str = "small"
) -> RVEOperators:
    """:class:`PointOperators` for an RVE on one rank, else :class:`FormOperators`."""
    if V.mesh.comm.size == 1:
        return PointOperators(V, rule, P, kinematics)
    return FormOperators(V, rule, P, kinematics)
