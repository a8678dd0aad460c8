"""Config tables declared once, as annotated frozen dataclasses, and read by that declaration.

Reading, validation, defaults, error messages and the README's key tables all come from the
declaration.

A table is a ``@dataclass(frozen=True)`` subclass of :class:`Table` whose fields are declared
with :func:`option`: the annotation says the type (bool, int, float, str, Path, a ``Literal``,
a tuple of numbers or strings, a scalar mapping, a nested table, named sub-tables, an array of
tables, or ``X | None``), the metadata the documentation, an optional check with the words for
what it allows, and for a *tagged* field the registry of variant tables chosen by a tag key
(``[cell] type = ...``, ``[materials.x] model = ...``). Every error is one line naming the
file, the key path, the value and what is allowed::

    demo.toml: [cell] dim = '2': expected 2 or 3

TOML already types its values, so the walker checks rather than converts: integers are
accepted where numbers are, never booleans; numbers must be finite. Why not pydantic or
msgspec: messages must keep this exact one-line form, the variants of tagged tables live in
open registries (a law registered by a test must be configurable without editing a union), and
the docs are rendered from the same declarations; a 300-line walker does all three.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, get_args, get_origin

from fe2x.errors import ConfigError
from fe2x.registry import Registry

__all__ = [
    "REQUIRED",
    "Context",
    "Table",
    "keys",
    "option",
    "read_table",
    "read_value",
    "render_table",
    "shown_default",
    "typed_hints",
]

REQUIRED: Any = dataclasses.MISSING
_SCALARS = (str, int, float, bool)


def option(
    default: Any = REQUIRED,
    *,
    doc: str,
    check: Callable[[Any], bool] | None = None,
    expect: str = "",
    registry: Registry | None = None,
    tag: str = "",
    tag_default: str | None = None,
    shown_default: str | None = None,
    petsc: bool = False,
) -> Any:
    """A declared config key.

    Args:
        default: its value when absent (:data:`REQUIRED`: the key must be given).
        doc: what it means, for the README.
        check: extra condition on the typed value.
        expect: what the key allows, in the error message (default: from the annotation).
        registry: for a tagged table, the registry of its variant table classes.
        tag: for a tagged table, the key whose value picks the variant (e.g. ``"type"``).
        tag_default: the variant taken when the tag key is absent (None: it is required).
        shown_default: the default as the docs show it (default: its repr).
        petsc: the value is a table of PETSc options, checked by
            :func:`fe2x.petsc_policy.check_petsc_options` (nothing that runs code or writes
            files, unless the command line allows it).
    """
    metadata = {
        "doc": doc,
        "check": check,
        "expect": expect,
        "registry": registry,
        "tag": tag,
        "tag_default": tag_default,
        "shown_default": shown_default,
        "petsc": petsc,
    }
    if isinstance(default, list | dict | set):
        raise TypeError("a mutable default: use a tuple or a Mapping proxy")
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Context:
    """Where a table comes from: the config file, and what the command line allows.

    The file is named in messages and resolves relative paths; the command line says what its
    PETSc options may do (``--allow-petsc-scripts``).
    """

    path: Path
    allow_petsc_scripts: bool = False

    def fail(self, message: str) -> typing.NoReturn:
        """Raise the one-line ConfigError ``<file>: <message>``."""
        raise ConfigError(f"{self.path}: {message}")


class Table:
    """Base of declared tables.

    ``TAG_VALUE`` names a variant of a tagged table; ``validate`` checks rules between keys (it
    raises with ``ctx.fail``).
    """

    TAG_VALUE: ClassVar[str] = ""

    def validate(self, ctx: Context, where: str) -> None:
        """Rules between keys; the default has none."""


def typed_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a table class."""
    return typing.get_type_hints(cls)


def keys(cls: type) -> dict[str, dataclasses.Field]:
    """The config keys of a table: its fields declared with :func:`option`."""
    return {f.name: f for f in dataclasses.fields(cls) if "doc" in f.metadata}


def _is_table(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Table)


