"""Tests of the macro specimens: measures, boundary tags, file reading and bad input."""

import math
from pathlib import Path

from mpi4py import MPI

import dolfinx
import gmsh
import numpy as np
import pytest
import ufl

from fe2x.errors import GeometryError
from fe2x.geometry.macro import (
    MacroMesh,
    block,
    notched_bar,
    plate_with_hole,
    read_macro,
    three_point_bending,
)

COMMS = [MPI.COMM_WORLD, MPI.COMM_SELF]


def total(comm, value):
    return comm.allreduce(value, op=MPI.SUM)


def volume(m: MacroMesh, tag=None):
    dx = ufl.Measure("dx", domain=m.mesh, subdomain_data=m.cell_tags)
    form = dolfinx.fem.form(1.0 * (dx if tag is None else dx(tag)))
    return total(m.mesh.comm, dolfinx.fem.assemble_scalar(form))


def boundary_measures(m: MacroMesh) -> dict[str, float]:
    ds = ufl.Measure("ds", domain=m.mesh, subdomain_data=m.facet_tags)
    return {
        name: total(m.mesh.comm, dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ds(tag))))
        for name, tag in m.boundaries.items()
    }


def check_tagging(m: MacroMesh):
    """Every owned exterior facet carries exactly one boundary tag, and only those do."""
    tdim = m.mesh.topology.dim
    m.mesh.topology.create_connectivity(tdim - 1, tdim)
    n_owned = m.mesh.topology.index_map(tdim - 1).size_local
    exterior = dolfinx.mesh.exterior_facet_indices(m.mesh.topology)
    exterior = np.sort(exterior[exterior < n_owned])
    owned = m.facet_tags.indices < n_owned
    tagged, values = m.facet_tags.indices[owned], m.facet_tags.values[owned]
    assert np.unique(tagged).size == tagged.size, "a facet carries two tags"
    assert np.array_equal(np.sort(tagged), exterior)
    assert set(np.unique(values)) <= set(m.boundaries.values())
    assert sorted(m.boundaries.values()) == list(range(1, len(m.boundaries) + 1))


def assert_measures(got: dict[str, float], expected: dict[str, float], rtol: float):
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=rtol), name


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize("dim", [2, 3])
def test_block(comm, dim):
    L = [2.0, 1.0, 0.5][:dim]
    m = block(comm, dim, L, mesh_size=0.25)
    assert m.mesh.comm.size == comm.size
    assert m.mesh.geometry.dim == dim
    assert m.regions == {"body": 1}
    assert volume(m) == pytest.approx(np.prod(L), rel=1e-12)
    face = np.prod(L) / np.asarray(L)  # measure of the faces normal to each axis
    expected = {"left": face[0], "right": face[0], "bottom": face[1], "top": face[1]}
    if dim == 3:
        expected |= {"front": face[2], "back": face[2]}
    assert_measures(boundary_measures(m), expected, 1e-12)
    check_tagging(m)


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize(("order", "rtol"), [(1, 3e-3), (2, 1e-5)])
def test_plate_with_hole_2d(comm, order, rtol):
    W, H, r, h = 2.0, 1.0, 0.2, 0.1
    m = plate_with_hole(comm, 2, W, H, r, h, order=order)
    assert volume(m) == pytest.approx(W * H - math.pi * r**2, rel=rtol)
    expected = {"left": H, "right": H, "bottom": W, "top": W, "hole": 2 * math.pi * r}
    assert_measures(boundary_measures(m), expected, rtol)
    check_tagging(m)
    # refined on the hole: its facets are about mesh_size/3 long
    hole = m.facet_tags.find(m.boundaries["hole"])
    n_hole = total(comm, int(np.sum(hole < m.mesh.topology.index_map(1).size_local)))
    assert 2 * math.pi * r / n_hole < 0.5 * h


