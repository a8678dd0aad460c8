"""Validated linear-elastic phases (isotropic or anisotropic) with Mandel stiffness/compliance."""

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from fe2x.errors import MaterialError
from fe2x.materials.law import LawResponse, State
from fe2x.materials.mandel import bulk_shear, isotropic_stiffness, lame_parameters, plane_strain

SYMMETRY_RTOL = 1e-10
"""Allowed max |C − Cᵀ| relative to max |C| for an anisotropic stiffness."""
DEFINITENESS_RTOL = 1e-12
"""Smallest eigenvalue of C must exceed this times its largest."""

_J3 = np.zeros((6, 6))
_J3[:3, :3] = 1.0 / 3.0  # volumetric projector, 3D Mandel
_J2 = np.zeros((3, 3))
_J2[:2, :2] = 0.5  # in-plane volumetric projector, 2D Mandel


def _who(name: str) -> str:
    return f"phase {name!r}" if name else "elastic material"


def _real(value: Any, what: str, name: str, allowed: str) -> float:
    """``value`` as a finite float, or a MaterialError naming the phase, parameter and range."""
    try:
        if isinstance(value, bool | str | bytes):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise MaterialError(
            f"{_who(name)}: {what} = {value!r} is not a real number; it must lie in {allowed}"
        ) from None
    if not math.isfinite(x):
        raise MaterialError(f"{_who(name)}: {what} = {x!r} must lie in {allowed}")
    return x


def _check_dim(dim: int) -> None:
    if dim not in (2, 3):
        raise ValueError(f"dim = {dim!r} must be 2 (plane strain) or 3")


def _repeated(C: np.ndarray, n: int) -> np.ndarray:
    """The read-only contiguous ``C`` as ``(n, *C.shape)``, stride 0 over ``n``.

    What ``np.broadcast_to`` gives, in a third of its call time (a law update per phase).
    """
    return np.ndarray((n, *C.shape), C.dtype, C, strides=(0, *C.strides))


