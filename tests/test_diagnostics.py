"""Scale-separation diagnostics: acoustic-tensor ellipticity check, strain-gradient indicator."""

from mpi4py import MPI

import numpy as np
import pytest
from dolfinx import mesh

from fe2x.macro import MacroProblem
from fe2x.macro.diagnostics import (
    acoustic_minimum,
    directions,
    loses_ellipticity,
    point_regions,
    strain_gradient_indicator,
    summarise,
    warnings_for,
)
from fe2x.materials.mandel import lame_parameters, plane_strain, rotation_mandel

E_YOUNG, NU = 10.0, 0.3


def isotropic(dim: int, lam: float, mu: float) -> np.ndarray:
    C = 2.0 * mu * np.eye(6)
    C[:3, :3] += lam
    return C if dim == 3 else plane_strain(C)


def uniaxial_softened(dim: int, k: float) -> np.ndarray:
    """C_el − k a⊗a with a = e1⊗e1: det A = μ^(d−1)(λ+2μ)(1 − k f(ν1²)), f ≤ 1/k_c."""
    lam, mu = lame_parameters(E_YOUNG, NU)
    a = np.zeros(3 if dim == 2 else 6)
    a[0] = 1.0
    return isotropic(dim, lam, mu) - k * np.outer(a, a)


def critical_k() -> float:
    """k_c = 4μ(λ+μ)/(λ+2μ), reached at ν1² = (λ+2μ)/(2(λ+μ)) (not an axis direction)."""
    lam, mu = lame_parameters(E_YOUNG, NU)
    return 4.0 * mu * (lam + mu) / (lam + 2.0 * mu)


def random_rotation(dim: int, rng) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((dim, dim)))
    Q = Q * np.sign(np.diag(R))
    if np.linalg.det(Q) < 0:
        Q[:, 0] *= -1.0
    return Q


