"""Isotropic hyperelastic laws in (F, P, A): compressible Neo-Hookean and Saint Venant–Kirchhoff.

Both are stateless finite-strain laws of the contract in :mod:`fe2x.materials.law` whose
tangent at ``F = I`` is the isotropic small-strain stiffness of the same ``E, ν`` (or ``K, G``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numba
import numpy as np

from fe2x.errors import MaterialError
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.kinematics import (
    checked_deformation,
    flatten,
    green_lagrange,
    piola_from_pk2,
    tangent_from_pk2,
    unflatten,
)
from fe2x.materials.law import LawResponse, State

__all__ = ["NeoHookean", "SaintVenantKirchhoff"]

_I9 = np.eye(3).reshape(9)


@dataclass(frozen=True)
class _IsotropicHyperelastic(ABC):
    """Shared part of the isotropic hyperelastic laws: constants, contract, no state.

    Attributes:
        E: Young's modulus (of the linearised law), ``E > 0``.
        nu: Poisson ratio (of the linearised law), ``-1 < nu < 0.5``.
        name: label used in messages.
    """

    kinematics: ClassVar[str] = "finite"
    state_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}
    parameter_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}

    E: float
    nu: float
    name: str = ""

    def __post_init__(self) -> None:
        elastic = IsotropicElastic(self.E, self.nu, self.name)
        object.__setattr__(self, "E", elastic.E)
        object.__setattr__(self, "nu", elastic.nu)

    @classmethod
    def from_bulk_shear(cls, K: float, G: float, name: str = "") -> _IsotropicHyperelastic:
        """The law with bulk modulus ``K > 0`` and shear modulus ``G > 0``.

        ``E = 9 K G / (3 K + G)``, ``ν = (3 K − 2 G) / (2 (3 K + G))``.
        """
        who = f"{cls.__name__} {name!r}" if name else cls.__name__
        for key, value in (("K", K), ("G", G)):
            if not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and np.isfinite(value)
                and value > 0
            ):
                raise MaterialError(f"{who}: {key} = {value!r} must lie in (0, inf)")
        return cls(9.0 * K * G / (3.0 * K + G), (3.0 * K - 2.0 * G) / (2.0 * (3.0 * K + G)), name)

    @cached_property
    def _elastic(self) -> IsotropicElastic:
        return IsotropicElastic(self.E, self.nu, self.name)

    @property
    def lame(self) -> tuple[float, float]:
        """Lamé constants ``(λ, μ)`` of the linearised law."""
        return self._elastic.lame

    @property
    def who(self) -> str:
        """The law and its name, for messages."""
        return f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__

    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The small-strain 3D Mandel stiffness (the tangent at ``F = I``, read-only)."""
        return self._elastic.C3

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
        """``P (n, 9)`` and ``A (n, 9, 9)`` at the deformation gradients ``strain (n, 9)``."""
        F = unflatten(strain)
        P, A = self._response(F)
        return LawResponse(flatten(P), A, {})

    @abstractmethod
    def _response(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``P (n, 3, 3)`` and ``A (n, 9, 9)`` at the deformation gradients ``F (n, 3, 3)``."""


@dataclass(frozen=True)
class NeoHookean(_IsotropicHyperelastic):
    """Compressible Neo-Hookean law (the form used by FANS), with ``J = det F > 0``.

    ``ψ = μ/2 (tr C − 3) − μ ln J + λ/2 (ln J)²``, ``S = λ ln J C⁻¹ + μ (I − C⁻¹)``,
    ``P = μ (F − F⁻ᵀ) + λ ln J F⁻ᵀ``, and
    ``A_iJkL = μ δ_ik δ_JL + λ F⁻¹_Ji F⁻¹_Lk + (μ − λ ln J) F⁻¹_Li F⁻¹_Jk``.

    ``λ, μ`` are the Lamé constants of ``E, ν`` (:meth:`from_bulk_shear` for ``K, G``).
    A point with ``det F <= 0`` raises :class:`~fe2x.errors.SolverError`.
    """

    def _response(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = F.shape[0]
        lam, mu = self.lame
        P, A = np.empty((n, 3, 3)), np.empty((n, 9, 9))
        if _neo_hookean(np.ascontiguousarray(F), lam, mu, P, A):
            checked_deformation(F, self.who)  # raises, saying what is wrong
        return P, A


@numba.njit(cache=True, nogil=True)
def _neo_hookean(F, lam, mu, P, A):  # pragma: no cover (compiled; the tests check its results)
    """P and A of :class:`NeoHookean` point by point, with G = F⁻ᵀ = cof F / J.

    Fills P ``(n, 3, 3)`` and A ``(n, 9, 9)``; returns 1 if some F is not finite or has J <= 0.
    """
    G = np.empty((3, 3))
    for k in range(F.shape[0]):
        f = F[k]
        for i in range(3):
            for j in range(3):
                if not np.isfinite(f[i, j]):
                    return 1
        G[0, 0] = f[1, 1] * f[2, 2] - f[1, 2] * f[2, 1]
        G[0, 1] = f[1, 2] * f[2, 0] - f[1, 0] * f[2, 2]
        G[0, 2] = f[1, 0] * f[2, 1] - f[1, 1] * f[2, 0]
        G[1, 0] = f[0, 2] * f[2, 1] - f[0, 1] * f[2, 2]
        G[1, 1] = f[0, 0] * f[2, 2] - f[0, 2] * f[2, 0]
        G[1, 2] = f[0, 1] * f[2, 0] - f[0, 0] * f[2, 1]
        G[2, 0] = f[0, 1] * f[1, 2] - f[0, 2] * f[1, 1]
        G[2, 1] = f[0, 2] * f[1, 0] - f[0, 0] * f[1, 2]
        G[2, 2] = f[0, 0] * f[1, 1] - f[0, 1] * f[1, 0]
        J = f[0, 0] * G[0, 0] + f[0, 1] * G[0, 1] + f[0, 2] * G[0, 2]
        if not J > 0.0:
            return 1
        for i in range(3):
            for j in range(3):
                G[i, j] /= J
        lnJ = np.log(J)
        c = mu - lam * lnJ
        for i in range(3):
            for j in range(3):
                P[k, i, j] = mu * f[i, j] - c * G[i, j]
        # A_iJkL = μ δ_ik δ_JL + λ G_iJ G_kL + (μ − λ ln J) G_iL G_kJ
        for i in range(3):
            for j in range(3):
                for m in range(3):
                    for L in range(3):
                        value = lam * G[i, j] * G[m, L] + c * G[i, L] * G[m, j]
                        if i == m and j == L:
                            value += mu
                        A[k, 3 * i + j, 3 * m + L] = value
    return 0


@dataclass(frozen=True)
class SaintVenantKirchhoff(_IsotropicHyperelastic):
    """Saint Venant–Kirchhoff law: Hooke's law between ``E = (Fᵀ F − I)/2`` and ``S``.

    ``ψ = λ/2 (tr E)² + μ E : E``, ``S = λ tr(E) I + 2 μ E``, ``P = F S``, with the
    constant ``∂S/∂E = λ I ⊗ I + 2 μ 𝕀ˢʸᵐ`` converted to ``A`` by
    :func:`~fe2x.materials.kinematics.tangent_from_pk2`.

    Defined for every ``F`` (also ``det F <= 0``, where it is not physical; it also softens
    in strong compression, as is well known).
    """

    @cached_property
    def _dS_dE(self) -> np.ndarray:
        lam, mu = self.lame
        I4 = np.eye(9)
        C = lam * np.outer(_I9, _I9) + mu * (
            I4 + I4[[3 * j + i for i in range(3) for j in range(3)]]
        )
        C.flags.writeable = False
        return C

    def _response(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = F.shape[0]
        checked_deformation(F, self.who, positive=False)
        lam, mu = self.lame
        E = green_lagrange(F)
        S = 2.0 * mu * E
        S += (lam * np.trace(E, axis1=1, axis2=2))[:, None, None] * np.eye(3)
        dS_dE = np.broadcast_to(self._dS_dE, (n, 9, 9))
        return piola_from_pk2(F, S), tangent_from_pk2(F, S, dS_dE)
