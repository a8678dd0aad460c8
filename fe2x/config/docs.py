"""The README's config-key tables, rendered from the declared tables (never written by hand).

``python -m fe2x.config.docs README.md`` rewrites every block between
``<!-- config:<name> -->`` and ``<!-- /config:<name> -->``; a test checks the README is up to
date (:func:`check_readme`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fe2x.config.cells import CELL_TYPES
from fe2x.config.materials import MATERIAL_MODELS
from fe2x.config.rom_tables import ReduceTable, SampleTable
from fe2x.config.run_tables import (
    MACRO_SHAPES,
    MICRO_MODELS,
    BoundaryTable,
    CheckpointTable,
    DiagnosticsTable,
    LoadingTable,
    OutputTable,
    ParallelTable,
)
from fe2x.config.rve_tables import (
    ExportTable,
    HomogenizeTable,
    PathOutputTable,
    PathTable,
    RVETable,
)
from fe2x.config.schema import keys, meaning, render_table, shown_default, typed_hints
from fe2x.config.sve_tables import SVETable
from fe2x.registry import Registry

__all__ = ["BLOCKS", "check_readme", "render", "update_readme"]


def render_variants(registry: Registry, tag: str, column: str) -> str:
    """One table of the keys of every variant of a tagged table, with the variants each applies to.

    ``all`` marks a key that every variant has; a key that means different things in different
    variants (e.g. a cell's ``path``) has one row per meaning.
    """
    variants = {name: registry[name] for name in registry.names()}
    rows: dict[str, dict[tuple[str, str], list[str]]] = {}
    for name, cls in variants.items():
        hints = typed_hints(cls)
        for key, f in keys(cls).items():
            if key == tag:  # one row: the variants
                cells = (shown_default(f), " \\| ".join(f"`{n}`" for n in variants))
                rows.setdefault(key, {cells: list(variants)})
                continue
            cells = (shown_default(f), meaning(hints[key], f))
            rows.setdefault(key, {}).setdefault(cells, []).append(name)
    lines = [f"| key | {column} | default | meaning |", "| --- | --- | --- | --- |"]
    for key, meanings in rows.items():
        for (default, text), names in meanings.items():
            where = "all" if len(names) == len(variants) else ", ".join(names)
            lines.append(f"| `{key}` | {where} | {default} | {text} |")
    return "\n".join(lines) + "\n"


#: README block name -> its rendering.
BLOCKS = {
    "cell": lambda: render_variants(CELL_TYPES, "type", "cells"),
    "materials": lambda: render_variants(MATERIAL_MODELS, "model", "models"),
    "homogenize": lambda: render_table(HomogenizeTable),
    "export": lambda: render_table(ExportTable),
    "rve": lambda: render_table(RVETable),
    "path": lambda: render_table(PathTable),
    "path_output": lambda: render_table(PathOutputTable),
    "macro": lambda: render_variants(MACRO_SHAPES, "shape", "shapes"),
    "boundary": lambda: render_table(BoundaryTable),
    "micro": lambda: render_variants(MICRO_MODELS, "model", "models"),
    "loading": lambda: render_table(LoadingTable),
    "parallel": lambda: render_table(ParallelTable),
    "output": lambda: render_table(OutputTable),
    "checkpoint": lambda: render_table(CheckpointTable),
    "diagnostics": lambda: render_table(DiagnosticsTable),
    "sve": lambda: render_table(SVETable),
    "sample": lambda: render_table(SampleTable),
    "reduce": lambda: render_table(ReduceTable),
}

_BLOCK = re.compile(r"(<!-- config:(\w+) -->\n)(.*?)(<!-- /config:\2 -->)", re.S)


def render(text: str) -> str:
    """``text`` with every config block re-rendered."""

    def block(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown config block {name!r}; known: {', '.join(BLOCKS)}")
        return match.group(1) + BLOCKS[name]() + match.group(4)

    return _BLOCK.sub(block, text)


def check_readme(path: Path) -> list[str]:
    """The names of the README's config blocks that differ from their rendering."""
    text = path.read_text()
    return [m.group(2) for m in _BLOCK.finditer(text) if m.group(3) != BLOCKS[m.group(2)]()]


def update_readme(path: Path) -> None:
    """Rewrite the README's config blocks from the declarations."""
    path.write_text(render(path.read_text()))


if __name__ == "__main__":
    update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
