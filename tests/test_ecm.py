"""Empirical cubature: exact integrals of polynomials (closed forms) on fine Gauss rules, the
Carathéodory bound on the number of points, generalisation to held-out integrands of the span,
positive weights and exact volume, the full rule recovered when every point is needed, and
failures reported."""

import numpy as np
import pytest
from numpy.polynomial import legendre

from fe2x.errors import Fe2xError
from fe2x.rom.ecm import ROUNDOFF, empirical_cubature, integration_errors


def composite_gauss(n_elements: int, n_gauss: int, a: float = 0.0, b: float = 1.0):
    """Points and weights of the composite n_gauss-point Gauss–Legendre rule on [a, b]."""
    xg, wg = legendre.leggauss(n_gauss)
    edges = np.linspace(a, b, n_elements + 1)
    mid, half = 0.5 * (edges[:-1] + edges[1:]), 0.5 * np.diff(edges)
    return (mid[:, None] + half[:, None] * xg).ravel(), (half[:, None] * wg).ravel()


def square_rule(n_elements: int = 10, n_gauss: int = 3):
    """The tensor composite Gauss rule of the unit square (a quadrilateral FE mesh)."""
    x, w = composite_gauss(n_elements, n_gauss)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return X.ravel(), Y.ravel(), np.outer(w, w).ravel()


def assert_valid(cubature, w):
    assert np.all(cubature.weights > 0.0)
    assert np.all(np.diff(cubature.points) > 0)  # distinct, ascending
    assert cubature.weights.sum() == pytest.approx(w.sum(), rel=1e-14)  # the volume, exactly


@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_legendre_polynomials_1d(m):
    """P_0 .. P_{2m-1} on a 50-element 4-point Gauss rule of [-1, 1]: ∫P_k = 2 δ_k0.

    The continuous minimum is the m-point Gauss rule; among the fine rule's points the greedy
    + NNLS rule is a basic solution, with at most as many points as functions (Carathéodory),
    here exactly 2m.
    """
    x, w = composite_gauss(50, 4, -1.0, 1.0)
    G = legendre.legvander(x, 2 * m - 1)
    cubature = empirical_cubature(G, w, tol=1e-12)
    exact = np.zeros(2 * m)
    exact[0] = 2.0
    assert np.abs(cubature.weights @ G[cubature.points] - exact).max() < 1e-12
    assert cubature.points.size <= 2 * m == cubature.n_modes
    assert cubature.error <= 1e-12
    assert_valid(cubature, w)


@pytest.mark.parametrize("p", [2, 3, 4, 5])
def test_monomials_on_the_square(p):
    """x^a y^b, a + b ≤ p, on a 10 × 10 quadrilateral mesh with 3 × 3 Gauss points:
    ∫ = 1 / ((a + 1)(b + 1)) to 1e-12 with at most (p + 1)(p + 2)/2 points."""
    X, Y, w = square_rule()
    powers = [(a, d - a) for d in range(p + 1) for a in range(d + 1)]
    G = np.column_stack([X**a * Y**b for a, b in powers])
    cubature = empirical_cubature(G, w, tol=1e-12)
    exact = np.array([1.0 / ((a + 1) * (b + 1)) for a, b in powers])
    assert np.abs(cubature.weights @ G[cubature.points] - exact).max() < 1e-12
    assert cubature.points.size <= len(powers)
    assert_valid(cubature, w)


def smooth_family(X, Y, k: int, seed: int):
    """k smooth functions exp(a x + b y) cos(3 c x y) with random a, b, c."""
    a, b, c = np.random.default_rng(seed).uniform(-2, 2, (3, k))
    return np.column_stack(
        [np.exp(a[i] * X + b[i] * Y) * np.cos(3 * c[i] * X * Y) for i in range(k)]
    )


