"""Effective conductivity against laminate closed forms, bounds, BC ordering, Keller's duality,
Rayleigh's multipole result, rotations and the rank count."""

from mpi4py import MPI

import numpy as np
import pytest
from reference import laminate_stiffness

from fe2x.errors import Fe2xError, MaterialError
from fe2x.geometry import inclusion_cell, laminate_cell, random_cell
from fe2x.materials.bounds import hashin_shtrikman_conductivity, wiener_bounds
from fe2x.micro.conduction import ConductionRVE
from fe2x.micro.homogenization import homogenize_conduction

K_MATRIX, K_FIBRE = 1.0, 10.0


def rotation(axis: int, angle: float) -> np.ndarray:
    """Rotation by ``angle`` about the coordinate ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def anisotropic_k() -> np.ndarray:
    """A fully populated SPD conductivity."""
    return (
        rotation(2, 0.5)
        @ rotation(0, 0.3)
        @ np.diag([4.0, 1.5, 0.7])
        @ rotation(0, 0.3).T
        @ (rotation(2, 0.5).T)
    )


def relative(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


def laminate(dim: int, axis: int, fractions, mesh_size: float = 0.25):
    lengths = [1.0, 0.8, 0.6][:dim]
    names = ["a", "b", "a"][: len(fractions)]
    return laminate_cell(
        MPI.COMM_WORLD, dim, lengths, fractions, axis, mesh_size, 1, phase_names=names
    )


@pytest.mark.parametrize(("dim", "axis", "degree"), [(2, 0, 1), (2, 1, 2), (3, 2, 1), (3, 0, 2)])
def test_laminate_arithmetic_along_harmonic_across(dim, axis, degree):
    """Isotropic layers: the harmonic mean across the layers, the arithmetic mean along them."""
    fractions = [0.3, 0.45, 0.25]
    cell = laminate(dim, axis, fractions, 0.35 if dim == 3 else 0.2)
    result = homogenize_conduction(cell, {"a": K_MATRIX, "b": K_FIBRE}, degree=degree)
    f_a, f_b = fractions[0] + fractions[2], fractions[1]
    arithmetic = f_a * K_MATRIX + f_b * K_FIBRE
    harmonic = 1.0 / (f_a / K_MATRIX + f_b / K_FIBRE)
    expected = np.diag([harmonic if i == axis else arithmetic for i in range(dim)])
    assert wiener_bounds([f_a, f_b], [K_MATRIX, K_FIBRE]) == pytest.approx((harmonic, arithmetic))
    k = result.k_eff["periodic"]
    assert np.abs(k - expected).max() <= 1e-10 * arithmetic
    response = result.responses["periodic"]
    assert response.hill_mandel_residual.max() < 1e-12
    assert response.mean_gradient_error < 1e-12
    assert response.symmetry_defect < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_anisotropic_laminate_closed_form(dim):
    """Anisotropic layers: normal flux and tangential gradient continuous (the stiffness
    laminate formula of tests/reference.py with the normal row only)."""
    fractions = [0.3, 0.45, 0.25]
    axis = 1
    cell = laminate(dim, axis, fractions, 0.35 if dim == 3 else 0.2)
    k_b = anisotropic_k()[:dim, :dim]
    result = homogenize_conduction(cell, {"a": K_MATRIX, "b": anisotropic_k()}, degree=1)
    layers = [K_MATRIX * np.eye(dim), k_b, K_MATRIX * np.eye(dim)]
    expected = laminate_stiffness(fractions, layers, [axis])
    assert relative(result.k_eff["periodic"], expected) < 1e-10
    assert np.all(np.abs(expected - expected.T) < 1e-14)
    assert abs(expected[0, 1]) > 0.1  # off-diagonals are there and reproduced


@pytest.mark.parametrize("dim", [2, 3])
def test_homogeneous_anisotropic_cell_returns_its_conductivity(dim):
    k = anisotropic_k()
    cell = inclusion_cell(MPI.COMM_WORLD, dim, [1.0] * dim, 0.2, 0.4 if dim == 3 else 0.25, 1)
    result = homogenize_conduction(cell, {"matrix": k, "inclusion": k}, degree=1)
    for bc, k_eff in result.k_eff.items():
        assert relative(k_eff, k[:dim, :dim]) < 1e-10, bc


@pytest.fixture(scope="module")
def fibre_array():
    """Square array of fibres (vf 0.3, contrast 10) under the three boundary conditions."""
    cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, mesh_size=0.08)
    return homogenize_conduction(cell, {"matrix": K_MATRIX, "inclusion": K_FIBRE})


def test_within_hashin_shtrikman_and_wiener(fibre_array):
    """Square symmetry makes the periodic k_eff isotropic; it lies in the HS interval."""
    f = fibre_array.rve.volume_fractions
    fractions = [f["matrix"], f["inclusion"]]
    lower, upper = hashin_shtrikman_conductivity(fractions, [K_MATRIX, K_FIBRE], 2)
    assert fibre_array.bounds["hashin_shtrikman"] == pytest.approx([lower, upper])
    k = fibre_array.k_eff["periodic"]
    assert abs(k[0, 0] - k[1, 1]) < 1e-4 * k[0, 0] and abs(k[0, 1]) < 1e-4 * k[0, 0]
    assert lower < np.linalg.eigvalsh(k).min() and np.linalg.eigvalsh(k).max() < upper
    harmonic, arithmetic = wiener_bounds(fractions, [K_MATRIX, K_FIBRE])
    for bc, k_bc in fibre_array.k_eff.items():
        eigenvalues = np.linalg.eigvalsh(k_bc)
        assert harmonic < eigenvalues.min() and eigenvalues.max() < arithmetic, bc


def test_uniform_temperature_above_periodic_above_uniform_flux(fibre_array):
    k = fibre_array.k_eff
    assert np.linalg.eigvalsh(k["kubc"] - k["periodic"]).min() > 0
    assert np.linalg.eigvalsh(k["periodic"] - k["subc"]).min() > 0


def test_checks_at_round_off(fibre_array):
    for bc, r in fibre_array.responses.items():
        assert r.hill_mandel_residual.max() < 1e-12, bc
        assert r.symmetry_defect < 1e-10, bc
        assert r.mean_gradient_error < 1e-12, bc


def test_random_cell_ordering_and_wiener_bounds():
    """An anisotropic (random) cell: the ordering and the bounds as quadratic forms."""
    cell = random_cell(
        MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, seed=3, number=4, min_gap=0.05, mesh_size=0.08
    )
    result = homogenize_conduction(cell, {"matrix": K_MATRIX, "inclusion": K_FIBRE})
    k = result.k_eff
    assert abs(k["periodic"][0, 1]) > 1e-4  # genuinely anisotropic
    assert np.linalg.eigvalsh(k["kubc"] - k["periodic"]).min() > 0
    assert np.linalg.eigvalsh(k["periodic"] - k["subc"]).min() > 0
    arithmetic, harmonic = result.bounds["arithmetic"], result.bounds["harmonic"]
    for bc, k_bc in k.items():
        assert np.linalg.eigvalsh(arithmetic - k_bc).min() > 0, bc
        assert np.linalg.eigvalsh(k_bc - harmonic).min() > 0, bc


def rayleigh_square_array(f: float, k_m: float, k_i: float) -> float:
    """Square array of cylinders: Rayleigh's multipole result to the f⁸ terms, as extended by
    Perrins, McKenzie & McPhedran (1979) Proc. R. Soc. Lond. A 369, 207–225.

    k/k_m = 1 + 2f/(T − f − 0.305827 f⁴ T/(T² − 1.402958 f⁸) − 0.013362 f⁸), T = (k_i + k_m)/
    (k_i − k_m); without the f⁴ and f⁸ terms it is the Maxwell–Garnett (HS) value.
    """
    T = (k_i + k_m) / (k_i - k_m)
    return k_m * (
        1 + 2 * f / (T - f - 0.305827 * f**4 * T / (T**2 - 1.402958 * f**8) - 0.013362 * f**8)
    )


def test_mesh_convergence_keller_duality_and_rayleigh():
    """Mesh convergence at the rates of the energy (P1 on straight cells: h², P2 on curved
    ones: h⁴), seen twice. Keller–Dykhne: in 2D, k_eff(k₁, k₂) · k_eff(k₂, k₁) = k₁ k₂ for a
    square-symmetric cell, exactly on any mesh of it, so its discrete defect is the
    discretization error alone. And k_eff against Rayleigh's multipole value."""
    f = 0.3
    reference = rayleigh_square_array(f, K_MATRIX, K_FIBRE)
    maxwell_garnett = hashin_shtrikman_conductivity([1 - f, f], [K_MATRIX, K_FIBRE], 2)[0]
    for degree, order, expected_rate in ((1, 1, 2.0), (2, 2, 4.0)):
        defects, errors = [], []
        for h in (0.1, 0.05, 0.025):
            cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], f, h, geometry_order=order)
            pair = []
            for k_m, k_i in ((K_MATRIX, K_FIBRE), (K_FIBRE, K_MATRIX)):
                rve = ConductionRVE(cell, {"matrix": k_m, "inclusion": k_i}, degree=degree)
                pair.append(rve.solve_unit_gradients("periodic").k_eff)
            product = pair[0] @ pair[1] / (K_MATRIX * K_FIBRE)
            defects.append(np.linalg.norm(product - np.eye(2)))
            errors.append(abs(pair[0][0, 0] - reference))
        duality_rates = np.log2(np.array(defects[:-1]) / np.array(defects[1:]))
        rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        assert np.all(duality_rates > expected_rate - 0.5), (degree, duality_rates)
        assert np.all(rates > expected_rate - 1.0), (degree, rates)
    # P2 on the finest mesh: Rayleigh's value to 1e-6, far inside its f⁴ correction to MG.
    assert errors[-1] < 1e-6 * reference
    assert errors[-1] < 1e-3 * (reference - maxwell_garnett)


