"""Small-strain crystal plasticity of cubic grains, batched over points.

Slip systems, rotated cubic elasticity and a rate-dependent power law with phenomenological
hardening. Per point, in the crystal frame (Mandel vectors; the orientation ``R`` maps crystal
to sample components, :mod:`fe2x.materials.orientations`):

- ``σ = C (ε − ε_p)``, ``ε̇_p = Σ_α γ̇_α P_α``, ``P_α = sym(m_α ⊗ n_α)``, ``τ_α = σ : P_α``;
- ``γ̇_α = γ̇₀ |τ_α / ξ_α|ⁿ sign τ_α``;
- ``ξ̇_α = Σ_β h_αβ |γ̇_β|``, ``h_αβ = q_αβ h₀ |1 − ξ_β/ξ_∞|ᵃ sign(1 − ξ_β/ξ_∞)``, with
  ``q_αβ = 1`` for systems on the same slip plane (self and coplanar) and ``q_latent`` else
  (the "phenopowerlaw" of DAMASK, after Peirce, Asaro & Needleman 1982 and Kalidindi et al.
  1992).

Backward Euler over ``dt`` gives, with ``Δγ_α = dt γ̇₀ |τ_α/ξ_α|ⁿ sign τ_α``, the local
residual in the unknowns ``x = (σ, ξ)`` (``S = C⁻¹``, ``ε_e* = ε − ε_p,n`` the trial elastic
strain)::

    r_σ = S σ + Σ_α Δγ_α P_α − ε_e*                         (strain)
    r_ξ = ξ_α − ξ_α,n − Σ_β h_αβ(ξ_β) |Δγ_β|                (stress)

solved by Newton with a backtracking (Armijo) line search on ``½ |r|²``. The start is, per
point, the better of the elastic predictor scaled onto the Schmid polytope (the largest
``|τ_α|/ξ_α`` at most 1; robust up to large ``n``, where the unscaled predictor makes the
Jacobian hopelessly ill-conditioned) and the last step's slip rates continued over ``dt``
(two or three iterations in steady flow). Each Newton system is reduced exactly to ``6 + r``
unknowns through the low rank ``r`` of the interaction matrix (:func:`_reduced_jacobian`).
The consistent tangent follows from the same Jacobian at the solution: ``∂r/∂ε = (−I, 0)``,
so ``dσ/dε`` is the σ block of ``J⁻¹ (I, 0)ᵀ``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError, SolverError
from fe2x.materials.law import LawResponse, State
from fe2x.materials.mandel import MANDEL_3D, tensor_to_mandel

__all__ = [
    "LATTICES",
    "CrystalPlasticity",
    "CrystalUpdate",
    "SlipSystems",
    "crystal_update",
    "cubic_stiffness",
    "slip_systems",
]

#: Slip-system families by lattice: (slip direction m, slip-plane normal n) in Miller indices.
LATTICES: dict[str, tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...]] = {
    # {111}<110>: 4 planes x 3 directions
    "fcc": (
        ((0, 1, -1), (1, 1, 1)),
        ((-1, 0, 1), (1, 1, 1)),
        ((1, -1, 0), (1, 1, 1)),
        ((0, -1, -1), (-1, -1, 1)),
        ((1, 0, 1), (-1, -1, 1)),
        ((-1, 1, 0), (-1, -1, 1)),
        ((0, -1, 1), (1, -1, -1)),
        ((-1, 0, -1), (1, -1, -1)),
        ((1, 1, 0), (1, -1, -1)),
        ((0, 1, 1), (-1, 1, -1)),
        ((1, 0, -1), (-1, 1, -1)),
        ((-1, -1, 0), (-1, 1, -1)),
    ),
    # {110}<111>: 6 planes x 2 directions
    "bcc": (
        ((1, 1, 1), (0, 1, -1)),
        ((-1, 1, 1), (0, 1, -1)),
        ((1, -1, 1), (0, 1, 1)),
        ((-1, -1, 1), (0, 1, 1)),
        ((1, 1, -1), (1, 0, 1)),
        ((1, -1, -1), (1, 0, 1)),
        ((1, 1, 1), (1, 0, -1)),
        ((1, -1, 1), (1, 0, -1)),
        ((1, -1, 1), (1, 1, 0)),
        ((1, -1, -1), (1, 1, 0)),
        ((1, 1, 1), (1, -1, 0)),
        ((1, 1, -1), (1, -1, 0)),
    ),
}

#: The local Newton has converged at a point when its scaled residual (strain units) satisfies
#: max |r| <= RTOL (ξ₀ / C44 + max |ε_e*|); NEWTON_MAXIT iterations, LINE_SEARCH_MAXIT halvings.
RTOL = 1e-11
NEWTON_MAXIT = 60
LINE_SEARCH_MAXIT = 40
#: Stage counts of the load continuation tried, in turn, where the local Newton fails.
CONTINUATION_STAGES = (4, 16, 64)
#: An orientation must satisfy max |R Rᵀ − I| <= ORIENTATION_ATOL and det R > 0.
ORIENTATION_ATOL = 1e-8

_ARMIJO = 1e-4


class SlipSystems(NamedTuple):
    """The slip systems of a lattice in the crystal frame.

    Attributes:
        m: unit slip directions ``(N, 3)``.
        n: unit slip-plane normals ``(N, 3)``.
        schmid: Mandel Schmid tensors ``P_α = sym(m_α ⊗ n_α)`` ``(N, 6)``.
        coplanar: ``(N, N)`` bool, True where two systems share their slip plane.
    """

    m: np.ndarray
    n: np.ndarray
    schmid: np.ndarray
    coplanar: np.ndarray


def slip_systems(lattice: str) -> SlipSystems:
    """The slip systems of ``lattice`` (``"fcc"``: {111}⟨110⟩, ``"bcc"``: {110}⟨111⟩)."""
    if lattice not in LATTICES:
        raise MaterialError(
            f"lattice = {lattice!r} is unknown; allowed: {', '.join(map(repr, LATTICES))}"
        )
    mn = np.array(LATTICES[lattice], dtype=float)
    m = mn[:, 0] / np.linalg.norm(mn[:, 0], axis=1)[:, None]
    n = mn[:, 1] / np.linalg.norm(mn[:, 1], axis=1)[:, None]
    schmid = tensor_to_mandel(np.einsum("ai,aj->aij", m, n))
    coplanar = np.abs(n @ n.T) > 1.0 - 1e-12
    for a in (m, n, schmid):
        a.flags.writeable = False
    return SlipSystems(m, n, schmid, coplanar)


def cubic_stiffness(C11: float, C12: float, C44: float) -> np.ndarray:
    """Mandel stiffness ``(6, 6)`` of a cubic crystal in its own frame (2 C44 on the shears)."""
    C = np.zeros((6, 6))
    C[:3, :3] = C12
    C[[0, 1, 2], [0, 1, 2]] = C11
    C[[3, 4, 5], [3, 4, 5]] = 2.0 * C44
    return C


def _rotation_tables() -> tuple[np.ndarray, ...]:
    """Flat indices into ``R`` and weights of ``Q_IJ = (R_ik R_jl + R_il R_jk) w_I w_J / 2``."""
    i, j = np.array(MANDEL_3D).T
    w = np.where(i == j, 1.0, math.sqrt(2.0))
    I, J, K, L = i[:, None], j[:, None], i[None, :], j[None, :]
    flat = [(3 * A + B).ravel() for A, B in ((I, K), (J, L), (I, L), (J, K))]
    return (*flat, (0.5 * np.outer(w, w)).ravel()[:, None])


_IK, _JL, _IL, _JK, _QW = _rotation_tables()


def _mandel_rotations(R: np.ndarray) -> np.ndarray:
    """Mandel rotations ``Q`` ``(n, 6, 6)`` of rotations ``R`` ``(n, 3, 3)``: ``Q a = R a Rᵀ``.

    The same matrices as :func:`fe2x.materials.mandel.rotation_mandel`, by the closed form
    of ``_rotation_tables`` (four times faster for many points, no orthogonality check).
    """
    T = R.reshape(-1, 9).T
    return ((T[_IK] * T[_JL] + T[_IL] * T[_JK]) * _QW).T.reshape(-1, 6, 6)


@dataclass(frozen=True)
class CrystalPlasticity:
    """Rate-dependent crystal plasticity of cubic grains (see the module notes), small strain.

    Per-point parameter ``orientation`` ``(3, 3)``: the rotation crystal → sample. State per
    point: plastic strain ``eps_p`` (Mandel, sample frame), slip resistances ``xi`` ``(N,)``,
    accumulated slip per system ``gamma`` ``(N,)`` (``∫|γ̇_α| dt``) and in total ``gamma_sum``,
    and the slip rates of the last step ``gamma_dot`` ``(N,)`` (signed; the next step starts
    from them).

    There is no :class:`~fe2x.materials.law.ElasticLimit`: the power law has no elastic range
    (every ``τ_α ≠ 0`` slips, if at a negligible rate far below ξ_α), so an elastic shortcut
    would never be exact, and any threshold on the rate would be the user's, not the law's.

    Attributes:
        C11, C12, C44: cubic elastic constants (C11 − C12 > 0, C44 > 0, C11 + 2 C12 > 0).
        xi0: initial slip resistance ξ₀ (critical resolved shear stress) > 0.
        lattice: ``"fcc"`` or ``"bcc"``.
        n: rate exponent ≥ 1 (large n: nearly rate-insensitive).
        gamma_dot_0: reference slip rate γ̇₀ > 0.
        h0: hardening modulus h₀ ≥ 0 (0: no hardening).
        xi_inf: saturation resistance ξ_∞ > 0 (``inf``: linear hardening h₀).
        a: hardening exponent ≥ 1 (so that h is differentiable at ξ = ξ_∞).
        q_latent: latent-hardening ratio of non-coplanar systems ≥ 0.
        name: label used in error messages.
    """

    kinematics: ClassVar[str] = "small"
    parameter_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {"orientation": (3, 3)}
    output_names: ClassVar[tuple[str, ...]] = ("accumulated_slip", "mean_slip_resistance")

    C11: float
    C12: float
    C44: float
    xi0: float
    lattice: str = "fcc"
    n: float = 20.0
    gamma_dot_0: float = 1e-3
    h0: float = 0.0
    xi_inf: float = math.inf
    a: float = 2.0
    q_latent: float = 1.4
    name: str = ""

    def __post_init__(self) -> None:
        who = self._who
        slip_systems(self.lattice)  # raises on an unknown lattice
        for key in (
            "C11",
            "C12",
            "C44",
            "xi0",
            "n",
            "gamma_dot_0",
            "h0",
            "xi_inf",
            "a",
            "q_latent",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise MaterialError(f"{who}: {key} = {value!r} is not a real number")
            if math.isnan(value) or (math.isinf(value) and key != "xi_inf"):
                raise MaterialError(f"{who}: {key} = {value!r} is not finite")
        C11, C12, C44 = self.C11, self.C12, self.C44
        checks = (
            ("C44", C44, C44 > 0, "> 0"),
            ("C11 - C12", C11 - C12, C11 - C12 > 0, "> 0 (else C is not positive definite)"),
            (
                "C11 + 2 C12",
                C11 + 2 * C12,
                C11 + 2 * C12 > 0,
                "> 0 (else C is not positive definite)",
            ),
            ("xi0", self.xi0, self.xi0 > 0, "> 0"),
            ("n", self.n, self.n >= 1, ">= 1"),
            ("gamma_dot_0", self.gamma_dot_0, self.gamma_dot_0 > 0, "> 0"),
            ("h0", self.h0, self.h0 >= 0, ">= 0"),
            ("xi_inf", self.xi_inf, self.xi_inf > 0, "> 0 (inf: linear hardening)"),
            ("a", self.a, self.a >= 1, ">= 1"),
            ("q_latent", self.q_latent, self.q_latent >= 0, ">= 0"),
        )
        for key, value, ok, allowed in checks:
            if not ok:
                raise MaterialError(f"{who}: {key} = {value!r} must be {allowed}")

    @property
    def _who(self) -> str:
        return f"CrystalPlasticity {self.name!r}" if self.name else "CrystalPlasticity"

    @cached_property
    def systems(self) -> SlipSystems:
        """The slip systems of the lattice."""
        return slip_systems(self.lattice)

    @cached_property
    def C_crystal(self) -> np.ndarray:
        """Cubic Mandel stiffness in the crystal frame (read-only)."""
        C = cubic_stiffness(self.C11, self.C12, self.C44)
        C.flags.writeable = False
        return C

    @cached_property
    def S_crystal(self) -> np.ndarray:
        """Mandel compliance in the crystal frame (read-only)."""
        S = np.linalg.inv(self.C_crystal)
        S = 0.5 * (S + S.T)
        S.flags.writeable = False
        return S

    @cached_property
    def interaction(self) -> np.ndarray:
        """The latent-hardening matrix ``q_αβ`` (1 coplanar, ``q_latent`` else)."""
        q = np.where(self.systems.coplanar, 1.0, self.q_latent)
        q.flags.writeable = False
        return q

    @cached_property
    def tables(self) -> _Tables:
        """Constant products of the slip systems for the local Newton (computed once)."""
        return _tables(self)

    @property
    def state_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Plastic strain, slip resistances, accumulated slip (per system, total), slip rates."""
        N = self.systems.m.shape[0]
        return {"eps_p": (6,), "xi": (N,), "gamma": (N,), "gamma_sum": (), "gamma_dot": (N,)}

    def initial_state(self, n: int) -> State:
        """Virgin state: no plastic strain, slip or slip rate, ``ξ = ξ₀`` on every system."""
        N = self.systems.m.shape[0]
        return {
            "eps_p": np.zeros((n, 6)),
            "xi": np.full((n, N), float(self.xi0)),
            "gamma": np.zeros((n, N)),
            "gamma_sum": np.zeros(n),
            "gamma_dot": np.zeros((n, N)),
        }

    def orientation_mandel(self, parameters: Mapping[str, np.ndarray] | None) -> np.ndarray:
        """Mandel rotations ``Q`` ``(n, 6, 6)`` of the checked per-point orientations."""
        if parameters is None or "orientation" not in parameters:
            raise MaterialError(f"{self._who}: the per-point parameter 'orientation' is missing")
        R = np.asarray(parameters["orientation"], dtype=float)
        if R.ndim != 3 or R.shape[1:] != (3, 3):
            raise MaterialError(f"{self._who}: orientation has shape {R.shape}, expected (n, 3, 3)")
        with np.errstate(invalid="ignore"):
            off = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2), initial=0.0)
        bad = ~(off <= ORIENTATION_ATOL) | ~(np.linalg.det(R) > 0.0)
        if bad.any():
            raise MaterialError(
                f"{self._who}: orientation is not a rotation at {int(bad.sum())} point(s) "
                f"(need R Rᵀ = I to {ORIENTATION_ATOL:g} and det R = +1)"
            )
        return _mandel_rotations(R)

    # -- the constitutive-law contract (fe2x.materials.law) --------------------------------
    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Rotated cubic stiffness ``Q C Qᵀ`` per point ``(n, 6, 6)``.

        Without parameters: the crystal-frame stiffness ``(6, 6)``.
        """
        if parameters is None:
            return self.C_crystal
        Q = self.orientation_mandel(parameters)
        return Q @ self.C_crystal @ np.swapaxes(Q, 1, 2)

    def update(
        self,
        strain: np.ndarray,
        state: State,
        dt: float = 0.0,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> LawResponse:
        """Backward-Euler update over ``dt`` (:func:`crystal_update`); ``dt = 0`` is elastic."""
        sigma, C_alg, trial, _ = crystal_update(self, strain, state, dt, parameters)
        return LawResponse(sigma, C_alg, trial)

    def outputs(self, state: State) -> dict[str, np.ndarray]:
        """Accumulated slip ``Σ_α ∫|γ̇_α| dt`` and the mean slip resistance ``⟨ξ_α⟩_α``."""
        return {
            "accumulated_slip": state["gamma_sum"],
            "mean_slip_resistance": state["xi"].mean(axis=1),
        }

    # -- the local problem -----------------------------------------------------------------
    def hardening(self, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``h(ξ) = h₀ |1 − ξ/ξ_∞|ᵃ sign(1 − ξ/ξ_∞)`` and ``dh/dξ``, elementwise."""
        if self.h0 == 0.0:
            zero = np.zeros_like(xi)
            return zero, zero
        if math.isinf(self.xi_inf):
            return np.full_like(xi, self.h0), np.zeros_like(xi)
        u = 1.0 - xi / self.xi_inf
        ua = _power(np.abs(u), self.a - 1.0)
        return self.h0 * ua * u, -self.h0 * self.a * ua / self.xi_inf


