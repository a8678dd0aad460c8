"""Tests of voxel cells: label -> cell tag and cell data on any rank count, the axis convention,
periodic meshes, the image seam check and its mirror/trim/ignore options, voxelized volumes."""

from mpi4py import MPI

import dolfinx
import numpy as np
import pytest
import ufl
from dolfinx.geometry import bb_tree, compute_colliding_cells, compute_collisions_points

from fe2x.errors import GeometryError
from fe2x.geometry.periodicity import on_boundary
from fe2x.geometry.tessellation import grain_labels, random_seeds
from fe2x.geometry.voxels import (
    as_labels,
    check_periodic_labels,
    make_periodic,
    voxel_cell,
)

COMMS = [MPI.COMM_WORLD, MPI.COMM_SELF]


def centres(shape, lengths, origin):
    h = np.asarray(lengths) / np.asarray(shape)
    axes = [o + (np.arange(n) + 0.5) * hi for n, hi, o in zip(shape, h, origin, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))


def owned_cell_at(mesh, points):
    """The owned local cell containing each point (DOLFINx point location), -1 if none here."""
    dim = mesh.geometry.dim
    x = np.zeros((points.shape[0], 3))
    x[:, :dim] = points
    tdim = mesh.topology.dim
    tree = bb_tree(mesh, tdim)
    colliding = compute_colliding_cells(mesh, compute_collisions_points(tree, x), x)
    n_owned = mesh.topology.index_map(tdim).size_local
    cell = np.full(points.shape[0], -1)
    for p in range(points.shape[0]):
        links = colliding.links(p)
        links = links[links < n_owned]
        if links.size:
            cell[p] = links[0]
    return cell


def check_voxels(rve, labels, tag_of_label, data=None):
    """Every voxel centre lies in exactly one owned cell over all ranks, tagged as its label."""
    x = centres(labels.shape, rve.lengths, rve.origin)
    cell = owned_cell_at(rve.mesh, x)
    found = cell >= 0
    values = dict(zip(rve.cell_tags.indices.tolist(), rve.cell_tags.values.tolist(), strict=True))
    expected = np.array([tag_of_label[v] for v in labels.ravel()])
    got = np.array([values[c] for c in cell[found]])
    assert np.array_equal(got, expected[found])
    for name, v in (data or {}).items():
        flat = v.reshape(-1, *v.shape[labels.ndim :])
        assert np.array_equal(rve.cell_data[name][cell[found]], flat[found])
    counts = rve.mesh.comm.allreduce(found.astype(int), op=MPI.SUM)
    assert np.all(counts == 1)


def phase_volumes(rve):
    dx = ufl.Measure("dx", domain=rve.mesh, subdomain_data=rve.cell_tags)
    return {
        name: rve.mesh.comm.allreduce(
            dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * dx(tag))), op=MPI.SUM
        )
        for name, tag in rve.phases.items()
    }


def assert_mesh_periodic(rve):
    """Brute force: every node on an upper face has its translate on the lower face."""
    dim = rve.mesh.geometry.dim
    x = rve.mesh.geometry.x[:, :dim]
    x = x[on_boundary(x, rve.origin, rve.lengths)]
    x = np.vstack(rve.mesh.comm.allgather(x))
    for axis in range(dim):
        upper = np.isclose(x[:, axis], rve.origin[axis] + rve.lengths[axis])
        shifted = x[upper].copy()
        shifted[:, axis] -= rve.lengths[axis]
        dist = np.abs(shifted[:, None, :] - x[None, :, :]).max(axis=2).min(axis=1)
        assert dist.max() < 1e-12


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 5)])
def test_every_cell_gets_its_voxel_label(comm, shape):
    rng = np.random.default_rng(3)
    labels = rng.integers(-2, 3, shape)
    dim = len(shape)
    lengths = np.array([2.0, 0.75, 1.5][:dim])
    origin = np.array([-1.0, 0.5, 2.0][:dim])
    data = {"id": np.arange(labels.size).reshape(shape), "vector": rng.random((*shape, 3))}
    rve = voxel_cell(comm, labels, lengths, origin=origin, cell_data=data)
    present = sorted(set(labels.ravel().tolist()))
    assert rve.phases == {f"phase{v}": k + 1 for k, v in enumerate(present)}
    check_voxels(rve, labels, {v: k + 1 for k, v in enumerate(present)}, data)
    n_local = rve.mesh.topology.index_map(dim).size_local
    assert rve.cell_data["vector"].shape[1:] == (3,)
    assert rve.cell_data["id"].shape[0] >= n_local
    assert np.allclose(rve.lengths, lengths) and np.allclose(rve.origin, origin)
    assert rve.mesh.topology.cell_name() == ("quadrilateral" if dim == 2 else "hexahedron")
    assert_mesh_periodic(rve)


