"""The tables of the single-RVE jobs and the whole files of ``fe2x homogenize`` and ``rve-path``.

The tables are ``[homogenize]``, ``[export]``, ``[rve]`` and ``[path]``; the files those of
``fe2x homogenize`` and ``fe2x rve-path``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from fe2x.config.cells import CellTable
from fe2x.config.microstructure import Microstructure
from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.io.material_cards import CARD_FORMATS
from fe2x.materials.mandel import mandel_weights
from fe2x.registry import BOUNDARY_CONDITIONS

if TYPE_CHECKING:
    from fe2x.geometry import RVEMesh
    from fe2x.materials.law import ConstitutiveLaw
    from fe2x.micro.nonlinear import NonlinearRVE

__all__ = [
    "CARD_EXTENSIONS",
    "PHYSICS",
    "ExportTable",
    "HomogenizationFile",
    "HomogenizeTable",
    "PathOutputTable",
    "PathSettings",
    "PathTable",
    "RVEPathFile",
    "RVETable",
    "check_export",
    "export_bc",
]

PetscOptions = Mapping[str, str | int | float | bool]
_NO_OPTIONS: PetscOptions = MappingProxyType({})


def _distinct_bcs(v: tuple[str, ...]) -> bool:
    return bool(v) and all(b in BOUNDARY_CONDITIONS for b in v) and len(set(v)) == len(v)


#: What ``fe2x homogenize`` can compute: C_eff; C_eff with α_eff and Σ_th; k_eff.
PHYSICS = ("elasticity", "thermoelasticity", "conduction")

#: File extension of each material-card format (``DIR/<format>.<ext>``).
CARD_EXTENSIONS = {"abaqus": "inp", "calculix": "inp", "ansys": "mac", "lsdyna": "k"}


def _distinct(allowed: tuple[str, ...]) -> Callable[[tuple[str, ...]], bool]:
    """A check: distinct names, each in ``allowed``."""
    return lambda v: all(x in allowed for x in v) and len(set(v)) == len(v)


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
        _NO_OPTIONS, petsc=True, doc="PETSc options for the RVE solver, e.g. `{ksp_rtol = 1e-10}`"
    )
    write_fields: bool = option(True, doc="write correctors and localization")
    physics: tuple[str, ...] = option(
        ("elasticity",),
        doc="what to homogenize: `elasticity` (C_eff), `thermoelasticity` (C_eff, and α_eff and "
        "the thermal stress from one eigenstrain solve; phases need `alpha`), `conduction` "
        "(k_eff; phases need `k`)",
        check=lambda v: bool(v) and _distinct(PHYSICS)(v),
        expect=f"distinct names from {', '.join(PHYSICS)}",
    )

    @property
    def elastic(self) -> bool:
        """Whether C_eff is computed (``elasticity`` or ``thermoelasticity``)."""
        return "elasticity" in self.physics or "thermoelasticity" in self.physics


@dataclass(frozen=True, kw_only=True)
class ExportTable(Table):
    """``[export]``: material cards of the effective properties for other solvers."""

    formats: tuple[str, ...] = option(
        (),
        doc="card formats, written to `DIR/abaqus.inp`, `calculix.inp`, `ansys.mac`, `lsdyna.k`; "
        "`fe2x homogenize --export FORMAT` adds one",
        check=_distinct(CARD_FORMATS),
        expect=f"distinct names from {', '.join(CARD_FORMATS)}",
    )
    bc: str | None = option(
        None,
        doc="the boundary condition whose C_eff (k_eff, α_eff) the cards hold",
        check=lambda v: v in BOUNDARY_CONDITIONS,
        expect=" | ".join(BOUNDARY_CONDITIONS.names()),
        shown_default="`periodic` if computed, else the first of `bcs`",
    )
    name: str = option(
        "FE2X_EFFECTIVE",
        doc="material name in the cards",
        check=lambda v: re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]{0,79}", v) is not None,
        expect="a letter, then up to 79 letters, digits, '_' or '-'",
    )
    elastic: Literal["aniso", "engineering"] = option(
        "aniso",
        doc="`aniso`: the 21 anisotropic constants; `engineering`: E_i, nu_ij, G_ij (Abaqus, "
        "CalculiX; C_eff must be orthotropic in the cell axes)",
    )
    density: float | None = option(
        None,
        doc="mass density written to the cards (LS-DYNA's card needs it)",
        check=lambda v: v > 0,
        expect="a positive number",
    )
    material_id: int = option(
        1,
        doc="material number of the Ansys and LS-DYNA cards",
        check=lambda v: v >= 1,
        expect="a positive integer",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """What each format can hold."""
        if "lsdyna" in self.formats and self.density is None:
            ctx.fail(
                f"[{where}] density is required by the lsdyna card (*MAT_ANISOTROPIC_ELASTIC RO)"
            )
        if self.elastic == "engineering":
            other = [f for f in self.formats if f not in ("abaqus", "calculix")]
            if other:
                ctx.fail(
                    f"[{where}] elastic = 'engineering' applies to abaqus and calculix cards, "
                    f"not {', '.join(other)} (they take the 21 constants)"
                )


def check_export(
    ctx: Context, cell: CellTable, homogenize: HomogenizeTable, export: ExportTable
) -> None:
    """Cards need a 3D C_eff of a computed boundary condition."""
    if not export.formats:
        return
    if cell.dim != 3:
        ctx.fail(
            f"[export] formats = {list(export.formats)}: material cards need a 3D cell "
            "([cell] dim = 3); a plane-strain C_eff lacks the out-of-plane terms"
        )
    if not homogenize.elastic:
        ctx.fail(
            f"[export] formats = {list(export.formats)}: cards hold C_eff; add 'elasticity' or "
            "'thermoelasticity' to [homogenize] physics"
        )
    if export.bc is not None and export.bc not in homogenize.bcs:
        ctx.fail(
            f"[export] bc = {export.bc!r} is not among [homogenize] bcs {list(homogenize.bcs)}"
        )


def export_bc(homogenize: HomogenizeTable, export: ExportTable) -> str:
    """The boundary condition the cards are written for."""
    if export.bc is not None:
        return export.bc
    return "periodic" if "periodic" in homogenize.bcs else homogenize.bcs[0]


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
        _NO_OPTIONS, petsc=True, doc="SNES/KSP options of the RVE, e.g. `{snes_rtol = 1e-10}`"
    )
    stability: bool = option(
        True,
        doc="finite-strain RVEs: report `micro_stability`, the lowest eigenvalue of the reduced "
        "Jacobian over its virgin value (one eigen-solve per RVE solve; <= 0: micro buckling)",
    )

    @property
    def stability_check(self) -> bool | None:
        """The ``stability`` argument of the nonlinear RVE: None (by kinematics) or False."""
        return None if self.stability else False

    def nonlinear_rve(
        self, cell: RVEMesh, laws: Mapping[str, ConstitutiveLaw], prefix: str
    ) -> NonlinearRVE:
        """The nonlinear RVE of ``cell`` and ``laws`` with these settings (PETSc ``prefix``)."""
        from fe2x.micro.nonlinear import NonlinearRVE

        return NonlinearRVE(
            cell,
            laws,
            bc=self.bc,
            degree=self.degree,
            petsc_options_prefix=prefix,
            petsc_options=dict(self.petsc_options),
            linear_solver=self.solver,
            stability=self.stability_check,
        )


class PathSettings(NamedTuple):
    """A resolved ``[path]``: knot times, steps, per-component control.

    The values are Mandel components, or for finite strain F̄ and P̄ components row-major.
    """

    times: tuple[float, ...]
    steps: int
    values: tuple[tuple[float, ...], ...]  # (m knots, n components)
    stress_controlled: tuple[bool, ...]
    output_steps: tuple[int, ...]
    kinematics: str = "small"
    cauchy: tuple[bool, ...] = ()  # finite strain: components whose target is Cauchy's σ


_LABELS = {2: ("11", "22", "12"), 3: ("11", "22", "33", "23", "13", "12")}
#: Row-major components of F̄ and P̄ by dimension.
_FULL_LABELS = {
    2: ("11", "12", "21", "22"),
    3: ("11", "12", "13", "21", "22", "23", "31", "32", "33"),
}
#: The keys of each kinematics: (strain letter, stress letter, labels by dimension).
_PATH_KEYS = {"small": ("E", "S", _LABELS), "finite": ("F", "P", _FULL_LABELS)}
Series = float | tuple[float, ...] | None


def _component(kind: str, label: str) -> Any:
    what = {
        "E": "strain component {} (tensor value)",
        "S": "stress component {} (tensor value)",
        "F": "deformation gradient F{} (finite-strain materials; absent ones follow F = I)",
        "P": "first Piola–Kirchhoff stress P{} (finite-strain materials)",
        "sigma": "Cauchy stress σ{0} = (P̄ F̄ᵀ / det F̄){0} in place of P{0} (finite-strain "
        "materials; σ is symmetric, so i <= j)",
    }[kind].format(label)
    return option(
        None,
        doc=f"{what}: one value per time, or a constant",
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
    F11: Series = _component("F", "11")
    F12: Series = _component("F", "12")
    F13: Series = _component("F", "13")
    F21: Series = _component("F", "21")
    F22: Series = _component("F", "22")
    F23: Series = _component("F", "23")
    F31: Series = _component("F", "31")
    F32: Series = _component("F", "32")
    F33: Series = _component("F", "33")
    P11: Series = _component("P", "11")
    P12: Series = _component("P", "12")
    P13: Series = _component("P", "13")
    P21: Series = _component("P", "21")
    P22: Series = _component("P", "22")
    P23: Series = _component("P", "23")
    P31: Series = _component("P", "31")
    P32: Series = _component("P", "32")
    P33: Series = _component("P", "33")
    sigma11: Series = _component("sigma", "11")
    sigma12: Series = _component("sigma", "12")
    sigma13: Series = _component("sigma", "13")
    sigma22: Series = _component("sigma", "22")
    sigma23: Series = _component("sigma", "23")
    sigma33: Series = _component("sigma", "33")

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

    def settings(
        self, ctx: Context, dim: int, kinematics: str = "small", where: str = "path"
    ) -> PathSettings:
        """The path of a ``dim``-D cell whose materials have ``kinematics``.

        Its components are Mandel ones (shear values scaled by √2), or F̄ and P̄ (or Cauchy σ̄)
        row-major: absent F components follow F̄ = I, every rotation must be fixed by a
        prescribed F component, and a path fully in F must keep det F̄ > 0.
        """
        strain, stress, by_dim = _PATH_KEYS[kinematics]
        labels = by_dim[dim]
        finite = kinematics == "finite"
        cauchy_labels = [c for c in labels if c[0] <= c[1]] if finite else []
        allowed = ", ".join(
            ["times", "steps", "output_steps"]
            + [k + c for k in (strain, stress) for c in labels]
            + [f"sigma{c}" for c in cauchy_labels]
        )
        for label in ("11", "12", "13", "22", "23", "33"):
            if getattr(self, f"sigma{label}") is not None and label not in cauchy_labels:
                why = "for a small-strain path use S" if not finite else f"for a {dim}D cell"
                ctx.fail(f"[{where}] unknown key 'sigma{label}' ({why}); allowed: {allowed}")
        for other, (e, t, other_labels) in _PATH_KEYS.items():
            for kind, label in itertools.product((e, t), other_labels[3]):
                if getattr(self, f"{kind}{label}") is None:
                    continue
                if other != kinematics:
                    ctx.fail(
                        f"[{where}] {kind}{label}: the materials are {kinematics}-strain models, "
                        f"driven by {', '.join(k + labels[0] for k in (strain, stress))}, ...; "
                        f"allowed: {allowed}"
                    )
                if label not in labels:
                    ctx.fail(
                        f"[{where}] unknown key '{kind}{label}' for a {dim}D cell; allowed: "
                        f"{allowed}"
                    )
        m = len(self.times)
        values = np.zeros((m, len(labels)))
        if finite:
            values[:] = np.eye(dim).reshape(-1)
        weights = np.ones(len(labels)) if finite else mandel_weights(dim)
        stress_controlled = [False] * len(labels)
        cauchy = [False] * len(labels)
        for i, label in enumerate(labels):
            kinds = (strain, stress, *(("sigma",) if label in cauchy_labels else ()))
            given = [kind for kind in kinds if getattr(self, f"{kind}{label}") is not None]
            if len(given) >= 2:
                ctx.fail(
                    f"[{where}] {given[0]}{label} and {given[1]}{label} both given: control each "
                    "component once"
                )
            if not given:
                continue  # strain-controlled at zero, or at F = I
            value = getattr(self, f"{given[0]}{label}")
            series = (value,) * m if isinstance(value, float) else value
            if len(series) != m:
                ctx.fail(
                    f"[{where}] {given[0]}{label} = {list(series)}: expected a number or a list "
                    f"of {m} numbers (one per time)"
                )
            values[:, i] = np.asarray(series) * weights[i]
            stress_controlled[i] = given[0] != strain
            cauchy[i] = given[0] == "sigma"
        if all(stress_controlled):
            ctx.fail(f"[{where}] every component is stress-controlled; control at least one strain")
        if finite:
            self._check_finite(ctx, dim, values, stress_controlled, where)
        return PathSettings(
            self.times,
            self.steps,
            tuple(map(tuple, values.tolist())),
            tuple(stress_controlled),
            self.output_steps,
            kinematics,
            tuple(cauchy) if any(cauchy) else (),
        )

    def _check_finite(
        self,
        ctx: Context,
        dim: int,
        values: np.ndarray,
        stress_controlled: list[bool],
        where: str,
    ) -> None:
        """Every rotation fixed by a prescribed F component, and det F̄ > 0 where F is all given.

        The determinant is checked at every step of a path prescribed in F alone.
        """
        from fe2x.micro.path import free_rotations

        free = free_rotations(np.asarray(stress_controlled))
        if free:
            i, j = (k + 1 for k in free[0])
            ctx.fail(
                f"[{where}] P{i}{j} and P{j}{i} are both prescribed: the rigid rotation in the "
                f"{i}-{j} plane is left free (P̄(Q F̄) = Q P̄(F̄)); prescribe F{i}{j} or F{j}{i} "
                f"(e.g. F{j}{i} = 0)"
            )
        if any(stress_controlled):
            return
        t = np.linspace(0.0, self.times[-1], self.steps + 1)[1:]
        F = np.column_stack([np.interp(t, self.times, values[:, i]) for i in range(dim * dim)])
        J = np.linalg.det(F.reshape(-1, dim, dim))
        if np.any(J <= 0.0):
            k = int(np.argmax(J <= 0.0))
            ctx.fail(
                f"[{where}] det F = {J[k]:.4g} <= 0 at t = {t[k]:.6g} (step {k + 1}): the path "
                "inverts the material"
            )


def _degree_fits(ctx: Context, cell: CellTable, degree: int, where: str) -> None:
    order = getattr(cell, "geometry_order", 1)
    if degree < order:
        ctx.fail(
            f"[{where}] degree = {degree} is below [cell] geometry_order = {order}; a degree-1 "
            "field needs geometry_order = 1"
        )


@dataclass(frozen=True, kw_only=True)
class HomogenizationFile(Microstructure):
    """A whole ``fe2x homogenize`` config: ``[cell]``, ``[materials.<phase>]``, ``[homogenize]``."""

    homogenize: HomogenizeTable = option(HomogenizeTable(), doc="solver and output settings")
    export: ExportTable = option(ExportTable(), doc="material cards for other solvers")

    def validate(self, ctx: Context, where: str) -> None:
        """The degree fits the geometry; the physics have their phase keys; cards can be made."""
        _degree_fits(ctx, self.cell, self.homogenize.degree, "homogenize")
        needs = {"conduction": "k", "thermoelasticity": "alpha"}
        for physics, key in needs.items():
            if physics not in self.homogenize.physics:
                continue
            for name, table in self.materials.items():
                if getattr(table, key, None) is None:
                    ctx.fail(
                        f"[materials.{name}] {key} is required by [homogenize] physics {physics!r}"
                    )
        check_export(ctx, self.cell, self.homogenize, self.export)


@dataclass(frozen=True, kw_only=True)
class PathOutputTable(Table):
    """``[output]`` of ``fe2x rve-path``: training data."""

    training_data: bool = option(
        False, doc="every converged step (E, Σ, C, diagnostics) to `training/group0.h5`"
    )
    training_fluctuations: bool = option(
        True, doc="with `training_data`: also the fluctuation field (the snapshots of `reduce`)"
    )


@dataclass(frozen=True, kw_only=True)
class RVEPathFile(Microstructure):
    """A whole ``fe2x rve-path`` config: ``[cell]``, ``[materials]``, ``[rve]``, ``[path]``."""

    rve: RVETable = option(RVETable(), doc="the RVE's solver settings")
    path: PathTable = option(REQUIRED, doc="the loading path")
    output: PathOutputTable = option(PathOutputTable(), doc="training data")

    def validate(self, ctx: Context, where: str) -> None:
        """The degree fits the geometry."""
        _degree_fits(ctx, self.cell, self.rve.degree, "rve")
