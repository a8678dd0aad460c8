"""Nonlinear RVE against independent oracles: plastic laminates, plane strain, ranks, control."""

import itertools

from mpi4py import MPI

import dolfinx
import numpy as np
import pytest
from dolfinx.mesh import CellType, create_box, create_rectangle, meshtags

from fe2x.geometry import RVEMesh, inclusion_cell, laminate_cell
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity, J2State, return_mapping
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive

SOFT = J2Plasticity(E=3.0, nu=0.3, sigma_y=0.02, H=0.3, H_kin=0.15, name="soft")
HARD = J2Plasticity(
    E=8.0, nu=0.25, sigma_y=0.04, hardening="voce", Q=0.03, b=40.0, H=0.2, name="hard"
)
STIFF = IsotropicElastic(20.0, 0.2)

# 3D Mandel rows (11, 22, 33, 23, 13, 12) of the traction σ·n on a layer normal to each axis.
NORMAL_ROWS = {0: [0, 4, 5], 1: [1, 3, 5], 2: [2, 3, 4]}
PLANE = [0, 1, 5]  # 3D Mandel rows of the plane-strain components 11, 22, 12
R2 = np.sqrt(2.0)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def point_response(material, eps: np.ndarray, state: J2State | None):
    """3D stress, tangent, trial state and plastic flag of one point at strain ``eps``."""
    if isinstance(material, IsotropicElastic):
        C = material.stiffness(3)
        return C @ eps, C, None, False
    sigma, C_alg, trial, plastic = return_mapping(material, eps[None], state)
    return sigma[0], C_alg[0], trial, bool(plastic[0])


class Laminate:
    """Semi-analytical laminate: one material point per layer, committed per step.

    Layer i has strain ε_i with ε_i[T] = E[T] (in-plane compatibility) and unknown normal part
    ε_i[N]; Newton solves σ_i[N] = σ_{i+1}[N] (traction continuity) and Σ f_i ε_i[N] = E[N].
    Then Σ = Σ f_i σ_i, and the tangent solves the same linearised system per unit dE.
    """

    def __init__(self, fractions, materials, axis):
        self.f = np.asarray(fractions, dtype=float)
        self.materials = list(materials)
        self.N = NORMAL_ROWS[axis]
        self.T = [i for i in range(6) if i not in self.N]
        self.states = [
            None if isinstance(m, IsotropicElastic) else J2State.zeros(1) for m in self.materials
        ]
        self.eps = np.zeros((len(self.f), 6))

    def _system(self, eps):
        out = [
            point_response(m, e, s)
            for m, e, s in zip(self.materials, eps, self.states, strict=True)
        ]
        sig = np.array([o[0] for o in out])
        C = np.array([o[1] for o in out])
        return sig, C, out

    def _jacobian(self, C):
        """d(residual)/d(ε_N of all layers), and d(residual)/dE."""
        L, N, T = len(self.f), self.N, self.T
        n = len(N)
        J = np.zeros((L * n, L * n))
        dE = np.zeros((L * n, 6))
        for i in range(L - 1):
            rows = slice(i * n, (i + 1) * n)
            J[rows, i * n : (i + 1) * n] = C[i][np.ix_(N, N)]
            J[rows, (i + 1) * n : (i + 2) * n] = -C[i + 1][np.ix_(N, N)]
            dE[rows, T] = C[i][np.ix_(N, T)] - C[i + 1][np.ix_(N, T)]
        last = slice((L - 1) * n, L * n)
        for i in range(L):
            J[last, i * n : (i + 1) * n] = self.f[i] * np.eye(n)
        dE[last, N] = -np.eye(n)
        return J, dE

    def step(self, E: np.ndarray):
        """Σ(E), dΣ/dE and the per-layer plastic flags; the layer histories are committed."""
        L, N, T = len(self.f), self.N, self.T
        eps = self.eps.copy()
        eps[:, T] = E[T]
        for _ in range(50):
            sig, C, out = self._system(eps)
            r = np.concatenate(
                [sig[i, N] - sig[i + 1, N] for i in range(L - 1)] + [self.f @ eps[:, N] - E[N]]
            )
            J, _ = self._jacobian(C)
            d = np.linalg.solve(J, -r).reshape(L, len(N))
            eps[:, N] += d
            if np.linalg.norm(d) <= 1e-13 * max(np.linalg.norm(E), 1e-300):
                break
        else:
            raise RuntimeError("laminate Newton did not converge")
        sig, C, out = self._system(eps)
        Sigma = self.f @ sig
        J, dE = self._jacobian(C)
        d_eps_N = np.linalg.solve(J, -dE)  # (L n, 6): layer normal strains per unit dE
        tangent = np.zeros((6, 6))
        for i in range(L):
            d_eps = np.zeros((6, 6))
            d_eps[N] = d_eps_N[i * len(N) : (i + 1) * len(N)]
            d_eps[T, T] = 1.0
            tangent += self.f[i] * C[i] @ d_eps
        self.states = [o[2] for o in out]
        self.eps = eps
        return Sigma, tangent, [o[3] for o in out]


