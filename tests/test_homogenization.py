"""Linear homogenization against closed forms, bounds, invariances and the rank count."""

from mpi4py import MPI

import numpy as np
import pytest
from reference import laminate_stiffness

from fe2x.geometry import inclusion_cell, laminate_cell, random_cell
from fe2x.materials import (
    AnisotropicElastic,
    IsotropicElastic,
    isotropic_projection,
    rotation_mandel,
)
from fe2x.micro.homogenization import homogenize

MATRIX = IsotropicElastic(3.0e9, 0.35)
FIBRE = IsotropicElastic(70.0e9, 0.2)


def orthotropic() -> AnisotropicElastic:
    """An orthotropic material rotated about z: fully populated in-plane coupling."""
    C = np.diag([40.0, 12.0, 10.0, 8.0, 9.0, 7.0]) * 1e9
    C[0, 1] = C[1, 0] = 5e9
    C[0, 2] = C[2, 0] = 4e9
    C[1, 2] = C[2, 1] = 3e9
    c, s = np.cos(0.4), np.sin(0.4)
    Q = rotation_mandel(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
    return AnisotropicElastic(Q @ C @ Q.T)


def relative(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


# Mandel rows of the traction components σ·n for a layer normal to each axis.
NORMAL_ROWS = {2: {0: (0, 2), 1: (1, 2)}, 3: {0: (0, 4, 5), 1: (1, 3, 5), 2: (2, 3, 4)}}


@pytest.mark.parametrize(("dim", "axis", "degree"), [(2, 0, 1), (2, 1, 2), (3, 0, 1), (3, 2, 2)])
def test_laminate_matches_closed_form(dim, axis, degree):
    fractions = [0.3, 0.45, 0.25]
    lengths = [1.0, 0.8, 0.6][:dim]
    cell = laminate_cell(
        MPI.COMM_WORLD,
        dim,
        lengths,
        fractions,
        axis,
        mesh_size=0.35 if dim == 3 else 0.2,
        geometry_order=1,
        phase_names=["a", "b", "a"][:3],
    )
    materials = {"a": MATRIX, "b": orthotropic()}
    result = homogenize(cell, materials, bcs=("periodic",), degree=degree)
    stiffness = [materials[p].stiffness(dim) for p in ("a", "b", "a")]
    expected = laminate_stiffness(fractions, stiffness, NORMAL_ROWS[dim][axis])
    assert relative(result.C_eff["periodic"], expected) < 1e-10


@pytest.mark.parametrize("dim", [2, 3])
def test_homogeneous_cell_returns_its_stiffness(dim):
    material = orthotropic()
    cell = inclusion_cell(
        MPI.COMM_WORLD, dim, [1.0] * dim, 0.2, mesh_size=0.4 if dim == 3 else 0.25, geometry_order=1
    )
    result = homogenize(cell, {"matrix": material, "inclusion": material}, degree=1)
    for bc, C in result.C_eff.items():
        assert relative(C, material.stiffness(dim)) < 1e-10, bc


@pytest.fixture(scope="module")
def fibre_cell_result():
    """The 2D fibre composite (vf 0.5) under all three boundary conditions."""
    cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.5, mesh_size=0.06)
    return homogenize(cell, {"matrix": MATRIX, "inclusion": FIBRE})


def test_hill_mandel_and_mean_strain(fibre_cell_result):
    for bc, response in fibre_cell_result.responses.items():
        assert response.hill_mandel_residual.max() < 1e-10, bc
        assert response.mean_strain_error < 1e-10, bc
        assert response.symmetry_defect < 1e-10, bc


def test_boundary_condition_ordering(fibre_cell_result):
    """KUBC ≥ PBC ≥ SUBC in the sense of positive semi-definite differences."""
    C = fibre_cell_result.C_eff
    scale = np.linalg.norm(C["periodic"])
    for stiffer, softer in (("kubc", "periodic"), ("periodic", "subc")):
        difference = C[stiffer] - C[softer]
        eigenvalues = np.linalg.eigvalsh(0.5 * (difference + difference.T))
        assert eigenvalues.min() > -1e-10 * scale, (stiffer, softer)


def test_within_bounds(fibre_cell_result):
    bounds = fibre_cell_result.bounds
    lower, upper = bounds["hashin_shtrikman"]["bulk"]
    for bc, C in fibre_cell_result.C_eff.items():
        bulk, _ = isotropic_projection(C, 2)
        if bc == "periodic":
            assert lower <= bulk <= upper
        voigt_gap = np.linalg.eigvalsh(bounds["voigt"] - C).min()
        reuss_gap = np.linalg.eigvalsh(C - bounds["reuss"]).min()
        assert voigt_gap > 0 and reuss_gap > 0, bc


def test_square_symmetry(fibre_cell_result):
    """A centred fibre in a square cell: C_1111 = C_2222 and no normal–shear coupling."""
    C = fibre_cell_result.C_eff["periodic"]
    assert abs(C[0, 0] - C[1, 1]) < 1e-3 * C[0, 0]
    assert np.abs(C[:2, 2]).max() < 1e-3 * C[0, 0]


def test_laminate_rotation_invariance():
    """Rotating a laminate by 90° (layers normal to y instead of x) permutes C_eff."""
    results = []
    for axis in (0, 1):
        cell = laminate_cell(
            MPI.COMM_WORLD,
            2,
            [1.0, 1.0],
            [0.4, 0.6],
            axis,
            0.25,
            phase_names=["a", "b"],
            geometry_order=1,
        )
        result = homogenize(cell, {"a": MATRIX, "b": FIBRE}, bcs=("periodic",), degree=1)
        results.append(result.C_eff["periodic"])
    R = rotation_mandel(np.array([[0.0, -1.0], [1.0, 0.0]]))
    assert relative(R @ results[0] @ R.T, results[1]) < 1e-10


def test_convergence_under_refinement():
    """C_eff of the inclusion cell converges: successive differences shrink at order > 1.5."""
    sizes = (0.1, 0.05, 0.025)
    values = []
    for h in sizes:
        cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.4, mesh_size=h)
        result = homogenize(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bcs=("periodic",))
        values.append(result.C_eff["periodic"])
    d1 = np.linalg.norm(values[1] - values[0])
    d2 = np.linalg.norm(values[2] - values[1])
    assert d2 < d1
    assert np.log2(d1 / d2) > 1.5
    assert d2 / np.linalg.norm(values[2]) < 1e-3


