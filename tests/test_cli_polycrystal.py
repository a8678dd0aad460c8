"""Polycrystal and voxel cells and the crystal material through the command line: orientations
from random draws, files and fibre textures reach the law (exact single-crystal and laminate
answers), grain files are written, and each bad input is one line with no result file."""

import csv
import json
import math
import re
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command
from reference import laminate_stiffness

from fe2x.config.cells import ORIENTATION_STREAM
from fe2x.geometry.tessellation import grain_labels, random_seeds
from fe2x.materials.orientations import matrix_to_euler, random_orientations

CU = (168.4e9, 121.4e9, 75.4e9)
S2 = math.sqrt(2.0)

POLYCRYSTAL = """
[cell]
type = "polycrystal"
dim = 3
n_grains = 10
resolution = 5
seed = 4
{extra}
[materials.grains]
model = "crystal"
{material}
[homogenize]
bcs = ["periodic"]
degree = 1
"""


def polycrystal(extra: str = "", material: str = "") -> str:
    return POLYCRYSTAL.format(extra=extra, material=material)


def to_mandel(A: np.ndarray) -> np.ndarray:
    return np.array([A[0, 0], A[1, 1], A[2, 2], S2 * A[1, 2], S2 * A[0, 2], S2 * A[0, 1]])


def from_mandel(a: np.ndarray) -> np.ndarray:
    return np.array(
        [[a[0], a[5] / S2, a[4] / S2], [a[5] / S2, a[1], a[3] / S2], [a[4] / S2, a[3] / S2, a[2]]]
    )


def rotated_copper(R: np.ndarray) -> np.ndarray:
    """Q C Qᵀ of the copper crystal, Q built column by column (independent of the code)."""
    Q = np.column_stack([to_mandel(R @ from_mandel(e) @ R.T) for e in np.eye(6)])
    C = np.full((3, 3), CU[1]) + (CU[0] - CU[1]) * np.eye(3)
    C = np.block([[C, np.zeros((3, 3))], [np.zeros((3, 3)), 2 * CU[2] * np.eye(3)]])
    return Q @ C @ Q.T


def bunge(phi1: float, Phi: float, phi2: float) -> np.ndarray:
    """R = Z(φ1) X(Φ) Z(φ2), crystal -> sample (degrees), from elementary rotations."""
    c, s = np.cos, np.sin

    def Z(t):
        return np.array([[c(t), -s(t), 0], [s(t), c(t), 0], [0, 0, 1]])

    def X(t):
        return np.array([[1, 0, 0], [0, c(t), -s(t)], [0, s(t), c(t)]])

    return Z(np.radians(phi1)) @ X(np.radians(Phi)) @ Z(np.radians(phi2))


def write(path: Path, text: str) -> Path:
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(text)
    MPI.COMM_WORLD.barrier()
    return path


def save(path: Path, array: np.ndarray) -> Path:
    if MPI.COMM_WORLD.rank == 0:
        np.save(path, array)
    MPI.COMM_WORLD.barrier()
    return path