def strain_path(knots, substeps: int) -> list[np.ndarray]:
    """Piecewise-linear strain path from 0 through ``knots``, ``substeps`` steps per segment."""
    points = [np.zeros(len(knots[0]))] + [np.asarray(k, dtype=float) for k in knots]
    path = []
    for a, b in itertools.pairwise(points):
        path += [a + (b - a) * s / substeps for s in range(1, substeps + 1)]
    return path


# Load, unload, reverse, return: shear and normal mixed (Mandel, √2 on shears).
KNOTS_2D = [[0.008, -0.003, 0.02 * R2], [0.002, 0.001, 0.004 * R2], [-0.01, 0.004, -0.025 * R2]]
KNOTS_3D = [
    [0.008, -0.003, 0.002, 0.006 * R2, -0.008 * R2, 0.015 * R2],
    [0.002, 0.0, 0.001, 0.001 * R2, -0.002 * R2, 0.003 * R2],
    [-0.008, 0.004, -0.002, -0.008 * R2, 0.01 * R2, -0.02 * R2],
]


def to_3d(E2: np.ndarray) -> np.ndarray:
    E = np.zeros(6)
    E[PLANE] = E2
    return E


LAMINATE_FRACTIONS = [0.3, 0.45, 0.25]


def laminate_rve(comm, dim, axis, materials, mesh_size):
    lengths = [1.0, 0.8, 0.6][:dim]
    cell = laminate_cell(
        comm,
        dim,
        lengths,
        LAMINATE_FRACTIONS,
        axis,
        mesh_size,
        geometry_order=1,
        phase_names=["a", "b", "a"],
    )
    return NonlinearRVE(cell, {"a": materials[0], "b": materials[1]}, degree=1)


@pytest.mark.parametrize(
    ("dim", "axis", "pair"),
    [(2, 0, "j2-j2"), (2, 1, "j2-elastic"), (3, 1, "j2-j2")],
)
def test_plastic_laminate_matches_semi_analytical_solution(dim, axis, pair):
    materials = (SOFT, HARD) if pair == "j2-j2" else (SOFT, STIFF)
    rve = laminate_rve(MPI.COMM_WORLD, dim, axis, materials, 0.25 if dim == 2 else 0.35)
    layers = [materials[0], materials[1], materials[0]]
    reference = Laminate(LAMINATE_FRACTIONS, layers, axis)
    rows = PLANE if dim == 2 else list(range(6))
    plastic = np.zeros((0, 3), dtype=bool)
    for E in strain_path(KNOTS_2D if dim == 2 else KNOTS_3D, 4):
        result = rve.solve(E)
        assert result.converged, result.reason
        rve.commit()
        Sigma, C, flags = reference.step(to_3d(E) if dim == 2 else E)
        plastic = np.vstack([plastic, flags])
        assert relative(result.Sigma, Sigma[rows]) < 1e-8, (E, result.Sigma, Sigma[rows])
        assert relative(result.C, C[np.ix_(rows, rows)]) < 1e-8, E
    # the path really is elastoplastic: the plastic layers yield, in loading and in reverse
    assert plastic[:4, 0].all() and plastic[-4:, 0].any()
    if pair == "j2-j2":
        assert plastic[:4, 1].any() and plastic[-4:, 1].any()
    # and the layers really strain differently (a uniform strain would not be the answer)
    assert np.abs(reference.eps[0] - reference.eps[1]).max() > 0.2 * np.abs(E).max()


