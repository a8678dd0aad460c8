"""Quadrature points of a mesh's owned cells, numbered cell by cell, and functions on them.

Point ``c · n_q + q`` is the q-th point of owned cell c. Stress and tangent fields live in
quadrature spaces of that rule; the same numbering serves the micro and the macro problem, and
:func:`tag_of_cells` gives the cell tag (phase, region) of every point.
"""

from __future__ import annotations

import basix.ufl
import dolfinx
import numpy as np
import ufl
from dolfinx import fem

__all__ = ["QuadratureRule", "tag_of_cells"]


def tag_of_cells(
    cell_tags: dolfinx.mesh.MeshTags | None, n_cells: int, default: int = -1
) -> np.ndarray:
    """The tag value of each of the first ``n_cells`` (owned) cells, ``default`` if untagged.

    ``np.repeat(tag_of_cells(...), n_q)`` is the tag of every quadrature point.
    """
    tags = np.full(n_cells, default, dtype=np.int64)
    if cell_tags is not None:
        keep = cell_tags.indices < n_cells
        tags[cell_tags.indices[keep]] = cell_tags.values[keep]
    return tags


class QuadratureRule:
    """A quadrature rule of ``degree`` on the owned cells of ``mesh``.

    Args:
        mesh: the mesh (its owned cells are those of this rank).
        degree: quadrature degree (see :func:`~fe2x.fem.forms.stiffness_quadrature_degree`).

    Attributes:
        points: reference points ``(n_q, tdim)``; weights: reference weights ``(n_q,)``.
        n_q: points per cell; n_cells: owned cells; n_points: ``n_cells · n_q``.
        cells: the owned cells' local indices (int32), for ``Expression.eval``.
        dx: the cell measure integrating with this rule.
    """

    def __init__(self, mesh: dolfinx.mesh.Mesh, degree: int) -> None:
        self.mesh = mesh
        self.degree = int(degree)
        self._cell_type = mesh.basix_cell()
        element = basix.ufl.quadrature_element(self._cell_type, value_shape=(), degree=degree)
        points, weights = element.custom_quadrature()
        self.points = np.asarray(points, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.n_q = self.points.shape[0]
        self.n_cells = mesh.topology.index_map(mesh.topology.dim).size_local
        self.n_points = self.n_cells * self.n_q
        self.cells = np.arange(self.n_cells, dtype=np.int32)
        self.dx = ufl.Measure(
            "dx",
            domain=mesh,
            metadata={"quadrature_degree": self.degree, "quadrature_scheme": "default"},
        )
        self._point_weights: np.ndarray | None = None

    def function(self, value_shape: tuple[int, ...], name: str) -> fem.Function:
        """A new function in the quadrature space of this rule with the given value shape."""
        element = basix.ufl.quadrature_element(
            self._cell_type, value_shape=value_shape, degree=self.degree
        )
        return fem.Function(fem.functionspace(self.mesh, element), name=name)

    def rows(self, function: fem.Function) -> np.ndarray:
        """The block (row) of each owned point in ``function.x.array.reshape(-1, width)``."""
        return function.function_space.dofmap.list[: self.n_cells].reshape(-1)

    def point_rows(self, function: fem.Function, width: int) -> np.ndarray:
        """``function``'s values at the owned points as an ``(n_points, width)`` array.

        A view into its array when the points are stored in order (the usual case), else a copy.
        """
        rows = self.rows(function)
        blocks = function.x.array.reshape(-1, width)
        if np.array_equal(rows, np.arange(self.n_points)):
            return blocks[: self.n_points]
        return blocks[rows]

    def expression(self, expr: ufl.core.expr.Expr) -> fem.Expression:
        """``expr`` compiled for evaluation at this rule's points."""
        return fem.Expression(expr, self.points)

    def evaluate(self, expression: fem.Expression, width: int) -> np.ndarray:
        """A compiled expression at every owned point, ``(n_points, width)``."""
        return expression.eval(self.mesh, self.cells).reshape(self.n_points, width)

    def point_weights(self) -> np.ndarray:
        """Quadrature weight × |det J| of each owned point (they sum to the owned volume)."""
        if self._point_weights is None:
            # UFL gives Expr its __abs__ at import, where mypy cannot see it
            detJ = self.expression(abs(ufl.JacobianDeterminant(self.mesh)))  # type: ignore[arg-type]
            values = self.evaluate(detJ, 1).reshape(self.n_cells, self.n_q)
            self._point_weights = (values * self.weights[None, :]).reshape(-1)
        return self._point_weights

    def coordinates(self) -> np.ndarray:
        """Physical coordinates of the owned points, ``(n_points, gdim)``."""
        gdim = self.mesh.geometry.dim
        x = self.evaluate(self.expression(ufl.SpatialCoordinate(self.mesh)), gdim)
        return x[:, : self.mesh.topology.dim].copy()

    def point_keys(self) -> np.ndarray:
        """Partition-independent key of each owned point: ``input cell index · n_q + q``."""
        original = np.asarray(self.mesh.topology.original_cell_index[: self.n_cells], np.int64)
        return (original[:, None] * self.n_q + np.arange(self.n_q, dtype=np.int64)).reshape(-1)