class _LinearElasticLaw(ABC):
    """The constitutive-law contract of a linear elastic phase: σ = C ε, no state."""

    kinematics: ClassVar[str] = "small"
    linear: ClassVar[bool] = True
    state_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}
    parameter_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}

    @property
    @abstractmethod
    def C3(self) -> np.ndarray:
        """3D Mandel stiffness ``(6, 6)``, read-only; each subclass provides it."""

    def initial_state(self, n: int) -> State:
        """No internal variables."""
        return {}

    def update(
        self,
        strain: np.ndarray,
        state: State,
        dt: float = 0.0,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> LawResponse:
        """σ = C ε with the constant tangent C (a read-only broadcast view)."""
        strain = np.asarray(strain, dtype=float)
        C = self.C3
        return LawResponse(strain @ C.T, _repeated(C, strain.shape[0]), {})

    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The 3D Mandel stiffness (read-only)."""
        return self.C3

    def stays_elastic(
        self, strain: np.ndarray, parameters: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Always: the law has no inelastic range."""
        return np.ones(np.shape(strain)[0], dtype=bool)


@dataclass(frozen=True)
class IsotropicElastic(_LinearElasticLaw):
    """Isotropic linear elasticity, E > 0 and −1 < ν < 1/2.

    Attributes:
        E: Young's modulus.
        nu: Poisson ratio.
        name: Phase name, used in error messages.
    """

    E: float
    nu: float
    name: str = ""

    def __post_init__(self) -> None:
        E = _real(self.E, "Young's modulus E", self.name, "(0, inf)")
        if not E > 0.0:
            raise MaterialError(
                f"{_who(self.name)}: Young's modulus E = {E!r} must lie in (0, inf)"
            )
        nu = _real(self.nu, "Poisson ratio nu", self.name, "(-1, 0.5)")
        if not -1.0 < nu < 0.5:
            raise MaterialError(
                f"{_who(self.name)}: Poisson ratio nu = {nu!r} must lie in (-1, 0.5)"
            )
        object.__setattr__(self, "E", E)
        object.__setattr__(self, "nu", nu)

    @cached_property
    def C3(self) -> np.ndarray:
        """3D Mandel stiffness, computed once (read-only)."""
        C = isotropic_stiffness(self.E, self.nu)
        C.flags.writeable = False
        return C

    @property
    def lame(self) -> tuple[float, float]:
        """Lamé constants (λ, μ)."""
        return lame_parameters(self.E, self.nu)

    @property
    def bulk_modulus(self) -> float:
        """3D bulk modulus K = E/(3(1−2ν))."""
        return bulk_shear(self.E, self.nu)[0]

    @property
    def shear_modulus(self) -> float:
        """Shear modulus μ = E/(2(1+ν))."""
        return bulk_shear(self.E, self.nu)[1]

    @property
    def plane_strain_bulk_modulus(self) -> float:
        """Plane-strain (2D, transverse) bulk modulus κ = λ + μ."""
        lam, mu = self.lame
        return lam + mu

    def stiffness(self, dim: int) -> np.ndarray:
        """Mandel stiffness: 6x6 in 3D, plane-strain 3x3 (λ+2μ, λ, 2μ) in 2D."""
        _check_dim(dim)
        return self.C3.copy() if dim == 3 else plane_strain(self.C3)

    def compliance(self, dim: int) -> np.ndarray:
        """Inverse of ``stiffness(dim)``: S = J/(3K) + (I−J)/(2μ) in 3D, J/(2κ) + (I−J)/(2μ) in 2D.

        In 2D this is the plane-strain compliance (strain from in-plane stress with ε33 = 0),
        not the in-plane block of the 3D compliance.
        """
        _check_dim(dim)
        mu = self.shear_modulus
        if dim == 3:
            return _J3 / (3.0 * self.bulk_modulus) + (np.eye(6) - _J3) / (2.0 * mu)
        return _J2 / (2.0 * self.plane_strain_bulk_modulus) + (np.eye(3) - _J2) / (2.0 * mu)


@dataclass(frozen=True, eq=False)
class AnisotropicElastic(_LinearElasticLaw):
    """General linear elasticity from a symmetric positive definite 6x6 Mandel stiffness.

    The stored ``C`` is a read-only, exactly symmetric copy. Equality is identity.

    Attributes:
        C: 3D Mandel stiffness (6, 6).
        name: Phase name, used in error messages.
    """

    C: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        who = _who(self.name)
        try:
            C = np.array(self.C, dtype=float)
        except (TypeError, ValueError):
            raise MaterialError(
                f"{who}: stiffness C_mandel is not a 6x6 array of numbers"
            ) from None
        if C.shape != (6, 6):
            raise MaterialError(f"{who}: stiffness C_mandel has shape {C.shape}, expected (6, 6)")
        if not np.all(np.isfinite(C)):
            raise MaterialError(f"{who}: stiffness C_mandel has non-finite entries")
        scale = np.max(np.abs(C))
        asym = np.max(np.abs(C - C.T))
        if asym > SYMMETRY_RTOL * scale:
            raise MaterialError(
                f"{who}: stiffness C_mandel is not symmetric "
                f"(max |C - C^T| / max |C| = {asym / scale:.3g}, allowed <= {SYMMETRY_RTOL:g})"
            )
        C = 0.5 * (C + C.T)
        eig = np.linalg.eigvalsh(C)
        if not eig[0] > DEFINITENESS_RTOL * np.max(np.abs(eig)):
            raise MaterialError(
                f"{who}: stiffness C_mandel is not positive definite "
                f"(smallest eigenvalue {eig[0]:.6g}, must be > 0)"
            )
        C.flags.writeable = False
        object.__setattr__(self, "C", C)

    @property
    def C3(self) -> np.ndarray:
        """3D Mandel stiffness (read-only)."""
        return self.C

    def stiffness(self, dim: int) -> np.ndarray:
        """Mandel stiffness: 6x6 in 3D, plane-strain 3x3 (rows/cols 11, 22, 12) in 2D."""
        _check_dim(dim)
        return self.C.copy() if dim == 3 else plane_strain(self.C)

    def compliance(self, dim: int) -> np.ndarray:
        """Inverse of ``stiffness(dim)`` (in 2D the plane-strain compliance)."""
        S = np.linalg.inv(self.stiffness(dim))
        return 0.5 * (S + S.T)


_ISOTROPIC_KEYS = ("E", "nu")
_ANISOTROPIC_KEYS = ("C_mandel",)
_ALLOWED = "'E' and 'nu' (isotropic) or 'C_mandel' (anisotropic, 6x6 Mandel)"


def elastic_material(name: str, table: Mapping[str, Any]) -> IsotropicElastic | AnisotropicElastic:
    """Elastic phase from a config table: ``{"E": ..., "nu": ...}`` or ``{"C_mandel": [[...]]}``."""
    who = _who(name)
    if not isinstance(table, Mapping):
        raise MaterialError(f"{who}: expected a table with keys {_ALLOWED}, got {table!r}")
    keys = set(table)
    unknown = sorted(keys - {*_ISOTROPIC_KEYS, *_ANISOTROPIC_KEYS}, key=str)
    if unknown:
        listed = ", ".join(repr(k) for k in unknown)
        raise MaterialError(f"{who}: unknown key(s) {listed}; allowed keys are {_ALLOWED}")
    iso = keys & set(_ISOTROPIC_KEYS)
    if iso and "C_mandel" in keys:
        raise MaterialError(f"{who}: give either {_ALLOWED}, not both")
    if not keys:
        raise MaterialError(f"{who}: no elastic constants; give {_ALLOWED}")
    if "C_mandel" in keys:
        return AnisotropicElastic(table["C_mandel"], name=name)
    missing = [k for k in _ISOTROPIC_KEYS if k not in keys]
    if missing:
        raise MaterialError(
            f"{who}: missing key {missing[0]!r}; isotropic phases need 'E' and 'nu'"
        )
    return IsotropicElastic(table["E"], table["nu"], name=name)