def grains_csv(out: Path) -> dict[str, np.ndarray]:
    with (out / "grains.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def C_eff(out: Path) -> np.ndarray:
    return np.array(json.loads((out / "result.json").read_text())["bc"]["periodic"]["C_eff"])


def homogenize(workdir: Path, text: str, capsys) -> Path:
    code, err, out = run_command("homogenize", workdir, text, capsys)
    assert code == 0, err
    return out


# -- good input ------------------------------------------------------------------------------------
def test_random_polycrystal_writes_its_grains(workdir, capsys):
    """The grain table holds every grain with the volume fraction of its voxels (the
    tessellation of the same seeds) and the orientation drawn from the documented stream;
    the cell data and pole figures are written for ParaView and the eye."""
    out = homogenize(workdir, polycrystal(), capsys)
    table = grains_csv(out)
    L = np.ones(3)
    labels = grain_labels((5, 5, 5), L, random_seeds(3, L, 10, 4))
    assert np.array_equal(table["grain"], np.arange(10))
    assert np.allclose(table["volume_fraction"], np.bincount(labels.ravel()) / 125, atol=1e-9)
    R = random_orientations(10, np.random.default_rng([4, ORIENTATION_STREAM]))
    expected = matrix_to_euler(R, degrees=True)
    assert np.allclose(np.column_stack([table[k] for k in ("phi1", "Phi", "phi2")]), expected)
    assert (out / "pole_figures.png").stat().st_size > 0
    assert (out / "fields" / "cell_data.bp").is_dir()
    result = json.loads((out / "result.json").read_text())
    assert "grains.csv" in result["cell_data"]


@pytest.mark.parametrize("kind", ["euler", "quaternion"])
def test_orientation_file_reaches_the_law(workdir, capsys, kind):
    """Every grain of the file in one orientation: the polycrystal is one crystal, and C_eff is
    the copper stiffness rotated by that orientation (Bunge angles, or the quaternion of the
    same rotation)."""
    angles = (30.0, 50.0, 70.0)
    R = bunge(*angles)
    if kind == "euler":
        text = "# phi1 Phi phi2, degrees\n" + "\n".join(["30 50 70"] * 10) + "\n"
    else:
        w = 0.5 * math.sqrt(1.0 + np.trace(R))
        q = [w, (R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w)]
        q.append((R[1, 0] - R[0, 1]) / (4 * w))
        text = "q0, q1, q2, q3\n" + "\n".join([", ".join(f"{v:.15f}" for v in q)] * 10) + "\n"
    write(workdir / "orientations.txt", text)
    out = homogenize(workdir, polycrystal('orientations = "orientations.txt"'), capsys)
    expected = rotated_copper(R)
    assert np.abs(C_eff(out) - expected).max() < 1e-9 * np.abs(expected).max()
    table = grains_csv(out)
    assert np.allclose(table["phi1"], 30.0) and np.allclose(table["Phi"], 50.0)


def test_fibre_texture(workdir, capsys):
    """An ideal <111> fibre along sample z: every grain has a {111} pole at z."""
    extra = "[cell.orientations]\ncrystal_direction = [1, 1, 1]\nspread = 0.0\n"
    out = homogenize(workdir, polycrystal(extra), capsys)
    table = grains_csv(out)
    for e in zip(table["phi1"], table["Phi"], table["phi2"], strict=True):  # 10 digits
        assert np.allclose(bunge(*e) @ np.ones(3) / math.sqrt(3.0), [0, 0, 1], atol=1e-8)


def test_voxel_image_with_grain_labels_is_the_laminate(workdir, capsys):
    """A .npy image of three layers along y, each label a grain with its orientation from a
    file (ascending label order), plus a label named as an isotropic phase: the exact
    laminate of the three rotated crystals and the isotropic layer."""
    layers = np.array([7, 7, 3, 3, 3, 5, 5, 9, 9, 9])  # grains 3, 5, 7; phase "glue" = 9
    labels = np.broadcast_to(layers[None, :, None], (2, 10, 2)).copy()
    save(workdir / "layers.npy", labels)
    angles = [(10.0, 20.0, 30.0), (100.0, 60.0, 10.0), (250.0, 120.0, 300.0)]
    write(workdir / "grains.txt", "\n".join(" ".join(map(str, a)) for a in angles) + "\n")
    text = """
[cell]
type = "voxels"
dim = 3
path = "layers.npy"
lengths = [0.2, 1.0, 0.2]
phases = {9 = "glue"}
grains = "labels"
orientations = "grains.txt"
[materials.grains]
model = "crystal"
[materials.glue]
E = 3.0e9
nu = 0.35
[homogenize]
bcs = ["periodic"]
degree = 1
"""
    out = homogenize(workdir, text, capsys)
    from fe2x.materials import IsotropicElastic

    stiffness = [rotated_copper(bunge(*a)) for a in angles]  # labels 3, 5, 7
    fractions = [0.3, 0.2, 0.2, 0.3]
    expected = laminate_stiffness(
        fractions, [*stiffness, IsotropicElastic(3.0e9, 0.35).stiffness(3)], (1, 3, 5)
    )
    assert np.linalg.norm(C_eff(out) - expected) / np.linalg.norm(expected) < 1e-10
    table = grains_csv(out)
    assert np.allclose(table["volume_fraction"], [0.3, 0.2, 0.2])


def test_crystal_rve_path_writes_slip_and_grain_fields(workdir, capsys):
    """fe2x rve-path with a 2D (plane-strain) polycrystal: the path completes past yield and
    the micro fields carry grain ids, Bunge angles, accumulated slip and slip resistance."""
    text = """
[cell]
type = "polycrystal"
dim = 2
n_grains = 4
resolution = 6
[materials.grains]
model = "crystal"
[rve]
degree = 1
[path]
times = [0.0, 4.0]
steps = 4
E11 = [0.0, 0.004]
S22 = 0.0
S12 = 0.0
"""
    code, err, out = run_command("rve-path", workdir, text, capsys)
    assert code == 0, err
    steps = json.loads((out / "path.json").read_text())["steps"]
    S11 = [s["S"][0] for s in steps]
    assert S11[-1] - S11[-2] < 0.2 * (S11[1] - S11[0])  # it flows
    assert (out / "grains.csv").is_file() and (out / "fields" / "cell_data.bp").is_dir()


def test_micro_fields_carry_the_cell_data():
    from fe2x.geometry import polycrystal_cell
    from fe2x.materials.crystal import CrystalPlasticity
    from fe2x.micro.nonlinear import NonlinearRVE

    R = random_orientations(3, 1)
    cell = polycrystal_cell(MPI.COMM_WORLD, 2, [1, 1], 3, 4, 0, grain_data={"orientation": R})
    rve = NonlinearRVE(cell, {"grains": CrystalPlasticity(*CU, xi0=31e6)}, degree=1)
    fields = rve.micro_fields()
    assert {"grain", "phi1", "Phi", "phi2", "accumulated_slip", "mean_slip_resistance"} <= set(
        fields
    )
    n = cell.mesh.topology.index_map(2).size_local
    grain = fields["grain"].x.array[fields["grain"].function_space.dofmap.list[:n, 0]]
    assert np.array_equal(grain, cell.cell_data["grain"][:n])


# -- bad input -------------------------------------------------------------------------------------
def image(kind: str, workdir: Path) -> None:
    """Label images for the bad-input cases."""
    n = 16
    x = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    if kind == "cut":  # a disk centred on the face x = L, cut there: not periodic in x
        save(workdir / "cut.npy", (np.hypot(X - 1.0, Y - 0.5) < 0.25).astype(int))
    elif kind == "three":
        save(workdir / "three.npy", np.repeat([[0], [1], [2], [2]], 4, axis=1))
    elif kind == "cube":
        save(workdir / "cube.npy", np.zeros((4, 4, 4), dtype=int))


VOXELS = """
[cell]
type = "voxels"
path = "{name}.npy"
phases = {{0 = "a", 1 = "b"}}
[materials.a]
E = 1.0
nu = 0.3
[materials.b]
E = 2.0
nu = 0.3
"""

BAD_INPUTS = {
    "unknown lattice": (
        polycrystal(material='lattice = "hcp"'),
        None,
        r"\[materials.grains\] lattice = 'hcp': expected 'fcc' or 'bcc'",
    ),
    "unknown slip family": (
        polycrystal(material='lattice = "bcc"\nslip_family = "{112}<111>"'),
        None,
        r"slip_family = '\{112\}<111>' is unknown for lattice 'bcc'; allowed: '\{110\}<111>'",
    ),
    "unknown orientation format": (
        polycrystal('orientations = "o.txt"\norientation_format = "rodrigues"'),
        ("o.txt", "0 0 0\n" * 10),
        r"orientation_format = 'rodrigues': expected",
    ),
    "unknown orientation header": (
        polycrystal('orientations = "o.txt"'),
        ("o.txt", "r1 r2 r3\n" + "0 0 0\n" * 10),
        r"\[cell\] orientations: .*header 'r1, r2, r3' is unknown",
    ),
    "wrong number of orientations": (
        polycrystal('orientations = "o.txt"'),
        ("o.txt", "0 0 0\n" * 9),
        r"\[cell\] orientations: .*holds 9 orientations, expected 10",
    ),
    "unknown fibre key": (
        polycrystal("[cell.orientations]\ncrystal_direction = [1, 1, 1]\nspred = 5.0"),
        None,
        r"\[cell.orientations\] unknown key 'spred'; allowed: crystal_direction",
    ),
    "negative fibre spread": (
        polycrystal("[cell.orientations]\ncrystal_direction = [1, 1, 1]\nspread = -5.0"),
        None,
        r"\[cell.orientations\] spread = -5.0: expected a number >= 0",
    ),
    "too many grains": (
        polycrystal().replace("n_grains = 10", "n_grains = 200"),
        None,
        r"n_grains = 200: more grains than the 125 voxels of resolution = 5",
    ),
    "seeds of the wrong dimension": (
        polycrystal('seeds = "s.csv"').replace("n_grains = 10\n", ""),
        ("s.csv", "0.1, 0.2\n0.5, 0.5\n"),
        r"\[cell\] seeds: .*line 1 is not 3 finite numbers",
    ),
    "non-physical crystal": (
        polycrystal(material="C12 = 170.0e9"),
        None,
        r"C11 - C12 = .* must be > 0",
    ),
    "labels without a phase": (
        VOXELS.format(name="three"),
        "three",
        r"labels \[2\] have no phase; name them in phases",
    ),
    "phase without a material": (
        VOXELS.format(name="three").replace('1 = "b"}', '1 = "b", 2 = "c"}'),
        "three",
        r"\[materials\] must define exactly the phases .*missing \['c'\]",
    ),
    "non-periodic image": (
        VOXELS.format(name="cut"),
        "cut",
        r"label image cut.npy: label image is not periodic: faces x=0 and x=L differ",
    ),
    "image of another dimension": (VOXELS.format(name="cube"), "cube", r"is 3D but dim = 2"),
    "missing image": (VOXELS.format(name="absent"), None, r"path = '.*absent.npy': no such file"),
    "orientations without grains": (
        VOXELS.format(name="three").replace(
            "[materials.a]", 'orientations = "x.txt"\n[materials.a]'
        ),
        "three",
        r"orientations apply with grains = 'labels' only",
    ),
    "crystal without orientations": (
        """
[cell]
type = "inclusion"
volume_fraction = 0.2
mesh_size = 0.5
[materials.matrix]
model = "crystal"
[materials.inclusion]
E = 1.0
nu = 0.3
""",
        None,
        r"phase 'matrix': its law needs the cell data 'orientation'",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_error(workdir, capsys, case):
    text, data, pattern = BAD_INPUTS[case]
    if isinstance(data, tuple):
        write(workdir / data[0], data[1])
    elif isinstance(data, str):
        image(data, workdir)
    code, err, out = run_command("homogenize", workdir, text, capsys)
    assert code != 0
    assert not (out / "result.json").exists() and not (out / "grains.csv").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("fe2x: error: ")
        assert re.search(pattern, lines[0]), lines[0]


def test_keys_of_several_meanings_are_documented_per_meaning():
    """The README's cell table has a row for the image ``path`` of voxel cells and one for the
    mesh ``path`` of file cells (a key's documentation is its variant's)."""
    from fe2x.config import CELL_TYPES
    from fe2x.config.docs import render_variants

    rows = [r for r in render_variants(CELL_TYPES, "type", "cells").splitlines()]
    paths = [r for r in rows if r.startswith("| `path` |")]
    assert len(paths) == 2
    assert "| file |" in paths[0] and ".msh" in paths[0]
    assert "| voxels |" in paths[1] and ".vti" in paths[1]


def test_j2_is_still_refused_by_homogenize(workdir, capsys):
    """Only models whose elastic part no elastic phase can express enter the linear job."""
    text = polycrystal(material="").replace(
        'model = "crystal"\n', 'model = "j2"\nE = 1.0e9\nnu = 0.3\nsigma_y = 1.0e6\n'
    )
    code, err, _ = run_command("homogenize", workdir, text, capsys)
    assert code != 0
    assert MPI.COMM_WORLD.rank or "model = 'j2' is not linear elastic" in err