def _power(x: np.ndarray, e: float) -> np.ndarray:
    """``x ** e`` for ``x >= 0``, by repeated squaring when ``e`` is a whole number up to 64.

    That is several times faster than ``np.power`` (n = 20 is the common rate exponent).
    """
    if e != int(e) or not 0 <= e <= 64:
        return np.power(x, e)
    k, result, base = int(e), np.ones_like(x), x
    while k:
        if k & 1:
            result *= base
        k >>= 1
        if k:
            base = base * base
    return result


class CrystalUpdate(NamedTuple):
    """Result of :func:`crystal_update` (unpacks as ``sigma, C_alg, state, iterations``).

    Attributes:
        sigma: Mandel stress, sample frame ``(n, 6)``.
        C_alg: consistent tangent dσ/dε, sample frame ``(n, 6, 6)``.
        state: trial state at the new strain.
        iterations: local Newton iterations of each point ``(n,)`` (0 where ``dt = 0``).
    """

    sigma: np.ndarray
    C_alg: np.ndarray
    state: State
    iterations: np.ndarray


class _Tables(NamedTuple):
    """Products of constant per-system vectors that turn Jacobian blocks into one GEMM each.

    The interaction matrix is factored as ``q = W Uᵀ`` with rank ``r`` (``r = 0`` without
    hardening); each table has one row per system α.
    """

    PP: np.ndarray  # P_αi P_αj  (N, 36)
    U: np.ndarray  # (N, r)
    W: np.ndarray  # (N, r)
    PW: np.ndarray  # P_αi W_αj  (N, 6 r)
    UP: np.ndarray  # U_αi P_αj  (N, r 6)
    UW: np.ndarray  # U_αi W_αj  (N, r r)