def extruded_cell(comm, dim: int, n: int = 4, height: float = 0.25) -> RVEMesh:
    """A square fibre off the cell centre on a structured quad grid, or its extrusion along z.

    One hexahedron layer in z: with tensor-product Gauss points (3 x 3 (x 3) for Q2) the 3D
    quadrature points lie above the 2D ones, so a z-uniform 3D field is evaluated exactly as
    the 2D one.
    """
    if dim == 2:
        mesh = create_rectangle(comm, [[0.0, 0.0], [1.0, 1.0]], [n, n], CellType.quadrilateral)
    else:
        mesh = create_box(
            comm, [[0.0, 0.0, 0.0], [1.0, 1.0, height]], [n, n, 1], CellType.hexahedron
        )
    imap = mesh.topology.index_map(dim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    mid = dolfinx.mesh.compute_midpoints(mesh, dim, cells)
    fibre = (np.abs(mid[:, 0] - 0.5) < 0.25) & (np.abs(mid[:, 1] - 0.375) < 0.25)
    tags = meshtags(mesh, dim, cells, np.where(fibre, 2, 1).astype(np.int32))
    lengths = np.array([1.0, 1.0, height][:dim])
    return RVEMesh(mesh, tags, {"matrix": 1, "inclusion": 2}, np.zeros(dim), lengths)


def z_uniform_pair(geometry: str) -> list[NonlinearRVE]:
    """The same cell in 2D and uniform along z in 3D."""
    if geometry == "laminate":  # layers normal to x
        return [laminate_rve(MPI.COMM_WORLD, d, 0, (SOFT, HARD), 0.3) for d in (2, 3)]
    materials = {"matrix": SOFT, "inclusion": HARD}
    return [NonlinearRVE(extruded_cell(MPI.COMM_WORLD, d), materials, degree=2) for d in (2, 3)]


@pytest.mark.parametrize("geometry", ["laminate", "extruded fibre"])
def test_plane_strain_is_the_3d_cell_uniform_along_z(geometry):
    rve2, rve3 = z_uniform_pair(geometry)
    C_elastic = rve2.solve(1e-3 * np.asarray(KNOTS_2D[0])).C  # trial only, not committed
    Sigma33 = []
    for E2 in strain_path(KNOTS_2D, 3):
        a, b = rve2.solve(E2), rve3.solve(to_3d(E2))
        assert a.converged and b.converged
        rve2.commit()
        rve3.commit()
        assert relative(a.Sigma, b.Sigma[PLANE]) < 1e-8, E2
        assert relative(a.C, b.C[np.ix_(PLANE, PLANE)]) < 1e-8, E2
        assert np.abs(b.Sigma[3:5]).max() < 1e-10 * np.linalg.norm(b.Sigma)  # σ23 = σ13 = 0
        Sigma33.append(b.Sigma[2])
    assert np.abs(Sigma33).max() > 0.1 * np.abs(b.Sigma).max()  # E33 = 0 really is held
    # the path ends in reverse plastic loading: the shear tangent is well below the elastic one
    assert a.C[2, 2] < 0.7 * C_elastic[2, 2]


UNIAXIAL = {2: [False, True, True], 3: [False, True, True, True, True, True]}


def uniaxial_path(dim: int, amplitude: float) -> LoadPath:
    """E11 = amplitude (load), 0.3 amplitude (unload), -amplitude (reverse); other Σ = 0."""
    n = 3 if dim == 2 else 6
    values = np.zeros((4, n))
    values[:, 0] = [0.0, amplitude, 0.3 * amplitude, -amplitude]
    return LoadPath(np.arange(4.0), values, np.array(UNIAXIAL[dim]), steps=12)


def assert_same_path(a, b, rtol=1e-8):
    assert a.completed and b.completed, (a.message, b.message)
    assert len(a.steps) == len(b.steps)
    for x, y in zip(a.steps, b.steps, strict=True):
        assert x.t == pytest.approx(y.t, rel=1e-12)
        assert relative(x.E, y.E) < rtol, (x.t, x.E, y.E)
        assert relative(x.Sigma, y.Sigma) < rtol, (x.t, x.Sigma, y.Sigma)


def fibre_cell(comm):
    return inclusion_cell(comm, 2, [1.0, 1.0], 0.3, 0.2, geometry_order=1)


def test_uniaxial_stress_path_same_on_one_and_on_all_ranks():
    """Under ``mpiexec -n 2`` this compares the RVE on 1 rank with the RVE on 2 ranks."""
    materials = {"matrix": SOFT, "inclusion": STIFF}
    path = uniaxial_path(2, 0.03)
    runs = [
        drive(NonlinearRVE(fibre_cell(comm), materials, degree=1), path, SOFT.sigma_y, rtol=1e-10)
        for comm in (MPI.COMM_SELF, MPI.COMM_WORLD)
    ]
    assert_same_path(*runs)
    for step in runs[0].steps:  # uniaxial stress: the controlled components vanish
        assert np.abs(step.Sigma[1:]).max() <= 1e-9 * SOFT.sigma_y
    Sigma11 = np.array([step.Sigma[0] for step in runs[0].steps])
    assert Sigma11.max() > 1.2 * SOFT.sigma_y and Sigma11.min() < -1.2 * SOFT.sigma_y


@pytest.mark.parametrize("dim", [2, 3])
def test_uniaxial_stress_on_a_homogeneous_cell_is_the_material_point(dim):
    if dim == 2:
        cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, 0.25, geometry_order=1)
    else:
        cell = laminate_cell(
            MPI.COMM_WORLD, 3, [1.0, 0.8, 0.6], [0.4, 0.6], 2, 0.4, geometry_order=1
        )
    rve = NonlinearRVE(cell, dict.fromkeys(cell.phases, HARD), degree=1)
    path = uniaxial_path(dim, 0.03)
    expected = drive(MaterialPoint(HARD, dim), path, HARD.sigma_y, rtol=1e-10)
    got = drive(rve, path, HARD.sigma_y, rtol=1e-10)
    assert_same_path(got, expected)
    for x, y in zip(got.steps, expected.steps, strict=True):
        assert relative(x.C, y.C) < 1e-8, x.t
    Sigma11 = np.array([step.Sigma[0] for step in expected.steps])
    # yield in tension and in reverse; without plasticity |Σ11| would reach 8 * 0.03 = 0.24
    assert Sigma11.max() < 0.15 and Sigma11.min() > -0.15
    assert Sigma11.max() > HARD.sigma_y and Sigma11.min() < -HARD.sigma_y
