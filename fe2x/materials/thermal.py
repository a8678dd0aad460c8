"""Thermal properties of a phase, validated: its conductivity tensor and its expansion tensor.

Conductivity: Fourier's law q = −k ∇θ with k symmetric positive definite, given as a scalar
(isotropic, k I) or a 3x3 tensor; a 2D cell uses the in-plane block k[:2, :2] (heat does not
flow out of the plane).

Expansion: the free thermal strain per unit temperature change, ε_th = α ΔT, given as a scalar
(isotropic, α I), a symmetric 3x3 tensor or its Mandel vector (11, 22, 33, 23, 13, 12, √2 on
the shears). In a 2D (plane-strain) cell ε_33 = ε_13 = ε_23 = 0 in every phase, so a phase acts
on the plane by its eigenstress (C α)_p (rows 11, 22, 12 of the 3D Mandel vector), the same as
the in-plane eigenstrain α' = C_ps⁻¹ (C α)_p with C_ps the plane-strain stiffness: for an
isotropic phase α' = 3Kα/(2κ) = (1 + ν) α (as :mod:`fe2x.materials.thermoelastic` states).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError
from fe2x.materials.mandel import PLANE_STRAIN_ROWS, plane_strain, tensor_to_mandel

__all__ = [
    "SYMMETRY_RTOL",
    "conductivity_tensor",
    "expansion_mandel",
    "isotropic_value",
    "plane_strain_expansion",
]

SYMMETRY_RTOL = 1e-10
"""Allowed max |k − kᵀ| (|α − αᵀ|) relative to the largest entry."""
_DEFINITENESS_RTOL = 1e-12


def _who(name: str) -> str:
    return f"phase {name!r}" if name else "material"


def _array(value: npt.ArrayLike, what: str, name: str) -> np.ndarray:
    if isinstance(value, bool | str | bytes):
        raise MaterialError(f"{_who(name)}: {what} = {value!r} is not a number or an array")
    try:
        a = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise MaterialError(
            f"{_who(name)}: {what} is not a number or an array of numbers"
        ) from None
    if not np.all(np.isfinite(a)):
        raise MaterialError(f"{_who(name)}: {what} has non-finite entries")
    return a


def _symmetric(t: np.ndarray, what: str, name: str) -> np.ndarray:
    scale = float(np.max(np.abs(t)))
    asymmetry = float(np.max(np.abs(t - t.T)))
    if asymmetry > SYMMETRY_RTOL * scale:
        raise MaterialError(
            f"{_who(name)}: {what} is not symmetric (max |t - t^T| / max |t| = "
            f"{asymmetry / scale:.3g})"
        )
    return 0.5 * (t + t.T)


def conductivity_tensor(k: npt.ArrayLike, dim: int = 3, name: str = "") -> np.ndarray:
    """The (dim, dim) conductivity of a phase: k I for a scalar k > 0, else the SPD tensor.

    Args:
        k: A positive scalar, a symmetric positive definite (3, 3) tensor or, in 2D, (2, 2).
        dim: 2 (the in-plane block of a 3x3 tensor) or 3.
        name: Phase name, for messages.

    Raises:
        MaterialError: Not a number or a tensor of the right shape, not symmetric, not
            positive definite (e.g. a negative scalar).
    """
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 or 3")
    a = _array(k, "conductivity k", name)
    if a.ndim == 0:
        if not a > 0.0:
            raise MaterialError(f"{_who(name)}: conductivity k = {float(a)!r} must be > 0")
        return float(a) * np.eye(dim)
    if a.shape not in ((3, 3), (dim, dim)):
        allowed = "(3, 3)" if dim == 3 else "(3, 3) or (2, 2)"
        raise MaterialError(
            f"{_who(name)}: conductivity k has shape {a.shape}; expected a scalar or {allowed}"
        )
    a = _symmetric(a, "conductivity k", name)
    eigenvalues = np.linalg.eigvalsh(a)
    if not eigenvalues[0] > _DEFINITENESS_RTOL * np.max(np.abs(eigenvalues)):
        raise MaterialError(
            f"{_who(name)}: conductivity k is not positive definite "
            f"(smallest eigenvalue {eigenvalues[0]:.6g}, must be > 0)"
        )
    return a[:dim, :dim].copy()


def expansion_mandel(alpha: npt.ArrayLike, name: str = "") -> np.ndarray:
    """The 3D Mandel vector (6,) of a phase's thermal expansion tensor.

    Args:
        alpha: A scalar (α I), a symmetric (3, 3) tensor or a Mandel (6,) vector.
        name: Phase name, for messages.

    Raises:
        MaterialError: Not a number or a tensor of those shapes, or a non-symmetric tensor.
    """
    a = _array(alpha, "expansion alpha", name)
    if a.ndim == 0:
        return float(a) * np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    if a.shape == (6,):
        return a
    if a.shape == (3, 3):
        return tensor_to_mandel(_symmetric(a, "expansion alpha", name))
    raise MaterialError(
        f"{_who(name)}: expansion alpha has shape {a.shape}; expected a scalar, (3, 3) or "
        "Mandel (6,)"
    )


def plane_strain_expansion(alpha: npt.ArrayLike, C3: npt.ArrayLike) -> np.ndarray:
    """The in-plane eigenstrain α' (Mandel 11, 22, 12) of a phase held at ε_33 = ε_13 = ε_23 = 0.

    α' = C_ps⁻¹ (C α)_p, so that C_ps (ε_p − α') = (C (ε − α))_p for every in-plane strain.

    Args:
        alpha: The 3D expansion as a Mandel (6,) vector (:func:`expansion_mandel`).
        C3: The phase's 3D Mandel stiffness (6, 6).
    """
    C3 = np.asarray(C3, dtype=float)
    eigenstress = (C3 @ np.asarray(alpha, dtype=float))[list(PLANE_STRAIN_ROWS)]
    return np.linalg.solve(plane_strain(C3), eigenstress)


def isotropic_value(t: npt.ArrayLike, rtol: float = 1e-12) -> float | None:
    """The scalar s if the (d, d) tensor t equals s I to ``rtol`` (relative to |s|), else None.

    >>> isotropic_value(2.0 * np.eye(3)), isotropic_value(np.diag([1.0, 2.0]))
    (2.0, None)
    """
    t = np.asarray(t, dtype=float)
    s = float(np.trace(t) / t.shape[0])
    return s if np.max(np.abs(t - s * np.eye(t.shape[0]))) <= rtol * abs(s) else None
