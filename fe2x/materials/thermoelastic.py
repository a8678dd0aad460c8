"""Effective thermal expansion of two-phase composites: Levin's exact relation and the laminate.

The effective expansion α_eff is the macro strain of a free cell under a unit temperature
change: Σ = C_eff (E − α_eff ΔT), returned as a Mandel vector (order of :mod:`mandel`).

Plane strain (3x3 C_eff, order 11, 22, 12) means ε_33 = 0 in every phase, as the 2D cell is
homogenized. Each phase then behaves as a 2D-isotropic solid of bulk modulus κ = K + μ/3 (λ + μ)
and in-plane expansion α' = 3Kα/(2κ) = (1 + ν)α, and both relations below are the 3D ones
applied to that 2D problem: the result is the in-plane α'_eff with Σ_p = C_eff (E_p − α'_eff ΔT),
not the in-plane part of a 3D α_eff.

References:
    Levin, V. M. (1967) Mech. Solids 2, 58–61 (thermal expansion of two-phase composites).
    Rosen, B. W. & Hashin, Z. (1970) Int. J. Eng. Sci. 8, 157–173.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError
from fe2x.materials.elastic import IsotropicElastic

_FRACTION_TOL = 1e-8
_BULK_CONTRAST = 1e-10
"""Smallest |1/K₁ − 1/K₂| relative to max(1/K) that Levin's relation accepts."""


def levin_expansion(
    C_eff: npt.ArrayLike,
    fractions: Sequence[float],
    phases: Sequence[IsotropicElastic],
    alpha: Sequence[float],
) -> np.ndarray:
    """Levin's exact effective expansion of a two-phase composite of isotropic phases.

    3D: α_eff = ⟨α⟩ I + (α₁ − α₂)/(1/K₁ − 1/K₂) (3 S_eff : I − ⟨1/K⟩ I), S_eff = C_eff⁻¹.
    Plane strain: the same in 2D, α'_eff = ⟨α'⟩ I + (α'₁ − α'₂)/(1/κ₁ − 1/κ₂)
    (2 S_eff : I − ⟨1/κ⟩ I) with κ_i = K_i + μ_i/3 and α'_i = (1 + ν_i) α_i (module docstring).
    It holds for any microstructure, given its C_eff.

    Args:
        C_eff: Effective Mandel stiffness, (6, 6) or plane-strain (3, 3).
        fractions: Volume fractions of the two phases, summing to 1.
        phases: The two isotropic elastic phases.
        alpha: Their (isotropic) thermal expansion coefficients.

    Returns:
        α_eff as a Mandel vector, shape (6,) or (3,).

    Raises:
        MaterialError: Not two phases, bad fractions, or equal (plane-strain) bulk moduli, for
            which C_eff does not determine α_eff.
    """
    C = np.asarray(C_eff, dtype=float)
    if C.shape not in ((6, 6), (3, 3)):
        raise MaterialError(f"expected a (6, 6) or plane-strain (3, 3) C_eff, got {C.shape}")
    f, a, dim = _two_phases(fractions, phases, alpha), np.asarray(alpha, dtype=float), 3
    if C.shape == (3, 3):
        dim = 2
        a = _plane_strain_alpha(phases, a)
    K = np.array([_bulk(p, dim) for p in phases])
    inv_K = 1.0 / K
    if abs(inv_K[0] - inv_K[1]) <= _BULK_CONTRAST * inv_K.max():
        kind = "bulk moduli K" if dim == 3 else "plane-strain bulk moduli K + mu/3"
        raise MaterialError(
            f"Levin's relation needs two phases of different {kind}, got {K.tolist()}"
        )
    unit = np.zeros(C.shape[0])
    unit[:dim] = 1.0
    S_I = np.linalg.solve(C, unit)
    jump = (a[0] - a[1]) / (inv_K[0] - inv_K[1])
    return float(f @ a) * unit + jump * (dim * S_I - float(f @ inv_K) * unit)


def laminate_expansion(
    fractions: Sequence[float],
    phases: Sequence[IsotropicElastic],
    alpha: Sequence[float],
    axis: int,
    dim: int = 3,
) -> np.ndarray:
    """Closed-form expansion of a two-layer laminate of isotropic layers normal to ``axis``.

    The in-plane strains are continuous and the normal tractions vanish in a free cell, so each
    layer is in plane stress: σ_t = M_i (e − α_i) along the layers, with the biaxial modulus
    M_i = E_i/(1 − ν_i). ⟨σ_t⟩ = 0 gives e = Σ f_i M_i α_i / Σ f_i M_i along the layers and
    α_n = Σ f_i [α_i − 2ν_i/(1 − ν_i) (e − α_i)] across. Plane strain (dim = 2): the layers are
    in uniaxial stress with ε_33 = 0, M_i = E_i/(1 − ν_i²), α'_i = (1 + ν_i) α_i and
    α_n = Σ f_i [α'_i − ν_i/(1 − ν_i) (e − α'_i)].

    Args:
        fractions: Layer thickness fractions, summing to 1.
        phases: The two isotropic elastic layers.
        alpha: Their thermal expansion coefficients.
        axis: Stacking direction, 0 ≤ axis < dim.
        dim: 3, or 2 for plane strain.

    Returns:
        α_eff as a Mandel vector, shape (6,) or (3,); its shear components vanish.
    """
    if dim not in (2, 3) or not 0 <= axis < dim:
        raise MaterialError(f"axis = {axis} must lie in 0..{dim - 1} for dim = {dim} (2 or 3)")
    f = _two_phases(fractions, phases, alpha)
    E = np.array([p.E for p in phases])
    nu = np.array([p.nu for p in phases])
    a = np.asarray(alpha, dtype=float)
    if dim == 3:
        M, lateral = E / (1.0 - nu), 2.0 * nu / (1.0 - nu)
    else:
        M, lateral, a = E / (1.0 - nu**2), nu / (1.0 - nu), (1.0 + nu) * a
    e = float(f @ (M * a) / (f @ M))
    out = np.zeros(3 if dim == 2 else 6)
    out[:dim] = e
    out[axis] = float(f @ (a - lateral * (e - a)))
    return out


def _two_phases(
    fractions: Sequence[float], phases: Sequence[IsotropicElastic], alpha: Sequence[float]
) -> np.ndarray:
    f = np.asarray(fractions, dtype=float).reshape(-1)
    if f.size != 2 or len(phases) != 2 or np.size(alpha) != 2:
        raise MaterialError(
            f"two phases needed: got {f.size} fractions, {len(phases)} phases, "
            f"{np.size(alpha)} expansion coefficients"
        )
    if not all(isinstance(p, IsotropicElastic) for p in phases):
        raise MaterialError("both phases must be isotropic (IsotropicElastic)")
    if np.any(f < 0.0) or abs(f.sum() - 1.0) > _FRACTION_TOL or not np.all(np.isfinite(alpha)):
        raise MaterialError(
            f"fractions {f.tolist()} must be >= 0 and sum to 1, alpha {list(alpha)} finite"
        )
    return f


def _bulk(phase: IsotropicElastic, dim: int) -> float:
    """K in 3D; κ = K + μ/3 = λ + μ in plane strain."""
    return phase.bulk_modulus if dim == 3 else phase.plane_strain_bulk_modulus


def _plane_strain_alpha(phases: Sequence[IsotropicElastic], alpha: np.ndarray) -> np.ndarray:
    """In-plane expansion α' = 3Kα/(2κ) = (1 + ν)α of phases held at ε_33 = 0."""
    return np.array([(1.0 + p.nu) * a for p, a in zip(phases, alpha, strict=True)])
