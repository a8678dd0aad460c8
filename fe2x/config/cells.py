"""The ``[cell]`` table: which microstructure to mesh, one declared variant per cell type.

A new cell type is one :class:`CellTable` subclass here (its keys, its phase names and how it
is built) and one ``CELL_TYPES.register`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.registry import Registry

if TYPE_CHECKING:
    from mpi4py import MPI

    from fe2x.geometry import RVEMesh

__all__ = [
    "CELL_TYPES",
    "CellTable",
    "FileCell",
    "InclusionCell",
    "LaminateCell",
    "RandomCell",
]


def _positive(v: float) -> bool:
    return v > 0


def _unit_fraction(v: float) -> bool:
    return 0 < v < 1


@dataclass(frozen=True, kw_only=True)
class CellTable(Table):
    """Keys every cell has: its type, dimension and box."""

    type: str = option(doc="the kind of cell", registry=None)
    dim: Literal[2, 3] = option(2, doc="spatial dimension (2: plane strain)")
    lengths: tuple[float, ...] | None = option(
        None,
        doc="edge lengths",
        check=lambda v: all(x > 0 for x in v),
        expect="a list of positive numbers",
        shown_default="`[1, 1(, 1)]`",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """The box has ``dim`` positive edges (a unit cell by default)."""
        if self.lengths is None:
            object.__setattr__(self, "lengths", (1.0,) * self.dim)
        elif len(self.lengths) != self.dim:
            ctx.fail(f"[{where}] lengths = {list(self.lengths)}: expected {self.dim} numbers")

    def phase_names(self) -> tuple[str, ...] | None:
        """The phases the cell will have (None: known only once built, e.g. a mesh file)."""
        return None

    def nominal_volume_fractions(self) -> dict[str, float]:
        """The phase volume fractions the geometry asks for, where they are exact."""
        return {}

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Mesh the cell on ``comm``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class _MeshedCell(CellTable):
    """Cells that fe2x meshes with gmsh."""

    mesh_size: float = option(0.1, doc="element size", check=_positive, expect="a positive number")
    geometry_order: Literal[1, 2] = option(2, doc="1 (straight) or 2 (curved) elements")


@dataclass(frozen=True, kw_only=True)
class InclusionCell(_MeshedCell):
    """One centred circle (sphere) of the inclusion phase in the matrix."""

    TAG_VALUE: ClassVar[str] = "inclusion"
    volume_fraction: float = option(
        REQUIRED, doc="inclusion fraction", check=_unit_fraction, expect="a number in (0, 1)"
    )

    def phase_names(self) -> tuple[str, ...]:
        return ("matrix", "inclusion")

    def nominal_volume_fractions(self) -> dict[str, float]:
        return {"matrix": 1.0 - self.volume_fraction, "inclusion": self.volume_fraction}

    def build(self, comm: MPI.Comm) -> RVEMesh:
        from fe2x.geometry import inclusion_cell

        return inclusion_cell(
            comm,
            self.dim,
            self.lengths,
            self.volume_fraction,
            mesh_size=self.mesh_size,
            geometry_order=self.geometry_order,
        )


@dataclass(frozen=True, kw_only=True)
class LaminateCell(_MeshedCell):
    """Flat layers normal to ``axis``."""

    TAG_VALUE: ClassVar[str] = "laminate"
    fractions: tuple[float, ...] = option(
        REQUIRED,
        doc="layer thickness fractions, summing to 1",
        check=lambda v: bool(v) and all(x > 0 for x in v),
        expect="a list of positive numbers",
    )
    phases: tuple[str, ...] | None = option(
        None,
        doc="phase name of each layer (repeat names for a-b-a stacks)",
        check=lambda v: all(v),
        expect="a list of non-empty names",
        shown_default="`layer0, layer1, ...`",
    )
    axis: int = option(0, doc="layer normal (0, 1, 2 = x, y, z)")

    def validate(self, ctx: Context, where: str) -> None:
        """Fractions sum to 1, one phase per layer, the axis exists."""
        super().validate(ctx, where)
        if abs(sum(self.fractions) - 1.0) > 1e-12:
            ctx.fail(
                f"[{where}] fractions = {list(self.fractions)} must sum to 1 "
                f"(sum {sum(self.fractions):.6g})"
            )
        if self.phases is not None and len(self.phases) != len(self.fractions):
            ctx.fail(
                f"[{where}] phases = {list(self.phases)}: expected {len(self.fractions)} phase "
                "names, one per layer"
            )
        if not 0 <= self.axis < self.dim:
            ctx.fail(f"[{where}] axis = {self.axis}: expected an axis in 0..{self.dim - 1}")

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The phase of each layer (a name may repeat, as in a-b-a stacks)."""
        return self.phases or tuple(f"layer{i}" for i in range(len(self.fractions)))

    def phase_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.layer_names))

    def nominal_volume_fractions(self) -> dict[str, float]:
        nominal: dict[str, float] = {}
        for name, fraction in zip(self.layer_names, self.fractions, strict=True):
            nominal[name] = nominal.get(name, 0.0) + fraction
        return nominal

    def build(self, comm: MPI.Comm) -> RVEMesh:
        from fe2x.geometry import laminate_cell

        return laminate_cell(
            comm,
            self.dim,
            self.lengths,
            self.fractions,
            self.axis,
            phase_names=self.phases,
            mesh_size=self.mesh_size,
            geometry_order=self.geometry_order,
        )


