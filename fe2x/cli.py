"""The ``fe2x`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fe2x

if TYPE_CHECKING:
    from mpi4py import MPI

    from fe2x.io.output_dir import OutputDir

EPILOG = "Run under MPI with `mpiexec -n N fe2x ...`. Config keys are documented in the README."

_Commands = argparse._SubParsersAction  # the subparsers of the ``fe2x`` parser


def _parser() -> argparse.ArgumentParser:
    """The ``fe2x`` argument parser: one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="fe2x",
        description="FE² and computational homogenization on FEniCSx (DOLFINx).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"fe2x {fe2x.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_homogenize(commands)
    _add_rve_path(commands)
    _add_run(commands)
    _add_sve(commands)
    _add_sample(commands)
    _add_reduce(commands)
    return parser


def _add_homogenize(commands: _Commands) -> None:
    """Add the ``homogenize`` command: effective linear properties of one RVE."""
    homogenize = commands.add_parser(
        "homogenize",
        help="effective linear properties of one RVE (stiffness, expansion, conductivity)",
        description=(
            "Mesh the RVE described in CONFIG, solve one micro problem per unit macro strain "
            "(and per unit temperature change or gradient, as [homogenize] physics asks) under "
            "each boundary condition, and write DIR/result.json (C_eff in Mandel notation, "
            "alpha_eff, k_eff, Hill–Mandel residuals, bounds, timings), the correctors, "
            "localization and heat-flux fields for ParaView (DIR/fields/*.bp) and the material "
            "cards of [export] (DIR/<format>.<ext>)."
        ),
        epilog=EPILOG,
    )
    _add_common(homogenize, "TOML file with [cell], [materials], [homogenize], [export]")
    homogenize.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="FORMAT",
        help="also write the effective material card for FORMAT: abaqus, calculix, ansys or "
        "lsdyna (repeatable; adds to [export] formats)",
    )


def _add_rve_path(commands: _Commands) -> None:
    """Add the ``rve-path`` command: one nonlinear RVE along a macro loading path."""
    rve_path = commands.add_parser(
        "rve-path",
        help="drive one nonlinear (J2) RVE along a macro loading path",
        description=(
            "Mesh the RVE described in CONFIG and drive it along the [path] of macro strain "
            "and stress components (mixed control, e.g. uniaxial stress), with Newton on the "
            "micro problem and the consistent homogenized tangent. Writes DIR/path.json (per "
            "step E, S and the tangent C, Mandel, and iteration counts), DIR/path.csv and a "
            "stress-strain plot DIR/path.png."
        ),
        epilog=EPILOG,
    )
    _add_common(rve_path, "TOML file with [cell], [materials], [rve], [path]")


def _add_run(commands: _Commands) -> None:
    """Add the ``run`` command: the FE² job."""
    run = commands.add_parser(
        "run",
        help="the FE² job: a macro specimen whose every quadrature point is an RVE",
        description=(
            "Mesh the macro specimen in CONFIG, farm the RVE solves of its quadrature points out "
            "to groups of MPI ranks, and follow the load steps with Newton's method on the "
            "macro problem (consistent tangents from the RVEs). Writes DIR/history.csv (load "
            "factor, prescribed displacements, reaction forces per step), DIR/summary.json "
            "(timings, RVE solve counts, Newton iterations), DIR/load_displacement.png and "
            "macro fields for ParaView (DIR/fields/*.bp). Run under mpiexec or srun."
        ),
        epilog=EPILOG,
    )
    _add_common(run, "TOML file with [macro], [[boundary]], [micro.<name>], [loading], [parallel]")
    run.add_argument(
        "--restart",
        type=Path,
        metavar="DIR",
        default=None,
        help="continue the run whose output (and checkpoint.h5) is in DIR; implies --out DIR",
    )


def _add_sve(commands: _Commands) -> None:
    """Add the ``sve`` command: statistics of random SVEs of growing size."""
    sve = commands.add_parser(
        "sve",
        help="statistics of random SVEs of growing size: scatter, its decay, BC bracketing",
        description=(
            "Homogenize ensembles of random statistical volume elements (SVEs) of growing size "
            "under PBC, KUBC and SUBC, spread over groups of MPI ranks. Writes DIR/sve.json "
            "(apparent moduli of every realization, mean, standard deviation and confidence "
            "interval per size, the fitted variance decay exponent, the realizations needed for "
            "the requested precision, the KUBC/SUBC bracket), a CSV per size and plots."
        ),
        epilog=EPILOG,
    )
    _add_common(sve, "TOML file with [sve] and [materials.matrix], [materials.inclusion]")


