"""The stiffness quadrature: exact enough that an element has only rigid-body zero modes."""

from mpi4py import MPI

import dolfinx.fem.petsc
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh

from fe2x.fem.forms import mandel_strain, stiffness_quadrature_degree


def zero_energy_modes(cell_type: mesh.CellType, degree: int) -> int:
    """Zero eigenvalues of the isotropic elastic stiffness of one element (2D or 3D)."""
    comm = MPI.COMM_SELF
    if cell_type in (mesh.CellType.quadrilateral, mesh.CellType.triangle):
        domain = mesh.create_unit_square(comm, 1, 1, cell_type)
    else:
        domain = mesh.create_unit_cube(comm, 1, 1, 1, cell_type)
    dim = domain.topology.dim
    if cell_type in (mesh.CellType.triangle, mesh.CellType.tetrahedron):  # one simplex only
        cells = np.array([0], dtype=np.int32)
        domain = mesh.create_submesh(domain, dim, cells)[0]
    V = fem.functionspace(domain, ("Lagrange", degree, (dim,)))
    n = 3 if dim == 2 else 6
    C = np.eye(n) + np.pad(np.ones((dim, dim)), ((0, n - dim), (0, n - dim)))  # λ = μ = 1/2
    q = stiffness_quadrature_degree(domain.basix_cell(), degree)
    dx = ufl.Measure("dx", domain=domain, metadata={"quadrature_degree": q})
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    eps_u, eps_v = mandel_strain(u, dim), mandel_strain(v, dim)
    a = fem.form(ufl.inner(ufl.dot(fem.Constant(domain, C), eps_u), eps_v) * dx)
    K = dolfinx.fem.petsc.assemble_matrix(a)
    K.assemble()
    eigenvalues = np.linalg.eigvalsh(K.convert("dense").getDenseArray())
    return int(np.sum(eigenvalues < 1e-10 * eigenvalues.max()))


@pytest.mark.parametrize(
    ("cell_type", "degree", "rigid"),
    [
        (mesh.CellType.triangle, 1, 3),
        (mesh.CellType.triangle, 2, 3),
        (mesh.CellType.quadrilateral, 1, 3),
        (mesh.CellType.quadrilateral, 2, 3),
        (mesh.CellType.tetrahedron, 2, 6),
        (mesh.CellType.hexahedron, 1, 6),
        (mesh.CellType.hexahedron, 2, 6),
    ],
)
def test_only_rigid_body_modes_have_zero_energy(cell_type, degree, rigid):
    assert zero_energy_modes(cell_type, degree) == rigid
