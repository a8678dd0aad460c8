"""How much faster is FE² with the reduced RVE than with the full one, and when does it pay?

On the plate with a hole of ``demos/plate_with_hole.toml`` (its RVE: fibres in a J2 matrix, P1,
periodic): the offline phase drives the RVE along sampled strain paths (``fe2x sample``) and
builds the basis and cubature (``fe2x reduce``); the online phase runs the same FE² with the full
and with the reduced RVE (certification tolerance 1 %). Reports the online wall-time ratio (whole
run and micro solves), the error of the load-displacement curve, the offline cost and the
break-even number of RVE evaluations, offline / (t_full − t_reduced) per evaluation; writes
``benchmarks/results/rom.json``. ``--case notched_bar_3d`` does the same on the 3D notched bar of
``demos/notched_bar_3d.toml`` (its RVE: a spherical particle in a J2 matrix) and writes
``benchmarks/results/rom_notched_bar_3d.json``.

    .venv/bin/python benchmarks/rom.py --coarse [--rve-mesh-size 0.05]
    .venv/bin/python benchmarks/rom.py --case notched_bar_3d --coarse --max-strain 0.06
        [--rve-mesh-size 0.09 --modes 24]

The reduced RVE's answers are certified once per converged step (its lift to all points and
error indicator run once per point and step, not per evaluation); a step with rejected points is
solved again with those points answered by the full RVE (``fe2x.micro.reduced``).

Measured on 2026-12-02 (second session) against full FE² whose micro Newton warm-starts from
the previous macro iteration (1.15–1.5× faster than the cold start it had before), one rank,
one BLAS thread, ``PYTHONPATH`` set to a worktree of the measured commit. The machine has 2
cores shared with other engineers' jobs and ran the same jobs about 1.7× slower than in the
first session; compare ratios, not seconds. 2D, ``--coarse`` (macro mesh 8 mm, 3 steps, 50
macro points; 24 training paths of 8 steps up to ‖E‖ = 4 %, 16 modes, cubature and
certification tolerance 1 %):

====================  ======================  ======================  ======================
RVE (P1, periodic)    mesh 0.14: 168 points   mesh 0.05: 976 points   mesh 0.03: 2732 points
====================  ======================  ======================  ======================
cubature points       138                     221                     220
online wall time      1.91 → 1.09 s (1.75×)   9.64 → 1.01 s (9.5×)    25.3 → 4.57 s (5.5×)
micro solves          1.08 → 0.74 s (1.5×)    8.57 → 0.67 s (12.7×)   24.4 → 3.90 s (6.3×)
per evaluation        1.9×                    11.6×                   8.3×
rejected / full RVE   1 / 3 of 593 evals      0 / 0 of 538            9 / 27 of 784
macro iterations      4, 4, 4+2 (4, 4, 4)     4, 5, 4 (4, 5, 5)       6, 7, 5 (4, 5, 5)
force error           0.048 %                 0.083 %                 0.125 %
offline               2.8 s + 1.3 s           10.9 s + 5.8 s          12.3 s + 38.6 s
break-even            ≈ 3600 evaluations      ≈ 1300 evaluations      ≈ 1400 evaluations
====================  ======================  ======================  ======================

"rejected / full RVE": answers rejected at certification, and the full RVE's answers they
caused (every evaluation of the re-solve); macro iterations per step, the full run's in
brackets. Against the cold-started full FE² of the first session the 976-point cell was 8.9×
online (12.2× micro), so the reduced RVE's own gains this session (the elastic Cholesky factor
of the indicator, the predictor) about offset the faster baseline.

The issue's goal (≥ 20× online for a 2D RVE) is not reached. Where the reduced time goes on
the 976-point cell (profile of the FE² run): the reduced Newton ≈ 0.7 ms per evaluation
(221 points × 16 modes, 2.7 law evaluations and 1.7 Jacobians plus the condensed tangent's
per evaluation: half of it numpy call overhead, the rest the Jacobian's products), the
certification ≈ 2.7 ms per point and step (the laws at all 976 points and ≈ 6 CG steps, each
an elastic back-substitution and two sparse products), and ≈ 0.3 s of the run's own set-up
and output, which in this short run weighs as much as the micro solves. On the 2732-point
cell 9 rejected answers and their 27 full solves cost most of the reduced time. The next lever
is a reduced Newton batched over the macro points (one law evaluation, one batched Jacobian
and solve for all of them).

3D FE², ``--case notched_bar_3d --coarse`` (the config's macro mesh, 3 steps, 68 macro
points; 24 training paths of 8 steps up to ‖E‖ = 6 % (``--max-strain 0.06``), 16 or 24 modes of
which 6 elastic, cubature and certification tolerance 1 %):

==================  ====================  ====================  ====================
RVE mesh, modes     0.12: 3670 pts, 16    0.09: 8192 pts, 16    0.09: 8192 pts, 24
==================  ====================  ====================  ====================
cubature points     648                   645                   893
online wall time    163.7→6.21 s 26.3×    839.6→174.8 s 4.8×    680.9→19.86 s 34.3×
micro solves        161.4→4.82 s 33.5×    836.5→168.9 s 5.0×    678.0→14.41 s 47.0×
per evaluation      33.7×                 7.4×                  47.0×
rejected / full     0 / 0 of 1088         26 / 104 of 1632      0 / 0 of 1088
macro iterations    4, 5, 5 (4, 5, 5)     4, 8, 8 (4, 5, 5)     4, 5, 5 (4, 5, 5)
force error         0.204 %               0.246 %               0.228 %
offline             33.2 s + 140.1 s      164.6 s + 394.5 s     176.6 s + 753.3 s
break-even          ≈ 1200 evaluations    ≈ 840 evaluations     ≈ 1500 evaluations
==================  ====================  ====================  ====================

With 16 modes the finer cell's answers at the notch roots in steps 2 and 3 are rejected
(indicator up to 0.86 % against the threshold 0.43 %, the tolerance over the effectivity 2.33):
their full solves (≈ 1 s each) and the re-solved macro iterations take most of the reduced
time. 24 modes capture 99.98 % of the snapshot energy (16: 99.92 %) and no answer is
rejected. The cubature hardly grows with the cell (645 points for 8192, 648 for 3670), so
without rejections the ratio grows with it; the reduced set-up (the elastic Cholesky factor,
3.3 s in 3D at 5,667 dofs, once per RVE group) weighs in such a short run. The issue's goal
(≥ 50× online for a 3D RVE) is not reached: 34× online and 47× in the micro solves with the
8192-point cell and 24 modes. Of that reduced run's 19.9 s, 4.5 s are the micro set-up (most of
it the indicator's Cholesky factorization), which a longer run amortizes. The same full run
took 840 s instead of 681 s an hour earlier (the machine's load; 56× in the micro solves
against it).
"""

