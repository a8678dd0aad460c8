"""POD in a weighted inner product: closed-form spectra, a dense M^{1/2} SVD, Eckart–Young, size
selection, bad input, and the row-distributed version against the serial one on any ranks."""

from mpi4py import MPI

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

from fe2x.errors import Fe2xError
from fe2x.rom.pod import pod_basis, pod_basis_distributed


def h1_matrix(n: int) -> scipy.sparse.csr_array:
    """The P1 H¹ inner-product matrix (stiffness + mass) of n interior nodes of (0, 1)."""
    h = 1.0 / (n + 1)
    off = np.ones(n - 1)
    K = scipy.sparse.diags_array([-off, 2 * np.ones(n), -off], offsets=[-1, 0, 1]) / h
    M = scipy.sparse.diags_array([off, 4 * np.ones(n), off], offsets=[-1, 0, 1]) * (h / 6)
    return (K + M).tocsr()


def designed_snapshots(n: int, sigma: np.ndarray, seed: int = 0):
    """X = Ψ diag(σ) Wᵀ with Ψ M-orthonormal and W orthogonal: its M-POD is (Ψ, σ) exactly."""
    rng = np.random.default_rng(seed)
    M = h1_matrix(n)
    L = scipy.linalg.cholesky(M.toarray(), lower=True)
    Q = np.linalg.qr(rng.standard_normal((n, sigma.size)))[0]
    Psi = scipy.linalg.solve_triangular(L.T, Q, lower=False)  # Ψᵀ M Ψ = Qᵀ Q = I
    W = np.linalg.qr(rng.standard_normal((sigma.size, sigma.size)))[0]
    return Psi * sigma @ W.T, M, Psi


def same_up_to_sign(a: np.ndarray, b: np.ndarray) -> float:
    """max over columns of min(‖a_k − b_k‖, ‖a_k + b_k‖) / ‖b_k‖."""
    norms = np.linalg.norm(b, axis=0)
    return float(
        np.max(np.minimum(np.linalg.norm(a - b, axis=0), np.linalg.norm(a + b, axis=0)) / norms)
    )


def test_closed_form_spectrum_and_modes():
    sigma = 10.0 ** -np.linspace(0, 9, 30)
    X, M, Psi = designed_snapshots(400, sigma)
    basis = pod_basis(X, M)
    r = basis.Phi.shape[1]
    # modes down to s/s_max ~ 3e-6 are resolved (module notes), the rest are not returned
    assert 15 <= r < 30 and basis.singular_values.size == r
    assert np.allclose(basis.singular_values, sigma[:r], rtol=1e-10, atol=0)
    assert np.abs(basis.Phi.T @ M @ basis.Phi - np.eye(r)).max() < 1e-10
    assert same_up_to_sign(basis.Phi[:, :10], Psi[:, :10]) < 1e-10
    assert basis.energy == pytest.approx(np.sum(sigma[:r] ** 2) / np.sum(sigma**2), rel=1e-14)


def test_against_dense_cholesky_svd():
    """The SVD of Lᵀ X (M = L Lᵀ, dense) gives the same singular values and subspaces."""
    n, rng = 300, np.random.default_rng(1)
    M = h1_matrix(n)
    x = np.linspace(0, 1, n + 2)[1:-1]
    a, k = rng.uniform(0.5, 2, 40), rng.uniform(1, 6, 40)
    X = np.column_stack(
        [np.sin(np.pi * x) * np.exp(-a[j] * x) * np.cos(k[j] * x) for j in range(40)]
    )
    L = scipy.linalg.cholesky(M.toarray(), lower=True)
    U, s, _ = np.linalg.svd(L.T @ X, full_matrices=False)
    basis = pod_basis(X, M, size=6)
    assert np.allclose(basis.singular_values[:6], s[:6], rtol=1e-10, atol=0)
    Phi_dense = scipy.linalg.solve_triangular(L.T, U[:, :6], lower=False)
    assert same_up_to_sign(basis.Phi, Phi_dense) < 1e-8
    assert np.abs(basis.Phi.T @ M @ basis.Phi - np.eye(6)).max() < 1e-12


def test_eckart_young_projection_error():
    """Σ_j ‖x_j − Φ Φᵀ M x_j‖²_M = Σ_{i>r} s_i²: the energy left out is the projection error."""
    sigma = 0.7 ** np.arange(12)
    X, M, _ = designed_snapshots(200, sigma, seed=2)
    total = np.sum(sigma**2)
    for r in (1, 4, 9):
        basis = pod_basis(X, M, size=r)
        residual = X - basis.Phi @ (basis.Phi.T @ (M @ X))
        error = np.trace(residual.T @ (M @ residual))
        assert error == pytest.approx(np.sum(sigma[r:] ** 2), rel=1e-9)
        assert 1.0 - basis.energy == pytest.approx(error / total, rel=1e-9)


