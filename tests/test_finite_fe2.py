"""Finite-strain FE² (total Lagrangian macro problem in F and P) against independent references:
the exact laminate as the macro law, the RVE path, Newton rates, ranks and groups, the
small-strain FE² at small loads, and the acoustic tensor of the homogenized tangent."""

from mpi4py import MPI

import numpy as np
import pytest
from finite_laminate import laminate
from scipy.optimize import brentq

from fe2x.errors import Fe2xError
from fe2x.geometry import laminate_cell
from fe2x.geometry.macro import block
from fe2x.macro.diagnostics import acoustic_minimum, loses_ellipticity
from fe2x.macro.fe2 import FE2Engine
from fe2x.macro.problem import DirichletSpec, MacroProblem
from fe2x.macro.stepping import run_load_steps
from fe2x.materials import IsotropicElastic
from fe2x.materials.hyperelastic import NeoHookean, SaintVenantKirchhoff
from fe2x.materials.kinematics import PLANE_STRAIN_ENTRIES, embed_plane_strain
from fe2x.materials.mandel import mandel_to_tensor4
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive
from fe2x.parallel.layout import split_groups

SOFT = NeoHookean(75.0, 0.3, "soft")
STIFF = NeoHookean(400.0, 0.2, "stiff")
LENGTHS = (2.0, 1.0)
PLANE = list(PLANE_STRAIN_ENTRIES)


def rve_cell(comm):
    return laminate_cell(
        comm, 2, [1.0, 1.0], [0.5, 0.5], 0, 0.5, geometry_order=1, phase_names=["soft", "stiff"]
    )


def rve_factory(materials=None, stability=False):
    materials = materials or {"soft": SOFT, "stiff": STIFF}
    return lambda comm: NonlinearRVE(rve_cell(comm), materials, degree=1, stability=stability)


def stretched(comm, stretch, kinematics="finite"):
    """The block pulled along x with free lateral faces: u_x = 0 left, u_x = (λ − 1) L right,
    u_y = 0 below."""
    specimen = block(comm, 2, LENGTHS, 0.5)
    b = specimen.boundaries
    problem = MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        2,
        dirichlet=[
            DirichletSpec(b["left"], 0, 0.0),
            DirichletSpec(b["right"], 0, (stretch - 1.0) * LENGTHS[0]),
            DirichletSpec(b["bottom"], 1, 0.0),
        ],
        kinematics=kinematics,
    )
    return problem, b["right"]


def bent(comm, delta, kinematics="finite"):
    """The block clamped on the left, its right face moved by (δ, δ): stretch, shear, bending
    and rotation, a non-uniform macro state."""
    specimen = block(comm, 2, LENGTHS, 0.5)
    b = specimen.boundaries
    problem = MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        2,
        dirichlet=[
            DirichletSpec(b["left"], None, 0.0),
            DirichletSpec(b["right"], 0, delta),
            DirichletSpec(b["right"], 1, delta),
        ],
        kinematics=kinematics,
    )
    return problem, b["right"]


def run_fe2(problem, right, factory, comm, group_size=1, steps=3, balance=True):
    """Reaction on the right face after each step, the residual histories, the engine."""
    engine = FE2Engine(
        problem,
        split_groups(comm, group_size),
        ["rve"] * problem.n_points,
        {"rve": factory},
        balance,
    )
    forces, histories = [], []

    def record(number, step, cutbacks, increment):
        forces.append(problem.reactions(right))
        histories.append(step.residual_history)

    result = run_load_steps(engine.step, steps, before_step=engine.rebalance, after_step=record)
    assert result.completed, result.message
    return np.array(forces), histories, engine


def oracle_law(F2: np.ndarray):
    """The exact laminate at every macro point (the macro law FE² must reproduce)."""
    exact = laminate(embed_plane_strain(F2), (SOFT, STIFF), (0.5, 0.5), np.array([1.0, 0, 0]))
    return exact.P[:, PLANE], exact.A[:, PLANE][:, :, PLANE], True


