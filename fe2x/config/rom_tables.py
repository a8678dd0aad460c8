"""The tables of reduced-order RVEs: ``[sample]``, ``[reduce]``, their files, the reduced model.

``[sample]`` is read by ``fe2x sample``, ``[reduce]`` by ``fe2x reduce``; the micro model is
``[micro.<name>] model = "reduced"``.

One file may serve both jobs: ``[cell]``, ``[materials]``, ``[rve]`` describe the RVE,
``[sample]`` the strain paths that train it and ``[reduce]`` the basis built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fe2x.config.cells import CELL_TYPES, CellTable
from fe2x.config.materials import MATERIAL_MODELS, MaterialTable, build_laws
from fe2x.config.run_tables import MicroFactory, RVEMicro
from fe2x.config.rve_tables import RVETable, _degree_fits
from fe2x.config.schema import REQUIRED, Context, Table, option, read_table

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = [
    "PATH_SHAPES",
    "ReduceTable",
    "ReducedMicro",
    "SampleConfig",
    "SampleFile",
    "SampleTable",
    "read_sample_config",
]

#: Strain paths of ``[sample] shape``, as knots in units of the path's amplitude.
PATH_SHAPES: dict[str, tuple[float, ...]] = {
    "monotonic": (0.0, 1.0),
    "unload": (0.0, 1.0, 0.0),
    "reverse": (0.0, 1.0, -1.0),
}


def _positive(v: float) -> bool:
    return v > 0


@dataclass(frozen=True, kw_only=True)
class SampleTable(Table):
    """``[sample]``: random macro strain paths that drive one RVE to make training data."""

    paths: int = option(
        32, doc="number of strain paths", check=lambda v: v >= 1, expect="a positive integer"
    )
    steps: int = option(
        10, doc="increments per path", check=lambda v: v >= 1, expect="a positive integer"
    )
    max_strain: float = option(
        REQUIRED,
        doc="largest amplitude ‖E‖ (Mandel norm = tensor norm) of a path",
        check=_positive,
        expect="a positive number",
    )
    min_strain: float = option(
        0.0,
        doc="smallest amplitude; amplitudes are spread evenly in between",
        check=lambda v: v >= 0,
        expect="a number >= 0",
    )
    shape: Literal["monotonic", "unload", "reverse"] = option(
        "unload",
        doc="each path goes 0 → A d (`monotonic`), 0 → A d → 0 (`unload`) or 0 → A d → −A d "
        "(`reverse`), d a unit direction",
    )
    design: Literal["sobol", "lhs"] = option(
        "sobol", doc="space-filling design of directions and amplitudes (scipy.stats.qmc)"
    )
    seed: int = option(0, doc="seed of the design (scrambling)")
    group_size: int = option(
        1,
        doc="ranks per RVE; the paths are spread over the groups",
        check=lambda v: v >= 1,
        expect="a positive integer",
    )
    fluctuations: bool = option(True, doc="store the fluctuation field of every step")

    def validate(self, ctx: Context, where: str) -> None:
        """The amplitude range is ordered."""
        if self.min_strain > self.max_strain:
            ctx.fail(
                f"[{where}] min_strain = {self.min_strain} exceeds max_strain = {self.max_strain}"
            )


@dataclass(frozen=True, kw_only=True)
class ReduceTable(Table):
    """``[reduce]``: the reduced basis and cubature built from training data."""

    training: Path | None = option(
        None,
        doc="training-data file or directory (relative to the config file)",
        shown_default="`DIR/training` of `--out DIR`",
    )
    microstructure: str | None = option(
        None, doc="the microstructure in the training data", shown_default="the only one"
    )
    modes: int | None = option(
        None,
        doc="basis size, the elastic modes (3 in 2D, 6 in 3D) included",
        check=lambda v: v >= 1,
        expect="a positive integer",
    )
    energy_tolerance: float | None = option(
        None,
        doc="or: the energy fraction of the inelastic snapshots the basis may leave out",
        check=lambda v: 0 < v < 1,
        expect="a number in (0, 1)",
    )
    cubature_tolerance: float = option(
        1e-3,
        doc="worst relative error of the empirical cubature over the training integrands",
        check=_positive,
        expect="a number > 0",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """One way of sizing the basis."""
        if (self.modes is None) == (self.energy_tolerance is None):
            ctx.fail(f"[{where}] give the basis size by modes or by energy_tolerance (one of them)")


@dataclass(frozen=True, kw_only=True)
class SampleFile(Table):
    """A whole ``fe2x sample`` / ``fe2x reduce`` config.

    Its tables are ``[cell]``, ``[materials]``, ``[rve]``, ``[sample]`` and ``[reduce]``.
    """

    cell: CellTable = option(REQUIRED, doc="the microstructure", registry=CELL_TYPES, tag="type")
    materials: Mapping[str, MaterialTable] = option(
        REQUIRED,
        doc="one table per phase",
        registry=MATERIAL_MODELS,
        tag="model",
        tag_default="elastic",
    )
    rve: RVETable = option(RVETable(), doc="the RVE's solver settings")
    sample: SampleTable | None = option(None, doc="the training paths (`fe2x sample`)")
    reduce: ReduceTable | None = option(None, doc="the reduced basis (`fe2x reduce`)")

    def validate(self, ctx: Context, where: str) -> None:
        """The degree fits the geometry."""
        _degree_fits(ctx, self.cell, self.rve.degree, "rve")


@dataclass(frozen=True)
class SampleConfig:
    """A whole ``fe2x sample`` / ``fe2x reduce`` config, its laws built."""

    path: Path
    cell: CellTable
    materials: dict[str, Any]
    rve: RVETable
    sample: SampleTable | None
    reduce: ReduceTable | None


def read_sample_config(
    path: str | Path, job: Literal["sample", "reduce"], allow_petsc_scripts: bool = False
) -> SampleConfig:
    """Read and validate the config of ``fe2x sample`` or ``fe2x reduce``.

    Each job needs its own table, ``[sample]`` or ``[reduce]``.
    """
    from fe2x.config.files import load_toml
    from fe2x.config.materials import check_phases

    path, data = load_toml(path)
    ctx = Context(path, allow_petsc_scripts)
    file = read_table(SampleFile, data, "top level", ctx)
    if getattr(file, job) is None:
        ctx.fail(f"fe2x {job} needs a [{job}] table")
    check_phases(ctx, file.cell.phase_names(), file.materials, "materials")
    laws = build_laws(ctx, file.materials, "materials")
    return SampleConfig(path, file.cell, laws, file.rve, file.sample, file.reduce)


@dataclass(frozen=True, kw_only=True)
class ReducedMicro(RVEMicro):
    """A reduced RVE: the RVE of `cell`, `materials`, `rve` and the basis built for it."""

    TAG_VALUE: ClassVar[str] = "reduced"
    model: str = option("reduced", doc="the micro model")
    basis: Path = option(
        REQUIRED, doc="the reduced-basis file of `fe2x reduce` (relative to the config file)"
    )
    tolerance: float = option(
        0.01,
        doc=(
            "relative error of Σ (κ η, calibrated) of a converged answer above which the full "
            "RVE answers"
        ),
        check=_positive,
        expect="a number > 0",
    )
    indicator_tolerance: float | None = option(
        None,
        doc="or: the threshold on the indicator η = ‖ΔΣ‖ / ‖σ‖_rms itself",
        check=_positive,
        expect="a number > 0",
    )
    strain_range: float = option(
        1.0,
        doc="the full RVE answers when ‖E‖ exceeds this times the training range",
        check=_positive,
        expect="a number > 0",
    )

    def factory(self, ctx: Context, name: str, dim: int) -> MicroFactory:
        """A builder of the reduced RVE on a communicator, from the cell, laws and basis file."""
        laws = build_laws(ctx, self.materials, f"micro.{name}.materials")
        cell, rve, basis = self.cell, self.rve, self.basis
        settings: dict[str, Any] = {
            "tolerance": self.tolerance,
            "indicator_tolerance": self.indicator_tolerance,
            "strain_range": self.strain_range,
        }
        if not basis.is_file():
            ctx.fail(f"[micro.{name}] basis = {str(basis)!r}: no such file")

        def build(comm: MPI.Comm) -> Any:
            from fe2x.errors import ConfigError, Fe2xError
            from fe2x.micro.reduced import ReducedRVE

            full = rve.nonlinear_rve(cell.build(comm), laws, f"fe2x_rve_{name}_")
            try:
                return ReducedRVE.from_file(full, basis, **settings)
            except Fe2xError as error:
                raise ConfigError(f"{ctx.path}: [micro.{name}] {error}") from None

        return build
