"""Material cards read back by parsers written here from the solvers' documented orders."""

import re

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.errors import Fe2xError, MaterialError
from fe2x.io.material_cards import CARD_FORMATS, material_card, write_material_card
from fe2x.materials.mandel import tensor_to_mandel

W = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])
MANDEL = {"11": 0, "22": 1, "33": 2, "23": 3, "13": 4, "12": 5, "31": 4}

# The documented orders, written out by hand (indices as in the manuals).
ABAQUS_D = (
    "1111 1122 2222 1133 2233 3333 1112 2212 3312 1212 1113 2213 3313 1213 1313 1123 2223 3323 "
    "1223 1323 2323"
).split()
ANSYS_ORDER = ("11", "22", "33", "12", "23", "13")  # x, y, z, xy, yz, xz
ANSYS_D = (
    "11 21 31 41 51 61 22 32 42 52 62 33 43 53 63 44 54 64 55 65 66"
).split()  # D(row, column), 1-based in ANSYS_ORDER
LSDYNA_ORDER = ("11", "22", "33", "12", "23", "31")
LSDYNA_C = (
    "11 12 22 13 23 33 14 24 34 44 15 25 35 45 55 16 26 36 46 56 66"
).split()  # C(row, column), 1-based in LSDYNA_ORDER
K_ABAQUS = ("11", "12", "22", "13", "23", "33")
K_CALCULIX = ("11", "22", "33", "12", "13", "23")
ALPHA_ORDER = ("11", "22", "33", "12", "13", "23")


def random_stiffness(seed=5):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(6, 6))
    return 1e9 * (A @ A.T + 6 * np.eye(6))


def mandel_from_voigt_entries(entries):
    """Mandel C from {(pair_I, pair_J): Voigt value}, e.g. (("11", "12"), D1112)."""
    C = np.zeros((6, 6))
    for (p, q), value in entries.items():
        I, J = MANDEL[p], MANDEL[q]
        C[I, J] = C[J, I] = value * W[I] * W[J]
    return C


def keyword_blocks(text):
    """Abaqus/CalculiX: {keyword line: list of numbers on its data lines}."""
    blocks, current = {}, None
    for line in text.splitlines():
        if line.startswith("**") or not line.strip():
            continue
        if line.startswith("*"):
            current = line.strip().upper()
            blocks[current] = []
        else:
            blocks[current] += [float(v) for v in line.split(",")]
    return blocks


def parse_keyword_stiffness(text):
    values = keyword_blocks(text)["*ELASTIC, TYPE=ANISO"]
    assert len(values) == 21
    return mandel_from_voigt_entries(
        {(d[:2], d[2:]): v for d, v in zip(ABAQUS_D, values, strict=True)}
    )


def parse_ansys_stiffness(text):
    table = {}
    for line in text.splitlines():
        if line.startswith("TBDATA"):
            fields = line.split(",")
            start = int(fields[1])
            for k, v in enumerate(fields[2:]):
                table[start + k] = float(v)
    values = [table[i] for i in range(1, 22)]
    entries = {}
    for d, v in zip(ANSYS_D, values, strict=True):
        entries[ANSYS_ORDER[int(d[0]) - 1], ANSYS_ORDER[int(d[1]) - 1]] = v
    return mandel_from_voigt_entries(entries)


def parse_lsdyna_stiffness(text):
    lines = [ln for ln in text.splitlines() if not ln.startswith("$")]
    start = lines.index("*MAT_ANISOTROPIC_ELASTIC_TITLE") + 2  # keyword, title
    fields = []
    for line in lines[start : start + 3]:
        assert len(line) == 80
        fields += [line[i : i + 10] for i in range(0, 80, 10)]
    values = [float(v) for v in fields[2:23]]  # MID, RO, then 21 constants
    entries = {}
    for c, v in zip(LSDYNA_C, values, strict=True):
        entries[LSDYNA_ORDER[int(c[0]) - 1], LSDYNA_ORDER[int(c[1]) - 1]] = v
    return mandel_from_voigt_entries(entries), fields[23]


