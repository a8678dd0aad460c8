"""Nonlinear RVE: consistent tangent, material-point oracle, Newton rate, ranks, elastic limit."""

import gc
import itertools
import weakref

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from dolfinx import fem

from fe2x.errors import Fe2xError
from fe2x.geometry import inclusion_cell
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.j2 import (
    J2Plasticity,
    J2State,
    plane_strain_reduce,
    plane_strain_strain,
    return_mapping,
)
from fe2x.micro.linear import LinearRVE
from fe2x.micro.model import Capabilities
from fe2x.micro.nonlinear import NonlinearRVE

MATRIX = J2Plasticity(E=3.0, nu=0.35, sigma_y=0.03, H=0.3, H_kin=0.1, name="matrix")
FIBRE = IsotropicElastic(70.0, 0.2)
DIRECTION = np.array([0.01, -0.004, 0.006])


def fibre_cell(comm=MPI.COMM_WORLD, mesh_size=0.14):
    return inclusion_cell(comm, 2, [1.0, 1.0], 0.3, mesh_size, geometry_order=2)


@pytest.fixture(scope="module")
def cell():
    return fibre_cell()


def fd_tangent(rve: NonlinearRVE, E: np.ndarray, rel_step: float = 1e-7) -> np.ndarray:
    h = rel_step * np.linalg.norm(E)
    columns = []
    for k in range(E.size):
        e = np.zeros(E.size)
        e[k] = h
        plus, minus = rve.solve(E + e), rve.solve(E - e)
        assert plus.converged and minus.converged
        columns.append((plus.Sigma - minus.Sigma) / (2 * h))
    return np.column_stack(columns)


@pytest.mark.parametrize("state", ["elastic", "plastic"])
def test_tangent_matches_finite_differences(cell, state):
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=2)
    if state == "elastic":
        E = 0.05 * DIRECTION
    else:
        assert rve.solve(DIRECTION).converged
        rve.commit()
        E = 1.5 * DIRECTION + np.array([0.0, 0.002, -0.001])
    result = rve.solve(E)
    assert result.converged
    C_fd = fd_tangent(rve, E)
    error = np.linalg.norm(result.C - C_fd) / np.linalg.norm(result.C)
    assert error < 1e-6, error
    if state == "plastic":  # really plastic: softer than the elastic tangent
        elastic = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=2)
        C_el = elastic.solve(0.0 * E).C
        assert result.C[0, 0] < 0.9 * C_el[0, 0]


def test_homogeneous_cell_is_the_material_point(cell):
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": MATRIX}, degree=2)
    point = J2State.zeros(1)
    plastic_steps = 0
    for s in [0.5, 1.0, 1.5, 1.0, 0.0, -1.0, -1.5, -0.5]:  # load, unload, reverse
        E = s * DIRECTION
        result = rve.solve(E)
        assert result.converged
        sigma, C_alg, trial, plastic = return_mapping(MATRIX, plane_strain_strain(E[None]), point)
        sigma, C_alg = plane_strain_reduce(sigma, C_alg)
        plastic_steps += int(plastic[0])
        assert np.allclose(result.Sigma, sigma[0], rtol=0, atol=1e-10 * np.abs(sigma).max())
        assert np.allclose(result.C, C_alg[0], rtol=0, atol=1e-10 * np.abs(C_alg).max())
        rve.commit()
        point = trial
    assert plastic_steps >= 3


def test_newton_converges_quadratically(cell):
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=2)
    assert rve.solve(DIRECTION).converged
    rve.commit()
    result = rve.solve(2.0 * DIRECTION)
    assert result.converged
    (history,) = result.residual_history
    r = history / history[0]
    # once close (r_k < 1e-3, above the round-off floor): r_{k+1} <= C r_k^2 with a sane C
    # (a Newton with a wrong tangent converges linearly, r_{k+1} ≈ c r_k, and fails this)
    close = [(a, b) for a, b in itertools.pairwise(r) if a < 1e-3 and b > 1e-15]
    assert len(close) >= 2, r
    for a, b in close:
        assert b <= 100.0 * a**2, r
    a, b = close[-1]
    assert np.log(b) / np.log(a) > 1.8, r


