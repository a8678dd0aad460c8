"""The settings of an SVE study, validated: microstructure, sizes, realizations, mesh, solver.

Kept apart from the ensemble runner so that reading a config (which builds one) loads no
DOLFINx or PETSc.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fe2x.geometry.packing import ball_volume
from fe2x.materials.law import ConstitutiveLaw
from fe2x.registry import BOUNDARY_CONDITIONS

__all__ = ["MICROSTRUCTURES", "SVEStudy"]

#: The random microstructures of an SVE study and the phases each needs.
MICROSTRUCTURES: dict[str, tuple[str, ...]] = {
    "inclusions": ("matrix", "inclusion"),
    "polycrystal": ("grains",),
}


@dataclass(frozen=True, kw_only=True)
class SVEStudy:
    """Settings of an SVE study.

    Random equal inclusions at a fixed volume fraction, or random periodic Voronoi polycrystals.

    Lengths are in units of ``diameter``, so the cell edge is ``size * diameter``.
    Inclusions: the number of inclusions of a cell is ``round(vf L^d / |ball(d/2)|)`` (at least
    1), and their radius is set so the volume fraction is exactly ``volume_fraction`` (it stays
    within a few per cent of ``diameter / 2`` once a cell holds several inclusions).
    Polycrystals: ``diameter`` is the mean grain size d, so a cell holds ``round(size^dim)``
    grains (at least 1) on ``round(size * voxels_per_grain)`` voxels per edge, each grain with
    a random orientation (uniform on SO(3)).

    Attributes:
        dim: 2 (plane strain) or 3.
        sizes: cell edges L / diameter, increasing.
        realizations: realizations per size (one number for all sizes, or one per size).
        materials: phase name -> law: "matrix" and "inclusion" (elastic) for inclusions,
            "grains" (a law with a per-cell "orientation", e.g. crystal plasticity's cubic
            elasticity) for polycrystals.
        microstructure: "inclusions" or "polycrystal".
        volume_fraction: inclusion volume fraction (inclusions only).
        min_gap: least surface-to-surface gap between inclusions, over the diameter.
        diameter: inclusion diameter or mean grain size (length unit of the cells).
        voxels_per_grain: voxels per mean grain size d (polycrystals only).
        bcs: boundary conditions, any of "periodic", "kubc", "subc".
        elements_per_diameter: mesh resolution; the mesh size is ``diameter / this``.
        degree: Lagrange degree of the displacement.
        geometry_order: 1 (straight) or 2 (curved) element geometry.
        seed: base seed (≥ 0); each realization derives its own by :func:`task_seed`.
        group_size: ranks per RVE group (one realization at a time per group).
        precision: relative precision ε_rel for the realization count (Kanit et al. 2003).
        confidence: level of the Student-t confidence intervals.
        solver: "auto", "direct" or "iterative" (see :func:`fe2x.micro.homogenization.homogenize`).
        petsc_options: PETSc options overriding the solver defaults.
    """

    dim: int
    sizes: Sequence[float]
    realizations: int | Sequence[int]
    materials: Mapping[str, ConstitutiveLaw]
    microstructure: str = "inclusions"
    volume_fraction: float | None = None
    min_gap: float = 0.1
    diameter: float = 1.0
    voxels_per_grain: float = 4.0
    bcs: Sequence[str] = BOUNDARY_CONDITIONS.names()
    elements_per_diameter: float = 6.0
    degree: int = 2
    geometry_order: int = 2
    seed: int = 0
    group_size: int = 1
    precision: float = 0.01
    confidence: float = 0.95
    solver: str = "auto"
    petsc_options: Mapping[str, object] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim}")
        sizes = tuple(float(s) for s in self.sizes)
        if not sizes or any(not s > 0 for s in sizes) or list(sizes) != sorted(set(sizes)):
            raise ValueError(f"sizes must be positive and strictly increasing, got {sizes}")
        object.__setattr__(self, "sizes", sizes)
        counts = self.realizations
        counts = (counts,) * len(sizes) if isinstance(counts, int) else tuple(counts)
        if len(counts) != len(sizes) or any(int(n) != n or n < 1 for n in counts):
            raise ValueError(
                f"realizations must be a positive integer or one per size ({len(sizes)}), "
                f"got {self.realizations}"
            )
        object.__setattr__(self, "realizations", tuple(int(n) for n in counts))
        bcs = tuple(self.bcs)
        unknown = [bc for bc in bcs if bc not in BOUNDARY_CONDITIONS]
        if not bcs or unknown or len(set(bcs)) != len(bcs):
            raise ValueError(
                f"bcs must be distinct names from {BOUNDARY_CONDITIONS.names()}, got {bcs}"
            )
        object.__setattr__(self, "bcs", bcs)
        for name in ("min_gap",):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("diameter", "elements_per_diameter", "voxels_per_grain", "precision"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if int(self.group_size) != self.group_size or self.group_size < 1:
            raise ValueError(f"group_size must be a positive integer, got {self.group_size}")
        if self.microstructure not in MICROSTRUCTURES:
            raise ValueError(
                f"microstructure must be one of {list(MICROSTRUCTURES)}, "
                f"got {self.microstructure!r}"
            )
        if self.microstructure == "inclusions":
            self._check_inclusions()
        else:
            self._check_polycrystal()

    def _check_inclusions(self) -> None:
        """A volume fraction in (0, 1) and the two phases' materials."""
        if self.volume_fraction is None or not 0.0 < self.volume_fraction < 1.0:
            raise ValueError(f"volume_fraction must be in (0, 1), got {self.volume_fraction}")
        missing = {"matrix", "inclusion"} - set(self.materials)
        if missing:
            raise ValueError(f"materials must name 'matrix' and 'inclusion'; missing {missing}")

    def _check_polycrystal(self) -> None:
        """No volume fraction, one oriented ``grains`` law, and room for the grains."""
        if self.volume_fraction is not None:
            raise ValueError("volume_fraction applies to inclusions, not to a polycrystal")
        if set(self.materials) != {"grains"}:
            raise ValueError(
                f"a polycrystal needs exactly the material 'grains', got {sorted(self.materials)}"
            )
        if "orientation" not in getattr(self.materials["grains"], "parameter_shapes", {}):
            raise ValueError(
                "the material 'grains' must read a per-grain 'orientation' (e.g. a crystal "
                "law): one stiffness for every grain is no polycrystal"
            )
        for size in self.sizes:
            if self.n_grains(size) > self.resolution(size) ** self.dim:
                raise ValueError(
                    f"size {size:g}: {self.n_grains(size)} grains do not fit in "
                    f"{self.resolution(size)}^{self.dim} voxels; raise voxels_per_grain"
                )

    @property
    def realization_counts(self) -> tuple[int, ...]:
        """Realizations of each size: ``realizations`` as the constructor normalised it."""
        counts = self.realizations
        assert not isinstance(counts, int)  # made one per size in __post_init__
        return tuple(counts)

    @property
    def mesh_size(self) -> float:
        """Largest element size, ``diameter / elements_per_diameter``."""
        return self.diameter / self.elements_per_diameter

    def n_inclusions(self, size: float) -> int:
        """Inclusions in a cell of edge ``size`` diameters: ``round(vf L^d / |ball(1/2)|)``, ≥ 1."""
        assert self.volume_fraction is not None, "an inclusion study has one"
        return max(1, round(self.volume_fraction * size**self.dim / ball_volume(self.dim, 0.5)))

    def radius(self, size: float) -> float:
        """Inclusion radius (length units) giving exactly ``volume_fraction`` at this size."""
        assert self.volume_fraction is not None, "an inclusion study has one"
        unit = ball_volume(self.dim, 1.0)
        V = (size * self.diameter) ** self.dim
        return (self.volume_fraction * V / (self.n_inclusions(size) * unit)) ** (1.0 / self.dim)

    def n_grains(self, size: float) -> int:
        """Grains in a cell of edge ``size`` mean grain sizes: ``round(size^dim)``, ≥ 1."""
        return max(1, round(size**self.dim))

    def resolution(self, size: float) -> int:
        """Voxels per edge of a polycrystal cell: ``round(size * voxels_per_grain)``, ≥ 1."""
        return max(1, round(size * self.voxels_per_grain))

    def n_units(self, size: float) -> int:
        """Inclusions or grains of a cell of edge ``size``: the randomly arranged units."""
        if self.microstructure == "inclusions":
            return self.n_inclusions(size)
        return self.n_grains(size)
