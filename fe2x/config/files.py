"""Reading a job's TOML file: parse, validate against the declared tables, build the laws.

Every error is one line naming the file (:class:`~fe2x.errors.ConfigError`); reading never
imports DOLFINx or PETSc.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fe2x.config.cells import CellTable
from fe2x.config.materials import (
    build_conductivities,
    build_expansions,
    build_laws,
    check_phases,
    laws_kinematics,
)
from fe2x.config.run_tables import BoundaryTable, MacroTable, MicroTable, RunFile
from fe2x.config.rve_tables import (
    ExportTable,
    HomogenizationFile,
    HomogenizeTable,
    PathOutputTable,
    PathSettings,
    RVEPathFile,
    RVETable,
    check_export,
)
from fe2x.config.schema import Context, read_table
from fe2x.config.sve_tables import SVEFile
from fe2x.errors import ConfigError
from fe2x.io.material_cards import CARD_FORMATS
from fe2x.materials.law import ConstitutiveLaw
from fe2x.sve.study import MICROSTRUCTURES, SVEStudy

__all__ = [
    "HomogenizationConfig",
    "RVEPathConfig",
    "RunConfig",
    "SVEConfig",
    "as_dict",
    "load_toml",
    "read_homogenization_config",
    "read_run_config",
    "read_rve_path_config",
    "read_sve_config",
    "with_export_formats",
    "with_resolution",
]


def load_toml(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Parse a TOML file; a missing, unreadable or malformed file raises ConfigError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return path, tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def _read(
    cls: type, path: str | Path, allow_petsc_scripts: bool
) -> tuple[Context, Any, dict[str, Any]]:
    path, data = load_toml(path)
    ctx = Context(path, allow_petsc_scripts)
    return ctx, read_table(cls, data, "top level", ctx), data


@dataclass(frozen=True)
class HomogenizationConfig:
    """A whole ``fe2x homogenize`` config: the cell, each phase's (elastic) law, the settings.

    ``conductivity`` holds each phase's (dim, dim) k and ``expansion`` its 3D Mandel α, for
    the phases that give them; ``export`` the material cards to write.
    """

    path: Path
    cell: CellTable
    materials: dict[str, ConstitutiveLaw]
    homogenize: HomogenizeTable
    conductivity: dict[str, np.ndarray] = field(default_factory=dict)
    expansion: dict[str, np.ndarray] = field(default_factory=dict)
    export: ExportTable = ExportTable()


def read_homogenization_config(
    path: str | Path, allow_petsc_scripts: bool = False
) -> HomogenizationConfig:
    """Read and validate a ``fe2x homogenize`` config file."""
    ctx, file, _ = _read(HomogenizationFile, path, allow_petsc_scripts)
    check_phases(ctx, file.cell.phase_names(), file.materials, "materials")
    laws = build_laws(ctx, file.materials, "materials", linear_only=True)
    conductivity = build_conductivities(ctx, file.materials, file.cell.dim, "materials")
    expansion = build_expansions(ctx, file.materials, "materials")
    return HomogenizationConfig(
        ctx.path, file.cell, laws, file.homogenize, conductivity, expansion, file.export
    )


def with_export_formats(config: HomogenizationConfig, formats: list[str]) -> HomogenizationConfig:
    """A copy of ``config`` that also writes the material cards of ``formats`` (``--export``)."""
    ctx = Context(config.path)
    for fmt in formats:
        if fmt not in CARD_FORMATS:
            raise ConfigError(
                f"--export {fmt!r}: unknown material card format; known are "
                f"{', '.join(CARD_FORMATS)}"
            )
    merged = tuple(dict.fromkeys([*config.export.formats, *formats]))
    export = replace(config.export, formats=merged)
    export.validate(ctx, "export")
    check_export(ctx, config.cell, config.homogenize, export)
    return replace(config, export=export)


@dataclass(frozen=True)
class RVEPathConfig:
    """A whole ``fe2x rve-path`` config."""

    path: Path
    cell: CellTable
    materials: dict[str, ConstitutiveLaw]
    rve: RVETable
    load: PathSettings
    output: PathOutputTable = PathOutputTable()


def read_rve_path_config(path: str | Path, allow_petsc_scripts: bool = False) -> RVEPathConfig:
    """Read and validate a ``fe2x rve-path`` config file."""
    ctx, file, _ = _read(RVEPathFile, path, allow_petsc_scripts)
    check_phases(ctx, file.cell.phase_names(), file.materials, "materials")
    laws = build_laws(ctx, file.materials, "materials")
    kinematics = laws_kinematics(ctx, laws, "materials")
    settings = file.path.settings(ctx, file.cell.dim, kinematics)
    return RVEPathConfig(ctx.path, file.cell, laws, file.rve, settings, file.output)


@dataclass(frozen=True)
class RunConfig:
    """A whole ``fe2x run`` config: its tables, the micro models' factories, and the digest.

    ``digest`` identifies what the run computes (all but ``[parallel]`` and ``[checkpoint]``):
    a checkpoint is only continued with a config of the same digest.
    """

    path: Path
    tables: RunFile
    digest: str

    @property
    def macro(self) -> MacroTable:
        """``[macro]``."""
        return self.tables.macro

    @property
    def boundaries(self) -> tuple[BoundaryTable, ...]:
        """The ``[[boundary]]`` tables."""
        return self.tables.boundary

    @property
    def micro(self) -> Mapping[str, MicroTable]:
        """The ``[micro.<name>]`` tables by name."""
        return self.tables.micro

    def micro_factories(self) -> dict[str, Any]:
        """Microstructure name -> function building its model on a group communicator."""
        ctx, dim = Context(self.path), self.macro.dim
        return {name: m.factory(ctx, name, dim) for name, m in self.micro.items()}

    steps = property(lambda self: self.tables.loading.steps, doc="nominal load increments")
    max_cutbacks = property(lambda self: self.tables.loading.max_cutbacks, doc="halvings")
    end_time = property(lambda self: self.tables.loading.end_time, doc="time at λ = 1")
    group_size = property(lambda self: self.tables.parallel.group_size, doc="ranks per group")
    balance = property(lambda self: self.tables.parallel.balance, doc="load balancing")
    elastic_shortcut = property(lambda self: self.tables.parallel.elastic_shortcut, doc="shortcut")
    write_fields = property(lambda self: self.tables.output.fields, doc="macro fields")
    micro_points = property(lambda self: self.tables.output.micro_points, doc="micro points")
    micro_steps = property(lambda self: self.tables.output.micro_steps, doc="micro steps")
    training_data = property(lambda self: self.tables.output.training_data, doc="training data")
    training_fluctuations = property(
        lambda self: self.tables.output.training_fluctuations, doc="with fluctuations"
    )
    checkpoint_steps = property(lambda self: self.tables.checkpoint.every_steps, doc="every n")
    checkpoint_minutes = property(lambda self: self.tables.checkpoint.every_minutes, doc="minutes")
    rve_size = property(lambda self: self.tables.diagnostics.rve_size, doc="RVE size")
    separation_threshold = property(lambda self: self.tables.diagnostics.threshold, doc="limit")


def _results_digest(data: Mapping[str, Any], ignore: tuple[str, ...]) -> str:
    """SHA-256 of a parsed config without the ``ignore`` tables: what decides the results.

    A restart may so change how the run is executed (ranks per RVE group, load balancing,
    checkpoint frequency) but nothing it computes.
    """
    kept = {key: value for key, value in data.items() if key not in ignore}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def read_run_config(path: str | Path, allow_petsc_scripts: bool = False) -> RunConfig:
    """Read and validate a ``fe2x run`` config file (materials are checked, laws built)."""
    ctx, file, data = _read(RunFile, path, allow_petsc_scripts)
    config = RunConfig(ctx.path, file, _results_digest(data, ignore=("parallel", "checkpoint")))
    config.micro_factories()  # builds every law: non-physical constants fail here, not later
    return config


def with_resolution(
    config: RunConfig,
    macro_size: float | None = None,
    cell_size: float | None = None,
    steps: int | None = None,
) -> RunConfig:
    """A copy of ``config`` with another macro mesh size, RVE mesh size and number of load steps.

    For mesh studies and quick runs; the RVE mesh size applies to every microstructure that has
    a meshed cell, and ``None`` keeps the config's value. The digest changes with them, so that
    the checkpoints of the two are not mistaken for each other.
    """
    tables = config.tables
    macro = tables.macro if macro_size is None else replace(tables.macro, mesh_size=macro_size)
    micro = {}
    for name, m in tables.micro.items():
        cell = getattr(m, "cell", None)
        if cell_size is not None and cell is not None and hasattr(cell, "mesh_size"):
            m = replace(m, cell=replace(cell, mesh_size=cell_size))  # type: ignore[call-arg]
        micro[name] = m
    loading = tables.loading if steps is None else replace(tables.loading, steps=steps)
    changes = json.dumps([macro_size, cell_size, steps])
    digest = config.digest
    if changes != json.dumps([None, None, None]):
        digest = hashlib.sha256(f"{digest} {changes}".encode()).hexdigest()
    new = replace(tables, macro=macro, micro=micro, loading=loading)
    return RunConfig(config.path, new, digest)


@dataclass(frozen=True)
class SVEConfig:
    """A whole ``fe2x sve`` config file: the ``[sve]`` study and its phases' materials."""

    path: Path
    study: SVEStudy


