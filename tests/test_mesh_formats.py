"""RVE meshes from .inp/.vtu/.xdmf files against the same .msh, and mesh files never run."""

from pathlib import Path

from mpi4py import MPI

import dolfinx
import gmsh
import meshio
import numpy as np
import pytest
import ufl
from reference import laminate_stiffness

from fe2x.errors import GeometryError
from fe2x.geometry import read_cell
from fe2x.geometry.macro import read_macro
from fe2x.materials import IsotropicElastic
from fe2x.micro.homogenization import homogenize

COMM = MPI.COMM_WORLD
MATRIX, FIBRE = IsotropicElastic(3.5e9, 0.35), IsotropicElastic(72e9, 0.22)
TOP = {"triangle": 2, "triangle6": 2, "tetra": 3, "tetra10": 3}


def on_root(make):
    """Run ``make()`` on rank 0 only and return its (broadcast) result on every rank."""
    result, error = None, None
    if COMM.rank == 0:
        try:
            result = make()
        except Exception as e:  # report on every rank instead of hanging the others
            error = repr(e)
    result, error = COMM.bcast((result, error), root=0)
    if error:
        raise RuntimeError(error)
    return result


def periodic_ball_cell(path: Path, dim: int, order: int, size: float) -> str:
    """Write a gmsh .msh of the unit box with a centred ball (tags matrix 3, fibre 7)."""

    def make():
        initialized = gmsh.isInitialized()
        if not initialized:
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add(path.stem)
        occ = gmsh.model.occ
        if dim == 2:
            box, ball = occ.addRectangle(0, 0, 0, 1, 1), occ.addDisk(0.5, 0.5, 0, 0.3, 0.3)
        else:
            box, ball = occ.addBox(0, 0, 0, 1, 1, 1), occ.addSphere(0.5, 0.5, 0.5, 0.3)
        _, out = occ.fragment([(dim, box)], [(dim, ball)])
        occ.synchronize()
        fibre = [t for _, t in out[1]]
        gmsh.model.addPhysicalGroup(dim, [t for _, t in out[0] if t not in fibre], 3, "matrix")
        gmsh.model.addPhysicalGroup(dim, fibre, 7, "fibre")
        eps = 1e-6
        for axis in range(dim):
            lo = [-eps] * 3 + [1 + eps] * 3
            lo[3 + axis] = eps
            for d, lower in gmsh.model.getEntitiesInBoundingBox(*lo, dim - 1):
                bb = np.array(gmsh.model.getBoundingBox(d, lower))
                bb[axis] += 1
                bb[3 + axis] += 1
                upper = gmsh.model.getEntitiesInBoundingBox(*(bb[:3] - eps), *(bb[3:] + eps), d)
                shift = np.eye(4)
                shift[axis, 3] = 1.0
                gmsh.model.mesh.setPeriodic(d, [upper[0][1]], [lower], shift.ravel().tolist())
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.model.mesh.generate(dim)
        gmsh.model.mesh.setOrder(order)
        gmsh.write(str(path))
        gmsh.model.remove()
        if not initialized:
            gmsh.finalize()
        return str(path)

    return on_root(make)


def export(msh: str, path: Path, how: str) -> str:
    """Rewrite the top cells of ``msh`` with meshio: phases as element sets or cell data."""

    def make():
        m = meshio.read(msh)
        top = [
            (b, d)
            for b, d in zip(m.cells, m.cell_data["gmsh:physical"], strict=True)
            if b.type in TOP
        ]
        tags = np.concatenate([d for _, d in top])
        cells = [(top[0][0].type, np.concatenate([b.data for b, _ in top]))]
        if how == "sets":
            sets = {"matrix": [np.flatnonzero(tags == 3)], "fibre": [np.flatnonzero(tags == 7)]}
            out = meshio.Mesh(m.points, cells, cell_sets=sets)
        else:
            out = meshio.Mesh(m.points, cells, cell_data={how: [tags.astype(np.int32)]})
        out.write(path)
        return str(path)

    return on_root(make)


