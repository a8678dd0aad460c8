"""Tests of the periodic gmsh cells: phase volumes, periodic nodes, file reading, bad input."""

from pathlib import Path

from mpi4py import MPI

import dolfinx
import gmsh
import numpy as np
import pytest
import ufl

from fe2x.errors import GeometryError
from fe2x.geometry import (
    inclusion_cell,
    laminate_cell,
    on_boundary,
    periodic_images,
    random_cell,
    read_cell,
)
from fe2x.geometry.packing import ball_volume, random_sequential_addition

COMMS = [MPI.COMM_WORLD, MPI.COMM_SELF]


def phase_volumes(rve):
    dx = ufl.Measure("dx", domain=rve.mesh, subdomain_data=rve.cell_tags)
    comm = rve.mesh.comm
    return {
        name: comm.allreduce(
            dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * dx(tag))), op=MPI.SUM
        )
        for name, tag in rve.phases.items()
    }


def gathered_boundary_points(rve, degree=None):
    """Mesh nodes (or P``degree`` dof coordinates) on the cell faces, from all ranks."""
    dim = rve.mesh.geometry.dim
    if degree is None:
        x = rve.mesh.geometry.x[:, :dim]
    else:
        V = dolfinx.fem.functionspace(rve.mesh, ("Lagrange", degree))
        x = V.tabulate_dof_coordinates()[:, :dim]
    x = x[on_boundary(x, rve.origin, rve.lengths)]
    x = np.vstack(rve.mesh.comm.allgather(x))
    return np.unique(np.round(x, 12), axis=0)


def brute_force_periodic(x, origin, lengths, tol=1e-9):
    """Every point on an upper face has its translate(s) to the lower faces in the set."""
    dim = x.shape[1]
    for axis in range(dim):
        on_upper = np.abs(x[:, axis] - origin[axis] - lengths[axis]) < tol
        shifted = x[on_upper].copy()
        shifted[:, axis] -= lengths[axis]
        dist = np.abs(shifted[:, None, :] - x[None, :, :]).max(axis=2).min(axis=1)
        assert dist.max() < tol, f"axis {axis}: {shifted[np.argmax(dist)]} has no partner"


def assert_periodic(rve, degree=None):
    x = gathered_boundary_points(rve, degree)
    master = periodic_images(x, rve.origin, rve.lengths)
    upper = np.isclose(x, rve.origin + rve.lengths, rtol=0, atol=1e-9)
    assert np.allclose(x[master], np.where(upper, rve.origin, x), atol=1e-9)
    brute_force_periodic(x, rve.origin, rve.lengths)


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_volumes_exact(comm, dim):
    L = [1.0, 2.0, 0.5][:dim]
    rve = laminate_cell(
        comm, dim, L, [0.2, 0.5, 0.3], axis=1, mesh_size=0.4, phase_names=["a", "b", "a"]
    )
    assert rve.phases == {"a": 1, "b": 2}
    vol = phase_volumes(rve)
    total = float(np.prod(L))
    assert abs(vol["a"] - 0.5 * total) < 1e-12
    assert abs(vol["b"] - 0.5 * total) < 1e-12
    assert np.array_equal(rve.lengths, L) and np.array_equal(rve.origin, np.zeros(dim))
    assert_periodic(rve)


def test_laminate_default_names():
    rve = laminate_cell(MPI.COMM_WORLD, 2, [1, 1], [0.25, 0.75], axis=0, mesh_size=0.3)
    assert rve.phases == {"layer0": 1, "layer1": 2}
    vol = phase_volumes(rve)
    assert abs(vol["layer0"] - 0.25) < 1e-12 and abs(vol["layer1"] - 0.75) < 1e-12


@pytest.mark.parametrize(("dim", "size", "tol2"), [(2, 0.1, 2e-4), (3, 0.25, 2e-3)])
def test_inclusion_volume_improves_with_geometry_order(dim, size, tol2):
    L = np.array([1.0, 1.2, 1.1][:dim])
    vf = 0.25
    errors = {}
    for order in (1, 2):
        rve = inclusion_cell(MPI.COMM_WORLD, dim, L, vf, size, geometry_order=order)
        assert rve.phases == {"matrix": 1, "inclusion": 2}
        vol = phase_volumes(rve)
        assert vol["matrix"] + vol["inclusion"] == pytest.approx(np.prod(L), rel=1e-12)
        errors[order] = abs(vol["inclusion"] / np.prod(L) - vf) / vf
        assert_periodic(rve, degree=order)
    assert errors[2] < tol2
    assert errors[2] < 0.2 * errors[1]