def read_sve_config(path: str | Path, allow_petsc_scripts: bool = False) -> SVEConfig:
    """Read and validate a ``fe2x sve`` config file (``[sve]`` and ``[materials.*]``)."""
    ctx, file, _ = _read(SVEFile, path, allow_petsc_scripts)
    microstructure = file.sve.microstructure
    check_phases(ctx, MICROSTRUCTURES[microstructure], file.materials, "materials")
    materials = build_laws(ctx, file.materials, "materials", linear_only=True)
    if microstructure == "polycrystal" and "orientation" not in getattr(
        materials["grains"], "parameter_shapes", {}
    ):
        ctx.fail(
            f"[materials.grains] model = {file.materials['grains'].model!r} gives every grain "
            "the same stiffness: a polycrystal needs per-grain orientations (model = 'crystal')"
        )
    try:
        study = SVEStudy(materials=materials, **file.sve.study_values())
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{ctx.path}: [sve] {error}") from None
    return SVEConfig(path=ctx.path, study=study)


def as_dict(config: Any) -> Any:
    """A JSON-friendly copy of a config (tables as dicts, paths as strings, laws by fields)."""
    if is_dataclass(config) and not isinstance(config, type):
        return {f.name: as_dict(getattr(config, f.name)) for f in fields(config)}
    if isinstance(config, Mapping):
        return {str(k): as_dict(v) for k, v in config.items()}
    if isinstance(config, tuple | list):
        return [as_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    if hasattr(config, "tolist"):
        return config.tolist()
    if config is None or isinstance(config, str | int | float | bool):
        return config
    if hasattr(config, "__dict__"):  # e.g. a law of a plug-in: its public attributes
        public = {k: v for k, v in vars(config).items() if not k.startswith("_")}
        return {"type": type(config).__name__, **as_dict(public)}
    return repr(config)
