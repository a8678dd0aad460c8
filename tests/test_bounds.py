"""Voigt, Reuss and Hashin–Shtrikman bounds against orderings and exact assemblage formulas."""

import numpy as np
import pytest

from fe2x.errors import MaterialError
from fe2x.materials import (
    AnisotropicElastic,
    IsotropicElastic,
    hashin_shtrikman,
    isotropic_projection,
    reuss_bound,
    rotation_mandel,
    voigt_bound,
)

rng = np.random.default_rng(7)


def _phases(dim: int):
    """Glass, epoxy and a rubbery phase (stiffer than epoxy in bulk, softer in shear)."""
    mats = [
        IsotropicElastic(72e9, 0.22),
        IsotropicElastic(3.5e9, 0.35),
        IsotropicElastic(1e9, 0.49),
    ]
    if dim == 3:
        K = [m.bulk_modulus for m in mats]
    else:
        K = [m.plane_strain_bulk_modulus for m in mats]
    return mats, np.array(K), np.array([m.shear_modulus for m in mats])


def _sphere_assemblage(K_m, μ_m, K_i, f_i):
    """Hashin's composite-sphere assemblage bulk modulus (matrix m, inclusion i)."""
    f_m = 1.0 - f_i
    return K_m + f_i / (1.0 / (K_i - K_m) + 3.0 * f_m / (3.0 * K_m + 4.0 * μ_m))


def _cylinder_assemblage(κ_m, μ_m, κ_i, f_i):
    """Hashin–Rosen composite-cylinder plane-strain bulk modulus (matrix m, fibre i)."""
    f_m = 1.0 - f_i
    return κ_m + f_i / (1.0 / (κ_i - κ_m) + f_m / (κ_m + μ_m))


@pytest.mark.parametrize("dim", [2, 3])
def test_voigt_above_reuss(dim):
    mats, _, _ = _phases(dim)
    Cs = [m.stiffness(dim) for m in mats]
    # one rotated anisotropic phase too
    A = rng.standard_normal((6, 6))
    Q = rotation_mandel(np.linalg.qr(rng.standard_normal((3, 3)))[0])
    aniso = AnisotropicElastic(Q @ (A @ A.T + 6 * np.eye(6)) @ Q.T * 1e9)
    Cs.append(aniso.stiffness(dim))
    f = [0.3, 0.4, 0.1, 0.2]
    CV, CR = voigt_bound(f, Cs), reuss_bound(f, Cs)
    assert np.linalg.eigvalsh(CV - CR).min() >= -1e-9 * np.abs(CV).max()
    np.testing.assert_allclose(CR, CR.T)


@pytest.mark.parametrize("dim", [2, 3])
def test_equal_phases_all_bounds_coincide(dim):
    m = IsotropicElastic(10.0, 0.3)
    C = m.stiffness(dim)
    f = [0.2, 0.5, 0.3]
    np.testing.assert_allclose(voigt_bound(f, [C] * 3), C, rtol=1e-14)
    np.testing.assert_allclose(reuss_bound(f, [C] * 3), C, rtol=1e-13)
    K = m.bulk_modulus if dim == 3 else m.plane_strain_bulk_modulus
    hs = hashin_shtrikman(f, [K] * 3, [m.shear_modulus] * 3, dim)
    for lo, up in hs.values():
        assert lo == pytest.approx(up, rel=1e-14)
    assert hs["bulk"][0] == pytest.approx(K, rel=1e-14)
    assert hs["shear"][0] == pytest.approx(m.shear_modulus, rel=1e-14)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("f_i", [0.0, 0.1, 0.45, 0.9, 1.0])
