"""The ``[cell]`` table: which microstructure to mesh, one declared variant per cell type.

A new cell type is one :class:`CellTable` subclass here (its keys, its phase names and how it
is built) and one ``CELL_TYPES.register`` call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.errors import Fe2xError, GeometryError, MaterialError
from fe2x.registry import Registry

if TYPE_CHECKING:
    from mpi4py import MPI

    from fe2x.geometry import RVEMesh

__all__ = [
    "CELL_TYPES",
    "CellTable",
    "FibreTexture",
    "FileCell",
    "InclusionCell",
    "LaminateCell",
    "PolycrystalCell",
    "RandomCell",
    "VoxelCell",
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
        """The matrix, then the inclusion."""
        return ("matrix", "inclusion")

    def nominal_volume_fractions(self) -> dict[str, float]:
        """``volume_fraction`` for the inclusion, the rest for the matrix."""
        return {"matrix": 1.0 - self.volume_fraction, "inclusion": self.volume_fraction}

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Mesh the centred inclusion in its box (:func:`fe2x.geometry.inclusion_cell`)."""
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
        """The distinct layer phases, in order of first appearance."""
        return tuple(dict.fromkeys(self.layer_names))

    def nominal_volume_fractions(self) -> dict[str, float]:
        """Each phase's fraction: the sum of its layers' thickness fractions."""
        nominal: dict[str, float] = {}
        for name, fraction in zip(self.layer_names, self.fractions, strict=True):
            nominal[name] = nominal.get(name, 0.0) + fraction
        return nominal

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Mesh the layers across ``axis`` (:func:`fe2x.geometry.laminate_cell`)."""
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
        """The matrix, then the inclusion phase that all inclusions share."""
        return ("matrix", "inclusion")

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Place the inclusions from ``seed`` and mesh them (:func:`fe2x.geometry.random_cell`)."""
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
        """Read the mesh file and its phases onto ``comm`` (:func:`fe2x.geometry.read_cell`)."""
        from fe2x.geometry import read_cell

        return read_cell(comm, self.path, self.dim, phase_data=self.phase_data)


def _direction(v: tuple[float, ...]) -> bool:
    return len(v) == 3 and any(x != 0 for x in v)


@dataclass(frozen=True, kw_only=True)
class FibreTexture(Table):
    """A fibre texture: a crystal direction held along a sample direction, spun and tilted.

    The spin about the fibre axis is uniform and its tilt Gaussian
    (:func:`fe2x.materials.orientations.fibre_texture`).
    """

    crystal_direction: tuple[float, ...] = option(
        REQUIRED,
        doc="crystal direction along the fibre, e.g. `[1, 1, 1]`",
        check=_direction,
        expect="3 numbers, not all zero",
    )
    sample_direction: tuple[float, ...] = option(
        (0.0, 0.0, 1.0),
        doc="sample direction of the fibre axis",
        check=_direction,
        expect="3 numbers, not all zero",
    )
    spread: float = option(
        0.0,
        doc="standard deviation of the tilt components, degrees (0: the ideal fibre)",
        check=lambda v: v >= 0,
        expect="a number >= 0",
    )


#: What the rows of an orientation file are (fe2x.materials.orientations.ORIENTATION_KINDS).
OrientationFormat = Literal["euler_degrees", "euler_radians", "quaternion"]
#: Orientations are drawn from ``numpy.random.default_rng([seed, ORIENTATION_STREAM])``: a
#: stream of their own, apart from the seed points drawn with ``default_rng(seed)``.
ORIENTATION_STREAM = 1


