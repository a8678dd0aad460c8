"""Small-strain J2 plasticity with isotropic and kinematic hardening, vectorised over points."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError, SolverError
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.law import LawResponse, State

__all__ = [
    "HARDENING_LAWS",
    "J2Plasticity",
    "J2State",
    "J2Update",
    "plane_strain_reduce",
    "plane_strain_strain",
    "return_mapping",
]

HARDENING_LAWS = ("linear", "voce")

#: A point is plastic when f_trial > YIELD_RTOL * (sigma_y + R(p_n)); points on the yield
#: surface up to round-off (e.g. re-evaluated at their converged strain) stay elastic.
YIELD_RTOL = 1e-12

_SQRT_3_2 = math.sqrt(1.5)
_PLANE = [0, 1, 5]
_NEWTON_RTOL = 1e-13
_NEWTON_MAXIT = 50


@dataclass(frozen=True)
class J2Plasticity:
    """Von Mises plasticity with mixed hardening, associative flow and radial return.

    Yield function and hardening (Mandel vectors, ``|a| = sqrt(a . a)`` is the tensor norm):

    - ``f = sqrt(3/2) |dev(sigma) - beta| - (sigma_y + R(p)) <= 0``
    - isotropic: ``R(p) = H p`` (``"linear"``) or ``R(p) = Q (1 - exp(-b p)) + H p``
      (``"voce"``), with ``p`` the equivalent plastic strain, ``dp = sqrt(2/3) |d eps_p|``;
    - kinematic (Prager): ``d beta = (2/3) H_kin d eps_p``;
    - flow: ``d eps_p = dp sqrt(3/2) n``, ``n = (dev(sigma) - beta) / |dev(sigma) - beta|``.

    ``H = dR/dp`` (linear part) and ``H_kin`` are plastic moduli in uniaxial stress: with linear
    hardening the uniaxial elastoplastic tangent is ``E_t = E (H + H_kin) / (E + H + H_kin)``.
    ``H = H_kin = 0`` is perfect plasticity.

    Attributes:
        E: Young's modulus, ``E > 0``.
        nu: Poisson's ratio, ``-1 < nu < 0.5``.
        sigma_y: initial yield stress, ``sigma_y > 0``.
        hardening: ``"linear"`` or ``"voce"``.
        H: linear isotropic hardening modulus, ``H >= 0``.
        Q: Voce saturation stress, ``Q >= 0`` (``"voce"`` only).
        b: Voce rate, ``b >= 0`` and ``b > 0`` if ``Q > 0`` (``"voce"`` only).
        H_kin: linear kinematic hardening modulus, ``H_kin >= 0``.
        name: label used in error messages.
    """

    kinematics: ClassVar[str] = "small"
    state_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {"eps_p": (6,), "beta": (6,), "p": ()}
    parameter_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}
    output_names: ClassVar[tuple[str, ...]] = ("equivalent_plastic_strain",)

    E: float
    nu: float
    sigma_y: float
    hardening: str = "linear"
    H: float = 0.0
    Q: float = 0.0
    b: float = 0.0
    H_kin: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        who = f"J2Plasticity {self.name!r}" if self.name else "J2Plasticity"
        if self.hardening not in HARDENING_LAWS:
            raise MaterialError(
                f"{who}: hardening = {self.hardening!r} is unknown; allowed: "
                + ", ".join(repr(h) for h in HARDENING_LAWS)
            )
        checks = (
            ("E", self.E, self.E > 0, "0 < E < inf"),
            ("nu", self.nu, -1.0 < self.nu < 0.5, "-1 < nu < 0.5"),
            ("sigma_y", self.sigma_y, self.sigma_y > 0, "0 < sigma_y < inf"),
            ("H", self.H, self.H >= 0, "0 <= H < inf"),
            ("Q", self.Q, self.Q >= 0, "0 <= Q < inf"),
            ("b", self.b, self.b >= 0, "0 <= b < inf"),
            ("H_kin", self.H_kin, self.H_kin >= 0, "0 <= H_kin < inf"),
        )
        for key, value, ok, allowed in checks:
            if not (ok and math.isfinite(value)):
                raise MaterialError(
                    f"{who}: {key} = {value!r} is outside the allowed range {allowed}"
                )
        if self.hardening == "voce" and self.Q > 0 and self.b == 0:
            raise MaterialError(f"{who}: b = {self.b!r} with Q = {self.Q!r} > 0; allowed: b > 0")
        if self.hardening == "linear" and (self.Q != 0 or self.b != 0):
            raise MaterialError(
                f"{who}: Q = {self.Q!r}, b = {self.b!r} apply only to hardening = 'voce'; "
                "allowed with 'linear': Q = b = 0"
            )

    @property
    def G(self) -> float:
        """Shear modulus ``G = E / (2 (1 + nu))``."""
        return self.E / (2.0 * (1.0 + self.nu))

    @property
    def K(self) -> float:
        """Bulk modulus ``K = E / (3 (1 - 2 nu))``."""
        return self.E / (3.0 * (1.0 - 2.0 * self.nu))

    @cached_property
    def _elastic(self) -> IsotropicElastic:
        return IsotropicElastic(self.E, self.nu)

    def stiffness(self, dim: int) -> np.ndarray:
        """Elastic Mandel stiffness (the tangent before yield), as for the elastic materials."""
        return self._elastic.stiffness(dim)

    # -- the constitutive-law contract (fe2x.materials.law) --------------------------------
    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The 3D elastic Mandel stiffness (read-only)."""
        return self._elastic.C3

    def initial_state(self, n: int) -> State:
        """Virgin history: no plastic strain, back stress or accumulated plastic strain."""
        return J2State.zeros(n).as_dict()

    def update(
        self,
        strain: np.ndarray,
        state: State,
        dt: float = 0.0,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> LawResponse:
        """Radial return (:func:`return_mapping`); rate-independent, so ``dt`` is not used."""
        sigma, C_alg, trial, _ = return_mapping(self, strain, J2State(**state))
        return LawResponse(sigma, C_alg, trial.as_dict())

    def stays_elastic(
        self, strain: np.ndarray, parameters: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Per point, whether the virgin-state trial stress lies inside the yield surface.

        The tolerance is that of :func:`return_mapping` (:data:`YIELD_RTOL`).
        """
        eps = np.asarray(strain, dtype=float)
        tr = eps[:, :3].sum(axis=1)
        xi = 2.0 * self.G * eps
        xi[:, :3] -= (2.0 * self.G / 3.0) * tr[:, None]
        q = _SQRT_3_2 * np.sqrt(np.einsum("ij,ij->i", xi, xi))
        return ~(q - self.sigma_y > YIELD_RTOL * self.sigma_y)

    def outputs(self, state: State) -> dict[str, np.ndarray]:
        """The equivalent plastic strain p."""
        return {"equivalent_plastic_strain": state["p"]}

    def R(self, p: npt.ArrayLike) -> np.ndarray:
        """Isotropic hardening stress ``R(p)``."""
        p = np.asarray(p, dtype=float)
        if self.hardening == "voce":
            return self.Q * -np.expm1(-self.b * p) + self.H * p
        return self.H * p

    def dR(self, p: npt.ArrayLike) -> np.ndarray:
        """Isotropic plastic modulus ``R'(p)``: ``H`` or ``Q b exp(-b p) + H``."""
        p = np.asarray(p, dtype=float)
        if self.hardening == "voce":
            return self.Q * self.b * np.exp(-self.b * p) + self.H
        return np.full_like(p, self.H)


@dataclass(frozen=True)
class J2State:
    """History at ``n`` points: plastic strain, back stress (Mandel) and equivalent plastic strain.

    Plain numpy arrays, never modified in place by fe2x, so states can be kept for cutback,
    pickled, or packed with :meth:`to_array` into one ``(n, 13)`` buffer for MPI.

    Attributes:
        eps_p: plastic strain, shape ``(n, 6)``.
        beta: back stress, shape ``(n, 6)``.
        p: equivalent plastic strain, shape ``(n,)``.
    """

    eps_p: np.ndarray
    beta: np.ndarray
    p: np.ndarray

    def __post_init__(self) -> None:
        n = self.p.shape[0] if self.p.ndim == 1 else -1
        if n < 0 or self.eps_p.shape != (n, 6) or self.beta.shape != (n, 6):
            raise ValueError(
                f"J2State shapes eps_p {self.eps_p.shape}, beta {self.beta.shape}, "
                f"p {self.p.shape}; expected (n, 6), (n, 6), (n,)"
            )

    @property
    def n(self) -> int:
        """Number of points."""
        return self.p.shape[0]

    @classmethod
    def zeros(cls, n: int) -> J2State:
        """Virgin state at ``n`` points."""
        return cls(np.zeros((n, 6)), np.zeros((n, 6)), np.zeros(n))

    def as_dict(self) -> State:
        """The state as the law contract's dict of arrays (the same arrays, not copies)."""
        return {"eps_p": self.eps_p, "beta": self.beta, "p": self.p}

    def copy(self) -> J2State:
        """Deep copy."""
        return J2State(self.eps_p.copy(), self.beta.copy(), self.p.copy())

    def take(self, index: np.ndarray | slice) -> J2State:
        """State at the points ``index`` (integer indices, boolean mask or slice), as a copy."""
        return J2State(self.eps_p[index].copy(), self.beta[index].copy(), self.p[index].copy())

    @staticmethod
    def concatenate(states: list[J2State]) -> J2State:
        """States of several point sets, one after another."""
        return J2State(
            np.concatenate([s.eps_p for s in states]),
            np.concatenate([s.beta for s in states]),
            np.concatenate([s.p for s in states]),
        )

    def to_array(self) -> np.ndarray:
        """Pack as ``(n, 13)``: columns ``eps_p (6) | beta (6) | p (1)``."""
        return np.hstack([self.eps_p, self.beta, self.p[:, None]])

    @classmethod
    def from_array(cls, a: npt.ArrayLike) -> J2State:
        """Unpack a ``(n, 13)`` array made by :meth:`to_array` (copies)."""
        a = np.array(a, dtype=float, ndmin=2)
        if a.ndim != 2 or a.shape[1] != 13:
            raise ValueError(f"J2State.from_array: shape {a.shape}; expected (n, 13)")
        return cls(a[:, 0:6].copy(), a[:, 6:12].copy(), a[:, 12].copy())


class J2Update(NamedTuple):
    """Result of :func:`return_mapping` (unpacks as ``sigma, C_alg, state, plastic``).

    Attributes:
        sigma: stress, Mandel, ``(n, 6)``.
        C_alg: consistent tangent ``d sigma / d eps``, Mandel, ``(n, 6, 6)``.
        state: trial history at the new strain (commit it once the global step converges).
        plastic: ``(n,)`` bool, True where the step is plastic.
    """

    sigma: np.ndarray
    C_alg: np.ndarray
    state: J2State
    plastic: np.ndarray


def return_mapping(law: J2Plasticity, eps: npt.ArrayLike, state: J2State) -> J2Update:
    """Radial return from the committed ``state`` to total strain ``eps`` at all points at once.

    Trial ``xi = 2 G dev(eps - eps_p) - beta``, ``q = sqrt(3/2) |xi|``. Where
    ``q - sigma_y - R(p) > 0`` the increment ``dp`` solves
    ``q - (3 G + H_kin) dp - sigma_y - R(p + dp) = 0`` (closed form if linear, Newton if Voce;
    the residual is convex and decreasing so Newton from 0 converges monotonically), and with
    ``n = xi / |xi|`` the consistent tangent is::

        C_alg = C_el - 6 G^2 dp / q P_dev + 6 G^2 (dp / q - 1 / (3 G + H_kin + R'(p + dp))) n n

    Elastic points return ``C_alg = C_el`` exactly. ``state`` is not modified.

    Args:
        law: the material.
        eps: total strain, Mandel, ``(n, 6)``.
        state: committed history at the same ``n`` points.

    Returns:
        Stress, consistent tangent, trial state and plastic mask (:class:`J2Update`).

    Raises:
        SolverError: non-finite strain, or the Voce Newton iteration did not converge.
    """
    eps = np.ascontiguousarray(eps, dtype=float)
    if eps.ndim != 2 or eps.shape[1] != 6 or eps.shape[0] != state.n:
        raise ValueError(f"return_mapping: eps shape {eps.shape}; expected ({state.n}, 6)")
    n = eps.shape[0]
    sigma, C_alg = np.empty((n, 6)), np.empty((n, 6, 6))
    eps_p, beta, p = np.empty((n, 6)), np.empty((n, 6)), np.empty(n)
    plastic = np.empty(n, dtype=np.bool_)
    status = _radial_return(
        eps,
        np.ascontiguousarray(state.eps_p, dtype=float),
        np.ascontiguousarray(state.beta, dtype=float),
        np.ascontiguousarray(state.p, dtype=float),
        law.G,
        law.K,
        law.sigma_y,
        law.H,
        law.Q if law.hardening == "voce" else 0.0,
        law.b if law.hardening == "voce" else 0.0,
        law.H_kin,
        law.elastic_stiffness(),
        _NEWTON_MAXIT,
        sigma,
        C_alg,
        eps_p,
        beta,
        p,
        plastic,
    )
    if status == _NOT_FINITE:
        bad = int(np.count_nonzero(~np.isfinite(eps).all(axis=1)))
        raise SolverError(f"J2 return mapping: strain is not finite at {bad} point(s)")
    if status > 0:
        raise SolverError(
            f"J2 return mapping ({law.name or 'J2Plasticity'}): Voce Newton for dp did not "
            f"converge at {status} point(s) in {_NEWTON_MAXIT} iterations (huge strain?)"
        )
    return J2Update(sigma, C_alg, J2State(eps_p, beta, p), plastic)


_NOT_FINITE = -1


@numba.njit(cache=True, nogil=True)
def _radial_return(
    eps,
    eps_p0,
    beta0,
    p0,
    G,
    K,
    sigma_y,
    H,
    Q,
    b,
    H_kin,
    C_el,
    max_it,
    sigma,
    C,
    eps_p,
    beta,
    p,
    plastic,
):  # pragma: no cover (compiled; its results are what the tests check)
    """The return mapping point by point (compiled), filling the outputs.

    Returns the number of points where the Voce Newton did not converge (0: none), or
    ``_NOT_FINITE``.
    """
    n = eps.shape[0]
    failed = 0
    h_el = 3.0 * G + H_kin
    for k in range(n):
        for i in range(6):
            if not np.isfinite(eps[k, i]):
                return _NOT_FINITE
        tr = eps[k, 0] - eps_p0[k, 0] + eps[k, 1] - eps_p0[k, 1] + eps[k, 2] - eps_p0[k, 2]
        xi = np.empty(6)
        q2 = 0.0
        for i in range(6):
            s = 2.0 * G * (eps[k, i] - eps_p0[k, i])
            if i < 3:
                s -= 2.0 * G / 3.0 * tr
            sigma[k, i] = s + (K * tr if i < 3 else 0.0)
            xi[i] = s - beta0[k, i]
            q2 += xi[i] * xi[i]
        q = np.sqrt(1.5 * q2)
        R0 = Q * -np.expm1(-b * p0[k]) + H * p0[k]
        radius = sigma_y + R0
        for i in range(6):
            eps_p[k, i] = eps_p0[k, i]
            beta[k, i] = beta0[k, i]
        p[k] = p0[k]
        plastic[k] = q - radius > YIELD_RTOL * radius
        C[k] = C_el
        if not plastic[k]:
            continue
        # dp solves q - h_el dp - sigma_y - R(p + dp) = 0 (closed form if Q = 0, else Newton)
        if Q == 0.0:
            dp = (q - sigma_y - H * p0[k]) / (h_el + H)
        else:
            dp = 0.0
            converged = False
            for _ in range(max_it):
                pk = p0[k] + dp
                g = q - h_el * dp - sigma_y - (Q * -np.expm1(-b * pk) + H * pk)
                if abs(g) <= _NEWTON_RTOL * q:
                    converged = True
                    break
                dp += g / (h_el + Q * b * np.exp(-b * pk) + H)
            if not converged:
                failed += 1
                continue
        pk = p0[k] + dp
        dR = Q * b * np.exp(-b * pk) + H
        norm = q / np.sqrt(1.5)
        a = 6.0 * G * G * dp / q
        c = a - 6.0 * G * G / (h_el + dR)
        g2 = 2.0 * G - a
        for i in range(6):
            ni = xi[i] / norm
            de = np.sqrt(1.5) * dp * ni
            eps_p[k, i] += de
            beta[k, i] += 2.0 / 3.0 * H_kin * de
            sigma[k, i] -= 2.0 * G * de
            for j in range(6):
                # C_alg = g I + (K - g / 3) 1 1 + c n n, g = 2 G - a
                C[k, i, j] = (
                    c * ni * xi[j] / norm
                    + (g2 if i == j else 0.0)
                    + ((K - g2 / 3.0) if (i < 3 and j < 3) else 0.0)
                )
        p[k] = pk
    return failed


def plane_strain_strain(eps2: npt.ArrayLike) -> np.ndarray:
    """Embed plane strain ``[e11, e22, sqrt(2) e12]`` in 3D Mandel with ``e33 = e23 = e13 = 0``.

    The 3D return mapping then carries ``sigma_33`` and the out-of-plane plastic strain, so plane
    strain is exact (no plane-stress-like approximation).

    >>> plane_strain_strain([[1.0, 2.0, 3.0]]).tolist()
    [[1.0, 2.0, 0.0, 0.0, 0.0, 3.0]]
    """
    eps2 = np.asarray(eps2, dtype=float)
    if eps2.ndim != 2 or eps2.shape[1] != 3:
        raise ValueError(f"plane_strain_strain: shape {eps2.shape}; expected (n, 3)")
    eps = np.zeros((eps2.shape[0], 6))
    eps[:, _PLANE] = eps2
    return eps


def plane_strain_reduce(sigma: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane stress ``(n, 3)`` and tangent ``(n, 3, 3)``: Mandel rows/columns 11, 22, 12.

    The tangent block needs no condensation because ``e33 = e23 = e13 = 0`` are prescribed.
    """
    return sigma[:, _PLANE], C[:, _PLANE][:, :, _PLANE]