def phase_volumes(rve):
    dx = ufl.Measure("dx", domain=rve.mesh, subdomain_data=rve.cell_tags)
    return {
        tag: COMM.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * dx(tag))))
        for tag in rve.phases.values()
    }


def n_cells(rve):
    return rve.mesh.topology.index_map(rve.mesh.topology.dim).size_global


def materials_of(rve):
    """Materials by phase name, the phase identified by its tag (3 matrix, 7 fibre)."""
    by_tag = {3: MATRIX, 7: FIBRE, 1: MATRIX, 2: FIBRE}
    return {name: by_tag[tag] for name, tag in rve.phases.items()}


@pytest.fixture(scope="module")
def cell_2d(tmp_path_factory):
    base = Path(COMM.bcast(str(tmp_path_factory.mktemp("formats")) if COMM.rank == 0 else None))
    msh = periodic_ball_cell(base / "cell.msh", dim=2, order=1, size=0.2)
    files = {
        ".inp": export(msh, base / "cell.inp", "sets"),
        ".vtu": export(msh, base / "cell.vtu", "phase"),
        ".xdmf": export(msh, base / "cell.xdmf", "phase"),
    }
    return msh, files


def test_same_C_eff_from_every_format(cell_2d):
    """The issue's acceptance test: .inp, .vtu, .xdmf give the .msh cell and its C_eff."""
    msh, files = cell_2d
    reference = read_cell(COMM, msh)
    volumes = phase_volumes(reference)
    C_ref = homogenize(reference, materials_of(reference), bcs=("periodic",), degree=1).C_eff
    C_ref = C_ref["periodic"]
    for suffix, path in files.items():
        rve = read_cell(COMM, path)
        assert n_cells(rve) == n_cells(reference), suffix
        if suffix == ".inp":
            assert rve.phases == {"matrix": 1, "fibre": 2}
            tag_of = {1: 3, 2: 7}
        else:
            assert rve.phases == {"phase3": 3, "phase7": 7}
            tag_of = {3: 3, 7: 7}
        got = {tag_of[t]: v for t, v in phase_volumes(rve).items()}
        assert got == pytest.approx(volumes, rel=1e-12), suffix
        C = homogenize(rve, materials_of(rve), bcs=("periodic",), degree=1).C_eff["periodic"]
        assert np.abs(C - C_ref).max() <= 1e-12 * np.abs(C_ref).max(), suffix


@pytest.mark.parametrize(("dim", "suffix"), [(2, ".inp"), (3, ".vtu")])
def test_quadratic_cells_keep_their_geometry(tmp_path, dim, suffix):
    """triangle6 and tetra10 (whose node orders differ between VTK and gmsh) keep the volumes
    of the curved .msh geometry."""
    base = Path(COMM.bcast(str(tmp_path), root=0))
    msh = periodic_ball_cell(base / "curved.msh", dim=dim, order=2, size=0.5)
    other = export(msh, base / f"curved{suffix}", "sets" if suffix == ".inp" else "phase")
    reference, rve = read_cell(COMM, msh), read_cell(COMM, other)
    assert rve.mesh.geometry.cmaps[0].degree == 2
    assert n_cells(rve) == n_cells(reference)
    ref = phase_volumes(reference)
    got = sorted(phase_volumes(rve).values())
    assert got == pytest.approx(sorted(ref.values()), rel=1e-12)
    ball = np.pi * 0.09 if dim == 2 else 4 / 3 * np.pi * 0.027
    assert ref[7] == pytest.approx(ball, rel=2e-2)  # curved cells: close to the true ball


