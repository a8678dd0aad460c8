"""Finite-strain RVEs (F̄ in, P̄ and dP̄/dF̄ out) against independent references: the exact
rank-one laminate, objectivity, symmetry and finite differences of the tangent, the small-strain
C_eff at F̄ = I, the material point, dense eigenvalues, and strong ellipticity of a homogeneous
cell."""

from mpi4py import MPI

import numpy as np
import pytest
from finite_laminate import laminate
from scipy.optimize import brentq

from fe2x.errors import Fe2xError
from fe2x.geometry import inclusion_cell, laminate_cell, voxel_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.finite_plasticity import LogStrainPlasticity
from fe2x.materials.hyperelastic import NeoHookean, SaintVenantKirchhoff
from fe2x.materials.j2 import J2Plasticity
from fe2x.materials.kinematics import PLANE_STRAIN_ENTRIES, embed_plane_strain
from fe2x.materials.mandel import mandel_to_tensor4
from fe2x.micro.linear import LinearRVE
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.nonlinear import STABILITY, NonlinearRVE

SOFT = NeoHookean(75.0, 0.3, "soft")
STIFF = NeoHookean(400.0, 0.2, "stiff")
LAYERS = {"soft": SOFT, "stiff": STIFF}
MATRIX = NeoHookean(3.0, 0.35, "matrix")
FIBRE = NeoHookean(70.0, 0.2, "inclusion")
PLANE = list(PLANE_STRAIN_ENTRIES)
RNG = np.random.default_rng(14)


def layered_cell(dim: int, comm=MPI.COMM_WORLD):
    """Layers normal to e1, fractions 0.5/0.5, interfaces on element facets."""
    size = 0.25 if dim == 2 else 0.5
    return laminate_cell(
        comm, dim, [1.0] * dim, [0.5, 0.5], 0, size, geometry_order=1, phase_names=["soft", "stiff"]
    )


@pytest.fixture(scope="module")
def fibre_cell():
    return inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, 0.2, geometry_order=1)


def rotation(dim: int, rng) -> np.ndarray:
    """A random proper rotation."""
    if dim == 2:
        a = rng.uniform(0, 2 * np.pi)
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    Q, R = np.linalg.qr(rng.standard_normal((3, 3)))
    Q = Q @ np.diag(np.sign(np.diag(R)))
    return Q if np.linalg.det(Q) > 0 else -Q


def oracle(F_bar: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact laminate P̄ and A (in-plane blocks in 2D)."""
    F3 = embed_plane_strain(F_bar[None]) if dim == 2 else F_bar[None]
    exact = laminate(F3, (SOFT, STIFF), (0.5, 0.5), np.array([1.0, 0.0, 0.0]))
    P, A = exact.P[0], exact.A[0]
    return (P[PLANE], A[np.ix_(PLANE, PLANE)]) if dim == 2 else (P, A)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("load", ["shear", "stretch"])
def test_laminate_is_exact(dim, load):
    """Simple shear F̄ = I + γ e1⊗e2 to γ = 0.5 and uniaxial stretch F̄11 = λ to 2 across the
    layers: P̄ and dP̄/dF̄ are the exact rank-one laminate's to 1e-9."""
    rve = NonlinearRVE(layered_cell(dim), LAYERS, degree=1)
    assert rve.kinematics == "finite" and rve.n_strain == dim * dim
    for s in np.linspace(0.0, 1.0, 5)[1:]:
        F = np.eye(dim)
        if load == "shear":
            F[0, 1] = 0.5 * s
        else:
            F[0, 0] = 1.0 + s
        result = rve.solve(F.reshape(-1))
        assert result.converged, result.reason
        rve.commit()
        P, A = oracle(F.reshape(-1), dim)
        assert relative(result.Sigma, P) < 1e-9
        assert relative(result.C, A) < 1e-9
        assert result.hill_mandel_residual < 1e-12


@pytest.mark.parametrize(
    ("dim", "bc"), [(2, "periodic"), (2, "subc"), (3, "periodic"), (3, "subc")]
)
def test_objectivity(dim, bc, fibre_cell):
    """P̄(Q F̄) = Q P̄(F̄) and A(Q F̄)_iJkL = Q_ia Q_kb A(F̄)_aJbL for random rotations (SUBC:
    its eliminated rotations make the fluctuation rotate with F̄)."""
    cell = fibre_cell if dim == 2 else layered_cell(3)
    laws = {"matrix": MATRIX, "inclusion": FIBRE} if dim == 2 else LAYERS
    rve = NonlinearRVE(cell, laws, bc=bc, degree=1)
    virgin = rve.get_state()
    rng = np.random.default_rng(7)
    F = np.eye(dim) + 0.25 * rng.standard_normal((dim, dim))
    assert np.linalg.det(F) > 0.5
    base = rve.solve(F.reshape(-1))
    assert base.converged
    P = base.Sigma.reshape(dim, dim)
    A = base.C.reshape(dim, dim, dim, dim)
    for _ in range(3):
        Q = rotation(dim, rng)
        rve.set_state(virgin)  # the same start (w = 0) as the unrotated solve
        turned = rve.solve((Q @ F).reshape(-1))
        assert turned.converged
        assert relative(turned.Sigma, (Q @ P).reshape(-1)) < 1e-10
        A_Q = np.einsum("ia,kb,aJbL->iJkL", Q, Q, A).reshape(dim * dim, dim * dim)
        assert relative(turned.C, A_Q) < 1e-10


def central_differences(rve: NonlinearRVE, F: np.ndarray, h: float = 1e-6) -> np.ndarray:
    columns = []
    for k in range(F.size):
        e = np.zeros(F.size)
        e[k] = h
        plus, minus = rve.solve(F + e), rve.solve(F - e)
        assert plus.converged and minus.converged
        columns.append((plus.Sigma - minus.Sigma) / (2 * h))
    return np.column_stack(columns)


@pytest.mark.parametrize("bc", ["periodic", "kubc", "subc"])
def test_hyperelastic_tangent_is_symmetric_and_the_derivative(fibre_cell, bc):
    rve = NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc=bc, degree=2)
    F = np.array([1.15, 0.2, -0.1, 0.9])
    result = rve.solve(F)
    assert result.converged and result.hill_mandel_residual < 1e-10  # Newton's tolerance
    A = result.C
    assert np.abs(A - A.T).max() < 1e-8 * np.abs(A).max()
    assert relative(central_differences(rve, F), A) < 1e-5