def run_macro(problem, right, law, steps=3):
    forces = []
    for k in range(1, steps + 1):
        assert problem.solve_step(k / steps, law).converged
        forces.append(problem.reactions(right))
    return np.array(forces)


def test_homogeneous_macro_state_reproduces_the_rve_path():
    """The pulled block is in uniform uniaxial stress: the nominal force over the reference
    height is P̄11 of the RVE driven along F11 with P22 = 0, F12 = F21 = 0."""
    comm = MPI.COMM_WORLD
    problem, right = stretched(comm, 1.5)
    forces, _, _ = run_fe2(problem, right, rve_factory(), comm)
    path = LoadPath(
        np.array([0.0, 1.0]),
        np.array([[1.0, 0.0, 0.0, 0.0], [1.5, 0.0, 0.0, 0.0]]),  # F11 F12 F21 P22
        np.array([False, False, False, True]),
        3,
        "finite",
    )
    steps = drive(rve_factory()(comm), path, 75.0, rtol=1e-12).steps
    P11 = np.array([s.Sigma[0] for s in steps])
    assert np.allclose(forces[:, 0] / LENGTHS[1], P11, rtol=1e-8)
    assert np.allclose(forces[:, 1], 0.0, atol=1e-9 * P11.max())
    F = problem.strains()
    assert np.allclose(F[:, 0], 1.5) and np.allclose(F[:, 3], steps[-1].E[3], rtol=1e-8)


@pytest.fixture(scope="module")
def reference():
    """The bent block with every RVE and the macro problem on each single rank."""
    problem, right = bent(MPI.COMM_SELF, 0.6)
    forces, histories, _ = run_fe2(problem, right, rve_factory(), MPI.COMM_SELF)
    return forces, histories


def test_fe2_is_the_macro_problem_with_the_exact_laminate(reference):
    """The laminate RVE is exact, so FE² equals the macro problem whose law is the rank-one
    laminate solved at every point (finite_laminate, independent of the FE code)."""
    problem, right = bent(MPI.COMM_WORLD, 0.6)
    expected = run_macro(problem, right, oracle_law)
    assert np.allclose(reference[0], expected, rtol=0, atol=1e-8 * np.abs(expected).max())
    rotation = np.arctan2(problem.strains()[:, 2], problem.strains()[:, 0])
    assert MPI.COMM_WORLD.allreduce(np.abs(rotation).max(), op=MPI.MAX) > 0.2  # 11° and more


#: The macro residual's floor relative to the step's first. Each micro answer is exact to the
#: micro Newton's tolerance (a warm and a cold answer at the same E differ by up to 5.5e-11 in
#: Σ); from a cold start that error is a smooth function of E, from a warm start (a later macro
#: iteration's micro Newton starts from the earlier answer) it is not, and the macro residual
#: stalls near 2.6e-13 of its first value instead of 1.3e-15. Contractions are rates above it.
MACRO_FLOOR = 1e-12


def test_macro_newton_converges_quadratically(reference):
    rates = []
    for history in reference[1]:
        r = np.array(history) / history[0]
        assert r[-1] < MACRO_FLOOR, r  # converged down to the floor
        r = r[r > MACRO_FLOOR]
        if len(r) >= 3:
            rates.append(np.log(r[-1]) / np.log(r[-2]))
    assert rates and min(rates) > 1.8, rates


@pytest.mark.parametrize("group_size", [1, 2])
def test_same_answer_on_any_ranks_and_group_size(reference, group_size):
    comm = MPI.COMM_WORLD
    if comm.size % group_size:
        pytest.skip(f"group size {group_size} needs a multiple of {group_size} ranks")
    problem, right = bent(comm, 0.6)
    forces, _, engine = run_fe2(problem, right, rve_factory(), comm, group_size)
    assert np.allclose(forces, reference[0], rtol=0, atol=1e-8 * np.abs(reference[0]).max())
    if comm.size > 1:
        assert engine.layout.world.allreduce(len(engine.pool.committed)) > 0


