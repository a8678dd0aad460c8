"""Ensembles of random SVEs of growing size, homogenized in parallel over RVE groups."""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from mpi4py import MPI

import numpy as np

from fe2x.errors import Fe2xError, GeometryError
from fe2x.geometry import RVEMesh, polycrystal_cell, random_cell
from fe2x.materials import IsotropicElastic, isotropic_projection, plane_strain
from fe2x.materials.law import ConstitutiveLaw, ElasticStiffness
from fe2x.materials.orientations import random_orientations
from fe2x.micro.homogenization import homogenize
from fe2x.parallel.assignment import assign_lpt
from fe2x.parallel.layout import split_groups
from fe2x.sve.statistics import (
    PowerLawFit,
    SampleStatistics,
    fit_power_law,
    integral_range,
    point_variance,
    realizations_needed,
    rve_volume,
    sample_statistics,
    size_for_one_realization,
)
from fe2x.sve.study import SVEStudy

__all__ = [
    "PROPERTIES",
    "Realization",
    "SVEError",
    "SVEResult",
    "SVEStudy",
    "orientation_point_variance",
    "run_sve_study",
    "scalar_property",
    "task_seed",
]

logger = logging.getLogger(__name__)

#: Scalar properties of each realization: bulk and shear modulus of the isotropic projection
#: of the apparent C (:func:`fe2x.materials.isotropic_projection`), and its entry C₁₁₁₁.
PROPERTIES: tuple[str, ...] = ("bulk", "shear", "C1111")

# Packing or meshing of a realization is retried with a derived seed this many times.
_MAX_ATTEMPTS = 5

# A polycrystal realization draws its orientations from default_rng([seed, this]), the stream
# that fe2x.config.cells gives the orientations of a polycrystal cell of the same seed.
_ORIENTATION_STREAM = 1

# Random orientations (and their fixed seed) of the one-point variance of a polycrystal.
_POINT_SAMPLES = 1 << 16
_POINT_SEED = 2003

# A one-point variance below (this * the crystal-frame value)² is a rotation invariant's round-off.
_INVARIANT_TOLERANCE = 1e-10


def scalar_property(C: np.ndarray, name: str) -> float:
    """Scalar property ``name`` (one of :data:`PROPERTIES`) of a Mandel stiffness (3x3: 2D)."""
    if name == "C1111":
        return float(C[0, 0])
    bulk, shear = isotropic_projection(C, 2 if C.shape[0] == 3 else 3)
    return {"bulk": bulk, "shear": shear}[name]


def orientation_point_variance(
    law: ConstitutiveLaw, dim: int, n: int = _POINT_SAMPLES, seed: int = _POINT_SEED
) -> dict[str, float]:
    """One-point variance of a polycrystal's properties: ``Var_R z(C(R))`` over uniform rotations.

    The analogue of the two-phase ``p (1 - p) (Z1 - Z2)²``: the variance of the property ``z``
    (:func:`scalar_property`) of the local stiffness C(R) of one grain (plane strain in 2D),
    over ``n`` orientations uniform on SO(3) (Monte Carlo, relative error about
    ``sqrt(2 / n)``). The 3D bulk and shear moduli of the isotropic projection are rotation
    invariants (the Voigt averages), so theirs is zero.

    Returns:
        Property name (each of :data:`PROPERTIES`) -> its one-point variance.
    """
    if not isinstance(law, ElasticStiffness):
        raise Fe2xError("the grains' law has no elastic stiffness")
    C = law.elastic_stiffness({"orientation": random_orientations(n, seed)})
    if dim == 2:
        C = plane_strain(C)
    # Every property is linear in C: z(C) = Σ w_ab C_ab with w_ab = z(unit matrix E_ab).
    k = C.shape[-1]
    units = [E.reshape(k, k) for E in np.eye(k * k)]
    variances = {}
    for name in PROPERTIES:
        w = np.array([scalar_property(E, name) for E in units])
        variances[name] = float(np.var(C.reshape(-1, k * k) @ w))
    return variances


class SVEError(Fe2xError, RuntimeError):
    """A realization of the SVE study failed on some group (raised on every rank)."""