@dataclass(frozen=True, kw_only=True)
class _GrainOrientations(Table):
    """Keys of cells whose grains carry an orientation (``cell_data["orientation"]``)."""

    orientations: str | Path | FibreTexture = option(
        "random",
        doc="grain orientations: `random` (uniform on SO(3)); a file with one row per grain, "
        "Bunge Euler angles `phi1 Phi phi2` in degrees or quaternions `q0 q1 q2 q3` (a header "
        "row naming the columns says which); or a fibre-texture table "
        "`{crystal_direction, sample_direction, spread}`",
        expect="'random', a file path or a table",
    )
    orientation_format: OrientationFormat | None = option(
        None,
        doc="what the rows of an orientation file are (default: its header, else Euler "
        "angles in degrees)",
    )
    orientation_seed: int | None = option(
        None,
        doc="seed of random and fibre orientations (default: the cell's `seed`; 0 for voxels)",
        check=lambda v: v >= 0,
        expect="a non-negative integer",
    )

    def _check_orientations(self, ctx: Context, where: str, n_grains: int | None) -> None:
        """Resolve an orientation file relative to the config file and read it once to check it.

        The file must hold ``n_grains`` rows, when known; a bad file fails here, naming the key.
        """
        if isinstance(self.orientations, FibreTexture) or self.orientations == "random":
            if self.orientation_format is not None:
                ctx.fail(f"[{where}] orientation_format applies to an orientation file only")
            return
        path = Path(self.orientations)
        if not path.is_absolute():
            path = ctx.path.parent / path
        object.__setattr__(self, "orientations", path)
        try:
            self._read_orientations(n_grains)
        except MaterialError as error:
            ctx.fail(f"[{where}] orientations: {error}")

    def _read_orientations(self, n_grains: int | None) -> np.ndarray:
        from fe2x.materials.orientations import read_orientations

        path = self.orientations
        assert not isinstance(path, FibreTexture), "a fibre texture is drawn, not read"
        return read_orientations(path, self.orientation_format, n_grains)

    def grain_orientations(self, n_grains: int, seed: int) -> np.ndarray:
        """The orientations (crystal -> sample) of ``n_grains`` grains, ``(n_grains, 3, 3)``.

        Random and fibre orientations are drawn from ``orientation_seed`` (default ``seed``).
        """
        from fe2x.materials.orientations import fibre_texture, random_orientations

        base = seed if self.orientation_seed is None else self.orientation_seed
        rng = np.random.default_rng([base, ORIENTATION_STREAM])
        if isinstance(self.orientations, FibreTexture):
            t = self.orientations
            return fibre_texture(
                n_grains, t.crystal_direction, t.sample_direction, t.spread, rng, degrees=True
            )
        if self.orientations == "random":
            return random_orientations(n_grains, rng)
        return self._read_orientations(n_grains)


def _resolution(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v,) if isinstance(v, int) else v


def _read_points(path: Path, dim: int) -> np.ndarray:
    """Seed points ``(n, dim)`` from a text or CSV file (``#`` comments).

    Raises:
        GeometryError: The file is unreadable, empty, or has a line that is not ``dim`` finite
            numbers; the message names the file and the line.
    """
    rows = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise GeometryError(
            f"seeds file '{path}' cannot be read ({type(error).__name__})"
        ) from None
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            row = [float(t) for t in line.replace(",", " ").split()]
        except ValueError:
            row = []
        if len(row) != dim or not all(math.isfinite(x) for x in row):
            raise GeometryError(f"seeds file '{path}': line {number} is not {dim} finite numbers")
        rows.append(row)
    if not rows:
        raise GeometryError(f"seeds file '{path}' holds no points")
    return np.array(rows)