@dataclass(frozen=True, kw_only=True)
class RandomCell(_MeshedCell):
    """Equal circles (spheres) placed by random sequential addition, wrapped periodically."""

    TAG_VALUE: ClassVar[str] = "random"
    volume_fraction: float = option(
        REQUIRED, doc="inclusion fraction", check=_unit_fraction, expect="a number in (0, 1)"
    )
    radius: float | None = option(
        None, doc="inclusion radius (or give number)", check=_positive, expect="a positive number"
    )
    number: int | None = option(
        None,
        doc="number of inclusions (or give radius)",
        check=_positive,
        expect="a positive integer",
    )
    min_gap: float = option(
        0.0,
        doc="least distance between inclusion surfaces",
        check=lambda v: v >= 0,
        expect="a number >= 0",
    )
    seed: int = option(
        0,
        doc="random seed: the same seed gives the same cell on any number of ranks",
        check=lambda v: v >= 0,
        expect="a non-negative integer",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """Exactly one of radius and number."""
        super().validate(ctx, where)
        if (self.radius is None) == (self.number is None):
            ctx.fail(f"[{where}] a random cell needs exactly one of radius and number")

    def phase_names(self) -> tuple[str, ...]:
        return ("matrix", "inclusion")

    def build(self, comm: MPI.Comm) -> RVEMesh:
        from fe2x.geometry import random_cell

        return random_cell(
            comm,
            self.dim,
            self.lengths,
            self.volume_fraction,
            seed=self.seed,
            min_gap=self.min_gap,
            radius=self.radius,
            number=self.number,
            mesh_size=self.mesh_size,
            geometry_order=self.geometry_order,
        )


@dataclass(frozen=True, kw_only=True)
class FileCell(CellTable):
    """A periodic box mesh from a file: gmsh `.msh`, Abaqus `.inp`, VTK `.vtu` or XDMF."""

    TAG_VALUE: ClassVar[str] = "file"
    path: Path = option(
        REQUIRED,
        doc="a mesh file (relative to the config file): `.msh` with one physical group per "
        "phase, `.inp` with one element set per phase, `.vtu` or `.xdmf` with an integer "
        "cell-data array of phase numbers",
    )
    phase_data: str | None = option(
        None,
        doc="the cell-data array holding the phases of a `.vtu` or `.xdmf` file (phases "
        "`phase<n>`)",
        shown_default="`phase`, else the first integer array",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """The box comes from the file: lengths do not apply."""
        if self.lengths is not None:
            ctx.fail(f"[{where}] lengths does not apply to a 'file' cell (the mesh gives the box)")

    def build(self, comm: MPI.Comm) -> RVEMesh:
        from fe2x.geometry import read_cell

        return read_cell(comm, self.path, self.dim, phase_data=self.phase_data)


#: Cell types by the value of ``[cell] type``.
CELL_TYPES = Registry(
    "cell type",
    {
        "inclusion": InclusionCell,
        "laminate": LaminateCell,
        "random": RandomCell,
        "file": FileCell,
    },
)
