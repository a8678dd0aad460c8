"""Statistics of apparent properties of random SVEs: moments, variance decay, RVE size (Kanit).

Pure numpy/scipy. The integral-range approach follows T. Kanit, S. Forest, I. Galliet,
V. Mounoury, D. Jeulin, "Determination of the size of the representative volume element for
random composites: statistical and numerical approach", Int. J. Solids Struct. 40 (2003)
3647–3679, Sections 3–4.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "PowerLawFit",
    "SampleStatistics",
    "confidence_interval",
    "fit_power_law",
    "integral_range",
    "kanit_variance",
    "point_variance",
    "realizations_needed",
    "relative_error",
    "rve_volume",
    "sample_statistics",
    "size_for_one_realization",
]


class SampleStatistics(NamedTuple):
    """Mean, standard deviation (ddof = 1) and Student-t confidence interval of a sample."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float


class PowerLawFit(NamedTuple):
    """Least-squares fit ``log y = log(prefactor) + exponent * log x``.

    ``exponent_stderr`` is the standard error of the slope (NaN with only two points).
    """

    exponent: float
    exponent_stderr: float
    prefactor: float
    n_points: int

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        """The fitted law ``prefactor * x**exponent``."""
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def confidence_interval(values: npt.ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval ``mean ± t_{(1+c)/2, n-1} s / sqrt(n)`` (NaN for n < 2).

    >>> lo, hi = confidence_interval([1.0, 2.0, 3.0])
    >>> round(lo, 4), round(hi, 4)
    (-0.4841, 4.4841)
    """
    s = sample_statistics(values, confidence)
    return s.ci_low, s.ci_high


def sample_statistics(values: npt.ArrayLike, confidence: float = 0.95) -> SampleStatistics:
    """Sample mean, standard deviation with ``ddof = 1``, and Student-t confidence interval.

    >>> s = sample_statistics([1.0, 2.0, 3.0])
    >>> s.mean, s.std
    (2.0, 1.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=float).reshape(-1)
    n = x.size
    if n == 0:
        raise ValueError("sample_statistics needs at least one value")
    mean = float(x.mean())
    if n < 2:
        return SampleStatistics(n, mean, math.nan, math.nan, math.nan, confidence)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 * (1.0 + confidence), n - 1)) * std / math.sqrt(n)
    return SampleStatistics(n, mean, std, mean - half, mean + half, confidence)


def fit_power_law(x: npt.ArrayLike, y: npt.ArrayLike) -> PowerLawFit:
    """Fit ``y = a x^α`` by least squares on log–log axes; α and its standard error.

    The standard error is ``sqrt(SSR / (m - 2) / Σ (log x_i - mean)^2)`` for m points. Used on
    variances against SVE size, where α ≈ -d is expected for short-range correlation.

    >>> fit = fit_power_law([1.0, 2.0, 4.0], [3.0, 0.75, 0.1875])
    >>> round(fit.exponent, 12), round(fit.prefactor, 12)
    (-2.0, 3.0)

    Raises:
        ValueError: fewer than two points, or non-positive values (a zero variance has no log).
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("a power-law fit needs at least two distinct x values")
    if not (np.all(x > 0) and np.all(y > 0) and np.all(np.isfinite(y))):
        raise ValueError("a power-law fit needs positive, finite x and y")
    lx, ly = np.log(x), np.log(y)
    dx = lx - lx.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (ly - ly.mean()) / sxx)
    intercept = float(ly.mean() - slope * lx.mean())
    m = x.size
    if m > 2:
        ssr = float(np.sum((ly - intercept - slope * lx) ** 2))
        stderr = math.sqrt(ssr / (m - 2) / sxx)
    else:
        stderr = math.nan
    return PowerLawFit(slope, stderr, math.exp(intercept), m)


def point_variance(p: float, Z1: float, Z2: float) -> float:
    """Point variance of a two-phase property, ``D²_Z = p (1 - p) (Z1 - Z2)²`` (Kanit eq. 11).

    ``p`` is the volume fraction of phase 1. It is the variance of Z over volumes much smaller
    than the inclusions, where each point lies in one phase.

    >>> point_variance(0.25, 3.0, 1.0)
    0.75
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"volume fraction p must be in [0, 1], got {p}")
    return float(p * (1.0 - p) * (Z1 - Z2) ** 2)


