"""Named registries of the open seams, each entry looked up by the name a config file gives.

The seams: boundary conditions, material models, cell types, micro models and macro shapes.

An entry is either the object itself or a ``"module:attribute"`` string imported on first use,
so that reading a config (which checks names) never imports DOLFINx or PETSc. A new boundary
condition, law or micro model is one class where it belongs plus one ``register`` call (or one
line in the tables here for the built-in ones).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BOUNDARY_CONDITIONS", "Registry"]


class Registry(Mapping[str, Any]):
    """Names -> implementations of one kind (e.g. "boundary condition").

    Args:
        kind: what the entries are, for messages.
        entries: name -> the object, or ``"module:attribute"`` to import when first asked for.
    """

    def __init__(self, kind: str, entries: Mapping[str, Any] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries or {})

    def __getitem__(self, name: str) -> Any:
        if name not in self._entries:
            raise KeyError(self.unknown(name))
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            module, attribute = entry.split(":")
            entry = getattr(importlib.import_module(module), attribute)
            self._entries[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries  # without importing the entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.kind} {name!r}; allowed: {', '.join(self._entries)}"

    def register(self, name: str, entry: Any, replace: bool = False) -> None:
        """Add ``entry`` under ``name`` (``replace`` to override an existing one)."""
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. a test's temporary entry)."""
        del self._entries[name]


#: Boundary conditions of the RVE fluctuation (:mod:`fe2x.micro.constraints`).
BOUNDARY_CONDITIONS = Registry(
    "boundary condition",
    {
        "periodic": "fe2x.micro.constraints:PERIODIC",
        "kubc": "fe2x.micro.constraints:AFFINE",
        "subc": "fe2x.micro.constraints:MINIMAL_KINEMATIC",
    },
)
