"""The ``[materials.<phase>]`` tables: one declared table per material model, building its law.

A new constitutive law becomes configurable with one :class:`MaterialTable` subclass (its keys
and ``build``) registered in :data:`MATERIAL_MODELS`, e.g. from a plug-in or a test::

    MATERIAL_MODELS.register("maxwell", MaxwellTable)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt

from fe2x.config.schema import REQUIRED, Context, Table, option
from fe2x.errors import ConfigError, MaterialError
from fe2x.materials.crystal import CrystalPlasticity
from fe2x.materials.elastic import AnisotropicElastic, IsotropicElastic
from fe2x.materials.finite_plasticity import LogStrainPlasticity
from fe2x.materials.hyperelastic import NeoHookean, SaintVenantKirchhoff
from fe2x.materials.j2 import J2Plasticity
from fe2x.materials.law import ConstitutiveLaw, is_linear
from fe2x.materials.thermal import conductivity_tensor, expansion_mandel
from fe2x.registry import Registry

__all__ = [
    "MATERIAL_MODELS",
    "SLIP_FAMILIES",
    "CrystalTable",
    "ElasticTable",
    "FiniteJ2Table",
    "J2Table",
    "MaterialTable",
    "NeoHookeanTable",
    "SaintVenantKirchhoffTable",
    "build_conductivities",
    "build_expansions",
    "build_laws",
    "check_phases",
    "laws_kinematics",
]


@dataclass(frozen=True, kw_only=True)
class MaterialTable(Table):
    """Keys every material table has: its model."""

    model: str = option("elastic", doc="the constitutive model")

    #: Whether linear jobs (``fe2x homogenize``) may use a non-linear law of this model by its
    #: elastic stiffness: for models whose elastic part no elastic phase can express (a cubic
    #: crystal rotated into each grain's orientation); J2's isotropic one is an elastic phase.
    ELASTIC_PART_IN_LINEAR_JOBS: ClassVar[bool] = False

    def build(self, name: str) -> ConstitutiveLaw:
        """The law of phase ``name`` (a MaterialError if its constants are not physical)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ElasticTable(MaterialTable):
    """Linear elasticity: isotropic (E, nu) or anisotropic (C_mandel)."""

    TAG_VALUE: ClassVar[str] = "elastic"
    E: float | None = option(None, doc="Young's modulus, E > 0")
    nu: float | None = option(None, doc="Poisson ratio, -1 < nu < 0.5")
    C_mandel: tuple[tuple[float, ...], ...] | None = option(
        None,
        doc="symmetric positive definite 6x6 stiffness in Mandel notation (2D cells use its "
        "plane-strain part)",
        expect="a 6x6 array of numbers",
    )
    k: float | tuple[tuple[float, ...], ...] | None = option(
        None,
        doc="thermal conductivity, read by `fe2x homogenize` with physics `conduction`: a scalar, "
        "or a symmetric positive definite 3x3 tensor (2D cells use its in-plane block)",
        expect="a positive number or a 3x3 array of numbers",
    )
    alpha: float | tuple[float, ...] | tuple[tuple[float, ...], ...] | None = option(
        None,
        doc="thermal expansion, read by `fe2x homogenize` with physics `thermoelasticity`: a "
        "scalar, a symmetric 3x3 tensor, or its 6 Mandel components (11, 22, 33, 23, 13, 12, "
        "sqrt(2) on the shears)",
        expect="a number, a 3x3 array of numbers or a list of 6 numbers",
    )

    def validate(self, ctx: Context, where: str) -> None:
        """Either E and nu, or C_mandel."""
        iso = [k for k in ("E", "nu") if getattr(self, k) is not None]
        if iso and self.C_mandel is not None:
            ctx.fail(f"[{where}] give either E and nu (isotropic) or C_mandel, not both")
        if self.C_mandel is None and len(iso) != 2:
            missing = "E and nu" if not iso else ("nu" if iso == ["E"] else "E")
            ctx.fail(f"[{where}] missing {missing}: an elastic phase needs E and nu, or C_mandel")

    def build(self, name: str) -> IsotropicElastic | AnisotropicElastic:
        """The isotropic law of E and nu, or the anisotropic one of C_mandel."""
        if self.C_mandel is not None:
            # AnisotropicElastic converts (and checks) any array-like; its field holds the array.
            return AnisotropicElastic(self.C_mandel, name=name)  # type: ignore[arg-type]
        assert self.E is not None and self.nu is not None, "validate: E and nu, or C_mandel"
        return IsotropicElastic(self.E, self.nu, name=name)


