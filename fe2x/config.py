"""TOML config files -> validated, typed settings; every error names the file, key and reason.

A homogenization config has three tables::

    [cell]                      # the microstructure
    type = "inclusion"          # inclusion | laminate | random | file
    dim = 2
    ...
    [materials.<phase>]         # one table per phase: E and nu, or C_mandel (6x6)
    [homogenize]                # optional: boundary conditions, degree, solver, output
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fe2x.errors import ConfigError, MaterialError
from fe2x.materials import (
    AnisotropicElastic,
    IsotropicElastic,
    elastic_material,
    mandel_weights,
)
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.solver import SOLVER_KINDS
from fe2x.registry import BOUNDARY_CONDITIONS

CELL_TYPES = ("inclusion", "laminate", "random", "file")
Material = IsotropicElastic | AnisotropicElastic | J2Plasticity
_REQUIRED = object()


@dataclass(frozen=True)
class CellConfig:
    """The ``[cell]`` table: which microstructure to build and how finely to mesh it."""

    type: str
    dim: int
    lengths: tuple[float, ...]
    mesh_size: float
    geometry_order: int
    volume_fraction: float | None = None
    fractions: tuple[float, ...] | None = None
    phases: tuple[str, ...] | None = None
    axis: int = 0
    seed: int = 0
    min_gap: float = 0.0
    radius: float | None = None
    number: int | None = None
    path: Path | None = None

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The phase of each layer of a laminate (a name may repeat, as in a-b-a stacks)."""
        return self.phases or tuple(f"layer{i}" for i in range(len(self.fractions or ())))

    def nominal_volume_fractions(self) -> dict[str, float]:
        """The phase volume fractions the geometry asks for, where they are exact: inclusion
        and laminate cells (random packings and mesh files have none)."""
        if self.type == "inclusion":
            return {"matrix": 1.0 - self.volume_fraction, "inclusion": self.volume_fraction}
        if self.type == "laminate":
            nominal: dict[str, float] = {}
            for name, fraction in zip(self.layer_names, self.fractions, strict=True):
                nominal[name] = nominal.get(name, 0.0) + fraction
            return nominal
        return {}


@dataclass(frozen=True)
class HomogenizeConfig:
    """The ``[homogenize]`` table."""

    bcs: tuple[str, ...] = BOUNDARY_CONDITIONS.names()
    degree: int = 2
    solver: str = "auto"
    petsc_options: dict[str, Any] = field(default_factory=dict)
    write_fields: bool = True


@dataclass(frozen=True)
class HomogenizationConfig:
    """A whole ``fe2x homogenize`` config file."""

    path: Path
    cell: CellConfig
    materials: dict[str, IsotropicElastic | AnisotropicElastic]
    homogenize: HomogenizeConfig


class _Table:
    """Reads one TOML table, checking types and rejecting unknown keys."""

    def __init__(self, path: Path, name: str, data: Any, allowed: tuple[str, ...]) -> None:
        self.path, self.name = path, name
        if not isinstance(data, dict):
            self.fail(f"[{name}] must be a table")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(f"[{name}] unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
        self.data = data

    def fail(self, message: str) -> None:
        raise ConfigError(f"{self.path}: {message}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _REQUIRED,
        check: Callable[[Any], bool] | None = None,
        expect: str = "",
    ) -> Any:
        """The value at ``key`` of type ``kind`` satisfying ``check`` (``expect`` says what)."""
        if key not in self.data:
            if default is _REQUIRED:
                self.fail(f"[{self.name}] {key} is required")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and isinstance(value, float):
            ok = math.isfinite(value)
        if not ok or (check is not None and not check(value)):
            what = expect or getattr(kind, "__name__", str(kind))
            self.fail(f"[{self.name}] {key} = {value!r}: expected {what}")
        return value

    def floats(self, key: str, length: int | None = None, default: Any = _REQUIRED) -> Any:
        """A list of finite positive floats (of ``length`` entries, if given)."""
        value = self.get(key, list, default)
        if value is default:
            return default
        valid = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in value
        )
        if not valid or (length is not None and len(value) != length) or not value:
            n = f"{length} " if length else ""
            self.fail(f"[{self.name}] {key} = {value!r}: expected a list of {n}positive numbers")
        return tuple(float(v) for v in value)


def _positive(v: float) -> bool:
    return v > 0