@pytest.mark.parametrize("tol", [1e-4, 1e-8, 0.0])
def test_random_smooth_integrands_generalise_in_their_span(tol):
    """Training: 40 random combinations of 12 smooth functions; held out: 40 more of the same
    span. Both are integrated to ``tol`` (the error bounds the whole span), the zero-mean
    ones too."""
    X, Y, w = square_rule(20)
    base = smooth_family(X, Y, 12, seed=1)
    rng = np.random.default_rng(2)
    train, held_out = base @ rng.standard_normal((12, 40)), base @ rng.standard_normal((12, 40))
    zero_mean = held_out - (w @ held_out) / w.sum()
    cubature = empirical_cubature(train, w, tol)
    bound = max(tol, ROUNDOFF)
    assert cubature.error <= bound
    assert cubature.n_modes == 13  # the span and the constant
    for G in (train, held_out, zero_mean):
        assert integration_errors(G, w, cubature).max() <= bound
    assert cubature.points.size <= 13
    assert_valid(cubature, w)


def test_truncated_basis_integrates_the_training_set_to_about_svd_tol():
    """A parametric family of 150 peaks: truncating the SVD takes fewer points; the training
    integrands then carry an error of the order of what was truncated (not guaranteed, but
    measured: a few times svd_tol here)."""
    X, Y, w = square_rule(20)
    rng = np.random.default_rng(3)
    mu, x0 = rng.uniform(0.5, 20, 150), rng.uniform(0, 1, (150, 2))
    G = np.column_stack(
        [1 / (1 + mu[j] * ((X - x0[j, 0]) ** 2 + (Y - x0[j, 1]) ** 2)) for j in range(150)]
    )
    full = empirical_cubature(G, w, 1e-6)
    assert integration_errors(G, w, full).max() <= 1e-6
    for svd_tol in (1e-6, 1e-4):
        truncated = empirical_cubature(G, w, 1e-6, svd_tol=svd_tol)
        assert truncated.points.size < full.points.size
        assert truncated.error <= 1e-6
        assert integration_errors(G, w, truncated).max() <= 10 * svd_tol
        assert_valid(truncated, w)


def test_every_point_needed_recovers_the_fe_rule():
    """With as many independent integrands as points (and tol = 0) the only rule is the full
    one: every point is selected and the FE weights come back to round-off."""
    x, w = composite_gauss(6, 3)
    G = legendre.legvander(2 * x - 1, x.size + 4)  # 23 polynomials on 18 points: rank 18
    cubature = empirical_cubature(G, w, tol=0.0)
    assert np.array_equal(cubature.points, np.arange(x.size))
    assert np.allclose(cubature.weights, w, rtol=1e-11, atol=0)
    assert cubature.error <= ROUNDOFF
    assert integration_errors(G, w, cubature).max() <= ROUNDOFF


def test_tolerance_zero_reproduces_the_full_integrals():
    X, Y, w = square_rule()
    G = smooth_family(X, Y, 20, seed=4)
    cubature = empirical_cubature(G, w, tol=0.0)
    assert np.allclose(cubature.weights @ G[cubature.points], w @ G, rtol=1e-12, atol=0)
    assert cubature.points.size <= 21
    assert_valid(cubature, w)


def test_unreachable_tolerance_is_reported():
    X, Y, w = square_rule()
    G = smooth_family(X, Y, 20, seed=5)
    with pytest.raises(
        Fe2xError,
        match=r"tolerance 1e-10 not met \(max_points = 5 reached\); best relative error "
        r"\S+ with 5 points",
    ):
        empirical_cubature(G, w, 1e-10, max_points=5)


@pytest.mark.parametrize(
    ("G", "w", "kwargs", "match"),
    [
        (np.ones((4, 2)), np.array([1.0, 1.0, 0.0, 1.0]), {}, r"1 FE weight\(s\) are not positive"),
        (np.ones((4, 2)), np.ones(3), {}, r"FE weights w have shape \(3,\); expected \(4,\)"),
        (np.ones((4, 0)), np.ones(4), {}, "non-empty"),
        (np.full((4, 2), np.nan), np.ones(4), {}, "NaN or infinite"),
        (np.ones((4, 2)), np.ones(4), {"tol": -1.0}, "tol = -1.0 must be >= 0"),
        (np.ones((4, 2)), np.ones(4), {"svd_tol": 1.0}, r"svd_tol = 1.0 must be in \[0, 1\)"),
        (np.ones((4, 2)), np.ones(4), {"max_points": 0}, "max_points = 0 must be at least 1"),
    ],
)
def test_bad_input(G, w, kwargs, match):
    with pytest.raises(Fe2xError, match=match):
        empirical_cubature(G, w, **{"tol": 1e-6, **kwargs})