def test_size_by_energy_tolerance():
    sigma = 0.5 ** np.arange(10)
    X, M, _ = designed_snapshots(100, sigma, seed=3)
    uncaptured = 1.0 - np.cumsum(sigma**2) / np.sum(sigma**2)  # after r = 1, 2, ...
    for r in (1, 3, 6):
        tol = 0.5 * (uncaptured[r - 1] + uncaptured[r - 2]) if r > 1 else 0.5
        basis = pod_basis(X, M, energy_tol=tol)
        assert basis.Phi.shape[1] == r
        assert 1.0 - basis.energy <= tol < 1.0 - np.sum(sigma[: r - 1] ** 2) / np.sum(sigma**2)


def test_identity_inner_product_is_the_plain_svd():
    X = np.random.default_rng(4).standard_normal((50, 8)) @ np.diag(2.0 ** -np.arange(8))
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    basis = pod_basis(X)
    assert np.allclose(basis.singular_values, s, rtol=1e-12, atol=0)
    assert same_up_to_sign(basis.Phi, U) < 1e-12


def test_rank_deficient_snapshots():
    """Repeated and zero snapshots: as many modes as the rank, still orthonormal."""
    X, M, _ = designed_snapshots(80, np.array([3.0, 1.0, 0.2]), seed=5)
    X = np.column_stack([X, X[:, :2], np.zeros(80), 2 * X[:, 2]])
    basis = pod_basis(X, M)
    assert basis.Phi.shape[1] == 3
    assert np.abs(basis.Phi.T @ M @ basis.Phi - np.eye(3)).max() < 1e-13
    assert basis.energy == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"energy_tol": 1e-3, "size": 2}, "not both"),
        ({"energy_tol": 1.0}, r"energy_tol = 1.0 must be in \[0, 1\)"),
        ({"size": 0}, "size = 0 must be a positive integer"),
        ({"size": 9}, "POD size 9 asked for, but the 6 snapshots resolve only 4 modes"),
        ({"energy_tol": 1e-30}, "energy tolerance 1e-30 cannot be met: all 4 resolved modes"),
    ],
)
def test_bad_sizes(kwargs, match):
    """The last two modes (s / s_max < 1e-6, 4e-13 of the energy) are below the Gram
    resolution, and their energy above round-off."""
    X, M, _ = designed_snapshots(30, np.array([1.0, 0.5, 0.25, 0.1, 5e-7, 4e-7]), seed=6)
    with pytest.raises(Fe2xError, match=match):
        pod_basis(X, M, **kwargs)


def test_bad_input():
    X, M, _ = designed_snapshots(30, np.array([1.0, 0.5]), seed=7)
    with pytest.raises(Fe2xError, match="non-empty"):
        pod_basis(np.zeros((30, 0)), M)
    with pytest.raises(Fe2xError, match="NaN or infinite"):
        pod_basis(np.where(X > 0, np.nan, X), M)
    with pytest.raises(Fe2xError, match=r"M has shape \(29, 29\); expected \(30, 30\)"):
        pod_basis(X, M[:29, :29])
    with pytest.raises(Fe2xError, match="all zero"):
        pod_basis(np.zeros((30, 3)), M)
    with pytest.raises(Fe2xError, match="not positive definite on the snapshots"):
        pod_basis(X, -M)


@pytest.mark.parametrize("comm", [MPI.COMM_WORLD, MPI.COMM_SELF], ids=["world", "self"])
@pytest.mark.parametrize("split", ["even", "all_on_first"])
def test_distributed_matches_serial(comm, split):
    """Rows spread over the ranks (or all on one) give the serial basis up to sign."""
    sigma = 10.0 ** -(np.arange(20) / 4)
    X, M, _ = designed_snapshots(301, sigma, seed=8)
    MX = M @ X
    if split == "even":
        bounds = np.linspace(0, X.shape[0], comm.size + 1).astype(int)
    else:
        bounds = np.array([0] + [X.shape[0]] * comm.size)
    rows = slice(bounds[comm.rank], bounds[comm.rank + 1])
    serial = pod_basis(X, M)
    distributed = pod_basis_distributed(comm, X[rows], MX[rows])
    Phi = np.vstack(comm.allgather(distributed.Phi))
    assert Phi.shape == serial.Phi.shape
    assert same_up_to_sign(Phi, serial.Phi) < 1e-10
    # singular values agree to ε s_max absolutely (what pass 2 resolves)
    assert np.allclose(distributed.singular_values, serial.singular_values, rtol=0, atol=1e-14)
    assert distributed.energy == pytest.approx(serial.energy, rel=1e-14)
    assert np.abs(Phi.T @ M @ Phi - np.eye(Phi.shape[1])).max() < 1e-10
    truncated = pod_basis_distributed(comm, X[rows], MX[rows], energy_tol=1e-6)
    assert truncated.Phi.shape[1] == pod_basis(X, M, energy_tol=1e-6).Phi.shape[1]


def test_distributed_refuses_mismatched_snapshot_counts():
    comm = MPI.COMM_WORLD
    if comm.size == 1:
        pytest.skip("needs ranks that can disagree")
    X = np.ones((5, 3 + comm.rank))
    with pytest.raises(Fe2xError, match="different numbers of snapshots"):
        pod_basis_distributed(comm, X)
    with pytest.raises(Fe2xError, match="M_snapshots has shape"):
        pod_basis_distributed(comm, np.ones((5, 3)), np.ones((5 + comm.rank, 3)))
