"""The ``fe2x reduce`` job: a reduced basis and cubature built from training data.

They are written to the basis file a run config names (:mod:`fe2x.micro.reduction`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mpi4py import MPI

from fe2x.config.rom_tables import SampleConfig
from fe2x.errors import Fe2xError
from fe2x.io.reduced_basis import write_reduced_basis
from fe2x.io.results import write_json
from fe2x.io.training_data import read_training_data
from fe2x.jobs.solver_options import check_solver_options
from fe2x.jobs.training import TRAINING_DIRECTORY

__all__ = ["BASIS_FILE", "run_reduce"]

logger = logging.getLogger(__name__)

#: The basis file in the output directory of ``fe2x reduce``.
BASIS_FILE = "basis.h5"


def run_reduce(config: SampleConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD) -> dict:
    """Build the basis of ``[reduce]`` on rank 0, write ``out/basis.h5`` and ``out/reduce.json``.

    The report says what the basis captured, its cubature and the calibration; collective.

    Nothing is written when anything fails (one-line Fe2xError on every rank).
    """
    settings = config.reduce
    if settings is None:
        raise Fe2xError(f"{config.path}: fe2x reduce needs a [reduce] table")
    check_solver_options(comm, config.path, [("rve", "fe2x_rve_", config.rve.petsc_options)])
    report, error = None, None
    if comm.rank == 0:
        try:
            report = _reduce(config, out)
        except Fe2xError as e:
            error = str(e)
    error = comm.bcast(error, root=0)
    if error:
        raise Fe2xError(error)
    return comm.bcast(report, root=0)


def _reduce(config: SampleConfig, out: Path) -> dict:
    from fe2x.micro.reduction import build_reduced_basis

    t0 = time.perf_counter()
    settings = config.reduce
    assert settings is not None, "run_reduce checked the [reduce] table"
    training = settings.training if settings.training is not None else out / TRAINING_DIRECTORY
    data = read_training_data(training)
    names = list(data.n_dofs)
    name = settings.microstructure
    if name is None:
        if len(names) != 1:
            raise Fe2xError(
                f"{config.path}: the training data hold microstructures {names}; choose one "
                "with [reduce] microstructure"
            )
        name = names[0]
    elif name not in names:
        raise Fe2xError(
            f"{config.path}: [reduce] microstructure = {name!r} is not in the training data "
            f"({names})"
        )
    seconds = {"read": time.perf_counter() - t0}
    t0 = time.perf_counter()
    rve = config.rve.nonlinear_rve(
        config.cell.build(MPI.COMM_SELF), config.materials, "fe2x_rve_reduce_"
    )
    seconds["rve"] = time.perf_counter() - t0
    reduction = build_reduced_basis(
        rve,
        data,
        name,
        modes=settings.modes,
        energy_tolerance=settings.energy_tolerance,
        cubature_tolerance=settings.cubature_tolerance,
        report={"training": str(training), "config": str(config.path)},
    )
    path = out / BASIS_FILE
    write_reduced_basis(path, reduction.basis)
    report = {
        **reduction.basis.report,
        "basis": str(path),
        "seconds": {**seconds, **reduction.seconds},
        "strain_bound": reduction.basis.strain_bound,
        "provenance": reduction.basis.provenance,
    }
    write_json(MPI.COMM_SELF, out / "reduce.json", report)
    logger.info(
        "reduced basis of %r: %d modes (%.6f of the snapshots' energy), %d of %d points "
        "(cubature error %.1e, training integrands %.1e), effectivity %.3g; wrote %s",
        name,
        reduction.basis.size,
        reduction.energy,
        reduction.basis.points.size,
        report["quadrature_points"],
        reduction.cubature_error,
        reduction.training_integration_error,
        reduction.basis.effectivity,
        path,
    )
    return report
