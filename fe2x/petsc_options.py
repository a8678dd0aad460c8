"""PETSc options for one solver object: fe2x defaults under a prefix, applied without leaking.

fe2x sets its solver defaults through PETSc's options database (so that users can override any
of them by prefix, from the config or ``PETSC_OPTIONS``), but pushes them only for the duration
of ``setFromOptions``/``setUp`` and removes them again: one RVE's options never reach another
solver, and the global database is left as found.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from petsc4py import PETSc

__all__ = ["merged_options", "pushed", "reason_name"]


def merged_options(
    prefix: str, defaults: Mapping[str, object], overrides: Mapping[str, object] | None
) -> dict[str, object]:
    """``defaults`` not already in the database under ``prefix``, then ``overrides`` on top.

    Options set in the database (e.g. from ``PETSC_OPTIONS``) win over fe2x's defaults; options
    passed explicitly (a config's ``petsc_options``) win over both.
    """
    database = PETSc.Options()
    merged = {key: v for key, v in defaults.items() if not database.hasName(f"{prefix}{key}")}
    merged.update(overrides or {})
    return merged


@contextmanager
def pushed(options: Mapping[str, object]) -> Iterator[None]:
    """Put the fully named ``options`` in the database for the ``with`` block, then remove them."""
    database = PETSc.Options()
    try:
        for key, value in options.items():
            database[key] = value
        yield
    finally:
        for key in options:
            database.delValue(key)


def reason_name(kind: type, reason: int) -> str:
    """Name of a converged/diverged ``reason`` of ``kind`` (e.g. ``PETSc.SNES.ConvergedReason``)."""
    names = {v: k for k, v in vars(kind).items() if isinstance(v, int)}
    return names.get(reason, str(reason))
