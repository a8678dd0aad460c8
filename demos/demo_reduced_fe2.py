# # FE² with a reduced-order RVE and a certified fallback
#
# Nearly all the time of an FE² run goes into RVE solves, and most of them look alike. A
# reduced RVE replaces the finite element solve of the cell by a handful of unknowns: the
# fluctuation is sought in the span of a few POD modes of training snapshots (Galerkin
# projection), and the laws are evaluated only at the points of an empirical cubature (ECM)
# that integrates the training integrands. After each reduced answer an error indicator
# estimates the error of Σ; above the tolerance the point is answered by the full RVE instead.
# The demo
#
# - trains: drives the RVE of `demos/plate_with_hole.toml` along sampled macro strain paths
#   ({py:func}`fe2x.jobs.sample.run_sample`, the same as `fe2x sample`),
# - reduces: builds the basis and cubature ({py:func}`fe2x.jobs.reduce.run_reduce`, as
#   `fe2x reduce`), which reports the POD energy captured and the cubature's error,
# - runs the plate-with-hole FE² with the full and with the reduced RVE and plots both
#   load–displacement curves and where the fallback fired.
#
# Run it serially or in parallel; `--coarse` (or `FE2X_DEMO_COARSE=1`) uses a coarser macro
# mesh and fewer load steps, `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the results go:
#
# ```sh
# mpiexec -n 2 python demos/demo_reduced_fe2.py
# python demos/demo_reduced_fe2.py --coarse
# ```