class Realization(NamedTuple):
    """The apparent stiffness of one random SVE under each boundary condition.

    Attributes:
        size_index: index into ``SVEStudy.sizes``.
        size: cell edge over the diameter.
        realization: index within its size.
        seed: the seed the cell (and a polycrystal's orientations) was built from (see
            :func:`task_seed`).
        n_inclusions: number of inclusions (None for a polycrystal).
        radius: inclusion radius (None for a polycrystal).
        n_grains: number of grains (None for inclusions).
        volume_fractions: phase -> measured volume fraction of the mesh.
        n_dofs: displacement dofs.
        seconds: wall time of building and homogenizing it.
        C: bc -> apparent Mandel stiffness.
        hill_mandel_residual: bc -> largest relative Hill–Mandel residual.
        voigt: Voigt bound ⟨C⟩ of the cell's own stiffness field (Mandel).
        reuss: Reuss bound ⟨C⁻¹⟩⁻¹ of the cell's own stiffness field (Mandel).
    """

    size_index: int
    size: float
    realization: int
    seed: int
    n_inclusions: int | None
    radius: float | None
    n_grains: int | None
    volume_fractions: dict[str, float]
    n_dofs: int
    seconds: float
    C: dict[str, np.ndarray]
    hill_mandel_residual: dict[str, float]
    voigt: np.ndarray
    reuss: np.ndarray

    def property(self, bc: str, name: str) -> float:
        """Scalar property ``name`` (one of :data:`PROPERTIES`) under ``bc``."""
        return scalar_property(self.C[bc], name)

    def bound(self, which: str, name: str) -> float:
        """Scalar property ``name`` of the ``"voigt"`` or ``"reuss"`` bound of this cell."""
        return scalar_property({"voigt": self.voigt, "reuss": self.reuss}[which], name)


def task_seed(seed: int, size_index: int, realization: int, attempt: int = 0) -> int:
    """Seed of one realization, from the base seed and its indices, the same on every rank.

    ``numpy.random.SeedSequence([seed, size_index, realization(, attempt)])`` hashed to 63 bits.

    >>> task_seed(0, 1, 2) == task_seed(0, 1, 2) != task_seed(0, 2, 1)
    True
    """
    entropy = [seed, size_index, realization] + ([attempt] if attempt else [])
    state = np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


