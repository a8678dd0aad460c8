"""``fe2x homogenize`` with thermal physics, material cards and meshes from other tools: cards
read back by the independent parsers of test_material_cards, one-line errors and no files."""

import json
import re
from pathlib import Path

from mpi4py import MPI

import h5py  # noqa: F401  (before DOLFINx: their HDF5 libraries clash the other way round)
import meshio
import numpy as np
import pytest
from test_material_cards import (
    ALPHA_ORDER,
    K_ABAQUS,
    K_CALCULIX,
    W,
    keyword_blocks,
    parse_ansys_stiffness,
    parse_keyword_stiffness,
    parse_lsdyna_stiffness,
    tensor_from,
)
from test_mesh_formats import export, grid_cells, on_root, periodic_ball_cell

from fe2x.cli import main
from fe2x.materials import IsotropicElastic, mandel_to_tensor, rotation_mandel
from fe2x.materials.thermoelastic import levin_expansion

COMM = MPI.COMM_WORLD
EPOXY, GLASS = (3.5e9, 0.35), (72e9, 0.22)

THERMAL_3D = """
[cell]
type = "inclusion"
dim = 3
volume_fraction = 0.2
mesh_size = 0.35
geometry_order = 1

[materials.matrix]
E = 3.5e9
nu = 0.35
k = 0.2
alpha = 60e-6

[materials.inclusion]
E = 72e9
nu = 0.22
k = 1.1
alpha = 5e-6

[homogenize]
bcs = ["periodic", "kubc"]
degree = 1
physics = ["thermoelasticity", "conduction"]
"""

LAMINATE_3D = """
[cell]
type = "laminate"
dim = 3
fractions = [0.4, 0.6]
phases = ["a", "b"]
axis = 2
mesh_size = 0.5
geometry_order = 1

[materials.a]
E = 70e9
nu = 0.33
k = 200.0
alpha = 23e-6

[materials.b]
E = 3.5e9
nu = 0.35
k = 0.2
alpha = 60e-6

[homogenize]
bcs = ["periodic"]
degree = 1
physics = ["elasticity", "thermoelasticity", "conduction"]
"""


def run(workdir: Path, text: str, capsys, *extra: str) -> tuple[int, str, Path]:
    """``fe2x homogenize cfg.toml --out DIR --quiet EXTRA``: (exit code, stderr, DIR)."""
    config = workdir / "cfg.toml"
    if COMM.rank == 0:
        config.write_text(text)
    COMM.barrier()
    out = workdir / "out"
    code = main(["homogenize", str(config), "--out", str(out), "--quiet", *extra])
    COMM.barrier()  # rank 0 releases the lock as the run ends: look after that
    return code, capsys.readouterr().err, out


def relative(A, B) -> float:
    return float(np.abs(np.asarray(A) - np.asarray(B)).max() / np.abs(np.asarray(B)).max())


def test_cards_read_back_to_the_computed_properties(workdir, capsys):
    """[export] and --export together; each card holds C_eff, k_eff and α_eff of the periodic
    cell in its solver's documented order, and α_eff is Levin's of C_eff."""
    text = THERMAL_3D + '\n[export]\nformats = ["abaqus"]\nname = "RVE_EPOXY_GLASS"\n'
    code, err, out = run(workdir, text, capsys, "--export", "calculix")
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    periodic = result["bc"]["periodic"]
    C = np.array(periodic["C_eff"])
    k = np.array(periodic["k_eff"])
    alpha = np.array(periodic["alpha_eff"])
    assert result["material_cards"] == {
        "bc": "periodic",
        "files": {"abaqus": "abaqus.inp", "calculix": "calculix.inp"},
    }
    assert set(result["thermal_notation"]) == {"k_eff", "alpha_eff", "thermal_stress"}
    for fmt, k_order in (("abaqus", K_ABAQUS), ("calculix", K_CALCULIX)):
        card = (out / f"{fmt}.inp").read_text()
        assert "*MATERIAL, NAME=RVE_EPOXY_GLASS" in card
        blocks = keyword_blocks(card)
        assert relative(parse_keyword_stiffness(card), C) < 1e-12, fmt
        assert relative(tensor_from(blocks["*CONDUCTIVITY, TYPE=ANISO"], k_order), k) < 1e-12
        expansion = tensor_from(blocks["*EXPANSION, TYPE=ANISO"], ALPHA_ORDER)
        assert relative(expansion, mandel_to_tensor(alpha)) < 1e-12, fmt
    fractions = [result["volume_fractions"]["matrix"], result["volume_fractions"]["inclusion"]]
    phases = [IsotropicElastic(*EPOXY), IsotropicElastic(*GLASS)]
    for bc, entry in result["bc"].items():
        levin = levin_expansion(entry["C_eff"], fractions, phases, [60e-6, 5e-6])
        assert relative(entry["alpha_eff"], levin) < 1e-10, bc
        sigma = -np.array(entry["C_eff"]) @ np.array(entry["alpha_eff"])
        assert relative(entry["thermal_stress"], sigma) < 1e-12, bc
        assert np.linalg.eigvalsh(np.array(entry["k_eff"])).min() > 0
    assert np.linalg.eigvalsh(np.array(result["bc"]["kubc"]["k_eff"]) - k).min() > 0
    fields = out / "fields"
    for name in (
        "periodic_flux.bp",
        "periodic_temperature_correctors.bp",
        "periodic_thermal_displacement.bp",
        "kubc_flux.bp",
    ):
        assert (fields / name).is_dir(), name