@pytest.mark.parametrize("comm", COMMS)
def test_axis_convention_index_is_x_y_z(comm):
    labels = np.zeros((2, 3, 4), dtype=int)
    labels[0, 1, 2] = 7
    rve = voxel_cell(comm, labels, lengths=[2.0, 3.0, 4.0])
    cell = owned_cell_at(rve.mesh, np.array([[0.5, 1.5, 2.5]]))[0]
    tags = dict(zip(rve.cell_tags.indices.tolist(), rve.cell_tags.values.tolist(), strict=True))
    if cell >= 0:
        assert tags[cell] == rve.phases["phase7"]
    assert rve.mesh.comm.allreduce(int(cell >= 0)) == 1
    assert phase_volumes(rve)["phase7"] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("comm", COMMS)
def test_shared_phase_names_and_tag_order(comm):
    labels = np.array([[5, 2, 9], [2, 9, 5]])
    rve = voxel_cell(comm, labels, phases={2: "matrix", 5: "fibre", 9: "matrix"})
    assert rve.phases == {"matrix": 1, "fibre": 2}
    check_voxels(rve, labels, {2: 1, 9: 1, 5: 2})
    vol = phase_volumes(rve)
    assert vol["matrix"] == pytest.approx(4.0) and vol["fibre"] == pytest.approx(2.0)


def test_periodic_tessellation_passes_seam_check():
    L = np.ones(3)
    for seed in range(5):
        labels = grain_labels((12, 12, 12), L, random_seeds(3, L, 10, seed))
        assert all(c.periodic for c in check_periodic_labels(labels))
    noise = np.random.default_rng(0).integers(0, 2, (16, 16, 16))
    assert all(c.periodic for c in check_periodic_labels(noise))
    laminate = np.repeat([0, 0, 1, 1, 1, 2, 2, 2], 1)[:, None].repeat(4, axis=1)
    assert all(c.periodic for c in check_periodic_labels(laminate))


def half_disk_image(n=32):
    """A disk centred on the face x = L, cut there (not wrapped): not periodic in x."""
    x = centres((n, n), [1.0, 1.0], [0.0, 0.0]).reshape(n, n, 2)
    return (np.hypot(x[..., 0] - 1.0, x[..., 1] - 0.5) < 0.12).astype(int)


def test_cut_image_refused_naming_faces():
    labels = half_disk_image()
    checks = check_periodic_labels(labels)
    assert [c.periodic for c in checks] == [False, True]
    assert checks[0].seam > 0.2 and checks[0].interior < 0.05
    with pytest.raises(GeometryError, match=r"faces x=0 and x=L differ in \d+\.\d% .*mirror"):
        voxel_cell(MPI.COMM_WORLD, labels)
    with pytest.raises(GeometryError, match="periodicity must be one of"):
        voxel_cell(MPI.COMM_WORLD, labels, periodicity="wrap")


@pytest.mark.parametrize("comm", COMMS)
def test_mirror_doubles_failing_axis_and_is_periodic(comm):
    labels = half_disk_image()
    index = make_periodic(labels, "mirror")
    mirrored = labels[np.ix_(*index)]
    assert mirrored.shape == (64, 32)
    assert np.array_equal(mirrored[32:], labels[::-1])
    assert all(c.periodic for c in check_periodic_labels(mirrored))
    rve = voxel_cell(comm, labels, lengths=[1.0, 1.0], periodicity="mirror")
    assert np.allclose(rve.lengths, [2.0, 1.0])
    check_voxels(rve, mirrored, {0: 1, 1: 2})
    vol = phase_volumes(rve)
    assert vol["phase1"] == pytest.approx(2 * labels.sum() / labels.size, rel=1e-12)


def test_trim_removes_cut_layers():
    labels = half_disk_image()
    index = make_periodic(labels, "trim")
    assert index[1].size == 32 and 24 <= index[0].size < 32
    trimmed = labels[np.ix_(*index)]
    assert all(c.periodic for c in check_periodic_labels(trimmed))
    rve = voxel_cell(MPI.COMM_WORLD, labels, lengths=[1.0, 1.0], periodicity="trim")
    assert np.allclose(rve.lengths, [index[0].size / 32, 1.0])
    i, j = np.meshgrid(np.arange(32), np.arange(64), indexing="ij")
    wedge = (j < 2 * i + 1).astype(int)  # an interface rising across x: no seam anywhere
    with pytest.raises(GeometryError, match="finds no periodic seam along x"):
        make_periodic(wedge, "trim")