@pytest.mark.parametrize("comm", COMMS)
def test_inclusion_3d_p2_dofs_periodic(comm):
    rve = inclusion_cell(comm, 3, [1.0, 1.0, 1.0], 0.2, 0.3, geometry_order=2)
    assert rve.mesh.geometry.cmaps[0].degree == 2
    assert_periodic(rve)
    assert_periodic(rve, degree=2)


@pytest.mark.parametrize(("dim", "size"), [(2, 0.08), (3, 0.2)])
def test_random_cell_volume_and_periodicity(dim, size):
    L = np.array([1.0, 1.2, 1.0][:dim])
    kwargs = {"seed": 5, "min_gap": 0.03, "number": 6}
    rve = random_cell(MPI.COMM_WORLD, dim, L, 0.25, size, **kwargs)
    centres, r = random_sequential_addition(dim, L, 0.25, kwargs["min_gap"], 5, number=6)
    target = len(centres) * ball_volume(dim, r)
    vol = phase_volumes(rve)
    assert vol["inclusion"] == pytest.approx(target, rel=2e-3 if dim == 2 else 1.5e-2)
    # Curved P2 elements on coarse, face-crossing inclusions may fold slightly (see cells.py).
    assert vol["matrix"] + vol["inclusion"] == pytest.approx(np.prod(L), rel=1e-4)
    assert_periodic(rve, degree=2)
    # The same seed gives the same cell on a single rank.
    alone = random_cell(MPI.COMM_SELF, dim, L, 0.25, size, **kwargs)
    assert phase_volumes(alone)["inclusion"] == pytest.approx(vol["inclusion"], rel=1e-10)


def _write_on_root(tmp_path, name, build):
    """Run ``build(path)`` with gmsh on rank 0 and broadcast the path of the file it writes."""
    comm = MPI.COMM_WORLD
    path = None
    if comm.rank == 0:
        path = str(Path(tmp_path) / name)
        initialized = gmsh.isInitialized()
        if not initialized:
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add(name)
        build(path)
        gmsh.model.remove()
        if not initialized:
            gmsh.finalize()
    return comm.bcast(path, root=0)


def _square_with_disk(periodic):
    def build(path):
        occ = gmsh.model.occ
        box = occ.addRectangle(0.0, 0.0, 0.0, 2.0, 1.0)
        disk = occ.addDisk(1.0, 0.5, 0.0, 0.3, 0.3)
        _, out_map = occ.fragment([(2, box)], [(2, disk)])
        occ.synchronize()
        fibre = [t for _, t in out_map[1]]
        matrix = [t for _, t in out_map[0] if t not in fibre]
        gmsh.model.addPhysicalGroup(2, matrix, tag=3, name="matrix")
        gmsh.model.addPhysicalGroup(2, fibre, tag=7, name="fibre")
        if periodic:
            gmsh.model.mesh.setPeriodic(
                1, [2], [4], [1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
            )
            gmsh.model.mesh.setPeriodic(
                1, [3], [1], [1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
            )
        else:
            # Fine on the left, coarse on the right: opposite faces cannot match.
            gmsh.model.mesh.setSize([(0, 1), (0, 4)], 0.05)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.2)
        gmsh.model.mesh.generate(2)
        gmsh.model.mesh.setOrder(2)
        gmsh.write(path)

    return build


def median_edge_length(rve) -> float:
    """Median length of the straight edges (between vertices) of the whole mesh."""
    mesh = rve.mesh
    mesh.topology.create_entities(1)
    mesh.topology.create_connectivity(1, mesh.topology.dim)
    owned = np.arange(mesh.topology.index_map(1).size_local, dtype=np.int32)
    ends = dolfinx.mesh.entities_to_geometry(mesh, 1, owned)
    x = mesh.geometry.x
    lengths = np.concatenate(
        mesh.comm.allgather(np.linalg.norm(x[ends[:, 0]] - x[ends[:, -1]], axis=1))
    )
    return float(np.median(lengths))


@pytest.mark.parametrize("mesh_size", [0.5, 0.2])
@pytest.mark.parametrize(
    "build",
    [
        lambda h: laminate_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], [0.5, 0.5], 0, h, geometry_order=1),
        lambda h: inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, h, geometry_order=1),
        lambda h: inclusion_cell(MPI.COMM_WORLD, 3, [1.0] * 3, 0.2, h, geometry_order=1),
    ],
    ids=["laminate-2d", "inclusion-2d", "inclusion-3d"],
)
def test_mesh_size_sets_the_element_size(build, mesh_size):
    """Elements are about mesh_size, also when it is coarse (not capped by gmsh's point sizes)."""
    assert 0.5 * mesh_size <= median_edge_length(build(mesh_size)) <= 1.25 * mesh_size


