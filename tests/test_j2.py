"""Tests of the J2 return mapping against independent facts: FD tangents, closed forms, symmetry."""

import math
import pickle

import numpy as np
import pytest

from fe2x.errors import MaterialError, SolverError
from fe2x.materials import j2
from fe2x.materials.j2 import (
    J2Plasticity,
    J2State,
    plane_strain_reduce,
    plane_strain_strain,
    return_mapping,
)

E, NU, SY = 200e3, 0.3, 250.0
S2 = math.sqrt(2.0)

LAWS = {
    "perfect": J2Plasticity(E, NU, SY),
    "linear_iso": J2Plasticity(E, NU, SY, H=10e3),
    "voce": J2Plasticity(E, NU, SY, hardening="voce", H=2e3, Q=150.0, b=30.0),
    "kinematic": J2Plasticity(E, NU, SY, H_kin=15e3),
    "mixed": J2Plasticity(E, NU, SY, hardening="voce", H=1e3, Q=100.0, b=50.0, H_kin=8e3),
}
HARDENING = [k for k in LAWS if k != "perfect"]


def lame_stiffness(E: float, nu: float) -> np.ndarray:
    """Isotropic Mandel stiffness from the Lamé constants, built independently of the module."""
    lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[:3, :3] += 2 * mu * np.eye(3)
    C[3:, 3:] = 2 * mu * np.eye(3)
    return C


def to_mandel(A: np.ndarray) -> np.ndarray:
    return np.array([A[0, 0], A[1, 1], A[2, 2], S2 * A[1, 2], S2 * A[0, 2], S2 * A[0, 1]])


def from_mandel(a: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [a[0], a[5] / S2, a[4] / S2],
            [a[5] / S2, a[1], a[3] / S2],
            [a[4] / S2, a[3] / S2, a[2]],
        ]
    )


def mandel_rotation(R: np.ndarray) -> np.ndarray:
    """6x6 matrix Q with mandel(R A R^T) = Q mandel(A), column by column."""
    return np.column_stack([to_mandel(R @ from_mandel(e) @ R.T) for e in np.eye(6)])


def yield_function(law: J2Plasticity, sigma, beta, p) -> np.ndarray:
    xi = sigma - beta
    xi[:, :3] -= sigma[:, :3].mean(axis=1, keepdims=True)
    return math.sqrt(1.5) * np.linalg.norm(xi, axis=1) - (law.sigma_y + law.R(p))


