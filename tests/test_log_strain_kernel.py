"""The compiled log-strain kinematics against routes that share nothing with it: scipy's matrix
logarithm (no eigen-decomposition), finite differences of it, LAPACK's eigenvalues, the closed
form S = T C⁻¹ of an isotropic Hencky energy, and an einsum of the push-forward formula; at
random F, at F = I, with two and three equal principal stretches and with nearly equal ones.

Tolerances: e and the spectral form are backward stable (errors of a few ε = 2.2e-16 times
|C|), so they are compared to 1e-14; central differences of step h carry h² truncation and
ε/h (first) or ε/h² (second derivatives) rounding; the tolerances of the differences of logm
are 3–5 times the worst error measured over the cases (3e-11 and 2e-8), those of the
closed-form stresses (1e-7, h = 1e-6) about 100 times the estimated error.
"""

import doctest
import math
from functools import partial

import numpy as np
import pytest
import scipy.linalg as sla

from fe2x.errors import SolverError
from fe2x.materials import kinematics
from fe2x.materials.kinematics import (
    log_divided_difference,
    log_second_divided_difference,
    log_strain,
    log_stress_to_piola,
    log_stress_to_pk2,
    tangent_from_pk2,
)

S2 = math.sqrt(2.0)
I3 = np.eye(3)
PAIRS = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
MU, KAPPA = 80.0, 170.0  # a Hencky energy ψ = μ |dev e|² + κ/2 (tr e)²


def to_mandel(t: np.ndarray) -> np.ndarray:
    return np.array([t[0, 0], t[1, 1], t[2, 2], S2 * t[1, 2], S2 * t[0, 2], S2 * t[0, 1]])


def from_mandel(a: np.ndarray) -> np.ndarray:
    t = np.empty((3, 3))
    for m, (i, j) in enumerate(PAIRS):
        t[i, j] = t[j, i] = a[m] / (1.0 if i == j else S2)
    return t


def rotation(rng) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    return Q * np.sign(np.linalg.det(Q))


def hencky_of_E(E: np.ndarray) -> np.ndarray:
    """``½ logm(I + 2E)`` by scipy (inverse scaling and squaring, no eigen-decomposition)."""
    return 0.5 * sla.logm(I3 + 2.0 * E).real


def stretch_cases() -> dict[str, np.ndarray]:
    """Named deformation gradients ``R U``: U with distinct, equal and nearly equal stretches."""
    rng = np.random.default_rng(21)
    cases = {"identity": I3.copy(), "uniaxial_axes": np.diag([1.5, 1.0, 1.0])}
    for k in range(3):
        cases[f"random_{k}"] = sla.expm(0.4 * rng.standard_normal((3, 3)))

    def RU(stretches):
        Q = rotation(rng)
        return rotation(rng) @ Q @ np.diag(stretches) @ Q.T

    cases["two_equal"] = RU([1.3, 0.8, 0.8])
    cases["three_equal"] = RU([1.2, 1.2, 1.2])
    cases["near_identity"] = RU([1 + 1e-7, 1 - 2e-7, 1 + 3e-8])
    for gap in (1e-9, 1e-6, 1e-3):
        cases[f"two_near_{gap:g}"] = RU([1.1, 1.1 * (1 + gap), 0.7])
        cases[f"three_near_{gap:g}"] = RU([0.9, 0.9 * (1 + gap), 0.9 * (1 - gap)])
    return cases


CASES = stretch_cases()


def rel(a: np.ndarray, b: np.ndarray, scale: float = 0.0) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), scale))


