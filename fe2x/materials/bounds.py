"""Classical bounds on effective moduli and conductivities: Voigt, Reuss, Wiener, Hashin–Shtrikman.

References:
    Hashin, Z. & Shtrikman, S. (1962) J. Mech. Phys. Solids 10, 343–352 (cubic polycrystals).
    Wiener, O. (1912) Abh. Math.-Phys. Kl. Königl. Sächs. Ges. 32, 509–604 (conductivity).
    Hashin, Z. & Shtrikman, S. (1962) J. Appl. Phys. 33, 3125–3131 (conductivity).
    Hashin, Z. & Shtrikman, S. (1963) J. Mech. Phys. Solids 11, 127–140.
    Hashin, Z. (1965) J. Mech. Phys. Solids 13, 119–134 (transverse, fibre composites).
    Walpole, L. J. (1966) J. Mech. Phys. Solids 14, 151–162 (N phases, any ordering).
    Watt, J. P. & Peselnick, L. (1980) J. Appl. Phys. 51, 1525–1531 (polycrystals).
    Torquato, S. (2002) Random Heterogeneous Materials, Springer, ch. 21 (d dimensions).
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError

FRACTION_SUM_TOL = 1e-8
"""Allowed |Σ f_i − 1|."""


def _fractions(fractions: npt.ArrayLike) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"fractions must be a non-empty 1D sequence, got shape {f.shape}")
    if not np.all(np.isfinite(f)) or np.any(f < 0.0) or abs(f.sum() - 1.0) > FRACTION_SUM_TOL:
        raise MaterialError(
            f"volume fractions {f.tolist()} must be >= 0 and sum to 1 (sum = {f.sum():.12g})"
        )
    return f


def _stiffnesses(f: np.ndarray, stiffnesses: Sequence[npt.ArrayLike] | np.ndarray) -> np.ndarray:
    C = np.asarray(stiffnesses, dtype=float)
    if C.ndim != 3 or C.shape[1:] not in ((3, 3), (6, 6)) or C.shape[0] != f.size:
        raise ValueError(
            f"expected {f.size} Mandel stiffnesses of shape (3, 3) or (6, 6), got shape {C.shape}"
        )
    return C


def voigt_bound(
    fractions: npt.ArrayLike, stiffnesses: Sequence[npt.ArrayLike] | np.ndarray
) -> np.ndarray:
    """Voigt (uniform strain) upper bound C_V = Σ f_i C_i on Mandel stiffnesses (2D or 3D)."""
    f = _fractions(fractions)
    return np.einsum("i,ijk->jk", f, _stiffnesses(f, stiffnesses))


def reuss_bound(
    fractions: npt.ArrayLike, stiffnesses: Sequence[npt.ArrayLike] | np.ndarray
) -> np.ndarray:
    """Reuss (uniform stress) lower bound C_R = (Σ f_i C_i⁻¹)⁻¹ on Mandel stiffnesses (2D or 3D)."""
    f = _fractions(fractions)
    C = _stiffnesses(f, stiffnesses)
    CR = np.linalg.inv(np.einsum("i,ijk->jk", f, np.linalg.inv(C)))
    return 0.5 * (CR + CR.T)


def _zeta(bulk: float, shear: float, dim: int) -> float:
    """HS shear reference ζ(K, μ): μ(9K+8μ)/(6(K+2μ)) in 3D, κμ/(κ+2μ) in 2D; 0 when μ = 0."""
    if shear == 0.0:
        return 0.0
    if dim == 3:
        return shear * (9.0 * bulk + 8.0 * shear) / (6.0 * (bulk + 2.0 * shear))
    return bulk * shear / (bulk + 2.0 * shear)


def _hs_mean(f: np.ndarray, moduli: np.ndarray, reference: float) -> float:
    """[Σ f_i/(m_i + y)]⁻¹ − y, the Walpole form of an HS bound with reference y >= 0."""
    with np.errstate(divide="ignore"):
        total = np.sum(f / (moduli + reference))
    return float(1.0 / total - reference)


def hashin_shtrikman(
    fractions: npt.ArrayLike, bulk: npt.ArrayLike, shear: npt.ArrayLike, dim: int
) -> dict[str, tuple[float, float]]:
    """Hashin–Shtrikman–Walpole bounds on the moduli of an isotropic N-phase composite.

    With y(m) = [Σ f_i/(m_i + y)]⁻¹ − y:
    3D: K bounds with y = 4/3 μ_min / 4/3 μ_max, μ bounds with y = ζ(K_min, μ_min) /
    ζ(K_max, μ_max), ζ(K, μ) = μ(9K+8μ)/(6(K+2μ)).
    2D (plane strain, i.e. transverse moduli of a fibre composite; ``bulk`` is κ = λ+μ):
    κ bounds with y = μ_min / μ_max, μ bounds with y = ζ(κ, μ) = κμ/(κ+2μ) at the minima /
    maxima. Minima and maxima are taken separately over phases with f_i > 0, so the phases need
    not be well ordered (Walpole 1966). Two-phase well-ordered forms: Hashin & Shtrikman 1963
    (3D), Hashin 1965 (2D); the d-dimensional form is Torquato 2002, §21.

    Args:
        fractions: Volume fractions f_i >= 0, Σ f_i = 1.
        bulk: Phase bulk moduli, K_i in 3D or κ_i in 2D, >= 0.
        shear: Phase shear moduli μ_i >= 0.
        dim: 2 or 3.

    Returns:
        ``{"bulk": (lower, upper), "shear": (lower, upper)}``.
    """
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 (plane strain) or 3")
    f = _fractions(fractions)
    K = np.asarray(bulk, dtype=float).reshape(-1)
    μ = np.asarray(shear, dtype=float).reshape(-1)
    if K.size != f.size or μ.size != f.size:
        raise ValueError(f"{f.size} fractions but {K.size} bulk and {μ.size} shear moduli")
    for label, values in (("bulk", K), ("shear", μ)):
        if not np.all(np.isfinite(values)) or np.any(values < 0.0):
            raise MaterialError(f"{label} moduli {values.tolist()} must be finite and >= 0")
    present = f > 0.0
    f, K, μ = f[present], K[present], μ[present]
    c = 4.0 / 3.0 if dim == 3 else 1.0
    μ_min, μ_max, K_min, K_max = μ.min(), μ.max(), K.min(), K.max()
    return {
        "bulk": (_hs_mean(f, K, c * μ_min), _hs_mean(f, K, c * μ_max)),
        "shear": (
            _hs_mean(f, μ, _zeta(K_min, μ_min, dim)),
            _hs_mean(f, μ, _zeta(K_max, μ_max, dim)),
        ),
    }


def cubic_polycrystal_bounds(C11: float, C12: float, C44: float) -> dict[str, tuple[float, float]]:
    """Voigt, Reuss and Hashin–Shtrikman bounds on the moduli of an untextured cubic polycrystal.

    Untextured: a statistically isotropic aggregate of cubic grains. A cubic crystal has the
    bulk modulus K = (C11 + 2 C12)/3 in every orientation, so the aggregate's is K exactly; its
    deviatoric eigenmoduli are μ_a = (C11 − C12)/2 (2 of 5 modes) and μ_b = C44 (3 of 5).
    Averaged over orientations: μ_V = (2 μ_a + 3 μ_b)/5, 1/μ_R = (2/μ_a + 3/μ_b)/5, and with
    y = ζ(K, μ₀) (:func:`hashin_shtrikman`, 3D) μ_HS = [(2/5)/(μ_a + y) + (3/5)/(μ_b + y)]⁻¹ − y
    at μ₀ = min(μ_a, μ_b) (lower) and max (upper): Hashin & Shtrikman (1962)'s bounds, in
    Walpole's form. Copper (168.4, 121.4, 75.4 GPa): μ in 45.96–49.45 GPa, K = 137.07 GPa.

    Returns:
        ``{"bulk": (K, K), "shear": (lower, upper), "voigt": (K, μ_V), "reuss": (K, μ_R)}``.
    """
    for label, value in (("C11", C11), ("C12", C12), ("C44", C44)):
        if not np.isfinite(value):
            raise MaterialError(f"cubic constant {label} = {value!r} is not finite")
    K, μ_a, μ_b = (C11 + 2.0 * C12) / 3.0, (C11 - C12) / 2.0, float(C44)
    if not (K > 0.0 and μ_a > 0.0 and μ_b > 0.0):
        raise MaterialError(
            f"cubic constants C11 = {C11}, C12 = {C12}, C44 = {C44} are not positive definite"
        )
    f, μ = np.array([0.4, 0.6]), np.array([μ_a, μ_b])
    return {
        "bulk": (K, K),
        "shear": (_hs_mean(f, μ, _zeta(K, μ.min(), 3)), _hs_mean(f, μ, _zeta(K, μ.max(), 3))),
        "voigt": (K, float(f @ μ)),
        "reuss": (K, float(1.0 / (f @ (1.0 / μ)))),
    }


def isotropic_projection(C: npt.ArrayLike, dim: int) -> tuple[float, float]:
    """Bulk and shear moduli of the isotropic part of a Mandel stiffness.

    Bulk: 3D K = (1/9) Σ_{i,j<3} C_ij; 2D κ = (C11 + C22 + 2 C12)/4 (plane-strain bulk).
    Shear: μ of the orthogonal (Frobenius) projection of C onto span{J, I−J}, with J the
    volumetric projector: 3D μ = (tr C − 3K)/10 (the Voigt-average shear), 2D μ = (tr C − 2κ)/4.
    An isotropic C gives back exactly (K, μ) / (λ+μ, μ).
    """
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 (plane strain) or 3")
    C = np.asarray(C, dtype=float)
    n = 6 if dim == 3 else 3
    if C.shape != (n, n):
        raise ValueError(f"expected a ({n}, {n}) Mandel stiffness for dim = {dim}, got {C.shape}")
    if dim == 3:
        K = float(C[:3, :3].sum() / 9.0)
        return K, float((np.trace(C) - 3.0 * K) / 10.0)
    κ = float((C[0, 0] + C[1, 1] + 2.0 * C[0, 1]) / 4.0)
    return κ, float((np.trace(C) - 2.0 * κ) / 4.0)


def _conductivities(f: np.ndarray, conductivities: npt.ArrayLike) -> np.ndarray:
    k = np.asarray(conductivities, dtype=float).reshape(-1)
    if k.size != f.size:
        raise ValueError(f"{f.size} fractions but {k.size} conductivities")
    if not np.all(np.isfinite(k)) or np.any(k < 0.0):
        raise MaterialError(f"conductivities {k.tolist()} must be finite and >= 0")
    return k


def wiener_bounds(fractions: npt.ArrayLike, conductivities: npt.ArrayLike) -> tuple[float, float]:
    """Wiener bounds (Σ f_i/k_i)⁻¹ ≤ k_eff ≤ Σ f_i k_i on any effective conductivity.

    A laminate attains them: the harmonic mean across its layers, the arithmetic one along.

    Args:
        fractions: Volume fractions f_i >= 0, Σ f_i = 1.
        conductivities: Phase conductivities k_i >= 0 (isotropic phases).

    Returns:
        (lower, upper).
    """
    f = _fractions(fractions)
    k = _conductivities(f, conductivities)
    present = f > 0.0
    f, k = f[present], k[present]
    with np.errstate(divide="ignore"):
        harmonic = 1.0 / np.sum(f / k)
    return float(harmonic), float(np.sum(f * k))


def hashin_shtrikman_conductivity(
    fractions: npt.ArrayLike, conductivities: npt.ArrayLike, dim: int
) -> tuple[float, float]:
    """Hashin–Shtrikman bounds on the conductivity of an isotropic N-phase composite.

    k_HS = [Σ f_i/(k_i + (d−1) k_0)]⁻¹ − (d−1) k_0 with k_0 = k_min (lower) and k_max (upper),
    over the phases with f_i > 0, in d = 2 or 3 dimensions; the coated-sphere (3D) and
    coated-cylinder (2D) assemblages attain them (Hashin & Shtrikman 1962).

    Args:
        fractions: Volume fractions f_i >= 0, Σ f_i = 1.
        conductivities: Phase conductivities k_i >= 0 (isotropic phases).
        dim: 2 or 3.

    Returns:
        (lower, upper).
    """
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 or 3")
    f = _fractions(fractions)
    k = _conductivities(f, conductivities)
    present = f > 0.0
    f, k = f[present], k[present]
    return (
        _hs_mean(f, k, (dim - 1) * float(k.min())),
        _hs_mean(f, k, (dim - 1) * float(k.max())),
    )