@dataclass(frozen=True, kw_only=True)
class J2Table(MaterialTable):
    """Von Mises plasticity with linear or Voce isotropic and linear kinematic hardening."""

    TAG_VALUE: ClassVar[str] = "j2"
    E: float = option(REQUIRED, doc="Young's modulus")
    nu: float = option(REQUIRED, doc="Poisson ratio")
    sigma_y: float = option(REQUIRED, doc="initial yield stress")
    hardening: str = option(
        "linear",
        doc="isotropic hardening: `linear` R = H p, or `voce` R = Q (1 - exp(-b p)) + H p",
    )
    H: float = option(0.0, doc="linear isotropic hardening modulus")
    Q: float = option(0.0, doc="Voce saturation stress")
    b: float = option(0.0, doc="Voce rate")
    H_kin: float = option(0.0, doc="linear kinematic (Prager) hardening modulus")

    def build(self, name: str) -> ConstitutiveLaw:
        """The small-strain J2 law of these constants (:class:`~fe2x.materials.j2.J2Plasticity`)."""
        return J2Plasticity(
            self.E, self.nu, self.sigma_y, self.hardening, self.H, self.Q, self.b, self.H_kin, name
        )


#: The slip systems of each lattice of :class:`~fe2x.materials.crystal.CrystalPlasticity`.
SLIP_FAMILIES = {"fcc": "{111}<110>", "bcc": "{110}<111>"}


def _positive(v: float) -> bool:
    return v > 0


@dataclass(frozen=True, kw_only=True)
class CrystalTable(MaterialTable):
    """Crystal plasticity of cubic grains (:class:`~fe2x.materials.crystal.CrystalPlasticity`).

    Cubic elasticity rotated into each cell's ``orientation``, slip γ̇ = γ̇₀ |τ/ξ|ⁿ sign τ and
    DAMASK's phenopowerlaw hardening; the defaults are DAMASK's copper (SI units).
    """

    TAG_VALUE: ClassVar[str] = "crystal"
    ELASTIC_PART_IN_LINEAR_JOBS: ClassVar[bool] = True
    C11: float = option(168.4e9, doc="cubic elastic constant C11", shown_default="`168.4e9`")
    C12: float = option(121.4e9, doc="cubic elastic constant C12", shown_default="`121.4e9`")
    C44: float = option(75.4e9, doc="cubic elastic constant C44", shown_default="`75.4e9`")
    lattice: Literal["fcc", "bcc"] = option("fcc", doc="the crystal lattice")
    slip_family: str | None = option(
        None,
        doc="the slip systems: `{111}<110>` (fcc) or `{110}<111>` (bcc), 12 each (default: "
        "the lattice's)",
    )
    xi0: float = option(
        31.0e6,
        doc="initial slip resistance ξ₀ (critical resolved shear stress)",
        shown_default="`31.0e6`",
    )
    n: float = option(20.0, doc="rate exponent n >= 1 (large: nearly rate-insensitive)")
    gamma_dot_0: float = option(
        1.0e-3, doc="reference slip rate γ̇₀ (1/time)", check=_positive, expect="a positive number"
    )
    h0: float = option(
        75.0e6, doc="hardening modulus h₀ (0: no hardening)", shown_default="`75.0e6`"
    )
    xi_inf: float = option(63.0e6, doc="saturation slip resistance ξ_∞", shown_default="`63.0e6`")
    a: float = option(2.25, doc="hardening exponent a >= 1")
    q_latent: float = option(1.4, doc="latent-hardening ratio of non-coplanar systems")

    def validate(self, ctx: Context, where: str) -> None:
        """The slip family belongs to the lattice."""
        family = SLIP_FAMILIES[self.lattice]
        if self.slip_family is not None and self.slip_family != family:
            ctx.fail(
                f"[{where}] slip_family = {self.slip_family!r} is unknown for lattice "
                f"{self.lattice!r}; allowed: {family!r}"
            )

    def build(self, name: str) -> CrystalPlasticity:
        """The crystal law of these constants; each grain's orientation comes from the cell."""
        return CrystalPlasticity(
            self.C11,
            self.C12,
            self.C44,
            self.xi0,
            lattice=self.lattice,
            n=self.n,
            gamma_dot_0=self.gamma_dot_0,
            h0=self.h0,
            xi_inf=self.xi_inf,
            a=self.a,
            q_latent=self.q_latent,
            name=name,
        )