def _read_cell(path: Path, data: Any) -> CellConfig:
    table = _Table(
        path,
        "cell",
        data,
        (
            "type",
            "dim",
            "lengths",
            "mesh_size",
            "geometry_order",
            "volume_fraction",
            "fractions",
            "phases",
            "axis",
            "seed",
            "min_gap",
            "radius",
            "number",
            "path",
        ),
    )
    kind = table.get("type", str, check=lambda v: v in CELL_TYPES, expect=" | ".join(CELL_TYPES))
    dim = table.get("dim", int, 2, check=lambda v: v in (2, 3), expect="2 or 3")
    common = {
        "type": kind,
        "dim": dim,
        "lengths": table.floats("lengths", dim, (1.0,) * dim),
        "mesh_size": table.get(
            "mesh_size",
            float,
            0.1 if kind != "file" else 0.0,
            _positive if kind != "file" else None,
            "a positive number",
        ),
        "geometry_order": table.get("geometry_order", int, 2, lambda v: v in (1, 2), "1 or 2"),
    }
    unit_fraction = {"check": lambda v: 0 < v < 1, "expect": "a number in (0, 1)"}
    used: tuple[str, ...]
    if kind == "inclusion":
        used = ("volume_fraction",)
        extra = {"volume_fraction": table.get("volume_fraction", float, **unit_fraction)}
    elif kind == "laminate":
        used = ("fractions", "phases", "axis")
        fractions = table.floats("fractions")
        if abs(sum(fractions) - 1.0) > 1e-12:
            table.fail(
                f"[cell] fractions = {list(fractions)} must sum to 1 (sum {sum(fractions):.6g})"
            )
        phases = table.get("phases", list, None)
        if phases is not None and (
            len(phases) != len(fractions) or not all(isinstance(p, str) and p for p in phases)
        ):
            table.fail(
                f"[cell] phases = {phases!r}: expected {len(fractions)} phase names, one per layer"
            )
        extra = {
            "fractions": fractions,
            "phases": tuple(phases) if phases else None,
            "axis": table.get("axis", int, 0, lambda v: 0 <= v < dim, f"an axis in 0..{dim - 1}"),
        }
    elif kind == "random":
        used = ("volume_fraction", "seed", "min_gap", "radius", "number")
        extra = {
            "volume_fraction": table.get("volume_fraction", float, **unit_fraction),
            "seed": table.get("seed", int, 0, lambda v: v >= 0, "a non-negative integer"),
            "min_gap": table.get("min_gap", float, 0.0, lambda v: v >= 0, "a number >= 0"),
            "radius": table.get("radius", float, None, _positive, "a positive number"),
            "number": table.get("number", int, None, _positive, "a positive integer"),
        }
        if (extra["radius"] is None) == (extra["number"] is None):
            table.fail("[cell] a random cell needs exactly one of radius and number")
    else:
        used = ("path",)
        file = Path(table.get("path", str))
        extra = {"path": file if file.is_absolute() else path.parent / file}
    for key in table.data:
        if key not in (*common, *used):
            table.fail(f"[cell] {key} does not apply to a {kind!r} cell")
    return CellConfig(**common, **extra)


J2_KEYS = ("model", "E", "nu", "sigma_y", "hardening", "H", "Q", "b", "H_kin")
MATERIAL_MODELS = ("elastic", "j2")