@dataclass(frozen=True)
class SVEResult:
    """Apparent properties of every realization and their statistics per size and BC.

    Per ``[bc][property]`` (properties in :data:`PROPERTIES`), lists run over the sizes.

    Attributes:
        settings: the study.
        realizations: every realization, sorted by (size, realization).
        statistics: mean, std, Student-t CI per size.
        realizations_needed: ``ceil(4 Var / (ε² mean²))`` per size (None for one sample).
        point_variance: ``[property]`` -> one-point variance D²_Z of Kanit's integral range
            (:func:`fe2x.sve.statistics.point_variance` for inclusions,
            :func:`orientation_point_variance` for polycrystals), None where it is not
            defined (anisotropic phases) or zero (a rotation invariant).
        decay: fit ``Var = a L^α`` over the sizes (None if not fittable, e.g. zero variance).
        one_realization_size: smallest L with one realization enough, from ``decay``.
        kanit: integral range A_3 (volume in diameter^d), exponent α and the RVE volume for
            ``precision`` with one realization (Kanit et al. 2003), or None.
        bracket: ``[property]`` -> KUBC mean − SUBC mean per size (empty without both BCs).
        ergodicity: ``[bc][property]`` -> one SVE of the largest size against the mean of
            smallest-size SVEs of about the same total volume.
        seconds: wall time of the study.
    """

    settings: SVEStudy
    realizations: list[Realization]
    statistics: dict[str, dict[str, list[SampleStatistics]]]
    realizations_needed: dict[str, dict[str, list[int | None]]]
    point_variance: dict[str, float | None]
    decay: dict[str, dict[str, PowerLawFit | None]]
    one_realization_size: dict[str, dict[str, float | None]]
    kanit: dict[str, dict[str, dict[str, float] | None]]
    bracket: dict[str, list[float]]
    ergodicity: dict[str, dict[str, dict[str, float]]]
    seconds: float

    def at_size(self, size_index: int) -> list[Realization]:
        """The realizations of one size, by realization index."""
        return [r for r in self.realizations if r.size_index == size_index]

    def values(self, bc: str, name: str, size_index: int) -> np.ndarray:
        """Property ``name`` under ``bc`` of every realization of one size."""
        return np.array([r.property(bc, name) for r in self.at_size(size_index)])

    def variances(self, bc: str, name: str) -> np.ndarray:
        """Sample variance (ddof = 1) per size (NaN with one realization)."""
        return np.array([s.std**2 for s in self.statistics[bc][name]])

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready nested lists and dicts (NaN becomes None)."""
        s = self.settings
        per_bc = {
            bc: {name: self._statistics_dict(bc, name) for name in PROPERTIES} for bc in s.bcs
        }
        data = {
            "notation": "mandel",
            "microstructure": s.microstructure,
            "lengths": "sizes are cell edges over the inclusion diameter"
            if s.microstructure == "inclusions"
            else "sizes are cell edges over the mean grain size d, n_grains = round(size^dim)",
            "bulk_modulus_definition": "K=(1/9)sum C_ij, i,j<3"
            if s.dim == 3
            else "kappa=(C11+C22+2C12)/4 (plane strain)",
            "settings": _settings_dict(s),
            "point_variance": {
                "definition": _POINT_VARIANCE_DEFINITION[s.microstructure],
                "values": self.point_variance,
                "kanit_left_out": {
                    name: _point_variance_gap(s)
                    for name, d2 in self.point_variance.items()
                    if d2 is None
                },
            },
            "statistics": per_bc,
            "bracket_kubc_minus_subc": self.bracket,
            "realizations": [_realization_dict(r, s.bcs) for r in self.realizations],
            "seconds": self.seconds,
        }
        return _json_ready(data)

    def _statistics_dict(self, bc: str, name: str) -> dict[str, Any]:
        """Per-size statistics and the size analysis of one property under one condition."""
        st = self.statistics[bc][name]
        fit = self.decay[bc][name]
        return {
            "mean": [x.mean for x in st],
            "std": [x.std for x in st],
            "ci_low": [x.ci_low for x in st],
            "ci_high": [x.ci_high for x in st],
            "n": [x.n for x in st],
            "realizations_needed": self.realizations_needed[bc][name],
            "variance_decay": None
            if fit is None
            else {
                "exponent": fit.exponent,
                "exponent_stderr": fit.exponent_stderr,
                "prefactor": fit.prefactor,
            },
            "one_realization_size": self.one_realization_size[bc][name],
            "kanit": self.kanit[bc][name],
            "ergodicity": self.ergodicity[bc][name],
        }


_POINT_VARIANCE_DEFINITION = {
    "inclusions": "p(1-p)(Z_inclusion-Z_matrix)^2, isotropic phases only",
    "polycrystal": "variance of the property of one grain's stiffness C(R) over rotations R "
    f"uniform on SO(3) (plane strain in 2D), {_POINT_SAMPLES} Monte Carlo samples",
}


def _point_variance_gap(s: SVEStudy) -> str:
    """Why the integral range of a property with no point variance is left out."""
    if s.microstructure == "inclusions":
        return "a phase is anisotropic: no two-phase point variance"
    return (
        "the property of one grain's stiffness is a rotation invariant (zero one-point "
        "variance), so A_3 = (K/D^2)^(1/alpha) is undefined; the RVE size does not need it: "
        "see one_realization_size"
    )


def _settings_dict(s: SVEStudy) -> dict[str, Any]:
    """The study's settings as JSON-ready values."""
    if s.microstructure == "inclusions":
        geometry: dict[str, Any] = {
            "volume_fraction": s.volume_fraction,
            "min_gap": s.min_gap,
            "diameter": s.diameter,
            "elements_per_diameter": s.elements_per_diameter,
            "mesh_size": s.mesh_size,
        }
    else:
        geometry = {
            "mean_grain_size": s.diameter,
            "voxels_per_grain": s.voxels_per_grain,
            "n_grains": [s.n_grains(size) for size in s.sizes],
            "resolution": [s.resolution(size) for size in s.sizes],
        }
    return {
        "microstructure": s.microstructure,
        "dim": s.dim,
        "sizes": list(s.sizes),
        "realizations": list(s.realization_counts),
        **geometry,
        "bcs": list(s.bcs),
        "degree": s.degree,
        **({"geometry_order": s.geometry_order} if s.microstructure == "inclusions" else {}),
        "seed": s.seed,
        "group_size": s.group_size,
        "precision": s.precision,
        "confidence": s.confidence,
        "materials": {name: _material_dict(m) for name, m in s.materials.items()},
    }


def _material_dict(law: ConstitutiveLaw) -> dict[str, Any]:
    """The constants of an isotropic or cubic phase (empty for other laws)."""
    if isinstance(law, IsotropicElastic):
        return {"E": law.E, "nu": law.nu}
    constants = ("C11", "C12", "C44")
    if all(hasattr(law, c) for c in constants):
        return {c: getattr(law, c) for c in constants}
    return {}


