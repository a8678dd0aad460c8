"""SVE statistics against independent facts: known exponents, CI coverage, inverted formulas."""

import doctest
import math

import numpy as np
import pytest
from scipy import stats

import fe2x.sve.statistics as sve_statistics
from fe2x.sve.statistics import (
    confidence_interval,
    fit_power_law,
    integral_range,
    kanit_variance,
    point_variance,
    realizations_needed,
    relative_error,
    rve_volume,
    sample_statistics,
    size_for_one_realization,
)


def test_doctests():
    failures, _ = doctest.testmod(sve_statistics)
    assert failures == 0


def test_sample_statistics_matches_numpy_and_scipy():
    x = np.random.default_rng(3).normal(2.0, 0.5, size=17)
    s = sample_statistics(x, confidence=0.9)
    assert s.n == 17
    assert s.mean == pytest.approx(x.mean(), rel=1e-14)
    assert s.std == pytest.approx(np.std(x, ddof=1), rel=1e-14)
    lo, hi = stats.t.interval(0.9, 16, loc=x.mean(), scale=stats.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi), rel=1e-12)


def test_single_value_has_no_spread():
    s = sample_statistics([4.0])
    assert s.mean == 4.0
    assert math.isnan(s.std) and math.isnan(s.ci_low)


def test_confidence_interval_coverage_on_gaussian_samples():
    rng = np.random.default_rng(20030101)
    trials, n, mu = 4000, 8, 1.5
    hits = 0
    for _ in range(trials):
        lo, hi = confidence_interval(rng.normal(mu, 2.0, size=n), confidence=0.95)
        hits += lo <= mu <= hi
    # Binomial standard deviation of the coverage is about 0.0034; allow 4 of them.
    assert abs(hits / trials - 0.95) < 0.014


@pytest.mark.parametrize("exponent", [-2.0, -3.0, -1.3])
def test_power_law_fit_recovers_exponent_of_exact_data(exponent):
    L = np.array([2.0, 3.0, 5.0, 8.0])
    fit = fit_power_law(L, 0.7 * L**exponent)
    assert fit.exponent == pytest.approx(exponent, abs=1e-12)
    assert fit.prefactor == pytest.approx(0.7, rel=1e-12)
    assert fit.exponent_stderr == pytest.approx(0.0, abs=1e-12)
    assert fit(4.0) == pytest.approx(0.7 * 4.0**exponent)


def test_power_law_fit_on_sample_variances_with_known_decay():
    """Samples whose true variance is 3 L^-2: the fitted slope is -2 within its error."""
    rng = np.random.default_rng(7)
    L = np.array([2.0, 3.0, 4.0, 6.0, 8.0])
    variances = [np.var(rng.normal(0.0, np.sqrt(3.0 * s**-2.0), 4000), ddof=1) for s in L]
    fit = fit_power_law(L, variances)
    assert abs(fit.exponent + 2.0) < max(4 * fit.exponent_stderr, 0.02)
    assert fit.exponent_stderr < 0.05
    ref = stats.linregress(np.log(L), np.log(variances))
    assert fit.exponent == pytest.approx(ref.slope, rel=1e-12)
    assert fit.exponent_stderr == pytest.approx(ref.stderr, rel=1e-10)


def test_power_law_fit_errors():
    with pytest.raises(ValueError, match="positive, finite"):
        fit_power_law([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="two distinct"):
        fit_power_law([1.0], [1.0])
    assert math.isnan(fit_power_law([1.0, 2.0], [1.0, 0.25]).exponent_stderr)


def test_point_variance_is_the_variance_of_a_two_phase_point_sample():
    rng = np.random.default_rng(11)
    p, Z1, Z2 = 0.3, 50.0, 2.0
    Z = np.where(rng.random(400_000) < p, Z1, Z2)
    assert point_variance(p, Z1, Z2) == pytest.approx(np.var(Z), rel=0.01)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        point_variance(1.2, Z1, Z2)


def test_integral_range_recovers_kanit_law():
    V = np.array([8.0, 27.0, 64.0, 125.0])
    D2, A3, alpha = 4.2, 0.8, 0.85
    A3_fit, alpha_fit = integral_range(V, kanit_variance(V, D2, A3, alpha), D2)
    assert A3_fit == pytest.approx(A3, rel=1e-10)
    assert alpha_fit == pytest.approx(alpha, rel=1e-10)
    with pytest.raises(ValueError, match="does not decrease"):
        integral_range(V, V, D2)


@pytest.mark.parametrize("seed", range(5))
def test_realizations_needed_inverts_relative_error(seed):
    rng = np.random.default_rng(seed)
    var, mean, eps = rng.uniform(0.01, 1.0), rng.uniform(1.0, 5.0), rng.uniform(0.005, 0.05)
    n = realizations_needed(var, mean, eps)
    assert relative_error(math.sqrt(var), mean, n) <= eps
    if n > 1:
        assert relative_error(math.sqrt(var), mean, n - 1) > eps


def test_exact_inversion_and_least_one():
    # 2 sqrt(0.01) / (1 sqrt(4)) = 0.1 exactly: 4 realizations, not 5.
    assert realizations_needed(0.01, 1.0, 0.1) == 4
    assert realizations_needed(0.0, 1.0, 0.1) == 1
    with pytest.raises(ValueError, match="precision must be positive"):
        realizations_needed(0.01, 1.0, 0.0)


@pytest.mark.parametrize("n", [1, 3, 10])
def test_rve_volume_inverts_kanit_variance(n):
    D2, A3, alpha, mean, eps = 2.0, 0.5, 1.2, 3.0, 0.02
    V = rve_volume(D2, A3, alpha, mean, eps, n=n)
    var = float(kanit_variance(V, D2, A3, alpha))
    assert relative_error(math.sqrt(var), mean, n) == pytest.approx(eps, rel=1e-12)


def test_rve_volume_beyond_floats_is_infinite():
    """A variance that hardly decays: (4 D² / ε² Z̄²)^(1/α) = 300^1000 overflows a double."""
    assert math.isinf(rve_volume(0.75, 2.0, 1e-3, 1.0, 0.1))


def test_size_for_one_realization_agrees_with_rve_volume():
    """Var(L) = D2 (A3 / L^d)^alpha is a power law in L with exponent -d alpha."""
    d, D2, A3, alpha, mean, eps = 2, 2.0, 0.5, 1.0, 3.0, 0.02
    L = np.array([2.0, 4.0, 8.0])
    fit = fit_power_law(L, kanit_variance(L**d, D2, A3, alpha))
    L1 = size_for_one_realization(fit, mean, eps)
    assert L1**d == pytest.approx(rve_volume(D2, A3, alpha, mean, eps), rel=1e-10)
    flat = fit_power_law(L, [1.0, 1.0, 1.0])
    assert math.isnan(size_for_one_realization(flat, mean, eps))