def test_ignore_keeps_image():
    labels = half_disk_image()
    assert [i.size for i in make_periodic(labels, "ignore")] == [32, 32]
    rve = voxel_cell(MPI.COMM_WORLD, labels, periodicity="ignore")
    assert np.allclose(rve.lengths, [32, 32])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros(4), "2D or 3D array"),
        (np.zeros((2, 0)), "empty axis"),
        (np.array([[0.5, 1.0]]), "must be integers; 1 of 2"),
        (np.array([["a", "b"]]), "must be integers, got dtype"),
    ],
)
def test_bad_labels(labels, match):
    with pytest.raises(GeometryError, match=match):
        voxel_cell(MPI.COMM_WORLD, labels)


def test_bad_arguments():
    labels = np.zeros((2, 2), dtype=int)
    with pytest.raises(GeometryError, match="lengths must be 2 finite numbers"):
        voxel_cell(MPI.COMM_WORLD, labels, lengths=[1.0, 2.0, 3.0])
    with pytest.raises(GeometryError, match="lengths must be positive"):
        voxel_cell(MPI.COMM_WORLD, labels, lengths=[1.0, -2.0])
    with pytest.raises(GeometryError, match=r"labels \[0\] have no phase name"):
        voxel_cell(MPI.COMM_WORLD, labels, phases={1: "a"})
    with pytest.raises(GeometryError, match="cell data 'g' must have one entry per voxel"):
        voxel_cell(MPI.COMM_WORLD, labels, cell_data={"g": np.zeros(3)})
    assert as_labels(np.array([[True, False]])).tolist() == [[1, 0]]
    assert as_labels(np.array([[1.0, 2.0]])).dtype == np.int64


def test_labels_taken_from_rank_zero():
    comm = MPI.COMM_WORLD
    labels = np.arange(6).reshape(2, 3) if comm.rank == 0 else None
    rve = voxel_cell(comm, labels)
    assert len(rve.phases) == 6


def test_voxelized_sphere_volume_converges():
    """The voxels whose centres are in the ball lie within r + δ and cover the ball of radius
    r - δ (δ: half the voxel diagonal), so the volume error is at most first order; observed
    faster on average."""
    r, errors, sizes = 0.3, [], []
    for n in (8, 16, 32, 64, 128):
        x = centres((n,) * 3, np.ones(3), np.zeros(3))
        ball = (np.linalg.norm(x - 0.5, axis=1) < r).reshape((n,) * 3).astype(int)
        if n <= 16:
            volume = phase_volumes(voxel_cell(MPI.COMM_WORLD, ball, lengths=np.ones(3)))["phase1"]
            assert volume == pytest.approx(ball.sum() / n**3, rel=1e-12)
        else:
            volume = ball.sum() / n**3
        delta = 0.5 * np.sqrt(3.0) / n
        assert 4 / 3 * np.pi * (r - delta) ** 3 <= volume <= 4 / 3 * np.pi * (r + delta) ** 3
        errors.append(abs(volume / (4 / 3 * np.pi * r**3) - 1.0))
        sizes.append(1.0 / n)
    rate = np.polyfit(np.log(sizes[1:]), np.log(errors[1:]), 1)[0]
    assert rate > 1.0
    assert errors[-1] < 2e-3


@pytest.mark.parametrize(("dim", "axis"), [(2, 1), (3, 0)])
def test_voxel_laminate_homogenizes_to_closed_form(dim, axis):
    """A voxel cell plugs into the periodic RVE solver: a voxel laminate (layer interfaces on
    the cell faces, as the seam check allows) gives the exact laminate stiffness."""
    from reference import laminate_stiffness

    from fe2x.materials import IsotropicElastic
    from fe2x.micro.homogenization import homogenize

    layers = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])  # fractions 0.3, 0.4, 0.3 along axis
    shape = [3, 2, 2][:dim]
    shape[axis] = layers.size
    labels = np.moveaxis(np.broadcast_to(layers, (*np.delete(shape, axis), layers.size)), -1, axis)
    lengths = np.array([1.0, 0.8, 0.6][:dim])
    cell = voxel_cell(MPI.COMM_WORLD, labels, lengths, phases={0: "a", 1: "b", 2: "c"})
    materials = {
        "a": IsotropicElastic(3.0e9, 0.35),
        "b": IsotropicElastic(70.0e9, 0.2),
        "c": IsotropicElastic(10.0e9, 0.3),
    }
    result = homogenize(cell, materials, bcs=("periodic",), degree=1)
    rows = {2: {0: (0, 2), 1: (1, 2)}, 3: {0: (0, 4, 5), 1: (1, 3, 5), 2: (2, 3, 4)}}[dim][axis]
    stiffness = [materials[p].stiffness(dim) for p in ("a", "b", "c")]
    expected = laminate_stiffness([0.3, 0.4, 0.3], stiffness, rows)
    C = result.C_eff["periodic"]
    assert np.linalg.norm(C - expected) / np.linalg.norm(expected) < 1e-10