def test_small_loads_reproduce_the_small_strain_fe2():
    """With linear elastic phases of the same constants, small-strain FE² differs from
    finite-strain FE² by a relative amount of the order of the strain (the geometric terms)."""
    comm = MPI.COMM_WORLD
    linear = {"soft": IsotropicElastic(75.0, 0.3), "stiff": IsotropicElastic(400.0, 0.2)}
    differences = []
    for delta in (1e-4, 1e-3):
        finite, right = bent(comm, delta)
        small, _ = bent(comm, delta, "small")
        a = run_fe2(finite, right, rve_factory(), comm, steps=1)[0][-1]
        b = run_fe2(small, right, rve_factory(linear), comm, steps=1)[0][-1]
        differences.append(np.linalg.norm(a - b) / np.linalg.norm(b))
    strain = 1e-4 / LENGTHS[0]
    assert differences[0] < 10 * strain, differences
    assert 5.0 < differences[1] / differences[0] < 20.0, differences  # linear in the load


def test_models_of_the_other_kinematics_are_refused():
    comm = MPI.COMM_WORLD
    problem, _ = bent(comm, 0.1, "small")
    with pytest.raises(Fe2xError, match=r"not small-strain, as the macro problem is"):
        layout = split_groups(comm, 1)
        FE2Engine(problem, layout, ["rve"] * problem.n_points, {"rve": rve_factory()})


# -- the acoustic tensor of finite-strain tangents --------------------------------------------
def tangent(law, F: np.ndarray, dim: int) -> np.ndarray:
    F3 = embed_plane_strain(F[None]) if dim == 2 else F[None]
    A = law.update(F3, {})[1]
    return A[:, PLANE][:, :, PLANE][0] if dim == 2 else A[0]


@pytest.mark.parametrize("dim", [2, 3])
def test_acoustic_tensor_at_identity_is_the_small_strain_one(dim):
    A = tangent(SOFT, np.eye(dim).reshape(-1), dim)
    C = IsotropicElastic(75.0, 0.3).stiffness(dim)
    assert np.allclose(A, mandel_to_tensor4(C, dim).reshape(dim * dim, -1))
    expected = acoustic_minimum(C, dim)
    assert acoustic_minimum(A, dim, kinematics="finite") == pytest.approx(expected, rel=1e-12)


def test_acoustic_tensor_is_objective_and_finds_the_svk_limit():
    """Q(N) of P's tangent at R F̄ is R Q(N) Rᵀ: det unchanged; a Saint Venant–Kirchhoff body
    compressed along x loses ellipticity below the stretch where min_N eig Q(N) = 0 (found
    here by brute force over 3601 directions and root finding)."""
    law = SaintVenantKirchhoff(1.0, 0.3)
    theta = np.linspace(0.0, np.pi, 3601)
    N = np.column_stack([np.cos(theta), np.sin(theta)])

    def acoustic(stretch: float) -> np.ndarray:
        A = tangent(law, np.array([stretch, 0.0, 0.0, 1.0]), 2).reshape(2, 2, 2, 2)
        return np.einsum("pj,ijkl,pl->pik", N, A, N)

    stretch_c = brentq(lambda s: np.linalg.eigvalsh(acoustic(s))[:, 0].min(), 0.5, 0.99)
    for stretch in (0.95, stretch_c + 0.01, stretch_c - 0.01, 0.55):
        A = tangent(law, np.array([stretch, 0.0, 0.0, 1.0]), 2)
        brute = float(np.linalg.det(acoustic(stretch)).min())
        found = acoustic_minimum(A, 2, kinematics="finite")
        assert found <= brute + 1e-12
        assert found == pytest.approx(brute, rel=1e-5, abs=1e-12)  # the sample is 0.05° apart
        lost = loses_ellipticity(A[None], 2, kinematics="finite")[0]
        assert lost == (stretch < stretch_c), stretch
        R = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
        F = R @ np.diag([stretch, 1.0])
        turned = acoustic_minimum(tangent(law, F.reshape(-1), 2), 2, kinematics="finite")
        assert turned == pytest.approx(found, rel=1e-6, abs=1e-12)
