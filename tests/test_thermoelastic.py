"""Levin's relation against laminate closed forms; conductivity bounds against exact limits."""

import numpy as np
import pytest
from reference import laminate_stiffness

from fe2x.errors import MaterialError
from fe2x.materials import IsotropicElastic, plane_strain
from fe2x.materials.bounds import hashin_shtrikman_conductivity, wiener_bounds
from fe2x.materials.thermoelastic import laminate_expansion, levin_expansion

ALUMINIUM = IsotropicElastic(70e9, 0.33)
EPOXY = IsotropicElastic(3.5e9, 0.35)
ALPHA = (23e-6, 60e-6)
F = (0.4, 0.6)
NORMAL_ROWS_3D = {0: (0, 4, 5), 1: (1, 3, 5), 2: (2, 3, 4)}  # Mandel rows of σ·n, n = e_axis


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_levin_on_a_laminate_3d(axis):
    C = laminate_stiffness(F, [ALUMINIUM.C3, EPOXY.C3], NORMAL_ROWS_3D[axis])
    alpha = levin_expansion(C, F, [ALUMINIUM, EPOXY], ALPHA)
    expected = laminate_expansion(F, [ALUMINIUM, EPOXY], ALPHA, axis)
    assert np.allclose(alpha, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    assert alpha[axis] > np.dot(F, ALPHA)  # across the layers: above the rule of mixtures
    assert np.all(alpha[3:] == pytest.approx(0.0, abs=1e-18))


@pytest.mark.parametrize("axis", [0, 1])
def test_levin_on_a_laminate_plane_strain(axis):
    """The 2D plane-strain laminate C_eff is the in-plane block of the 3D one (ε_33 = 0)."""
    C = plane_strain(laminate_stiffness(F, [ALUMINIUM.C3, EPOXY.C3], NORMAL_ROWS_3D[axis]))
    alpha = levin_expansion(C, F, [ALUMINIUM, EPOXY], ALPHA)
    expected = laminate_expansion(F, [ALUMINIUM, EPOXY], ALPHA, axis, dim=2)
    assert np.allclose(alpha, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_laminate_plane_strain_from_the_3d_stresses():
    """Independent check of the 2D closed form: free 3D laminate (normal e_2) held at ε_33 = 0.

    Solve each layer's 3D law σ = C(ε − α ΔT I) with ε_11 = e (common), ε_33 = 0, σ_22 = 0 and
    ⟨σ_11⟩ = 0, then compare ⟨ε⟩ with laminate_expansion(dim=2).
    """
    Cs = [m.C3 for m in (ALUMINIUM, EPOXY)]

    def layer_strain(C, a, e):  # ε_22 from σ_22 = 0, with ε_11 = e, ε_33 = 0
        return a + (-C[1, 0] * (e - a) - C[1, 2] * (0.0 - a)) / C[1, 1]

    def sigma_11(C, a, e):
        return C[0, 0] * (e - a) + C[0, 1] * (layer_strain(C, a, e) - a) + C[0, 2] * (-a)

    # ⟨σ_11⟩ is affine in e: find its root from two evaluations.
    s0 = sum(f * sigma_11(C, a, 0.0) for f, C, a in zip(F, Cs, ALPHA, strict=True))
    s1 = sum(f * sigma_11(C, a, 1.0) for f, C, a in zip(F, Cs, ALPHA, strict=True))
    e = -s0 / (s1 - s0)
    e22 = sum(f * layer_strain(C, a, e) for f, C, a in zip(F, Cs, ALPHA, strict=True))
    expected = laminate_expansion(F, [ALUMINIUM, EPOXY], ALPHA, axis=1, dim=2)
    assert expected == pytest.approx([e, e22, 0.0], rel=1e-12, abs=1e-20)


def test_levin_equal_expansion_and_refusal():
    C = laminate_stiffness(F, [ALUMINIUM.C3, EPOXY.C3], NORMAL_ROWS_3D[2])
    same = levin_expansion(C, F, [ALUMINIUM, EPOXY], (1e-5, 1e-5))
    assert same == pytest.approx([1e-5] * 3 + [0.0] * 3, rel=1e-12, abs=1e-20)
    twin = IsotropicElastic(ALUMINIUM.bulk_modulus * 3 * (1 - 2 * 0.2), 0.2)  # same K, other μ
    with pytest.raises(MaterialError, match="different bulk moduli K"):
        levin_expansion(C, F, [ALUMINIUM, twin], ALPHA)
    with pytest.raises(MaterialError, match="two phases needed"):
        levin_expansion(C, (0.2, 0.3, 0.5), [ALUMINIUM, EPOXY, EPOXY], (1, 2, 3))


def _series_and_parallel(f, k, n=2000):
    """Finite-volume conductance of a layered bar: across (series) and along (parallel) layers."""
    x = (np.arange(n) + 0.5) / n
    k_x = np.where(x < f[0], k[0], k[1])
    # Across: cells in series under a unit temperature drop; the flux is conductance · ΔT.
    resistance = np.sum((1.0 / n) / k_x)
    across = 1.0 / resistance
    # Along: the cells are side by side, each carries k_x · (unit gradient) over width 1/n.
    along = np.sum(k_x / n)
    return across, along


@pytest.mark.parametrize("f1", [0.25, 0.5])
def test_wiener_bounds_are_the_laminate(f1):
    f, k = (f1, 1.0 - f1), (1.0, 30.0)
    across, along = _series_and_parallel(f, k)
    lower, upper = wiener_bounds(f, k)
    assert lower == pytest.approx(across, rel=1e-12)
    assert upper == pytest.approx(along, rel=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_hashin_shtrikman_conductivity(dim):
    k_m, k_i = 1.0, 20.0
    for f_i in (0.1, 0.35, 0.7):
        f = (1.0 - f_i, f_i)
        lower, upper = hashin_shtrikman_conductivity(f, (k_m, k_i), dim)
        harmonic, arithmetic = wiener_bounds(f, (k_m, k_i))
        assert harmonic <= lower <= upper <= arithmetic
        # Maxwell Garnett: coated spheres/cylinders of the poor conductor as matrix.
        β = (k_i - k_m) / (k_i + (dim - 1) * k_m)
        assert lower == pytest.approx(k_m * (1 + (dim - 1) * f_i * β) / (1 - f_i * β), rel=1e-12)
        β = (k_m - k_i) / (k_m + (dim - 1) * k_i)
        f_m = 1 - f_i
        assert upper == pytest.approx(k_i * (1 + (dim - 1) * f_m * β) / (1 - f_m * β), rel=1e-12)
    assert hashin_shtrikman_conductivity((0.3, 0.7), (4.0, 4.0), dim) == pytest.approx((4.0, 4.0))
    assert hashin_shtrikman_conductivity((1.0, 0.0), (4.0, 9.0), dim) == pytest.approx((4.0, 4.0))


def test_conductivity_bad_input():
    with pytest.raises(MaterialError, match="must be finite and >= 0"):
        wiener_bounds((0.5, 0.5), (1.0, -2.0))
    with pytest.raises(MaterialError, match="sum to 1"):
        hashin_shtrikman_conductivity((0.5, 0.6), (1.0, 2.0), 3)