def _tables(law: CrystalPlasticity) -> _Tables:
    """The :class:`_Tables` of ``law`` (q from its symmetric eigendecomposition)."""
    P = law.systems.schmid
    N = P.shape[0]
    if law.h0 == 0.0:
        U = W = np.zeros((N, 0))
    else:
        lam, V = np.linalg.eigh(law.interaction)
        keep = np.abs(lam) > 1e-12 * np.abs(lam).max()
        U, W = V[:, keep], V[:, keep] * lam[keep]

    def outer(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return np.einsum("ai,aj->aij", A, B).reshape(N, -1)

    return _Tables(outer(P, P), U, W, outer(P, W), outer(U, P), outer(U, W))


class _Flow(NamedTuple):
    """Slip increments and their derivatives at ``(σ, ξ)`` for ``m`` points."""

    tau: np.ndarray  # resolved shear stresses (m, N)
    dgamma: np.ndarray  # Δγ (m, N)
    abs_dgamma: np.ndarray  # |Δγ| (m, N)
    dg_dtau: np.ndarray  # ∂Δγ/∂τ >= 0 (m, N)
    h: np.ndarray  # h(ξ) (m, N)
    dh: np.ndarray  # dh/dξ (m, N)


def _flow(law: CrystalPlasticity, k: float, sigma: np.ndarray, xi: np.ndarray) -> _Flow:
    """Δγ = k |τ/ξ|ⁿ sign τ with k = dt γ̇₀, and the hardening moduli."""
    tau = sigma @ law.systems.schmid.T
    x = np.abs(tau) / xi
    p = _power(x, law.n - 1.0)
    abs_dgamma = k * p * x
    h, dh = law.hardening(xi)
    return _Flow(tau, np.copysign(abs_dgamma, tau), abs_dgamma, (law.n * k) * p / xi, h, dh)


def _residual(
    law: CrystalPlasticity,
    f: _Flow,
    sigma: np.ndarray,
    xi: np.ndarray,
    eps_e: np.ndarray,
    xi_n: np.ndarray,
    scale: float,
) -> np.ndarray:
    """Scaled residual ``(r_σ, r_ξ / scale)`` ``(m, 6 + N)`` (both in strain units)."""
    r_sigma = sigma @ law.S_crystal + f.dgamma @ law.systems.schmid - eps_e
    r_xi = xi - xi_n - (f.h * f.abs_dgamma) @ law.interaction.T
    return np.concatenate([r_sigma, r_xi / scale], axis=1)


def _reduced_jacobian(
    law: CrystalPlasticity, t: _Tables, f: _Flow, xi: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Newton system in ``(δσ, g)``, ``6 + r`` unknowns, and the vectors ``b, d`` it uses.

    Linearising the residual, ``δr_σ = A δσ + Pᵀ (b ∘ δξ)`` with ``A = S + Pᵀ diag(∂Δγ/∂τ) P``,
    ``b = ∂Δγ/∂ξ``, and ``δr_ξ = δξ − q y``, ``y = d ∘ δξ + c ∘ (P δσ)``, with
    ``d = h' |Δγ| − n h |Δγ| / ξ`` and ``c = h sign(τ) ∂Δγ/∂τ``. With ``q = W Uᵀ`` and
    ``g = Uᵀ y``, ``δξ = −r_ξ + W g`` and the Newton equations ``δr = −r`` become::

        [ A                  Pᵀ diag(b) W     ] [δσ]   [−r_σ + Pᵀ (b ∘ r_ξ)]
        [ −Uᵀ diag(c) P      I − Uᵀ diag(d) W ] [g ] = [−Uᵀ (d ∘ r_ξ)      ]

    (second block row divided by ``scale``), exact, and small: q = q_latent 1 1ᵀ + (1 − q_latent) E
    with E the same-plane indicator has rank r = 4 (FCC) or 6 (BCC), one per slip plane.
    """
    m = xi.shape[0]
    r = t.U.shape[1]
    b = -law.n * f.dgamma / xi
    K = np.empty((m, 6 + r, 6 + r))
    K[:, :6, :6] = law.S_crystal + (f.dg_dtau @ t.PP).reshape(m, 6, 6)
    if r:
        c = f.h * np.sign(f.tau) * f.dg_dtau
        d = f.dh * f.abs_dgamma - f.h * (law.n * f.abs_dgamma / xi)
        K[:, :6, 6:] = (b @ t.PW).reshape(m, 6, r)
        K[:, 6:, :6] = (c @ t.UP).reshape(m, r, 6) / -scale
        K[:, 6:, 6:] = (np.eye(r) - (d @ t.UW).reshape(m, r, r)) / scale
    else:
        d = np.zeros_like(b)
    return K, b, d


def _newton_step(
    law: CrystalPlasticity,
    t: _Tables,
    K: np.ndarray,
    b: np.ndarray,
    d: np.ndarray,
    res: np.ndarray,
    scale: float,
) -> np.ndarray:
    """The full Newton step ``(δσ, δξ)`` ``(m, 6 + N)`` from the reduced system."""
    r_sigma, r_xi = res[:, :6], res[:, 6:] * scale
    rhs = np.concatenate(
        [(b * r_xi) @ law.systems.schmid - r_sigma, ((d * r_xi) @ t.U) / -scale], axis=1
    )
    sol = np.linalg.solve(K, rhs[:, :, None])[:, :, 0]
    return np.concatenate([sol[:, :6], sol[:, 6:] @ t.W.T - r_xi], axis=1)


def _start(
    law: CrystalPlasticity,
    sigma_tr: np.ndarray,
    xi_n: np.ndarray,
    dgamma: np.ndarray,
    k: float,
    eps_e: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, _Flow, np.ndarray]:
    """The start of the local Newton, with its flow and residual.

    Per point, the better (smaller ``|r|``) of the elastic predictor scaled so that
    max ``|τ_α|/ξ_α <= 1`` and the slip increments ``dgamma`` guessed (the last slip rates times
    dt).
    """
    P = law.systems.schmid
    ratio = (np.abs(sigma_tr @ P.T) / xi_n).max(axis=1)
    sigma = sigma_tr / np.maximum(ratio, 1.0)[:, None]
    f = _flow(law, k, sigma, xi_n)
    r = _residual(law, f, sigma, xi_n, eps_e, xi_n, scale)
    sigma_c = sigma_tr - (dgamma @ P) @ law.C_crystal
    xi_c = xi_n + (f.h * np.abs(dgamma)) @ law.interaction.T
    f_c = _flow(law, k, sigma_c, xi_c)
    r_c = _residual(law, f_c, sigma_c, xi_c, eps_e, xi_n, scale)
    better = ((_merit(r_c) < _merit(r)) & (xi_c > 0.0).all(axis=1))[:, None]
    x = np.where(
        better, np.concatenate([sigma_c, xi_c], axis=1), np.concatenate([sigma, xi_n], axis=1)
    )
    f = _Flow(*(np.where(better, c, s) for c, s in zip(f_c, f, strict=True)))
    return x, f, np.where(better, r_c, r)


def _merit(r: np.ndarray) -> np.ndarray:
    """½ |r|² per point, inf where r is not finite."""
    phi = 0.5 * np.einsum("pi,pi->p", r, r)
    return np.where(np.isfinite(phi), phi, np.inf)


class _Solution(NamedTuple):
    """Local solutions of ``m`` points (rows where ``failed`` is True are not solutions)."""

    x: np.ndarray  # (σ, ξ) in the crystal frame (m, 6 + N)
    C_alg: np.ndarray  # dσ/dε in the crystal frame (m, 6, 6)
    dgamma: np.ndarray  # Δγ (m, N)
    iterations: np.ndarray  # Newton iterations (m,)
    failed: np.ndarray  # (m,) bool


def _newton(
    law: CrystalPlasticity,
    x: np.ndarray,
    f: _Flow,
    r: np.ndarray,
    eps_e: np.ndarray,
    xi_n: np.ndarray,
    k: float,
    tol: np.ndarray,
) -> _Solution:
    """Newton from ``x`` (with its flow ``f`` and residual ``r``) until ``max |r| <= tol``.

    Each step has a backtracking (Armijo) line search on ``½ |r|²``; the tolerance holds per
    point. A point fails after :data:`NEWTON_MAXIT` iterations or when no step along its Newton
    direction decreases ``|r|`` (the direction of an ill-conditioned Jacobian far from the
    solution).
    """
    scale, tables = float(law.C44), law.tables
    m = x.shape[0]
    x = x.copy()
    C_alg, dgamma = np.empty((m, 6, 6)), np.empty_like(xi_n)
    iterations, failed = np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool)
    active = np.arange(m)
    for it in range(NEWTON_MAXIT + 1):
        K, b, d = _reduced_jacobian(law, tables, f, x[active, 6:], scale)
        done = np.abs(r).max(axis=1) <= tol[active]
        if it == NEWTON_MAXIT:
            failed[active[~done]] = True
        if done.any():
            idx = active[done]
            rhs = np.zeros((idx.size, K.shape[1], 6))
            rhs[:, :6, :] = np.eye(6)  # ∂r/∂ε = (−I, 0): the same system gives dσ/dε
            C_alg[idx] = np.linalg.solve(K[done], rhs)[:, :6, :]
            iterations[idx] = it
            dgamma[idx] = f.dgamma[done]
            keep = ~done
            active, K, b, d, r = active[keep], K[keep], b[keep], d[keep], r[keep]
            f = _Flow(*(a[keep] for a in f))
        if active.size == 0 or it == NEWTON_MAXIT:
            break
        step = _newton_step(law, tables, K, b, d, r, scale)
        x_a, phi0 = x[active], _merit(r)
        alpha = np.ones(active.size)
        trying = np.arange(active.size)
        for _ in range(LINE_SEARCH_MAXIT):
            pts = active[trying]
            x_t = x_a[trying] + alpha[trying, None] * step[trying]
            f_t = _flow(law, k, x_t[:, :6], x_t[:, 6:])
            r_t = _residual(law, f_t, x_t[:, :6], x_t[:, 6:], eps_e[pts], xi_n[pts], scale)
            phi = np.where((x_t[:, 6:] > 0.0).all(axis=1), _merit(r_t), np.inf)
            ok = phi <= (1.0 - 2.0 * _ARMIJO * alpha[trying]) * phi0[trying]
            if trying.size == active.size and ok.all():  # the full step everywhere
                x[active], r, f = x_t, r_t, f_t
                trying = trying[:0]
                break
            accepted = trying[ok]
            x[active[accepted]], r[accepted] = x_t[ok], r_t[ok]
            for full, part in zip(f, f_t, strict=True):
                full[accepted] = part[ok]
            trying = trying[~ok]
            if trying.size == 0:
                break
            alpha[trying] *= 0.5
        if trying.size:  # no descent: these points fail, the others go on
            failed[active[trying]] = True
            keep = np.ones(active.size, dtype=bool)
            keep[trying] = False
            active, r = active[keep], r[keep]
            f = _Flow(*(a[keep] for a in f))
            if active.size == 0:
                break
    return _Solution(x, C_alg, dgamma, iterations, failed)


def _continuation(
    law: CrystalPlasticity,
    stages: int,
    sigma_tr: np.ndarray,
    eps_e: np.ndarray,
    xi_n: np.ndarray,
    k: float,
    tol: np.ndarray,
) -> _Solution:
    """The same local problem solved through the trial strains ``λ ε_e*``, λ = 1/stages, ..., 1.

    Each stage starts from the solution of the last: a homotopy for points whose Newton fails
    from the start (huge increments at large n). The last stage is the problem itself, so the
    solution and its tangent are exact; a point fails if any stage fails.
    """
    scale = float(law.C44)
    zero = np.zeros_like(xi_n)
    x, f, r = _start(law, sigma_tr / stages, xi_n, zero, k, eps_e / stages, scale)
    iterations = np.zeros(x.shape[0], dtype=np.int64)
    failed = np.zeros(x.shape[0], dtype=bool)
    for j in range(1, stages + 1):
        if j > 1:
            f = _flow(law, k, x[:, :6], x[:, 6:])
            r = _residual(law, f, x[:, :6], x[:, 6:], j / stages * eps_e, xi_n, scale)
        sol = _newton(law, x, f, r, j / stages * eps_e, xi_n, k, tol)
        x, iterations, failed = sol.x, iterations + sol.iterations, failed | sol.failed
    return sol._replace(iterations=iterations, failed=failed)


def crystal_update(
    law: CrystalPlasticity,
    strain: npt.ArrayLike,
    state: State,
    dt: float,
    parameters: Mapping[str, np.ndarray] | None,
) -> CrystalUpdate:
    """Stress, consistent tangent and trial state of every point at ``strain`` after ``dt``.

    Rotates the strain into each crystal frame, solves the local backward-Euler problem of
    the module notes (:func:`_newton`; where that fails, :func:`_continuation`), and rotates
    stress and tangent back. ``dt = 0`` gives the elastic response from ``state``. ``state``
    is not modified.

    Raises:
        MaterialError: missing or invalid orientations.
        SolverError: non-finite strain, or the local Newton did not converge at some point.
    """
    eps = np.asarray(strain, dtype=float)
    n_pts = eps.shape[0] if eps.ndim == 2 else -1
    if eps.ndim != 2 or eps.shape[1] != 6 or state["eps_p"].shape[0] != n_pts:
        raise ValueError(
            f"crystal_update: strain shape {eps.shape}; expected ({state['eps_p'].shape[0]}, 6)"
        )
    if not (math.isfinite(dt) and dt >= 0.0):
        raise ValueError(f"crystal_update: dt = {dt!r} must be finite and >= 0")
    if not np.isfinite(eps).all():
        bad = int(np.count_nonzero(~np.isfinite(eps).all(axis=1)))
        raise SolverError(f"{law._who}: strain is not finite at {bad} point(s)")
    Q = law.orientation_mandel(parameters)
    if Q.shape[0] != n_pts:
        raise MaterialError(f"{law._who}: {Q.shape[0]} orientation(s) given for {n_pts} point(s)")
    Qt = np.swapaxes(Q, 1, 2)
    eps_e = np.einsum("pji,pj->pi", Q, eps - state["eps_p"])  # trial elastic strain, crystal
    xi_n = state["xi"]
    k = dt * law.gamma_dot_0
    sigma = eps_e @ law.C_crystal
    iterations = np.zeros(n_pts, dtype=np.int64)
    if k == 0.0 or n_pts == 0:
        new_state = {name: values.copy() for name, values in state.items()}
        C = Q @ law.C_crystal @ Qt
        return CrystalUpdate(np.einsum("pij,pj->pi", Q, sigma), C, new_state, iterations)

    scale = float(law.C44)
    tol = RTOL * (law.xi0 / scale + np.abs(eps_e).max(axis=1))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        x, f, r = _start(law, sigma, xi_n, dt * state["gamma_dot"], k, eps_e, scale)
        x, C_alg, dgamma, iterations, failed = _newton(law, x, f, r, eps_e, xi_n, k, tol)
        for stages in CONTINUATION_STAGES:
            if not failed.any():
                break
            idx = np.flatnonzero(failed)
            x_c, C_c, dg_c, its_c, fail_c = _continuation(
                law, stages, sigma[idx], eps_e[idx], xi_n[idx], k, tol[idx]
            )
            ok = idx[~fail_c]
            x[ok], C_alg[ok], dgamma[ok] = x_c[~fail_c], C_c[~fail_c], dg_c[~fail_c]
            iterations[idx] += its_c
            failed[ok] = False
    if failed.any():
        raise SolverError(
            f"{law._who}: local Newton did not converge at {int(failed.sum())} point(s) "
            f"(dt = {dt:g}; load continuation tried in {CONTINUATION_STAGES} stages); "
            "cut the step"
        )
    abs_dgamma = np.abs(dgamma)
    new_state = {
        "eps_p": state["eps_p"] + np.einsum("pij,pj->pi", Q, dgamma @ law.systems.schmid),
        "xi": x[:, 6:],
        "gamma": state["gamma"] + abs_dgamma,
        "gamma_sum": state["gamma_sum"] + abs_dgamma.sum(axis=1),
        "gamma_dot": dgamma / dt,
    }
    sigma_s = np.einsum("pij,pj->pi", Q, x[:, :6])
    return CrystalUpdate(sigma_s, Q @ C_alg @ Qt, new_state, iterations)
