"""The tables of ``fe2x run``: specimen, boundaries, microstructures, and how the run goes.

The macro specimen has one variant per shape and the microstructures one per micro model; the
other tables are loading, parallel layout, output, checkpoints and diagnostics.

A new micro model is one :class:`MicroTable` subclass (its keys and ``factory``) registered in
:data:`MICRO_MODELS`; a new specimen shape one :class:`MacroTable` subclass in
:data:`MACRO_SHAPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fe2x.config.cells import CellTable
from fe2x.config.materials import (
    ElasticTable,
    build_laws,
    laws_kinematics,
)
from fe2x.config.microstructure import Microstructure
from fe2x.config.rve_tables import RVETable
from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.materials.elastic import AnisotropicElastic, IsotropicElastic
from fe2x.registry import Registry

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = [
    "MACRO_SHAPES",
    "MICRO_MODELS",
    "BoundaryTable",
    "CheckpointTable",
    "DiagnosticsTable",
    "LoadingTable",
    "MacroTable",
    "MicroTable",
    "OutputTable",
    "ParallelTable",
    "RunFile",
]

_AXES = "xyz"


def _positive(v: float) -> bool:
    return v > 0


def _positive_option(doc: str, default: Any = REQUIRED) -> Any:
    return option(default, doc=doc, check=_positive, expect="a positive number")


# -- [macro] ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MacroTable(Table):
    """``[macro]``: the specimen and its discretisation."""

    shape: str = option(doc="the specimen")
    dim: Literal[2, 3] = option(2, doc="spatial dimension (2: plane strain)")
    mesh_size: float = _positive_option("element size", 0.1)
    order: Literal[1, 2] = option(1, doc="geometry order of the macro mesh")
    degree: Literal[1, 2] = option(1, doc="Lagrange degree of the macro displacement")
    kinematics: Literal["small", "finite"] = option(
        "small",
        doc="`small` strain, or `finite` strain (total Lagrangian in F and P; the micro models "
        "must be finite-strain, tractions are nominal)",
    )

    SHAPE_KEYS: ClassVar[tuple[str, ...]] = ()

    @property
    def parameters(self) -> dict[str, Any]:
        """The shape's own parameters that were given (the geometry builder's keywords)."""
        values = {key: getattr(self, key) for key in self.SHAPE_KEYS}
        return {key: value for key, value in values.items() if value is not None}

    def build(self, comm: MPI.Comm) -> Any:
        """Mesh the specimen on ``comm`` (a :class:`fe2x.geometry.macro.MacroMesh`)."""
        from fe2x.geometry import macro

        builder = getattr(macro, self.shape)
        return builder(
            comm, self.dim, mesh_size=self.mesh_size, order=self.order, **self.parameters
        )


_THICKNESS = "extrusion thickness: a 3D specimen (dim = 3)"


@dataclass(frozen=True, kw_only=True)
class BlockShape(MacroTable):
    """A box; boundaries left, right, bottom, top (, front, back)."""

    TAG_VALUE: ClassVar[str] = "block"
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = ("lengths",)
    lengths: tuple[float, ...] = option(
        REQUIRED,
        doc="edge lengths",
        check=lambda v: all(x > 0 for x in v),
        expect="a list of positive numbers",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """One length per dimension."""
        if len(self.lengths) != self.dim:
            ctx.fail(f"[{where}] lengths = {list(self.lengths)}: expected {self.dim} numbers")


@dataclass(frozen=True, kw_only=True)
class PlateWithHoleShape(MacroTable):
    """A plate with a central hole; boundaries left, right, bottom, top, hole."""

    TAG_VALUE: ClassVar[str] = "plate_with_hole"
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = ("width", "height", "radius", "thickness")
    width: float = _positive_option("plate width")
    height: float = _positive_option("plate height")
    radius: float = _positive_option("hole radius")
    thickness: float | None = _positive_option(_THICKNESS, None)


@dataclass(frozen=True, kw_only=True)
class NotchedBarShape(MacroTable):
    """A bar with two opposite notches; boundaries left, right, notch, free."""

    TAG_VALUE: ClassVar[str] = "notched_bar"
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = (
        "length",
        "width",
        "notch_depth",
        "notch_radius",
        "thickness",
    )
    length: float = _positive_option("bar length")
    width: float = _positive_option("bar width")
    notch_depth: float = _positive_option("notch depth")
    notch_radius: float = _positive_option("notch root radius")
    thickness: float | None = _positive_option(_THICKNESS, None)


@dataclass(frozen=True, kw_only=True)
class ThreePointBendingShape(MacroTable):
    """A beam on two supports loaded at mid-span; boundaries supports, load, free."""

    TAG_VALUE: ClassVar[str] = "three_point_bending"
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = (
        "length",
        "height",
        "thickness",
        "support_width",
        "load_width",
        "span",
    )
    length: float = _positive_option("beam length")
    height: float = _positive_option("beam height")
    thickness: float | None = _positive_option(_THICKNESS, None)
    support_width: float | None = _positive_option("width of each support", None)
    load_width: float | None = _positive_option("width of the loaded patch", None)
    span: float | None = _positive_option("distance between the supports", None)


@dataclass(frozen=True, kw_only=True)
class FileShape(MacroTable):
    """A `.msh` file with physical groups for regions and boundaries."""

    TAG_VALUE: ClassVar[str] = "file"
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = ("path",)
    path: Path = option(REQUIRED, doc="the mesh file (relative to the config file)")

    def build(self, comm: MPI.Comm) -> Any:
        from fe2x.geometry import macro

        return macro.read_macro(comm, self.path)


#: Specimen shapes by the value of ``[macro] shape``.
MACRO_SHAPES = Registry(
    "macro shape",
    {
        "block": BlockShape,
        "plate_with_hole": PlateWithHoleShape,
        "notched_bar": NotchedBarShape,
        "three_point_bending": ThreePointBendingShape,
        "file": FileShape,
    },
)


# -- [[boundary]] -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BoundaryTable(Table):
    """``[[boundary]]``: prescribed displacement components and/or a traction on a boundary."""

    name: str = option(REQUIRED, doc="a boundary of the specimen")
    ux: float | None = option(None, doc="prescribed displacement x (scaled by the load factor)")
    uy: float | None = option(None, doc="prescribed displacement y")
    uz: float | None = option(None, doc="prescribed displacement z (3D)")
    traction: tuple[float, ...] | None = option(
        None, doc="traction, force per area (scaled by the load factor)"
    )

    @property
    def displacement(self) -> dict[int, float]:
        """Prescribed displacement by component index."""
        values = (self.ux, self.uy, self.uz)
        return {c: v for c, v in enumerate(values) if v is not None}

    def validate(self, ctx: Context, where: str) -> None:
        """It prescribes something."""
        if not self.displacement and self.traction is None:
            ctx.fail(f"[[boundary]] {self.name!r} prescribes nothing: give ux/uy/uz or traction")

    def check_dim(self, ctx: Context, dim: int) -> None:
        """Components and traction fit a ``dim``-D specimen, each component controlled once.

        A component is either displacement- or traction-controlled, never both.
        """
        if dim == 2 and self.uz is not None:
            ctx.fail(f"[[boundary]] {self.name!r}: uz does not apply to a 2D specimen")
        if self.traction is not None:
            if len(self.traction) != dim:
                ctx.fail(
                    f"[[boundary]] {self.name!r}: traction = {list(self.traction)}: expected a "
                    f"list of {dim} numbers"
                )
            both = [f"u{_AXES[c]}" for c in self.displacement if self.traction[c] != 0]
            if both:
                ctx.fail(
                    f"[[boundary]] {self.name!r}: {', '.join(both)} and a traction in the same "
                    "direction: a component is either displacement- or traction-controlled"
                )


# -- [micro.<name>] ---------------------------------------------------------------------------
MicroFactory = Callable[["MPI.Comm"], Any]


@dataclass(frozen=True, kw_only=True)
class MicroTable(Table):
    """``[micro.<name>]``: a microstructure and the macro regions it fills."""

    model: str = option("rve", doc="the micro model")
    regions: tuple[str, ...] = option((), doc="the macro regions it fills (all, if alone)")

    def factory(self, ctx: Context, name: str, dim: int) -> MicroFactory:
        """A function building this microstructure's model on an RVE group's communicator."""
        raise NotImplementedError

    def kinematics(self, ctx: Context, name: str) -> str | None:
        """``"small"`` or ``"finite"``, the strain measure its model answers in.

        None: known only once built; the FE² engine then checks it.
        """
        return None


@dataclass(frozen=True, kw_only=True)
class RVEMicro(MicroTable, Microstructure):
    """An RVE: the cell, its materials and the nonlinear RVE's settings."""

    TAG_VALUE: ClassVar[str] = "rve"
    rve: RVETable = option(RVETable(), doc="the `[rve]` table")

    def validate(self, ctx: Context, where: str) -> None:
        """The materials name the cell's phases; the degree fits the geometry."""
        from fe2x.config.materials import check_phases

        check_phases(ctx, self.cell.phase_names(), self.materials, f"{where}.materials")
        order = getattr(self.cell, "geometry_order", 1)
        if self.rve.degree < order:
            ctx.fail(
                f"[{where}.rve] degree = {self.rve.degree} is below the cell's geometry_order = "
                f"{order}"
            )

    def kinematics(self, ctx: Context, name: str) -> str:
        where = f"micro.{name}.materials"
        return laws_kinematics(ctx, build_laws(ctx, self.materials, where), where)

    def factory(self, ctx: Context, name: str, dim: int) -> MicroFactory:
        laws = build_laws(ctx, self.materials, f"micro.{name}.materials")
        cell, rve = self.cell, self.rve

        def build(comm: MPI.Comm) -> Any:

            return rve.nonlinear_rve(cell.build(comm), laws, f"fe2x_rve_{name}_")

        return build


