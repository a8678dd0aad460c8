"""Result files of a loading path: JSON, CSV and a stress–strain plot (PNG)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from fe2x.materials import component_labels, mandel_weights
from fe2x.micro.path import PathResult


def path_summary(result: PathResult, dim: int, stress_controlled: np.ndarray) -> dict[str, object]:
    """The JSON-ready record of a path: per step E, S (Mandel), C and iteration counts."""
    labels = component_labels(dim)
    return {
        "notation": "mandel",
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
                "E": step.E.tolist(),
                "S": step.Sigma.tolist(),
                "C": step.C.tolist(),
                "micro_iterations": step.micro_iterations,
                "control_iterations": step.control_iterations,
                "cutbacks": step.cutbacks,
            }
            for i, step in enumerate(result.steps)
        ],
    }


def path_csv(result: PathResult, dim: int) -> str:
    """One row per step: step, t, E_ij and S_ij (tensor components), iteration counts."""
    labels = component_labels(dim)
    w = mandel_weights(dim)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["step", "t", *(f"E_{c}" for c in labels), *(f"S_{c}" for c in labels), "micro_iterations"]
    )
    for i, step in enumerate(result.steps):
        writer.writerow(
            [
                i + 1,
                f"{step.t:.10g}",
                *(f"{v:.10g}" for v in step.E / w),
                *(f"{v:.10g}" for v in step.Sigma / w),
                step.micro_iterations,
            ]
        )
    return buffer.getvalue()


def plot_path(result: PathResult, dim: int, driven: list[int], png: Path) -> None:
    """Stress against strain (tensor components) for each driven component, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = component_labels(dim)
    w = mandel_weights(dim)
    E = np.array([[0.0] * len(labels)] + [(s.E / w).tolist() for s in result.steps])
    S = np.array([[0.0] * len(labels)] + [(s.Sigma / w).tolist() for s in result.steps])
    fig, axes = plt.subplots(1, len(driven), figsize=(4.5 * len(driven), 3.8), squeeze=False)
    for ax, i in zip(axes[0], driven, strict=True):
        ax.plot(E[:, i], S[:, i], "o-", ms=3)
        ax.set_xlabel(f"E_{labels[i]}")
        ax.set_ylabel(f"Σ_{labels[i]}")
        ax.grid(True, alpha=0.3)
    if not result.completed:
        fig.suptitle("path stopped early: " + result.message[:80], fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
