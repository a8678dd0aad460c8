"""Result files of an FE² run: load history (CSV), load–displacement plot, macro fields (VTX)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from dolfinx import fem
from dolfinx.io import VTXWriter

from fe2x.macro.problem import MacroProblem


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
    strain and stress (Mandel), the RVE average of the equivalent plastic strain, micro Newton
    iterations, and the fraction of points whose RVE was solved rather than answered by the
    elastic shortcut.
    """

    def __init__(self, problem: MacroProblem, directory: Path) -> None:
        self.problem = problem
        mesh = problem.mesh
        n = problem.n_strain
        W = fem.functionspace(mesh, ("DG", 0, (n,)))
        S = fem.functionspace(mesh, ("DG", 0))
        self.strain = fem.Function(W, name="macro_strain")
        self.stress = fem.Function(W, name="macro_stress")
        self.iterations = fem.Function(S, name="rve_newton_iterations")
        self.solved = fem.Function(S, name="rve_solved")
        self.plastic = fem.Function(S, name="rve_equivalent_plastic_strain")
        self.separation = fem.Function(S, name="scale_separation_indicator")
        self.ellipticity = fem.Function(S, name="ellipticity_lost")
        directory.mkdir(parents=True, exist_ok=True)
        self._u_writer = VTXWriter(mesh.comm, directory / "displacement.bp", [problem.u], "BP4")
        self._cell_writer = VTXWriter(
            mesh.comm,
            directory / "macro_points.bp",
            [
                self.strain,
                self.stress,
                self.plastic,
                self.iterations,
                self.solved,
                self.separation,
                self.ellipticity,
            ],
            "BP4",
        )

    def _cell_mean(self, values: np.ndarray, target: fem.Function) -> None:
        nq = self.problem.points_per_cell
        n_cells = self.problem.n_points // nq
        width = int(np.prod(values.shape[1:]))
        means = values.reshape(n_cells, nq, width).mean(axis=1)
        blocks = target.function_space.dofmap.list[:n_cells, 0]
        target.x.array.reshape(-1, width)[blocks] = means
        target.x.scatter_forward()

    def write(
        self,
        t: float,
        iterations: np.ndarray,
        solved: np.ndarray,
        plastic: np.ndarray,
        separation: np.ndarray,
        ellipticity_lost: np.ndarray,
    ) -> None:
        """Write step ``t``; the arrays hold one value per owned point."""
        self._cell_mean(self.problem.strains(), self.strain)
        self._cell_mean(self.problem.stresses(), self.stress)
        self._cell_mean(iterations.astype(float)[:, None], self.iterations)
        self._cell_mean(solved.astype(float)[:, None], self.solved)
        self._cell_mean(plastic[:, None], self.plastic)
        self._cell_mean(separation[:, None], self.separation)
        self._cell_mean(ellipticity_lost.astype(float)[:, None], self.ellipticity)
        self._u_writer.write(t)
        self._cell_writer.write(t)

    def close(self) -> None:
        self._u_writer.close()
        self._cell_writer.close()
