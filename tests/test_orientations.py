"""Grain orientations against independent facts: textbook texture components, rotation algebra,
the Haar measure of SO(3), the fibre construction and the orientation-file errors."""

import math

import numpy as np
import pytest
from scipy import stats

from fe2x.errors import MaterialError
from fe2x.materials.orientations import (
    QUATERNION_NORM_TOL,
    axis_angle_to_matrix,
    euler_to_matrix,
    euler_to_quaternion,
    fibre_texture,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_euler,
    quaternion_to_matrix,
    random_orientations,
    read_orientations,
)

RNG = np.random.default_rng(11)


def random_euler(n: int) -> np.ndarray:
    """Bunge angles away from the degenerate Φ = 0, π."""
    phi1, phi2 = RNG.uniform(0, 2 * np.pi, (2, n))
    return np.column_stack([phi1, RNG.uniform(0.01, np.pi - 0.01, n), phi2])


def Z(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def X(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def hamilton(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quaternion product p q (scalar first)."""
    w1, v1, w2, v2 = p[0], p[1:], q[0], q[1:]
    return np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def parallel(a, b) -> bool:
    return abs(abs(unit(a) @ unit(b)) - 1.0) < 1e-4


# -- conventions -------------------------------------------------------------------------------
def test_bunge_matrix_is_the_product_of_active_rotations():
    for phi1, Phi, phi2 in random_euler(20):
        R = euler_to_matrix([phi1, Phi, phi2])
        assert np.allclose(R, Z(phi1) @ X(Phi) @ Z(phi2), atol=1e-14)


@pytest.mark.parametrize(
    "euler, rd, nd",
    [
        # texture components in Bunge angles (degrees) with the crystal directions along
        # the rolling (sample X) and normal (sample Z) directions, from the texture tables
        ((0.0, 45.0, 0.0), [1, 0, 0], [0, 1, 1]),  # Goss {110}<001>
        ((90.0, 35.26, 45.0), [1, 1, -1], [1, 1, 2]),  # copper {112}<111>
        ((35.26, 45.0, 0.0), [2, -1, 1], [0, 1, 1]),  # brass {110}<112>
        ((58.98, 36.70, 63.43), [3, 6, -4], [2, 1, 3]),  # S {123}<634>
        ((0.0, 0.0, 0.0), [1, 0, 0], [0, 0, 1]),  # cube
    ],
)
def test_texture_components_map_crystal_to_sample(euler, rd, nd):
    R = euler_to_matrix(euler, degrees=True)
    assert parallel(R @ unit(rd), [1, 0, 0]) and parallel(R @ unit(nd), [0, 0, 1])


def test_quaternion_is_the_active_rotation_about_its_axis():
    for axis, angle in zip(RNG.standard_normal((10, 3)), RNG.uniform(0, np.pi, 10), strict=True):
        u = unit(axis)
        q = np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * u])
        R = quaternion_to_matrix(q)
        assert np.allclose(R, axis_angle_to_matrix(u, angle), atol=1e-14)
        assert np.allclose(R @ u, u)  # the axis is fixed
        v = np.cross(u, RNG.standard_normal(3))
        assert math.isclose(unit(v) @ unit(R @ v), math.cos(angle), abs_tol=1e-12)
        assert np.cross(v, R @ v) @ u > 0 or angle < 1e-12  # counter-clockwise about u
    # composition: R(p q) = R(p) R(q)
    p, q = unit(RNG.standard_normal(4)), unit(RNG.standard_normal(4))
    pq = quaternion_to_matrix(p) @ quaternion_to_matrix(q)
    assert np.allclose(quaternion_to_matrix(hamilton(p, q)), pq, atol=1e-14)
    # Bunge angles as a product of the quaternions of the three elementary rotations
    phi1, Phi, phi2 = random_euler(1)[0]
    qz1 = [math.cos(phi1 / 2), 0, 0, math.sin(phi1 / 2)]
    qx = [math.cos(Phi / 2), math.sin(Phi / 2), 0, 0]
    qz2 = [math.cos(phi2 / 2), 0, 0, math.sin(phi2 / 2)]
    q = hamilton(hamilton(np.array(qz1), np.array(qx)), np.array(qz2))
    q *= np.sign(q[0])
    assert np.allclose(euler_to_quaternion([phi1, Phi, phi2]), q, atol=1e-14)


# -- conversions -------------------------------------------------------------------------------
def test_rotations_are_proper_orthogonal():
    for R in (
        euler_to_matrix(random_euler(50)),
        quaternion_to_matrix(RNG.standard_normal((50, 4))),
        random_orientations(50, 1),
        fibre_texture(50, [1, 1, 1], [0, 0, 1], 10.0, 2),
    ):
        assert np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-14)
        assert np.allclose(np.linalg.det(R), 1.0, atol=1e-14)


def test_round_trips():
    e = random_euler(200)
    assert np.allclose(matrix_to_euler(euler_to_matrix(e)), e, atol=1e-10)
    assert np.allclose(quaternion_to_euler(euler_to_quaternion(e)), e, atol=1e-10)
    assert np.allclose(
        matrix_to_euler(euler_to_matrix(np.degrees(e), True), True), np.degrees(e), atol=1e-8
    )
    q = RNG.standard_normal((200, 4))
    q /= np.linalg.norm(q, axis=1)[:, None]
    q *= np.sign(q[:, :1])
    assert np.allclose(matrix_to_quaternion(quaternion_to_matrix(q)), q, atol=1e-14)
    # near the identity, at half turns (w = 0) and about each axis: Shepperd's branches
    special = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1e-9, 1, 1, 0]]
    for s in special:
        R = quaternion_to_matrix(s)
        assert np.allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-14)
    R = random_orientations(100, 4)
    assert np.allclose(euler_to_matrix(matrix_to_euler(R)), R, atol=1e-12)


def test_degenerate_euler_angles_keep_the_rotation():
    for e in ([0.3, 0.0, 0.5], [0.3, np.pi, 0.5], [5.0, 0.0, 4.0]):
        R = euler_to_matrix(e)
        back = matrix_to_euler(R)
        assert back[2] == 0.0 and np.allclose(euler_to_matrix(back), R, atol=1e-14)


def test_single_and_batched_shapes():
    assert euler_to_matrix([0.1, 0.2, 0.3]).shape == (3, 3)
    assert matrix_to_euler(np.eye(3)).shape == (3,)
    assert matrix_to_quaternion(np.stack([np.eye(3)] * 2)).tolist() == [[1, 0, 0, 0]] * 2
    with pytest.raises(ValueError, match="expected"):
        euler_to_matrix([1.0, 2.0])


# -- random and fibre textures -----------------------------------------------------------------
def test_random_orientations_are_uniform_on_so3():
    R = random_orientations(20000, seed=5)
    # rotation angle ω has density (1 - cos ω) / π on [0, π]: CDF (ω - sin ω) / π
    omega = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert stats.kstest(omega, lambda w: (w - np.sin(w)) / np.pi).pvalue > 0.01
    # Haar moments: E[R] = 0, E[R_ij R_kl] = δ_ik δ_jl / 3
    n = R.shape[0]
    assert np.abs(R.mean(axis=0)).max() < 5 / math.sqrt(3 * n)
    second = np.einsum("pij,pkl->ijkl", R, R) / n
    expected = np.einsum("ik,jl->ijkl", np.eye(3), np.eye(3)) / 3
    assert np.abs(second - expected).max() < 5 * math.sqrt(2 / 15 / n)
    # the sample axis Z seen from the crystal is uniform on the sphere: cos of its polar angle
    assert stats.kstest(R[:, 2, 2], "uniform", args=(-1, 2)).pvalue > 0.01


def test_random_orientations_are_reproducible():
    assert np.array_equal(random_orientations(10, 3), random_orientations(10, 3))
    assert not np.allclose(random_orientations(10, 3), random_orientations(10, 4))


def test_fibre_texture():
    c, d = unit([1, 1, 1]), unit([0, 1, 1])
    ideal = fibre_texture(3000, [1, 1, 1], [0, 1, 1], 0.0, seed=1)
    assert np.allclose(ideal @ c, d, atol=1e-14)
    # the spin about the fibre is uniform: a crystal direction ⊥ c sweeps the circle ⊥ d
    e1 = unit(np.cross(d, [1, 0, 0]))
    v = ideal @ unit(np.cross(c, [1, 0, 0]))
    angle = np.arctan2(np.cross(e1, v) @ d, v @ e1)
    assert stats.kstest(angle, "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 0.01
    # with a spread, the misalignment of R c with d is Rayleigh with that scale
    spread = 7.0
    R = fibre_texture(3000, [1, 1, 1], [0, 1, 1], spread, seed=2)
    tilt = np.degrees(np.arccos(np.clip(R @ c @ d, -1, 1)))
    assert stats.kstest(tilt, "rayleigh", args=(0, spread)).pvalue > 0.01
    # antiparallel directions are a half turn
    assert np.allclose(fibre_texture(2, [0, 0, 1], [0, 0, -1], 0.0, 0) @ [0, 0, 1], [0, 0, -1])
    assert np.array_equal(R, fibre_texture(3000, [1, 1, 1], [0, 1, 1], spread, seed=2))


def test_fibre_texture_errors():
    with pytest.raises(MaterialError, match="crystal_direction"):
        fibre_texture(3, [0, 0, 0], [0, 0, 1], 1.0)
    with pytest.raises(MaterialError, match="sample_direction"):
        fibre_texture(3, [1, 0, 0], [0, 1], 1.0)
    with pytest.raises(MaterialError, match="spread"):
        fibre_texture(3, [1, 0, 0], [0, 0, 1], -1.0)


# -- orientation files -------------------------------------------------------------------------
def lines(rows: np.ndarray, sep: str = " ") -> str:
    return "\n".join(sep.join(map(str, r.tolist())) for r in rows)


def test_read_euler_files(tmp_path):
    e = np.degrees(random_euler(5))
    plain = tmp_path / "plain.txt"
    plain.write_text("# grains of cell 3\n\n" + lines(e))
    assert np.allclose(read_orientations(plain, expected=5), euler_to_matrix(e, True))
    csv = tmp_path / "euler.csv"
    csv.write_text("phi1, Phi, phi2\n" + lines(e, ", "))
    assert np.allclose(read_orientations(csv), euler_to_matrix(e, True))
    radians = tmp_path / "rad.txt"
    radians.write_text(lines(np.radians(e)))
    assert np.allclose(read_orientations(radians, kind="euler_radians"), euler_to_matrix(e, True))


def test_read_quaternion_files(tmp_path):
    q = RNG.standard_normal((4, 4))
    q /= np.linalg.norm(q, axis=1)[:, None]
    path = tmp_path / "q.csv"
    path.write_text("q0,q1,q2,q3\n" + "\n".join(",".join(f"{v:.7f}" for v in r) for r in q))
    assert np.allclose(read_orientations(path), quaternion_to_matrix(q), atol=1e-6)
    bare = tmp_path / "q.txt"
    bare.write_text(lines(q))
    assert np.allclose(read_orientations(bare, kind="quaternion"), quaternion_to_matrix(q))


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("10 20 30\n10 20\n", {}, r"line 2: 2 values, expected 3 \(phi1 phi phi2\)"),
        ("q0 q1 q2 q3\n1 0 0\n", {}, "line 2: 3 values, expected 4"),
        ("10 20 nan\n", {}, "line 1: a value is not finite"),
        ("10 20 inf\n", {}, "line 1: a value is not finite"),
        ("10 20 30\n10 x 30\n", {}, "line 2: 'x' is not a number"),
        ("q0 q1 q2 q3\n1 0 0 0\n1 1 0 0\n", {}, "quaternion 2 has norm 1.41421, not 1"),
        ("10 20 30\n", {"expected": 2}, "holds 1 orientations, expected 2"),
        ("# nothing\n", {}, "holds no orientations"),
        ("a b c\n1 2 3\n", {}, "header 'a, b, c' is unknown"),
        ("1 2 3\n", {"kind": "bunge"}, "kind = 'bunge' is unknown"),
        ("phi1 Phi phi2\n1 2 3\n", {"kind": "quaternion"}, "header names euler_degrees"),
    ],
)
def test_orientation_file_errors(tmp_path, text, kwargs, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(MaterialError, match=match) as info:
        read_orientations(path, **kwargs)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_orientation_file_missing(tmp_path):
    with pytest.raises(MaterialError, match="cannot be read"):
        read_orientations(tmp_path / "none.txt")


def test_quaternion_norm_tolerance(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(f"{1 + 0.5 * QUATERNION_NORM_TOL} 0 0 0\n")
    assert np.allclose(read_orientations(path, kind="quaternion")[0], np.eye(3))
