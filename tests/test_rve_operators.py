"""The tabulated point operators of one-rank RVEs are the DOLFINx form operators, exactly."""

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.fem.forms import stiffness_quadrature_degree
from fe2x.fem.quadrature import QuadratureRule
from fe2x.geometry import inclusion_cell
from fe2x.micro.constraints import boundary_condition
from fe2x.micro.rve_operators import FormOperators, PointOperators

RNG = np.random.default_rng(3)


def dense(A) -> np.ndarray:
    indptr, indices, values = A.getValuesCSR()
    out = np.zeros(A.getSize())
    for i in range(A.getSize()[0]):
        out[i, indices[indptr[i] : indptr[i + 1]]] = values[indptr[i] : indptr[i + 1]]
    return out


@pytest.mark.parametrize(("dim", "degree", "order"), [(2, 2, 2), (2, 1, 1), (3, 1, 1)])
@pytest.mark.parametrize("bc", ["periodic", "kubc", "subc"])
def test_point_operators_equal_form_operators(dim, degree, order, bc):
    from dolfinx import fem

    cell = inclusion_cell(MPI.COMM_SELF, dim, [1.0] * dim, 0.3, 0.35, geometry_order=order)
    V = fem.functionspace(cell.mesh, ("Lagrange", degree, (dim,)))
    rule = QuadratureRule(
        cell.mesh, stiffness_quadrature_degree(cell.mesh.basix_cell(), degree, order)
    )
    P = boundary_condition(bc).prolongation(V, cell.origin, cell.lengths).P
    forms, points = FormOperators(V, rule, P), PointOperators(V, rule, P)
    n = 3 if dim == 2 else 6
    x = P.createVecRight()
    x.setArray(RNG.standard_normal(x.getLocalSize()))
    E = RNG.standard_normal(n)
    a, b = forms.strains(x, E), points.strains(x, E)
    assert np.allclose(a, b, rtol=0, atol=1e-12 * np.abs(a).max())
    sigma = RNG.standard_normal((rule.n_points, n))
    f1, f2 = x.duplicate(), x.duplicate()
    forms.residual(sigma, f1)
    points.residual(sigma, f2)
    assert np.allclose(f1.array, f2.array, rtol=0, atol=1e-12 * np.abs(f1.array).max())
    assert forms.force_norm(sigma) == pytest.approx(points.force_norm(sigma), rel=1e-12)
    C = RNG.standard_normal((rule.n_points, n, n))
    C = C + C.transpose(0, 2, 1)
    J1, J2 = forms.new_jacobian(), points.new_jacobian()
    forms.jacobian(C, J1)
    points.jacobian(C, J2)
    D1, D2 = dense(J1), dense(J2)
    assert np.allclose(D1, D2, rtol=0, atol=1e-12 * np.abs(D1).max())
