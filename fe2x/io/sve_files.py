"""Result files of an SVE study: sve.json, one CSV per size and PNG plots, written by rank 0."""

from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.io.results import write_json, write_on_root
from fe2x.materials import component_labels
from fe2x.sve.ensemble import PROPERTIES, SVEResult

__all__ = [
    "plot_property_vs_size",
    "plot_variance_decay",
    "size_csv",
    "size_label",
    "write_sve_results",
]

_LABELS = {"periodic": "PBC", "kubc": "KUBC", "subc": "SUBC"}
_NAMES = {"bulk": "bulk modulus", "shear": "shear modulus", "C1111": "C₁₁₁₁"}


def _size_axis(result: SVEResult) -> str:
    """The label of the size axis: the cell edge over the study's length unit."""
    unit = "inclusion diameter" if result.settings.microstructure == "inclusions" else "grain size"
    return f"cell edge L / {unit}"


def size_label(size: float) -> str:
    """File-name label of a size: ``4`` for 4.0, ``2.5`` for 2.5.

    >>> size_label(4.0), size_label(2.5)
    ('4', '2.5')
    """
    return f"{size:g}"


def size_csv(result: SVEResult, size_index: int) -> str:
    """One row per (realization, bc): realization, seed, bc, bulk, shear, Mandel C_ij (i ≤ j)."""
    dim = result.settings.dim
    labels = component_labels(dim)
    n = len(labels)
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "realization",
            "seed",
            "bc",
            *PROPERTIES,
            *(f"C_{labels[i]}_{labels[j]}" for i, j in pairs),
        ]
    )
    for r in result.at_size(size_index):
        for bc in result.settings.bcs:
            writer.writerow(
                [
                    r.realization,
                    r.seed,
                    bc,
                    *(f"{r.property(bc, p):.12g}" for p in PROPERTIES),
                    *(f"{r.C[bc][i, j]:.12g}" for i, j in pairs),
                ]
            )
    return buffer.getvalue()


def plot_property_vs_size(result: SVEResult, png: Path) -> None:
    """Mean of each property against size with confidence-interval error bars, one line per BC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.array(result.settings.sizes)
    fig, axes = plt.subplots(1, len(PROPERTIES), figsize=(4.4 * len(PROPERTIES), 3.8))
    for ax, name in zip(np.atleast_1d(axes), PROPERTIES, strict=True):
        for bc in result.settings.bcs:
            st = result.statistics[bc][name]
            mean = np.array([s.mean for s in st])
            half = np.array([s.ci_high - s.mean for s in st])
            ax.errorbar(
                sizes, mean, yerr=np.nan_to_num(half), fmt="o-", capsize=3, label=_LABELS[bc]
            )
        ax.set_xlabel(_size_axis(result))
        ax.set_ylabel(f"apparent {_NAMES[name]}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"mean and {100 * result.settings.confidence:g} % CI", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def plot_variance_decay(result: SVEResult, png: Path) -> None:
    """Sample variance against size on log–log axes, with the fitted power law per BC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.array(result.settings.sizes)
    fig, axes = plt.subplots(1, len(PROPERTIES), figsize=(4.4 * len(PROPERTIES), 3.8))
    for ax, name in zip(np.atleast_1d(axes), PROPERTIES, strict=True):
        for k, bc in enumerate(result.settings.bcs):
            color = f"C{k}"
            var = result.variances(bc, name)
            ok = np.isfinite(var) & (var > 0)
            ax.loglog(sizes[ok], var[ok], "o", color=color, label=_LABELS[bc])
            fit = result.decay[bc][name]
            if fit is not None:
                x = np.geomspace(sizes[ok].min(), sizes[ok].max(), 20)
                ax.loglog(
                    x, fit(x), "-", color=color, label=f"{_LABELS[bc]} slope {fit.exponent:.2f}"
                )
        ax.set_xticks(sizes, [size_label(s) for s in sizes], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlabel(_size_axis(result))
        ax.set_ylabel(f"variance of {_NAMES[name]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"expected slope ≈ −{result.settings.dim} (short-range correlation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def write_sve_results(comm: MPI.Comm, directory: str | Path, result: SVEResult) -> list[Path]:
    """Collective: write ``sve.json``, ``sve_L<size>.csv`` per size and the two PNG plots.

    Files go to ``directory`` atomically through rank 0; returns their paths (on every rank).
    """
    directory = Path(directory)
    paths = [directory / "sve.json"]
    write_json(comm, paths[0], result.to_dict())
    for i, size in enumerate(result.settings.sizes):
        path = directory / f"sve_L{size_label(size)}.csv"
        text = size_csv(result, i) if comm.rank == 0 else ""
        write_on_root(comm, path, partial(Path.write_text, data=text))
        paths.append(path)
    plots = {
        "sve_property_vs_size.png": plot_property_vs_size,
        "sve_variance_decay.png": plot_variance_decay,
    }
    for filename, plot in plots.items():
        path = directory / filename
        write_on_root(comm, path, partial(plot, result))
        paths.append(path)
    return paths
