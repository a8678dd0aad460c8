"""The PETSc options a config gives each solver of a job, tried by PETSc before any meshing.

Trying them before any meshing or solving makes an unknown type or a bad value one line naming
the option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mpi4py import MPI

from fe2x.petsc_policy import validate_with_petsc

__all__ = ["check_solver_options"]


def check_solver_options(
    comm: MPI.Comm, path: object, solvers: Iterable[tuple[str, str, Mapping[str, object]]]
) -> None:
    """Collective: try each ``(table, options prefix, options)`` under its prefix.

    A ConfigError names the config file, the table and the option PETSc refuses.
    """
    for table, prefix, options in solvers:
        if options:
            validate_with_petsc(dict(options), prefix, comm, f"{path}: [{table}]")