def test_direct_and_iterative_agree():
    cell = inclusion_cell(MPI.COMM_WORLD, 3, [1.0, 1.0, 1.0], 0.2, mesh_size=0.3, geometry_order=1)
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    direct = homogenize(cell, materials, degree=1, solver="direct")
    iterative = homogenize(cell, materials, degree=1, solver="iterative")
    for bc in direct.C_eff:
        assert relative(iterative.C_eff[bc], direct.C_eff[bc]) < 1e-8, bc


@pytest.mark.parametrize("dim", [2, 3])
def test_same_result_on_any_number_of_ranks(dim):
    """The cell on COMM_WORLD (distributed) and on COMM_SELF (whole on each rank) agree."""
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    results = []
    for comm in (MPI.COMM_WORLD, MPI.COMM_SELF):
        if dim == 2:
            cell = random_cell(comm, 2, [1.0, 1.0], 0.3, 0.12, seed=3, min_gap=0.03, number=4)
        else:
            cell = inclusion_cell(comm, 3, [1.0, 1.0, 1.0], 0.2, mesh_size=0.35, geometry_order=1)
        result = homogenize(cell, materials, degree=2 if dim == 2 else 1)
        results.append(result.C_eff)
    for bc in results[0]:
        assert relative(results[0][bc], results[1][bc]) < 1e-10, bc