def test_plastic_tangent_is_the_derivative(fibre_cell):
    """Finite-strain J2 (log strain) in the matrix, loaded plastically from a committed state."""
    matrix = LogStrainPlasticity(J2Plasticity(3.0, 0.35, 0.03, H=0.3, H_kin=0.1), "matrix")
    rve = NonlinearRVE(fibre_cell, {"matrix": matrix, "inclusion": FIBRE}, degree=1)
    F1 = np.array([1.03, 0.02, 0.0, 0.99])
    assert rve.solve(F1).converged
    rve.commit()
    F2 = np.array([1.05, 0.04, -0.01, 0.985])
    result = rve.solve(F2)
    assert result.converged
    A = result.C
    assert relative(central_differences(rve, F2), A) < 1e-5
    elastic = NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=1)
    assert A[0, 0] < 0.9 * elastic.solve(F2).C[0, 0]  # really plastic: softer


@pytest.mark.parametrize("bc", ["periodic", "kubc", "subc"])
def test_tangent_at_identity_is_the_small_strain_C_eff(fibre_cell, bc):
    """At F̄ = I the condensed A is C_eff of the same cell with the linearised phases, mapped
    from Mandel to the full 4×4 (C_iJkL)."""
    rve = NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc=bc, degree=2)
    result = rve.solve(np.eye(2).reshape(-1))
    assert result.converged and np.abs(result.Sigma).max() < 1e-13
    stiffness = {
        "matrix": IsotropicElastic(3.0, 0.35).stiffness(2),
        "inclusion": IsotropicElastic(70.0, 0.2).stiffness(2),
    }
    C_eff = LinearRVE(fibre_cell, stiffness, degree=2).solve_unit_strains(bc).C_eff
    expected = mandel_to_tensor4(C_eff, 2).reshape(4, 4)
    assert relative(result.C, expected) < 1e-10


def test_homogeneous_cell_is_the_material_point(fibre_cell):
    """A cell of one finite-strain J2 material answers as the material point, history too."""
    law = LogStrainPlasticity(J2Plasticity(3.0, 0.35, 0.03, H=0.3, H_kin=0.1))
    rve = NonlinearRVE(fibre_cell, {"matrix": law, "inclusion": law}, degree=1, stability=False)
    point = MaterialPoint(law, 2)
    for s in (0.5, 1.0, 1.5, 0.5, -0.5):
        F = np.eye(2).reshape(-1) + s * np.array([0.04, 0.03, 0.0, -0.02])
        a, b = rve.solve(F), point.solve(F)
        assert a.converged and b.converged
        assert relative(a.Sigma, b.Sigma) < 1e-10
        assert relative(a.C, b.C) < 1e-10
        rve.commit()
        point.commit()
    assert rve.diagnostics()["equivalent_plastic_strain"] > 0.0


@pytest.mark.parametrize("bc", ["periodic", "subc"])
def test_same_answer_on_world_and_self(bc):
    world = NonlinearRVE(layered_cell(2), LAYERS, bc=bc, degree=1)
    single = NonlinearRVE(layered_cell(2, MPI.COMM_SELF), LAYERS, bc=bc, degree=1)
    F = np.array([1.3, 0.2, 0.1, 0.8])
    a, b = world.solve(F), single.solve(F)
    assert relative(a.Sigma, b.Sigma) < 1e-11 and relative(a.C, b.C) < 1e-11
    world.commit()
    single.commit()
    if bc == "periodic":
        assert world.diagnostics()[STABILITY] == pytest.approx(single.diagnostics()[STABILITY])