def _add_sample(commands: _Commands) -> None:
    """Add the ``sample`` command: training data from designed macro strain paths."""
    sample = commands.add_parser(
        "sample",
        help="training data: one nonlinear RVE driven along designed macro strain paths",
        description=(
            "Mesh the RVE described in CONFIG and drive it along the [sample] strain paths "
            "(random directions and amplitudes from a Sobol' or Latin-hypercube design), spread "
            "over groups of MPI ranks. Writes DIR/training/group<g>.h5 (per converged step E, "
            "Sigma, C, diagnostics and the fluctuation field) and DIR/sample.json."
        ),
        epilog=EPILOG,
    )
    _add_common(sample, "TOML file with [cell], [materials], [rve], [sample]")


def _add_reduce(commands: _Commands) -> None:
    """Add the ``reduce`` command: a reduced RVE from training data."""
    reduce = commands.add_parser(
        "reduce",
        help="a reduced RVE (POD basis, empirical cubature) from training data",
        description=(
            "Build the POD basis of the fluctuation (energy inner product, elastic correctors "
            "first) and the empirical cubature of the RVE's integrands from the training data "
            "of [reduce] training (default DIR/training), and calibrate the error indicator. "
            'Writes DIR/basis.h5, which [micro.<name>] model = "reduced" names, and '
            "DIR/reduce.json (energy captured, cubature error, calibration)."
        ),
        epilog=EPILOG,
    )
    _add_common(reduce, "TOML file with [cell], [materials], [rve], [reduce]")


def _add_common(command: argparse.ArgumentParser, config_help: str) -> None:
    command.add_argument("config", type=Path, help=config_help)
    command.add_argument(
        "--out", type=str, default=None, help="output directory (default: results/<config name>)"
    )
    command.add_argument("--quiet", action="store_true", help="print nothing but errors")
    command.add_argument(
        "--allow-petsc-scripts",
        action="store_true",
        help="let the config's petsc_options run Python code or name files (viewers, monitors, "
        "plug-ins); refused by default, as a config file is data",
    )


def _print_matrix(title: str, matrix, residual: float, defect: float, solver: str) -> None:
    print(f"\n{title}:")
    scale = float(abs(matrix).max())
    for row in matrix:
        print("  " + "  ".join(f"{v / scale: .6f}" for v in row))
    print(f"  (x {scale:.6g})")
    print(f"  Hill–Mandel residual {residual:.1e}, symmetry defect {defect:.1e}, solver {solver}")


def _print_homogenization(outcome, out: Path) -> None:
    from fe2x.materials import component_labels

    rve = outcome.elastic.rve if outcome.elastic is not None else outcome.conduction.rve
    labels = " ".join(component_labels(rve.dim))
    fractions = ", ".join(f"{k} {v:.4f}" for k, v in rve.volume_fractions.items())
    print(f"RVE: {rve.dim}D, {rve.n_dofs} dofs, volume fractions: {fractions}")
    for bc, r in (outcome.elastic.responses if outcome.elastic is not None else {}).items():
        title = f"C_eff ({bc}, Mandel {labels})"
        _print_matrix(title, r.C_eff, r.hill_mandel_residual.max(), r.symmetry_defect, r.solver)
        if r.alpha_eff is not None:
            print(f"  alpha_eff (Mandel {labels}): " + "  ".join(f"{a:.6g}" for a in r.alpha_eff))
    for bc, r in (outcome.conduction.responses if outcome.conduction is not None else {}).items():
        title = f"k_eff ({bc}, Q = -k_eff G)"
        _print_matrix(title, r.k_eff, r.hill_mandel_residual.max(), r.symmetry_defect, r.solver)
    for path in outcome.cards.values():
        print(f"\nwrote {path}")
    print(f"\nwrote {out / 'result.json'}")


def _read_config(args: argparse.Namespace) -> Any:
    """The validated config of the command (no output is touched yet)."""
    from fe2x import config as configs

    allow = args.allow_petsc_scripts
    if args.command == "homogenize":
        config = configs.read_homogenization_config(args.config, allow)
        return configs.with_export_formats(config, args.export) if args.export else config
    if args.command == "rve-path":
        return configs.read_rve_path_config(args.config, allow)
    if args.command == "sve":
        return configs.read_sve_config(args.config, allow)
    if args.command in ("sample", "reduce"):
        from fe2x.config.rom_tables import read_sample_config

        return read_sample_config(args.config, args.command, allow)
    return configs.read_run_config(args.config, allow)


