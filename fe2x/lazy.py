"""Packages whose names load on first use.

Importing one (e.g. to read a config) then does not pull in gmsh, DOLFINx or PETSc through names
it does not use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from ``where[name]``.

    >>> get = lazy_getattr("demo", {"sqrt": "math"})
    >>> get("sqrt")(4.0)
    2.0
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return __getattr__
