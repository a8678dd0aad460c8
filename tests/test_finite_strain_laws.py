"""Finite-strain laws and conversions against independent facts: finite differences, scipy's
matrix logarithm, high-precision divided differences, strain energies, objectivity, closed-form
uniaxial curves, the small-strain laws, and a rate-form ODE of log-strain J2 in simple shear."""

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from fe2x.errors import MaterialError, SolverError
from fe2x.materials import IsotropicElastic
from fe2x.materials.finite_plasticity import LogStrainPlasticity
from fe2x.materials.hyperelastic import NeoHookean, SaintVenantKirchhoff
from fe2x.materials.j2 import J2Plasticity, J2State, return_mapping
from fe2x.materials.kinematics import (
    cauchy_from_piola,
    checked_deformation,
    embed_plane_strain,
    flatten,
    green_lagrange,
    log_divided_difference,
    log_second_divided_difference,
    log_strain,
    log_stress_to_pk2,
    piola_from_kirchhoff,
    piola_from_pk2,
    reduce_plane_strain,
    tangent_from_pk2,
    unflatten,
)
from fe2x.materials.law import (
    ConstitutiveLaw,
    ElasticStiffness,
    OutputFields,
    check_law,
    strain_size,
)

E, NU, SY = 200e3, 0.3, 250.0
S2 = math.sqrt(2.0)
I3 = np.eye(3)
TRANSPOSE9 = [3 * j + i for i in range(3) for j in range(3)]  # ij -> ji in a 9-vector

HYPERELASTIC = {
    "neo_hookean": NeoHookean(75.0, 0.3),
    "neo_hookean_KG": NeoHookean.from_bulk_shear(400.0 / 1.8, 400.0 / 2.4),  # E 400, ν 0.2
    "svk": SaintVenantKirchhoff(400.0, 0.2),
    "hencky": LogStrainPlasticity(IsotropicElastic(75.0, 0.3)),
}
PLASTIC = {
    "perfect": LogStrainPlasticity(J2Plasticity(E, NU, SY)),
    "linear_iso": LogStrainPlasticity(J2Plasticity(E, NU, SY, H=10e3)),
    "kinematic": LogStrainPlasticity(J2Plasticity(E, NU, SY, H_kin=15e3)),
    "mixed_voce": LogStrainPlasticity(
        J2Plasticity(E, NU, SY, hardening="voce", H=1e3, Q=100.0, b=50.0, H_kin=8e3)
    ),
}
LAWS = {**HYPERELASTIC, **PLASTIC}


# -- independent helpers -------------------------------------------------------------------


def lame(law) -> tuple[float, float]:
    """Lamé constants of the (linearised) law from its E and ν, by their textbook formulas."""
    constants = getattr(law, "small", law)
    E_, nu = constants.E, constants.nu
    return E_ * nu / ((1 + nu) * (1 - 2 * nu)), E_ / (2 * (1 + nu))


def isotropic_A(lam: float, mu: float) -> np.ndarray:
    """``λ δ_iJ δ_kL + μ (δ_ik δ_JL + δ_iL δ_Jk)`` at ``[3i+J, 3k+L]``, by loops."""
    A = np.zeros((9, 9))
    for i, J, k, L in np.ndindex(3, 3, 3, 3):
        A[3 * i + J, 3 * k + L] = lam * I3[i, J] * I3[k, L] + mu * (
            I3[i, k] * I3[J, L] + I3[i, L] * I3[J, k]
        )
    return A


def isotropic_mandel(lam: float, mu: float) -> np.ndarray:
    C = 2 * mu * np.eye(6)
    C[:3, :3] += lam
    return C


def random_rotations(rng, n: int) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    Q = Q * np.sign(np.einsum("nii->ni", R))[:, None, :]
    Q[np.linalg.det(Q) < 0, :, 0] *= -1
    return Q


def random_F(rng, n: int, scale: float) -> np.ndarray:
    """``exp(scale X)`` of random ``X`` (so ``det F > 0``), row-major ``(n, 9)``."""
    return np.array([sla.expm(scale * rng.standard_normal((3, 3))) for _ in range(n)]).reshape(n, 9)


def fd_tangent(law, F: np.ndarray, state, h: float = 1e-6) -> np.ndarray:
    """Central differences ``∂P/∂F`` at ``F`` ``(n, 9)`` from the committed ``state``."""
    A = np.empty((F.shape[0], 9, 9))
    for j in range(9):
        d = np.zeros(9)
        d[j] = h
        A[:, :, j] = (law.update(F + d, state)[0] - law.update(F - d, state)[0]) / (2 * h)
    return A


