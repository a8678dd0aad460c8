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
    .venv/bin/python benchmarks/rom.py --case notched_bar_3d --coarse [--rve-mesh-size 0.12]

The reduced RVE's answers are certified once per converged step (its lift to all points and
error indicator run once per point and step, not per evaluation); a step with rejected points is
solved again with those points answered by the full RVE (``fe2x.micro.reduced``).

    .venv/bin/python benchmarks/rom.py --coarse [--rve-mesh-size 0.05] [--cubature-tolerance 0.01]

Measured on 2026-12-02 with ``--coarse`` (macro mesh 8 mm, 3 steps, 50 macro points; 24
training paths of 8 steps up to ‖E‖ = 4 %, 16 modes, cubature tolerance 1 %, certification
tolerance 1 %; one rank, one BLAS thread; run with ``PYTHONPATH=.`` from a worktree). The
machine has 2 cores shared with other engineers' jobs (load 2.5–3 during these runs), so ±20 %
at least; compare ratios, not seconds:

====================  ======================  ======================  ======================
RVE (P1, periodic)    mesh 0.14: 168 points   mesh 0.05: 976 points   mesh 0.03: 2732 points
====================  ======================  ======================  ======================
cubature points       138                     221                     220
online wall time      2.69 → 1.45 s (1.9×)    17.0 → 1.91 s (8.9×)    38.8 → 5.84 s (6.6×)
micro solves          1.64 → 0.85 s (1.9×)    15.7 → 1.29 s (12.2×)   37.5 → 5.02 s (7.5×)
per evaluation        2.5×                    12.1×                   10.1×
rejected / full RVE   1 / 3 of 593 evals      0 / 0 of 538            9 / 27 of 740
macro iterations      4, 4, 4+2 (4, 4, 4)     4, 5, 4 (4, 5, 4)       6, 6, 5 (4, 5, 4)
force error           0.048 %                 0.083 %                 0.125 %
offline               2.9 s + 1.4 s           5.9 s + 7.5 s           12.2 s + 40.3 s
break-even            ≈ 2000 evaluations      ≈ 500 evaluations       ≈ 850 evaluations
====================  ======================  ======================  ======================

(before the certification per step, with the indicator at every evaluation: 1.6× and 4.2×
online on the first two cells; with OpenBLAS's default threads, the same runs at a quieter
moment gave 1.7×, 7.3×, 6.3× online.) "rejected / full RVE": answers rejected at
certification, and the full RVE's answers they caused (every evaluation of the re-solve);
macro iterations per step, the full run's in brackets ("4+2": a step and its re-solve; on the
largest cell steps 1 and 2 were re-solved). A looser cubature keeps fewer points: at tolerance
3 % the 976-point cell keeps 110 (online 8.9×, micro 12.2× with default threads, force error
0.039 %), the 2732-point one 192 (7.9×, 8.9×, 0.24 %).

The issue's goal (≥ 20× online for a 2D RVE) is not reached. Where the reduced time goes, from
profiles of the 2732-point cell: the reduced Newton ≈ 1.5–2 ms per evaluation (220 points × 16
modes, ≈ 4 iterations: numpy call overhead, half of it in the laws' evaluator, not flops),
the certification ≈ 10 ms per point and step (one law update at all points and ≈ 7 CG steps,
each an elastic back-substitution), and the rejected points' full solves (27 × ≈ 80 ms, about
2 of the 5 s). The ratio grows with the cell until certification and rejections dominate.

3D at the micro level (before the FE² case below): a 3D inclusion cell (volume
fraction 0.2, mesh 0.2, P1, periodic: 948 points; 24 paths, 24 modes) keeps 651 cubature
points, and along 3 held-out strain paths of 8 steps (out to ‖E‖ = 1.2–4 % and half back;
``fe2x.micro.path.drive``) the reduced RVE with its certification answers 6.0× faster per
evaluation than the full one (61 → 10 ms; largest error of Σ along the paths 0.27 %):
far from the goal of 50×, because the cubature keeps most points of so small a cell.

3D FE², measured on 2026-12-02 with ``--case notched_bar_3d --coarse`` (the config's macro mesh,
3 steps, 68 macro points; 24 training paths of 8 steps up to ‖E‖ = 4 % or 6 %
(``--max-strain``), 16 modes of which 6 elastic, cubature and certification tolerance 1 %; one
rank, one BLAS thread, the same 2 shared cores; RVE mesh 0.17: 1313 points, 0.12: 3670 points):

==================  ==================  ==================  ==================  ==================
RVE mesh, training  0.17, ‖E‖ ≤ 4 %     0.17, ‖E‖ ≤ 6 %     0.12, ‖E‖ ≤ 4 %     0.12, ‖E‖ ≤ 6 %
==================  ==================  ==================  ==================  ==================
cubature points     558                 575                 595                 658
online wall time    43.3→3.19 s 13.6×   39.9→2.00 s 20.0×   156.9→7.20 s 21.8×  116.5→3.26 s 35.8×
micro solves        42.4→2.69 s 15.8×   39.1→1.51 s 26.0×   155.6→6.50 s 23.9×  115.5→2.65 s 43.6×
per evaluation      15.7×               27.9×               24.1×               41.1×
rejected / full     0 / 19 of 920       0 / 0 of 988        0 / 21 of 1088      0 / 0 of 1020
macro iterations    4, 4, 4 (4, 4, 4)   4, 5, 4 (4, 4, 4)   5, 5, 4 (4, 5, 5)   4, 5, 4 (4, 5, 5)
force error         0.115 %             0.109 %             0.269 %             0.322 %
offline             8.0 s + 22.5 s      8.4 s + 23.4 s      19.8 s + 93.8 s     18.9 s + 81.5 s
break-even          ≈ 710 evaluations   ≈ 780 evaluations   ≈ 820 evaluations   ≈ 960 evaluations
==================  ==================  ==================  ==================  ==================

With training to 4 % the strains at the notch roots leave the training range in the last step
(strain limit 3.8 %): those points are answered by the full RVE ("range" fallbacks, the 19 and
21 full-RVE answers), which costs most of the reduced time; training to 6 % removes them. No
answer was rejected at certification in any run. The full 3670-point runs took 157 s and 116 s
(the other engineers' load). With 32 paths and 24 modes the 1313-point cell keeps 777 cubature
points and gains nothing (force error 0.110 %, online 8.6×, reduce 65 s). As in 2D the cubature
hardly grows with the cell (558–658 points for 2.8× the points), so the ratio grows with it.
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