@dataclass(frozen=True, kw_only=True)
class FiniteJ2Table(J2Table):
    """Finite-strain J2 plasticity: the J2 law in the Lagrangian logarithmic strain, same keys.

    The formulation is that of Miehe, Apel & Lambrecht (2002).
    """

    TAG_VALUE: ClassVar[str] = "finite_j2"

    def build(self, name: str) -> LogStrainPlasticity:
        """The J2 law of these keys, lifted to finite strain by the logarithmic strain."""
        return LogStrainPlasticity(super().build(name), name)


@dataclass(frozen=True, kw_only=True)
class _HyperelasticTable(MaterialTable):
    """Keys of the isotropic hyperelastic laws: E and nu, or K and G (of the linearised law)."""

    LAW: ClassVar[type[NeoHookean] | type[SaintVenantKirchhoff]] = NeoHookean
    E: float | None = option(None, doc="Young's modulus of the linearised law, E > 0")
    nu: float | None = option(None, doc="Poisson ratio of the linearised law, -1 < nu < 0.5")
    K: float | None = option(None, doc="bulk modulus (with G, instead of E and nu)")
    G: float | None = option(None, doc="shear modulus (with K)")

    def validate(self, ctx: Context, where: str) -> None:
        """Either E and nu, or K and G."""
        given = {k for k in ("E", "nu", "K", "G") if getattr(self, k) is not None}
        if given not in ({"E", "nu"}, {"K", "G"}):
            ctx.fail(f"[{where}] give E and nu, or K and G (got {sorted(given) or 'neither'})")

    def build(self, name: str) -> ConstitutiveLaw:
        """The law of ``LAW`` from K and G, or from E and nu."""
        if self.K is not None:
            assert self.G is not None, "validate: K and G together"
            return self.LAW.from_bulk_shear(self.K, self.G, name)
        assert self.E is not None and self.nu is not None, "validate: E and nu, or K and G"
        return self.LAW(self.E, self.nu, name)


@dataclass(frozen=True, kw_only=True)
class NeoHookeanTable(_HyperelasticTable):
    """Compressible Neo-Hookean (finite strain): S = λ ln J C⁻¹ + μ (I − C⁻¹)."""

    TAG_VALUE: ClassVar[str] = "neo_hookean"
    LAW: ClassVar[type[NeoHookean] | type[SaintVenantKirchhoff]] = NeoHookean


@dataclass(frozen=True, kw_only=True)
class SaintVenantKirchhoffTable(_HyperelasticTable):
    """Saint Venant–Kirchhoff (finite strain): S = λ tr(E) I + 2 μ E."""

    TAG_VALUE: ClassVar[str] = "saint_venant_kirchhoff"
    LAW: ClassVar[type[NeoHookean] | type[SaintVenantKirchhoff]] = SaintVenantKirchhoff