def test_plate_with_hole_3d():
    W, H, r, t = 2.0, 1.0, 0.2, 0.2
    m = plate_with_hole(MPI.COMM_WORLD, 3, W, H, r, 0.25, order=2, thickness=t)
    A = W * H - math.pi * r**2
    assert volume(m) == pytest.approx(A * t, rel=1e-4)
    expected = {
        "left": H * t,
        "right": H * t,
        "bottom": W * t,
        "top": W * t,
        "hole": 2 * math.pi * r * t,
        "front": A,
        "back": A,
    }
    assert_measures(boundary_measures(m), expected, 1e-4)
    check_tagging(m)


def u_notch(depth, rho):
    """Area removed by and arc length of one U notch of root radius rho and depth ``depth``."""
    if depth >= rho:
        return 2 * rho * (depth - rho) + math.pi * rho**2 / 2, 2 * (depth - rho) + math.pi * rho
    theta = math.acos((rho - depth) / rho)  # a circular segment
    return rho**2 * (theta - math.sin(theta) * math.cos(theta)), 2 * rho * theta


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize("depth", [0.3, 0.2, 0.1], ids=["U", "semicircle", "segment"])
def test_notched_bar_2d(comm, depth):
    L, W, rho = 4.0, 1.0, 0.2
    m = notched_bar(comm, 2, L, W, depth, rho, mesh_size=0.15, order=2)
    area, arc = u_notch(depth, rho)
    mouth = 2 * rho if depth >= rho else 2 * math.sqrt(rho**2 - (rho - depth) ** 2)
    assert volume(m) == pytest.approx(L * W - 2 * area, rel=1e-5)
    expected = {"left": W, "right": W, "notch": 2 * arc, "free": 2 * (L - mouth)}
    assert_measures(boundary_measures(m), expected, 1e-5)
    check_tagging(m)


def test_notched_bar_3d():
    L, W, d, rho, t = 4.0, 1.0, 0.3, 0.2, 0.25
    m = notched_bar(MPI.COMM_WORLD, 3, L, W, d, rho, mesh_size=0.3, order=2, thickness=t)
    area, arc = u_notch(d, rho)
    A = L * W - 2 * area
    assert volume(m) == pytest.approx(A * t, rel=1e-4)
    expected = {
        "left": W * t,
        "right": W * t,
        "notch": 2 * arc * t,
        "free": 2 * (L - 2 * rho) * t,
        "front": A,
        "back": A,
    }
    assert_measures(boundary_measures(m), expected, 1e-4)
    check_tagging(m)


@pytest.mark.parametrize("comm", COMMS)
@pytest.mark.parametrize("dim", [2, 3])
def test_three_point_bending(comm, dim):
    L, H, t, sw, lw = 4.0, 1.0, 0.3, 0.2, 0.3
    m = three_point_bending(
        comm, dim, L, H, 0.3, thickness=t if dim == 3 else None, support_width=sw, load_width=lw
    )
    depth = t if dim == 3 else 1.0
    assert volume(m) == pytest.approx(L * H * depth, rel=1e-12)
    expected = {
        "supports": 2 * sw * depth,
        "load": lw * depth,
        "free": (2 * L + 2 * H - 2 * sw - lw) * depth,
    }
    if dim == 3:
        expected |= {"front": L * H, "back": L * H}
    assert_measures(boundary_measures(m), expected, 1e-12)
    check_tagging(m)


