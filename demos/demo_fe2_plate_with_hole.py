# # FE² of a fibre-composite plate with a hole
#
# A plate with a central hole, pulled in tension, is the classic specimen for a stress
# concentration: next to the hole the stress is about three times the nominal one, so that is
# where an elastoplastic material yields first. Here the plate is a unidirectional glass/epoxy
# composite loaded across its fibres (2D, plane strain), and its material law is not a formula
# but a *computation*: at every macro quadrature point a periodic cell (RVE) of a glass fibre in
# an elastoplastic epoxy matrix is solved for the local macro strain. This is FE², the two-scale
# finite element method. The demo
#
# - explains the FE² set-up of fe2x (macro specimen, one RVE per quadrature point, groups of
#   ranks, the elastic shortcut, cutbacks),
# - runs the job of `demos/plate_with_hole.toml` through the Python API,
#   {py:func}`fe2x.config.read_run_config` and {py:func}`fe2x.jobs.run_fe2` (the same as
#   `fe2x run demos/plate_with_hole.toml --out DIR`),
# - reads the result files `history.csv` and `summary.json` and plots the load–displacement
#   curve and the work per load step.
#
# Run it serially or in parallel; `--coarse` (or `FE2X_DEMO_COARSE=1`) uses coarser meshes and
# fewer load steps, `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the results go (default
# `results/demos`):
#
# ```sh
# mpiexec -n 2 python demos/demo_fe2_plate_with_hole.py
# python demos/demo_fe2_plate_with_hole.py --coarse
# ```

