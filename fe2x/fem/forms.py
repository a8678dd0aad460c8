"""UFL pieces of small-strain problems: the Mandel strain of a field and the quadrature degree
of the stiffness."""

from __future__ import annotations

import basix
import numpy as np
import ufl

__all__ = ["SQRT2", "mandel_strain", "stiffness_quadrature_degree"]

SQRT2 = float(np.sqrt(2.0))


def mandel_strain(u: ufl.core.expr.Expr, dim: int) -> ufl.core.expr.Expr:
    """Small strain of ``u`` as a Mandel vector: [e11, e22, √2 e12] (2D) or 6 entries (3D)."""
    e = ufl.sym(ufl.grad(u))
    if dim == 2:
        return ufl.as_vector([e[0, 0], e[1, 1], SQRT2 * e[0, 1]])
    return ufl.as_vector(
        [e[0, 0], e[1, 1], e[2, 2], SQRT2 * e[1, 2], SQRT2 * e[0, 2], SQRT2 * e[0, 1]]
    )


def stiffness_quadrature_degree(cell: basix.CellType, degree: int, geometry_degree: int = 1) -> int:
    """Quadrature degree that integrates ∫ ε(v) : C : ε(u) exactly for a constant C.

    Simplices (P_k): the strains are of degree k − 1, so 2 (k − 1), plus 2 (geometry degree − 1)
    for curved cells (at least 1). Quadrilaterals and hexahedra (Q_k): a strain is of degree k
    in some direction, so 2 k; fewer Gauss points per direction would leave zero-energy
    (hourglass) modes, i.e. a singular stiffness.
    """
    tensor = cell in (basix.CellType.quadrilateral, basix.CellType.hexahedron)
    return max(2 * (degree - (0 if tensor else 1)) + 2 * (geometry_degree - 1), 1)
