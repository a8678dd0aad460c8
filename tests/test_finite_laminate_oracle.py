"""The finite-strain laminate oracle (tests/finite_laminate.py) checked itself: its tangent by
finite differences, traction continuity and compatibility, equal phases, the classical
small-strain laminate, and a scalar closed-form solution for stretch across the layers."""

import math

import numpy as np
import pytest
from finite_laminate import laminate
from reference import laminate_stiffness
from scipy.optimize import brentq

from fe2x.errors import SolverError
from fe2x.materials.hyperelastic import NeoHookean, SaintVenantKirchhoff

I3 = np.eye(3)
N1 = I3[0]
FRACTIONS = (0.5, 0.5)
PHASES = {
    "neo_hookean": (NeoHookean(75.0, 0.3), NeoHookean(400.0, 0.2)),
    "svk": (SaintVenantKirchhoff(75.0, 0.3), SaintVenantKirchhoff(400.0, 0.2)),
    "mixed": (NeoHookean(75.0, 0.3), SaintVenantKirchhoff(400.0, 0.2)),
}


def paths(steps: int = 10) -> dict[str, np.ndarray]:
    """Simple shear along and across the layers to γ = 0.5, uniaxial stretch to λ = 2 across
    (along N = e₁) and along the layers (e₂): ``(steps, 9)`` each."""
    t = np.linspace(0, 1, steps + 1)[1:, None, None]
    return {
        "shear_12": (I3 + 0.5 * t * np.outer(I3[0], I3[1])).reshape(steps, 9),
        "shear_21": (I3 + 0.5 * t * np.outer(I3[1], I3[0])).reshape(steps, 9),
        "stretch_1": (I3 + t * np.outer(I3[0], I3[0])).reshape(steps, 9),
        "stretch_2": (I3 + t * np.outer(I3[1], I3[1])).reshape(steps, 9),
    }


def follow(laws, F_path: np.ndarray):
    """The laminate along a path, each step from the previous jump vector."""
    a, out = None, []
    for F in F_path:
        res = laminate(F[None], laws, FRACTIONS, N1, a0=a)
        a = res.a
        out.append(res)
    return out


def fd_tangent(laws, F: np.ndarray, a0: np.ndarray, h: float = 1e-6) -> np.ndarray:
    A = np.empty((F.shape[0], 9, 9))
    for j in range(9):
        d = h * np.eye(9)[j]
        Pp = laminate(F + d, laws, FRACTIONS, N1, a0=a0).P
        Pm = laminate(F - d, laws, FRACTIONS, N1, a0=a0).P
        A[:, :, j] = (Pp - Pm) / (2 * h)
    return A


@pytest.mark.parametrize("phases", list(PHASES))
@pytest.mark.parametrize("path", list(paths()))
def test_laminate_along_the_paths(phases, path):
    laws = PHASES[phases]
    results = follow(laws, paths()[path])
    end = results[-1]
    F_bar = paths()[path][-1:]
    F1, F2 = end.F_phases
    P1, P2 = end.P_phases
    scale = np.abs(end.P).max()
    # traction continuity to round-off, average and rank-one compatibility exactly
    np.testing.assert_allclose(
        P1.reshape(3, 3) @ N1, P2.reshape(3, 3) @ N1, rtol=0, atol=1e-12 * scale
    )
    np.testing.assert_allclose(0.5 * (F1 + F2), F_bar, rtol=0, atol=1e-15)
    jump = (F1 - F2).reshape(3, 3)
    np.testing.assert_allclose(jump @ I3[1], 0, atol=1e-15)
    np.testing.assert_allclose(jump @ I3[2], 0, atol=1e-15)
    np.testing.assert_allclose(end.P, 0.5 * (P1 + P2), rtol=1e-15, atol=0)
    # the phases really deform differently, and the laminate is hyperelastic: A major symmetric
    assert np.abs(end.a).max() > 1e-2
    assert np.abs(end.A - np.swapaxes(end.A, 1, 2)).max() < 1e-12 * np.abs(end.A).max()
    # the exact tangent against central differences of P̄(F̄)
    A_fd = fd_tangent(laws, F_bar, end.a)
    assert np.abs(end.A - A_fd).max() < 1e-7 * np.abs(end.A).max()
    assert max(r.iterations for r in results) <= 8


