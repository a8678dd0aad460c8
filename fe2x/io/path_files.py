"""Result files of a loading path: JSON, CSV and a stress–strain plot (PNG)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from fe2x.materials import component_labels, mandel_weights
from fe2x.micro.path import PathResult

__all__ = ["path_csv", "path_labels", "path_summary", "plot_path"]


def path_labels(dim: int, kinematics: str = "small") -> tuple[list[str], np.ndarray, str, str]:
    """Component labels, stored-over-tensor factor of each component, strain and stress names.

    The components are Mandel E and S (small strain), or F and P row-major.

    >>> path_labels(2, "finite")[0], path_labels(2, "finite")[2:]
    (['11', '12', '21', '22'], ('F', 'P'))
    """
    if kinematics == "finite":
        labels = [f"{i + 1}{j + 1}" for i in range(dim) for j in range(dim)]
        return labels, np.ones(dim * dim), "F", "P"
    return component_labels(dim), mandel_weights(dim), "E", "S"


def _diagnostic_names(result: PathResult) -> list[str]:
    return sorted({name for step in result.steps for name in step.diagnostics})


def path_summary(
    result: PathResult, dim: int, stress_controlled: np.ndarray, kinematics: str = "small"
) -> dict[str, Any]:
    """The JSON-ready record of a path: per step its strain, stress, tangent and diagnostics.

    Strain and stress are Mandel (finite strain: F̄ and P̄ row-major); iteration counts are kept
    next to the model's diagnostics.
    """
    labels, _, strain, stress = path_labels(dim, kinematics)
    return {
        "notation": "mandel" if kinematics == "small" else "row-major",
        "kinematics": kinematics,
        "dim": dim,
        "components": labels,
        "control": {
            label: "stress" if s else "strain"
            for label, s in zip(labels, stress_controlled, strict=True)
        },
        "completed": result.completed,
        "message": result.message,
        "steps": [
            {
                "step": i + 1,
                "t": step.t,
                strain: step.E.tolist(),
                stress: step.Sigma.tolist(),
                "C": step.C.tolist(),
                "micro_iterations": step.micro_iterations,
                "control_iterations": step.control_iterations,
                "cutbacks": step.cutbacks,
                **({"diagnostics": dict(step.diagnostics)} if step.diagnostics else {}),
            }
            for i, step in enumerate(result.steps)
        ],
    }


def path_csv(result: PathResult, dim: int, kinematics: str = "small") -> str:
    """One row per step: step, t, strain and stress components, iterations and diagnostics.

    The components are tensor ones, E_ij and S_ij (finite strain: F_ij and P_ij).
    """
    labels, w, strain, stress = path_labels(dim, kinematics)
    diagnostics = _diagnostic_names(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "step",
            "t",
            *(f"{strain}_{c}" for c in labels),
            *(f"{stress}_{c}" for c in labels),
            "micro_iterations",
            *diagnostics,
        ]
    )
    for i, step in enumerate(result.steps):
        writer.writerow(
            [
                i + 1,
                f"{step.t:.10g}",
                *(f"{v:.10g}" for v in step.E / w),
                *(f"{v:.10g}" for v in step.Sigma / w),
                step.micro_iterations,
                *(f"{step.diagnostics.get(name, np.nan):.10g}" for name in diagnostics),
            ]
        )
    return buffer.getvalue()


def plot_path(
    result: PathResult, dim: int, driven: list[int], png: Path, kinematics: str = "small"
) -> None:
    """Stress against strain (tensor components) for each driven component, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, w, strain, stress = path_labels(dim, kinematics)
    start = np.eye(dim).reshape(-1) if kinematics == "finite" else np.zeros(len(labels))
    E = np.array([start.tolist()] + [(s.E / w).tolist() for s in result.steps])
    S = np.array([[0.0] * len(labels)] + [(s.Sigma / w).tolist() for s in result.steps])
    fig, axes = plt.subplots(1, len(driven), figsize=(4.5 * len(driven), 3.8), squeeze=False)
    for ax, i in zip(axes[0], driven, strict=True):
        ax.plot(E[:, i], S[:, i], "o-", ms=3)
        ax.set_xlabel(f"{strain}_{labels[i]}")
        ax.set_ylabel(f"{'Σ' if stress == 'S' else 'P'}_{labels[i]}")
        ax.grid(True, alpha=0.3)
    if not result.completed:
        fig.suptitle("path stopped early: " + result.message[:80], fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