def test_read_cell_periodic_file(tmp_path):
    path = _write_on_root(tmp_path, "periodic.msh", _square_with_disk(periodic=True))
    rve = read_cell(MPI.COMM_WORLD, path)
    assert rve.phases == {"matrix": 3, "fibre": 7}
    assert np.allclose(rve.origin, [0, 0]) and np.allclose(rve.lengths, [2, 1])
    vol = phase_volumes(rve)
    assert vol["fibre"] == pytest.approx(np.pi * 0.09, rel=1e-3)
    assert vol["matrix"] + vol["fibre"] == pytest.approx(2.0, rel=1e-12)
    assert_periodic(rve, degree=2)
    with pytest.raises(GeometryError, match="expected 3"):
        read_cell(MPI.COMM_WORLD, path, dim=3)


def test_read_cell_non_periodic_file(tmp_path):
    path = _write_on_root(tmp_path, "skewed.msh", _square_with_disk(periodic=False))
    with pytest.raises(GeometryError, match=r"skewed\.msh is not periodic: point \(.*\) on face"):
        read_cell(MPI.COMM_WORLD, path)


def test_read_cell_missing_file(tmp_path):
    path = MPI.COMM_WORLD.bcast(str(tmp_path / "nothere.msh"), root=0)
    with pytest.raises(GeometryError, match=r"mesh file not found: .*nothere\.msh"):
        read_cell(MPI.COMM_WORLD, path)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda c: inclusion_cell(c, 4, [1, 1], 0.2, 0.1), "dim must be 2 or 3"),
        (lambda c: inclusion_cell(c, 2, [1, 1, 1], 0.2, 0.1), "lengths must be 2 positive"),
        (lambda c: inclusion_cell(c, 2, [1, -1], 0.2, 0.1), "lengths must be 2 positive"),
        (lambda c: inclusion_cell(c, 2, [1, 1], 0.0, 0.1), "volume_fraction must be in"),
        (lambda c: inclusion_cell(c, 2, [1, 1], 0.75, 0.1), r"centred circle in a 1 x 1 cell"),
        (lambda c: inclusion_cell(c, 3, [1, 1, 1], 0.5, 0.1), "centred sphere"),
        (lambda c: inclusion_cell(c, 2, [1, 1], 0.2, 0.0), "mesh_size must be positive"),
        (lambda c: inclusion_cell(c, 2, [1, 1], 0.2, 0.1, 3), "geometry_order must be 1 or 2"),
        (lambda c: laminate_cell(c, 2, [1, 1], [0.5, 0.6], 0, 0.1), "sum to 1"),
        (lambda c: laminate_cell(c, 2, [1, 1], [1.2, -0.2], 0, 0.1), "positive and sum"),
        (lambda c: laminate_cell(c, 2, [1, 1], [0.5, 0.5], 2, 0.1), "axis must be 0..1"),
        (lambda c: laminate_cell(c, 2, [1, 1], [0.5, 0.5], 0, 0.1, 2, ["a"]), "1 phase names"),
        (lambda c: random_cell(c, 2, [1, 1], 0.2, 0.1, 0, 0.01), "exactly one of radius"),
        (
            lambda c: random_cell(c, 2, [1, 1], 0.6, 0.1, 0, 0.05, number=40, max_attempts=2000),
            "reached vf",
        ),
        (lambda c: random_cell(c, 2, [1, 1], 0.3, 0.1, 0, 0.05, radius=0.5), "too large"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises(GeometryError, match=match):
        build(MPI.COMM_WORLD)
