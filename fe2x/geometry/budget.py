"""A cap on the size of the meshes fe2x builds, checked before meshing.

A mistyped mesh size (1e-6 for 1e-2) must fail at once with the estimate, not mesh for minutes
into gigabytes.
"""

from __future__ import annotations

import math
import os

from fe2x.errors import GeometryError

__all__ = ["DEFAULT_MAX_ELEMENTS", "check_element_budget", "estimated_elements", "max_elements"]

#: The default cap on the estimated element count of one mesh (a few GB at P2 in 3D).
DEFAULT_MAX_ELEMENTS = 5_000_000

#: Elements per h^d of volume for a mesh of size h: a triangle of edge h covers √3/4 h², a
#: regular-ish tetrahedron about h³/(6√2); graded meshes (finer near holes, inclusions) need
#: a few times more, which the factor 2 allows for.
_DENSITY = {2: 2.0 * 4.0 / math.sqrt(3.0), 3: 2.0 * 6.0 * math.sqrt(2.0)}


def max_elements() -> int:
    """The cap: ``FE2X_MAX_ELEMENTS`` from the environment, else :data:`DEFAULT_MAX_ELEMENTS`."""
    text = os.environ.get("FE2X_MAX_ELEMENTS", "")
    try:
        value = int(float(text)) if text else DEFAULT_MAX_ELEMENTS
    except ValueError:
        raise GeometryError(f"FE2X_MAX_ELEMENTS = {text!r} is not a number") from None
    return max(value, 1)


def estimated_elements(volume: float, dim: int, mesh_size: float) -> float:
    """About how many simplices of size ``mesh_size`` fill ``volume`` (area in 2D).

    >>> round(estimated_elements(1.0, 2, 0.1))
    462
    """
    return _DENSITY[dim] * volume / mesh_size**dim


def check_element_budget(volume: float, dim: int, mesh_size: float, what: str) -> None:
    """Raise a GeometryError before meshing ``what`` if its estimated size exceeds the cap."""
    estimate = estimated_elements(volume, dim, mesh_size)
    limit = max_elements()
    if estimate > limit:
        raise GeometryError(
            f"{what}: mesh_size = {mesh_size:g} would make about {estimate:.3g} elements, more "
            f"than the limit of {limit:.3g}; raise mesh_size, or the limit with "
            "FE2X_MAX_ELEMENTS"
        )