@pytest.mark.parametrize("dim", [2, 3])
def test_directions_are_unit(dim):
    nu = directions(dim)
    assert nu.shape == (360 if dim == 2 else 2000, dim)
    assert np.allclose(np.linalg.norm(nu, axis=1), 1.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_isotropic_acoustic_minimum(dim):
    lam, mu = lame_parameters(E_YOUNG, NU)
    C = np.stack([isotropic(dim, lam, mu), isotropic(dim, 2 * lam, 0.5 * mu)])
    expected = [mu ** (dim - 1) * (lam + 2 * mu), (0.5 * mu) ** (dim - 1) * (2 * lam + mu)]
    assert np.allclose(acoustic_minimum(C, dim), expected, rtol=1e-12)
    assert acoustic_minimum(C[0], dim) == pytest.approx(expected[0], rel=1e-12)
    assert not loses_ellipticity(C, dim).any()


@pytest.mark.parametrize("dim", [2, 3])
def test_negative_p_wave_modulus_loses_ellipticity(dim):
    mu = 1.0
    C = np.stack([isotropic(dim, -2.5, mu), isotropic(dim, -1.5, mu)])  # λ+2μ = −0.5, 0.5
    assert acoustic_minimum(C, dim) == pytest.approx([-0.5, 0.5], rel=1e-10)
    assert loses_ellipticity(C, dim).tolist() == [True, False]


@pytest.mark.parametrize("dim", [2, 3])
def test_rank_one_softening_detected_at_critical_level(dim):
    lam, mu = lame_parameters(E_YOUNG, NU)
    k_c = critical_k()
    factors = np.array([1.0 - 1e-4, 1.0 + 1e-4, 0.5, 1.5])
    C = np.stack([uniaxial_softened(dim, f * k_c) for f in factors])
    # The minimum (on the cone ν1² = s*) is det_el (1 − k/k_c); no sampled direction lies on
    # the cone, the refinement reaches it.
    det_el = mu ** (dim - 1) * (lam + 2 * mu)
    expected = det_el * (1.0 - factors)
    got = acoustic_minimum(C, dim)
    assert np.allclose(got, expected, rtol=1e-8, atol=1e-12 * det_el)
    assert loses_ellipticity(C, dim).tolist() == [False, True, False, True]
    sampled = acoustic_minimum(C, dim, refine=False)
    assert np.all(sampled >= got)
    assert sampled[1] > expected[1] + 1e-7 * det_el  # the sample alone is less accurate


@pytest.mark.parametrize("dim", [2, 3])
def test_acoustic_minimum_is_rotation_invariant(dim):
    rng = np.random.default_rng(7)
    n = 3 if dim == 2 else 6
    B = rng.standard_normal((n, n))
    C = B @ B.T + 0.5 * n * np.eye(n)  # anisotropic, positive definite
    C_soft = uniaxial_softened(dim, 1.2 * critical_k())
    Rs = [random_rotation(dim, rng) for _ in range(3)]
    for base in (C, C_soft):
        reference = acoustic_minimum(base, dim)
        rotated = np.stack([rotation_mandel(R) @ base @ rotation_mandel(R).T for R in Rs])
        assert np.allclose(acoustic_minimum(rotated, dim), reference, rtol=1e-7)


# -- strain-gradient indicator ---------------------------------------------------------------
X0, X1 = 1.0, 2.0  # the block [1, 2] × [0, 1] keeps |E| = 2x away from zero for u = (x², 0)


def square(comm: MPI.Comm, n: int = 8) -> tuple[mesh.Mesh, mesh.MeshTags]:
    msh = mesh.create_rectangle(comm, [[X0, 0.0], [X1, 1.0]], [n, n])
    facets = mesh.locate_entities_boundary(msh, 1, lambda x: np.isclose(x[0], X0))
    tags = mesh.meshtags(msh, 1, facets, np.full(facets.size, 1, dtype=np.int32))
    return msh, tags


def make_problem(comm: MPI.Comm, degree: int, field, n: int = 8) -> MacroProblem:
    msh, tags = square(comm, n)
    problem = MacroProblem(msh, tags, 2, degree=degree)
    problem.u.interpolate(field)
    return problem


@pytest.mark.parametrize("degree", [1, 2])
def test_homogeneous_strain_gives_zero(degree):
    problem = make_problem(
        MPI.COMM_WORLD, degree, lambda x: np.stack([0.01 * x[0] + 0.003 * x[1], -0.002 * x[1]])
    )
    indicator = strain_gradient_indicator(problem, rve_size=0.1)
    assert indicator.shape == (problem.n_points,)
    assert np.all(indicator <= 1e-8)


def test_zero_strain_gives_zero():
    problem = make_problem(MPI.COMM_WORLD, 1, lambda x: np.zeros((2, x.shape[1])))
    assert np.all(strain_gradient_indicator(problem, rve_size=0.1) == 0.0)


@pytest.mark.parametrize("degree", [1, 2])
def test_linear_strain_gradient(degree):
    """u = (x², 0): E = (2x, 0, 0), |∂E/∂x| = 2, indicator ℓ/x.

    Exact for degree 2 (E ∈ P1 is reproduced by the projection onto P2). For degree 1 the
    strain is cell-wise constant and its P1 projection's gradient is accurate to ~10 %
    pointwise at interior points (less on average; worse at the boundary).
    """
    ell = 0.05
    comm = MPI.COMM_WORLD
    problem = make_problem(comm, degree, lambda x: np.stack([x[0] ** 2, np.zeros_like(x[0])]))
    indicator = strain_gradient_indicator(problem, rve_size=ell)
    x, y = problem.point_coordinates.T
    error = indicator / (ell / x) - 1.0
    if degree == 2:
        assert np.all(np.abs(error) < 1e-8)
        return
    h = 1.0 / 8
    interior = (x > X0 + 1.5 * h) & (x < X1 - 1.5 * h) & (y > 1.5 * h) & (y < 1 - 1.5 * h)
    assert np.all(np.abs(error[interior]) < 0.15)
    total = comm.allreduce(np.array([np.abs(error[interior]).sum(), interior.sum()]), MPI.SUM)
    assert total[1] > 0
    assert total[0] / total[1] < 0.05


def test_indicator_is_rank_independent():
    def field(x):
        return np.stack([np.sin(x[0]) * x[1], x[0] * x[1] ** 2])

    comm = MPI.COMM_WORLD
    parallel = make_problem(comm, 1, field)
    values = strain_gradient_indicator(parallel, rve_size=0.2)
    ids = np.concatenate(comm.allgather(parallel.point_ids))
    values = np.concatenate(comm.allgather(values))
    serial = make_problem(MPI.COMM_SELF, 1, field)
    reference = strain_gradient_indicator(serial, rve_size=0.2)
    assert ids.size == serial.n_points
    assert np.allclose(values[np.argsort(ids)], reference[np.argsort(serial.point_ids)], rtol=1e-8)


# -- summaries -------------------------------------------------------------------------------
def test_summarise_and_warnings():
    comm = MPI.COMM_WORLD
    problem = make_problem(comm, 1, lambda x: np.stack([x[0] ** 2, np.zeros_like(x[0])]))
    indicator = strain_gradient_indicator(problem, rve_size=0.5)  # ≈ 0.5/x ∈ [0.25, 0.5]
    msh = problem.mesh
    n_cells = msh.topology.index_map(2).size_local + msh.topology.index_map(2).num_ghosts
    cells = np.arange(n_cells, dtype=np.int32)
    left = mesh.compute_midpoints(msh, 2, cells)[:, 0] < 1.5
    cell_tags = mesh.meshtags(msh, 2, cells, np.where(left, 1, 2).astype(np.int32))
    regions = point_regions(problem, cell_tags)
    assert set(np.unique(regions)) <= {1, 2}

    summary = summarise(indicator, 0.4, problem.point_coordinates, regions, comm=comm)
    everything = np.concatenate(comm.allgather(indicator))
    assert summary["n_points"] == everything.size
    assert summary["max"] == pytest.approx(everything.max())
    assert summary["fraction_above"] == pytest.approx(np.mean(everything > 0.4))
    assert summary["worst_coordinates"][0] < X0 + 0.25  # the largest value is at small x
    assert summary["regions"][1]["max"] > 0.4 > summary["regions"][2]["max"]

    lines = warnings_for(summary, step=3, threshold=0.4, names={1: "left", 2: "right"})
    assert len(lines) == 1
    assert lines[0].startswith("scale separation questionable in region left at step 3")
    assert warnings_for(summary, step=3, threshold=1.0) == []
    plain = summarise(indicator, 0.4, problem.point_coordinates, comm=comm)
    assert "regions" not in plain
    assert warnings_for(plain, 1, 0.4)[0].startswith("scale separation questionable in the mesh")