def hencky_T(e6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mandel ``T = ∂ψ/∂e = 2μ dev e + κ tr(e) I`` and ``∂T/∂e``."""
    one = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    T = 2 * MU * e6 + (KAPPA - 2 * MU / 3) * e6[:3].sum() * one
    return T, 2 * MU * np.eye(6) + (KAPPA - 2 * MU / 3) * np.outer(one, one)


def hencky_energy(E: np.ndarray) -> float:
    e = hencky_of_E(E)
    dev = e - np.trace(e) / 3 * I3
    return MU * np.sum(dev * dev) + 0.5 * KAPPA * np.trace(e) ** 2


def hencky_S(E: np.ndarray) -> np.ndarray:
    """Closed form of an isotropic law in e: T is coaxial with C, so ``S = T C⁻¹``."""
    T, _ = hencky_T(to_mandel(hencky_of_E(E)))
    return from_mandel(T) @ np.linalg.inv(I3 + 2 * E)


def green_lagrange(F: np.ndarray) -> np.ndarray:
    return 0.5 * (F.T @ F - I3)


def random_symmetric(rng) -> np.ndarray:
    X = rng.standard_normal((3, 3))
    return 0.5 * (X + X.T)


# -- the Hencky strain and its spectral form -----------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_log_strain_against_scipy_logm_and_lapack(name):
    F = CASES[name]
    strain = log_strain(F[None])
    e, N, c = strain.e[0], strain.N[0], strain.c[0]
    e_ref = to_mandel(hencky_of_E(green_lagrange(F)))
    assert np.abs(e - e_ref).max() <= 1e-14 * max(1.0, np.abs(e_ref).max())
    C = F.T @ F
    assert np.abs(N.T @ N - I3).max() < 2e-15
    assert np.abs(C @ N - N * c).max() < 4e-15 * np.abs(C).max()
    np.testing.assert_allclose(np.sort(c), np.linalg.eigvalsh(C), rtol=1e-14, atol=0)


def test_identity_is_exact():
    strain = log_strain(np.tile(I3, (2, 1, 1)))
    assert np.array_equal(strain.e, np.zeros((2, 6)))
    assert np.array_equal(strain.N, np.tile(I3, (2, 1, 1)))
    assert np.array_equal(strain.c, np.ones((2, 3)))
    assert np.array_equal(strain.d1, np.ones((2, 3, 3)))
    assert np.array_equal(strain.d2, -np.ones((2, 3, 3, 3)))


def test_batch_is_point_by_point_and_objective():
    F = np.array(list(CASES.values()))
    batch = log_strain(F)
    for k in range(F.shape[0]):
        single = log_strain(F[k : k + 1])
        for field in ("e", "N", "c", "d1", "d2"):
            assert np.array_equal(getattr(batch, field)[k], getattr(single, field)[0])
    Q = np.array([rotation(np.random.default_rng(k)) for k in range(F.shape[0])])
    np.testing.assert_allclose(log_strain(Q @ F).e, batch.e, rtol=0, atol=1e-14)


# -- the derivative coefficients d1, d2 ----------------------------------------------------


def first_derivative(strain, k, dE):
    """``de[dE] = N (d1 ∘ (Nᵀ dE N)) Nᵀ`` from the kernel's coefficients."""
    N = strain.N[k]
    return N @ (strain.d1[k] * (N.T @ dE @ N)) @ N.T


def second_derivative(strain, k, dE, dF):
    """``d²e[dE, dF]_ab = Σ_c d2_acb (dE_ac dF_cb + dF_ac dE_cb)`` in the eigenbasis."""
    N = strain.N[k]
    a, b = N.T @ dE @ N, N.T @ dF @ N
    hat = np.einsum("acb,ac,cb->ab", strain.d2[k], a, b)
    hat += np.einsum("acb,ac,cb->ab", strain.d2[k], b, a)
    return N @ hat @ N.T


def first_difference(E, dE, h):
    return (hencky_of_E(E + h * dE) - hencky_of_E(E - h * dE)) / (2 * h)


def second_difference(E, dE, dF, h):
    return (
        hencky_of_E(E + h * (dE + dF))
        - hencky_of_E(E + h * (dE - dF))
        - hencky_of_E(E - h * (dE - dF))
        + hencky_of_E(E - h * (dE + dF))
    ) / (4 * h * h)


def richardson(difference, h: float) -> np.ndarray:
    """``(4 D(h/2) − D(h)) / 3`` of a central difference ``D``: the h² error term cancels."""
    return (4 * difference(h / 2) - difference(h)) / 3


@pytest.mark.parametrize("name", list(CASES))
def test_d1_d2_against_differences_of_logm(name):
    """Central differences of logm, Richardson-extrapolated to O(h⁴), with h = 1e-4 c_min
    (first) and 3e-3 c_min (second derivative; its rounding ε/h² dominates): the worst errors
    over the cases are 3e-11 and 2e-8."""
    F = CASES[name]
    E = green_lagrange(F)
    strain = log_strain(F[None])
    c_min = strain.c.min()  # the derivatives of ln grow like 1 / c^k: steps scale with c_min
    rng = np.random.default_rng(22)
    for _ in range(2):
        dE, dF = random_symmetric(rng), random_symmetric(rng)
        fd1 = richardson(partial(first_difference, E, dE), 1e-4 * c_min)
        assert rel(first_derivative(strain, 0, dE), fd1) < 1e-10
        fd2 = richardson(partial(second_difference, E, dE, dF), 3e-3 * c_min)
        assert rel(second_derivative(strain, 0, dE, dF), fd2, scale=1.0) < 1e-7


# -- the stresses of a Hencky energy -------------------------------------------------------


def hencky_pk2(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    strain = log_strain(F[None])
    T, dT = hencky_T(strain.e[0])
    S, dS = log_stress_to_pk2(strain, T[None], dT[None])
    return S[0], dS[0]


@pytest.mark.parametrize("name", list(CASES))
def test_pk2_of_a_hencky_energy(name):
    """``S`` against ``T C⁻¹`` and ``∂ψ/∂E`` by differences; ``∂S/∂E`` against differences of
    the closed-form ``S`` (major symmetric, as of an energy)."""
    F = CASES[name]
    E = green_lagrange(F)
    S, dS = hencky_pk2(F)
    assert rel(S, hencky_S(E), scale=MU) < 1e-13
    h = 1e-6
    S_fd, dS_fd = np.empty((3, 3)), np.empty((9, 9))
    for I, J in np.ndindex(3, 3):
        dE = 0.5 * h * (np.outer(I3[I], I3[J]) + np.outer(I3[J], I3[I]))
        S_fd[I, J] = (hencky_energy(E + dE) - hencky_energy(E - dE)) / (2 * h)
        dS_fd[:, 3 * I + J] = ((hencky_S(E + dE) - hencky_S(E - dE)) / (2 * h)).reshape(9)
    assert rel(S, S_fd, scale=MU) < 1e-7
    assert rel(dS, dS_fd) < 1e-7
    assert rel(dS, dS.T) < 1e-13
    assert rel(dS, dS[:, [3 * j + i for i in range(3) for j in range(3)]]) < 1e-15


@pytest.mark.parametrize("name", ["random_0", "two_equal", "three_near_1e-06", "identity"])
def test_piola_and_tangent_of_a_hencky_energy(name):
    """``P = F S`` and ``A = ∂P/∂F`` of the one compiled pass against the closed-form
    ``P = F T C⁻¹`` and its central differences; and equal to the two-step route."""
    F = CASES[name]
    strain = log_strain(F[None])
    T, dT = hencky_T(strain.e[0])
    P, A = log_stress_to_piola(F[None], strain, T[None], dT[None])
    assert rel(P[0], F @ hencky_S(green_lagrange(F)), scale=MU) < 1e-13
    h = 1e-6
    A_fd = np.empty((9, 9))
    for j in range(9):
        dF = h * np.eye(9)[j].reshape(3, 3)
        Pp, Pm = [(F + s * dF) @ hencky_S(green_lagrange(F + s * dF)) for s in (1, -1)]
        A_fd[:, j] = ((Pp - Pm) / (2 * h)).reshape(9)
    assert rel(A[0], A_fd) < 1e-7
    S, dS = log_stress_to_pk2(strain, T[None], dT[None])
    assert rel(P, F[None] @ S, scale=MU) < 1e-15
    assert rel(A, tangent_from_pk2(F[None], S, dS)) < 1e-15


def test_tangent_from_pk2_is_the_push_forward():
    """``A_iJkL = δ_ik S_JL + F_iI ℂ_IJLN F_kN`` by einsum, also for a broadcast read-only ℂ."""
    rng = np.random.default_rng(23)
    F = rng.standard_normal((4, 3, 3))
    S = rng.standard_normal((4, 3, 3))
    S = S + np.swapaxes(S, 1, 2)
    C = rng.standard_normal((9, 9)).reshape(3, 3, 3, 3)
    C = C + C.transpose(1, 0, 2, 3)
    C = (C + C.transpose(0, 1, 3, 2)).reshape(9, 9)
    ref = np.einsum("ik,nJL->niJkL", I3, S)
    ref += np.einsum("niI,IJLN,nkN->niJkL", F, C.reshape(3, 3, 3, 3), F)
    A = tangent_from_pk2(F, S, np.broadcast_to(C, (4, 9, 9)))
    assert rel(A, ref.reshape(4, 9, 9)) < 1e-14


def plane_cases() -> dict[str, np.ndarray]:
    """In-plane F (F13 = F23 = F31 = F32 = 0, F33 = 1): random, and with equal in-plane stretches
    (λ, λ, 1), nearly equal ones, and all three equal (an in-plane rotation)."""
    rng = np.random.default_rng(31)

    def in_plane(R2, stretches):
        F = np.eye(3)
        F[:2, :2] = R2 @ np.diag(stretches)
        return F

    def rot2(angle):
        return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    cases = {}
    for k in range(3):
        F = np.eye(3)
        F[:2, :2] = sla.expm(0.3 * rng.standard_normal((2, 2)))
        cases[f"random_{k}"] = F
    cases["equal_in_plane"] = in_plane(rot2(0.7), [1.3, 1.3])
    cases["near_in_plane_1e-09"] = in_plane(rot2(-0.4), [0.8, 0.8 * (1 + 1e-9)])
    cases["equal_to_out_of_plane"] = in_plane(rot2(0.3), [1.0, 1.0])
    return cases


PLANE_CASES = plane_cases()


@pytest.mark.parametrize("name", list(PLANE_CASES))
def test_plane_strain_entries_against_the_general_path(name):
    """At an in-plane F the kernels skip its zero entries and those of the eigenbasis rotation; at
    R F (R a generic rotation: no zero entries) they take the general path. Objectivity ties the
    two: ``e`` is the same, ``P(R F) = R P(F)`` and ``A(R F)_iJkL = R_ia R_kb A(F)_aJbL``, for any
    ``T`` and ``∂T/∂e`` (here random, coupling in- and out-of-plane components)."""
    rng = np.random.default_rng(37)
    F = PLANE_CASES[name]
    R = rotation(rng)
    T, dT = rng.standard_normal(6), rng.standard_normal((6, 6))
    strain, rotated = log_strain(F[None]), log_strain((R @ F)[None])
    assert rel(rotated.e, strain.e, scale=1.0) < 1e-14
    P, A = log_stress_to_piola(F[None], strain, T[None], dT[None])
    P_R, A_R = log_stress_to_piola((R @ F)[None], rotated, T[None], dT[None])
    assert rel(P_R[0], R @ P[0]) < 1e-14
    A_back = np.einsum("ia,kb,aJbL->iJkL", R, R, A[0].reshape(3, 3, 3, 3)).reshape(9, 9)
    assert rel(A_R[0], A_back) < 1e-14


def test_piola_fills_given_arrays():
    """``out`` arrays are filled and returned as ``P``, ``A``; arrays of the wrong shape raise."""
    F = CASES["random_0"][None]
    strain = log_strain(F)
    T, dT = hencky_T(strain.e[0])
    P, A = log_stress_to_piola(F, strain, T[None], dT[None])
    out = np.empty((1, 3, 3)), np.empty((1, 9, 9))
    P_out, A_out = log_stress_to_piola(F, strain, T[None], dT[None], out)
    assert P_out is out[0] and A_out is out[1]
    assert np.array_equal(P_out, P) and np.array_equal(A_out, A)
    with pytest.raises(ValueError, match="out shapes"):
        log_stress_to_piola(F, strain, T[None], dT[None], (np.empty((1, 3, 3)), np.empty((1, 9))))


# -- divided differences, doctests and bad input -------------------------------------------


def test_divided_differences_broadcast_as_ufuncs():
    x = np.array([[0.5], [1.0], [3.0]])
    y = np.array([[0.5, 0.7, 2.0, 3.0]])
    f1 = log_divided_difference(x, y)
    assert f1.shape == (3, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(x == y, 0.5 / x, 0.5 * np.log(x / y) / (x - y))
    np.testing.assert_allclose(f1, ref, rtol=1e-14)
    f2 = log_second_divided_difference(x, y, 2.5)
    assert f2.shape == (3, 4)
    assert log_second_divided_difference(2.0, 2.0, 2.0) == -1.0 / 16.0


def test_doctests():
    failures, _ = doctest.testmod(kinematics)
    assert failures == 0


def test_bad_deformation_gradients_raise():
    F = np.tile(I3, (3, 1, 1))
    F[1] = np.diag([1.0, 1.0, -0.5])
    with pytest.raises(SolverError, match=r"^law: det F <= 0 at 1 point\(s\)"):
        log_strain(F, "law")
    F[1] = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(SolverError, match=r"det F <= 0 at 1 point\(s\)"):
        log_strain(F)
    F[2, 0, 1] = np.inf
    with pytest.raises(SolverError, match=r"not finite at 1 point\(s\)"):
        log_strain(F)
    with pytest.raises(ValueError, match=r"expected \(n, 3, 3\) deformation gradients"):
        log_strain(np.zeros((2, 9)))
    strain = log_strain(np.tile(I3, (2, 1, 1)))
    with pytest.raises(ValueError, match=r"expected Mandel T \(2, 6\) and dT/de \(2, 6, 6\)"):
        log_stress_to_pk2(strain, np.zeros((2, 3, 3)), np.zeros((2, 6, 6)))