@dataclass(frozen=True, kw_only=True)
class ElasticMicro(MicroTable, ElasticTable):
    """A homogeneous elastic material (no RVE): E and nu, or C_mandel."""

    TAG_VALUE: ClassVar[str] = "elastic"
    model: str = option("elastic", doc="the micro model")

    def kinematics(self, ctx: Context, name: str) -> str:
        return "small"

    def factory(self, ctx: Context, name: str, dim: int) -> MicroFactory:
        law = build_laws(ctx, {name: self}, "micro")[name]
        assert isinstance(law, IsotropicElastic | AnisotropicElastic), "ElasticTable.build's law"
        C = law.stiffness(dim)

        def build(comm: MPI.Comm) -> Any:
            from fe2x.micro.material_point import ElasticPoint

            return ElasticPoint(C)

        return build


#: Micro models by the value of ``[micro.<name>] model``.
MICRO_MODELS = Registry(
    "micro model",
    {"rve": RVEMicro, "elastic": ElasticMicro, "reduced": "fe2x.config.rom_tables:ReducedMicro"},
)


# -- the other tables -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LoadingTable(Table):
    """``[loading]``: load stepping."""

    steps: int = option(
        10, doc="nominal increments", check=lambda v: v >= 1, expect="a positive integer"
    )
    max_cutbacks: int = option(
        5,
        doc="successive halvings of a failing increment",
        check=lambda v: v >= 0,
        expect="an integer >= 0",
    )
    end_time: float = _positive_option(
        "the time at load factor 1 (rate-dependent micro laws; others ignore it)", 1.0
    )


