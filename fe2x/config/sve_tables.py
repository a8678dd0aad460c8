"""The tables of ``fe2x sve``: the ``[sve]`` study and the two phases' materials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from fe2x.config.materials import MATERIAL_MODELS, MaterialTable
from fe2x.config.rve_tables import _NO_OPTIONS, PetscOptions, _distinct_bcs
from fe2x.config.schema import REQUIRED, Table, option
from fe2x.registry import BOUNDARY_CONDITIONS

__all__ = ["SVEFile", "SVETable"]


def _positive(v: float) -> bool:
    return v > 0


@dataclass(frozen=True, kw_only=True)
class SVETable(Table):
    """``[sve]``: random equal inclusions at a fixed volume fraction, ensembles per size."""

    dim: Literal[2, 3] = option(2, doc="spatial dimension (2: plane strain)")
    sizes: tuple[float, ...] = option(
        REQUIRED, doc="cell edges over the inclusion diameter, increasing"
    )
    realizations: int | tuple[int, ...] = option(
        REQUIRED, doc="realizations per size (or a list, one per size)"
    )
    volume_fraction: float = option(REQUIRED, doc="inclusion volume fraction")
    min_gap: float = option(0.1, doc="least gap between inclusions, over the diameter")
    diameter: float = option(1.0, doc="inclusion diameter (length unit of the cells)")
    bcs: tuple[str, ...] = option(
        BOUNDARY_CONDITIONS.names(),
        doc="boundary conditions",
        check=_distinct_bcs,
        expect=f"distinct names from {', '.join(BOUNDARY_CONDITIONS.names())}",
        shown_default="all three",
    )
    elements_per_diameter: float = option(
        6.0, doc="mesh resolution", check=_positive, expect="a positive number"
    )
    degree: Literal[1, 2] = option(2, doc="Lagrange degree of the displacement")
    geometry_order: Literal[1, 2] = option(2, doc="1 (straight) or 2 (curved) elements")
    seed: int = option(0, doc="base seed; each realization derives its own")
    group_size: int = option(1, doc="ranks per RVE group")
    precision: float = option(0.01, doc="wanted relative precision of the mean")
    confidence: float = option(0.95, doc="level of the confidence intervals")
    solver: Literal["auto", "direct", "iterative"] = option("auto", doc="as in `[homogenize]`")
    petsc_options: PetscOptions = option(_NO_OPTIONS, petsc=True, doc="as in `[homogenize]`")


@dataclass(frozen=True, kw_only=True)
class SVEFile(Table):
    """A whole ``fe2x sve`` config."""

    sve: SVETable = option(REQUIRED, doc="the study")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="`matrix` and `inclusion`",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