def _optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (it, False)."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) + 1 == len(get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _number(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def describe(annotation: Any) -> str:
    """What an annotation allows, in words (the ``expected`` part of messages and docs)."""
    annotation, _ = _optional(annotation)
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [describe(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(kinds)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation in (str, Path):
        return "a string" if annotation is str else "a file path"
    if origin is Literal:
        values = [repr(a) if isinstance(a, str) else str(a) for a in get_args(annotation)]
        return " or ".join(values) if len(values) == 2 else " | ".join(values)
    if origin is tuple:
        inner = get_args(annotation)[0]
        if _is_table(inner):
            return "an array of tables"
        return f"a list of {describe(inner).removeprefix('an ').removeprefix('a ')}s"
    if origin in (dict, Mapping) or origin is typing.Mapping:
        return "a table"
    if _is_table(annotation):
        return "a table"
    return str(annotation)


class _Walker:
    """Reads one file's tables against their declarations."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def bad(self, where: str, key: str, value: Any, expect: str) -> typing.NoReturn:
        self.ctx.fail(f"[{where}] {key} = {value!r}: expected {expect}")

    def table(self, cls: type[Table], data: Any, where: str) -> Table:
        if not isinstance(data, dict):
            self.ctx.fail(f"[{where}] must be a table")
        fields = keys(cls)
        unknown = [k for k in data if k not in fields]
        if unknown:
            which = f" for {cls.TAG_VALUE!r}" if cls.TAG_VALUE else ""
            self.ctx.fail(
                f"[{where}] unknown key {unknown[0]!r}{which}; allowed: {', '.join(fields)}"
            )
        hints = typed_hints(cls)
        values = {}
        for name, f in fields.items():
            if name not in data:
                if f.default is REQUIRED and f.default_factory is dataclasses.MISSING:
                    self.ctx.fail(f"[{where}] {name} is required")
                continue
            values[name] = self.value(hints[name], f.metadata, data[name], where, name)
        table = cls(**values)
        table.validate(self.ctx, where)
        return table

    def value(
        self, annotation: Any, meta: Mapping[str, Any], value: Any, where: str, key: str
    ) -> Any:
        annotation, _ = _optional(annotation)
        expect = meta.get("expect") or describe(annotation)
        if meta.get("registry") is not None and get_origin(annotation) in (dict, Mapping):
            inner = key if where == "top level" else f"{where}.{key}"
            return self.tagged_tables(
                meta["registry"], meta["tag"], meta["tag_default"], value, inner
            )
        typed: Any
        if meta.get("registry") is not None:
            inner = key if where == "top level" else f"{where}.{key}"
            typed = self.tagged(meta["registry"], meta["tag"], meta["tag_default"], value, inner)
        else:
            typed = self.typed(annotation, value, where, key, expect)
        check = meta.get("check")
        if check is not None and not check(typed):
            self.bad(where, key, value, expect)
        if meta.get("petsc"):
            from fe2x.petsc_policy import check_petsc_options

            options = check_petsc_options(
                typed, f"{self.ctx.path}: [{where}]", self.ctx.allow_petsc_scripts
            )
            typed = MappingProxyType(options)
        return typed

    def tagged(
        self, registry: Registry, tag: str, default: str | None, data: Any, where: str
    ) -> Table:
        if not isinstance(data, dict):
            self.ctx.fail(f"[{where}] must be a table")
        variant = data.get(tag, default)
        if variant is None:
            self.ctx.fail(f"[{where}] {tag} is required; allowed: {', '.join(registry.names())}")
        if not isinstance(variant, str) or variant not in registry:
            self.bad(where, tag, variant, " | ".join(registry.names()))
        return self.table(registry[variant], data, where)

    def tagged_tables(
        self, registry: Registry, tag: str, default: str | None, data: Any, where: str
    ) -> dict[str, Table]:
        if not isinstance(data, dict) or not data:
            self.ctx.fail(f"[{where}] needs one table per entry, e.g. [{where}.<name>]")
        return {k: self.tagged(registry, tag, default, v, f"{where}.{k}") for k, v in data.items()}

    def typed(self, annotation: Any, value: Any, where: str, key: str, expect: str) -> Any:
        origin = get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            tables = [a for a in get_args(annotation) if _is_table(a)]
            if tables and isinstance(value, dict):  # a table: its own keys and messages
                inner = key if where == "top level" else f"{where}.{key}"
                return self.table(tables[0], value, inner)
            for alternative in get_args(annotation):
                try:
                    return self.typed(alternative, value, where, key, expect)
                except ConfigError:
                    continue
            self.bad(where, key, value, expect)
        if annotation is bool:
            if isinstance(value, bool):
                return value
        elif annotation in (int, float):
            if _number(value, annotation):
                return annotation(value)
        elif annotation is str:
            if isinstance(value, str):
                return value
        elif annotation is Path:
            if isinstance(value, str) and value:
                path = Path(value)
                return path if path.is_absolute() else self.ctx.path.parent / path
        elif origin is Literal:
            for allowed in get_args(annotation):
                if type(value) is type(allowed) and value == allowed:
                    return value
        elif origin is tuple:
            inner = get_args(annotation)[0]
            if _is_table(inner) and isinstance(value, list):
                return tuple(self.table(inner, v, f"{key} #{i + 1}") for i, v in enumerate(value))
            if isinstance(value, list):
                items = [self.item(inner, v) for v in value]
                if all(i is not None for i in items):
                    return tuple(items)
        elif origin in (dict, Mapping) or origin is typing.Mapping:
            inner = get_args(annotation)[1]
            if isinstance(value, dict) and all(isinstance(k, str) for k in value):
                if _is_table(inner):
                    return {k: self.table(inner, v, f"{where}.{k}") for k, v in value.items()}
                entries = {k: self.item(inner, v) for k, v in value.items()}
                if all(i is not None for i in entries.values()):
                    return entries
        elif _is_table(annotation):
            return self.table(annotation, value, key if where == "top level" else f"{where}.{key}")
        self.bad(where, key, value, expect)

    def item(self, annotation: Any, value: Any) -> Any:
        """A list entry or mapping value of scalar type(s); None if it does not fit."""
        origin = get_origin(annotation)
        if origin is tuple:
            if not isinstance(value, list):
                return None
            items = [self.item(get_args(annotation)[0], v) for v in value]
            return tuple(items) if all(i is not None for i in items) else None
        choices = (
            get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
        )
        for kind in choices:
            if kind in (int, float) and _number(value, kind):
                return kind(value)
            if kind in (bool, str) and isinstance(value, kind):
                return value
            if get_origin(kind) is Literal and any(
                type(value) is type(a) and value == a for a in get_args(kind)
            ):
                return value
        return None


def read_table(cls: type[Table], data: Any, where: str, ctx: Context) -> Any:
    """Read and validate ``data`` as table ``cls`` (named ``[where]`` in messages)."""
    return _Walker(ctx).table(cls, data, where)


def read_value(annotation: Any, data: Any, where: str, key: str, ctx: Context, **meta: Any) -> Any:
    """Read one value against an annotation (and ``option`` metadata) outside a table."""
    return _Walker(ctx).value(annotation, meta, data, where, key)


def shown_default(f: dataclasses.Field) -> str:
    """A key's default as the docs show it: ``required``, ``—`` (none), or its TOML value."""
    if f.default is REQUIRED and f.default_factory is dataclasses.MISSING:
        return "required"
    if f.metadata.get("shown_default") is not None:
        return f.metadata["shown_default"]
    factory = f.default_factory
    value = factory() if f.default is REQUIRED and callable(factory) else f.default
    if isinstance(value, Table):
        return "its defaults"
    return "—" if value is None else f"`{_toml(value)}`"


def meaning(annotation: Any, f: dataclasses.Field) -> str:
    """A key's documentation and what it allows, for a Markdown cell."""
    meta = f.metadata
    if meta.get("registry") is not None:
        allowed = " | ".join(f"`{n}`" for n in meta["registry"].names())
    else:
        allowed = meta.get("expect") or describe(annotation)
    return f"{meta['doc']} ({allowed})".replace("|", "\\|")


def render_table(cls: type[Table]) -> str:
    """The Markdown table of a declared table's keys: key, default, meaning (and allowed)."""
    hints = typed_hints(cls)
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, f in keys(cls).items():
        lines.append(f"| `{name}` | {shown_default(f)} | {meaning(hints[name], f)} |")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A default as TOML would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)