@dataclass(frozen=True, kw_only=True)
class ParallelTable(Table):
    """``[parallel]``: RVE groups and load balancing (may change on restart)."""

    group_size: int = option(
        1,
        doc="ranks per RVE group; must divide the number of ranks",
        check=lambda v: v >= 1,
        expect="a positive integer",
    )
    balance: bool = option(True, doc="cost-based re-assignment of points to groups")
    elastic_shortcut: bool = option(True, doc="answer virgin RVEs by the exact elastic shortcut")


@dataclass(frozen=True, kw_only=True)
class OutputTable(Table):
    """``[output]``: macro and micro fields."""

    fields: bool = option(True, doc="macro fields for ParaView")
    micro_points: tuple[tuple[float, ...], ...] = option(
        (), doc="RVEs of the macro points nearest these positions...", expect="a list of points"
    )
    micro_steps: tuple[int, ...] = option(
        (),
        doc="...written at these steps: `micro/point<id>_step<k>.bp`",
        check=lambda v: all(k > 0 for k in v),
        expect="a list of step numbers",
    )
    training_data: bool = option(
        False,
        doc="every RVE answer of every converged step (E, Σ, C, diagnostics) to "
        "`training/group<g>.h5`",
    )
    training_fluctuations: bool = option(
        True, doc="with `training_data`: also the fluctuation field (the snapshots of `reduce`)"
    )