@dataclass(frozen=True, kw_only=True)
class PolycrystalCell(_GrainOrientations, CellTable):
    """Periodic Voronoi (or Laguerre) grains on a voxel grid, every grain with an orientation.

    One hexahedron (square) per voxel (:func:`fe2x.geometry.polycrystal.polycrystal_cell`).
    """

    TAG_VALUE: ClassVar[str] = "polycrystal"
    n_grains: int | None = option(
        None,
        doc="number of grains (or give `seeds`)",
        check=_positive,
        expect="a positive integer",
    )
    seeds: Path | None = option(
        None,
        doc="a text/CSV file of seed points, one row of `dim` coordinates per grain, instead "
        "of random ones",
    )
    resolution: int | tuple[int, ...] = option(
        REQUIRED,
        doc="voxels per edge, or a list of voxels per axis",
        check=lambda v: all(n >= 1 for n in _resolution(v)),
        expect="a positive integer or a list of them",
    )
    seed: int = option(
        0,
        doc="random seed of the seed points: the same seed gives the same cell on any number "
        "of ranks",
        check=lambda v: v >= 0,
        expect="a non-negative integer",
    )
    weights: tuple[float, ...] | None = option(
        None, doc="Laguerre weights, one per grain, squared lengths (default: Voronoi)"
    )
    min_distance: float | None = option(
        None,
        doc="least periodic distance between random seeds (narrower grain sizes)",
        check=_positive,
        expect="a positive number",
    )
    phase: str = option("grains", doc="the phase of all grains", check=bool, expect="a name")

    def validate(self, ctx: Context, where: str) -> None:
        """Grains from a count or a seed file, with room for them and what each grain needs.

        The resolution is one number or one per axis with at least a voxel per grain, the weights
        are one per grain, and the orientations are readable.
        """
        super().validate(ctx, where)
        if self.seeds is not None:
            if self.min_distance is not None:
                ctx.fail(f"[{where}] min_distance applies to random seeds, not to a seeds file")
            try:
                n = len(_read_points(self.seeds, self.dim))
            except GeometryError as error:
                ctx.fail(f"[{where}] seeds: {error}")
            if self.n_grains not in (None, n):
                ctx.fail(f"[{where}] n_grains = {self.n_grains} but seeds holds {n} points")
            object.__setattr__(self, "n_grains", n)
        elif self.n_grains is None:
            ctx.fail(f"[{where}] a polycrystal cell needs n_grains or seeds")
        n_grains = self.n_grains
        assert n_grains is not None  # given, or counted in the seeds file
        resolution = _resolution(self.resolution)
        if len(resolution) not in (1, self.dim):
            ctx.fail(
                f"[{where}] resolution = {list(resolution)}: expected one number or {self.dim}"
            )
        voxels = resolution[0] ** self.dim if len(resolution) == 1 else math.prod(resolution)
        if n_grains > voxels:
            ctx.fail(
                f"[{where}] n_grains = {n_grains}: more grains than the {voxels} voxels of "
                f"resolution = {self.resolution!r}; raise the resolution"
            )
        if self.weights is not None and len(self.weights) != n_grains:
            ctx.fail(
                f"[{where}] weights: {len(self.weights)} given, expected one per grain ({n_grains})"
            )
        self._check_orientations(ctx, where, n_grains)

    def phase_names(self) -> tuple[str, ...]:
        """The one phase that all grains share, ``phase``."""
        return (self.phase,)

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Mesh the grains with their orientations (:func:`fe2x.geometry.polycrystal_cell`)."""
        from fe2x.geometry import polycrystal_cell

        seeds = None if self.seeds is None else _read_points(self.seeds, self.dim)
        assert self.n_grains is not None, "set by validate"
        return polycrystal_cell(
            comm,
            self.dim,
            self.lengths,
            self.n_grains,
            _resolution(self.resolution),
            self.seed,
            weights=self.weights,
            seeds=seeds,
            min_distance=self.min_distance,
            phase_name=self.phase,
            grain_data={"orientation": self.grain_orientations(self.n_grains, self.seed)},
        )


def _labels_of(keys: Mapping[str, str]) -> dict[int, str] | None:
    """``{"1": "matrix"}`` -> ``{1: "matrix"}``; None if a key is not an integer."""
    try:
        return {int(k): v for k, v in keys.items()}
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class VoxelCell(_GrainOrientations, CellTable):
    """A label image (.npy, TIFF stack, VTK ImageData) as a periodic voxel mesh.

    One phase or one grain per label (:func:`fe2x.geometry.voxels.voxel_cell`); ``dim`` must be
    the image's.
    """

    TAG_VALUE: ClassVar[str] = "voxels"
    lengths: tuple[float, ...] | None = option(
        None,
        doc="edge lengths of the image box",
        check=lambda v: all(x > 0 for x in v),
        expect="a list of positive numbers",
        shown_default="the image's (`.vti`), else one per voxel",
    )
    path: Path = option(
        REQUIRED,
        doc="the label image, relative to the config file: `.npy` (axes x, y(, z)), `.tif`/"
        "`.tiff` (page = z) or `.vti` (VTK ImageData, as DAMASK writes)",
    )
    array: str | None = option(
        None, doc="the cell-data array of a `.vti` image (default: its only one, or `material`)"
    )
    periodicity: Literal["check", "mirror", "trim", "ignore"] = option(
        "check",
        doc="an image whose opposite faces do not match is refused (`check`), mirrored, "
        "trimmed, or taken as it is (`ignore`)",
    )
    phases: Mapping[str, str] | None = option(
        None,
        doc='label -> phase name, e.g. `{1 = "matrix", 2 = "fibre"}`; every label of the image '
        "needs one, unless `grains` makes the others grains",
    )
    grains: Literal["labels"] | None = option(
        None,
        doc="`labels`: every label not in `phases` is a grain of the phase `grain_phase`, with "
        "an orientation (grain ids 0, 1, ... and orientation file rows in ascending label "
        "order)",
    )
    grain_phase: str = option(
        "grains", doc="the phase of the grains (with `grains`)", check=bool, expect="a name"
    )

    def validate(self, ctx: Context, where: str) -> None:
        """The image exists, labels map to phases or grains, orientations are readable.

        The box comes from the image unless ``lengths`` are given.
        """
        if self.lengths is not None and len(self.lengths) != self.dim:
            ctx.fail(f"[{where}] lengths = {list(self.lengths)}: expected {self.dim} numbers")
        if not self.path.is_file():
            ctx.fail(f"[{where}] path = '{self.path}': no such file")
        if self.path.suffix.lower() not in (".npy", ".tif", ".tiff", ".vti"):
            ctx.fail(
                f"[{where}] path = '{self.path}': unknown image type {self.path.suffix!r} "
                "(.npy, .tif, .tiff, .vti)"
            )
        if self.array is not None and self.path.suffix.lower() != ".vti":
            ctx.fail(f"[{where}] array applies to .vti images only")
        if self.phases is not None and _labels_of(self.phases) is None:
            ctx.fail(f"[{where}] phases = {dict(self.phases)}: keys must be integer labels")
        if self.phases is None and self.grains is None:
            ctx.fail(f"[{where}] a voxel cell needs phases (label -> phase) or grains = 'labels'")
        if self.grains is None:
            if self.orientations != "random" or self.orientation_format is not None:
                ctx.fail(f"[{where}] orientations apply with grains = 'labels' only")
            return
        if self.phases is not None and self.grain_phase in self.phases.values():
            ctx.fail(
                f"[{where}] grain_phase = {self.grain_phase!r} is also a phase of labels in "
                "phases; name it apart"
            )
        self._check_orientations(ctx, where, None)

    def phase_names(self) -> tuple[str, ...]:
        """The phases named in ``phases``, then ``grain_phase`` when labels are grains."""
        names = list(dict.fromkeys((self.phases or {}).values()))
        return (*names, self.grain_phase) if self.grains else tuple(names)

    def _voxel_data(
        self, labels: np.ndarray
    ) -> tuple[dict[int, str], dict[str, np.ndarray] | None]:
        """Label -> phase of every present label, and the per-voxel grain data if labels are grains.

        The grain data are the grain ids and orientations per voxel; this is rank 0's work.
        """
        named = _labels_of(self.phases or {})
        assert named is not None, "integer labels checked by validate"
        present = np.unique(labels)
        others = [int(x) for x in present if int(x) not in named]
        if others and not self.grains:
            raise GeometryError(
                f"label image {self.path.name}: labels {others[:10]} have no phase; name them "
                "in phases (or set grains = 'labels')"
            )
        phases = {**named, **{label: self.grain_phase for label in others}}
        if not self.grains:
            return phases, None
        grain_labels = np.array(others, dtype=np.int64)
        grain = np.searchsorted(grain_labels, labels)
        is_grain = np.isin(labels, grain_labels)
        try:
            R = self.grain_orientations(grain_labels.size, 0)
        except MaterialError as error:
            raise GeometryError(
                f"orientations: {error} (one per grain label of {self.path.name})"
            ) from None
        orientation = np.where(
            is_grain[..., None, None], R[grain.clip(0, R.shape[0] - 1)], np.eye(3)
        )
        return phases, {"grain": np.where(is_grain, grain, -1), "orientation": orientation}

    def build(self, comm: MPI.Comm) -> RVEMesh:
        """Read the image on rank 0 and mesh it on ``comm`` (:func:`fe2x.geometry.voxel_cell`).

        Rank 0 broadcasts its verdict on the image, so a bad one raises on every rank.
        """
        from fe2x.geometry import read_labels, voxel_cell

        verdict, image, phases, data = None, None, None, None
        if comm.rank == 0:
            try:
                image = read_labels(self.path, self.array)
                if image.labels.ndim != self.dim:
                    raise GeometryError(
                        f"label image {self.path.name} is {image.labels.ndim}D but dim = {self.dim}"
                    )
                phases, data = self._voxel_data(image.labels)
            except Fe2xError as error:
                verdict = str(error)
        verdict = comm.bcast(verdict, root=0)
        if verdict is not None:
            raise GeometryError(verdict)
        lengths = self.lengths if self.lengths is not None or image is None else image.lengths
        try:
            return voxel_cell(
                comm,
                None if image is None else image.labels,
                lengths=lengths,
                phases=phases,
                origin=None if image is None else image.origin,
                cell_data=data,
                periodicity=self.periodicity,
            )
        except GeometryError as error:
            raise GeometryError(f"label image {self.path.name}: {error}") from None


#: Cell types by the value of ``[cell] type``.
CELL_TYPES = Registry(
    "cell type",
    {
        "inclusion": InclusionCell,
        "laminate": LaminateCell,
        "random": RandomCell,
        "file": FileCell,
        "polycrystal": PolycrystalCell,
        "voxels": VoxelCell,
    },
)