def test_same_stress_on_world_and_self(cell):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    world = NonlinearRVE(cell, materials, degree=2)
    single = NonlinearRVE(fibre_cell(MPI.COMM_SELF), materials, degree=2)
    for s in (1.0, 2.0):
        a, b = world.solve(s * DIRECTION), single.solve(s * DIRECTION)
        assert a.converged and b.converged
        assert np.linalg.norm(a.Sigma - b.Sigma) < 1e-9 * np.linalg.norm(b.Sigma)
        assert np.linalg.norm(a.C - b.C) < 1e-9 * np.linalg.norm(b.C)
        world.commit()
        single.commit()


def assert_same_state(a: dict, b: dict) -> None:
    """Two states of one RVE partition agree to solver tolerance."""
    assert np.array_equal(a["E"], b["E"])
    assert np.allclose(a["x"], b["x"], rtol=0, atol=1e-8 * max(np.abs(b["x"]).max(), 1e-300))
    assert a["history"].keys() == b["history"].keys()
    for name, history in b["history"].items():
        scale = max(np.abs(history).max(), 1e-300)
        assert np.allclose(a["history"][name], history, rtol=0, atol=1e-8 * scale), name


@pytest.mark.parametrize("bc", ["periodic", "subc"])
def test_state_moves_between_partitions(bc):
    """A plastic state exported from the RVE on COMM_WORLD and imported into the same RVE on
    COMM_SELF (another partition under mpiexec), and from rank 0's back onto COMM_WORLD, is the
    state the receiving RVE reaches by itself; and the next increment from it gives the same
    response."""
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    comm = MPI.COMM_WORLD
    world = NonlinearRVE(fibre_cell(mesh_size=0.25), materials, bc=bc, degree=2)
    single = NonlinearRVE(fibre_cell(MPI.COMM_SELF, mesh_size=0.25), materials, bc=bc, degree=2)
    for rve in (world, single):
        assert rve.solve(DIRECTION).converged
        rve.commit()
    assert max(np.abs(h).max() for h in world.get_state()["history"].values()) > 0

    to_single = single.state_importer(comm.allgather(world.state_layout()))
    assert_same_state(
        to_single(comm.allgather(world.portable_state(world.get_state()))), single.get_state()
    )

    layout = comm.bcast(single.state_layout(), root=0)
    piece = comm.bcast(single.portable_state(single.get_state()), root=0)
    moved = world.state_importer([layout])([piece])
    assert_same_state(moved, world.get_state())
    expected = world.solve(1.5 * DIRECTION)
    world.set_state(moved)
    again = world.solve(1.5 * DIRECTION)
    assert again.converged
    assert np.linalg.norm(again.Sigma - expected.Sigma) < 1e-9 * np.linalg.norm(expected.Sigma)
    assert np.linalg.norm(again.C - expected.C) < 1e-8 * np.linalg.norm(expected.C)


def test_state_import_rejects_another_mesh(cell):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    coarse = NonlinearRVE(cell, materials, degree=2)
    fine = NonlinearRVE(fibre_cell(mesh_size=0.1), materials, degree=2)
    with pytest.raises(Fe2xError, match="do not fit this RVE"):
        fine.state_importer(MPI.COMM_WORLD.allgather(coarse.state_layout()))


@pytest.mark.parametrize("bc", ["periodic", "kubc", "subc"])
def test_elastic_tangent_is_the_linear_effective_stiffness(cell, bc):
    fibre = IsotropicElastic(70.0, 0.2)
    matrix = IsotropicElastic(3.0, 0.35)
    rve = NonlinearRVE(cell, {"matrix": matrix, "inclusion": fibre}, bc=bc, degree=2)
    result = rve.solve(DIRECTION)
    C_eff = (
        LinearRVE(cell, {"matrix": matrix.stiffness(2), "inclusion": fibre.stiffness(2)}, degree=2)
        .solve_unit_strains(bc)
        .C_eff
    )
    assert np.linalg.norm(result.C - C_eff) < 1e-10 * np.linalg.norm(C_eff)
    assert np.allclose(
        result.Sigma, C_eff @ DIRECTION, rtol=0, atol=1e-10 * np.abs(result.Sigma).max()
    )
    assert result.hill_mandel_residual < 1e-10