@pytest.mark.parametrize("fmt", ["abaqus", "calculix", "ansys", "lsdyna"])
def test_stiffness_read_back(fmt):
    C = random_stiffness()
    text = material_card(fmt, C, density=1500.0)
    if fmt in ("abaqus", "calculix"):
        back, rtol = parse_keyword_stiffness(text), 1e-12
    elif fmt == "ansys":
        back, rtol = parse_ansys_stiffness(text), 1e-12
    else:
        (back, aopt), rtol = parse_lsdyna_stiffness(text), 1e-5  # ten columns: ~6 digits
        assert float(aopt) == 2.0
    assert np.abs(back - C).max() <= rtol * np.abs(C).max()


ORTHO_PLUS = {  # Voigt entries (pairs in tensor indices), with two couplings to place shears
    ("11", "11"): 100.0,
    ("22", "22"): 200.0,
    ("33", "33"): 300.0,
    ("11", "22"): 10.0,
    ("11", "33"): 20.0,
    ("22", "33"): 30.0,
    ("23", "23"): 40.0,
    ("13", "13"): 50.0,
    ("12", "12"): 60.0,
    ("11", "12"): 7.0,  # σ11 from γ12
    ("13", "23"): 3.0,  # σ13 from γ23
}


def numbers_after(text, keyword):
    return keyword_blocks(text)[keyword]


def test_hand_computed_cards():
    C = mandel_from_voigt_entries(ORTHO_PLUS)
    abaqus = [100, 10, 200, 20, 30, 300, 7, 0, 0, 60, 0, 0, 0, 0, 50, 0, 0, 0, 0, 3, 40]
    assert numbers_after(material_card("abaqus", C), "*ELASTIC, TYPE=ANISO") == pytest.approx(
        abaqus, abs=1e-12
    )
    ansys = [100, 10, 20, 7, 0, 0, 200, 30, 0, 0, 0, 300, 0, 0, 0, 60, 0, 0, 40, 3, 50]
    text = material_card("ansys", C, material_id=4)
    rows = [ln.split(",") for ln in text.splitlines() if ln.startswith("TBDATA")]
    assert [r[1] for r in rows] == ["1", "7", "13", "19"]
    assert [float(v) for r in rows for v in r[2:]] == pytest.approx(ansys, abs=1e-12)
    assert "TB,ANEL,4,1,,0" in text.splitlines()
    lsdyna = [100, 10, 200, 20, 30, 300, 7, 0, 0, 60, 0, 0, 0, 0, 40, 0, 0, 0, 0, 3, 50]
    lines = material_card("lsdyna", C, density=2.5, material_id=4).splitlines()
    card = lines[lines.index("*MAT_ANISOTROPIC_ELASTIC_TITLE") + 2 :]
    fields = [float(ln[i : i + 10]) for ln in card for i in range(0, 80, 10)]
    assert fields[:2] == [4, 2.5]
    assert fields[2:23] == pytest.approx(lsdyna, abs=1e-12)
    # AOPT = 2 | XP YP ZP A1 A2 A3 MACF IHIS | V1 V2 V3 D1 D2 D3 BETA REF
    assert fields[23:] == [2, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]


def test_engineering_constants_card():
    E1, E2, E3, n12, n13, n23, G12, G13, G23 = 140e9, 10e9, 9e9, 0.3, 0.28, 0.45, 5e9, 4.5e9, 3.2e9
    S = np.zeros((6, 6))  # textbook compliance, Mandel order, engineering shears
    S[:3, :3] = [
        [1 / E1, -n12 / E1, -n13 / E1],
        [-n12 / E1, 1 / E2, -n23 / E2],
        [-n13 / E1, -n23 / E2, 1 / E3],
    ]
    S[3, 3], S[4, 4], S[5, 5] = 1 / G23, 1 / G13, 1 / G12
    C = np.linalg.inv(S / np.outer(W, W))
    for fmt in ("abaqus", "calculix"):
        text = material_card(fmt, C, elastic="engineering")
        values = numbers_after(text, "*ELASTIC, TYPE=ENGINEERING CONSTANTS")
        assert values == pytest.approx([E1, E2, E3, n12, n13, n23, G12, G13, G23], rel=1e-12)
    with pytest.raises(MaterialError, match="not orthotropic"):
        material_card("abaqus", random_stiffness(), elastic="engineering")


