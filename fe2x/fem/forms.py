"""UFL pieces of the micro and macro problems: the strain measure and the stiffness's degree.

The strain measure of a field by kinematics (Mandel small strain, or the row-major displacement
gradient) and the quadrature degree of the stiffness.
"""

from __future__ import annotations

import basix
import numpy as np
import ufl

from fe2x.materials.law import KINEMATICS

__all__ = [
    "SQRT2",
    "gradient_vector",
    "mandel_strain",
    "measure_identity",
    "measure_size",
    "stiffness_quadrature_degree",
    "strain_measure",
]

SQRT2 = float(np.sqrt(2.0))


def mandel_strain(u: ufl.core.expr.Expr, dim: int) -> ufl.core.expr.Expr:
    """Small strain of ``u`` as a Mandel vector: [e11, e22, √2 e12] (2D) or 6 entries (3D)."""
    e = ufl.sym(ufl.grad(u))
    if dim == 2:
        return ufl.as_vector([e[0, 0], e[1, 1], SQRT2 * e[0, 1]])
    return ufl.as_vector(
        [e[0, 0], e[1, 1], e[2, 2], SQRT2 * e[1, 2], SQRT2 * e[0, 2], SQRT2 * e[0, 1]]
    )


def gradient_vector(u: ufl.core.expr.Expr, dim: int) -> ufl.core.expr.Expr:
    """The displacement gradient ``H = ∇u``, ``H_iJ = ∂u_i/∂X_J``, flattened row-major.

    [H11, H12, H21, H22] (2D) or 9 entries (3D).
    """
    H = ufl.grad(u)
    return ufl.as_vector([H[i, j] for i in range(dim) for j in range(dim)])


def strain_measure(u: ufl.core.expr.Expr, dim: int, kinematics: str) -> ufl.core.expr.Expr:
    """The strain measure the laws of ``kinematics`` are driven by, linear in ``u``.

    The Mandel small strain (``"small"``) or the row-major displacement gradient (``"finite"``,
    where ``F = I + ∇u``).
    """
    if kinematics not in KINEMATICS:
        raise ValueError(f"unknown kinematics {kinematics!r}; allowed: {KINEMATICS}")
    return mandel_strain(u, dim) if kinematics == "small" else gradient_vector(u, dim)


def measure_size(dim: int, kinematics: str) -> int:
    """Entries of the strain measure: 3/6 (small, Mandel) or 4/9 (finite, row-major).

    >>> [measure_size(d, k) for k in ("small", "finite") for d in (2, 3)]
    [3, 6, 4, 9]
    """
    if kinematics not in KINEMATICS:
        raise ValueError(f"unknown kinematics {kinematics!r}; allowed: {KINEMATICS}")
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 or 3")
    return (3 if dim == 2 else 6) if kinematics == "small" else dim * dim


def measure_identity(dim: int, kinematics: str) -> np.ndarray:
    """The undeformed value of the measure a law receives.

    0 (small strain) or the identity ``F = I`` flattened row-major (finite).

    >>> measure_identity(2, "finite").tolist()
    [1.0, 0.0, 0.0, 1.0]
    """
    n = measure_size(dim, kinematics)
    return np.zeros(n) if kinematics == "small" else np.eye(dim).reshape(n)


def stiffness_quadrature_degree(cell: basix.CellType, degree: int, geometry_degree: int = 1) -> int:
    """Quadrature degree that integrates ∫ ε(v) : C : ε(u) exactly for a constant C.

    Simplices (P_k): the strains are of degree k − 1, so 2 (k − 1), plus 2 (geometry degree − 1)
    for curved cells (at least 1). Quadrilaterals and hexahedra (Q_k): a strain is of degree k
    in some direction, so 2 k; fewer Gauss points per direction would leave zero-energy
    (hourglass) modes, i.e. a singular stiffness.
    """
    tensor = cell in (basix.CellType.quadrilateral, basix.CellType.hexahedron)
    return max(2 * (degree - (0 if tensor else 1)) + 2 * (geometry_degree - 1), 1)
