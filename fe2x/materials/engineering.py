"""Engineering constants (E_i, ν_ij, G_ij) of an orthotropic Mandel stiffness in the cell axes.

Conventions: ν_ij = −ε_j/ε_i under uniaxial stress along i, so ν_ij/E_i = ν_ji/E_j; G_ij is the
shear modulus of the (i, j) plane, σ_ij = 2 G_ij ε_ij. Axes 1, 2, 3 are the cell axes x, y, z.

In 2D plane strain (a 3x3 Mandel stiffness, order 11, 22, 12) the 3D constants are not
determined: the out-of-plane terms of the 3D stiffness are missing, and the in-plane compliance
of a plane-strain stiffness mixes E_3 and ν_i3 in. What it does determine is G_12 and the
plane-strain moduli of :func:`plane_strain_constants`.
"""

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError

ORTHOTROPY_TOL = 1e-3
"""Largest allowed coupling |C_IJ|/√(C_II C_JJ) that orthotropy forbids; an unstructured mesh
of an orthotropic cell shows couplings of the order of its discretization error."""

# Mandel index pairs (I, J) that vanish for a stiffness orthotropic in the cell axes.
_FORBIDDEN_3D = tuple([(i, j) for i in range(3) for j in range(3, 6)] + [(3, 4), (3, 5), (4, 5)])
_FORBIDDEN_2D = ((0, 2), (1, 2))
_SHEAR_ROWS = {(1, 2): 3, (0, 2): 4, (0, 1): 5}


class EngineeringConstants(NamedTuple):
    """Young's moduli, Poisson's ratios ν_ij (i < j) and shear moduli of an orthotropic solid."""

    E1: float
    E2: float
    E3: float
    nu12: float
    nu13: float
    nu23: float
    G12: float
    G13: float
    G23: float

    @property
    def nu21(self) -> float:
        """ν_21 = ν_12 E_2/E_1."""
        return self.nu12 * self.E2 / self.E1

    @property
    def nu31(self) -> float:
        """ν_31 = ν_13 E_3/E_1."""
        return self.nu13 * self.E3 / self.E1

    @property
    def nu32(self) -> float:
        """ν_32 = ν_23 E_3/E_2."""
        return self.nu23 * self.E3 / self.E2


class PlaneStrainConstants(NamedTuple):
    """In-plane moduli of a plane-strain stiffness (ε_33 = 0): what a 2D cell determines.

    E1_ps = 1/S'_11 and ν12_ps = −S'_12/S'_11 with S' the inverse of the plane-strain
    stiffness; for an orthotropic 3D solid E1_ps = E_1/(1 − ν_13 ν_31) and
    ν12_ps = (ν_12 + ν_13 ν_32)/(1 − ν_13 ν_31). G12 is the 3D G_12.
    """

    E1_ps: float
    E2_ps: float
    nu12_ps: float
    nu21_ps: float
    G12: float


def orthotropy_defect(C: npt.ArrayLike) -> tuple[float, tuple[int, int]]:
    """Largest coupling |C_IJ|/√(C_II C_JJ) forbidden by orthotropy in the cell axes, and (I, J).

    Forbidden are the normal-shear couplings and the couplings between different shears; the
    measure is invariant to the scale of C. Works on 6x6 and plane-strain 3x3 Mandel matrices.
    """
    C = _stiffness(C)
    d = np.sqrt(np.abs(np.diag(C)))
    pairs = _FORBIDDEN_3D if C.shape[0] == 6 else _FORBIDDEN_2D
    values = [abs(C[i, j]) / (d[i] * d[j]) for i, j in pairs]
    k = int(np.argmax(values))
    return float(values[k]), pairs[k]


def check_orthotropic(C: npt.ArrayLike, tol: float = ORTHOTROPY_TOL) -> None:
    """Raise MaterialError unless C is orthotropic in the cell axes to ``tol``.

    Raises:
        MaterialError: Naming the largest forbidden coupling and its size.
    """
    defect, (i, j) = orthotropy_defect(C)
    if defect > tol:
        raise MaterialError(
            f"C is not orthotropic in the cell axes: coupling |C[{i},{j}]|/sqrt(C[{i},{i}] "
            f"C[{j},{j}]) = {defect:.3g} exceeds tol = {tol:g} (rotate it to its symmetry axes "
            f"or pass a larger tol)"
        )