def test_hs_bulk_equals_assemblage_two_phase(dim, f_i):
    _, K, μ = _phases(dim)
    hard, soft = 0, 1  # glass stiffer than epoxy in both moduli: well ordered
    assemblage = _sphere_assemblage if dim == 3 else _cylinder_assemblage
    hs = hashin_shtrikman([f_i, 1 - f_i], K[[hard, soft]], μ[[hard, soft]], dim)
    lower = assemblage(K[soft], μ[soft], K[hard], f_i)  # soft matrix, hard inclusions
    upper = assemblage(K[hard], μ[hard], K[soft], 1 - f_i)  # hard matrix, soft inclusions
    assert hs["bulk"][0] == pytest.approx(lower, rel=1e-12)
    assert hs["bulk"][1] == pytest.approx(upper, rel=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_hs_shear_two_phase_classic_form(dim):
    """Shear bounds equal the classical two-phase forms (Hashin–Shtrikman 1963; Hashin 1965)."""
    _, K, μ = _phases(dim)
    f = 0.35  # glass fraction
    hs = hashin_shtrikman([f, 1 - f], K[:2], μ[:2], dim)

    def classic(K_m, μ_m, μ_i, f_i):
        f_m = 1 - f_i
        if dim == 3:
            t = 6 * f_m * (K_m + 2 * μ_m) / (5 * μ_m * (3 * K_m + 4 * μ_m))
        else:
            t = f_m * (K_m + 2 * μ_m) / (2 * μ_m * (K_m + μ_m))
        return μ_m + f_i / (1 / (μ_i - μ_m) + t)

    assert hs["shear"][0] == pytest.approx(classic(K[1], μ[1], μ[0], f), rel=1e-12)
    assert hs["shear"][1] == pytest.approx(classic(K[0], μ[0], μ[1], 1 - f), rel=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_hs_ordered_and_within_voigt_reuss(dim):
    mats, K, μ = _phases(dim)
    for _ in range(20):
        f = rng.dirichlet(np.ones(3))
        hs = hashin_shtrikman(f, K, μ, dim)
        for lo, up in hs.values():
            assert lo <= up * (1 + 1e-14)
        K_V, K_R = f @ K, 1.0 / (f @ (1.0 / K))
        μ_V, μ_R = f @ μ, 1.0 / (f @ (1.0 / μ))
        assert K_R * (1 - 1e-14) <= hs["bulk"][0] and hs["bulk"][1] <= K_V * (1 + 1e-14)
        assert μ_R * (1 - 1e-14) <= hs["shear"][0] and hs["shear"][1] <= μ_V * (1 + 1e-14)
        # the isotropic projections of the matrix Voigt/Reuss bounds agree with the scalar ones
        Cs = [m.stiffness(dim) for m in mats]
        assert isotropic_projection(voigt_bound(f, Cs), dim) == pytest.approx((K_V, μ_V))


def test_hs_voids_lower_bounds_vanish():
    hs = hashin_shtrikman([0.8, 0.2], [10.0, 0.0], [5.0, 0.0], 3)
    assert hs["bulk"][0] == 0.0 and hs["shear"][0] == 0.0
    # upper = porous HS: K_m + f_v/(−1/K_m + 3 f_m/(3K_m + 4μ_m))
    assert hs["bulk"][1] == pytest.approx(_sphere_assemblage(10.0, 5.0, 0.0, 0.2))


def test_hs_zero_fraction_phase_ignored():
    a = hashin_shtrikman([0.4, 0.6, 0.0], [3.0, 1.0, 100.0], [2.0, 0.5, 100.0], 3)
    b = hashin_shtrikman([0.4, 0.6], [3.0, 1.0], [2.0, 0.5], 3)
    assert a == b


@pytest.mark.parametrize("dim", [2, 3])
def test_isotropic_projection_exact_for_isotropic(dim):
    m = IsotropicElastic(200e9, 0.29)
    K = m.bulk_modulus if dim == 3 else m.plane_strain_bulk_modulus
    K_p, μ_p = isotropic_projection(m.stiffness(dim), dim)
    assert K_p == pytest.approx(K, rel=1e-14)
    assert μ_p == pytest.approx(m.shear_modulus, rel=1e-14)


def test_isotropic_projection_is_voigt_average_in_3d():
    """Cubic crystal: K = (C11 + 2 C12)/3, μ_V = (C11 − C12 + 3 C44)/5 (Voigt notation C44)."""
    C11, C12, C44 = 168.4, 121.4, 75.4  # copper, GPa
    C = np.zeros((6, 6))
    C[:3, :3] = C12
    np.fill_diagonal(C[:3, :3], C11)
    C[3:, 3:] = 2 * C44 * np.eye(3)
    K, μ = isotropic_projection(C, 3)
    assert K == pytest.approx((C11 + 2 * C12) / 3)
    assert μ == pytest.approx((C11 - C12 + 3 * C44) / 5)


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ([0.5, 0.6], r"volume fractions \[0.5, 0.6\] must be >= 0 and sum to 1 \(sum = 1.1\)"),
        ([1.2, -0.2], r"volume fractions \[1.2, -0.2\] must be >= 0"),
        ([np.nan, 1.0], r"volume fractions \[nan, 1.0\]"),
    ],
)
def test_bad_fractions(fractions, match):
    C = IsotropicElastic(1.0, 0.3).stiffness(3)
    with pytest.raises(MaterialError, match=match):
        voigt_bound(fractions, [C, C])
    with pytest.raises(MaterialError, match=match):
        reuss_bound(fractions, [C, C])
    with pytest.raises(MaterialError, match=match):
        hashin_shtrikman(fractions, [1.0, 1.0], [1.0, 1.0], 3)


def test_bad_moduli_and_shapes():
    with pytest.raises(MaterialError, match=r"shear moduli \[1.0, -1.0\] must be finite and >= 0"):
        hashin_shtrikman([0.5, 0.5], [1.0, 1.0], [1.0, -1.0], 3)
    with pytest.raises(ValueError, match="2 fractions but 3 bulk"):
        hashin_shtrikman([0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 1.0], 3)
    with pytest.raises(ValueError, match="dim = 1"):
        hashin_shtrikman([1.0], [1.0], [1.0], 1)
    with pytest.raises(ValueError, match="expected 2 Mandel stiffnesses"):
        voigt_bound([0.5, 0.5], [np.eye(6)])
    with pytest.raises(ValueError, match=r"expected a \(3, 3\) Mandel stiffness"):
        isotropic_projection(np.eye(6), 2)


@pytest.mark.parametrize("dim", [2, 3])
def test_hs_bulk_exact_for_equal_shear_moduli(dim):
    """Hill (1963, 3D; 1964, fibres): with equal μ the bulk modulus is geometry-independent,
    1/(K* + 4μ/3) = Σ f_i/(K_i + 4μ/3) in 3D and 1/(κ* + μ) = Σ f_i/(κ_i + μ) in 2D."""
    f, K, μ = np.array([0.2, 0.5, 0.3]), np.array([5.0, 1.0, 30.0]), 2.0
    c = 4.0 / 3.0 if dim == 3 else 1.0
    exact = 1.0 / np.sum(f / (K + c * μ)) - c * μ
    hs = hashin_shtrikman(f, K, [μ] * 3, dim)
    assert hs["bulk"] == pytest.approx((exact, exact), rel=1e-14)
    assert hs["shear"] == pytest.approx((μ, μ), rel=1e-14)
