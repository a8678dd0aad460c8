"""Setting up PETSc solver objects: prefixed options without leaks, weak callbacks, reason names.

fe2x defaults go under an options prefix and are applied without leaking; Python callbacks do
not keep their owner alive; converged reasons get their names.

fe2x sets its solver defaults through PETSc's options database (so that users can override any
of them by prefix, from the config or ``PETSC_OPTIONS``), but pushes them only for the duration
of ``setFromOptions``/``setUp`` and removes them again: one RVE's options never reach another
solver, and the global database is left as found.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from petsc4py import PETSc

__all__ = ["merged_options", "pushed", "reason_name", "unique_prefix", "weak_method"]

_PREFIX_NUMBERS: dict[str, itertools.count] = {}


def unique_prefix(stem: str) -> str:
    """A new options prefix ``<stem>_<k>_`` for a solver the caller gave no prefix.

    k counts the prefixes of ``stem`` made in this process, so two solvers never read each
    other's options; it agrees across ranks when they build their solvers in the same order.

    >>> unique_prefix("doctest_rve"), unique_prefix("doctest_rve")
    ('doctest_rve_1_', 'doctest_rve_2_')
    """
    number = next(_PREFIX_NUMBERS.setdefault(stem, itertools.count(1)))
    return f"{stem}_{number}_"


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
            database[key] = value  # type: ignore[index]  # the stub lacks Options.__setitem__
        yield
    finally:
        for key in options:
            database.delValue(key)


def reason_name(kind: type, reason: int) -> str:
    """Name of a converged/diverged ``reason`` of ``kind`` (e.g. ``PETSc.SNES.ConvergedReason``)."""
    names = {v: k for k, v in vars(kind).items() if isinstance(v, int)}
    return names.get(reason, str(reason))


def weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` as a callback that refers to its object weakly.

    PETSc objects hold their Python callbacks (``setFunction``, a PC's Python context) in C,
    where Python's garbage collector cannot see them: an object that owns a SNES whose callback
    is one of its own bound methods forms a cycle that is never collected, and with it every
    mesh, vector and MPI communicator it holds. Passing ``weak_method(self._residual)`` instead
    breaks the cycle; the callback must not outlive its object.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = ref()
        if bound is None:
            raise ReferenceError("a weak_method callback was called after its object was freed")
        return bound(*args, **kwargs)

    return call