def engineering_constants(C: npt.ArrayLike, tol: float = ORTHOTROPY_TOL) -> EngineeringConstants:
    """Engineering constants of a 6x6 Mandel stiffness orthotropic in the cell axes.

    From the Mandel compliance S = C⁻¹: E_i = 1/S_ii, ν_ij = −E_i S_ij (i, j ≤ 3), and
    G_ij = 1/(2 S_KK) with K the Mandel row of the shear (ij) (S_KK = 1/(2 G) in Mandel form).

    Args:
        C: Mandel stiffness, shape (6, 6).
        tol: Allowed orthotropy defect (:func:`orthotropy_defect`).

    Raises:
        MaterialError: C is 3x3 (plane strain), not orthotropic, or not positive definite.
    """
    C = _stiffness(C)
    if C.shape == (3, 3):
        raise MaterialError(
            "a plane-strain (3x3) stiffness does not determine the 3D engineering constants "
            "(its out-of-plane terms are missing); use plane_strain_constants for its in-plane "
            "plane-strain moduli"
        )
    check_orthotropic(C, tol)
    S = np.linalg.inv(_positive_definite(C))
    E = 1.0 / np.diag(S)[:3]
    nu = {(i, j): float(-E[i] * S[i, j]) for i, j in ((0, 1), (0, 2), (1, 2))}
    G = {pair: float(1.0 / (2.0 * S[k, k])) for pair, k in _SHEAR_ROWS.items()}
    return EngineeringConstants(
        float(E[0]),
        float(E[1]),
        float(E[2]),
        nu[0, 1],
        nu[0, 2],
        nu[1, 2],
        G[0, 1],
        G[0, 2],
        G[1, 2],
    )


def plane_strain_constants(C: npt.ArrayLike, tol: float = ORTHOTROPY_TOL) -> PlaneStrainConstants:
    """In-plane plane-strain moduli of a 3x3 Mandel stiffness (order 11, 22, 12).

    E_i,ps = 1/S'_ii, ν12_ps = −E1_ps S'_12, ν21_ps = −E2_ps S'_12, G12 = 1/(2 S'_33) with
    S' = C⁻¹; see :class:`PlaneStrainConstants` for their meaning.

    Raises:
        MaterialError: C is not 3x3, not orthotropic in the cell axes, or not positive definite.
    """
    C = _stiffness(C)
    if C.shape != (3, 3):
        raise MaterialError(f"expected a plane-strain (3x3) Mandel stiffness, got {C.shape}")
    check_orthotropic(C, tol)
    S = np.linalg.inv(_positive_definite(C))
    E1, E2 = 1.0 / S[0, 0], 1.0 / S[1, 1]
    return PlaneStrainConstants(
        float(E1), float(E2), float(-E1 * S[0, 1]), float(-E2 * S[0, 1]), float(0.5 / S[2, 2])
    )


def orthotropic_stiffness(constants: EngineeringConstants) -> np.ndarray:
    """The 6x6 Mandel stiffness C = S⁻¹ of orthotropic engineering constants.

    S_ii = 1/E_i, S_ij = −ν_ij/E_i (i < j, symmetric), and 1/(2 G_23), 1/(2 G_13), 1/(2 G_12) on
    the Mandel shear diagonal.

    Raises:
        MaterialError: A modulus is not positive or the constants are not positive definite.
    """
    c = EngineeringConstants(*(float(v) for v in constants))
    moduli = (c.E1, c.E2, c.E3, c.G12, c.G13, c.G23)
    if not all(np.isfinite(v) and v > 0 for v in moduli) or not np.all(np.isfinite(c)):
        raise MaterialError(f"engineering constants must be finite with positive moduli: {c}")
    E = (c.E1, c.E2, c.E3)
    S = np.zeros((6, 6))
    S[:3, :3] = np.diag(1.0 / np.asarray(E))
    for (i, j), nu in zip(((0, 1), (0, 2), (1, 2)), (c.nu12, c.nu13, c.nu23), strict=True):
        S[i, j] = S[j, i] = -nu / E[i]
    for (i, j), G in zip(((0, 1), (0, 2), (1, 2)), (c.G12, c.G13, c.G23), strict=True):
        k = _SHEAR_ROWS[i, j]
        S[k, k] = 0.5 / G
    if np.linalg.eigvalsh(S).min() <= 0:
        raise MaterialError(f"engineering constants are not positive definite: {c}")
    C = np.linalg.inv(S)
    return 0.5 * (C + C.T)


def _stiffness(C: npt.ArrayLike) -> np.ndarray:
    C = np.asarray(C, dtype=float)
    if C.shape not in ((6, 6), (3, 3)):
        raise MaterialError(
            f"expected a 6x6 (3D) or 3x3 (plane strain) Mandel stiffness, got {C.shape}"
        )
    if not np.all(np.isfinite(C)):
        raise MaterialError("the stiffness has non-finite entries")
    return C


def _positive_definite(C: np.ndarray) -> np.ndarray:
    C = 0.5 * (C + C.T)
    if np.linalg.eigvalsh(C).min() <= 0:
        raise MaterialError("the stiffness is not positive definite")
    return C
