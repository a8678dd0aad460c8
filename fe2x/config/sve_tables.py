"""The tables of ``fe2x sve``: the ``[sve]`` study and its phases' materials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from fe2x.config.materials import MATERIAL_MODELS, MaterialTable
from fe2x.config.rve_tables import _NO_OPTIONS, PetscOptions, _distinct_bcs
from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.registry import BOUNDARY_CONDITIONS

__all__ = ["SVEFile", "SVETable"]


def _positive(v: float) -> bool:
    return v > 0


#: The keys of ``[sve]`` that only one microstructure reads.
_ONLY = {
    "inclusions": ("volume_fraction", "min_gap", "elements_per_diameter", "geometry_order"),
    "polycrystal": ("voxels_per_grain",),
}


@dataclass(frozen=True, kw_only=True)
class SVETable(Table):
    """``[sve]``: ensembles of random SVEs per size.

    Random equal inclusions at a fixed volume fraction, or random periodic Voronoi polycrystals.
    """

    microstructure: Literal["inclusions", "polycrystal"] = option(
        "inclusions",
        doc="random equal inclusions in a matrix (phases `matrix`, `inclusion`), or a periodic "
        "Voronoi polycrystal on voxels with random orientations (phase `grains`)",
    )
    dim: Literal[2, 3] = option(2, doc="spatial dimension (2: plane strain)")
    sizes: tuple[float, ...] = option(
        REQUIRED,
        doc="cell edges over the inclusion diameter (polycrystal: over the mean grain size, "
        "round(size^dim) grains), increasing",
    )
    realizations: int | tuple[int, ...] = option(
        REQUIRED, doc="realizations per size (or a list, one per size)"
    )
    volume_fraction: float | None = option(
        None, doc="inclusion volume fraction", shown_default="required (inclusions)"
    )
    min_gap: float | None = option(
        None, doc="least gap between inclusions, over the diameter", shown_default="`0.1`"
    )
    diameter: float = option(
        1.0, doc="inclusion diameter or mean grain size (length unit of the cells)"
    )
    voxels_per_grain: float | None = option(
        None,
        doc="polycrystal resolution: round(size * this) voxels per edge",
        check=_positive,
        expect="a positive number",
        shown_default="`4.0`",
    )
    bcs: tuple[str, ...] = option(
        BOUNDARY_CONDITIONS.names(),
        doc="boundary conditions",
        check=_distinct_bcs,
        expect=f"distinct names from {', '.join(BOUNDARY_CONDITIONS.names())}",
        shown_default="all three",
    )
    elements_per_diameter: float | None = option(
        None,
        doc="mesh resolution",
        check=_positive,
        expect="a positive number",
        shown_default="`6.0`",
    )
    degree: Literal[1, 2] = option(2, doc="Lagrange degree of the displacement")
    geometry_order: Literal[1, 2] | None = option(
        None, doc="1 (straight) or 2 (curved) elements", shown_default="`2`"
    )
    seed: int = option(0, doc="base seed; each realization derives its own")
    group_size: int = option(1, doc="ranks per RVE group")
    precision: float = option(0.01, doc="wanted relative precision of the mean")
    confidence: float = option(0.95, doc="level of the confidence intervals")
    solver: Literal["auto", "direct", "iterative"] = option("auto", doc="as in `[homogenize]`")
    petsc_options: PetscOptions = option(_NO_OPTIONS, petsc=True, doc="as in `[homogenize]`")

    def validate(self, ctx: Context, where: str) -> None:
        """Inclusions need a volume fraction; no key of the other microstructure is given."""
        for microstructure, names in _ONLY.items():
            if microstructure == self.microstructure:
                continue
            for name in names:
                if getattr(self, name) is not None:
                    ctx.fail(
                        f"[{where}] {name} does not apply to microstructure = "
                        f"{self.microstructure!r} (only to {microstructure!r})"
                    )
        if self.microstructure == "inclusions" and self.volume_fraction is None:
            ctx.fail(f"[{where}] volume_fraction is required for microstructure = 'inclusions'")

    def study_values(self) -> dict[str, object]:
        """The given keys (and defaults of the other keys) as :class:`SVEStudy` arguments."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["petsc_options"] = dict(self.petsc_options)
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
class SVEFile(Table):
    """A whole ``fe2x sve`` config."""

    sve: SVETable = option(REQUIRED, doc="the study")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="`matrix` and `inclusion` (polycrystal: `grains`, model `crystal`)",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
