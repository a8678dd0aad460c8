"""Phase conductivity and expansion tensors: shapes, validation, the plane-strain eigenstrain."""

import doctest

import numpy as np
import pytest

from fe2x.errors import MaterialError
from fe2x.materials import AnisotropicElastic, IsotropicElastic, plane_strain, thermal
from fe2x.materials.thermal import (
    conductivity_tensor,
    expansion_mandel,
    isotropic_value,
    plane_strain_expansion,
)

K3 = np.array([[5.0, 1.0, 0.5], [1.0, 6.0, 0.2], [0.5, 0.2, 7.0]])


def test_doctests():
    failures, _ = doctest.testmod(thermal)
    assert failures == 0


def test_conductivity_shapes():
    assert np.array_equal(conductivity_tensor(2.5, 3), 2.5 * np.eye(3))
    assert np.array_equal(conductivity_tensor(2.5, 2), 2.5 * np.eye(2))
    assert np.array_equal(conductivity_tensor(K3, 3), K3)
    assert np.array_equal(conductivity_tensor(K3, 2), K3[:2, :2])  # in-plane block
    assert np.array_equal(conductivity_tensor(K3[:2, :2], 2), K3[:2, :2])
    assert np.array_equal(conductivity_tensor(K3.tolist(), 3), K3)  # nested lists (TOML)


@pytest.mark.parametrize(
    ("value", "dim", "pattern"),
    [
        (-1.0, 3, r"phase 'p': conductivity k = -1.0 must be > 0"),
        (0.0, 2, r"conductivity k = 0.0 must be > 0"),
        (np.diag([1.0, -2.0, 3.0]), 3, r"not positive definite \(smallest eigenvalue -2"),
        (np.diag([1.0, 1.0, 0.0]), 3, r"not positive definite"),
        (np.triu(K3), 3, r"not symmetric"),
        (K3[:2, :2], 3, r"shape \(2, 2\); expected a scalar or \(3, 3\)$"),
        (np.ones(3), 2, r"shape \(3,\); expected a scalar or \(3, 3\) or \(2, 2\)"),
        ("1.0", 3, r"is not a number or an array"),
        (np.nan, 3, r"non-finite"),
    ],
)
def test_bad_conductivity(value, dim, pattern):
    with pytest.raises(MaterialError, match=pattern):
        conductivity_tensor(value, dim, name="p")


def test_non_spd_3d_tensor_is_refused_even_if_its_2d_block_is_fine():
    k = np.diag([1.0, 2.0, -1.0])
    with pytest.raises(MaterialError, match="not positive definite"):
        conductivity_tensor(k, 2)


def test_expansion_mandel():
    assert np.array_equal(expansion_mandel(2e-5), [2e-5, 2e-5, 2e-5, 0, 0, 0])
    alpha = np.array([[1.0, 0.4, 0.3], [0.4, 2.0, 0.2], [0.3, 0.2, 3.0]]) * 1e-5
    s = np.sqrt(2.0)
    expected = np.array([1.0, 2.0, 3.0, 0.2 * s, 0.3 * s, 0.4 * s]) * 1e-5  # 11 22 33 23 13 12
    assert np.allclose(expansion_mandel(alpha), expected, rtol=1e-15, atol=0)
    assert np.array_equal(expansion_mandel(expected), expected)
    with pytest.raises(MaterialError, match="not symmetric"):
        expansion_mandel(np.triu(alpha), name="p")
    with pytest.raises(MaterialError, match=r"shape \(2, 2\); expected a scalar, \(3, 3\)"):
        expansion_mandel(alpha[:2, :2], name="p")


def test_plane_strain_expansion_of_an_isotropic_phase():
    """Held at ε_33 = 0, an isotropic phase expands in-plane by (1 + ν) α (3Kα/(2κ))."""
    for E, nu in ((70e9, 0.33), (3.5e9, 0.35), (1.0, -0.5)):
        phase = IsotropicElastic(E, nu)
        alpha = plane_strain_expansion(expansion_mandel(1e-5), phase.C3)
        expected = (1 + nu) * 1e-5
        assert alpha == pytest.approx([expected, expected, 0.0], rel=1e-12, abs=1e-20)
        K, kappa = phase.bulk_modulus, phase.plane_strain_bulk_modulus
        assert expected == pytest.approx(3 * K * 1e-5 / (2 * kappa), rel=1e-12)


def test_plane_strain_expansion_gives_the_3d_in_plane_stress():
    """Defining property: C_ps (ε_p − α') = (C (ε − α))_p for every in-plane strain ε_p, with
    ε the 3D strain holding ε_p and zeros out of plane (a monoclinic, fully coupled phase)."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(6, 6))
    C = AnisotropicElastic(A @ A.T + 6 * np.eye(6)).C3
    alpha = rng.normal(size=6) * 1e-5
    alpha_p = plane_strain_expansion(alpha, C)
    for _ in range(3):
        eps_p = rng.normal(size=3) * 1e-3
        eps = np.zeros(6)
        eps[[0, 1, 5]] = eps_p
        sigma = C @ (eps - alpha)
        assert plane_strain(C) @ (eps_p - alpha_p) == pytest.approx(sigma[[0, 1, 5]], rel=1e-12)


def test_isotropic_value():
    assert isotropic_value(3.0 * np.eye(2)) == 3.0
    assert isotropic_value(K3) is None
    assert isotropic_value(np.eye(3) + 1e-9) is None  # off-diagonal terms are not isotropic
