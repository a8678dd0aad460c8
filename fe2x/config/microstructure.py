"""The tables of a microstructure, wherever one is configured: ``[cell]`` and its phases.

The phases are one ``[materials.<phase>]`` table each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fe2x.config.cells import CELL_TYPES, CellTable
from fe2x.config.materials import MATERIAL_MODELS, MaterialTable
from fe2x.config.schema import REQUIRED, Table, option

__all__ = ["Microstructure"]


@dataclass(frozen=True, kw_only=True)
class Microstructure(Table):
    """A cell and its phases' materials (``fe2x homogenize``, ``rve-path``, an FE² RVE)."""

    cell: CellTable = option(REQUIRED, doc="the microstructure", registry=CELL_TYPES, tag="type")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="one table per phase",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
