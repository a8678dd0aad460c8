"""Macro problem: homogeneous exact solutions, Newton rates, tractions, rank independence."""

import gc
import weakref

from mpi4py import MPI

import numpy as np
import pytest
from dolfinx import mesh

from fe2x.errors import Fe2xError
from fe2x.macro import DirichletSpec, MacroProblem, TractionSpec
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity, J2State, plane_strain_reduce, plane_strain_strain
from fe2x.materials.j2 import return_mapping as j2_return_mapping

LEFT, RIGHT, BOTTOM, BACK = 1, 2, 3, 4
SIZE = (2.0, 1.0, 0.5)
ELASTIC = IsotropicElastic(10.0, 0.3)
PLASTIC = J2Plasticity(E=10.0, nu=0.3, sigma_y=0.02, H=1.0, H_kin=0.5)


def block(comm: MPI.Comm, dim: int, n: int = 6) -> tuple[mesh.Mesh, mesh.MeshTags]:
    """Block [0, L]×[0, H](×[0, W]) with facets tagged left, right, bottom (, back z = 0)."""
    if dim == 2:
        msh = mesh.create_rectangle(comm, [[0.0, 0.0], list(SIZE[:2])], [2 * n, n])
    else:
        msh = mesh.create_box(comm, [[0.0, 0.0, 0.0], list(SIZE)], [2 * n, n, max(n // 2, 1)])
    planes = [(LEFT, 0, 0.0), (RIGHT, 0, SIZE[0]), (BOTTOM, 1, 0.0), (BACK, 2, 0.0)][: dim + 1]
    facets, values = [], []
    for tag, axis, where in planes:
        found = mesh.locate_entities_boundary(
            msh, dim - 1, lambda x, a=axis, w=where: np.isclose(x[a], w)
        )
        facets.append(found)
        values.append(np.full(found.size, tag, dtype=np.int32))
    facets, values = np.concatenate(facets), np.concatenate(values)
    order = np.argsort(facets)
    return msh, mesh.meshtags(msh, dim - 1, facets[order], values[order])


def symmetry_bcs(dim: int, delta: float) -> list[DirichletSpec]:
    """u_x = 0 left, u_x = δ right, u_y = 0 bottom (, u_z = 0 back)."""
    bcs = [DirichletSpec(LEFT, 0, 0.0), DirichletSpec(RIGHT, 0, delta), DirichletSpec(BOTTOM, 1)]
    return bcs + ([DirichletSpec(BACK, 2)] if dim == 3 else [])


def elastic_law(dim: int):
    C = ELASTIC.stiffness(dim)

    def law(E):
        return E @ C.T, np.broadcast_to(C, (E.shape[0], *C.shape)).copy(), True

    return law


class J2Law:
    """Plane-strain J2 at the macro points, with the committed history kept here."""

    def __init__(self, n_points: int) -> None:
        self.committed = J2State.zeros(n_points)
        self.trial = self.committed

    def __call__(self, E):
        sigma, C, self.trial, _ = j2_return_mapping(PLASTIC, plane_strain_strain(E), self.committed)
        return (*plane_strain_reduce(sigma, C), True)

    def commit(self) -> None:
        self.committed = self.trial


def cross_section(dim: int) -> float:
    return SIZE[1] * (SIZE[2] if dim == 3 else 1.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_uniaxial_tension_is_exact(dim):
    msh, tags = block(MPI.COMM_WORLD, dim, n=6 if dim == 2 else 2)
    delta = 0.01
    problem = MacroProblem(msh, tags, dim, dirichlet=symmetry_bcs(dim, delta))
    result = problem.solve_step(1.0, elastic_law(dim))
    assert result.converged
    eps = delta / SIZE[0]
    E, nu = ELASTIC.E, ELASTIC.nu
    if dim == 2:  # plane strain, σ_yy = 0
        stiffness, lateral = E / (1.0 - nu**2), -nu / (1.0 - nu) * eps
        expected = [eps, lateral, 0.0]
    else:  # uniaxial stress
        stiffness, lateral = E, -nu * eps
        expected = [eps, lateral, lateral, 0.0, 0.0, 0.0]
    force = stiffness * eps * cross_section(dim)
    assert np.allclose(problem.strains(), expected, rtol=0.0, atol=1e-12)
    right, left = problem.reactions(RIGHT), problem.reactions(LEFT)
    assert np.allclose(right, np.eye(dim)[0] * force, rtol=0.0, atol=1e-10 * force)
    assert np.allclose(left, -right, rtol=0.0, atol=1e-10 * force)
    assert problem.n_points == problem.strains().shape[0] == problem.point_coordinates.shape[0]


def test_linear_law_converges_in_one_iteration():
    msh, tags = block(MPI.COMM_WORLD, 2)
    bcs = [DirichletSpec(LEFT), DirichletSpec(RIGHT, None, 0.01)]  # clamped: non-uniform
    problem = MacroProblem(msh, tags, 2, degree=2, dirichlet=bcs)
    result = problem.solve_step(1.0, elastic_law(2))
    assert result.converged and result.iterations == 1
    assert result.residual_history[1] <= 1e-10 * result.residual_history[0]
    assert result.evaluations == 2
    assert all(count == 2 for count in MPI.COMM_WORLD.allgather(result.evaluations))


def test_a_solved_problem_is_freed():
    """Once unreferenced, a MacroProblem that has solved is collected (its SNES callbacks must
    not keep it, with its meshes, vectors and communicators, alive)."""
    msh, tags = block(MPI.COMM_WORLD, 2)
    problem = MacroProblem(
        msh, tags, 2, dirichlet=[DirichletSpec(LEFT), DirichletSpec(RIGHT, 0, 0.01)]
    )
    assert problem.solve_step(1.0, elastic_law(2)).converged
    alive = weakref.ref(problem)
    del problem
    gc.collect()
    assert alive() is None


def test_j2_newton_converges_quadratically():
    msh, tags = block(MPI.COMM_WORLD, 2)
    bcs = [DirichletSpec(LEFT), DirichletSpec(RIGHT, 0, 0.02), DirichletSpec(RIGHT, 1, 0.0)]
    problem = MacroProblem(msh, tags, 2, degree=2, dirichlet=bcs)
    law = J2Law(problem.n_points)
    for load_factor in (0.5, 1.0):
        result = problem.solve_step(load_factor, law)
        assert result.converged, result.reason
        law.commit()
        r = np.array(result.residual_history)
        assert r[-1] <= 1e-10 * r[0]
        counts = MPI.COMM_WORLD.allgather(result.evaluations)
        assert counts == [result.iterations + 1] * MPI.COMM_WORLD.size
        # Terminal rate p in r_k+1 ~ r_k^p over the last iterations above round-off (the first
        # ones are pre-asymptotic while the plastic zone settles); 1 for a secant tangent.
        r = r[r > 1e-15 * r[0]]
        e = np.log(r / r[0])
        assert r.size >= 4
        rates = [(e[k] - e[k - 1]) / (e[k - 1] - e[k - 2]) for k in (-1, -2)]
        assert max(rates) > 1.7, (rates, r / r[0])
    plastic = law.committed.p > 0
    assert MPI.COMM_WORLD.allreduce(int(np.count_nonzero(plastic)), op=MPI.SUM) > 0


@pytest.mark.parametrize("dim", [2, 3])
def test_traction_gives_uniform_stress(dim):
    msh, tags = block(MPI.COMM_WORLD, dim, n=4 if dim == 2 else 2)
    t = 0.05
    bcs = symmetry_bcs(dim, 0.0)
    bcs.pop(1)  # right edge free: loaded by the traction
    problem = MacroProblem(
        msh, tags, dim, dirichlet=bcs, tractions=[TractionSpec(RIGHT, [t] + [0.0] * (dim - 1))]
    )
    result = problem.solve_step(1.0, elastic_law(dim))
    assert result.converged
    expected = np.eye(3 if dim == 2 else 6)[0] * t
    assert problem.stresses().shape == (problem.n_points, expected.size)
    assert np.allclose(problem.stresses(), expected, rtol=0.0, atol=1e-10 * t)
    strain = ELASTIC.compliance(dim) @ expected
    assert np.allclose(problem.strains(), strain, rtol=0.0, atol=1e-10 * np.abs(strain).max())
    force = t * cross_section(dim)
    assert np.allclose(problem.reactions(LEFT), -force * np.eye(dim)[0], atol=1e-10 * force)
    assert np.allclose(problem.reactions(RIGHT), 0.0, atol=1e-10 * force)


def reaction_after_two_plastic_steps(comm: MPI.Comm) -> np.ndarray:
    msh, tags = block(comm, 2, n=4)
    bcs = [DirichletSpec(LEFT), DirichletSpec(RIGHT, 0, 0.02), DirichletSpec(RIGHT, 1, 0.005)]
    problem = MacroProblem(msh, tags, 2, dirichlet=bcs, petsc_options_prefix="fe2x_test_ranks_")
    law = J2Law(problem.n_points)
    for load_factor in (0.5, 1.0):
        assert problem.solve_step(load_factor, law).converged
        law.commit()
    return problem.reactions(RIGHT)


def test_reactions_do_not_depend_on_the_number_of_ranks():
    serial = reaction_after_two_plastic_steps(MPI.COMM_SELF)
    parallel = reaction_after_two_plastic_steps(MPI.COMM_WORLD)
    assert np.allclose(parallel, serial, rtol=0.0, atol=1e-10 * np.abs(serial).max())


@pytest.mark.parametrize("dim", [2, 3])
def test_point_ids_are_global_and_rank_independent(dim):
    comm = MPI.COMM_WORLD
    problems = {}
    for name, c in (("self", MPI.COMM_SELF), ("world", comm)):
        msh, tags = block(c, dim, n=4 if dim == 2 else 2)
        problems[name] = MacroProblem(msh, tags, dim, degree=2)
    world, serial = problems["world"], problems["self"]
    ids = np.concatenate(comm.allgather(world.point_ids))
    coordinates = np.concatenate(comm.allgather(world.point_coordinates))
    assert ids.size == np.unique(ids).size == serial.n_points
    order = np.argsort(serial.point_ids)
    position = np.searchsorted(serial.point_ids[order], ids)
    assert np.array_equal(serial.point_ids[order][position], ids)
    assert np.allclose(coordinates, serial.point_coordinates[order][position], atol=1e-14)


def test_failed_constitutive_update_fails_the_step_and_state_restores():
    msh, tags = block(MPI.COMM_WORLD, 2, n=3)
    problem = MacroProblem(msh, tags, 2, dirichlet=symmetry_bcs(2, 0.01))
    elastic = elastic_law(2)
    assert problem.solve_step(0.5, elastic).converged
    saved = problem.save_state()
    calls = []

    def failing(E):
        calls.append(1)
        stress, tangent, _ = elastic(E)
        # one rank failing (the last) on the second call is enough to stop every rank
        return stress, tangent, not (len(calls) == 2 and problem.comm.rank == problem.comm.size - 1)

    result = problem.solve_step(1.0, failing)
    assert not result.converged
    assert result.reason == "DIVERGED_FUNCTION_NANORINF"
    assert MPI.COMM_WORLD.allgather(len(calls)) == [2] * MPI.COMM_WORLD.size
    problem.restore_state(saved)
    assert np.array_equal(problem.u.x.array, saved["u"])
    assert problem.solve_step(1.0, elastic).converged
    force = ELASTIC.E / (1 - ELASTIC.nu**2) * 0.01 / SIZE[0] * SIZE[1]
    assert np.isclose(problem.reactions(RIGHT)[0], force, rtol=1e-10)


def test_unknown_boundary_tag_raises():
    msh, tags = block(MPI.COMM_WORLD, 2, n=2)
    with pytest.raises(Fe2xError, match=r"boundary tag\(s\) \[7\] mark no facet"):
        MacroProblem(msh, tags, 2, dirichlet=[DirichletSpec(7)])