def test_rotating_a_phase_rotates_k_eff():
    """Layers normal to z are invariant under rotations about z: rotating the anisotropic
    layer's conductivity by R rotates k_eff by R (off-diagonals included)."""
    cell = laminate(3, 2, [0.4, 0.6], 0.35)
    k = anisotropic_k()
    R = rotation(2, 0.7)
    base = homogenize_conduction(cell, {"a": 2.0, "b": k}, bcs=("periodic",), degree=1)
    turned = homogenize_conduction(cell, {"a": 2.0, "b": R @ k @ R.T}, bcs=("periodic",), degree=1)
    k0, k1 = base.k_eff["periodic"], turned.k_eff["periodic"]
    assert relative(k1, R @ k0 @ R.T) < 1e-10
    assert relative(k1, k0) > 0.05


def test_same_result_on_any_number_of_ranks():
    """The distributed solve equals the serial one (each rank solves the cell alone)."""
    results = []
    for comm in (MPI.COMM_WORLD, MPI.COMM_SELF):
        cell = random_cell(comm, 2, [1.0, 1.0], 0.25, 0.12, seed=7, min_gap=0.05, number=3)
        k = {"matrix": K_MATRIX, "inclusion": anisotropic_k()}
        results.append(homogenize_conduction(cell, k, degree=2).k_eff)
    for bc in results[0]:
        assert relative(results[0][bc], results[1][bc]) < 1e-10, bc


