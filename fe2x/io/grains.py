"""Per-grain result files of polycrystal cells: a CSV table of the grains and pole figures.

The CSV holds each grain's orientation and volume fraction; the pole figures are PNG images.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem

from fe2x.io.results import write_on_root
from fe2x.materials.orientations import euler_to_matrix

__all__ = ["GrainTable", "grain_table", "orientations_csv", "plot_pole_figures", "write_grains"]

_EULER = ("phi1", "Phi", "phi2")
#: The pole families of cubic crystals drawn by :func:`plot_pole_figures`.
CUBIC_POLES = ((1, 0, 0), (1, 1, 0), (1, 1, 1))


class GrainTable(NamedTuple):
    """The grains of a cell.

    Attributes:
        grain: grain ids ``(n,)``.
        euler: Bunge Euler angles φ1, Φ, φ2 in degrees ``(n, 3)`` (crystal -> sample).
        volume_fraction: each grain's share of the cell volume ``(n,)``.
    """

    grain: np.ndarray
    euler: np.ndarray
    volume_fraction: np.ndarray


def grain_table(fields: Mapping[str, fem.Function]) -> GrainTable | None:
    """The grains of the DG0 fields ``grain``, ``phi1``, ``Phi``, ``phi2``, on every rank.

    The fields are those written by :func:`fe2x.micro.cell_fields.cell_data_fields`; cells with
    a negative grain id are no grain. None without these fields. Collective over the fields'
    mesh.
    """
    if not all(name in fields for name in ("grain", *_EULER)):
        return None
    space = fields["grain"].function_space
    mesh = space.mesh
    n_owned = mesh.topology.index_map(mesh.topology.dim).size_local
    dofs = space.dofmap.list[:n_owned, 0]
    volume = fem.assemble_vector(fem.form(ufl.TestFunction(space) * ufl.dx(mesh))).array[dofs]
    grain = np.rint(fields["grain"].x.array[dofs]).astype(np.int64)
    euler = np.column_stack([fields[name].x.array[dofs] for name in _EULER])
    inside = grain >= 0
    n = mesh.comm.allreduce(int(grain.max(initial=-1)), op=MPI.MAX) + 1
    volumes = np.bincount(grain[inside], weights=volume[inside], minlength=n)
    angles = np.full((n, 3), -np.inf)
    angles[grain[inside]] = euler[inside]  # the same angles in every cell of a grain
    mesh.comm.Allreduce(MPI.IN_PLACE, volumes, op=MPI.SUM)
    mesh.comm.Allreduce(MPI.IN_PLACE, angles, op=MPI.MAX)
    total = mesh.comm.allreduce(float(volume.sum()), op=MPI.SUM)
    held = np.flatnonzero(volumes > 0)
    return GrainTable(held, angles[held], volumes[held] / total)


def orientations_csv(table: GrainTable) -> str:
    """One row per grain: ``grain, phi1, Phi, phi2`` (Bunge, degrees), ``volume_fraction``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["grain", *_EULER, "volume_fraction"])
    for g, e, f in zip(table.grain, table.euler, table.volume_fraction, strict=True):
        writer.writerow([int(g), *(f"{v:.10g}" for v in e), f"{f:.10g}"])
    return buffer.getvalue()


def stereographic(directions: np.ndarray) -> np.ndarray:
    """Upper-hemisphere stereographic projection ``(m, 2)`` of unit vectors ``(m, 3)``.

    ``(x, y) / (1 + z)``, after turning lower-hemisphere poles to ``-v`` (a pole is an axis).

    >>> stereographic(np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])).round(12)
    array([[-0., -0.],
           [ 1.,  0.]])
    """
    v = directions / np.linalg.norm(directions, axis=1)[:, None]
    v = np.where(v[:, 2:] < 0.0, -v, v)
    return v[:, :2] / (1.0 + v[:, 2:])


def cubic_equivalents(pole: Sequence[int]) -> np.ndarray:
    """The distinct crystal directions ``(m, 3)`` of a cubic pole family {hkl}, one per axis.

    A direction and its opposite, ±v, are one axis and counted once.
    """
    family = set()
    for perm in itertools.permutations(pole):
        for signs in itertools.product((1, -1), repeat=3):
            v = tuple(s * p for s, p in zip(signs, perm, strict=True))
            family.add(max(v, tuple(-x for x in v)))
    return np.array(sorted(family), dtype=float)


def plot_pole_figures(
    table: GrainTable, png: Path, poles: Sequence[Sequence[int]] = CUBIC_POLES
) -> None:
    """Plot the pole figures of the grains to ``png``, one per {hkl} family of ``poles``.

    Each family is rotated into the sample frame and projected stereographically onto the
    sample x–y plane (z, i.e. sample 3, at the centre); marker area is proportional to the
    grain's volume.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    R = euler_to_matrix(table.euler, degrees=True).reshape(-1, 3, 3)
    size = 60.0 * table.grain.size * table.volume_fraction  # 60 for a grain of mean size
    fig, axes = plt.subplots(1, len(poles), figsize=(3.6 * len(poles), 3.8), squeeze=False)
    circle = np.linspace(0.0, 2.0 * np.pi, 200)
    for ax, pole in zip(axes[0], poles, strict=True):
        family = cubic_equivalents(pole)
        sample = np.einsum("gij,mj->gmi", R, family).reshape(-1, 3)
        xy = stereographic(sample)
        ax.scatter(xy[:, 0], xy[:, 1], s=np.repeat(size, family.shape[0]), alpha=0.5, lw=0)
        ax.plot(np.cos(circle), np.sin(circle), "k-", lw=0.8)
        ax.set_title("{" + "".join(map(str, pole)) + "}")
        ax.set_aspect("equal")
        ax.set_xlim(-1.08, 1.08)
        ax.set_ylim(-1.08, 1.08)
        ax.axis("off")
        ax.text(1.02, 0.0, "x", va="center")
        ax.text(0.0, 1.02, "y", ha="center")
    fig.suptitle(f"pole figures of {table.grain.size} grains (upper hemisphere, z at centre)")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def write_grains(fields: Mapping[str, fem.Function], directory: Path, stem: str = "") -> list[Path]:
    """Write ``<stem>grains.csv`` and ``<stem>pole_figures.png`` when the fields hold grains.

    The CSV is :func:`orientations_csv`. Collective over the fields' mesh.

    Returns:
        The paths written, none when the fields hold no grains.
    """
    table = grain_table(fields)
    if table is None:
        return []
    comm = fields["grain"].function_space.mesh.comm
    csv_path = directory / f"{stem}grains.csv"
    png_path = directory / f"{stem}pole_figures.png"
    write_on_root(comm, csv_path, lambda tmp: tmp.write_text(orientations_csv(table)))
    write_on_root(comm, png_path, lambda tmp: plot_pole_figures(table, tmp))
    return [csv_path, png_path]