def test_kubc_pbc_subc_bracket_the_energy(fibre_cell):
    """The admissible fluctuations grow from KUBC to PBC to SUBC, and so does the freedom to
    lower the energy: along F̄(s) = I + s (F̄₁ − I) the homogenized energy of these hyperelastic
    cells, W̄ = ∫₀¹ P̄(s) : (F̄₁ − I) ds (Simpson's rule on 8 intervals), is ordered
    KUBC > PBC > SUBC."""
    identity = np.eye(2).reshape(-1)
    dF = np.array([1.3, 0.25, -0.05, 0.85]) - identity
    simpson = np.array([1, 4, 2, 4, 2, 4, 2, 4, 1]) / 24.0
    energy = {}
    for bc in ("kubc", "periodic", "subc"):
        rve = NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc=bc, degree=1)
        power = []
        for s in np.linspace(0.0, 1.0, 9):
            result = rve.solve(identity + s * dF)
            assert result.converged
            rve.commit()
            power.append(result.Sigma @ dF)
        energy[bc] = float(simpson @ power)
    assert energy["kubc"] > energy["periodic"] > energy["subc"] > 0.0, energy


def dense(A) -> np.ndarray:
    indptr, indices, values = A.getValuesCSR()
    out = np.zeros(A.getSize())
    for i in range(A.getSize()[0]):
        out[i, indices[indptr[i] : indptr[i + 1]]] = values[indptr[i] : indptr[i + 1]]
    return out


def test_stability_is_the_lowest_eigenvalue_of_the_jacobian(fibre_cell):
    """micro_stability = λ_min(J)/λ_min(J_virgin), J the reduced Jacobian, by dense eigvalsh."""
    cell = inclusion_cell(MPI.COMM_SELF, 2, [1.0, 1.0], 0.3, 0.3, geometry_order=1)
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=1)
    virgin = np.linalg.eigvalsh(dense(rve.J)).min()
    assert rve.diagnostics()[STABILITY] == 1.0
    F = np.array([0.8, 0.1, 0.0, 1.1])
    assert rve.solve(F).converged
    J = dense(rve.J)
    assert np.abs(J - J.T).max() < 1e-10 * np.abs(J).max()
    rve.commit()
    expected = np.linalg.eigvalsh(J).min() / virgin
    assert rve.diagnostics()[STABILITY] == pytest.approx(expected, rel=1e-7)
    assert expected > 0.0


def test_homogeneous_svk_cell_loses_stability_with_strong_ellipticity():
    """A cell of one Saint Venant–Kirchhoff material under F̄ = diag(λ, 1): periodic
    fluctuations of a homogeneous body are stable iff its acoustic tensor Q(N) is positive
    definite for every N (Fourier modes). The conforming discrete space only raises the
    energy (Rayleigh–Ritz), so the cell is stable above the continuum limit λ_c, and it is
    unstable below λ_1 where the mode a ⊗ e1, a = e2, varying along x1 alone, which the
    structured Q1 mesh represents exactly, has negative energy (Q_22(e1) = S11 + μ < 0)."""
    law = SaintVenantKirchhoff(1.0, 0.3)
    lam_L, mu = law.lame
    cell = voxel_cell(MPI.COMM_WORLD, np.ones((8, 8), dtype=int), phases={1: "solid"})
    rve = NonlinearRVE(cell, {"solid": law}, degree=1)

    def min_acoustic(stretch: float) -> float:
        F = embed_plane_strain(np.array([[stretch, 0.0, 0.0, 1.0]]))
        A = law.update(F, {})[1][0].reshape(3, 3, 3, 3)[:2, :2, :2, :2]
        theta = np.linspace(0.0, np.pi, 3601)
        N = np.column_stack([np.cos(theta), np.sin(theta)])
        Q = np.einsum("pj,ijkl,pl->pik", N, A, N)
        return float(np.linalg.eigvalsh(Q)[:, 0].min())

    lam_c = brentq(min_acoustic, 0.5, 0.99)  # strong ellipticity lost below λ_c
    lam_1 = np.sqrt(1.0 - 2.0 * mu / (lam_L + 2.0 * mu))  # S11(λ_1) = −μ
    assert lam_1 <= lam_c + 1e-9
    for stretch, stable in ((lam_c + 0.02, True), (lam_1 - 0.02, False)):
        result = rve.solve(np.array([stretch, 0.0, 0.0, 1.0]))
        assert result.converged
        rve.commit()
        assert (rve.diagnostics()[STABILITY] > 0.0) == stable, (stretch, rve.diagnostics())


def test_bad_input(fibre_cell):
    with pytest.raises(Fe2xError, match=r"finite-strain laws and .* small-strain ones"):
        NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": IsotropicElastic(70.0, 0.2)})
    with pytest.raises(Fe2xError, match="the stability diagnostic is for PBC and KUBC"):
        NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc="subc", stability=True)
    rve = NonlinearRVE(fibre_cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=1, max_cutbacks=1)
    inverted = rve.solve(np.array([-0.5, 0.0, 0.0, 1.0]))
    assert not inverted.converged
    assert "det F <= 0" in inverted.reason
    assert np.isnan(inverted.Sigma).all()