#: Material models by the value of ``[materials.<phase>] model``.
MATERIAL_MODELS = Registry(
    "material model",
    {
        "elastic": ElasticTable,
        "j2": J2Table,
        "crystal": CrystalTable,
        "neo_hookean": NeoHookeanTable,
        "saint_venant_kirchhoff": SaintVenantKirchhoffTable,
        "finite_j2": FiniteJ2Table,
    },
)


def build_laws(
    ctx: Context, tables: Mapping[str, MaterialTable], where: str, linear_only: bool = False
) -> dict[str, ConstitutiveLaw]:
    """The law of every phase; errors are one-line ConfigErrors.

    They are raised for non-physical constants and, for ``linear_only`` jobs, for laws that are
    not linear elastic, unless their model offers its elastic part.
    """
    laws = {}
    for name, table in tables.items():
        try:
            laws[name] = table.build(name)
        except MaterialError as error:
            raise ConfigError(f"{ctx.path}: [{where}] {error}") from None
        if linear_only and not (is_linear(laws[name]) or table.ELASTIC_PART_IN_LINEAR_JOBS):
            ctx.fail(
                f"[{where}.{name}] model = {table.model!r} is not linear elastic: this job "
                "homogenizes linear phases (use fe2x rve-path or fe2x run for this model)"
            )
    return laws


def laws_kinematics(ctx: Context, laws: Mapping[str, ConstitutiveLaw], where: str) -> str:
    """The one kinematics of the phases' laws (``"small"`` or ``"finite"``).

    Phases that mix them give a one-line ConfigError.
    """
    kinds = {name: law.kinematics for name, law in laws.items()}
    if len(set(kinds.values())) > 1:
        finite = [n for n, k in kinds.items() if k == "finite"]
        small = [n for n, k in kinds.items() if k != "finite"]
        ctx.fail(
            f"[{where}] phase(s) {finite} have finite-strain models and {small} small-strain "
            "ones: one kinematics per microstructure"
        )
    return next(iter(kinds.values()), "small")


def check_phases(
    ctx: Context, expected: tuple[str, ...] | None, materials: Mapping[str, object], where: str
) -> None:
    """The materials must name exactly the phases of a built-in cell (None: a mesh file's)."""
    if expected is None:
        return
    missing = [p for p in expected if p not in materials]
    extra = [m for m in materials if m not in expected]
    if missing or extra:
        ctx.fail(
            f"[{where}] must define exactly the phases {list(expected)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {extra}" if extra else "")
        )


def _thermal(
    ctx: Context,
    tables: Mapping[str, MaterialTable],
    key: str,
    where: str,
    convert: Callable[[npt.ArrayLike, str], np.ndarray],
) -> dict[str, np.ndarray]:
    """``convert(value, name)`` of key ``key`` of every phase that gives it; one-line errors."""
    values = {}
    for name, table in tables.items():
        value = getattr(table, key, None)
        if value is None:
            continue
        try:
            values[name] = convert(value, name)
        except MaterialError as error:
            raise ConfigError(f"{ctx.path}: [{where}.{name}] {error}") from None
    return values


def build_conductivities(
    ctx: Context, tables: Mapping[str, MaterialTable], dim: int, where: str
) -> dict[str, np.ndarray]:
    """The (dim, dim) conductivity of every phase that gives ``k``.

    Negative or non-SPD values give one-line ConfigErrors.
    """
    return _thermal(ctx, tables, "k", where, lambda k, name: conductivity_tensor(k, dim, name))


def build_expansions(
    ctx: Context, tables: Mapping[str, MaterialTable], where: str
) -> dict[str, np.ndarray]:
    """The 3D Mandel expansion (6,) of every phase that gives ``alpha``."""
    return _thermal(ctx, tables, "alpha", where, expansion_mandel)