def _read_material(path: Path, name: str, table: Any, plastic: bool) -> Material:
    """One ``[materials.<name>]`` table: ``model = "elastic"`` (default) or ``"j2"``."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [materials.{name}] must be a table")
    model = table.get("model", "elastic")
    if model not in MATERIAL_MODELS:
        raise ConfigError(
            f"{path}: [materials.{name}] model = {model!r}; allowed: {', '.join(MATERIAL_MODELS)}"
        )
    try:
        if model == "elastic":
            return elastic_material(name, {k: v for k, v in table.items() if k != "model"})
        if not plastic:
            raise ConfigError(
                f"{path}: [materials.{name}] model = 'j2' needs a nonlinear job (fe2x rve-path)"
            )
        unknown = sorted(set(table) - set(J2_KEYS))
        if unknown:
            raise ConfigError(
                f"{path}: [materials.{name}] unknown key {unknown[0]!r} for model 'j2'; "
                f"allowed: {', '.join(J2_KEYS)}"
            )
        values = {k: v for k, v in table.items() if k != "model"}
        for key, value in values.items():
            if key != "hardening" and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(
                    f"{path}: [materials.{name}] {key} = {value!r}: expected a number"
                )
        if "sigma_y" not in values or "E" not in values or "nu" not in values:
            raise ConfigError(f"{path}: [materials.{name}] model 'j2' needs E, nu and sigma_y")
        return J2Plasticity(**values, name=name)
    except MaterialError as error:
        raise ConfigError(f"{path}: [materials] {error}") from None


def _read_materials(path: Path, data: Any, plastic: bool = False) -> dict[str, Material]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: [materials] needs one table per phase, e.g. [materials.matrix]")
    return {name: _read_material(path, name, table, plastic) for name, table in data.items()}


def _read_homogenize(path: Path, data: Any) -> HomogenizeConfig:
    table = _Table(
        path, "homogenize", data, ("bcs", "degree", "solver", "petsc_options", "write_fields")
    )
    bcs = table.get(
        "bcs",
        list,
        list(BOUNDARY_CONDITIONS.names()),
        lambda v: bool(v) and all(b in BOUNDARY_CONDITIONS for b in v) and len(set(v)) == len(v),
        f"a list of distinct names from {list(BOUNDARY_CONDITIONS.names())}",
    )
    options = table.get("petsc_options", dict, {})
    if not all(isinstance(v, str | int | float | bool) for v in options.values()):
        table.fail("[homogenize] petsc_options values must be strings, numbers or booleans")
    return HomogenizeConfig(
        bcs=tuple(bcs),
        degree=table.get("degree", int, 2, lambda v: v in (1, 2), "1 or 2"),
        solver=table.get(
            "solver", str, "auto", lambda v: v in SOLVER_KINDS, " | ".join(SOLVER_KINDS)
        ),
        petsc_options={str(k): v for k, v in options.items()},
        write_fields=table.get("write_fields", bool, True),
    )


def load_toml(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Parse a TOML file; a missing or malformed file raises ConfigError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return path, tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def read_homogenization_config(path: str | Path) -> HomogenizationConfig:
    """Read and validate a ``fe2x homogenize`` config file."""
    path, data = load_toml(path)
    _Table(path, "top level", data, ("cell", "materials", "homogenize"))
    if "cell" not in data:
        raise ConfigError(f"{path}: a [cell] table is required")
    cell = _read_cell(path, data["cell"])
    materials = _read_materials(path, data.get("materials"))
    homogenize = _read_homogenize(path, data.get("homogenize", {}))
    if cell.type != "file" and homogenize.degree < cell.geometry_order:
        raise ConfigError(
            f"{path}: [homogenize] degree = {homogenize.degree} is below [cell] geometry_order = "
            f"{cell.geometry_order}; a degree-1 field needs geometry_order = 1"
        )
    _check_phases(path, cell, materials)
    return HomogenizationConfig(path=path, cell=cell, materials=materials, homogenize=homogenize)


def _check_phases(path: Path, cell: CellConfig, materials: Mapping[str, Any]) -> None:
    """The materials must name exactly the phases of a built-in cell."""
    expected = _cell_phase_names(cell)
    if expected is None:
        return
    missing = [p for p in expected if p not in materials]
    extra = [m for m in materials if m not in expected]
    if missing or extra:
        raise ConfigError(
            f"{path}: [materials] must define exactly the phases {list(expected)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {extra}" if extra else "")
        )


def _cell_phase_names(cell: CellConfig) -> tuple[str, ...] | None:
    """The phase names a built-in cell will have (None for a mesh file: known once read)."""
    if cell.type in ("inclusion", "random"):
        return ("matrix", "inclusion")
    if cell.type == "laminate":
        return tuple(dict.fromkeys(cell.layer_names))
    return None


def as_dict(config: Mapping[str, Any] | Any) -> Any:
    """A JSON-friendly copy of a config dataclass (paths as strings)."""
    if hasattr(config, "__dataclass_fields__"):
        return {k: as_dict(getattr(config, k)) for k in config.__dataclass_fields__}
    if isinstance(config, dict):
        return {k: as_dict(v) for k, v in config.items()}
    if isinstance(config, tuple | list):
        return [as_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    if hasattr(config, "tolist"):
        return config.tolist()
    return config


@dataclass(frozen=True)
class RVESettings:
    """The ``[rve]`` table of a nonlinear job."""

    bc: str = "periodic"
    degree: int = 2
    solver: str = "direct"
    petsc_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PathSettings:
    """The ``[path]`` table: knot times, steps, per-component control (Mandel values)."""

    times: tuple[float, ...]
    steps: int
    values: tuple[tuple[float, ...], ...]  # (m knots, n components), Mandel
    stress_controlled: tuple[bool, ...]
    output_steps: tuple[int, ...]


@dataclass(frozen=True)
class RVEPathConfig:
    """A whole ``fe2x rve-path`` config file."""

    path: Path
    cell: CellConfig
    materials: dict[str, Material]
    rve: RVESettings
    load: PathSettings


NONLINEAR_BCS = ("periodic", "kubc", "subc")
NONLINEAR_SOLVERS = ("direct", "shared_elastic")


def _read_rve(path: Path, data: Any) -> RVESettings:
    table = _Table(path, "rve", data, ("bc", "degree", "solver", "petsc_options"))
    options = table.get("petsc_options", dict, {})
    if not all(isinstance(v, str | int | float | bool) for v in options.values()):
        table.fail("[rve] petsc_options values must be strings, numbers or booleans")
    return RVESettings(
        bc=table.get(
            "bc", str, "periodic", lambda v: v in NONLINEAR_BCS, " | ".join(NONLINEAR_BCS)
        ),
        degree=table.get("degree", int, 2, lambda v: v in (1, 2), "1 or 2"),
        solver=table.get(
            "solver", str, "direct", lambda v: v in NONLINEAR_SOLVERS, " | ".join(NONLINEAR_SOLVERS)
        ),
        petsc_options={str(k): v for k, v in options.items()},
    )


def _read_path(path: Path, data: Any, dim: int) -> PathSettings:
    """Components are named by tensor index (E11, S12, ...); shear values are scaled to Mandel."""
    labels = ["11", "22", "12"] if dim == 2 else ["11", "22", "33", "23", "13", "12"]
    components = [f"{kind}{label}" for kind in "ES" for label in labels]
    table = _Table(path, "path", data, ("times", "steps", "output_steps", *components))
    times = table.get("times", list, [0.0, 1.0])
    if len(times) < 2 or not all(
        isinstance(t, int | float) and not isinstance(t, bool) for t in times
    ):
        table.fail(f"[path] times = {times!r}: expected a list of at least two numbers")
    if times[0] != 0 or any(b <= a for a, b in itertools.pairwise(times)):
        table.fail(f"[path] times = {times!r}: must start at 0 and increase strictly")
    steps = table.get("steps", int, 10, lambda v: v >= 1, "a positive integer")
    output_steps = table.get(
        "output_steps",
        list,
        [],
        lambda v: all(isinstance(i, int) and 0 < i <= steps for i in v),
        f"a list of step numbers in 1..{steps}",
    )
    values = np.zeros((len(times), len(labels)))
    stress_controlled = [False] * len(labels)
    for i, label in enumerate(labels):
        given = [kind for kind in "ES" if f"{kind}{label}" in table.data]
        if len(given) == 2:
            table.fail(f"[path] E{label} and S{label} both given: control each component once")
        if not given:
            continue  # strain-controlled at zero
        key = f"{given[0]}{label}"
        value = table.data[key]
        series = [value] * len(times) if isinstance(value, int | float) else value
        if (
            not isinstance(series, list)
            or len(series) != len(times)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in series)
        ):
            table.fail(
                f"[path] {key} = {value!r}: expected a number or a list of {len(times)} numbers "
                "(one per time)"
            )
        values[:, i] = np.asarray(series, dtype=float) * mandel_weights(dim)[i]
        stress_controlled[i] = given[0] == "S"
    if all(stress_controlled):
        table.fail("[path] every component is stress-controlled; control at least one strain")
    return PathSettings(
        times=tuple(float(t) for t in times),
        steps=steps,
        values=tuple(tuple(row) for row in values.tolist()),
        stress_controlled=tuple(stress_controlled),
        output_steps=tuple(output_steps),
    )


def read_rve_path_config(path: str | Path) -> RVEPathConfig:
    """Read and validate a ``fe2x rve-path`` config file."""
    path, data = load_toml(path)
    _Table(path, "top level", data, ("cell", "materials", "rve", "path"))
    if "cell" not in data or "path" not in data:
        raise ConfigError(f"{path}: [cell] and [path] tables are required")
    cell = _read_cell(path, data["cell"])
    materials = _read_materials(path, data.get("materials"), plastic=True)
    rve = _read_rve(path, data.get("rve", {}))
    if cell.type != "file" and rve.degree < cell.geometry_order:
        raise ConfigError(
            f"{path}: [rve] degree = {rve.degree} is below [cell] geometry_order = "
            f"{cell.geometry_order}; a degree-1 field needs geometry_order = 1"
        )
    _check_phases(path, cell, materials)
    load = _read_path(path, data["path"], cell.dim)
    return RVEPathConfig(path=path, cell=cell, materials=materials, rve=rve, load=load)


MACRO_SHAPES: dict[str, tuple[str, ...]] = {
    "block": ("lengths",),
    "plate_with_hole": ("width", "height", "radius", "thickness"),
    "notched_bar": ("length", "width", "notch_depth", "notch_radius", "thickness"),
    "three_point_bending": ("length", "height", "thickness", "support_width", "load_width", "span"),
    "file": ("path",),
}


@dataclass(frozen=True)
class MacroSettings:
    """The ``[macro]`` table: the specimen and its discretisation."""

    shape: str
    dim: int
    mesh_size: float
    order: int = 1
    degree: int = 1
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BoundarySpec:
    """One ``[[boundary]]`` entry: prescribed displacement components and/or a traction."""

    name: str
    displacement: dict[int, float]
    traction: tuple[float, ...] | None


@dataclass(frozen=True)
class MicroSettings:
    """One ``[micro.<name>]`` table: an RVE, or a homogeneous elastic material (no RVE)."""

    name: str
    regions: tuple[str, ...]
    model: str
    cell: CellConfig | None = None
    materials: dict[str, Material] = field(default_factory=dict)
    rve: RVESettings = field(default_factory=RVESettings)
    elastic: IsotropicElastic | AnisotropicElastic | None = None


@dataclass(frozen=True)
class RunConfig:
    """A whole ``fe2x run`` config file.

    ``digest`` identifies what the run computes (all but ``[parallel]`` and ``[checkpoint]``):
    a checkpoint is only continued with a config of the same digest.
    """

    path: Path
    macro: MacroSettings
    boundaries: tuple[BoundarySpec, ...]
    micro: dict[str, MicroSettings]
    steps: int
    max_cutbacks: int
    group_size: int
    balance: bool
    elastic_shortcut: bool
    write_fields: bool
    checkpoint_steps: int = 0
    checkpoint_minutes: float = 0.0
    digest: str = ""
    micro_points: tuple[tuple[float, ...], ...] = ()
    micro_steps: tuple[int, ...] = ()
    rve_size: float = 0.0
    separation_threshold: float = 0.5


def _read_macro(path: Path, data: Any) -> MacroSettings:
    shape_keys = sorted({k for keys in MACRO_SHAPES.values() for k in keys})
    table = _Table(
        path, "macro", data, ("shape", "dim", "mesh_size", "order", "degree", *shape_keys)
    )
    shape = table.get(
        "shape", str, check=lambda v: v in MACRO_SHAPES, expect=" | ".join(MACRO_SHAPES)
    )
    dim = table.get("dim", int, 2, lambda v: v in (2, 3), "2 or 3")
    parameters: dict[str, Any] = {}
    for key in shape_keys:
        if key not in table.data:
            continue
        if key not in MACRO_SHAPES[shape]:
            table.fail(f"[macro] {key} does not apply to shape {shape!r}")
        if key == "lengths":
            parameters[key] = table.floats(key, dim)
        elif key == "path":
            file = Path(table.get(key, str))
            parameters[key] = file if file.is_absolute() else path.parent / file
        else:
            parameters[key] = table.get(key, float, check=_positive, expect="a positive number")
    return MacroSettings(
        shape=shape,
        dim=dim,
        mesh_size=table.get("mesh_size", float, 0.1, _positive, "a positive number"),
        order=table.get("order", int, 1, lambda v: v in (1, 2), "1 or 2"),
        degree=table.get("degree", int, 1, lambda v: v in (1, 2), "1 or 2"),
        parameters=parameters,
    )


def _read_boundaries(path: Path, data: Any, dim: int) -> tuple[BoundarySpec, ...]:
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: at least one [[boundary]] table is needed")
    components = ("ux", "uy", "uz")[:dim]
    specs = []
    for i, entry in enumerate(data):
        table = _Table(path, f"boundary #{i + 1}", entry, ("name", *components, "traction"))
        name = table.get("name", str)
        displacement = {
            c: table.get(key, float) for c, key in enumerate(components) if key in table.data
        }
        traction = table.get(
            "traction",
            list,
            None,
            lambda v: (
                len(v) == dim
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            ),
            f"a list of {dim} numbers",
        )
        if traction is not None:
            traction = tuple(float(x) for x in traction)
        if not displacement and traction is None:
            table.fail(f"[[boundary]] {name!r} prescribes nothing: give ux/uy/uz or traction")
        specs.append(BoundarySpec(name=name, displacement=displacement, traction=traction))
    return tuple(specs)


def _read_micro(path: Path, name: str, data: Any) -> MicroSettings:
    table = _Table(
        path,
        f"micro.{name}",
        data,
        ("regions", "model", "cell", "materials", "rve", "E", "nu", "C_mandel"),
    )
    regions = table.get(
        "regions", list, [], lambda v: all(isinstance(r, str) for r in v), "a list of names"
    )
    model = table.get("model", str, "rve", lambda v: v in ("rve", "elastic"), "rve | elastic")
    if model == "elastic":
        for key in ("cell", "materials", "rve"):
            if key in table.data:
                table.fail(f"[micro.{name}] {key} does not apply to model 'elastic'")
        values = {k: v for k, v in table.data.items() if k in ("E", "nu", "C_mandel")}
        elastic = _read_material(path, name, values, plastic=False)
        return MicroSettings(name, tuple(regions), model, elastic=elastic)  # type: ignore[arg-type]
    for key in ("E", "nu", "C_mandel"):
        if key in table.data:
            table.fail(f"[micro.{name}] {key} applies to model 'elastic' only")
    if "cell" not in table.data:
        table.fail(f"[micro.{name}] an RVE needs a [micro.{name}.cell] table")
    cell = _read_cell(path, table.data["cell"])
    materials = _read_materials(path, table.data.get("materials"), plastic=True)
    _check_phases(path, cell, materials)
    rve = _read_rve(path, table.data.get("rve", {}))
    if cell.type != "file" and rve.degree < cell.geometry_order:
        table.fail(
            f"[micro.{name}.rve] degree = {rve.degree} is below the cell's geometry_order = "
            f"{cell.geometry_order}"
        )
    return MicroSettings(name, tuple(regions), model, cell=cell, materials=materials, rve=rve)


def _results_digest(data: Mapping[str, Any], ignore: tuple[str, ...]) -> str:
    """SHA-256 of a parsed config without the ``ignore`` tables: what decides the results, so
    that a restart may change how the run is executed (ranks per RVE group, load balancing,
    checkpoint frequency) but nothing it computes."""
    kept = {key: value for key, value in data.items() if key not in ignore}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def read_run_config(path: str | Path) -> RunConfig:
    """Read and validate a ``fe2x run`` config file."""
    path, data = load_toml(path)
    _Table(
        path,
        "top level",
        data,
        (
            "macro",
            "boundary",
            "micro",
            "loading",
            "parallel",
            "output",
            "checkpoint",
            "diagnostics",
        ),
    )
    if "macro" not in data or "micro" not in data:
        raise ConfigError(f"{path}: [macro] and [micro.<name>] tables are required")
    macro = _read_macro(path, data["macro"])
    boundaries = _read_boundaries(path, data.get("boundary"), macro.dim)
    if not isinstance(data["micro"], dict) or not data["micro"]:
        raise ConfigError(f"{path}: [micro] needs one table per microstructure")
    micro = {name: _read_micro(path, name, table) for name, table in data["micro"].items()}
    if len(micro) > 1 and any(not m.regions for m in micro.values()):
        raise ConfigError(f"{path}: with several microstructures, each needs its regions")
    loading = _Table(path, "loading", data.get("loading", {}), ("steps", "max_cutbacks"))
    parallel = _Table(
        path, "parallel", data.get("parallel", {}), ("group_size", "balance", "elastic_shortcut")
    )
    output = _Table(
        path, "output", data.get("output", {}), ("fields", "micro_points", "micro_steps")
    )
    micro_points = output.get(
        "micro_points",
        list,
        [],
        lambda v: all(
            isinstance(p, list)
            and len(p) == macro.dim
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in p)
            for p in v
        ),
        f"a list of points with {macro.dim} coordinates each",
    )
    micro_steps = output.get(
        "micro_steps",
        list,
        [],
        lambda v: all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in v),
        "a list of step numbers",
    )
    checkpoint = _Table(
        path, "checkpoint", data.get("checkpoint", {}), ("every_steps", "every_minutes")
    )
    diagnostics = _Table(
        path, "diagnostics", data.get("diagnostics", {}), ("rve_size", "threshold")
    )
    return RunConfig(
        path=path,
        macro=macro,
        boundaries=boundaries,
        micro=micro,
        steps=loading.get("steps", int, 10, lambda v: v >= 1, "a positive integer"),
        max_cutbacks=loading.get("max_cutbacks", int, 5, lambda v: v >= 0, "an integer >= 0"),
        group_size=parallel.get("group_size", int, 1, lambda v: v >= 1, "a positive integer"),
        balance=parallel.get("balance", bool, True),
        elastic_shortcut=parallel.get("elastic_shortcut", bool, True),
        write_fields=output.get("fields", bool, True),
        checkpoint_steps=checkpoint.get("every_steps", int, 0, lambda v: v >= 0, "an integer >= 0"),
        checkpoint_minutes=checkpoint.get(
            "every_minutes", float, 0.0, lambda v: v >= 0, "a number >= 0"
        ),
        digest=_results_digest(data, ignore=("parallel", "checkpoint")),
        micro_points=tuple(tuple(float(x) for x in p) for p in micro_points),
        micro_steps=tuple(micro_steps),
        rve_size=diagnostics.get("rve_size", float, 0.0, lambda v: v >= 0, "a length >= 0"),
        separation_threshold=diagnostics.get(
            "threshold", float, 0.5, _positive, "a positive number"
        ),
    )


def with_resolution(
    config: RunConfig,
    macro_size: float | None = None,
    cell_size: float | None = None,
    steps: int | None = None,
) -> RunConfig:
    """A copy of ``config`` with another macro mesh size, RVE mesh size (of every
    microstructure that has a cell) and number of load steps: for mesh studies and quick runs.
    ``None`` keeps the config's value. The digest changes with them, so that the checkpoints of
    the two are not mistaken for each other."""
    macro = config.macro if macro_size is None else replace(config.macro, mesh_size=macro_size)
    micro = {
        name: m
        if cell_size is None or m.cell is None
        else replace(m, cell=replace(m.cell, mesh_size=cell_size))
        for name, m in config.micro.items()
    }
    changes = json.dumps([macro_size, cell_size, steps])
    digest = config.digest
    if changes != json.dumps([None, None, None]):
        digest = hashlib.sha256(f"{digest} {changes}".encode()).hexdigest()
    steps = config.steps if steps is None else steps
    return replace(config, macro=macro, micro=micro, steps=steps, digest=digest)


SVE_KEYS = (
    "dim",
    "sizes",
    "realizations",
    "volume_fraction",
    "min_gap",
    "diameter",
    "bcs",
    "elements_per_diameter",
    "degree",
    "geometry_order",
    "seed",
    "group_size",
    "precision",
    "confidence",
    "solver",
    "petsc_options",
)


@dataclass(frozen=True)
class SVEConfig:
    """A whole ``fe2x sve`` config file: the ``[sve]`` study and the two phases' materials."""

    path: Path
    study: Any  # fe2x.sve.SVEStudy


def read_sve_config(path: str | Path) -> SVEConfig:
    """Read and validate a ``fe2x sve`` config file (``[sve]`` and ``[materials.*]``)."""
    from fe2x.sve import SVEStudy

    path, data = load_toml(path)
    _Table(path, "top level", data, ("sve", "materials"))
    table = _Table(path, "sve", data.get("sve", {}), SVE_KEYS)
    materials = _read_materials(path, data.get("materials"))
    if sorted(materials) != ["inclusion", "matrix"]:
        raise ConfigError(f"{path}: [materials] must define the phases 'matrix' and 'inclusion'")
    values = dict(table.data)
    for key in ("sizes", "bcs"):
        if key in values:
            values[key] = tuple(table.get(key, list))
    try:
        study = SVEStudy(materials=materials, **values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: [sve] {error}") from None
    return SVEConfig(path=path, study=study)