def test_state_round_trip_and_failure(cell):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    rve = NonlinearRVE(cell, materials, degree=2)
    assert rve.solve(DIRECTION).converged
    rve.commit()
    saved = rve.get_state()
    reference = rve.solve(1.5 * DIRECTION)
    rve.commit()
    rve.solve(-DIRECTION)
    rve.commit()
    rve.set_state(saved)
    again = rve.solve(1.5 * DIRECTION)
    assert np.allclose(again.Sigma, reference.Sigma, rtol=1e-12, atol=0)

    # too few Newton iterations for the full increment: substepping rescues it
    direct = NonlinearRVE(cell, materials, degree=2).solve(3.0 * DIRECTION)
    substepped = NonlinearRVE(cell, materials, degree=2, petsc_options={"snes_max_it": 4}).solve(
        3.0 * DIRECTION
    )
    assert substepped.converged and substepped.reason.startswith("converged in")
    assert len(substepped.residual_history) > 2
    assert np.linalg.norm(substepped.Sigma - direct.Sigma) < 1e-2 * np.linalg.norm(direct.Sigma)

    stubborn = NonlinearRVE(
        cell, materials, degree=2, petsc_options={"snes_max_it": 1}, max_cutbacks=1
    )
    failed = stubborn.solve(3.0 * DIRECTION)
    assert not failed.converged
    assert "DIVERGED" in failed.reason
    assert np.isnan(failed.Sigma).all()
    with pytest.raises(Fe2xError, match="nothing to commit"):
        stubborn.commit()

    wrong = dict(saved, E=np.zeros(rve.n_strain + 1))
    with pytest.raises(Fe2xError, match="macro strain components"):
        rve.set_state(wrong)


def test_warm_start_is_the_same_answer_in_fewer_iterations(cell):
    """A solve started from an earlier answer of the step (as a later macro iteration) gives the
    cold start's Σ and C to the Newton tolerance, in fewer iterations; the same state's
    fluctuation must fit."""
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=2)
    assert Capabilities.of(rve).warm
    rve.solve(DIRECTION)
    rve.commit()
    committed = rve.get_state()
    rve.solve(1.5 * DIRECTION)
    rve.commit()
    trial = rve.get_state()
    E = 1.5 * DIRECTION + np.array([2e-5, 1e-5, -1e-5])  # the next macro iterate
    rve.set_state(committed)
    cold = rve.solve(E)
    rve.set_state(committed)
    warm = rve.solve_from(E, trial)
    assert warm.converged and warm.iterations < cold.iterations
    assert np.allclose(warm.Sigma, cold.Sigma, rtol=1e-10, atol=0)
    assert np.allclose(warm.C, cold.C, rtol=1e-8, atol=1e-10 * np.abs(cold.C).max())
    with pytest.raises(Fe2xError, match="fluctuation dofs"):
        rve.solve_from(E, dict(trial, x=np.zeros(3)))


@pytest.mark.parametrize("bc", ["periodic", "subc"])
def test_a_solved_rve_is_freed(cell, bc):
    """Once unreferenced, an RVE that has solved is collected (its SNES callbacks and Schur PC
    context must not keep it, with its vectors and communicators, alive)."""
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc=bc, degree=2)
    assert rve.solve(DIRECTION).converged
    alive = weakref.ref(rve)
    del rve
    gc.collect()
    assert alive() is None


def test_volume_fractions_match_the_linear_rve(cell):
    """Phase volumes by quadrature weights equal those the linear RVE assembles as forms."""
    nonlinear = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=2)
    stiffness = {"matrix": MATRIX.stiffness(2), "inclusion": FIBRE.stiffness(2)}
    expected = LinearRVE(cell, stiffness, degree=2).volume_fractions
    assert nonlinear.volume_fractions() == pytest.approx(expected, rel=1e-12)
    assert expected["inclusion"] == pytest.approx(0.3, abs=2e-3)  # the curved P2 fibre


def test_bad_input_is_rejected(cell):
    with pytest.raises(ValueError, match="unknown linear_solver"):
        NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, linear_solver="cholesky")
    with pytest.raises(ValueError, match="only used with 'shared_elastic'"):
        NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, elastic_factorization=object())
    with pytest.raises(Fe2xError, match="below the geometry order"):
        NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, degree=1)
    with pytest.raises(Fe2xError, match="no material given"):
        NonlinearRVE(cell, {"matrix": MATRIX})


