"""Result files of an FE² run: load history (CSV), load–displacement plot, macro fields (VTX)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from dolfinx import fem

from fe2x.io.vtx import FieldFile


def history_csv(header: list[str], rows: list[list[float]]) -> str:
    """The load history as CSV text: one row per converged step."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[f"{v:.10g}" if isinstance(v, float) else v for v in row] for row in rows])
    return buffer.getvalue()


def plot_load_displacement(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], xlabel: str, png: Path
) -> None:
    """One line per loaded boundary: reaction force against prescribed displacement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    for label, (x, y) in curves.items():
        ax.plot(x, y, "o-", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("reaction force")
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


class MacroFieldWriter:
    """Writes the displacement and per-cell macro quantities at each converged step (VTX).

    Quadrature-point quantities are shown per cell as the mean over the cell's points:
    strain and stress (Mandel), micro Newton iterations, the fraction of points whose RVE was
    solved rather than answered by the elastic shortcut, the scale-separation indicator, loss
    of ellipticity, and each diagnostic the micro models report (``rve_<name>``, e.g.
    ``rve_equivalent_plastic_strain``).

    Args:
        u: the macro displacement.
        points_per_cell: quadrature points per cell (owned points are numbered cell by cell).
        n_strain: Mandel components of strain and stress.
        diagnostic_names: the names of the micro models' diagnostics.
        directory: where the ``.bp`` folders go.
    """

    def __init__(
        self,
        u: fem.Function,
        points_per_cell: int,
        n_strain: int,
        diagnostic_names: Sequence[str],
        directory: Path,
    ) -> None:
        mesh = u.function_space.mesh
        self.points_per_cell = points_per_cell
        W = fem.functionspace(mesh, ("DG", 0, (n_strain,)))
        S = fem.functionspace(mesh, ("DG", 0))
        self.fields = {
            "macro_strain": fem.Function(W, name="macro_strain"),
            "macro_stress": fem.Function(W, name="macro_stress"),
            **{f"rve_{name}": fem.Function(S, name=f"rve_{name}") for name in diagnostic_names},
            "rve_newton_iterations": fem.Function(S, name="rve_newton_iterations"),
            "rve_solved": fem.Function(S, name="rve_solved"),
            "scale_separation_indicator": fem.Function(S, name="scale_separation_indicator"),
            "ellipticity_lost": fem.Function(S, name="ellipticity_lost"),
        }
        directory.mkdir(parents=True, exist_ok=True)
        self._u_writer = FieldFile(mesh.comm, directory / "displacement.bp", [u])
        self._cell_writer = FieldFile(
            mesh.comm, directory / "macro_points.bp", list(self.fields.values())
        )

    def _cell_mean(self, values: np.ndarray, target: fem.Function) -> None:
        nq = self.points_per_cell
        n_cells = values.shape[0] // nq
        width = int(np.prod(values.shape[1:]))
        means = values.reshape(n_cells, nq, width).mean(axis=1)
        blocks = target.function_space.dofmap.list[:n_cells, 0]
        target.x.array.reshape(-1, width)[blocks] = means
        target.x.scatter_forward()

    def write(self, t: float, point_values: Mapping[str, np.ndarray]) -> None:
        """Write step ``t`` of the fields.

        ``point_values`` maps each field name of :attr:`fields` to its values at the owned points
        (``(n_points,)`` or ``(n_points, n)``).
        """
        for name, target in self.fields.items():
            values = np.asarray(point_values[name], dtype=float)
            self._cell_mean(values if values.ndim == 2 else values[:, None], target)
        self._u_writer.write(t)
        self._cell_writer.write(t)

    def close(self) -> None:
        """Close the files."""
        self._u_writer.close()
        self._cell_writer.close()
