"""UFL building blocks of the micro problem: Mandel strain vectors and phase-wise measures."""

from __future__ import annotations

import numpy as np
import ufl

SQRT2 = float(np.sqrt(2.0))


def mandel_strain(u: ufl.core.expr.Expr, dim: int) -> ufl.core.expr.Expr:
    """Small strain of ``u`` as a Mandel vector: [e11, e22, √2 e12] (2D) or 6 entries (3D)."""
    e = ufl.sym(ufl.grad(u))
    if dim == 2:
        return ufl.as_vector([e[0, 0], e[1, 1], SQRT2 * e[0, 1]])
    return ufl.as_vector(
        [e[0, 0], e[1, 1], e[2, 2], SQRT2 * e[1, 2], SQRT2 * e[0, 2], SQRT2 * e[0, 1]]
    )