def test_subc_plastic_tangent_matches_finite_differences(cell):
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc="subc", degree=2)
    assert rve.solve(DIRECTION).converged
    rve.commit()
    E = 1.5 * DIRECTION + np.array([0.0, 0.002, -0.001])
    result = rve.solve(E)
    assert result.converged
    assert result.hill_mandel_residual < 1e-10
    C_fd = fd_tangent(rve, E)
    error = np.linalg.norm(result.C - C_fd) / np.linalg.norm(result.C)
    assert error < 1e-6, error
    elastic = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc="subc", degree=2)
    assert result.C[0, 0] < 0.9 * elastic.solve(0.0 * E).C[0, 0]


def test_elastic_step_obeys_kubc_pbc_subc_ordering(cell):
    E = 0.02 * DIRECTION  # below first yield
    results = {}
    for bc in ("kubc", "periodic", "subc"):
        result = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc=bc).solve(E)
        assert result.converged
        results[bc] = result
    work = {bc: float(E @ r.Sigma) for bc, r in results.items()}
    assert work["kubc"] > work["periodic"] > work["subc"], work
    for stiff, soft in (("kubc", "periodic"), ("periodic", "subc")):
        difference = results[stiff].C - results[soft].C
        assert np.linalg.eigvalsh(0.5 * (difference + difference.T)).min() > 0.0


@pytest.mark.parametrize("bc", ["periodic", "subc"])
def test_shared_elastic_solver_matches_lu(cell, bc):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    exact = NonlinearRVE(cell, materials, bc=bc)
    krylov = NonlinearRVE(cell, materials, bc=bc, linear_solver="shared_elastic")
    factorization = krylov.elastic_factorization
    for s in (1.0, 1.5):
        a, b = exact.solve(s * DIRECTION), krylov.solve(s * DIRECTION)
        assert a.converged and b.converged
        assert np.linalg.norm(a.Sigma - b.Sigma) < 1e-8 * np.linalg.norm(a.Sigma)
        assert np.linalg.norm(a.C - b.C) < 1e-8 * np.linalg.norm(a.C)
        exact.commit()
        krylov.commit()
    assert a.C[0, 0] < 0.9 * NonlinearRVE(cell, materials, bc=bc).solve(0.0 * DIRECTION).C[0, 0]

    # a second RVE reuses the factorization; it survives state swaps and is never redone
    state = exact.get_state()
    other = NonlinearRVE(
        cell, materials, bc=bc, linear_solver="shared_elastic", elastic_factorization=factorization
    )
    assert other.elastic_factorization is factorization
    other.set_state(state)
    a, b = exact.solve(2.0 * DIRECTION), other.solve(2.0 * DIRECTION)
    assert b.converged
    assert np.linalg.norm(a.Sigma - b.Sigma) < 1e-8 * np.linalg.norm(a.Sigma)
    assert np.linalg.norm(a.C - b.C) < 1e-8 * np.linalg.norm(a.C)
    assert factorization.applications > 0
    assert "elastic_factorization" not in other.timings

    with pytest.raises(Fe2xError, match="another microstructure"):
        NonlinearRVE(
            cell,
            {"matrix": MATRIX, "inclusion": IsotropicElastic(50.0, 0.2)},
            bc=bc,
            linear_solver="shared_elastic",
            elastic_factorization=factorization,
        )


@pytest.mark.parametrize("bc", ["periodic", "kubc", "subc"])
def test_elastic_shortcut_is_the_virgin_elastic_solve(cell, bc):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    rve = NonlinearRVE(cell, materials, bc=bc)
    E = 0.05 * DIRECTION  # first yield is near 0.38 * DIRECTION
    shortcut = rve.elastic_shortcut(E)
    assert shortcut is not None and shortcut.converged
    assert shortcut.reason == "elastic shortcut" and shortcut.iterations == 0
    reference = NonlinearRVE(cell, materials, bc=bc).solve(E)
    assert reference.converged
    assert np.linalg.norm(shortcut.Sigma - reference.Sigma) < 1e-9 * np.linalg.norm(reference.Sigma)
    assert np.linalg.norm(shortcut.C - reference.C) < 1e-9 * np.linalg.norm(reference.C)
    assert np.allclose(rve.C_elastic, shortcut.C, rtol=1e-14, atol=0)

    # beyond first yield: no shortcut, and the real solve is indeed plastic
    assert rve.elastic_shortcut(DIRECTION) is None
    assert rve.elastic_shortcut(-0.5 * DIRECTION) is None
    assert rve.elastic_shortcut(np.full(3, np.nan)) is None
    plastic = NonlinearRVE(cell, materials, bc=bc).solve(DIRECTION)
    assert plastic.converged
    assert np.linalg.norm(plastic.C - shortcut.C) > 1e-2 * np.linalg.norm(shortcut.C)