K = np.array([[5.0, 1.0, 0.5], [1.0, 6.0, 0.2], [0.5, 0.2, 7.0]])
ALPHA = np.array([[1e-5, 2e-6, 3e-6], [2e-6, 2e-5, 4e-6], [3e-6, 4e-6, 3e-5]])


def tensor_from(values, order):
    t = np.zeros((3, 3))
    for pair, v in zip(order, values, strict=True):
        i, j = int(pair[0]) - 1, int(pair[1]) - 1
        t[i, j] = t[j, i] = v
    return t


@pytest.mark.parametrize(("fmt", "k_order"), [("abaqus", K_ABAQUS), ("calculix", K_CALCULIX)])
@pytest.mark.parametrize("as_mandel", [False, True])
def test_conductivity_and_expansion_read_back(fmt, k_order, as_mandel):
    k, a = (tensor_to_mandel(K), tensor_to_mandel(ALPHA)) if as_mandel else (K, ALPHA)
    text = material_card(fmt, random_stiffness(), conductivity=k, expansion=a)
    blocks = keyword_blocks(text)
    k_back = tensor_from(blocks["*CONDUCTIVITY, TYPE=ANISO"], k_order)
    a_back = tensor_from(blocks["*EXPANSION, TYPE=ANISO"], ALPHA_ORDER)
    assert np.allclose(k_back, K, rtol=1e-12, atol=0.0)
    assert np.allclose(a_back, ALPHA, rtol=1e-12, atol=0.0)


def test_ansys_orthotropic_conductivity_and_expansion():
    k, a = np.diag(np.diag(K)), np.diag(np.diag(ALPHA))
    text = material_card("ansys", random_stiffness(), conductivity=k, expansion=a, density=2.0)
    mp = {ln.split(",")[1]: float(ln.split(",")[3]) for ln in text.splitlines() if ln[:3] == "MP,"}
    assert mp == pytest.approx(
        {"KXX": 5, "KYY": 6, "KZZ": 7, "ALPX": 1e-5, "ALPY": 2e-5, "ALPZ": 3e-5, "DENS": 2.0}
    )
    with pytest.raises(MaterialError, match="Ansys MP takes an orthotropic conductivity only"):
        material_card("ansys", random_stiffness(), conductivity=K)


def test_unknown_format_and_bad_input():
    C = random_stiffness()
    known = ", ".join(CARD_FORMATS)
    with pytest.raises(
        Fe2xError, match=f"unknown material card format 'nastran': known are {known}"
    ):
        material_card("nastran", C)
    with pytest.raises(MaterialError, match=r"plane-strain \(3x3\) one lacks the out-of-plane"):
        material_card("abaqus", C[:3, :3])
    with pytest.raises(MaterialError, match="needs the mass density RO"):
        material_card("lsdyna", C)
    with pytest.raises(MaterialError, match="not symmetric"):
        material_card("abaqus", C + np.triu(np.ones((6, 6))) * 1e3)
    with pytest.raises(MaterialError, match="not positive definite"):
        material_card("abaqus", -C)
    with pytest.raises(Fe2xError, match="material name '1 bad' must start with a letter"):
        material_card("abaqus", C, name="1 bad")


def test_units_are_stated_and_file_written(workdir):
    C = random_stiffness()
    for fmt in CARD_FORMATS:
        text = material_card(fmt, C, density=1.0)
        assert re.search(r"units are those of the input", text), fmt
    path = workdir / "cards" / "eff.inp"
    write_material_card(MPI.COMM_WORLD, path, "abaqus", C, name="RVE_1")
    MPI.COMM_WORLD.barrier()
    assert path.read_text() == material_card("abaqus", C, name="RVE_1")