@dataclass(frozen=True, kw_only=True)
class CheckpointTable(Table):
    """``[checkpoint]``: when to write `checkpoint.h5` (may change on restart)."""

    every_steps: int = option(
        0,
        doc="after every n-th converged step (0: never)",
        check=lambda v: v >= 0,
        expect="an integer >= 0",
    )
    every_minutes: float = option(
        0.0,
        doc="when this many minutes passed since the last one (0: never)",
        check=lambda v: v >= 0,
        expect="a number >= 0",
    )


@dataclass(frozen=True, kw_only=True)
class DiagnosticsTable(Table):
    """``[diagnostics]``: where first-order homogenization loses its meaning."""

    rve_size: float = option(
        0.0,
        doc="the RVE edge in macro length units (0: no indicator)",
        check=lambda v: v >= 0,
        expect="a length >= 0",
    )
    threshold: float = _positive_option("warn where rve_size · |∇E| / |E| exceeds this", 0.5)


@dataclass(frozen=True, kw_only=True)
class RunFile(Table):
    """A whole ``fe2x run`` config."""

    macro: MacroTable = option(REQUIRED, doc="the specimen", registry=MACRO_SHAPES, tag="shape")
    boundary: tuple[BoundaryTable, ...] = option(REQUIRED, doc="loaded and supported boundaries")
    micro: Mapping[str, MicroTable] = option(
        REQUIRED, doc="the microstructures", registry=MICRO_MODELS, tag="model", tag_default="rve"
    )
    loading: LoadingTable = option(LoadingTable(), doc="load stepping")
    parallel: ParallelTable = option(ParallelTable(), doc="RVE groups")
    output: OutputTable = option(OutputTable(), doc="fields")
    checkpoint: CheckpointTable = option(CheckpointTable(), doc="checkpoints")
    diagnostics: DiagnosticsTable = option(DiagnosticsTable(), doc="scale separation")

    def validate(self, ctx: Context, where: str) -> None:
        """Cross-table rules between the specimen, its boundaries and its microstructures.

        Boundaries fit the specimen's dimension and are named once; microstructures have
        regions when there are several, and claim a region once; RVE cells have the specimen's
        dimension and micro models its kinematics; micro points have its dimension.
        """
        dim = self.macro.dim
        if not self.boundary:
            ctx.fail("at least one [[boundary]] table is needed")
        names = [b.name for b in self.boundary]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            ctx.fail(f"[[boundary]] {twice[0]!r} is given twice: one table per boundary")
        for b in self.boundary:
            b.check_dim(ctx, dim)
        if len(self.micro) > 1 and any(not m.regions for m in self.micro.values()):
            ctx.fail("with several microstructures, each needs its regions")
        claimed: dict[str, str] = {}
        for name, m in self.micro.items():
            for region in m.regions:
                if region in claimed:
                    ctx.fail(
                        f"region {region!r} is claimed by [micro.{claimed[region]}] and "
                        f"[micro.{name}]: one microstructure per region"
                    )
                claimed[region] = name
            cell = getattr(m, "cell", None)
            if isinstance(cell, CellTable) and cell.dim != dim:
                ctx.fail(f"[micro.{name}.cell] dim = {cell.dim} differs from [macro] dim = {dim}")
            kinematics = m.kinematics(ctx, name)
            if kinematics is not None and kinematics != self.macro.kinematics:
                ctx.fail(
                    f"[micro.{name}] answers in {kinematics} strain (its model or materials), "
                    f"but [macro] kinematics = {self.macro.kinematics!r}: a "
                    f"{'finite' if kinematics == 'finite' else 'small'}-strain micro model needs "
                    f"kinematics = {kinematics!r}"
                )
        for point in self.output.micro_points:
            if len(point) != dim:
                ctx.fail(
                    f"[output] micro_points = {[list(p) for p in self.output.micro_points]}: "
                    f"expected points with {dim} coordinates each"
                )