def _realization_dict(r: Realization, bcs: Sequence[str]) -> dict[str, Any]:
    """One realization: its geometry, size, cost, bounds and properties under every condition."""
    geometry = (
        {"n_grains": r.n_grains}
        if r.n_inclusions is None
        else {"n_inclusions": r.n_inclusions, "radius": r.radius}
    )
    return {
        "size": r.size,
        "realization": r.realization,
        "seed": r.seed,
        **geometry,
        "volume_fractions": r.volume_fractions,
        "n_dofs": r.n_dofs,
        "seconds": r.seconds,
        "bounds": {
            which: {"C": C.tolist(), **{name: r.bound(which, name) for name in PROPERTIES}}
            for which, C in (("voigt", r.voigt), ("reuss", r.reuss))
        },
        "bc": {
            bc: {
                "C": r.C[bc].tolist(),
                **{name: r.property(bc, name) for name in PROPERTIES},
                "hill_mandel_residual": r.hill_mandel_residual[bc],
            }
            for bc in bcs
        },
    }


def _json_ready(x: Any) -> Any:
    """Nested data with NaN/inf floats replaced by None and numpy scalars by Python ones."""
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_ready(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json_ready(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _inclusion_cell(settings: SVEStudy, comm: MPI.Comm, size: float, seed: int) -> RVEMesh:
    """Random equal inclusions in a matrix, meshed by gmsh (collective over ``comm``)."""
    assert settings.volume_fraction is not None, "an inclusion study has one"
    return random_cell(
        comm,
        settings.dim,
        [size * settings.diameter] * settings.dim,
        settings.volume_fraction,
        settings.mesh_size,
        seed,
        settings.min_gap * settings.diameter,
        number=settings.n_inclusions(size),
        geometry_order=settings.geometry_order,
    )


def _polycrystal_cell(settings: SVEStudy, comm: MPI.Comm, size: float, seed: int) -> RVEMesh:
    """A periodic Voronoi polycrystal on voxels, seed points and orientations from ``seed``."""
    n = settings.n_grains(size)
    orientations = random_orientations(n, np.random.default_rng([seed, _ORIENTATION_STREAM]))
    return polycrystal_cell(
        comm,
        settings.dim,
        [size * settings.diameter] * settings.dim,
        n,
        settings.resolution(size),
        seed,
        grain_data={"orientation": orientations},
    )


_CELLS = {"inclusions": _inclusion_cell, "polycrystal": _polycrystal_cell}


def _run_task(settings: SVEStudy, comm: MPI.Comm, size_index: int, r: int) -> Realization:
    """Build and homogenize one realization on ``comm`` (collective over it)."""
    size = settings.sizes[size_index]
    build = _CELLS[settings.microstructure]
    inclusions = settings.microstructure == "inclusions"
    t0 = time.perf_counter()
    for attempt in range(_MAX_ATTEMPTS):
        seed = task_seed(settings.seed, size_index, r, attempt)
        try:
            cell = build(settings, comm, size, seed)
            break
        except GeometryError as e:
            if attempt == _MAX_ATTEMPTS - 1:
                raise
            logger.info("size %g realization %d: seed %d failed (%s); retrying", size, r, seed, e)
    result = homogenize(
        cell,
        settings.materials,
        bcs=settings.bcs,
        degree=settings.degree,
        solver=settings.solver,
        petsc_options=settings.petsc_options,
    )
    rec = Realization(
        size_index=size_index,
        size=size,
        realization=r,
        seed=seed,
        n_inclusions=settings.n_inclusions(size) if inclusions else None,
        radius=settings.radius(size) if inclusions else None,
        n_grains=None if inclusions else settings.n_grains(size),
        volume_fractions={k: float(v) for k, v in result.rve.volume_fractions.items()},
        n_dofs=int(result.rve.n_dofs),
        seconds=0.0,
        C={bc: np.array(c, dtype=float) for bc, c in result.C_eff.items()},
        hill_mandel_residual={
            bc: float(resp.hill_mandel_residual.max()) for bc, resp in result.responses.items()
        },
        voigt=np.array(result.bounds["voigt"], dtype=float),
        reuss=np.array(result.bounds["reuss"], dtype=float),
    )
    del result, cell
    gc.collect()  # PETSc destructors are collective over the group: free them together
    return rec._replace(seconds=time.perf_counter() - t0)


def run_sve_study(settings: SVEStudy, comm: MPI.Comm) -> SVEResult:
    """Homogenize every realization of ``settings`` over RVE groups of ``comm`` (collective).

    Each (size, realization) is one task with its own seed (:func:`task_seed`); tasks go to
    groups of ``settings.group_size`` ranks by LPT on the cost estimate L^d. The results are
    gathered to every rank and sorted by (size, realization), so they do not depend on the
    number of ranks or groups.

    Raises:
        SVEError: on every rank, naming the first failed realization.
    """
    t0 = time.perf_counter()
    layout = split_groups(comm, settings.group_size)
    tasks = [(i, r) for i, n in enumerate(settings.realization_counts) for r in range(n)]
    costs = np.array([settings.sizes[i] ** settings.dim for i, _ in tasks])
    assignment = assign_lpt(costs, layout.n_groups)
    mine = [tasks[k] for k in np.flatnonzero(assignment == layout.group_index)]
    logger.info(
        "SVE study: %d realizations over %d group(s) of %d rank(s)",
        len(tasks),
        layout.n_groups,
        layout.group_size,
    )
    records: list[Realization] = []
    error = None
    try:
        for i, r in mine:
            rec = _run_task(settings, layout.group, i, r)
            logger.info(
                "size %g realization %d (seed %d): %d dofs, %.2f s",
                rec.size,
                r,
                rec.seed,
                rec.n_dofs,
                rec.seconds,
            )
            if layout.is_leader:
                records.append(rec)
    except Exception as e:  # reported collectively below, so no group is left waiting
        error = f"SVE size {settings.sizes[i]:g} realization {r}: {type(e).__name__}: {e}"
    finally:
        gathered = comm.allgather((records, error))
        layout.free()
    errors = [e for _, e in gathered if e]
    if errors:
        raise SVEError(errors[0])
    realizations = sorted(
        (rec for recs, _ in gathered for rec in recs), key=lambda x: (x.size_index, x.realization)
    )
    assert len(realizations) == len(tasks)
    return _summarize(settings, realizations, time.perf_counter() - t0)


def _point_variances(settings: SVEStudy) -> dict[str, float | None]:
    """One-point variance D²_Z of each property; None where undefined or zero."""
    if settings.microstructure == "inclusions":
        assert settings.volume_fraction is not None, "an inclusion study has one"
        f = settings.volume_fraction
        pairs = {name: _phase_values(settings, name) for name in PROPERTIES}
        return {n: None if p is None else point_variance(f, *p) for n, p in pairs.items()}
    law = settings.materials["grains"]
    D2 = orientation_point_variance(law, settings.dim)
    assert isinstance(law, ElasticStiffness), "checked by orientation_point_variance"
    C = law.elastic_stiffness()  # the crystal frame's
    C = plane_strain(C) if settings.dim == 2 else C
    return {
        name: d2 if d2 > (_INVARIANT_TOLERANCE * scalar_property(C, name)) ** 2 else None
        for name, d2 in D2.items()
    }


def _phase_values(settings: SVEStudy, name: str) -> tuple[float, float] | None:
    """(inclusion, matrix) values of a property for the point variance; None if anisotropic."""
    pair = []
    for phase in ("inclusion", "matrix"):
        m = settings.materials[phase]
        if not isinstance(m, IsotropicElastic):
            return None
        if name == "bulk":
            pair.append(m.bulk_modulus if settings.dim == 3 else m.plane_strain_bulk_modulus)
        elif name == "shear":
            pair.append(m.shear_modulus)
        else:
            pair.append(float(m.stiffness(settings.dim)[0, 0]))
    return pair[0], pair[1]


def _summarize(settings: SVEStudy, realizations: list[Realization], seconds: float) -> SVEResult:
    """Statistics, decay fits, realization counts, bracket and ergodicity of the ensemble."""
    sizes = np.array(settings.sizes)
    n_sizes = sizes.size
    eps = settings.precision
    by_size = [[r for r in realizations if r.size_index == i] for i in range(n_sizes)]

    def values(bc: str, name: str, i: int) -> np.ndarray:
        return np.array([r.property(bc, name) for r in by_size[i]])

    statistics: dict[str, dict[str, list[SampleStatistics]]] = {}
    needed: dict[str, dict[str, list[int | None]]] = {}
    decay: dict[str, dict[str, PowerLawFit | None]] = {}
    one_size: dict[str, dict[str, float | None]] = {}
    kanit: dict[str, dict[str, dict[str, float] | None]] = {}
    ergodicity: dict[str, dict[str, dict[str, float]]] = {}
    n_small = min(len(by_size[0]), max(1, round((sizes[-1] / sizes[0]) ** settings.dim)))
    # An SVE holding one inclusion has the same microstructure in every realization up to a
    # translation (one grain: a homogeneous crystal): its scatter is not the statistical one,
    # and the decay fit ignores it.
    several = np.array([settings.n_units(float(s)) > 1 for s in sizes])
    if not several.all():
        logger.warning(
            "the SVEs of size(s) %s hold a single %s: their scatter says nothing about "
            "the microstructure's statistics and is left out of the variance-decay fit",
            ", ".join(f"{s:g}" for s in sizes[~several]),
            "inclusion" if settings.microstructure == "inclusions" else "grain",
        )
    D2 = _point_variances(settings)
    for name, d2 in D2.items():
        if d2 is None:
            logger.info("%s: no integral range (%s)", name, _point_variance_gap(settings))
    for bc in settings.bcs:
        statistics[bc], needed[bc], decay[bc], one_size[bc], kanit[bc] = {}, {}, {}, {}, {}
        ergodicity[bc] = {}
        for name in PROPERTIES:
            st = [
                sample_statistics(values(bc, name, i), settings.confidence) for i in range(n_sizes)
            ]
            statistics[bc][name] = st
            needed[bc][name] = [
                None if s.n < 2 else realizations_needed(s.std**2, s.mean, eps) for s in st
            ]
            decay[bc][name], one_size[bc][name], kanit[bc][name] = _decay_analysis(
                settings, D2[name], st, several
            )
            ergodicity[bc][name] = _ergodicity(
                settings, values(bc, name, 0)[:n_small], values(bc, name, n_sizes - 1)[0]
            )
    bracket: dict[str, list[float]] = {}
    if "kubc" in settings.bcs and "subc" in settings.bcs:
        for name in PROPERTIES:
            bracket[name] = [
                statistics["kubc"][name][i].mean - statistics["subc"][name][i].mean
                for i in range(n_sizes)
            ]
    return SVEResult(
        settings=settings,
        realizations=realizations,
        statistics=statistics,
        realizations_needed=needed,
        point_variance=D2,
        decay=decay,
        one_realization_size=one_size,
        kanit=kanit,
        bracket=bracket,
        ergodicity=ergodicity,
        seconds=seconds,
    )


def _decay_analysis(
    settings: SVEStudy, D2: float | None, st: list[SampleStatistics], several: np.ndarray
) -> tuple[PowerLawFit | None, float | None, dict[str, float] | None]:
    """Variance-decay fit, one-realization size and Kanit's RVE size of one property.

    ``D2`` is its point variance (None: no integral range). Sizes whose SVEs hold a single
    inclusion or grain (``several`` false) are left out of the fit.
    """
    sizes = np.array(settings.sizes)
    eps = settings.precision
    var = np.array([s.std**2 for s in st])
    ok = np.isfinite(var) & (var > 0) & several
    fit = None
    if np.count_nonzero(ok) >= 2:
        try:
            fit = fit_power_law(sizes[ok], var[ok])
        except ValueError:
            fit = None
    mean_large = st[-1].mean
    L1 = None if fit is None else size_for_one_realization(fit, mean_large, eps)
    one_size = None if L1 is None or not math.isfinite(L1) else L1
    if fit is None or D2 is None:
        return fit, one_size, None
    try:
        A3, alpha = integral_range(sizes[ok] ** settings.dim, var[ok], D2)
    except ValueError:
        return fit, one_size, None
    volume = rve_volume(D2, A3, alpha, mean_large, eps, n=1)
    kanit = {
        "point_variance": D2,
        "integral_range": A3,
        "alpha": alpha,
        "rve_volume": volume,
        "rve_size": volume ** (1.0 / settings.dim),
    }
    return fit, one_size, kanit


def _ergodicity(settings: SVEStudy, small: np.ndarray, large: float) -> dict[str, float]:
    """One large SVE against the mean of as many small ones as fill its volume."""
    sizes = settings.sizes
    return {
        "large_size": float(sizes[-1]),
        "large_value": float(large),
        "small_size": float(sizes[0]),
        "small_count": int(small.size),
        "small_mean": float(small.mean()),
        "large_volume": float(sizes[-1] ** settings.dim),
        "small_total_volume": float(small.size * sizes[0] ** settings.dim),
    }
