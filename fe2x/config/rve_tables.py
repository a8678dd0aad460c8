"""The tables of the single-RVE jobs: ``[homogenize]``, ``[rve]`` and ``[path]``, and the whole
files of ``fe2x homogenize`` and ``fe2x rve-path``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np

from fe2x.config.cells import CELL_TYPES, CellTable
from fe2x.config.materials import MATERIAL_MODELS, MaterialTable
from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.materials.mandel import mandel_weights
from fe2x.registry import BOUNDARY_CONDITIONS

__all__ = [
    "HomogenizationFile",
    "HomogenizeTable",
    "PathSettings",
    "PathTable",
    "RVEPathFile",
    "RVETable",
]

PetscOptions = Mapping[str, str | int | float | bool]
_NO_OPTIONS: PetscOptions = MappingProxyType({})


def _distinct_bcs(v: tuple[str, ...]) -> bool:
    return bool(v) and all(b in BOUNDARY_CONDITIONS for b in v) and len(set(v)) == len(v)


@dataclass(frozen=True, kw_only=True)
class HomogenizeTable(Table):
    """``[homogenize]``: boundary conditions, discretisation, solver, output."""

    bcs: tuple[str, ...] = option(
        BOUNDARY_CONDITIONS.names(),
        doc="any of `periodic`, `kubc` (affine displacement), `subc` (uniform traction / "
        "minimal kinematic)",
        check=_distinct_bcs,
        expect=f"distinct names from {', '.join(BOUNDARY_CONDITIONS.names())}",
        shown_default="all three",
    )
    degree: Literal[1, 2] = option(2, doc="Lagrange degree of the displacement")
    solver: Literal["auto", "direct", "iterative"] = option(
        "auto",
        doc="`direct` (MUMPS LU), `iterative` (CG + GAMG with rigid-body near-null space), "
        "`auto`: direct in 2D and for 3D cells up to 120k dofs",
    )
    petsc_options: PetscOptions = option(
        _NO_OPTIONS, doc="PETSc options for the RVE solver, e.g. `{ksp_rtol = 1e-10}`"
    )
    write_fields: bool = option(True, doc="write correctors and localization")


@dataclass(frozen=True, kw_only=True)
class RVETable(Table):
    """``[rve]``: the nonlinear RVE's boundary condition, discretisation and Newton solver."""

    bc: str = option(
        "periodic",
        doc="boundary condition",
        check=lambda v: v in BOUNDARY_CONDITIONS,
        expect=" | ".join(BOUNDARY_CONDITIONS.names()),
    )
    degree: Literal[1, 2] = option(2, doc="Lagrange degree of the displacement")
    solver: Literal["auto", "direct", "shared_elastic"] = option(
        "auto",
        doc="`direct`: factorize each Newton Jacobian (best in 2D); `shared_elastic`: CG "
        "preconditioned by one factorization of the elastic cell (faster for 3D cells from "
        "about 20k dofs); `auto`: chosen by dimension and size",
    )
    petsc_options: PetscOptions = option(
        _NO_OPTIONS, doc="SNES/KSP options of the RVE, e.g. `{snes_rtol = 1e-10}`"
    )


class PathSettings(NamedTuple):
    """A resolved ``[path]``: knot times, steps, per-component control (Mandel values)."""

    times: tuple[float, ...]
    steps: int
    values: tuple[tuple[float, ...], ...]  # (m knots, n components), Mandel
    stress_controlled: tuple[bool, ...]
    output_steps: tuple[int, ...]


_LABELS = {2: ("11", "22", "12"), 3: ("11", "22", "33", "23", "13", "12")}
Series = float | tuple[float, ...] | None


def _component(kind: str, label: str) -> object:
    what = "strain" if kind == "E" else "stress"
    return option(
        None,
        doc=f"{what} component {label} (tensor value): one value per time, or a constant",
        expect="a number or a list of numbers (one per time)",
    )