def test_orthotropic_laminate_cards_for_every_solver(workdir, capsys):
    """A laminate is orthotropic: engineering constants reproduce C_eff's inverse, Ansys takes
    its diagonal k and α, LS-DYNA its stiffness (with the density)."""
    text = LAMINATE_3D + '\n[export]\nformats = ["ansys", "lsdyna"]\ndensity = 1800.0\n'
    code, err, out = run(workdir, text, capsys)
    assert code == 0, err
    entry = json.loads((out / "result.json").read_text())["bc"]["periodic"]
    C, k, alpha = (np.array(entry[key]) for key in ("C_eff", "k_eff", "alpha_eff"))
    ansys = (out / "ansys.mac").read_text()
    assert relative(parse_ansys_stiffness(ansys), C) < 1e-12
    mp = {ln.split(",")[1]: float(ln.split(",")[3]) for ln in ansys.splitlines() if ln[:3] == "MP,"}
    assert [mp["KXX"], mp["KYY"], mp["KZZ"]] == pytest.approx(np.diag(k), rel=1e-12)
    assert [mp["ALPX"], mp["ALPY"], mp["ALPZ"]] == pytest.approx(alpha[:3], rel=1e-12)
    assert mp["DENS"] == 1800.0
    lsdyna, aopt = parse_lsdyna_stiffness((out / "lsdyna.k").read_text())
    assert relative(lsdyna, C) < 1e-5 and float(aopt) == 2.0  # ten columns: ~6 digits
    constants = entry["engineering_constants"]
    assert isinstance(constants, dict)

    text = LAMINATE_3D + '\n[export]\nformats = ["abaqus"]\nelastic = "engineering"\n'
    code, err, out = run(workdir, text, capsys)
    assert code == 0, err
    values = keyword_blocks((out / "abaqus.inp").read_text())[
        "*ELASTIC, TYPE=ENGINEERING CONSTANTS"
    ]
    E1, E2, E3, n12, n13, n23, G12, G13, G23 = values
    S = np.zeros((6, 6))  # textbook compliance: engineering shears, Mandel row order
    S[:3, :3] = [
        [1 / E1, -n12 / E1, -n13 / E1],
        [-n12 / E1, 1 / E2, -n23 / E2],
        [-n13 / E1, -n23 / E2, 1 / E3],
    ]
    S[3, 3], S[4, 4], S[5, 5] = 1 / G23, 1 / G13, 1 / G12
    assert relative(S / np.outer(W, W), np.linalg.inv(C)) < 1e-10
    assert E1 == pytest.approx(E2, rel=1e-10) and E3 < E1  # transversely isotropic about z


def anisotropic_matrix_toml() -> str:
    """A rotated orthotropic matrix: C_eff couples normal and shear strains."""
    C = np.diag([40.0, 12.0, 10.0, 8.0, 9.0, 7.0]) * 1e9
    C[0, 1] = C[1, 0] = 5e9
    c, s = np.cos(0.4), np.sin(0.4)
    Q = rotation_mandel(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
    rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in Q @ C @ Q.T)
    return THERMAL_3D.replace("E = 3.5e9\nnu = 0.35", f"C_mandel = [{rows}]", 1)


def write_inp_without_sets(workdir: Path) -> str:
    def make():
        points, kind, cells, _ = grid_cells(4, 2)
        meshio.Mesh(points, [(kind, cells)]).write(workdir / "plain.inp")
        return str(workdir / "plain.inp")

    return on_root(make)