from __future__ import annotations

import os

# One BLAS thread per rank, as in an MPI run: on 2 shared cores threaded OpenBLAS makes the
# reduced RVE's small products up to 5× slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from mpi4py import MPI  # noqa: E402

import numpy as np  # noqa: E402

from fe2x.config import read_run_config  # noqa: E402
from fe2x.config.rom_tables import read_sample_config  # noqa: E402
from fe2x.jobs import run_fe2  # noqa: E402
from fe2x.jobs.reduce import run_reduce  # noqa: E402
from fe2x.jobs.sample import run_sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAINING = """
[sample]
paths = {paths}
steps = 8
max_strain = {max_strain}
[reduce]
modes = {modes}
cubature_tolerance = {cubature_tolerance}
"""


@dataclass(frozen=True)
class Case:
    """One FE² job of the comparison: its config, microstructure and what ``--coarse`` does."""

    config: Path
    micro: str  # the microstructure's table, "micro.<name>"
    force: str  # the history.csv column of the pulled end's reaction
    mesh_line: str  # the cell's mesh-size line, replaced by --rve-mesh-size
    coarse: tuple[tuple[str, str], ...]  # (line, replacement) with --coarse
    fine: tuple[tuple[str, str], ...] = ()  # (line, replacement) without --coarse


CASES = {
    "plate": Case(
        ROOT / "demos" / "plate_with_hole.toml",
        "micro.composite",
        "F_right_x",
        "mesh_size = 0.14",
        coarse=(("mesh_size = 4.0e-3", "mesh_size = 8.0e-3"), ("steps = 5", "steps = 3")),
    ),
    # The config's macro mesh is already the demo's coarse one (68 points, 3 steps); without
    # --coarse the demo's full resolution (demos/demo_fe2_notched_bar_3d.py).
    "notched_bar_3d": Case(
        ROOT / "demos" / "notched_bar_3d.toml",
        "micro.particles",
        "F_right_x",
        "mesh_size = 0.17",
        coarse=(),
        fine=(("mesh_size = 30.0e-3", "mesh_size = 20.0e-3"), ("steps = 3", "steps = 5")),
    ),
}