def write_on_root(comm, path: Path, regions: bool, boundaries: bool) -> Path:
    """Write a 2 x 1 rectangle in two halves ('soft' x < 1, 'stiff') on rank 0; return the path."""
    if comm.rank == 0:
        initialized_here = not gmsh.isInitialized()
        if initialized_here:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("user_macro")
        occ = gmsh.model.occ
        halves = [(2, occ.addRectangle(0, 0, 0, 1, 1)), (2, occ.addRectangle(1, 0, 0, 1, 1))]
        _, children = occ.fragment(halves[:1], halves[1:])
        occ.synchronize()
        if regions:
            gmsh.model.addPhysicalGroup(2, [t for _, t in children[0]], tag=7, name="soft")
            gmsh.model.addPhysicalGroup(2, [t for _, t in children[1]], tag=9, name="stiff")
        if boundaries:
            for name, tag, x in (("clamp", 3, 0.0), ("pull", 4, 2.0)):
                box = (x - 1e-6, -1e-6, -1e-6, x + 1e-6, 1 + 1e-6, 1e-6)
                curves = gmsh.model.getEntitiesInBoundingBox(*box, dim=1)
                gmsh.model.addPhysicalGroup(1, [c for _, c in curves], tag=tag, name=name)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.2)
        gmsh.option.setNumber("Mesh.SaveAll", int(not regions))  # else only grouped cells
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
        gmsh.model.remove()
        if initialized_here:
            gmsh.finalize()
    return Path(comm.bcast(str(path), root=0))


def test_read_macro_round_trip(tmp_path):
    comm = MPI.COMM_WORLD
    path = write_on_root(comm, tmp_path / "user.msh", regions=True, boundaries=True)
    m = read_macro(comm, path)
    assert m.regions == {"soft": 7, "stiff": 9}
    assert m.boundaries == {"clamp": 3, "pull": 4}
    assert volume(m, 7) == pytest.approx(1.0, rel=1e-12)
    assert volume(m, 9) == pytest.approx(1.0, rel=1e-12)
    assert_measures(boundary_measures(m), {"clamp": 1.0, "pull": 1.0}, 1e-12)


def test_read_macro_without_regions(tmp_path):
    comm = MPI.COMM_WORLD
    path = write_on_root(comm, tmp_path / "body.msh", regions=False, boundaries=True)
    m = read_macro(comm, path)
    assert m.regions == {"body": 1}
    assert volume(m, 1) == pytest.approx(2.0, rel=1e-12)


def test_read_macro_errors(tmp_path):
    comm = MPI.COMM_WORLD
    missing = Path(comm.bcast(str(tmp_path / "missing.msh"), root=0))
    with pytest.raises(GeometryError, match="mesh file not found"):
        read_macro(comm, missing)
    path = write_on_root(comm, tmp_path / "bare.msh", regions=True, boundaries=False)
    with pytest.raises(GeometryError, match=r"no physical groups of dimension 1 \(boundaries\)"):
        read_macro(comm, path)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda c: block(c, 4, [1, 1], 0.1), "dim must be 2 or 3, got 4"),
        (lambda c: block(c, 2, [1, 1, 1], 0.1), "lengths must be 2 positive numbers"),
        (lambda c: block(c, 2, [1, -1], 0.1), "lengths must be 2 positive numbers"),
        (lambda c: block(c, 2, [1, 1], 0.0), "mesh_size must be positive, got 0.0"),
        (lambda c: block(c, 2, [1, 1], 0.1, order=3), "order must be 1 or 2, got 3"),
        (lambda c: plate_with_hole(c, 2, 2, 1, 0.5, 0.1), "hole diameter 1.0 must be smaller"),
        (lambda c: plate_with_hole(c, 2, 2, 1, -0.1, 0.1), "radius must be positive"),
        (lambda c: plate_with_hole(c, 3, 2, 1, 0.1, 0.1), "thickness must be positive, got None"),
        (lambda c: plate_with_hole(c, 2, 2, 1, 0.1, 0.1, thickness=1), "thickness is only for"),
        (lambda c: notched_bar(c, 2, 4, 1, 0.5, 0.1, 0.1), "less than half the width"),
        (lambda c: notched_bar(c, 2, 4, 1, 0.2, 2.5, 0.1), "notch width .* less than length"),
        (lambda c: three_point_bending(c, 2, 4, 1, 0.1, span=3.9), "supports must lie inside"),
        (lambda c: three_point_bending(c, 2, 4, 1, 0.1, load_width=0), "load_width must be"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises(GeometryError, match=match):
        build(MPI.COMM_WORLD)