def test_equal_phases_give_the_phase_law():
    law = NeoHookean(75.0, 0.3)
    rng = np.random.default_rng(0)
    F = (I3 + 0.3 * rng.standard_normal((5, 3, 3))).reshape(5, 9)
    F[np.linalg.det(F.reshape(5, 3, 3)) < 0] *= -1
    res = laminate(F, (law, law), (0.3, 0.7), rng.standard_normal(3))
    P, A, _ = law.update(F, {})
    assert res.iterations == 0 and np.array_equal(res.a, np.zeros((5, 3)))
    np.testing.assert_allclose(res.P, P, rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(res.A, A, rtol=1e-14, atol=1e-13)


def to_mandel_stiffness(A: np.ndarray) -> np.ndarray:
    """Mandel 6×6 of a minor-symmetric 9×9 ``A[3i+j, 3k+l]``: ``w_I w_J A[pair_I, pair_J]``."""
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    w = np.array([1, 1, 1, math.sqrt(2), math.sqrt(2), math.sqrt(2)])
    rows = [3 * i + j for i, j in pairs]
    return A[np.ix_(rows, rows)] * np.outer(w, w)


@pytest.mark.parametrize("phases", list(PHASES))
@pytest.mark.parametrize("fraction", [0.5, 0.2])
def test_small_strain_limit_is_the_classical_laminate(phases, fraction):
    laws = PHASES[phases]
    fractions = (fraction, 1 - fraction)
    res = laminate(I3.reshape(1, 9), laws, fractions, N1)
    A = res.A[0]
    T9 = [3 * j + i for i in range(3) for j in range(3)]
    assert np.abs(A - A[T9]).max() < 1e-12 * np.abs(A).max()  # minor symmetric at F = I
    C = [law.elastic_stiffness() for law in laws]
    C_lam = laminate_stiffness(fractions, C, normal_rows=[0, 4, 5])  # 11, 13, 12 for N = e₁
    np.testing.assert_allclose(to_mandel_stiffness(A), C_lam, rtol=0, atol=1e-12 * C_lam.max())
    # and a small macro strain: P̄ = C_lam : ε to first order
    H = np.random.default_rng(1).standard_normal((3, 3))
    P = laminate((I3 + 1e-6 * H).reshape(1, 9), laws, fractions, N1).P
    eps = 0.5e-6 * (H + H.T)
    w = np.array([1, 1, 1, math.sqrt(2), math.sqrt(2), math.sqrt(2)])
    sigma_m = C_lam @ (w * eps[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
    sigma = (sigma_m / w)[[0, 5, 4, 5, 1, 3, 4, 3, 2]]
    np.testing.assert_allclose(P[0], sigma, rtol=0, atol=1e-5 * np.abs(sigma).max())


def test_stretch_across_the_layers_against_a_scalar_solution():
    """F̄ = diag(λ̄, 1, 1), N = e₁: the phases are diag(λ_k, 1, 1) with ½(λ₁ + λ₂) = λ̄ and
    equal Neo-Hookean P₁₁(λ) = μ(λ − 1/λ) + λ_L ln λ / λ, found by brentq; then
    P̄₂₂ = ½ Σ λ_L,k ln λ_k."""
    laws = PHASES["neo_hookean"]

    def P11(law, s):
        lam, mu = law.lame
        return mu * (s - 1 / s) + lam * math.log(s) / s

    for stretch in (0.7, 1.4, 2.0):
        lam1 = brentq(
            lambda x, s=stretch: P11(laws[0], x) - P11(laws[1], 2 * s - x),
            1e-3,
            2 * stretch - 1e-3,
            xtol=1e-15,
        )
        res = laminate(np.diag([stretch, 1.0, 1.0]).reshape(1, 9), laws, FRACTIONS, N1)
        assert res.F_phases[0, 0, 0] == pytest.approx(lam1, rel=1e-13)
        P = res.P.reshape(3, 3)
        assert P[0, 0] == pytest.approx(P11(laws[0], lam1), rel=1e-13)
        P22 = 0.5 * sum(
            law.lame[0] * math.log(s)
            for law, s in zip(laws, (lam1, 2 * stretch - lam1), strict=True)
        )
        assert P[1, 1] == pytest.approx(P22, rel=1e-13)


def test_newton_failure_raises():
    laws = PHASES["neo_hookean"]
    with pytest.raises(SolverError, match="did not converge in 1 iterations"):
        laminate(np.diag([2.0, 1.0, 1.0]).reshape(1, 9), laws, FRACTIONS, N1, max_iterations=1)