def rel(a: np.ndarray, b: np.ndarray, scale: float = 0.0) -> float:
    """Max difference over the max of ``|b|`` (or ``scale`` if larger, e.g. where b is 0)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), scale))


def to_mandel(t: np.ndarray) -> np.ndarray:
    return np.array([t[0, 0], t[1, 1], t[2, 2], S2 * t[1, 2], S2 * t[0, 2], S2 * t[0, 1]])


def from_mandel(a: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [a[0], a[5] / S2, a[4] / S2],
            [a[5] / S2, a[1], a[3] / S2],
            [a[4] / S2, a[3] / S2, a[2]],
        ]
    )


def hencky_scipy(F: np.ndarray) -> np.ndarray:
    """``½ logm(Fᵀ F)`` of one 3×3 ``F`` by scipy."""
    return 0.5 * sla.logm(F.T @ F).real


# -- kinematics ----------------------------------------------------------------------------


def test_row_major_storage():
    F9 = np.arange(18.0).reshape(2, 9)
    F = unflatten(F9)
    for n, i, j in np.ndindex(2, 3, 3):
        assert F[n, i, j] == F9[n, 3 * i + j]
    assert np.array_equal(flatten(F), F9)
    with pytest.raises(ValueError, match=r"expected \(n, 9\)"):
        unflatten(np.zeros((2, 6)))


def test_divided_differences_against_high_precision():
    getcontext().prec = 50

    def f1(x, y):
        x, y = Decimal(x), Decimal(y)
        return (x.ln() - y.ln()) / (2 * (x - y))

    def f2(x, y, w):
        return (f1(x, y) - f1(y, Decimal(w))) / (Decimal(x) - Decimal(w))

    rng = np.random.default_rng(0)
    for spread in [0.5, 1e-1, 1e-2, 2e-3, 1e-3, 5e-4, 1e-5, 1e-8]:
        m = np.exp(rng.uniform(-2, 2, 20))
        x, y, w = m * (1 + spread * rng.uniform(-1, 1, (3, 20)))
        a1 = log_divided_difference(x, y)
        a2 = log_second_divided_difference(x, y, w)
        for k in range(20):
            assert a1[k] == pytest.approx(float(f1(x[k], y[k])), rel=1e-15)
            assert a2[k] == pytest.approx(float(f2(x[k], y[k], w[k])), rel=2e-12)
    # coincident arguments: f' = 1/(2x), f''/2 = -1/(4x²), f[x,x,y] = (f'(x) - f[x,y])/(x - y)
    x = np.array([0.3, 1.0, 7.0])
    assert np.allclose(log_divided_difference(x, x), 0.5 / x, rtol=1e-15, atol=0)
    assert np.allclose(log_second_divided_difference(x, x, x), -0.25 / x**2, rtol=1e-15, atol=0)
    y = 2.0 * x
    ref = (0.5 / x - 0.5 * np.log(x / y) / (x - y)) / (x - y)
    assert np.allclose(log_second_divided_difference(x, y, x), ref, rtol=1e-14, atol=0)


def _spectral_cases(rng) -> np.ndarray:
    """Deformation gradients with distinct, clustered, double and triple eigenvalues of C."""
    Q = random_rotations(rng, 5)
    U = [np.diag([1.7, 0.6, 1.2]), np.diag([1.3, 1.3, 0.8]), np.diag([1.1, 1.1, 1.1]), I3]
    cases = [q @ u @ q.T for q, u in zip(Q, U, strict=False)]
    cases.append(sla.expm(1e-5 * rng.standard_normal((3, 3))))
    return np.concatenate([np.array(cases).reshape(-1, 9), random_F(rng, 4, 0.5)])


def test_log_strain_against_scipy_logm():
    F = unflatten(_spectral_cases(np.random.default_rng(1)))
    e = log_strain(F).e
    for k in range(F.shape[0]):
        np.testing.assert_allclose(e[k], to_mandel(hencky_scipy(F[k])), rtol=0, atol=1e-13)


def _log_energy(e: np.ndarray, D: np.ndarray, beta: float) -> float:
    """A nonlinear anisotropic energy of the Hencky strain: ``½ e:D:e + β (e:e)²``."""
    m = to_mandel(e)
    return 0.5 * m @ D @ m + beta * (m @ m) ** 2


@pytest.mark.parametrize("case", range(9))
def test_log_strain_derivatives_from_an_energy(case):
    """``S = ∂ψ/∂E`` of ``ψ(e(E))`` by central differences of scipy's logm, and ``∂S/∂E`` by
    differences of ``S``; ``T = ∂ψ/∂e`` and ``∂T/∂e`` are in closed form."""
    rng = np.random.default_rng(2)
    F = unflatten(_spectral_cases(rng)[case : case + 1])
    M = rng.standard_normal((6, 6))
    D, beta = M @ M.T + 6 * np.eye(6), 3.0

    def T_and_tangent(m):
        T = D @ m + 4 * beta * (m @ m) * m
        dT = D + 4 * beta * ((m @ m) * np.eye(6) + 2 * np.outer(m, m))
        return T, dT

    def pk2(Fk):
        strain = log_strain(Fk[None])
        T, dT = T_and_tangent(strain.e[0])
        return log_stress_to_pk2(strain, T[None], dT[None])

    S, dS = pk2(F[0])
    E0 = green_lagrange(F)[0]
    h = 1e-6

    def F_of(Em):  # a deformation gradient with Green-Lagrange strain Em: sqrt(I + 2 Em)
        return sla.sqrtm(I3 + 2 * Em).real

    S_fd, dS_fd = np.zeros((3, 3)), np.zeros((9, 9))
    for I, J in np.ndindex(3, 3):
        dE = h * 0.5 * (np.outer(I3[I], I3[J]) + np.outer(I3[J], I3[I]))
        psi = [_log_energy(hencky_scipy(F_of(E0 + s * dE)), D, beta) for s in (1, -1)]
        S_fd[I, J] = (psi[0] - psi[1]) / (2 * h)
        Sp, Sm = pk2(F_of(E0 + dE))[0][0], pk2(F_of(E0 - dE))[0][0]
        dS_fd[:, 3 * I + J] = ((Sp - Sm) / (2 * h)).reshape(9)
    assert rel(S[0], S_fd, scale=np.abs(D).max()) < 1e-7
    assert rel(dS[0], dS_fd) < 1e-7
    # hyperelastic in log strain => ∂S/∂E major and minor symmetric
    assert rel(dS[0], dS[0].T) < 1e-13
    assert rel(dS[0], dS[0][:, TRANSPOSE9]) < 1e-13


def test_tangent_from_pk2_by_finite_differences():
    """An anisotropic nonlinear ``S(E) = ℂ₀:E + α (E:E) E`` with its closed-form ``∂S/∂E``."""
    rng = np.random.default_rng(3)
    M = rng.standard_normal((6, 6))
    C0 = np.zeros((3, 3, 3, 3))
    for a, b in np.ndindex(6, 6):
        Ea, Eb = from_mandel(np.eye(6)[a]), from_mandel(np.eye(6)[b])
        C0 += (M @ M.T + 6 * np.eye(6))[a, b] * np.einsum("ij,kl->ijkl", Ea, Eb)
    alpha = 5.0
    sym = 0.5 * (np.einsum("ik,jl->ijkl", I3, I3) + np.einsum("il,jk->ijkl", I3, I3))

    def S_of(Em):
        return np.einsum("ijkl,kl->ij", C0, Em) + alpha * np.sum(Em * Em) * Em

    def P_of(F9):
        F = unflatten(F9)
        return np.array([f @ S_of(0.5 * (f.T @ f - I3)) for f in F]).reshape(-1, 9)

    F9 = random_F(rng, 4, 0.4)
    F = unflatten(F9)
    Em = green_lagrange(F)
    S = np.array([S_of(e) for e in Em])
    dS = np.array(
        [C0 + alpha * (2 * np.einsum("ij,kl->ijkl", e, e) + np.sum(e * e) * sym) for e in Em]
    ).reshape(-1, 9, 9)
    np.testing.assert_allclose(flatten(piola_from_pk2(F, S)), P_of(F9), rtol=1e-14, atol=1e-13)
    A = tangent_from_pk2(F, S, dS)
    A_fd = np.empty_like(A)
    for j in range(9):
        d = 1e-6 * np.eye(9)[j]
        A_fd[:, :, j] = (P_of(F9 + d) - P_of(F9 - d)) / 2e-6
    assert rel(A, A_fd) < 1e-8


def test_kirchhoff_and_cauchy_conversions():
    rng = np.random.default_rng(4)
    F = unflatten(random_F(rng, 6, 0.5))
    tau = rng.standard_normal((6, 3, 3))
    tau = tau + np.swapaxes(tau, 1, 2)
    P = piola_from_kirchhoff(F, tau)
    np.testing.assert_allclose(P @ np.swapaxes(F, 1, 2), tau, rtol=0, atol=1e-12)
    J = np.linalg.det(F)
    np.testing.assert_allclose(cauchy_from_piola(F, P), tau / J[:, None, None], atol=1e-12)
    # from a symmetric S: σ = F S Fᵀ / J is symmetric
    S = tau
    sigma = cauchy_from_piola(F, piola_from_pk2(F, S))
    np.testing.assert_allclose(sigma, np.swapaxes(sigma, 1, 2), rtol=0, atol=1e-12)


def test_plane_strain_reduction_is_the_in_plane_derivative():
    law = NeoHookean(75.0, 0.3)
    rng = np.random.default_rng(5)
    F2 = (I3[:2, :2] + 0.3 * rng.standard_normal((4, 2, 2))).reshape(4, 4)
    F2[np.linalg.det(F2.reshape(4, 2, 2)) < 0] *= np.array([-1.0, -1.0, 1.0, 1.0])
    F = embed_plane_strain(F2)
    assert np.array_equal(F.reshape(4, 3, 3)[:, :2, :2].reshape(4, 4), F2)
    assert np.array_equal(F[:, [2, 5, 6, 7, 8]], np.tile([0, 0, 0, 0, 1.0], (4, 1)))
    P, A, _ = law.update(F, {})
    P2, A2 = reduce_plane_strain(P, A)
    A_fd = np.empty((4, 4, 4))
    for j in range(4):
        d = 1e-6 * np.eye(4)[j]
        Pp = reduce_plane_strain(law.update(embed_plane_strain(F2 + d), {})[0], A)[0]
        Pm = reduce_plane_strain(law.update(embed_plane_strain(F2 - d), {})[0], A)[0]
        A_fd[:, :, j] = (Pp - Pm) / 2e-6
    assert np.array_equal(P2, P.reshape(4, 3, 3)[:, :2, :2].reshape(4, 4))
    assert rel(A2, A_fd) < 1e-8
    with pytest.raises(ValueError, match=r"expected \(n, 4\)"):
        embed_plane_strain(np.zeros((2, 9)))


def test_bad_deformation_gradients_raise():
    F = np.tile(I3, (3, 1, 1))
    F[1, 2, 2] = -1.0
    with pytest.raises(SolverError, match=r"det F <= 0 at 1 point\(s\)"):
        checked_deformation(F, "law")
    assert checked_deformation(F, "law", positive=False)[1] == -1.0
    F[2, 0, 0] = np.nan
    with pytest.raises(SolverError, match=r"not finite at 1 point\(s\)"):
        checked_deformation(F, "law", positive=False)
    for law in (HYPERELASTIC["neo_hookean"], PLASTIC["linear_iso"]):
        with pytest.raises(SolverError, match="det F <= 0"):
            law.update(np.diag([1.0, 1.0, -0.5]).reshape(1, 9), law.initial_state(1))


# -- the laws ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(LAWS))
def test_laws_implement_the_contract(key):
    law = LAWS[key]
    assert check_law(law) is law and isinstance(law, ConstitutiveLaw)
    assert law.kinematics == "finite" and strain_size(law.kinematics) == 9
    assert isinstance(law, ElasticStiffness)
    state = law.initial_state(4)
    assert set(state) == set(law.state_shapes)
    P, A, trial = law.update(np.tile(I3.reshape(9), (4, 1)), state)
    assert P.shape == (4, 9) and A.shape == (4, 9, 9) and set(trial) == set(state)
    with pytest.raises(ValueError, match=r"expected \(n, 9\)"):
        law.update(np.zeros((4, 6)), state)


def test_finite_j2_state_and_outputs_are_those_of_j2():
    law = PLASTIC["mixed_voce"]
    assert isinstance(law, OutputFields) and law.output_names == ("equivalent_plastic_strain",)
    assert dict(law.state_shapes) == {"eps_p": (6,), "beta": (6,), "p": ()}
    assert HYPERELASTIC["hencky"].output_names == () and HYPERELASTIC["hencky"].outputs({}) == {}
    # the update is the J2 return mapping on the Hencky strain (by scipy's logm)
    rng = np.random.default_rng(6)
    F = random_F(rng, 5, 0.05)
    _, _, trial = law.update(F, law.initial_state(5))
    eps = np.array([to_mandel(hencky_scipy(f)) for f in unflatten(F)])
    ref = return_mapping(law.small, eps, J2State.zeros(5)).state
    assert ref.p.min() > 0
    np.testing.assert_allclose(trial["eps_p"], ref.eps_p, rtol=0, atol=1e-13)
    np.testing.assert_allclose(trial["p"], ref.p, rtol=1e-12)
    assert law.outputs(trial)["equivalent_plastic_strain"] is trial["p"]


def _plastic_history(law, rng, n):
    """A committed plastic state: one big random step from the virgin state."""
    F = random_F(rng, n, 0.05)
    _, _, state = law.update(F, law.initial_state(n))
    assert state["p"].min() > 0
    return F, state


@pytest.mark.parametrize("key", list(HYPERELASTIC))
@pytest.mark.parametrize("scale", [1e-3, 0.5])
def test_hyperelastic_tangent_by_finite_differences_and_major_symmetry(key, scale):
    law = LAWS[key]
    F = random_F(np.random.default_rng(7), 8, scale)
    _, A, _ = law.update(F, {})
    assert rel(A, fd_tangent(law, F, {})) < 1e-7
    assert rel(A, np.swapaxes(A, 1, 2)) < 1e-13


@pytest.mark.parametrize("key", list(PLASTIC))
@pytest.mark.parametrize("history", ["virgin_elastic", "virgin_plastic", "plastic", "unloading"])
def test_finite_j2_tangent_by_finite_differences(key, history):
    law = LAWS[key]
    rng = np.random.default_rng(8)
    n = 6
    if history.startswith("virgin"):
        state = law.initial_state(n)
        F = random_F(rng, n, 2e-4 if history == "virgin_elastic" else 0.3)
    else:
        F_n, state = _plastic_history(law, rng, n)
        if history == "plastic":
            F = (unflatten(random_F(rng, n, 0.2)) @ unflatten(F_n)).reshape(n, 9)
        else:  # a small step back towards I, elastic
            F = (sla.fractional_matrix_power(unflatten(F_n), 0.999)).real.reshape(n, 9)
    _, A, trial = law.update(F, state)
    plastic = trial["p"] > state["p"]
    assert plastic.all() if history in ("virgin_plastic", "plastic") else not plastic.any()
    h = 1e-7 if history == "virgin_elastic" else 1e-6
    err = np.abs(A - fd_tangent(law, F, state, h)).max(axis=(1, 2)) / np.abs(A).max(axis=(1, 2))
    assert err.max() < 1e-6


@pytest.mark.parametrize("key", list(LAWS))
def test_objectivity(key):
    law = LAWS[key]
    rng = np.random.default_rng(9)
    n = 6
    if key in PLASTIC:
        F_n, state = _plastic_history(law, rng, n)
        F = (unflatten(random_F(rng, n, 0.2)) @ unflatten(F_n)).reshape(n, 9)
    else:
        state, F = law.initial_state(n), random_F(rng, n, 0.5)
    Q = random_rotations(rng, n)
    P, A, trial = law.update(F, state)
    PQ, AQ, trialQ = law.update((Q @ unflatten(F)).reshape(n, 9), state)
    np.testing.assert_allclose(unflatten(PQ), Q @ unflatten(P), rtol=0, atol=1e-10 * abs(P).max())
    # A(QF)_iJkL = Q_ia Q_kb A(F)_aJbL
    A_rot = np.einsum("nia,nkb,naJbL->niJkL", Q, Q, A.reshape(n, 3, 3, 3, 3)).reshape(n, 9, 9)
    assert rel(AQ, A_rot) < 1e-10
    for name in trial:
        np.testing.assert_allclose(trialQ[name], trial[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("key", list(LAWS))
def test_tangent_at_identity_is_the_small_strain_stiffness(key):
    law = LAWS[key]
    lam, mu = lame(law)
    P, A, _ = law.update(np.tile(I3.reshape(9), (2, 1)), law.initial_state(2))
    np.testing.assert_allclose(P, 0.0, atol=1e-12 * mu)
    assert rel(A[0], isotropic_A(lam, mu)) < 1e-10
    assert rel(law.elastic_stiffness(), isotropic_mandel(lam, mu)) < 1e-12


def test_bulk_shear_inputs():
    law = HYPERELASTIC["neo_hookean_KG"]
    assert law.E == pytest.approx(400.0, rel=1e-14) and law.nu == pytest.approx(0.2, rel=1e-14)
    lam, mu = law.lame
    assert lam + 2 * mu / 3 == pytest.approx(400.0 / 1.8, rel=1e-14)
    assert mu == pytest.approx(400.0 / 2.4, rel=1e-14)


@pytest.mark.parametrize("key", ["neo_hookean", "svk", "hencky"])
def test_small_strains_reproduce_hooke(key):
    law = LAWS[key]
    lam, mu = lame(law)
    C = isotropic_mandel(lam, mu)
    H = np.random.default_rng(10).standard_normal((5, 3, 3))
    errors = []
    for h in (1e-3, 1e-4):
        P = unflatten(law.update((I3 + h * H).reshape(5, 9), {})[0])
        sigma = np.array([from_mandel(C @ to_mandel(0.5 * h * (g + g.T))) for g in H])
        errors.append(rel(P, sigma))
    assert errors[0] < 20 * 1e-3 and 8 < errors[0] / errors[1] < 12  # first order in h


def test_finite_j2_small_strains_reproduce_j2():
    """Plastic to the same extent at two strain magnitudes h (yield stress scaled with h): the
    finite-strain law departs from the small-strain J2 law by O(h)."""
    rng = np.random.default_rng(11)
    H = rng.standard_normal((6, 3, 3))
    errors = []
    for h in (4e-3, 4e-4):
        small = J2Plasticity(E, NU, SY * h / 4e-3, H=10e3, H_kin=5e3)
        law = LogStrainPlasticity(small)
        P, _, trial = law.update((I3 + h * H).reshape(6, 9), law.initial_state(6))
        eps = np.array([to_mandel(0.5 * h * (g + g.T)) for g in H])
        ref = return_mapping(small, eps, J2State.zeros(6))
        assert ref.plastic.all()
        sigma = np.array([from_mandel(s) for s in ref.sigma])
        errors.append(max(rel(unflatten(P), sigma), rel(trial["p"], ref.state.p)))
    assert errors[0] < 20 * 4e-3 and 8 < errors[0] / errors[1] < 12


def _energy(key: str, F: np.ndarray) -> float:
    lam, mu = lame(LAWS[key])
    C = F.T @ F
    if key == "svk":
        Em = 0.5 * (C - I3)
        return 0.5 * lam * np.trace(Em) ** 2 + mu * np.sum(Em * Em)
    lnJ = math.log(np.linalg.det(F))
    return 0.5 * mu * (np.trace(C) - 3) - mu * lnJ + 0.5 * lam * lnJ**2


@pytest.mark.parametrize("key", ["neo_hookean", "svk"])
def test_stress_is_the_derivative_of_the_stated_energy(key):
    law = LAWS[key]
    F = unflatten(random_F(np.random.default_rng(12), 4, 0.5))
    P = unflatten(law.update(F.reshape(4, 9), {})[0])
    h = 1e-6
    for n, i, J in np.ndindex(4, 3, 3):
        d = h * np.outer(I3[i], I3[J])
        dpsi = (_energy(key, F[n] + d) - _energy(key, F[n] - d)) / (2 * h)
        assert dpsi == pytest.approx(P[n, i, J], rel=1e-7, abs=1e-7 * abs(P[n]).max())


def test_neo_hookean_is_the_fans_form_and_closed_form_uniaxial_strain():
    """``S = λ ln J C⁻¹ + μ (I − C⁻¹)``, ``∂S/∂E = λ C⁻¹⊗C⁻¹ + 2 (μ − λ ln J) 𝕀_{C⁻¹}``
    (converted by ``tangent_from_pk2``), and ``P₁₁ = μ (λ − 1/λ) + λ_L ln λ / λ``,
    ``P₂₂ = λ_L ln λ`` at ``F = diag(λ, 1, 1)``."""
    law = LAWS["neo_hookean"]
    lam, mu = lame(law)
    F = unflatten(random_F(np.random.default_rng(13), 5, 0.5))
    P, A, _ = law.update(F.reshape(5, 9), {})
    Ci = np.linalg.inv(np.swapaxes(F, 1, 2) @ F)
    lnJ = np.log(np.linalg.det(F))[:, None, None]
    S = lam * lnJ * Ci + mu * (I3 - Ci)
    IC = 0.5 * (np.einsum("nik,njl->nijkl", Ci, Ci) + np.einsum("nil,njk->nijkl", Ci, Ci))
    dS = lam * np.einsum("nij,nkl->nijkl", Ci, Ci) + 2 * (mu - lam * lnJ[..., None, None]) * IC
    np.testing.assert_allclose(P, flatten(F @ S), rtol=0, atol=1e-12 * abs(P).max())
    assert rel(A, tangent_from_pk2(F, S, dS.reshape(5, 9, 9))) < 1e-13
    for stretch in (0.5, 1.3, 2.0):
        P = law.update(np.diag([stretch, 1.0, 1.0]).reshape(1, 9), {})[0].reshape(3, 3)
        P11 = mu * (stretch - 1 / stretch) + lam * math.log(stretch) / stretch
        assert P[0, 0] == pytest.approx(P11, rel=1e-14)
        assert P[1, 1] == pytest.approx(lam * math.log(stretch), rel=1e-14)
        assert P[2, 2] == P[1, 1] and abs(P - np.diag(np.diag(P))).max() == 0.0


def test_svk_closed_form_uniaxial_strain():
    """``P₁₁ = λ (λ_L + 2 μ)(λ² − 1)/2``, ``P₂₂ = λ_L (λ² − 1)/2`` at ``F = diag(λ, 1, 1)``."""
    law = LAWS["svk"]
    lam, mu = lame(law)
    for stretch in (0.5, 1.3, 2.0):
        P = law.update(np.diag([stretch, 1.0, 1.0]).reshape(1, 9), {})[0].reshape(3, 3)
        E11 = 0.5 * (stretch**2 - 1)
        assert P[0, 0] == pytest.approx(stretch * (lam + 2 * mu) * E11, rel=1e-14)
        assert P[1, 1] == pytest.approx(lam * E11, rel=1e-14)


# -- finite J2 along paths -----------------------------------------------------------------


def _uniaxial_stress(law, stretches, rotation=I3):
    """Drive ``F = Q diag(λ, λ_t, λ_t)`` with ``P₂₂ = P₃₃ = 0`` (Newton on ``λ_t`` with A);
    per step ``(τ₁₁, λ_t, state)``, ``τ = P Fᵀ`` in the frame of ``Q``."""
    state, lt, out = law.initial_state(1), 1.0, []
    Q = rotation
    for lam1 in stretches:
        for _ in range(30):
            F = (Q @ np.diag([lam1, lt, lt])).reshape(1, 9)
            P, A, trial = law.update(F, state)
            Pl = Q.T @ P.reshape(3, 3)  # Q P(diag) by objectivity
            if abs(Pl[1, 1]) < 1e-10 * SY:
                break
            # dP22/dλt in the frame of Q: d(Qᵀ P)_22 / d λt along dF = Q (e2e2 + e3e3)
            dF = (Q @ np.diag([0.0, 1.0, 1.0])).reshape(9)
            dPl = Q.T @ (A[0] @ dF).reshape(3, 3)
            lt -= Pl[1, 1] / dPl[1, 1]
        else:
            raise AssertionError("uniaxial-stress driver did not converge")
        state = trial
        tau = Pl @ np.diag([lam1, lt, lt])
        np.testing.assert_allclose(tau, np.diag([tau[0, 0], 0, 0]), atol=1e-9 * SY)
        out.append((tau[0, 0], lt, state))
    return out


@pytest.mark.parametrize(("H", "H_kin"), [(10e3, 0.0), (0.0, 15e3), (6e3, 9e3), (0.0, 0.0)])
def test_finite_j2_uniaxial_stress_is_the_small_strain_curve_in_log_strain(H, H_kin):
    """Closed form with ε = ln λ: τ₁₁ = E ε, then σ_y + E_t (ε − σ_y/E),
    E_t = E (H + H_kin)/(E + H + H_kin); lateral ln λ_t = −ν τ/E − (ε − τ/E)/2; and plastic
    incompressibility det exp(2 e_p) = 1, along a rotated axis up to λ = 1.6."""
    law = LogStrainPlasticity(J2Plasticity(E, NU, SY, H=H, H_kin=H_kin))
    Et = E * (H + H_kin) / (E + H + H_kin)
    ey = SY / E
    eps = np.concatenate([[0.5 * ey, 0.99 * ey], np.linspace(1.5 * ey, math.log(1.6), 12)])
    Q = random_rotations(np.random.default_rng(14), 1)[0]
    for e, (tau, lt, state) in zip(eps, _uniaxial_stress(law, np.exp(eps), Q), strict=True):
        tau_ref = E * e if e < ey else SY + Et * (e - ey)
        assert tau == pytest.approx(tau_ref, rel=1e-10)
        assert math.log(lt) == pytest.approx(-NU * tau_ref / E - 0.5 * (e - tau_ref / E), rel=1e-10)
        eps_p = from_mandel(state["eps_p"][0])
        assert abs(np.trace(eps_p)) < 1e-15
        assert abs(np.linalg.det(sla.expm(2 * eps_p)) - 1.0) < 1e-14
        assert state["p"][0] == pytest.approx(max(0.0, e - tau_ref / E), rel=1e-9, abs=1e-15)


def test_finite_j2_cyclic_uniaxial_kinematic_hardening():
    """Tension to λ = 1.3, compression to λ = 0.8: τ₁₁(ln λ) follows the exact 1D elastic–linear
    kinematic hardening response (stress bounded by (±σ_y + H_kin ε)/(1 + H_kin/E))."""
    H_kin = 15e3
    law = LogStrainPlasticity(J2Plasticity(E, NU, SY, H_kin=H_kin))
    eps = np.concatenate(
        [np.linspace(0, math.log(1.3), 15)[1:], np.linspace(math.log(1.3), math.log(0.8), 30)[1:]]
    )
    tau_ref, e_prev, out = 0.0, 0.0, _uniaxial_stress(law, np.exp(eps))
    for e, (tau, _, _) in zip(eps, out, strict=True):
        upper, lower = (SY + H_kin * e) / (1 + H_kin / E), (-SY + H_kin * e) / (1 + H_kin / E)
        tau_ref = min(max(tau_ref + E * (e - e_prev), lower), upper)
        e_prev = e
        assert tau == pytest.approx(tau_ref, rel=1e-9, abs=1e-9 * SY)
    assert out[-1][0] < 0 and out[13][0] > 0


def _simple_shear_log_strain(g: float) -> np.ndarray:
    """``½ ln C`` of ``F = I + g e₁⊗e₂`` in closed form: the in-plane block of ``C`` is 2×2 with
    eigenvalues ``c±``, and ``ln C = ln c₋ I + (ln c₊ − ln c₋)/(c₊ − c₋) (C − c₋ I)`` there."""
    C = np.array([[1.0, g], [g, 1.0 + g * g]])
    half = math.sqrt(g * g + 0.25 * g**4)
    cp, cm = 1.0 + 0.5 * g * g + half, 1.0 + 0.5 * g * g - half
    e = np.zeros((3, 3))
    if half == 0.0:
        return e
    e[:2, :2] = 0.5 * (
        math.log(cm) * np.eye(2) + (math.log(cp) - math.log(cm)) / (cp - cm) * (C - cm * np.eye(2))
    )
    return e


def _simple_shear_rate_ode(small: J2Plasticity, gamma_end: float):
    """The log-strain J2 rate equations in simple shear F = I + γ e₁⊗e₂, integrated by scipy:
    e(γ) in closed form, ė by central differences; elastic to the yield point (brentq), then
    ė_p = γ̇ n, β̇ = ⅔ H_kin ė_p, ṗ = √⅔ γ̇, γ̇ = 2G n:ė / (2G + ⅔(H + H_kin)).
    Returns e_p, β, p at gamma_end (3×3, 3×3, scalar)."""
    G = small.G
    e_of = _simple_shear_log_strain

    def dev(a):
        return a - np.trace(a) / 3 * I3

    def f_elastic(g):
        return math.sqrt(1.5) * np.linalg.norm(2 * G * dev(e_of(g))) - small.sigma_y

    g_y = brentq(f_elastic, 1e-8, gamma_end, xtol=1e-15)

    def rhs(g, y):
        ep, beta = y[:9].reshape(3, 3), y[9:18].reshape(3, 3)
        xi = 2 * G * dev(e_of(g) - ep) - beta
        nrm = xi / np.linalg.norm(xi)
        de = (e_of(g + 1e-6) - e_of(g - 1e-6)) / 2e-6
        rate = 2 * G * np.sum(nrm * de) / (2 * G + 2 / 3 * (small.H + small.H_kin))
        assert rate > 0
        dep = rate * nrm
        return np.concatenate(
            [dep.ravel(), (2 / 3 * small.H_kin * dep).ravel(), [math.sqrt(2 / 3) * rate]]
        )

    sol = solve_ivp(rhs, (g_y, gamma_end), np.zeros(19), rtol=1e-10, atol=1e-12, method="DOP853")
    y = sol.y[:, -1]
    return y[:9].reshape(3, 3), y[9:18].reshape(3, 3), y[18]


def test_finite_j2_simple_shear_converges_to_the_rate_equations():
    """Incremental updates in 50, 100 and 200 steps to γ = 0.5 (non-coaxial: the axes of C
    rotate) approach the scipy integration of the rate form at first order in the step."""
    small = J2Plasticity(E, NU, SY, H=10e3, H_kin=20e3)
    law = LogStrainPlasticity(small)
    ep_ref, beta_ref, p_ref = _simple_shear_rate_ode(small, 0.5)
    errors = []
    for steps in (50, 100, 200):
        state = law.initial_state(1)
        for g in np.linspace(0, 0.5, steps + 1)[1:]:
            _, _, state = law.update((I3 + g * np.outer(I3[0], I3[1])).reshape(1, 9), state)
        errors.append(
            max(
                rel(from_mandel(state["eps_p"][0]), ep_ref),
                rel(from_mandel(state["beta"][0]), beta_ref),
                abs(state["p"][0] - p_ref) / p_ref,
            )
        )
    assert errors[-1] < 1e-4
    assert 1.7 < errors[0] / errors[1] < 2.3 and 1.7 < errors[1] / errors[2] < 2.3


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NeoHookean(-1.0, 0.3), "Young's modulus E = -1.0"),
        (lambda: SaintVenantKirchhoff(1.0, 0.5, name="fibre"), "phase 'fibre': Poisson ratio"),
        (lambda: NeoHookean.from_bulk_shear(-2.0, 1.0), r"NeoHookean: K = -2.0 must lie in"),
        (lambda: NeoHookean.from_bulk_shear(2.0, "a", name="m"), r"NeoHookean 'm': G = 'a'"),
        (lambda: LogStrainPlasticity(NeoHookean(1.0, 0.3)), "must be a small-strain law"),
    ],
)
def test_bad_constants_raise_one_line_errors(make, match):
    with pytest.raises(MaterialError, match=match):
        make()