@dataclass(frozen=True, kw_only=True)
class PathTable(Table):
    """``[path]``: a piecewise-linear path in time, each component strain- or stress-controlled."""

    times: tuple[float, ...] = option(
        (0.0, 1.0), doc="knot times, from 0, increasing; values are linear in between"
    )
    steps: int = option(
        10,
        doc="equal increments over [0, times[-1]]",
        check=lambda v: v >= 1,
        expect="a positive integer",
    )
    output_steps: tuple[int, ...] = option(
        (), doc="steps whose micro fields are written to `micro/step<k>.bp`"
    )
    E11: Series = _component("E", "11")
    E22: Series = _component("E", "22")
    E33: Series = _component("E", "33")
    E23: Series = _component("E", "23")
    E13: Series = _component("E", "13")
    E12: Series = _component("E", "12")
    S11: Series = _component("S", "11")
    S22: Series = _component("S", "22")
    S33: Series = _component("S", "33")
    S23: Series = _component("S", "23")
    S13: Series = _component("S", "13")
    S12: Series = _component("S", "12")

    def validate(self, ctx: Context, where: str) -> None:
        """Times start at 0 and increase, output steps exist."""
        times = self.times
        if len(times) < 2 or times[0] != 0 or any(b <= a for a, b in itertools.pairwise(times)):
            ctx.fail(f"[{where}] times = {list(times)}: must start at 0 and increase strictly")
        if not all(0 < k <= self.steps for k in self.output_steps):
            ctx.fail(
                f"[{where}] output_steps = {list(self.output_steps)}: expected step numbers in "
                f"1..{self.steps}"
            )

    def settings(self, ctx: Context, dim: int, where: str = "path") -> PathSettings:
        """The path in Mandel components of a ``dim``-D cell (shear values scaled by √2)."""
        labels = _LABELS[dim]
        allowed = ", ".join(
            ["times", "steps", "output_steps"] + [k + c for k in "ES" for c in labels]
        )
        for kind, label in itertools.product("ES", _LABELS[3]):
            if label not in labels and getattr(self, f"{kind}{label}") is not None:
                ctx.fail(
                    f"[{where}] unknown key '{kind}{label}' for a {dim}D cell; allowed: {allowed}"
                )
        m = len(self.times)
        values = np.zeros((m, len(labels)))
        stress_controlled = [False] * len(labels)
        for i, label in enumerate(labels):
            given = [kind for kind in "ES" if getattr(self, f"{kind}{label}") is not None]
            if len(given) == 2:
                ctx.fail(f"[{where}] E{label} and S{label} both given: control each component once")
            if not given:
                continue  # strain-controlled at zero
            value = getattr(self, f"{given[0]}{label}")
            series = (value,) * m if isinstance(value, float) else value
            if len(series) != m:
                ctx.fail(
                    f"[{where}] {given[0]}{label} = {list(series)}: expected a number or a list "
                    f"of {m} numbers (one per time)"
                )
            values[:, i] = np.asarray(series) * mandel_weights(dim)[i]
            stress_controlled[i] = given[0] == "S"
        if all(stress_controlled):
            ctx.fail(f"[{where}] every component is stress-controlled; control at least one strain")
        return PathSettings(
            self.times,
            self.steps,
            tuple(map(tuple, values.tolist())),
            tuple(stress_controlled),
            self.output_steps,
        )


def _degree_fits(ctx: Context, cell: CellTable, degree: int, where: str) -> None:
    order = getattr(cell, "geometry_order", 1)
    if degree < order:
        ctx.fail(
            f"[{where}] degree = {degree} is below [cell] geometry_order = {order}; a degree-1 "
            "field needs geometry_order = 1"
        )


@dataclass(frozen=True, kw_only=True)
class HomogenizationFile(Table):
    """A whole ``fe2x homogenize`` config: ``[cell]``, ``[materials.<phase>]``, ``[homogenize]``."""

    cell: CellTable = option(REQUIRED, doc="the microstructure", registry=CELL_TYPES, tag="type")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="one table per phase",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
    homogenize: HomogenizeTable = option(HomogenizeTable(), doc="solver and output settings")

    def validate(self, ctx: Context, where: str) -> None:
        """The degree fits the geometry."""
        _degree_fits(ctx, self.cell, self.homogenize.degree, "homogenize")


@dataclass(frozen=True, kw_only=True)
class RVEPathFile(Table):
    """A whole ``fe2x rve-path`` config: ``[cell]``, ``[materials]``, ``[rve]``, ``[path]``."""

    cell: CellTable = option(REQUIRED, doc="the microstructure", registry=CELL_TYPES, tag="type")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="one table per phase",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
    rve: RVETable = option(RVETable(), doc="the RVE's solver settings")
    path: PathTable = option(REQUIRED, doc="the loading path")

    def validate(self, ctx: Context, where: str) -> None:
        """The degree fits the geometry."""
        _degree_fits(ctx, self.cell, self.rve.degree, "rve")