def substitute(text: str, lines: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each whole line (up to a comment) ``old`` made ``new``; each must be there."""
    for old, new in lines:
        text, n = re.subn(rf"(?m)^{re.escape(old)}(?=\s*(#|$))", new, text)
        if n != 1:
            raise ValueError(f"expected one line {old!r} in the case's config, found {n}")
    return text


def rve_mesh(case: Case, text: str, mesh_size: float | None) -> str:
    """The case's config with the RVE's mesh size ``mesh_size`` (None: as it is)."""
    if mesh_size is None:
        return text
    return substitute(text, ((case.mesh_line, f"mesh_size = {mesh_size}"),))


def rve_config(
    case: Case, text: str, paths: int, max_strain: float, modes: int, cubature_tolerance: float
) -> str:
    """The RVE tables of the case's microstructure, with [sample] and [reduce]."""
    lines, keep = [], False
    for line in text.splitlines():
        header = re.match(r"\s*\[(.*)\]\s*$", line)
        if header:
            name = header.group(1)
            keep = name.startswith(case.micro + ".")
            if keep:
                line = f"[{name[len(case.micro) + 1 :]}]"
        if keep:
            lines.append(line)
    return "\n".join(lines) + TRAINING.format(
        paths=paths, max_strain=max_strain, modes=modes, cubature_tolerance=cubature_tolerance
    )


def run_config(case: Case, text: str, coarse: bool, basis: Path | None) -> str:
    """The case's config without fields, coarse if asked, with the reduced RVE if ``basis``."""
    text = substitute(text, case.coarse if coarse else case.fine)
    if basis is not None:
        text = text.replace(
            f"[{case.micro}]\n", f"[{case.micro}]\nmodel = \"reduced\"\nbasis = '{basis}'\n", 1
        )
    return text + "\n[output]\nfields = false\n"


def forces(directory: Path, column: str) -> np.ndarray:
    """The force column of a run's history.csv."""
    with (directory / "history.csv").open() as f:
        return np.array([float(r[column]) for r in csv.DictReader(f)])


def fallbacks_by_cause(report: dict) -> dict[str, int]:
    """The full RVE's answers of all steps of a reduced run, by cause."""
    causes = report["steps"][0]["fallbacks_by_cause"] if report["steps"] else {}
    return {c: sum(s["fallbacks_by_cause"][c] for s in report["steps"]) for c in causes}


def timed_run(config: Path, out: Path) -> tuple[float, dict]:
    """Wall time of ``fe2x run`` and its summary."""
    comm = MPI.COMM_WORLD
    comm.barrier()
    t0 = time.perf_counter()
    run_fe2(read_run_config(config), out, comm)
    comm.barrier()
    return time.perf_counter() - t0, json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="plate", help="the FE² job")
    parser.add_argument(
        "--coarse",
        action="store_true",
        help="plate: macro mesh 8 mm, 3 steps; notched_bar_3d: the config's (30 mm, 3 steps), "
        "else 20 mm, 5 steps",
    )
    parser.add_argument("--paths", type=int, default=24, help="training paths")
    parser.add_argument("--modes", type=int, default=16, help="basis size")
    parser.add_argument("--max-strain", type=float, default=0.04, help="training amplitude")
    parser.add_argument(
        "--cubature-tolerance", type=float, default=0.01, help="ECM integration tolerance"
    )
    parser.add_argument("--rve-mesh-size", type=float, help="RVE mesh size (default 0.14, 3D 0.17)")
    parser.add_argument("--work", type=Path, help="default benchmarks/results/rom[_CASE]")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/rom[_CASE].json")
    args = parser.parse_args()
    stem = "rom" if args.case == "plate" else f"rom_{args.case}"
    args.work = args.work or Path("benchmarks/results") / stem
    args.out = args.out or Path("benchmarks/results") / f"{stem}.json"
    comm = MPI.COMM_WORLD
    work = args.work.resolve()
    case = CASES[args.case]
    text = rve_mesh(case, case.config.read_text(), args.rve_mesh_size)
    rve = work / "rve.toml"
    if comm.rank == 0:
        work.mkdir(parents=True, exist_ok=True)
        rve.write_text(
            rve_config(case, text, args.paths, args.max_strain, args.modes, args.cubature_tolerance)
        )
    comm.barrier()

    # Offline: training paths, then basis and cubature.
    t0 = time.perf_counter()
    run_sample(read_sample_config(rve, "sample"), work / "offline", comm)
    comm.barrier()
    t_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    reduce_report = run_reduce(read_sample_config(rve, "reduce"), work / "offline", comm)
    comm.barrier()
    t_reduce = time.perf_counter() - t0
    basis = work / "offline" / "basis.h5"

    # Online: the same FE² with the full and with the reduced RVE.
    runs = {}
    for name, b in (("full", None), ("reduced", basis)):
        config = work / f"{name}.toml"
        if comm.rank == 0:
            config.write_text(run_config(case, text, args.coarse, b))
        comm.barrier()
        runs[name] = timed_run(config, work / name)
    (t_full, s_full), (t_red, s_red) = runs["full"], runs["reduced"]
    f_full, f_red = forces(work / "full", case.force), forces(work / "reduced", case.force)
    error = float(np.abs(f_red - f_full).max() / np.abs(f_full).max())
    micro_full = s_full["timings"]["micro_solves_sum"]
    micro_red = s_red["timings"]["micro_solves_sum"]
    per_full = micro_full / max(s_full["rve_full_solves"], 1)
    per_red = micro_red / max(s_red["rve_full_solves"], 1)
    offline = t_sample + t_reduce
    gain = per_full - per_red
    totals = s_red["reduced_models"]["totals"]
    result = {
        "case": args.case,
        "coarse": args.coarse,
        "rve_mesh_size": args.rve_mesh_size or float(case.mesh_line.split("=")[1]),
        "ranks": comm.size,
        "macro_points": s_full["macro_points"],
        "quadrature_points": reduce_report.get("quadrature_points"),
        "cubature_points": reduce_report.get("cubature_points"),
        "modes": reduce_report.get("modes"),
        "cubature_tolerance": args.cubature_tolerance,
        "online_wall_s": {"full": t_full, "reduced": t_red, "ratio": t_full / t_red},
        "micro_solves_s": {
            "full": micro_full,
            "reduced": micro_red,
            "ratio": micro_full / micro_red,
        },
        "rve_evaluations": {"full": s_full["rve_full_solves"], "reduced": s_red["rve_full_solves"]},
        "seconds_per_evaluation": {
            "full": per_full,
            "reduced": per_red,
            "ratio": per_full / per_red,
        },
        "rejected_at_certification": totals["rejected"],
        "fallbacks": totals["fallbacks"],
        "fallbacks_by_cause": fallbacks_by_cause(s_red["reduced_models"]),
        "macro_newton_iterations": {
            "full": [s["newton_iterations"] for s in s_full["steps"]],
            "reduced": [s["newton_iterations"] for s in s_red["steps"]],
        },
        "force_error": error,
        "offline_s": {"sample": t_sample, "reduce": t_reduce, "total": offline},
        "break_even_evaluations": offline / gain if gain > 0 else None,
    }
    if comm.rank == 0:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"{result['macro_points']} macro points, RVE {result['quadrature_points']} points -> "
            f"{result['cubature_points']} cubature points, {result['modes']} modes\n"
            f"online wall time  full {t_full:.2f} s  reduced {t_red:.2f} s  "
            f"ratio {t_full / t_red:.2f}\n"
            f"micro solves      full {micro_full:.2f} s  reduced {micro_red:.2f} s  "
            f"ratio {micro_full / micro_red:.2f}  (per evaluation {per_full / per_red:.2f})\n"
            f"{totals['rejected']} answers rejected at certification, {totals['fallbacks']} "
            f"full-RVE answers ({result['fallbacks_by_cause']}) of {totals['evaluations']} "
            "evaluations; "
            f"force error {100 * error:.3f} %\n"
            f"offline  sample {t_sample:.1f} s  reduce {t_reduce:.1f} s; break-even "
            f"{result['break_even_evaluations']} RVE evaluations"
        )


if __name__ == "__main__":
    main()