def grid_cells(n: int, dim: int):
    """A structured unit grid of quads/hexes (meshio order) and the layer of each cell."""
    x = np.linspace(0.0, 1.0, n + 1)
    if dim == 2:
        X, Y = np.meshgrid(x, x, indexing="ij")
        points = np.column_stack([X.ravel(), Y.ravel()])
        node = np.arange(points.shape[0]).reshape(n + 1, n + 1)
        cells = np.array(
            [
                [node[i, j], node[i + 1, j], node[i + 1, j + 1], node[i, j + 1]]
                for i in range(n)
                for j in range(n)
            ]
        )
        kind = "quad"
    else:
        X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
        points = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
        node = np.arange(points.shape[0]).reshape(n + 1, n + 1, n + 1)
        cells = np.array(
            [
                [
                    node[i, j, k],
                    node[i + 1, j, k],
                    node[i + 1, j + 1, k],
                    node[i, j + 1, k],
                    node[i, j, k + 1],
                    node[i + 1, j, k + 1],
                    node[i + 1, j + 1, k + 1],
                    node[i, j + 1, k + 1],
                ]
                for i in range(n)
                for j in range(n)
                for k in range(n)
            ]
        )
        kind = "hexahedron"
    centre_x = points[cells, 0].mean(axis=1)
    return points, kind, cells, np.where(centre_x < 0.25, 2, 1).astype(np.int32)


@pytest.mark.parametrize(("dim", "suffix"), [(2, ".vtu"), (3, ".xdmf")])
def test_quads_and_hexes_give_the_exact_laminate(tmp_path, dim, suffix):
    """A laminate (layers normal to x, fibre fraction 1/4) on quads/hexes: Q1 is exact."""
    base = Path(COMM.bcast(str(tmp_path), root=0))

    def make():
        points, kind, cells, layer = grid_cells(8 if dim == 2 else 4, dim)
        mesh = meshio.Mesh(points, [(kind, cells)], cell_data={"material": [layer]})
        mesh.write(base / f"grid{suffix}")
        return str(base / f"grid{suffix}")

    rve = read_cell(COMM, on_root(make), phase_data="material")
    assert rve.phases == {"phase1": 1, "phase2": 2}
    C = homogenize(rve, {"phase1": MATRIX, "phase2": FIBRE}, bcs=("periodic",), degree=1)
    C = C.C_eff["periodic"]
    normal_rows = (0, 4, 5) if dim == 3 else (0, 2)
    C_phases = [m.stiffness(dim) for m in (FIBRE, MATRIX)]
    expected = laminate_stiffness((0.25, 0.75), C_phases, normal_rows)
    assert np.abs(C - expected).max() <= 1e-10 * np.abs(expected).max()


GEO_SCRIPT = 'SystemCall "touch {marker}";\nPoint(1) = {{0, 0, 0}};\n'


def write_text(path: Path, text: str) -> str:
    def make():
        path.write_text(text)
        return str(path)

    return on_root(make)


def test_geo_scripts_are_never_run(tmp_path):
    base = Path(COMM.bcast(str(tmp_path), root=0))
    marker = base / "ran"
    script = GEO_SCRIPT.format(marker=marker)
    geo = write_text(base / "evil.geo", script)
    renamed = write_text(base / "evil.msh", script)
    accepted = r"accepted: \.msh \(gmsh \.msh\), \.inp \(Abaqus \.inp\), \.vtu"
    with pytest.raises(GeometryError, match=rf"evil\.geo: extension '\.geo' is not a .*{accepted}"):
        read_cell(COMM, geo)
    with pytest.raises(GeometryError, match=r"evil\.msh does not start as a gmsh \.msh mesh"):
        read_cell(COMM, renamed)
    with pytest.raises(
        GeometryError, match=r"extension '\.geo' is not a mesh format; accepted: \.msh"
    ):
        read_macro(COMM, geo)
    with pytest.raises(GeometryError, match=r"evil\.msh does not start as a gmsh \.msh mesh"):
        read_macro(COMM, renamed)
    COMM.barrier()
    assert not marker.exists()

    def control():  # the same script does run when gmsh merges it: the marker can appear
        initialized = gmsh.isInitialized()
        if not initialized:
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("control")
        gmsh.merge(geo)
        gmsh.model.remove()
        if not initialized:
            gmsh.finalize()
        return marker.exists()

    assert on_root(control)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("a.inp", "SystemCall 'x';\n", r"a\.inp does not start as a Abaqus \.inp mesh"),
        ("a.vtu", "$MeshFormat\n", r"a\.vtu does not start as a VTK \.vtu mesh"),
        ("a.xdmf", "<VTKFile>", r"a\.xdmf does not start as a XDMF mesh"),
        ("a.stl", "solid x", r"extension '\.stl' is not a mesh format"),
    ],
)
def test_content_must_match_the_extension(tmp_path, name, text, match):
    path = write_text(Path(COMM.bcast(str(tmp_path), root=0)) / name, text)
    with pytest.raises(GeometryError, match=match):
        read_cell(COMM, path)