def random_directions(rng, n: int) -> np.ndarray:
    """Random multiaxial strain directions: unit deviatoric part plus a volumetric part."""
    d = rng.standard_normal((n, 6))
    d[:, :3] -= d[:, :3].mean(axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d[:, :3] += 0.3 * rng.standard_normal((n, 1))
    return d


def committed_state(law, rng, n, magnitude=4e-3):
    """A plastic history from one random multiaxial step."""
    eps0 = magnitude * random_directions(rng, n)
    upd = return_mapping(law, eps0, J2State.zeros(n))
    assert upd.plastic.all()
    return eps0, upd.state


def fd_tangent(law, eps, state, h=1e-8):
    n = eps.shape[0]
    C = np.empty((n, 6, 6))
    for j in range(6):
        d = np.zeros(6)
        d[j] = h
        sp = return_mapping(law, eps + d, state).sigma
        sm = return_mapping(law, eps - d, state).sigma
        C[:, :, j] = (sp - sm) / (2 * h)
    return C


@pytest.mark.parametrize("key", list(LAWS))
@pytest.mark.parametrize("history", ["virgin", "plastic"])
def test_consistent_tangent_matches_finite_differences(key, history):
    law = LAWS[key]
    rng = np.random.default_rng(1)
    n = 8
    if history == "virgin":
        eps_n, state = np.zeros((n, 6)), J2State.zeros(n)
    else:
        eps_n, state = committed_state(law, rng, n)
    eps = eps_n + 5e-3 * random_directions(rng, n)
    upd = return_mapping(law, eps, state)
    assert upd.plastic.all()
    C_fd = fd_tangent(law, eps, state)
    err = np.abs(C_fd - upd.C_alg).max(axis=(1, 2)) / np.abs(upd.C_alg).max(axis=(1, 2))
    assert err.max() < 1e-6
    # the algorithmic tangent differs from the elastic one and is symmetric
    assert np.abs(upd.C_alg - law.stiffness(3)).max() > 1e2
    np.testing.assert_allclose(upd.C_alg, upd.C_alg.transpose(0, 2, 1), rtol=0, atol=1e-9 * E)


@pytest.mark.parametrize("key", HARDENING)
def test_elastic_unloading_tangent_and_stress(key):
    law = LAWS[key]
    rng = np.random.default_rng(2)
    n = 6
    eps_n, state = committed_state(law, rng, n)
    eps = eps_n - 3e-4 * (eps_n / np.linalg.norm(eps_n, axis=1, keepdims=True))  # unload
    upd = return_mapping(law, eps, state)
    assert not upd.plastic.any()
    C = lame_stiffness(E, NU)
    assert np.array_equal(upd.C_alg, np.broadcast_to(law.stiffness(3), (n, 6, 6)))
    np.testing.assert_allclose(upd.C_alg, np.broadcast_to(C, (n, 6, 6)), rtol=1e-14, atol=1e-9)
    np.testing.assert_allclose(upd.sigma, (eps - state.eps_p) @ C.T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fd_tangent(law, eps, state), upd.C_alg, rtol=1e-6, atol=1e-6 * E)
    assert np.array_equal(upd.state.to_array(), state.to_array())


def test_elastic_points_from_virgin_state():
    law = LAWS["mixed"]
    rng = np.random.default_rng(3)
    eps = 1e-4 * random_directions(rng, 20)
    upd = return_mapping(law, eps, J2State.zeros(20))
    C = lame_stiffness(E, NU)
    assert not upd.plastic.any()
    np.testing.assert_allclose(upd.sigma, eps @ C.T, rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(upd.C_alg[7], C, rtol=1e-14, atol=1e-9)


@pytest.mark.parametrize("key", list(LAWS))
def test_plastic_step_on_yield_surface_with_normal_deviatoric_flow(key):
    law = LAWS[key]
    rng = np.random.default_rng(4)
    n = 50
    eps_n, state = committed_state(law, rng, n)
    eps = eps_n + 6e-3 * random_directions(rng, n)
    upd = return_mapping(law, eps, state)
    new = upd.state
    assert upd.plastic.all()
    f = yield_function(law, upd.sigma, new.beta, new.p)
    assert np.abs(f).max() < 1e-10 * SY
    deps_p = new.eps_p - state.eps_p
    xi = upd.sigma - new.beta
    xi[:, :3] -= upd.sigma[:, :3].mean(axis=1, keepdims=True)
    lam = np.einsum("ij,ij->i", deps_p, xi) / np.einsum("ij,ij->i", xi, xi)
    assert (lam > 0).all()
    np.testing.assert_allclose(deps_p, lam[:, None] * xi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(deps_p[:, :3].sum(axis=1), 0.0, atol=1e-15)
    dp = new.p - state.p
    np.testing.assert_allclose(dp, math.sqrt(2 / 3) * np.linalg.norm(deps_p, axis=1), rtol=1e-12)
    np.testing.assert_allclose(new.beta - state.beta, 2 / 3 * law.H_kin * deps_p, atol=1e-9)


def test_input_state_not_modified():
    law = LAWS["mixed"]
    rng = np.random.default_rng(5)
    eps_n, state = committed_state(law, rng, 10)
    before = state.to_array().copy()
    eps = eps_n + 5e-3 * random_directions(rng, 10)
    eps_copy = eps.copy()
    upd = return_mapping(law, eps, state)
    assert np.array_equal(state.to_array(), before)
    assert np.array_equal(eps, eps_copy)
    assert upd.state.eps_p is not state.eps_p


def uniaxial(law, eps11, state, eps_guess):
    """Strain with given eps11 and sigma = sigma11 e1 (Newton on the 5 other components)."""
    eps = eps_guess.copy()
    eps[0, 0] = eps11
    for _ in range(30):
        upd = return_mapping(law, eps, state)
        r = upd.sigma[0, 1:]
        if np.abs(r).max() < 1e-10 * SY:
            return eps, upd
        eps[0, 1:] -= np.linalg.solve(upd.C_alg[0, 1:, 1:], r)
    raise AssertionError("uniaxial driver did not converge")


def run_uniaxial(law, eps11_path):
    state = J2State.zeros(1)
    eps = np.zeros((1, 6))
    out = []
    for e in eps11_path:
        eps, upd = uniaxial(law, e, state, eps)
        state = upd.state
        # uniaxial tangent dsigma11/deps11: Schur complement of the consistent tangent
        C = upd.C_alg[0]
        Et = C[0, 0] - C[0, 1:] @ np.linalg.solve(C[1:, 1:], C[1:, 0])
        out.append((upd.sigma[0, 0], bool(upd.plastic[0]), Et))
    return out


@pytest.mark.parametrize(("H", "H_kin"), [(10e3, 0.0), (0.0, 15e3), (6e3, 9e3), (0.0, 0.0)])
def test_uniaxial_loading_closed_form(H, H_kin):
    law = J2Plasticity(E, NU, SY, H=H, H_kin=H_kin)
    Et = E * (H + H_kin) / (E + H + H_kin)
    ey = SY / E
    path = [0.5 * ey, 0.999 * ey, 1.5 * ey, 3 * ey, 10 * ey]
    res = run_uniaxial(law, path)
    for e, (s, plastic, et) in zip(path, res, strict=True):
        if e < ey:
            assert not plastic
            assert s == pytest.approx(E * e, rel=1e-12)
            assert et == pytest.approx(E, rel=1e-12)
        else:
            assert plastic
            assert s == pytest.approx(SY + Et * (e - ey), rel=1e-11)
            assert et == pytest.approx(Et, rel=1e-9, abs=1e-9 * E)


@pytest.mark.parametrize("kind", ["kinematic", "isotropic"])
def test_uniaxial_unloading_and_bauschinger(kind):
    Hp = 20e3
    law = J2Plasticity(
        E, NU, SY, H=Hp if kind == "isotropic" else 0.0, H_kin=Hp * (kind != "isotropic")
    )
    Et = E * Hp / (E + Hp)
    ey = SY / E
    e_max = 8 * ey
    s_max = SY + Et * (e_max - ey)
    # reverse yield: kinematic sigma_max - 2 sigma_y; isotropic -sigma_max
    s_rev = s_max - 2 * SY if kind == "kinematic" else -s_max
    e_rev = e_max - (s_max - s_rev) / E
    path = [e_max, e_max - 0.5 * ey, e_rev + 1e-6 * ey, e_rev - 2 * ey]
    (s1, p1, _), (s2, p2, et2), (s3, p3, _), (s4, p4, et4) = run_uniaxial(law, path)
    assert p1 and s1 == pytest.approx(s_max, rel=1e-12)
    assert not p2 and s2 == pytest.approx(s_max - 0.5 * SY, rel=1e-12)
    assert et2 == pytest.approx(E, rel=1e-12)
    assert not p3 and s3 == pytest.approx(s_rev, rel=1e-5)
    assert p4 and s4 == pytest.approx(s_rev - Et * 2 * ey, rel=1e-11)
    assert et4 == pytest.approx(Et, rel=1e-9)


def test_objectivity():
    law = LAWS["mixed"]
    rng = np.random.default_rng(6)
    n = 12
    eps_n, state = committed_state(law, rng, n)
    eps = eps_n + 5e-3 * random_directions(rng, n)
    A = rng.standard_normal((3, 3))
    R, _ = np.linalg.qr(A)
    Q = mandel_rotation(R)
    np.testing.assert_allclose(Q @ Q.T, np.eye(6), atol=1e-14)
    rot = J2State(state.eps_p @ Q.T, state.beta @ Q.T, state.p)
    upd = return_mapping(law, eps, state)
    upd_r = return_mapping(law, eps @ Q.T, rot)
    np.testing.assert_array_equal(upd.plastic, upd_r.plastic)
    np.testing.assert_allclose(upd_r.sigma, upd.sigma @ Q.T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(upd_r.C_alg, Q @ upd.C_alg @ Q.T, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(upd_r.state.p, upd.state.p, rtol=1e-12)
    np.testing.assert_allclose(upd_r.state.eps_p, upd.state.eps_p @ Q.T, atol=1e-15)


def test_plane_strain():
    law = LAWS["linear_iso"]
    rng = np.random.default_rng(7)
    eps2 = rng.standard_normal((5, 3))
    eps2 *= 1e-4 / np.abs(eps2).max()
    eps = plane_strain_strain(eps2)
    assert np.array_equal(eps[:, [2, 3, 4]], np.zeros((5, 3)))
    assert np.array_equal(eps[:, [0, 1, 5]], eps2)
    upd = return_mapping(law, eps, J2State.zeros(5))
    assert not upd.plastic.any()
    s = upd.sigma
    np.testing.assert_allclose(s[:, 2], NU * (s[:, 0] + s[:, 1]), rtol=1e-12)
    s2, C2 = plane_strain_reduce(upd.sigma, upd.C_alg)
    np.testing.assert_allclose(s2, eps2 @ lame_stiffness(E, NU)[np.ix_([0, 1, 5], [0, 1, 5])].T)
    assert C2.shape == (5, 3, 3)

    # plastic: in-plane stretch well past yield
    eps2 = np.array([[1e-2, -2e-3, 3e-3], [5e-3, 5e-3, 0.0]])
    eps = plane_strain_strain(eps2)
    upd = return_mapping(law, eps, J2State.zeros(2))
    s = upd.sigma
    assert upd.plastic.all()
    assert (np.abs(s[:, 2] - NU * (s[:, 0] + s[:, 1])) > 1.0).all()
    assert np.abs(upd.state.eps_p[:, 2]).min() > 1e-4  # out-of-plane plastic strain
    np.testing.assert_allclose(s[:, 3:5], 0.0, atol=1e-9)
    # the reduced tangent is the derivative of the reduced stress
    s2, C2 = plane_strain_reduce(upd.sigma, upd.C_alg)
    h = 1e-8
    for j in range(3):
        d = np.zeros(3)
        d[j] = h
        sp = return_mapping(law, plane_strain_strain(eps2 + d), J2State.zeros(2)).sigma
        sm = return_mapping(law, plane_strain_strain(eps2 - d), J2State.zeros(2)).sigma
        fd = (plane_strain_reduce(sp, upd.C_alg)[0] - plane_strain_reduce(sm, upd.C_alg)[0]) / (
            2 * h
        )
        np.testing.assert_allclose(fd, C2[:, :, j], rtol=0, atol=1e-6 * E)


def test_state_helpers():
    rng = np.random.default_rng(8)
    _, s1 = committed_state(LAWS["mixed"], rng, 4)
    s0 = J2State.zeros(3)
    assert s0.n == 3 and s0.p.shape == (3,)
    both = J2State.concatenate([s1, s0])
    assert both.n == 7
    assert np.array_equal(both.take(slice(0, 4)).to_array(), s1.to_array())
    back = J2State.from_array(both.to_array())
    assert np.array_equal(back.to_array(), both.to_array())
    c = pickle.loads(pickle.dumps(both))
    assert np.array_equal(c.to_array(), both.to_array())
    cp = s1.copy()
    assert cp.eps_p is not s1.eps_p and np.array_equal(cp.eps_p, s1.eps_p)
    with pytest.raises(ValueError, match=r"expected \(n, 6\)"):
        J2State(np.zeros((3, 6)), np.zeros((2, 6)), np.zeros(3))
    with pytest.raises(ValueError, match=r"expected \(3, 6\)"):
        return_mapping(LAWS["mixed"], np.zeros((4, 6)), s0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"E": -1.0}, r"E = -1\.0 is outside the allowed range 0 < E < inf"),
        ({"E": float("nan")}, r"E = nan is outside"),
        ({"nu": 0.5}, r"nu = 0\.5 is outside the allowed range -1 < nu < 0\.5"),
        ({"nu": -1.0}, r"nu = -1\.0 is outside"),
        ({"sigma_y": 0.0}, r"sigma_y = 0\.0 is outside the allowed range 0 < sigma_y"),
        ({"H": -5.0}, r"H = -5\.0 is outside the allowed range 0 <= H < inf"),
        ({"H_kin": -1.0}, r"H_kin = -1\.0 is outside the allowed range 0 <= H_kin"),
        ({"hardening": "voce", "Q": -1.0, "b": 1.0}, r"Q = -1\.0 is outside"),
        ({"hardening": "voce", "Q": 1.0, "b": -1.0}, r"b = -1\.0 is outside"),
        ({"hardening": "voce", "Q": 100.0}, r"b = 0\.0 with Q = 100\.0 > 0; allowed: b > 0"),
        (
            {"hardening": "linear", "Q": 100.0, "b": 1.0},
            r"Q = 100\.0, b = 1\.0 apply only to hardening = 'voce'",
        ),
        ({"hardening": "swift"}, r"hardening = 'swift' is unknown; allowed: 'linear', 'voce'"),
    ],
)
def test_invalid_parameters(kwargs, match):
    args = {"E": E, "nu": NU, "sigma_y": SY, "name": "steel"} | kwargs
    with pytest.raises(MaterialError, match=r"^J2Plasticity 'steel': " + match):
        J2Plasticity(**args)


def test_solver_errors(monkeypatch):
    law = LAWS["voce"]
    eps = np.zeros((3, 6))
    eps[1, 5] = np.nan
    with pytest.raises(SolverError, match=r"strain is not finite at 1 point\(s\)"):
        return_mapping(law, eps, J2State.zeros(3))
    monkeypatch.setattr(j2, "_NEWTON_MAXIT", 1)
    eps = 1e-2 * random_directions(np.random.default_rng(9), 3)
    with pytest.raises(SolverError, match=r"Voce Newton for dp did not converge at 3 point\(s\)"):
        return_mapping(law, eps, J2State.zeros(3))