def test_elastic_shortcut_leaves_the_state_alone(cell):
    materials = {"matrix": MATRIX, "inclusion": FIBRE}
    reference = NonlinearRVE(cell, materials)
    first = reference.solve(DIRECTION)
    reference.commit()
    second = reference.solve(1.5 * DIRECTION)
    reference.commit()

    rve = NonlinearRVE(cell, materials)
    virgin = rve.elastic_shortcut(0.1 * DIRECTION)
    assert virgin is not None
    a = rve.solve(DIRECTION)
    assert rve.elastic_shortcut(0.1 * DIRECTION) is not None  # between solve and commit
    rve.commit()
    again = rve.elastic_shortcut(0.1 * DIRECTION)  # plastic committed state: still virgin answer
    assert again is not None and np.array_equal(again.Sigma, virgin.Sigma)
    b = rve.solve(1.5 * DIRECTION)
    rve.commit()
    for x, y in ((a, first), (b, second)):
        assert x.converged
        assert np.allclose(x.Sigma, y.Sigma, rtol=1e-12, atol=0)
        assert np.allclose(x.C, y.C, rtol=1e-12, atol=1e-14 * np.abs(y.C).max())
    state, expected = rve.get_state(), reference.get_state()
    assert np.allclose(state["x"], expected["x"], rtol=1e-12, atol=1e-14)
    for name, history in expected["history"].items():
        assert np.allclose(state["history"][name], history, rtol=1e-12, atol=1e-16)


def _domain_mean(f, rve):
    local = fem.assemble_scalar(fem.form(f * ufl.dx(domain=rve.cell.mesh)))
    return rve.comm.allreduce(local, op=MPI.SUM) / rve.volume


def test_micro_fields_of_the_committed_state(cell):
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE})
    virgin = rve.get_state()
    assert rve.mean_equivalent_plastic_strain == 0.0
    assert rve.solve(DIRECTION).converged
    assert rve.mean_equivalent_plastic_strain == 0.0  # not committed yet
    rve.commit()
    fields = rve.micro_fields()
    assert set(fields) == {"equivalent_plastic_strain", "von_mises_stress"}
    p = fields["equivalent_plastic_strain"]
    mean_p = rve.mean_equivalent_plastic_strain
    assert mean_p > 0.0
    assert abs(_domain_mean(p, rve) - mean_p) < 1e-12 * mean_p
    assert rve.comm.allreduce(p.x.array.max(), op=MPI.MAX) > 0.0
    inclusion = cell.cell_tags.find(cell.phases["inclusion"])
    assert np.all(p.x.array[p.function_space.dofmap.list[inclusion, 0]] == 0.0)
    assert rve.comm.allreduce(fields["von_mises_stress"].x.array.min(), op=MPI.MIN) > 0.0
    rve.set_state(virgin)  # the fields follow the committed state
    assert rve.mean_equivalent_plastic_strain == 0.0
    assert np.all(rve.micro_fields()["von_mises_stress"].x.array == 0.0)


@pytest.mark.parametrize("nu", [0.0, 0.3])
def test_von_mises_of_a_homogeneous_elastic_cell(cell, nu):
    material = IsotropicElastic(2.0, nu)
    rve = NonlinearRVE(cell, {"matrix": material, "inclusion": material})
    e = -0.01
    assert rve.solve([e, 0.0, 0.0]).converged
    rve.commit()
    von_mises = rve.micro_fields()["von_mises_stress"].x.array
    # ν = 0: uniaxial stress, σ_vm = |σ11| = E |e|; ν > 0: uniaxial strain (σ33 = σ22 = λ e),
    # σ_vm = |σ11 − σ22| = 2 μ |e| (it would differ without σ33)
    expected = 2.0 * abs(e) if nu == 0.0 else 2.0 / (1.0 + nu) * abs(e)
    assert np.allclose(von_mises, expected, rtol=1e-10, atol=0)
    assert rve.mean_equivalent_plastic_strain == 0.0