# +
import argparse
import csv
import json
import os
import re
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import read_run_config
from fe2x.config.rom_tables import read_sample_config
from fe2x.jobs import run_fe2
from fe2x.jobs.reduce import run_reduce
from fe2x.jobs.sample import run_sample

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse macro mesh, few steps (tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
out = (Path(args.out) / "reduced_fe2").resolve()
plate = (Path(__file__).resolve().parent / "plate_with_hole.toml").read_text()
if comm.rank == 0:
    out.mkdir(parents=True, exist_ok=True)
# -

# ## Training: the RVE alone along sampled strain paths
#
# The training set needs no macro problem. `[sample]` drives the plate's RVE (the
# `[micro.composite.*]` tables, as a cell config of their own) along 24 paths 0 → A d → 0 in
# directions d spread by a scrambled Sobol' sequence on the unit sphere of strains and with
# amplitudes A up to 4 % (‖E‖, above the plate's macro strains), 8 steps each. Every
# converged step is a record: E, Σ, C, the averaged plastic strain and the fluctuation field.
# The paths are dealt out to groups of ranks like the SVEs of `fe2x sve`.

# +
lines, keep = [], False
for line in plate.splitlines():
    header = re.match(r"\s*\[(.*)\]\s*$", line)
    if header:
        keep = header.group(1).startswith("micro.composite.")
        line = "[" + header.group(1).removeprefix("micro.composite.") + "]" if keep else line
    if keep:
        lines.append(line)
rve_config = out / "rve.toml"
if comm.rank == 0:
    rve_config.write_text(
        "\n".join(lines)
        + "\n[sample]\npaths = 24\nsteps = 8\nmax_strain = 0.04\n"
        + "[reduce]\nmodes = 16\ncubature_tolerance = 0.01\n"
    )
comm.barrier()
t0 = time.perf_counter()
run_sample(read_sample_config(rve_config, "sample"), out / "offline", comm)
t_sample = time.perf_counter() - t0
# -

# ## Reduction: POD basis, empirical cubature, calibrated indicator
#
# `[reduce]` keeps 16 modes: the 3 elastic correctors (so elastic answers are exact) and 13 POD
# modes of the rest of the snapshots in the energy inner product Pᵀ K_el P. The cubature
# integrates the reduced residual's integrands (B Φ_j)ᵀ σ of every training snapshot (replayed
# from the stored fluctuations) to 1 %, with positive weights. The indicator's effectivity κ is
# calibrated against full solves along the training paths, and the basis file records the RVE
# it was built for (mesh, phases, laws): another RVE refuses it.

# +
t0 = time.perf_counter()
report = run_reduce(read_sample_config(rve_config, "reduce"), out / "offline", comm)
t_reduce = time.perf_counter() - t0
basis = out / "offline" / "basis.h5"
if comm.rank == 0:
    print(
        f"offline: sample {t_sample:.1f} s, reduce {t_reduce:.1f} s; {report['modes']} modes "
        f"capture {100 * report['energy_captured']:.4f} % of the snapshot energy; "
        f"{report['cubature_points']} of {report['quadrature_points']} quadrature points, "
        f"training integrands to {report['training_integration_error']:.2e}; "
        f"effectivity {report['effectivity']:.2f}"
    )
# -

# ## Full and reduced FE² of the plate
#
# The same job twice: with the RVE of the config, and with `model = "reduced"` naming the basis
# (fallback tolerance 1 % on the estimated relative error of Σ, and beyond the training
# range of ‖E‖).

# +
if coarse:
    plate = re.sub(r"(?m)^mesh_size = 4.0e-3", "mesh_size = 8.0e-3", plate)
    plate = re.sub(r"(?m)^steps = 5", "steps = 3", plate)
runs = {}
for name, text in (
    ("full", plate),
    (
        "reduced",
        plate.replace(
            "[micro.composite]\n", f"[micro.composite]\nmodel = \"reduced\"\nbasis = '{basis}'\n"
        ),
    ),
):
    config = out / f"{name}.toml"
    if comm.rank == 0:
        config.write_text(text + "\n[output]\nfields = false\n")
    comm.barrier()
    t0 = time.perf_counter()
    run_fe2(read_run_config(config), out / name, comm)
    runs[name] = time.perf_counter() - t0


def curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    with open(out / name / "history.csv") as f:
        rows = list(csv.DictReader(f))
    return (
        np.array([0.0] + [float(r["u_right_x"]) for r in rows]),
        np.array([0.0] + [float(r["F_right_x"]) for r in rows]),
    )


(u, f_full), (_, f_reduced) = curve("full"), curve("reduced")
summary = json.loads((out / "reduced" / "summary.json").read_text())
rom = summary["reduced_models"]
error = np.abs(f_reduced - f_full).max() / np.abs(f_full).max()
if comm.rank == 0:
    print(f"wall time: full {runs['full']:.1f} s, reduced {runs['reduced']:.1f} s")
    print(" step  evaluations  reduced  fallbacks  max indicator")
    for s in rom["steps"]:
        print(
            f" {s['step']:4d}  {s['evaluations']:11d}  {s['reduced']:7d}  {s['fallbacks']:9d}"
            f"  {s['max_indicator']:.2e}"
        )
    print(f"largest force difference: {100 * error:.3f} % of the largest force")
# -

# The reduced curve lies on the full one (the test suite asserts 1 % on the coarse plate, and
# the same macro Newton iterations where nothing fell back); in the coarse run 3 of 503
# evaluations, at one point in the last step, have an estimated error above 1 % and are
# answered by the full RVE. On this small RVE (one fibre, P1, 168 quadrature points) the
# cubature keeps most of the points and the indicator updates the laws at all of them, so the
# reduced run is less than 2 times faster; on a finer cell (976 points, 221 cubature points)
# about 10 times, and on a 3D cell of 8,192 points with 24 modes about 40 times:
# `benchmarks/rom.py` measures it.
#
# ## A figure
#
# Left: the load–displacement curves. Right: the macro quadrature points where the full RVE
# gave the final answer of a step (`rom_fallbacks.csv`), coloured by step.

# +
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(out / "reduced" / "rom_fallbacks.csv") as f:
        fired = list(csv.DictReader(f))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(u * 1e3, f_full * 1e-3, "o-", label="full FE²")
    ax1.plot(u * 1e3, f_reduced * 1e-3, "x--", label="reduced FE²")
    ax1.set_xlabel("right edge displacement [mm]")
    ax1.set_ylabel("reaction [kN/m]")
    ax1.legend()
    ax2.add_patch(plt.Circle((0.01, 0.01), 0.004, fill=False))
    if fired:
        xy = np.array([[float(r["x"]), float(r["y"])] for r in fired])
        points = ax2.scatter(*xy.T, c=[int(r["step"]) for r in fired], marker="s")
        fig.colorbar(points, ax=ax2, label="step")
    ax2.set_xlim(0, 0.02)
    ax2.set_ylim(0, 0.02)
    ax2.set_aspect("equal")
    ax2.set_title(f"fallbacks: {rom['totals']['fallbacks']} of {rom['totals']['evaluations']}")
    fig.tight_layout()
    fig.savefig(out / "reduced_fe2.png", dpi=120)
    print(f"wrote {out / 'reduced_fe2.png'}")
# -

# The number printed last, the final reaction of the reduced run over the full run's, is
# checked by the test suite to agree between serial and parallel runs.

if comm.rank == 0:
    print(f"RESULT {f_reduced[-1] / f_full[-1]:.15e}")
