"""The FE² engine against independent references: C_eff, the RVE path, ranks and groups."""

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.geometry import laminate_cell
from fe2x.geometry.macro import block
from fe2x.macro.fe2 import FE2Engine
from fe2x.macro.problem import DirichletSpec, MacroProblem
from fe2x.macro.stepping import run_load_steps
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.linear import LinearRVE
from fe2x.micro.model import RVEResult
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, drive
from fe2x.parallel.layout import split_groups

SOFT = J2Plasticity(3.0e9, 0.3, 30.0e6, H=300.0e6, H_kin=100.0e6)
HARD = IsotropicElastic(70.0e9, 0.2)
STRAIN = 0.02  # nominal macro strain at load factor 1
LENGTHS = (1.0, 0.5)


def rve_cell(comm):
    return laminate_cell(
        comm, 2, [1.0, 1.0], [0.5, 0.5], 0, 0.5, geometry_order=1, phase_names=["soft", "hard"]
    )


def rve_factory(materials):
    return lambda comm: NonlinearRVE(rve_cell(comm), materials, degree=1)


def uniaxial_problem(comm, mesh_size=0.25):
    """A block stretched along x: u_x = 0 on the left, u_x = ε L on the right, u_y = 0 below."""
    specimen = block(comm, 2, LENGTHS, mesh_size)
    b = specimen.boundaries
    problem = MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        2,
        dirichlet=[
            DirichletSpec(b["left"], 0, 0.0),
            DirichletSpec(b["right"], 0, STRAIN * LENGTHS[0]),
            DirichletSpec(b["bottom"], 1, 0.0),
        ],
    )
    return problem, b["right"]


def run(comm, factory, group_size=1, steps=4, balance=True, shortcut=True, mesh_size=0.25):
    """Reaction force on the right face after each step, and the engine."""
    problem, right = uniaxial_problem(comm, mesh_size)
    layout = split_groups(comm, group_size)
    engine = FE2Engine(
        problem, layout, ["rve"] * problem.n_points, {"rve": factory}, balance, shortcut
    )
    forces, histories = [], []

    def record(number, step, cutbacks, increment):
        forces.append(problem.reactions(right)[0])
        histories.append(step.residual_history)

    result = run_load_steps(engine.step, steps, before_step=engine.rebalance, after_step=record)
    assert result.completed
    return np.array(forces), histories, engine


def test_elastic_rves_equal_a_macro_solve_with_C_eff():
    """With elastic phases, FE² is the macro elastic problem with the RVE's C_eff."""
    materials = {"soft": IsotropicElastic(3.0e9, 0.3), "hard": HARD}
    forces, _, _ = run(MPI.COMM_WORLD, rve_factory(materials), steps=2)
    stiffness = {name: m.stiffness(2) for name, m in materials.items()}
    C_eff = (
        LinearRVE(rve_cell(MPI.COMM_WORLD), stiffness, degree=1)
        .solve_unit_strains("periodic")
        .C_eff
    )
    problem, right = uniaxial_problem(MPI.COMM_WORLD)

    def homogeneous(E):
        return E @ C_eff.T, np.broadcast_to(C_eff, (len(E), 3, 3)).copy(), True

    expected = []
    for lam in (0.5, 1.0):
        assert problem.solve_step(lam, homogeneous).converged
        expected.append(problem.reactions(right)[0])
    assert np.allclose(forces, expected, rtol=1e-8)


def test_homogeneous_macro_state_reproduces_the_rve_path():
    """The stretched block is in uniform uniaxial stress: Σ11 = F / height at every step,
    the same as the RVE driven along E11 with Σ22 = Σ12 = 0."""
    materials = {"soft": SOFT, "hard": HARD}
    forces, _, _ = run(MPI.COMM_WORLD, rve_factory(materials))
    rve = NonlinearRVE(rve_cell(MPI.COMM_WORLD), materials, degree=1)
    path = LoadPath(
        np.array([0.0, 1.0]),
        np.array([[0.0, 0.0, 0.0], [STRAIN, 0.0, 0.0]]),
        np.array([False, True, True]),
        4,
    )
    steps = drive(rve, path, SOFT.sigma_y, rtol=1e-11).steps
    Sigma11 = np.array([s.Sigma[0] for s in steps])
    assert Sigma11[-1] < 0.5 * HARD.E * STRAIN  # the soft layer yielded
    assert np.allclose(forces / LENGTHS[1], Sigma11, rtol=1e-7)