def _run(args: argparse.Namespace, config: Any, output: OutputDir, comm: MPI.Comm) -> None:
    """Run the job into the prepared, locked output directory and say what it wrote."""
    from fe2x import jobs

    out = output.path
    if args.command == "homogenize":
        outcome = jobs.run_homogenize(config, out, comm)
        if comm.rank == 0 and not args.quiet:
            _print_homogenization(outcome, out)
    elif args.command == "rve-path":
        jobs.run_rve_path(config, out, comm)
        if comm.rank == 0 and not args.quiet:
            print(f"wrote {out / 'path.json'}, {out / 'path.csv'}, {out / 'path.png'}")
    elif args.command == "sve":
        from fe2x.io.sve_files import write_sve_results
        from fe2x.sve import run_sve_study

        write_sve_results(comm, out, run_sve_study(config.study, comm))
        if comm.rank == 0 and not args.quiet:
            print(f"wrote {out / 'sve.json'}")
    elif args.command == "sample":
        from fe2x.jobs.sample import run_sample

        summary = run_sample(config, out, comm)
        if comm.rank == 0 and not args.quiet:
            print(f"{summary['records']} records in {len(summary['paths'])} paths")
            print(f"wrote {out / 'training'}, {out / 'sample.json'}")
    elif args.command == "reduce":
        from fe2x.jobs.reduce import run_reduce

        report = run_reduce(config, out, comm)
        if comm.rank == 0 and not args.quiet:
            print(
                f"{report['modes']} modes ({report['energy_captured']:.6f} of the energy), "
                f"{report['cubature_points']} of {report['quadrature_points']} points "
                f"(cubature error {report['cubature_error']:.1e})"
            )
            print(f"wrote {report['basis']}, {out / 'reduce.json'}")
    else:
        restart = args.restart is not None
        jobs.run_fe2(config, out, comm, restart=restart, started=output.started)
        if comm.rank == 0 and not args.quiet:
            written = [out / "history.csv", out / "summary.json"]
            written += [out / "fields"] if config.write_fields else []
            print("wrote " + ", ".join(str(p) for p in written))


def main(argv: list[str] | None = None) -> int:
    """Run the ``fe2x`` command of ``argv``; its exit code, with user errors as one line.

    Under MPI every rank leaves through a :class:`~fe2x.parallel.watchdog.Watchdog`: an error
    raised on some ranks only aborts the job instead of leaving the others waiting.
    """
    args = _parser().parse_args(argv)
    from mpi4py import MPI

    from fe2x.parallel.watchdog import Watchdog

    comm = MPI.COMM_WORLD
    # Warnings are about collective decisions: rank 0 says them once; the others only errors.
    level = logging.INFO if comm.rank == 0 else logging.ERROR
    if args.quiet and comm.rank == 0:
        level = logging.WARNING
    logging.basicConfig(level=level, format="fe2x: %(message)s", stream=sys.stderr)
    watchdog = Watchdog(comm)
    try:
        code, why = _main(args, comm)
    except Exception as error:  # a bug: its traceback, from the ranks that met it
        traceback.print_exc()
        code, why = 1, f"{type(error).__name__}: {error}"
    return watchdog.leave(code, why)


def _main(args: argparse.Namespace, comm: MPI.Comm) -> tuple[int, str]:
    """The command of ``args`` on ``comm``: its exit code and why it failed ("" if it did not).

    Rank 0 prints a user error as one line (every rank meets it: the ranks agree on them).
    """
    from fe2x.errors import Fe2xError, GeometryError, MaterialError
    from fe2x.io.vtx import end_if_abandoned

    try:
        from fe2x.io.output_dir import prepare_output_dir

        restart = getattr(args, "restart", None)
        where = str(restart) if restart is not None else args.out
        if where is None:
            where = str(Path("results") / args.config.stem)
        config = _read_config(args)
        with prepare_output_dir(comm, where) as output:  # before any computing
            _run(args, config, output, comm)
    except Fe2xError as error:
        from fe2x.jobs import REQUEUE_STATUS, Interrupted

        if isinstance(error, Interrupted):
            if comm.rank == 0:
                print(f"fe2x: {error}", file=sys.stderr)
            return REQUEUE_STATUS, str(error)
        message = str(error)
        if isinstance(error, GeometryError | MaterialError) and str(args.config) not in message:
            message = f"{args.config}: {message}"  # which file the geometry or material is from
        if comm.rank == 0:
            print(f"fe2x: error: {message}", file=sys.stderr)
        end_if_abandoned(2)
        return 2, message
    except OSError as error:
        if comm.rank == 0:
            print(f"fe2x: error: {error}", file=sys.stderr)
        end_if_abandoned(1)
        return 1, str(error)
    return 0, ""


if __name__ == "__main__":
    sys.exit(main())
