"""Cross-code regression against FANS: a Neo-Hookean sphere in a 32³ voxel cell in uniaxial
finite stretch.

The cell of FANS's finite-strain example: voxel centres within 0.4 L of the cell centre are the
inclusion (8,744 of 32,768 voxels), compressible Neo-Hookean phases in FANS's form
S = λ ln J C⁻¹ + μ (I − C⁻¹) with matrix K = 62.5, G = 28.8462 and inclusion K = 222.222,
G = 166.667. F̄33 goes from 1 to 2 (FANS: in steps of 0.1) with P̄11 = P̄22 = 0 and the other
components of F̄ fixed at the identity; FANS reports F̄11 = F̄22 = 0.832542244829 and
P̄33 = 74.757449712464 at F̄33 = 2. fe2x solves the same voxels as Q1 hexahedra (one per voxel,
2×2×2 Gauss points, periodic fluctuation) with `fe2x rve-path`'s mixed control, and prints its
numbers and the relative differences. ``--n`` coarsens the image (the same sphere on n³ voxels)
for a quick look; only n = 32 is the FANS case.

    .venv/bin/python benchmarks/fans_sphere.py [--n 32] [--steps 5]
    mpiexec -n 2 .venv/bin/python benchmarks/fans_sphere.py

A 32³ cell has 107,811 dofs, each Newton iteration one MUMPS factorization: measured on
2026-12-02 on 2 ranks, 5 steps, 2,819 s, F̄11 = F̄22 = 0.832542316870 (relative difference to
FANS 8.7e-8) and P̄33 = 74.757472326555 (3.0e-7). The hyperelastic end point does not depend
on the path, so the number of steps only has to let every step converge.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.geometry import voxel_cell
from fe2x.materials.hyperelastic import NeoHookean
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive

FANS = {"F11": 0.832542244829, "F22": 0.832542244829, "P33": 74.757449712464}
MATRIX = NeoHookean.from_bulk_shear(62.5, 28.8462, "matrix")
INCLUSION = NeoHookean.from_bulk_shear(222.222, 166.667, "inclusion")


def sphere_labels(n: int) -> np.ndarray:
    """1 (matrix) or 2 (inclusion) per voxel of an n³ image of the unit cell."""
    centres = (np.arange(n) + 0.5) / n - 0.5
    x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    return np.where(x * x + y * y + z * z <= 0.4**2, 2, 1)


def uniaxial_path(steps: int) -> LoadPath:
    """F33 from 1 to 2; P11 = P22 = 0; the other F components at the identity (row-major)."""
    stress = np.zeros(9, dtype=bool)
    stress[[0, 4]] = True  # P11, P22
    start, end = np.eye(3).reshape(9), np.eye(3).reshape(9)
    end[8] = 2.0
    start[[0, 4]] = end[[0, 4]] = 0.0  # the stress targets
    return LoadPath(np.array([0.0, 1.0]), np.stack([start, end]), stress, steps, "finite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="voxels per edge (32: the FANS case)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fans_sphere.json"))
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    labels = sphere_labels(args.n)
    t0 = time.perf_counter()
    cell = voxel_cell(comm, labels, [1.0, 1.0, 1.0], {1: "matrix", 2: "inclusion"})
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": INCLUSION}, degree=1, stability=False)
    setup = time.perf_counter() - t0
    if comm.rank == 0:
        print(
            f"{args.n}^3 voxels, {int((labels == 2).sum())} inclusion, {rve.n_dofs} dofs, "
            f"set up in {setup:.1f} s",
            flush=True,
        )
    t0 = time.perf_counter()

    def progress(index, step) -> None:
        if comm.rank == 0:
            print(
                f"  F33 = {step.E[8]:.2f}: F11 = {step.E[0]:.12f} F22 = {step.E[4]:.12f} "
                f"P33 = {step.Sigma[8]:.12f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    result = drive(rve, uniaxial_path(args.steps), 28.8462, rtol=1e-10, on_step=progress)
    if not result.completed:
        raise SystemExit(f"the path stopped: {result.message}")
    last = result.steps[-1]
    found = {"F11": last.E[0], "F22": last.E[4], "P33": last.Sigma[8]}
    report = {
        "n": args.n,
        "inclusion_voxels": int((labels == 2).sum()),
        "dofs": rve.n_dofs,
        "seconds": time.perf_counter() - t0,
        "fe2x": found,
        "fans": FANS if args.n == 32 else None,
        "relative_difference": (
            {k: abs(found[k] - FANS[k]) / abs(FANS[k]) for k in FANS} if args.n == 32 else None
        ),
        "path": [(s.E[8], s.E[0], s.E[4], s.Sigma[8]) for s in result.steps],
    }
    if comm.rank == 0:
        for key, value in found.items():
            line = f"{key} = {value:.12f}"
            if args.n == 32:
                line += f"  FANS {FANS[key]:.12f}  relative difference "
                line += f"{report['relative_difference'][key]:.2e}"
            print(line)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