@pytest.fixture(scope="module")
def reference_forces():
    """The plastic run with everything on each single rank (COMM_SELF)."""
    forces, histories, _ = run(MPI.COMM_SELF, rve_factory({"soft": SOFT, "hard": HARD}))
    return forces, histories


@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("balance", [True, False])
def test_same_answer_on_any_ranks_and_group_size(reference_forces, group_size, balance):
    comm = MPI.COMM_WORLD
    if comm.size % group_size:
        pytest.skip(f"group size {group_size} needs a multiple of {group_size} ranks")
    forces, _, engine = run(
        comm, rve_factory({"soft": SOFT, "hard": HARD}), group_size, balance=balance
    )
    assert np.allclose(forces, reference_forces[0], rtol=1e-8)
    if balance and comm.size > 1:
        assert engine.layout.world.allreduce(len(engine.pool.committed)) > 0


def test_macro_newton_converges_quadratically(reference_forces):
    """In plastic steps the residual falls quadratically at the end (consistent tangents)."""
    _, histories = reference_forces
    rates = []
    for history in histories:
        r = np.array(history) / history[0]
        r = r[r > 1e-13]
        if len(r) >= 3:
            rates.append(np.log(r[-1]) / np.log(r[-2]))
    assert rates and max(rates) > 1.8


class Failing:
    """A micro model that fails whenever |E| exceeds a limit (e.g. an RVE that diverges)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.C = HARD.stiffness(2)

    def solve(self, E):
        if np.abs(E).max() > self.limit:
            nan = np.full(3, np.nan)
            return RVEResult(nan, np.full((3, 3), np.nan), np.nan, False, "diverged", 1, ())
        return RVEResult(self.C @ E, self.C.copy(), 0.0, True, "converged", 1, ())

    def commit(self):
        pass

    def get_state(self):
        return {"E": 0.0}

    def set_state(self, state):
        pass


def test_failing_rve_cuts_back_then_stops_cleanly():
    """Steps beyond the model's limit (λ = 0.6) are cut back until three halvings in a row
    fail; the run then stops at its last converged step with no trial history left."""
    problem, _ = uniaxial_problem(MPI.COMM_WORLD)
    layout = split_groups(MPI.COMM_WORLD, 1)
    factories = {"f": lambda comm: Failing(0.6 * STRAIN)}
    engine = FE2Engine(problem, layout, ["f"] * problem.n_points, factories)
    result = run_load_steps(engine.step, 2, max_cutbacks=3, before_step=engine.rebalance)
    assert not result.completed
    assert "failed after 3 cutbacks" in result.message
    assert result.cutbacks >= 3
    lam = result.steps[-1].load_factor
    assert 0.5 <= lam <= 0.6
    assert engine.pool.trial == {}
    committed = MPI.COMM_WORLD.allreduce(len(engine.pool.committed))
    assert committed == engine.n_points
    # The macro state is the last converged one: uniform strain λ ε.
    assert np.allclose(problem.strains()[:, 0], lam * STRAIN, rtol=1e-8)


def test_elastic_shortcut_changes_nothing_but_the_work(reference_forces):
    """The same curve with and without the exact elastic shortcut; with it, the first
    (elastic) evaluations need no RVE solve."""
    factory = rve_factory({"soft": SOFT, "hard": HARD})
    with_shortcut, _, engine = run(MPI.COMM_WORLD, factory, shortcut=True)
    without, _, plain = run(MPI.COMM_WORLD, factory, shortcut=False)
    assert np.allclose(with_shortcut, without, rtol=1e-8)
    assert np.allclose(with_shortcut, reference_forces[0], rtol=1e-8)
    comm = MPI.COMM_WORLD
    assert comm.allreduce(engine.stats.shortcut_solves) > 0
    assert comm.allreduce(plain.stats.shortcut_solves) == 0
