"""Mandel notation: round trips, inner products, isotropic stiffness, rotations, plane strain."""

import numpy as np
import pytest

from fe2x.materials import mandel
from fe2x.materials.mandel import (
    component_labels,
    isotropic_stiffness,
    lame_parameters,
    mandel_to_tensor,
    mandel_to_tensor4,
    n_mandel,
    plane_strain,
    rotation_mandel,
    tensor4_to_mandel,
    tensor_to_mandel,
)

rng = np.random.default_rng(20240611)


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _random_rotation(dim: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1.0
    return q


def _major_minor_tensor4(dim: int) -> np.ndarray:
    """A random fourth-order tensor with major and minor symmetries."""
    n = n_mandel(dim)
    A = rng.standard_normal((n, n))
    return mandel_to_tensor4(A @ A.T)


def _lame_tensor4(lam: float, mu: float) -> np.ndarray:
    """λ δ_ij δ_kl + μ (δ_ik δ_jl + δ_il δ_jk)."""
    d = np.eye(3)
    return lam * np.einsum("ij,kl->ijkl", d, d) + mu * (
        np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d)
    )


def test_labels_and_sizes():
    assert component_labels(3) == ["11", "22", "33", "23", "13", "12"]
    assert component_labels(2) == ["11", "22", "12"]
    assert (n_mandel(2), n_mandel(3)) == (3, 6)
    assert [mandel.MANDEL_3D[r] for r in mandel.PLANE_STRAIN_ROWS] == list(mandel.MANDEL_2D)
    with pytest.raises(ValueError, match="must be 2 or 3"):
        n_mandel(4)


def test_shear_component_carries_sqrt2():
    t = np.zeros((3, 3))
    t[0, 1] = t[1, 0] = 1.0
    np.testing.assert_allclose(tensor_to_mandel(t), [0, 0, 0, 0, 0, np.sqrt(2.0)])
    t[1, 2] = t[2, 1] = 2.0
    assert tensor_to_mandel(t)[3] == pytest.approx(2.0 * np.sqrt(2.0))


@pytest.mark.parametrize("dim", [2, 3])
def test_second_order_round_trip_batched(dim):
    t = _sym(rng.standard_normal((4, 5, dim, dim)))
    v = tensor_to_mandel(t)
    assert v.shape == (4, 5, n_mandel(dim))
    np.testing.assert_allclose(mandel_to_tensor(v, dim), t, atol=1e-14)
    np.testing.assert_allclose(tensor_to_mandel(mandel_to_tensor(v)), v, atol=1e-14)


@pytest.mark.parametrize("dim", [2, 3])
def test_inner_product_is_double_contraction(dim):
    a, b = _sym(rng.standard_normal((2, dim, dim)))
    assert tensor_to_mandel(a) @ tensor_to_mandel(b) == pytest.approx(np.sum(a * b))


@pytest.mark.parametrize("dim", [2, 3])
def test_fourth_order_round_trip_and_action(dim):
    C = _major_minor_tensor4(dim)
    M = tensor4_to_mandel(C)
    np.testing.assert_allclose(mandel_to_tensor4(M), C, atol=1e-13)
    np.testing.assert_allclose(tensor4_to_mandel(mandel_to_tensor4(M)), M, atol=1e-13)
    # σ = C : ε in tensor form equals M ε in Mandel form
    eps = _sym(rng.standard_normal((dim, dim)))
    sigma = np.einsum("ijkl,kl->ij", C, eps)
    np.testing.assert_allclose(M @ tensor_to_mandel(eps), tensor_to_mandel(sigma), atol=1e-13)


def test_isotropic_stiffness_matches_lame_form():
    E, nu = 210e9, 0.3
    lam, mu = lame_parameters(E, nu)
    assert mu == pytest.approx(E / (2 * (1 + nu)))
    assert lam == pytest.approx(E * nu / ((1 + nu) * (1 - 2 * nu)))
    np.testing.assert_allclose(
        isotropic_stiffness(E, nu), tensor4_to_mandel(_lame_tensor4(lam, mu)), rtol=1e-14
    )
    K, mu2 = mandel.bulk_shear(E, nu)
    assert K == pytest.approx(lam + 2.0 * mu / 3.0) and mu2 == pytest.approx(mu)


@pytest.mark.parametrize("dim", [2, 3])
def test_rotation_matrix_orthogonal_and_consistent(dim):
    R = _random_rotation(dim)
    Q = rotation_mandel(R)
    np.testing.assert_allclose(Q @ Q.T, np.eye(n_mandel(dim)), atol=1e-14)
    a = _sym(rng.standard_normal((dim, dim)))
    np.testing.assert_allclose(Q @ tensor_to_mandel(a), tensor_to_mandel(R @ a @ R.T), atol=1e-14)
    # a fourth-order tensor rotated index by index
    C = _major_minor_tensor4(dim)
    C_rot = np.einsum("ia,jb,kc,ld,abcd->ijkl", R, R, R, R, C)
    np.testing.assert_allclose(Q @ tensor4_to_mandel(C) @ Q.T, tensor4_to_mandel(C_rot), atol=1e-13)


def test_rotation_in_plane_is_plane_strain_block_of_3d():
    θ = 0.7
    R2 = np.array([[np.cos(θ), -np.sin(θ)], [np.sin(θ), np.cos(θ)]])
    R3 = np.eye(3)
    R3[:2, :2] = R2
    np.testing.assert_allclose(rotation_mandel(R2), plane_strain(rotation_mandel(R3)), atol=1e-15)


def test_isotropic_stiffness_is_rotation_invariant():
    C = isotropic_stiffness(70e9, 0.33)
    for _ in range(3):
        Q = rotation_mandel(_random_rotation(3))
        np.testing.assert_allclose(Q @ C @ Q.T, C, rtol=0, atol=1e-12 * np.abs(C).max())


def test_rotation_rejects_non_orthogonal():
    with pytest.raises(ValueError, match="not orthogonal"):
        rotation_mandel(2.0 * np.eye(3))


def test_plane_strain_of_isotropic():
    E, nu = 1.0, 0.25
    lam, mu = lame_parameters(E, nu)
    expected = np.array([[lam + 2 * mu, lam, 0.0], [lam, lam + 2 * mu, 0.0], [0.0, 0.0, 2 * mu]])
    np.testing.assert_allclose(plane_strain(isotropic_stiffness(E, nu)), expected, rtol=1e-15)


def test_shape_errors():
    with pytest.raises(ValueError, match="Mandel length 4"):
        mandel_to_tensor(np.zeros(4))
    with pytest.raises(ValueError, match="does not match dim = 3"):
        mandel_to_tensor(np.zeros(3), dim=3)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 6, 6\)"):
        plane_strain(np.eye(3))