def test_iterative_and_direct_agree():
    cell = inclusion_cell(MPI.COMM_WORLD, 3, [1.0] * 3, 0.2, 0.35, 1)
    k = {"matrix": K_MATRIX, "inclusion": K_FIBRE}
    direct = homogenize_conduction(cell, k, degree=1, solver="direct").k_eff
    iterative = homogenize_conduction(cell, k, degree=1, solver="iterative").k_eff
    for bc in direct:
        assert relative(iterative[bc], direct[bc]) < 1e-8, bc


def test_bad_conductivities():
    cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.2, 0.3, 1)
    with pytest.raises(
        MaterialError, match=r"phase 'inclusion': conductivity k = -1.0 must be > 0"
    ):
        ConductionRVE(cell, {"matrix": 1.0, "inclusion": -1.0}, degree=1)
    with pytest.raises(MaterialError, match="not positive definite"):
        ConductionRVE(cell, {"matrix": 1.0, "inclusion": np.diag([1.0, -1.0, 1.0])}, degree=1)
    with pytest.raises(MaterialError, match="not symmetric"):
        ConductionRVE(cell, {"matrix": 1.0, "inclusion": np.triu(np.ones((3, 3)))}, degree=1)
    with pytest.raises(Fe2xError, match=r"no conductivity given for phase\(s\) \['inclusion'\]"):
        ConductionRVE(cell, {"matrix": 1.0}, degree=1)