def kanit_variance(V: npt.ArrayLike, point_var: float, A3: float, alpha: float = 1.0) -> np.ndarray:
    """Variance of the apparent property over volume V, ``D²_Z(V) = D²_Z (A_3 / V)^α``.

    Kanit et al. (2003) eq. 10; α = 1 for an additive property (e.g. the volume fraction),
    with the integral range A_3; for elastic moduli α is fitted. Valid for V ≫ A_3.

    >>> round(float(kanit_variance(10.0, 0.75, 2.0)), 12)
    0.15
    """
    return point_var * (A3 / np.asarray(V, dtype=float)) ** alpha


def integral_range(
    V: npt.ArrayLike, variances: npt.ArrayLike, point_var: float
) -> tuple[float, float]:
    """Integral range A_3 and exponent α fitted to ``D²_Z(V) = D²_Z (A_3 / V)^α``.

    A power law ``D²(V) = K V^(-α)`` is fitted on log–log axes (Kanit eq. 10–11), and
    ``A_3 = (K / D²_Z)^(1/α)``.

    >>> A3, alpha = integral_range([10.0, 40.0], kanit_variance([10.0, 40.0], 0.75, 2.0), 0.75)
    >>> round(A3, 12), round(alpha, 12)
    (2.0, 1.0)
    """
    if not point_var > 0:
        raise ValueError(f"point variance must be positive, got {point_var}")
    fit = fit_power_law(V, variances)
    alpha = -fit.exponent
    if not alpha > 0:
        raise ValueError(f"variance does not decrease with volume (fitted α = {alpha:.3g})")
    return float((fit.prefactor / point_var) ** (1.0 / alpha)), float(alpha)


def relative_error(std_V: float, mean: float, n: int) -> float:
    """Relative precision of the mean of n realizations, ``ε_rel = 2 D_Z(V) / (Z̄ sqrt(n))``.

    Kanit eq. 13: the half-width of the 95 % interval (≈ 2 standard errors) over the mean.

    >>> relative_error(0.1, 1.0, 4)
    0.1
    """
    return float(2.0 * std_V / (abs(mean) * math.sqrt(n)))


def realizations_needed(variance_V: float, mean: float, eps_rel: float) -> int:
    """Least n with ``2 D_Z(V) / (Z̄ sqrt(n)) <= ε_rel``: ``n = ceil(4 D²_Z(V) / (ε² Z̄²))``.

    Kanit eq. 13 solved for n; at least 1.

    >>> realizations_needed(0.01, 1.0, 0.1)
    4
    """
    if not eps_rel > 0:
        raise ValueError(f"relative precision must be positive, got {eps_rel}")
    if not (variance_V >= 0 and math.isfinite(variance_V)):
        raise ValueError(f"variance must be finite and non-negative, got {variance_V}")
    n = 4.0 * variance_V / (eps_rel**2 * mean**2)
    # Round off the last bits so that an exact inversion is not pushed up by one.
    return max(1, math.ceil(n * (1.0 - 1e-12)))


def rve_volume(
    point_var: float, A3: float, alpha: float, mean: float, eps_rel: float, n: int = 1
) -> float:
    """Volume for precision ε_rel with n realizations, ``V = A_3 (4 D²_Z / (ε² Z̄² n))^(1/α)``.

    Kanit eq. 14 (eq. 13 with eq. 10 solved for V); n = 1 gives the RVE in their sense.

    >>> round(rve_volume(0.75, 2.0, 1.0, 1.0, 0.1, n=4), 12)
    150.0
    """
    if not (eps_rel > 0 and n >= 1 and alpha > 0):
        raise ValueError("need eps_rel > 0, n >= 1 and alpha > 0")
    try:
        return float(A3 * (4.0 * point_var / (eps_rel**2 * mean**2 * n)) ** (1.0 / alpha))
    except OverflowError:
        # A variance that hardly decays (α -> 0) asks for a volume beyond any float.
        return math.inf


def size_for_one_realization(fit: PowerLawFit, mean: float, eps_rel: float) -> float:
    """Smallest L with ``4 Var(L) / (ε² Z̄²) <= 1`` for a fitted ``Var(L) = a L^α`` (α < 0).

    ``L = (ε² Z̄² / (4 a))^(1/α)``; NaN when the variance does not fall with size.

    >>> fit = PowerLawFit(-2.0, math.nan, 1.0, 3)
    >>> round(size_for_one_realization(fit, 1.0, 0.1), 12)
    20.0
    """
    if not fit.exponent < 0:
        return math.nan
    return float((eps_rel**2 * mean**2 / (4.0 * fit.prefactor)) ** (1.0 / fit.exponent))