BAD = {
    "unknown --export": (
        THERMAL_3D,
        ("--export", "nastran"),
        r"--export 'nastran': unknown material card format; known are abaqus, calculix, ansys, "
        r"lsdyna",
    ),
    "unknown [export] format": (
        THERMAL_3D + '\n[export]\nformats = ["nastran"]\n',
        (),
        r"\[export\] formats = \['nastran'\]: expected distinct names from abaqus",
    ),
    "anisotropic as orthotropic": (
        anisotropic_matrix_toml() + '\n[export]\nformats = ["abaqus"]\nelastic = "engineering"\n',
        (),
        r"\[export\] abaqus card .*elastic = 'engineering'.*C is not orthotropic in the cell axes",
    ),
    "anisotropic k for Ansys": (
        THERMAL_3D.replace("k = 0.2", "k = [[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]]")
        + '\n[export]\nformats = ["ansys"]\n',
        (),
        r"\[export\] ansys card .*Ansys MP takes an orthotropic conductivity only",
    ),
    "negative conductivity": (
        THERMAL_3D.replace("k = 0.2", "k = -0.2"),
        (),
        r"\[materials.matrix\] phase 'matrix': conductivity k = -0.2 must be > 0",
    ),
    "non-SPD conductivity": (
        THERMAL_3D.replace("k = 0.2", "k = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]"),
        (),
        r"\[materials.matrix\] phase 'matrix': conductivity k is not positive definite",
    ),
    "conduction without k": (
        THERMAL_3D.replace("k = 1.1\n", ""),
        (),
        r"\[materials.inclusion\] k is required by \[homogenize\] physics 'conduction'",
    ),
    "thermoelasticity without alpha": (
        THERMAL_3D.replace("alpha = 60e-6\n", ""),
        (),
        r"\[materials.matrix\] alpha is required by \[homogenize\] physics 'thermoelasticity'",
    ),
    "unknown physics": (
        THERMAL_3D.replace('"conduction"]', '"diffusion"]'),
        (),
        r"physics = \['thermoelasticity', 'diffusion'\]: expected distinct names",
    ),
    "2D cards": (
        THERMAL_3D.replace("dim = 3", "dim = 2"),
        ("--export", "abaqus"),
        r"material cards need a 3D cell \(\[cell\] dim = 3\)",
    ),
    "lsdyna without density": (
        THERMAL_3D,
        ("--export", "lsdyna"),
        r"\[export\] density is required by the lsdyna card",
    ),
    "cards without C_eff": (
        THERMAL_3D.replace(
            'physics = ["thermoelasticity", "conduction"]', 'physics = ["conduction"]'
        ),
        ("--export", "abaqus"),
        r"cards hold C_eff; add 'elasticity' or 'thermoelasticity'",
    ),
    "export bc not computed": (
        THERMAL_3D + '\n[export]\nformats = ["abaqus"]\nbc = "subc"\n',
        (),
        r"\[export\] bc = 'subc' is not among \[homogenize\] bcs",
    ),
    "inp without element sets": (
        '[cell]\ntype = "file"\npath = "plain.inp"\n[materials.a]\nE = 1.0\nnu = 0.3\n',
        (),
        r"plain.inp has no element sets \(one \*ELSET per phase needed\)",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_error_and_no_files(workdir, capsys, case):
    text, extra, pattern = BAD[case]
    if case == "inp without element sets":
        write_inp_without_sets(workdir)
    code, err, out = run(workdir, text, capsys, *extra)
    assert code != 0
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    if COMM.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("fe2x: error: ")
        assert re.search(pattern, lines[0]), lines[0]


def test_conduction_only(workdir, capsys):
    """physics = ["conduction"]: k_eff without the elastic solves, the 2D in-plane block."""
    text = (
        THERMAL_3D.replace("dim = 3", "dim = 2")
        .replace('physics = ["thermoelasticity", "conduction"]', 'physics = ["conduction"]')
        .replace("k = 0.2", "k = [[0.2, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 5.0]]")
    )
    code, err, out = run(workdir, text, capsys)
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["physics"] == ["conduction"]
    assert set(result["bc"]["periodic"]) >= {"k_eff", "conduction_hill_mandel_residual"}
    assert "C_eff" not in result["bc"]["periodic"]
    k = np.array(result["bc"]["periodic"]["k_eff"])
    lower, upper = result["bounds"]["conductivity"]["hashin_shtrikman"]
    assert k.shape == (2, 2) and lower < np.linalg.eigvalsh(k).min() < upper


def test_vtu_cell_in_the_config_gives_the_msh_stiffness(workdir, capsys):
    """The same periodic cell as gmsh .msh and as .vtu whose phases sit in the second of two
    cell-data arrays (named by phase_data): C_eff agrees to 1e-12."""
    msh = periodic_ball_cell(workdir / "cell.msh", dim=2, order=1, size=0.2)
    vtu = export(msh, workdir / "cell.vtu", "phys")

    def add_decoy():
        mesh = meshio.read(vtu)
        phys = mesh.cell_data["phys"]
        mesh.cell_data = {"decoy": [np.ones_like(phys[0])], "phys": phys}
        mesh.write(vtu)

    on_root(add_decoy)
    materials = {"matrix": EPOXY, "fibre": GLASS, "phase3": EPOXY, "phase7": GLASS}
    C = {}
    for name, cell in (
        ("msh", '[cell]\ntype = "file"\npath = "cell.msh"\n'),
        ("vtu", '[cell]\ntype = "file"\npath = "cell.vtu"\nphase_data = "phys"\n'),
    ):
        phases = ("matrix", "fibre") if name == "msh" else ("phase3", "phase7")
        tables = "".join(
            f"[materials.{p}]\nE = {materials[p][0]}\nnu = {materials[p][1]}\n" for p in phases
        )
        text = (
            cell + tables + '[homogenize]\nbcs = ["periodic"]\ndegree = 1\nwrite_fields = false\n'
        )
        code, err, out = run(workdir, text, capsys)
        assert code == 0, err
        C[name] = np.array(json.loads((out / "result.json").read_text())["bc"]["periodic"]["C_eff"])
    assert relative(C["vtu"], C["msh"]) < 1e-12
    text = cell.replace('phase_data = "phys"\n', "") + tables  # the decoy: one phase only
    code, err, _ = run(workdir, text, capsys)
    assert code != 0
