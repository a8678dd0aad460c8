"""Crystal plasticity against independent references: slip-system geometry and Schmid factors,
tensor rotation of the cubic stiffness, the single-slip ODE (scipy), closed-form steady flow
in uniaxial tension, objectivity, finite differences of the update, and the Taylor (linear
programme) and Sachs factors of random FCC aggregates."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import linprog

from fe2x.errors import Fe2xError, MaterialError, SolverError
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.materials import IsotropicElastic
from fe2x.materials import crystal as crystal_module
from fe2x.materials.crystal import (
    CrystalPlasticity,
    cubic_stiffness,
    slip_systems,
)
from fe2x.materials.law import (
    ConstitutiveLaw,
    ElasticLimit,
    ElasticStiffness,
    OutputFields,
    check_law,
)
from fe2x.materials.mandel import rotation_mandel
from fe2x.materials.orientations import random_orientations

CU = {"C11": 168.4e3, "C12": 121.4e3, "C44": 75.4e3}  # copper, MPa
XI0, GAMMA_DOT_0 = 31.0, 1e-3
HARDENING = {"h0": 1000.0, "xi_inf": 63.0, "a": 2.25, "q_latent": 1.4}
S2 = math.sqrt(2.0)


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
    """6x6 Q with mandel(R A Rᵀ) = Q mandel(A), column by column, independent of the code."""
    return np.column_stack([to_mandel(R @ from_mandel(e) @ R.T) for e in np.eye(6)])


def axis_orientation(d) -> np.ndarray:
    """A rotation crystal -> sample taking the crystal direction ``d`` onto the sample X axis."""
    d = np.asarray(d, dtype=float) / np.linalg.norm(d)
    e2 = np.cross(d, np.eye(3)[np.argmin(np.abs(d))])
    e2 /= np.linalg.norm(e2)
    return np.array([d, e2, np.cross(d, e2)])  # rows: sample axes in crystal components


def law(**kw) -> CrystalPlasticity:
    return CrystalPlasticity(**CU, xi0=XI0, gamma_dot_0=GAMMA_DOT_0, **kw)


def orient(R: np.ndarray) -> dict[str, np.ndarray]:
    return {"orientation": np.asarray(R).reshape(-1, 3, 3)}


# -- slip systems and elasticity -----------------------------------------------------------
@pytest.mark.parametrize("lattice", ["fcc", "bcc"])
def test_slip_systems(lattice):
    s = slip_systems(lattice)
    assert s.m.shape == s.n.shape == (12, 3) and s.schmid.shape == (12, 6)
    assert np.allclose(np.linalg.norm(s.m, axis=1), 1)
    assert np.allclose(np.linalg.norm(s.n, axis=1), 1)
    assert np.allclose(np.einsum("ai,ai->a", s.m, s.n), 0.0)
    # the families: {111}<110> (FCC) or {110}<111> (BCC), up to scale
    plane, direction = ([1, 1, 1], [0, 1, 1]) if lattice == "fcc" else ([0, 1, 1], [1, 1, 1])
    for v, family in ((s.n, plane), (s.m, direction)):
        w = np.sort(np.abs(v), axis=1)
        assert np.allclose(w, np.sort(family) / np.linalg.norm(family))
    # 12 distinct systems: (m, n) and (-m, -n) are one system, so compare m ⊗ n
    mn = np.einsum("ai,aj->aij", s.m, s.n).reshape(12, 9)
    gaps = [
        np.abs(mn[i] - sign * mn[j]).max() for i in range(12) for j in range(i) for sign in (1, -1)
    ]
    assert min(gaps) > 0.1
    # Schmid tensors: P : (d ⊗ d) = (d . m)(d . n), and P is traceless
    d = np.random.default_rng(11).standard_normal(3)
    d /= np.linalg.norm(d)
    assert np.allclose(s.schmid @ to_mandel(np.outer(d, d)), (s.m @ d) * (s.n @ d))
    assert np.allclose(s.schmid[:, :3].sum(axis=1), 0.0)
    # slip planes: 4 of 3 systems (FCC) or 6 of 2 (BCC)
    assert np.all(s.coplanar.sum(axis=1) == (3 if lattice == "fcc" else 2))


@pytest.mark.parametrize("lattice", ["fcc", "bcc"])
@pytest.mark.parametrize(
    "axis, m_max, count",
    [
        ([1, 0, 0], 1 / math.sqrt(6), 8),
        ([1, 1, 0], 1 / math.sqrt(6), 4),
        ([1, 1, 1], 2 / (3 * math.sqrt(6)), 6),
    ],
)
def test_schmid_factors_of_uniaxial_tension(lattice, axis, m_max, count):
    # published maxima: 0.408 along [100] and [110], 0.272 along [111], for both lattices
    s = slip_systems(lattice)
    d = np.asarray(axis) / np.linalg.norm(axis)
    m = np.abs(s.schmid @ to_mandel(np.outer(d, d)))
    assert math.isclose(m.max(), m_max, rel_tol=1e-12)
    assert np.sum(np.isclose(m, m_max)) == count
    assert round(m.max(), 3) == (0.272 if axis == [1, 1, 1] else 0.408)


def test_cubic_stiffness_and_its_rotation():
    C11, C12, C44 = CU["C11"], CU["C12"], CU["C44"]
    I = np.eye(3)
    # C_ijkl = C12 δij δkl + C44 (δik δjl + δil δjk) + (C11 − C12 − 2 C44) Σ_a δia δja δka δla
    C4 = C12 * np.einsum("ij,kl->ijkl", I, I) + C44 * (
        np.einsum("ik,jl->ijkl", I, I) + np.einsum("il,jk->ijkl", I, I)
    )
    C4 += (C11 - C12 - 2 * C44) * np.einsum("ai,aj,ak,al->ijkl", I, I, I, I)
    basis = [from_mandel(e) for e in np.eye(6)]  # orthonormal under ':'

    def as_mandel(T: np.ndarray) -> np.ndarray:
        return np.array([[np.einsum("ij,ijkl,kl", a, T, b) for b in basis] for a in basis])

    assert np.allclose(cubic_stiffness(C11, C12, C44), as_mandel(C4))
    cp = law()
    assert np.allclose(cp.elastic_stiffness(), as_mandel(C4))
    R = random_orientations(3, 8)
    rotated = cp.elastic_stiffness(orient(R))
    for Rp, C in zip(R, rotated, strict=True):
        assert np.allclose(C, as_mandel(np.einsum("ia,jb,kc,ld,abcd->ijkl", Rp, Rp, Rp, Rp, C4)))
    # an isotropic crystal (C11 - C12 = 2 C44) looks the same in every orientation
    iso = CrystalPlasticity(200.0, 100.0, 50.0, xi0=1.0)
    assert np.allclose(iso.elastic_stiffness(orient(R)), iso.elastic_stiffness())
    # the fast Mandel rotations are those of fe2x.materials.mandel
    assert np.allclose(crystal_module._mandel_rotations(R), rotation_mandel(R), atol=1e-15)


@pytest.mark.parametrize("lattice, rank", [("fcc", 4), ("bcc", 6)])  # one per slip plane
def test_interaction_matrix_and_its_low_rank_factors(lattice, rank):
    cp = law(lattice=lattice, **HARDENING)
    s = slip_systems(lattice)
    q = cp.interaction
    for a in range(12):
        for b in range(12):
            same_plane = abs(abs(s.n[a] @ s.n[b]) - 1) < 1e-12
            assert q[a, b] == (1.0 if same_plane else HARDENING["q_latent"])
    t = cp.tables
    assert t.U.shape == (12, rank) and np.allclose(t.W @ t.U.T, q, atol=1e-13)
    assert law(lattice=lattice).tables.U.shape == (12, 0)  # no hardening: 6 unknowns


# -- the contract, inputs and errors -----------------------------------------------------------
def test_contract_and_capabilities():
    cp = law(**HARDENING)
    assert check_law(cp) is cp and isinstance(cp, ConstitutiveLaw)
    assert isinstance(cp, ElasticStiffness) and isinstance(cp, OutputFields)
    assert not isinstance(cp, ElasticLimit)  # a power law has no elastic range
    state = cp.initial_state(4)
    assert {k: v.shape[1:] for k, v in state.items()} == dict(cp.state_shapes)
    assert np.all(state["xi"] == XI0)
    out = cp.outputs(state)
    assert set(out) == set(cp.output_names) and np.all(out["mean_slip_resistance"] == XI0)


def test_dt_zero_is_elastic_and_inputs_are_not_modified():
    cp = law(**HARDENING)
    R = random_orientations(5, 1)
    eps = 3e-3 * np.random.default_rng(12).standard_normal((5, 6))
    state = cp.update(eps, cp.initial_state(5), 1.0, orient(R)).state
    copy = {k: v.copy() for k, v in state.items()}
    eps2 = eps + 1e-3 * np.random.default_rng(13).standard_normal((5, 6))
    sigma, C, trial = cp.update(eps2, state, 0.0, orient(R))
    C_el = cp.elastic_stiffness(orient(R))
    assert np.allclose(sigma, np.einsum("pij,pj->pi", C_el, eps2 - state["eps_p"]), rtol=1e-13)
    assert np.allclose(C, C_el, rtol=1e-14)
    assert all(np.array_equal(trial[k], state[k]) for k in state)
    cp.update(eps2, state, 0.5, orient(R))
    assert all(np.array_equal(copy[k], state[k]) for k in state)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lattice": "hcp"}, "lattice = 'hcp' is unknown; allowed: 'fcc', 'bcc'"),
        ({"C44": 0.0}, "C44 = 0.0 must be > 0"),
        ({"C12": 170e3}, r"C11 - C12 = .* must be > 0 \(else C is not positive definite\)"),
        ({"C12": -90e3}, r"C11 \+ 2 C12 = .* must be > 0"),
        ({"C11": float("nan")}, "C11 = nan is not finite"),
        ({"xi0": -1.0}, "xi0 = -1.0 must be > 0"),
        ({"n": 0.0}, "n = 0.0 must be >= 1"),
        ({"gamma_dot_0": 0.0}, "gamma_dot_0 = 0.0 must be > 0"),
        ({"h0": -1.0}, "h0 = -1.0 must be >= 0"),
        ({"xi_inf": 0.0}, "xi_inf = 0.0 must be > 0"),
        ({"a": 0.5}, "a = 0.5 must be >= 1"),
        ({"q_latent": -0.1}, "q_latent = -0.1 must be >= 0"),
        ({"n": "20"}, "n = '20' is not a real number"),
    ],
)
def test_parameter_errors(kwargs, match):
    args = {**CU, "xi0": XI0, **kwargs}
    with pytest.raises(MaterialError, match=match) as info:
        CrystalPlasticity(**args)
    assert "\n" not in str(info.value)


def test_input_errors():
    cp = law(name="grains")
    state, eps = cp.initial_state(2), np.zeros((2, 6))
    with pytest.raises(MaterialError, match="'grains': the per-point parameter 'orientation'"):
        cp.update(eps, state, 1.0)
    with pytest.raises(MaterialError, match=r"orientation has shape \(2, 9\)"):
        cp.update(eps, state, 1.0, {"orientation": np.zeros((2, 9))})
    mirror = np.stack([np.eye(3), np.diag([1.0, 1.0, -1.0])])
    with pytest.raises(MaterialError, match="not a rotation at 1 point"):
        cp.update(eps, state, 1.0, {"orientation": mirror})
    sheared = np.stack([np.eye(3), np.eye(3) + 1e-6 * np.triu(np.ones((3, 3)), 1)])
    with pytest.raises(MaterialError, match="not a rotation at 1 point"):
        cp.update(eps, state, 1.0, {"orientation": sheared})
    with pytest.raises(MaterialError, match=r"3 orientation\(s\) given for 2 point\(s\)"):
        cp.update(eps, state, 1.0, orient(np.stack([np.eye(3)] * 3)))
    R = orient(np.stack([np.eye(3)] * 2))
    with pytest.raises(ValueError, match=r"dt = -1\.0"):
        cp.update(eps, state, -1.0, R)
    with pytest.raises(SolverError, match="strain is not finite at 1 point"):
        cp.update(np.array([[np.nan] * 6, [0.0] * 6]), state, 1.0, R)


def test_local_newton_failure_raises(monkeypatch):
    cp = law(n=50.0)
    monkeypatch.setattr(crystal_module, "NEWTON_MAXIT", 2)
    eps = np.tile([2e-2, -1e-2, -1e-2, 0, 0, 0], (3, 1))
    with pytest.raises(SolverError, match="local Newton did not converge at 3 point"):
        cp.update(eps, cp.initial_state(3), 1.0, orient(random_orientations(3, 2)))


@pytest.mark.parametrize("n", [5.0, 100.0])
def test_large_steps_satisfy_the_backward_euler_equations(n):
    """A 2 % strain step from the virgin state and a 1 % reversal (some 30 yield strains each)
    at random orientations: the returned state solves the discrete equations, checked here
    from the definitions (σ = C (ε − ε_p), Δγ = dt γ̇₀ |τ/ξ|ⁿ sign τ, the hardening update)."""
    cp = law(n=n, **HARDENING)
    m, dt = 50, 2.0
    R = random_orientations(m, 17)
    s = slip_systems("fcc")
    q = np.where(s.coplanar, 1.0, HARDENING["q_latent"])
    direction = np.random.default_rng(14).standard_normal((m, 6))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    state = cp.initial_state(m)
    for eps in (2e-2 * direction, 1e-2 * direction):
        sigma, _, new = cp.update(eps, state, dt, orient(R))
        C = cp.elastic_stiffness(orient(R))
        assert np.allclose(
            sigma, np.einsum("pij,pj->pi", C, eps - new["eps_p"]), rtol=0, atol=1e-9 * XI0
        )
        dgamma = dt * new["gamma_dot"]
        for p in range(m):
            tau = s.schmid @ mandel_rotation(R[p]).T @ sigma[p]
            xi = new["xi"][p]
            law_rate = dt * GAMMA_DOT_0 * np.abs(tau / xi) ** n * np.sign(tau)
            assert np.allclose(dgamma[p], law_rate, rtol=1e-8, atol=1e-14)
            u = 1 - xi / HARDENING["xi_inf"]
            h = HARDENING["h0"] * np.abs(u) ** HARDENING["a"] * np.sign(u)
            assert np.allclose(xi, state["xi"][p] + q @ (h * np.abs(dgamma[p])), rtol=1e-10)
            eps_p = state["eps_p"][p] + mandel_rotation(R[p]) @ (s.schmid.T @ dgamma[p])
            assert np.allclose(new["eps_p"][p], eps_p, rtol=0, atol=1e-14)
        assert np.allclose(new["gamma"], state["gamma"] + np.abs(dgamma))
        assert np.all(new["gamma_sum"] > state["gamma_sum"] + 1e-3)
        state = new


def test_load_continuation_rescues_the_local_newton(monkeypatch):
    """At n = 100 a 2 % step from the virgin state defeats plain Newton at some orientations;
    the continuation in the trial strain solves the same equations there."""
    cp = law(n=100.0, **HARDENING)
    R = random_orientations(50, 17)
    direction = np.random.default_rng(3).standard_normal((50, 6))
    eps = 2e-2 * direction / np.linalg.norm(direction, axis=1)[:, None]
    out = crystal_module.crystal_update(cp, eps, cp.initial_state(50), 2.0, orient(R))
    monkeypatch.setattr(crystal_module, "CONTINUATION_STAGES", ())
    with pytest.raises(SolverError, match="did not converge"):
        cp.update(eps, cp.initial_state(50), 2.0, orient(R))
    assert out.iterations.max() > crystal_module.NEWTON_MAXIT / 4


# -- single slip: the ODE ------------------------------------------------------------------
def graded_times(t_yield: float, t_end: float, fine: int) -> np.ndarray:
    """10 steps to 0.8 t_yield (nearly elastic), then ``fine`` equal steps to t_end."""
    return np.concatenate(
        [np.linspace(0, 0.8 * t_yield, 11)[1:], np.linspace(0.8 * t_yield, t_end, fine + 1)[1:]]
    )


def halve(t: np.ndarray) -> np.ndarray:
    return np.sort(np.concatenate([t, 0.5 * (t + np.concatenate([[0.0], t[:-1]]))]))


@pytest.mark.slow
@pytest.mark.parametrize("hardening", [False, True])
def test_single_slip_follows_the_ode(hardening):
    """Simple shear along system 0 of a rotated copper crystal at γ̇ = 10 γ̇₀.

    The other systems carry at most half the resolved shear (checked), so with n = 30 they
    slip < 0.5³⁰ ≈ 1e-9 as fast: single slip. The reference integrates the single-system ODE
    ``γ̇ = γ̇₀ |τ/ξ|ⁿ sign τ``, ``τ = G (γ_tot(t) − γ)``, ``G = P : C : P``,
    ``ξ̇_β = q_β0 h(ξ_0) |γ̇|`` with scipy (Radau, rtol 1e-12). Backward Euler converges at
    order 1 on nested time grids; its 3-level Richardson extrapolation (error O(dt³)) must
    match the ODE to 1e-6 of ξ₀ along the whole transient, and the final steady state
    ``τ = ξ₀ (γ̇/γ̇₀)^(1/n)`` (no hardening) to 1e-8.
    """
    n, rate = 30.0, 10 * GAMMA_DOT_0
    cp = law(n=n, **(HARDENING if hardening else {}))
    s = slip_systems("fcc")
    P, C = s.schmid, cp.elastic_stiffness()
    G = P[0] @ C @ P[0]
    assert np.abs(P[1:] @ C @ P[0]).max() <= 0.5 * G + 1e-9
    R = random_orientations(1, 5)
    Q = mandel_rotation(R[0])
    q = np.where(s.coplanar[0], 1.0, HARDENING["q_latent"])
    h0, xi_inf, a = HARDENING["h0"], HARDENING["xi_inf"], HARDENING["a"]

    def rhs(t, y):
        tau = G * (rate * t - y[0])
        g = GAMMA_DOT_0 * abs(tau / y[1]) ** n * math.copysign(1.0, tau)
        u = 1.0 - y[1] / xi_inf
        h = h0 * abs(u) ** a * math.copysign(1.0, u) if hardening else 0.0
        return np.concatenate([[g], q * h * abs(g)])

    t_yield = XI0 / (G * rate)
    relax = XI0 * (rate / GAMMA_DOT_0) ** (1 / n) / (G * n * rate)  # 1 / |∂γ̇/∂γ| at flow
    t_end = t_yield + 25 * relax
    ode = solve_ivp(
        rhs, (0, t_end), np.r_[0.0, np.full(12, XI0)], "Radau", rtol=1e-12, atol=1e-14,
        dense_output=True,
    )  # fmt: skip
    assert ode.success

    def run(times):
        state, t_prev, tau, xi = cp.initial_state(1), 0.0, [], []
        for t in times:
            eps = (rate * t) * (Q @ P[0])[None]
            sigma, _, state = cp.update(eps, state, t - t_prev, orient(R))
            t_prev = t
            tau.append(Q.T @ sigma[0] @ P[0])
            xi.append(state["xi"][0])
        return np.column_stack([tau, xi])

    t1 = graded_times(t_yield, t_end, 200)
    t2, t4 = halve(t1), halve(halve(t1))
    y1, y2, y4 = run(t1), run(t2)[1::2], run(t4)[3::4]
    y_ode = ode.sol(t1)
    ref = np.column_stack([G * (rate * t1 - y_ode[0]), y_ode[1:].T])
    errors = [np.abs(y - ref).max() / XI0 for y in (y1, y2, y4)]
    assert 1.8 < errors[0] / errors[1] < 2.2 and 1.8 < errors[1] / errors[2] < 2.2
    richardson = (8 * y4 - 6 * y2 + y1) / 3
    assert np.abs(richardson - ref).max() < 1e-6 * XI0
    if not hardening:
        assert math.isclose(y4[-1, 0], XI0 * (rate / GAMMA_DOT_0) ** (1 / n), rel_tol=1e-8)
    else:
        xi_end = richardson[-1, 1:]  # it did harden, latent (q = 1.4) more than coplanar
        assert np.all(xi_end > XI0 + 0.1) and xi_end[~s.coplanar[0]].min() > xi_end[0]


# -- uniaxial tension under uniaxial stress ------------------------------------------------
def uniaxial(cp: CrystalPlasticity, R: np.ndarray, strains, dt: float):
    """Strain-driven ε11 with the other five stresses zero (Newton on the other strains with
    the law's own tangent); yields (σ11, state) after each step for every crystal."""
    m = R.shape[0]
    state, eps, last = cp.initial_state(m), np.zeros((m, 6)), np.zeros((m, 6))
    for e11 in strains:
        trial = 2 * eps - last
        trial[:, 0] = e11
        for _ in range(30):
            sigma, C, new = cp.update(trial, state, dt, orient(R))
            if np.abs(sigma[:, 1:]).max() <= 1e-10 * XI0:
                break
            trial[:, 1:] -= np.linalg.solve(C[:, 1:, 1:], sigma[:, 1:, None])[:, :, 0]
        else:
            raise AssertionError("the uniaxial-stress driver did not converge")
        last, eps, state = eps, trial, new
        yield sigma[:, 0], state


AXES = [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


@pytest.mark.parametrize("lattice", ["fcc", "bcc"])
@pytest.mark.parametrize("n", [20.0, 100.0])
def test_uniaxial_steady_flow_stress_is_the_closed_form(lattice, n):
    """At steady flow under uniaxial stress s along d (no hardening), the elastic strain rate
    vanishes, so ε̇ = Σ_α m_α γ̇₀ |m_α s/ξ₀|ⁿ sign(m_α s) with the Schmid factors
    m_α = (d·m_α)(d·n_α): s = ξ₀ (ε̇ / (γ̇₀ Σ_α |m_α|ⁿ⁺¹))^(1/n), which tends to ξ₀ / max m_α
    (0.408 along [100], [110]; 0.272 along [111]) in the rate-insensitive limit n → ∞."""
    cp = law(lattice=lattice, n=n)
    s = slip_systems(lattice)
    R = np.stack([axis_orientation(d) for d in AXES])
    rate, dt = GAMMA_DOT_0, 0.5
    strains = rate * dt * np.arange(1, 61)  # 3 % strain: some 60 yield strains past yield
    *_, (sigma11, _) = uniaxial(cp, R, strains, dt)
    for d, flow in zip(AXES, sigma11, strict=True):
        d = np.asarray(d) / np.linalg.norm(d)
        m = (s.m @ d) * (s.n @ d)
        expected = XI0 * (rate / (GAMMA_DOT_0 * np.sum(np.abs(m) ** (n + 1)))) ** (1 / n)
        assert math.isclose(flow, expected, rel_tol=1e-6)
        limit = XI0 / np.abs(m).max()
        assert abs(flow / limit - 1) < (0.1 if n == 20 else 0.02)


@pytest.mark.slow
def test_yield_stresses_and_the_sachs_factor():
    """FCC crystals under uniaxial stress start to slip at γ̇₀ (τ = ξ₀ on the most stressed
    system) at s = ξ₀ / m_max: 2.449 ξ₀ along [100] and [110], 3.674 ξ₀ along [111]. Over 500
    random grains the mean is the Sachs factor ⟨1/m_max⟩ ≈ 2.24 (within 2 %: the sample's
    standard error is about 0.6 %)."""
    cp = law(n=20.0)
    s = slip_systems("fcc")
    R = np.concatenate(
        [np.stack([axis_orientation(d) for d in AXES]), random_orientations(500, 21)]
    )
    rate, dt = 10 * GAMMA_DOT_0, 0.02
    strains = rate * dt * np.arange(1, 61)
    history = [
        (sig.copy(), np.abs(st["gamma_dot"]).max(axis=1))
        for sig, st in uniaxial(cp, R, strains, dt)
    ]
    sigma = np.array([h[0] for h in history])
    slip_rate = np.array([h[1] for h in history])
    first = np.argmax(slip_rate >= GAMMA_DOT_0, axis=0)
    assert np.all(first > 0)
    cols = np.arange(R.shape[0])
    # log γ̇ is linear in log s for the most stressed system: exact interpolation
    lg0, lg1 = np.log(slip_rate[first - 1, cols]), np.log(slip_rate[first, cols])
    ls0, ls1 = np.log(sigma[first - 1, cols]), np.log(sigma[first, cols])
    s_yield = np.exp(ls0 + (ls1 - ls0) * (np.log(GAMMA_DOT_0) - lg0) / (lg1 - lg0))
    d = R[:, 0, :]  # the tensile axis (sample X) in crystal components
    m_max = np.abs((d @ s.m.T) * (d @ s.n.T)).max(axis=1)
    assert np.allclose(s_yield, XI0 / m_max, rtol=1e-6)
    assert np.allclose(s_yield[:3] / XI0, [math.sqrt(6), math.sqrt(6), 1.5 * math.sqrt(6)])
    assert abs(np.mean(s_yield[3:]) / XI0 / 2.24 - 1) < 0.02


# -- invariance ----------------------------------------------------------------------------
def test_rotating_crystal_and_load_together_rotates_the_response():
    cp = law(**HARDENING)
    m = 6
    R = random_orientations(m, 4)
    Rp = random_orientations(1, 9)[0]
    Qp = mandel_rotation(Rp)
    eps1 = 4e-3 * np.random.default_rng(15).standard_normal((m, 6))
    eps2 = eps1 + 2e-3 * np.random.default_rng(16).standard_normal((m, 6))
    s1 = cp.update(eps1, cp.initial_state(m), 1.0, orient(R)).state
    sigma, C, s2 = cp.update(eps2, s1, 0.7, orient(R))
    turned = orient(Rp @ R)
    t1 = cp.update(eps1 @ Qp.T, cp.initial_state(m), 1.0, turned).state
    sigma_t, C_t, t2 = cp.update(eps2 @ Qp.T, t1, 0.7, turned)
    scale = np.abs(sigma).max()
    assert np.abs(sigma_t - sigma @ Qp.T).max() < 1e-10 * scale
    assert np.abs(C_t - Qp @ C @ Qp.T).max() < 1e-10 * np.abs(C).max()
    assert np.abs(t2["eps_p"] - s2["eps_p"] @ Qp.T).max() < 1e-10 * np.abs(s2["eps_p"]).max()
    for key in ("xi", "gamma", "gamma_sum"):
        assert np.allclose(t2[key], s2[key], rtol=1e-10, atol=1e-14)
    assert np.abs(s2["gamma_sum"]).min() > 0  # every point slipped


# -- the consistent tangent ----------------------------------------------------------------
def fd_tangent(cp, eps, state, dt, params, h):
    C = np.zeros((eps.shape[0], 6, 6))
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        C[:, :, j] = (
            cp.update(eps + e, state, dt, params)[0] - cp.update(eps - e, state, dt, params)[0]
        ) / (2 * h)
    return C


@pytest.mark.parametrize("lattice", ["fcc", "bcc"])
@pytest.mark.parametrize(
    "n, hardening",
    [
        (10.0, HARDENING),
        (12.5, {**HARDENING, "q_latent": 1.0, "a": 1.0}),  # q of rank 1, non-integer n
        (50.0, {**HARDENING, "q_latent": 0.0, "xi_inf": math.inf}),  # linear, planes only
        (20.0, {}),  # no hardening: the σ block alone
    ],
)
def test_consistent_tangent_is_the_derivative_of_the_update(lattice, n, hardening):
    cp = law(lattice=lattice, n=n, **hardening)
    m = 5
    R = np.concatenate([random_orientations(m - 1, 6), np.eye(3)[None]])
    params = orient(R)
    direction = np.random.default_rng(17).standard_normal((m, 6))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    virgin = cp.initial_state(m)
    cases = {
        "nearly elastic": (1.5e-4 * direction, virgin),
        "plastic": (5e-3 * direction, virgin),
    }
    loaded = cp.update(5e-3 * direction, virgin, 1.0, params).state
    cases["reversed"] = (-2e-3 * direction, loaded)
    for what, (eps, state) in cases.items():
        _, C, trial = cp.update(eps, state, 1.0, params)
        C_fd = fd_tangent(cp, eps, state, 1.0, params, 1e-7)
        err = np.abs(C - C_fd).max(axis=(1, 2)) / np.abs(C).max(axis=(1, 2))
        assert err.max() < 1e-6, (what, err)
        softening = np.abs(C - cp.elastic_stiffness(params)).max() / np.abs(C).max()
        if what == "nearly elastic":
            assert softening < 0.01
        else:
            assert np.all(trial["gamma_sum"] > state["gamma_sum"] + 1e-4) and softening > 0.05


# -- aggregates ------------------------------------------------------------------------------
@pytest.mark.slow
def test_taylor_aggregate_flows_at_the_taylor_factor():
    """Iso-strain aggregate of 400 random FCC grains, plastic strain rate D = ε̇ diag(1, −½, −½),
    no hardening, n = 50 (nearly rate-insensitive): at steady flow the mean stress does the
    plastic work Σ : D = M ξ₀ ε̇. The reference is each grain's rate-insensitive Taylor
    factor, the least Σ|γ_α| with Σ γ_α P_α = D (a linear programme, scipy HiGHS), whose mean
    over random grains is Taylor's 3.06. The viscoplastic grains come out about 1 % below the
    LP (the active systems carry τ = ξ₀ (γ̇_α/γ̇₀)^(1/n) ≈ 0.99 ξ₀ here, and rate
    sensitivity rounds the vertex solutions), so: each grain within 4 % of its LP value, the
    aggregate within 2 % of the LP mean and within 3 % of 3.06 (the LP mean of the 400 grains
    has a standard error of 0.6 %)."""
    cp = law(n=50.0)
    P = slip_systems("fcc").schmid
    N = 400
    R = random_orientations(N, 7)
    D = np.array([1.0, -0.5, -0.5, 0.0, 0.0, 0.0])
    lp = []
    for Rg in R:
        D_crystal = mandel_rotation(Rg).T @ D
        res = linprog(np.ones(24), A_eq=np.hstack([P.T, -P.T]), b_eq=D_crystal, bounds=(0, None))
        assert res.success
        lp.append(res.fun)
    lp = np.array(lp)
    assert abs(lp.mean() / 3.06 - 1) < 3 * lp.std() / math.sqrt(N) / 3.06
    state, dt = cp.initial_state(N), 0.2
    for k in range(1, 31):  # to 0.6 % strain, 8 times the aggregate's yield strain
        sigma, _, state = cp.update(np.tile(GAMMA_DOT_0 * k * dt * D, (N, 1)), state, dt, orient(R))
    M = sigma @ D / XI0
    assert np.abs(M / lp - 1).max() < 0.04
    assert abs(M.mean() / lp.mean() - 1) < 0.02
    assert abs(M.mean() / 3.06 - 1) < 0.03


# -- through the evaluator -------------------------------------------------------------------
@pytest.mark.parametrize("dim", [2, 3])
def test_runs_through_quadrature_laws_with_per_point_orientations(dim):
    cp = law(**HARDENING, name="copper")
    matrix = IsotropicElastic(70e3, 0.3)
    n_pts = 10
    grains = np.arange(0, n_pts, 2)
    R = random_orientations(grains.size, 12)
    laws = QuadratureLaws(
        {"grains": cp, "matrix": matrix},
        {"grains": grains, "matrix": np.arange(1, n_pts, 2)},
        dim,
        n_pts,
        {"grains": {"orientation": R}},
    )
    assert not laws.has_elastic_limit
    assert set(laws.output_names) == {"accumulated_slip", "mean_slip_resistance"}
    rows = [0, 1, 5] if dim == 2 else list(range(6))
    eps = 4e-3 * np.random.default_rng(18).standard_normal((n_pts, len(rows)))
    laws.evaluate(eps, dt=1.0)
    full = np.zeros((grains.size, 6))
    full[:, rows] = eps[grains]
    sigma, C, _ = cp.update(full, cp.initial_state(grains.size), 1.0, orient(R))
    assert np.allclose(laws.stress[grains], sigma[:, rows], rtol=1e-13, atol=1e-12)
    assert np.allclose(laws.tangent[grains], C[:, rows][:, :, rows], rtol=1e-13, atol=1e-9)
    C_el = cp.elastic_stiffness(orient(R))
    assert np.allclose(laws.elastic_stiffness()[grains], C_el[:, rows][:, :, rows])
    assert laws.outputs()["accumulated_slip"].max() == 0.0
    laws.commit()
    slip = laws.outputs()["accumulated_slip"]
    assert np.all(slip[grains] > 0) and np.all(slip[1::2] == 0)
    # the committed stress (dt = 0) is the converged one
    assert np.allclose(
        laws.stresses(eps, laws.committed)[grains][:, rows], sigma[:, rows], rtol=1e-9
    )
    with pytest.raises(Fe2xError, match="orientation"):
        QuadratureLaws({"g": cp}, {"g": [0, 1]}, dim, 2)