def meshio_file(base: Path, name: str, cells, **data) -> str:
    def make():
        points = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1]], float)
        meshio.Mesh(points, cells, **data).write(base / name)
        return str(base / name)

    return on_root(make)


TRIANGLES = [("triangle", np.array([[0, 1, 2], [0, 2, 3]]))]


@pytest.mark.parametrize(
    ("name", "cells", "data", "options", "match"),
    [
        ("nosets.inp", TRIANGLES, {}, {}, r"nosets\.inp has no element sets \(one \*ELSET per"),
        (
            "pyramid.vtu",
            [("pyramid", np.array([[0, 1, 2, 3, 4]]))],
            {"cell_data": {"phase": [np.array([1])]}},
            {},
            "cell type 'pyramid' is not supported",
        ),
        (
            "mixed.vtu",
            [("triangle", np.array([[0, 1, 2]])), ("quad", np.array([[0, 1, 2, 3]]))],
            {"cell_data": {"phase": [np.array([1]), np.array([1])]}},
            {},
            r"mixes cell types \['quad', 'triangle'\]",
        ),
        (
            "noint.vtu",
            TRIANGLES,
            {"cell_data": {"weight": [np.array([0.5, 1.5])]}},
            {},
            r"no integer cell-data array .* name one with phase_data",
        ),
        (
            "named.vtu",
            TRIANGLES,
            {"cell_data": {"phase": [np.array([1, 2])]}},
            {"phase_data": "grain"},
            r"no cell-data array 'grain' \(arrays: \['phase'\]\)",
        ),
        (
            "zero.vtu",
            TRIANGLES,
            {"cell_data": {"phase": [np.array([0, 1])]}},
            {},
            "must be integers >= 1",
        ),
        (
            "overlap.inp",
            TRIANGLES,
            {"cell_sets": {"a": [np.array([0])], "b": [np.array([0])], "c": [np.array([1])]}},
            {},
            r"element sets 'a' and 'b' overlap \(1 cells\)",
        ),
        (
            "uncovered.inp",
            TRIANGLES,
            {"cell_sets": {"a": [np.array([0])]}},
            {},
            "1 of 2 cells are in no element set",
        ),
    ],
)
def test_bad_meshio_files(tmp_path, name, cells, data, options, match):
    path = meshio_file(Path(COMM.bcast(str(tmp_path), root=0)), name, cells, **data)
    with pytest.raises(GeometryError, match=match):
        read_cell(COMM, path, **options)


def test_phase_data_only_for_cell_data_formats(cell_2d):
    msh, _ = cell_2d
    with pytest.raises(GeometryError, match=r"phase_data applies to \.vtu and \.xdmf files"):
        read_cell(COMM, msh, phase_data="phase")


def test_a_set_of_every_cell_is_not_a_phase(tmp_path):
    sets = {"EALL": [np.array([0, 1])], "a": [np.array([1])], "b": [np.array([0])]}
    path = meshio_file(
        Path(COMM.bcast(str(tmp_path), root=0)), "eall.inp", TRIANGLES, cell_sets=sets
    )
    rve = read_cell(COMM, path)
    assert rve.phases == {"a": 1, "b": 2}
    assert sorted(phase_volumes(rve).values()) == pytest.approx([0.5, 0.5], rel=1e-14)