# +
import argparse
import csv
import json
import os
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import read_run_config, with_resolution
from fe2x.jobs import run_fe2

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse meshes, few steps (tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
# -

# ## The FE² set-up
#
# **The macro specimen.** The plate is 20 mm × 20 mm with a centred hole of radius 4 mm. The
# `left` edge is held in x (ux = 0) and the `bottom` edge in y (uy = 0), rollers that stop
# rigid-body motion but let the plate contract, and the `right` edge is pulled by
# ux = λ · 0.2 mm, 1 % nominal strain at the load factor λ = 1. The macro displacement is a P1
# field on a triangle mesh, graded from a third of `mesh_size` on the hole to `mesh_size` one
# radius away.
#
# **One RVE per quadrature point.** The macro problem needs, at each quadrature point, the
# stress Σ(E) and the tangent ∂Σ/∂E for the macro strain E. fe2x answers with a periodic unit
# cell holding one glass fibre (volume fraction 0.4) in a J2-plastic epoxy matrix with linear
# hardening: the cell is solved by Newton's method for the fluctuation field, Σ is the volume
# average of the micro stress, and the consistent tangent comes from the same factorization.
# Every point carries its own plastic history, which is committed only when the macro step has
# converged. The cell is meshed coarsely with straight (P1) triangles, so that the demo runs in
# a minute or two; their edges cut the fibre short, to a volume fraction of 0.391 instead of 0.4,
# and the run warns of it. Refine the cell, or use `geometry_order = 2` with `degree = 2`, for
# results.
#
# **Groups of ranks.** The ranks are split into groups of `group_size` (here 1: each rank
# solves whole RVEs on its own). The macro mesh is distributed over all ranks, but its
# quadrature points are dealt out to the groups by their measured cost
# (longest-processing-time first) and re-balanced between steps; the plastic histories move
# with their points. Points near the hole, which yield and need several micro Newton
# iterations, cost more than the ones far away.
#
# **The elastic shortcut.** While an RVE has never yielded, its response is linear, and a
# micro model that offers an exact elastic answer (Σ = C_eff E) skips the solve. The counts of
# full solves and shortcut answers are reported per step.
#
# **Cutbacks.** A step whose macro Newton iteration, or any of whose RVEs, fails is discarded
# (no history is committed) and retried with half the increment, up to `max_cutbacks` times.
#
# All of this is described by the config file; we read it and, for this demo, choose the mesh
# sizes and the number of load steps with {py:func}`fe2x.config.with_resolution`, which returns
# a modified copy of the (frozen) config.

# +
config_file = Path(__file__).resolve().parent / "plate_with_hole.toml"
config = read_run_config(config_file)
composite = config.micro["composite"]
if coarse:
    macro_size, cell_size, steps = 8.0e-3, 0.14, 3
else:
    macro_size, cell_size, steps = 1.6e-3, 0.14, 20
config = with_resolution(config, macro_size, cell_size, steps)
out = Path(args.out) / "fe2_plate_with_hole"
height = config.macro.parameters["height"]
sigma_y = composite.materials["matrix"].sigma_y
if comm.rank == 0:
    print(f"macro mesh size {macro_size * 1e3:.1f} mm, RVE mesh size {cell_size}, {steps} steps")
# -

# ## The run
#
# {py:func}`fe2x.jobs.run_fe2` is the whole `fe2x run` job. It logs one line per step and
# writes, into `out`, `history.csv` (after each converged step), `summary.json`,
# `load_displacement.png` and the macro fields for ParaView in `fields/` (displacement, and per
# macro cell the strain, stress, RVE Newton iterations and whether the RVE was solved).

# +
t0 = time.perf_counter()
result = run_fe2(config, out, comm)
seconds = time.perf_counter() - t0
if comm.rank == 0:
    print(f"completed: {result.completed}, {seconds:.1f} s on {comm.size} rank(s)")
# -

# ## The results
#
# `history.csv` has, per converged step, the load factor, the macro Newton iterations, the
# prescribed displacements and the reaction forces of every supported or loaded boundary. In
# 2D (plane strain) a force is per unit thickness, N/m. We normalise the reaction of the
# `right` edge by σ_y · height, the force a stress equal to the matrix yield stress would
# carry over the full height of the plate.
#
# `summary.json` has per step the macro residual history, RVE solve counts and cutbacks, the
# totals over all ranks, and the wall times split into micro solves, macro assembly and solve,
# communication and waiting.

# +
with open(out / "history.csv") as f:
    rows = list(csv.DictReader(f))
summary = json.loads((out / "summary.json").read_text())
u = np.array([0.0] + [float(r["u_right_x"]) for r in rows])
force = np.array([0.0] + [float(r["F_right_x"]) for r in rows])
load = force / (sigma_y * height)
iterations = [int(r["newton_iterations"]) for r in rows]
timings = summary["timings"]
if comm.rank == 0:
    print(f"{summary['macro_points']} macro points, {summary['n_groups']} RVE group(s)")
    print(" step  λ       u [mm]   F/(σ_y h)  Newton")
    for r, s, its in zip(rows, load[1:], iterations, strict=True):
        lam, ux = float(r["load_factor"]), float(r["u_right_x"]) * 1e3
        print(f" {int(r['step']):4d}  {lam:.3f}  {ux:.4f}   {s:.5f}    {its}")
    print(
        f"RVE solves: {summary['rve_full_solves']} full, {summary['rve_shortcut_solves']} "
        f"shortcut, {summary['micro_newton_iterations']} micro Newton iterations, "
        f"{summary['cutbacks']} cutbacks"
    )
    print(
        f"time: total {timings['total']:.1f} s, micro solves {timings['micro_solves']:.1f} s "
        f"(per-rank maximum), total/micro = {timings['total'] / timings['micro_solves']:.3f}"
    )
# -

# The secant stiffness drops as the matrix yields, first around the hole and then across the
# ligament: the curve bends over while the hardening keeps it rising. The micro solves take
# nearly all of the time; the macro problem is tiny in comparison, which is why FE² is
# parallelised over RVEs.
#
# ## A figure
#
# The load–displacement curve, the macro Newton iterations per step, and the RVE answers per
# step (full solves and elastic shortcuts, all ranks).

# +
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps_done = [s["step"] for s in summary["steps"]]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.8))
    ax1.plot(u * 1e3, load, "o-")
    ax1.set_xlabel("right edge displacement [mm]")
    ax1.set_ylabel("F / (σ_y · height)")
    ax1.set_title("load–displacement")
    ax2.bar(steps_done, [s["newton_iterations"] for s in summary["steps"]])
    ax2.set_xlabel("step")
    ax2.set_ylabel("macro Newton iterations")
    full = np.array([s["rve_full_solves"] for s in summary["steps"]])
    shortcut = np.array([s["rve_shortcut_solves"] for s in summary["steps"]])
    ax3.bar(steps_done, full, label="full solves")
    ax3.bar(steps_done, shortcut, bottom=full, label="elastic shortcut")
    ax3.set_xlabel("step")
    ax3.set_ylabel("RVE answers (all ranks)")
    ax3.legend()
    fig.tight_layout()
    fig.savefig(out / "fe2_plate_with_hole.png", dpi=120)
    print(f"wrote {out / 'fe2_plate_with_hole.png'}")
# -

# The number printed last, the final reaction normalised by σ_y · height, is checked by the
# test suite to agree between serial and parallel runs.

if comm.rank == 0:
    print(f"RESULT {load[-1]:.15e}")
