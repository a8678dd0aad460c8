"""`fe2x sve` for polycrystals against independent references: Voigt–Reuss of every realization,
the Hashin–Shtrikman bounds of cubic copper (published values) through Huet's hierarchy, the
exact bulk modulus, a closed-form one-point variance, rank and group independence, the decay of
the scatter with size, and one-line errors for configs that do not fit the microstructure."""

import itertools
import json
import math
import re

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command

from fe2x.materials import IsotropicElastic
from fe2x.materials.crystal import CrystalPlasticity
from fe2x.sve import SVEStudy, orientation_point_variance, run_sve_study

CU = (168.4e9, 121.4e9, 75.4e9)  # copper, Pa
HS_SHEAR = (45.96e9, 49.45e9)  # Hashin & Shtrikman (1962) for copper, to the published digits
HS_BULK = 137.07e9  # (C11 + 2 C12) / 3, published to these digits
S2 = math.sqrt(2.0)


def copper() -> CrystalPlasticity:
    return CrystalPlasticity(*CU, xi0=31.0e6, name="grains")


def study(**kw) -> SVEStudy:
    """A polycrystal study of copper: coarse 2D Q1 voxels unless told otherwise."""
    settings = dict(
        dim=2,
        sizes=[2.0, 3.0],
        realizations=2,
        materials={"grains": copper()},
        microstructure="polycrystal",
        voxels_per_grain=4.0,
        degree=1,
        seed=4,
    )
    settings.update(kw)
    return SVEStudy(**settings)


def shear(C: np.ndarray) -> float:
    """Shear modulus of the isotropic projection, written out: 3D (tr C − 3K)/10 in Mandel
    form, 2D plane strain (tr C − 2κ)/4."""
    if C.shape == (6, 6):
        return (np.trace(C) - C[:3, :3].sum() / 3.0) / 10.0
    return (np.trace(C) - (C[0, 0] + C[1, 1] + 2.0 * C[0, 1]) / 2.0) / 4.0


def at_least(A: np.ndarray, B: np.ndarray) -> bool:
    """A ≥ B in the order of symmetric matrices (A − B positive semi-definite), to round-off."""
    D = A - B
    return np.linalg.eigvalsh(0.5 * (D + D.T)).min() >= -1e-9 * np.abs(A).max()


def loewner_between(lower: np.ndarray, C: np.ndarray, upper: np.ndarray) -> bool:
    """lower ≤ C ≤ upper in the order of symmetric matrices, to round-off."""
    return at_least(upper, C) and at_least(C, lower)


# -- bounds ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def copper_3d_periodic():
    """27 copper grains on 8³ voxels, Q2, periodic, three realizations (~10 s on one core)."""
    settings = study(
        dim=3, sizes=[3.0], realizations=3, voxels_per_grain=8 / 3, degree=2, bcs=("periodic",)
    )
    return run_sve_study(settings, MPI.COMM_WORLD)


def test_3d_copper_periodic_lies_within_hashin_shtrikman_and_its_voigt_reuss(copper_3d_periodic):
    """Every realization: isotropic-projection shear within the cubic HS bounds 45.96–49.45 GPa
    and C_eff between its own Reuss and Voigt bounds (Loewner order); the bulk modulus is
    137.07 GPa exactly (a uniform hydrostatic strain solves the cell: a cubic crystal answers
    it with the same hydrostatic stress in every orientation); the Voigt shear is the
    orientation-independent (C11 − C12 + 3 C44)/5."""
    result = copper_3d_periodic
    assert [r.n_grains for r in result.realizations] == [27] * 3
    for r in result.realizations:
        C = r.C["periodic"]
        assert HS_SHEAR[0] < shear(C) < HS_SHEAR[1], shear(C) / 1e9
        assert r.property("periodic", "shear") == pytest.approx(shear(C), rel=1e-12)
        assert r.property("periodic", "bulk") == pytest.approx(HS_BULK, abs=5e6)
        assert r.property("periodic", "bulk") == pytest.approx((CU[0] + 2 * CU[1]) / 3, rel=1e-9)
        assert loewner_between(r.reuss, C, r.voigt)
        assert shear(r.voigt) == pytest.approx((CU[0] - CU[1] + 3 * CU[2]) / 5, rel=1e-12)
        assert r.bound("reuss", "shear") < shear(C) < r.bound("voigt", "shear")
        assert r.hill_mandel_residual["periodic"] < 1e-10


def test_3d_kubc_and_subc_bracket_hashin_shtrikman():
    """Eight grains, Q1, three realizations under all BCs: every realization has Voigt ≥ KUBC ≥
    PBC ≥ SUBC ≥ Reuss, and the ensemble means satisfy Huet's hierarchy with the HS bounds of
    the effective medium, μ(⟨C_KUBC⟩) ≥ μ_eff ≥ HS lower and μ(⟨C_SUBC⟩) ≤ μ_eff ≤ HS upper.
    KUBC and SUBC bulk moduli are 137.07 GPa too (the hydrostatic solution meets both BCs)."""
    result = run_sve_study(study(dim=3, sizes=[2.0], realizations=3), MPI.COMM_WORLD)
    for r in result.realizations:
        chain = [r.voigt, r.C["kubc"], r.C["periodic"], r.C["subc"], r.reuss]
        assert all(at_least(A, B) for A, B in itertools.pairwise(chain))
        for bc in ("kubc", "subc"):
            assert r.property(bc, "bulk") == pytest.approx((CU[0] + 2 * CU[1]) / 3, rel=1e-9)
    mean = {bc: np.mean([r.C[bc] for r in result.realizations], axis=0) for bc in ("kubc", "subc")}
    assert shear(mean["kubc"]) > HS_SHEAR[0] and shear(mean["subc"]) < HS_SHEAR[1]


def test_2d_every_realization_lies_within_its_voigt_reuss():
    """Plane strain (columnar grains, 3D orientations): Reuss ≤ SUBC ≤ PBC ≤ KUBC ≤ Voigt for
    every realization, the bounds being the cell's own ⟨C⟩ and ⟨C⁻¹⟩⁻¹ of the plane-strain
    stiffness field (no HS statement: a columnar aggregate is not 3D isotropic)."""
    result = run_sve_study(study(sizes=[2.0, 3.0], realizations=3), MPI.COMM_WORLD)
    for r in result.realizations:
        assert loewner_between(r.reuss, r.C["subc"], r.C["periodic"])
        assert loewner_between(r.C["periodic"], r.C["kubc"], r.voigt)
        for bc in result.settings.bcs:
            assert r.bound("reuss", "shear") <= r.property(bc, "shear") <= r.bound("voigt", "shear")


# -- the one-point variance ------------------------------------------------------------------
def test_one_point_variance_of_c1111_is_the_closed_form():
    """C'₁₁₁₁ = C11 − 2δ J with δ = C11 − C12 − 2 C44 and J = Σ_{i<j} n_i² n_j² for the sample
    axis n in the crystal frame; over uniform n, E J = 1/5 and E J² = 1/21, so
    Var C'₁₁₁₁ = 16 δ² / 525 (3D, and 2D, whose plane-strain C₁₁₁₁ is the same entry).
    The 3D isotropic-projection moduli are rotation invariants: zero."""
    delta = CU[0] - CU[1] - 2 * CU[2]
    expected = 16 * delta**2 / 525
    for dim in (2, 3):
        D2 = orientation_point_variance(copper(), dim)["C1111"]
        assert D2 == pytest.approx(expected, rel=0.03)  # Monte Carlo over 65536 orientations
    for name in ("bulk", "shear"):
        assert orientation_point_variance(copper(), 3)[name] <= (1e-12 * CU[0]) ** 2


def test_2d_plane_strain_bulk_point_variance_by_an_independent_sample():
    """κ = (C'₁₁₁₁ + C'₂₂₂₂ + 2 C'₁₁₂₂)/4 of rotated cubic tensors, by the test's own 4th-order
    rotation over its own uniform rotations (normalised Gaussian quaternions)."""
    rng = np.random.default_rng(7)
    q = rng.normal(size=(20000, 4))
    q /= np.linalg.norm(q, axis=1)[:, None]
    w, x, y, z = q.T
    R = np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)
    C11, C12, C44 = CU
    eye = np.eye(3)
    C = (
        C12 * np.einsum("ij,kl->ijkl", eye, eye)
        + C44 * (np.einsum("ik,jl->ijkl", eye, eye) + np.einsum("il,jk->ijkl", eye, eye))
        + (C11 - C12 - 2 * C44) * np.einsum("ai,aj,ak,al->ijkl", eye, eye, eye, eye)
    )
    Cr = np.einsum("nia,njb,nkc,nld,abcd->nijkl", R, R, R, R, C)
    kappa = (Cr[:, 0, 0, 0, 0] + Cr[:, 1, 1, 1, 1] + 2 * Cr[:, 0, 0, 1, 1]) / 4
    assert orientation_point_variance(copper(), 2)["bulk"] == pytest.approx(kappa.var(), rel=0.05)


def test_3d_integral_range_is_left_out_with_its_reason(copper_3d_periodic):
    data = copper_3d_periodic.to_dict()
    assert data["microstructure"] == "polycrystal"
    assert data["point_variance"]["values"]["bulk"] is None
    assert data["point_variance"]["values"]["shear"] is None
    assert set(data["point_variance"]["kanit_left_out"]) == {"bulk", "shear"}
    assert "rotation invariant" in data["point_variance"]["kanit_left_out"]["shear"]
    assert data["statistics"]["periodic"]["shear"]["kanit"] is None
    assert data["realizations"][0]["n_grains"] == 27
    assert "n_inclusions" not in data["realizations"][0]


# -- parallelism -------------------------------------------------------------------------------
def _comparable(result) -> np.ndarray:
    return np.array([[r.C[bc] for bc in result.settings.bcs] for r in result.realizations])


@pytest.mark.parametrize("group_size", [1, "world"])
def test_same_results_on_world_groups_and_self(group_size):
    """The same apparent stiffness and seeds on COMM_SELF, on all ranks in groups of one, and
    on one group of every rank: cells, seeds and orientations come from the realization's seed."""
    comm = MPI.COMM_WORLD
    gs = comm.size if group_size == "world" else group_size
    on_world = run_sve_study(study(group_size=gs), comm)
    on_self = run_sve_study(study(), MPI.COMM_SELF)
    a, b = _comparable(on_world), _comparable(on_self)
    assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
    assert [r.seed for r in on_world.realizations] == [r.seed for r in on_self.realizations]
    for r, s in zip(on_world.realizations, on_self.realizations, strict=True):
        assert np.allclose(r.voigt, s.voigt, rtol=1e-12) and np.allclose(r.reuss, s.reuss)


# -- scatter -----------------------------------------------------------------------------------
def test_scatter_of_the_shear_modulus_falls_with_size():
    """2D, 4, 16 and 64 grains, eight realizations each: under every BC the standard deviation
    of the shear modulus at 64 grains is below half that at 4 (short-range correlation: std ∝
    L^(−d/2), a quarter), and the fitted variance decay is near −d = −2 (within the scatter of
    eight-sample variances, about ±50 % each)."""
    result = run_sve_study(study(sizes=[2.0, 4.0, 8.0], realizations=8), MPI.COMM_WORLD)
    for bc in result.settings.bcs:
        std = [s.std for s in result.statistics[bc]["shear"]]
        assert std[2] < 0.5 * std[0], (bc, std)
        assert -3.0 < result.decay[bc]["shear"].exponent < -1.0


# -- the config --------------------------------------------------------------------------------
GOOD = """
[sve]
microstructure = "polycrystal"
dim = 2
sizes = [1.5, 2.5]
realizations = 2
voxels_per_grain = 3
degree = 1
seed = 3

[materials.grains]
model = "crystal"
"""


def test_tiny_polycrystal_study_from_a_config(workdir, capsys):
    code, _, out = run_command("sve", workdir, GOOD, capsys)
    assert code == 0
    if MPI.COMM_WORLD.rank == 0:
        data = json.loads((out / "sve.json").read_text())
        assert data["settings"]["n_grains"] == [2, 6]  # round(1.5²), round(2.5²)
        assert data["settings"]["resolution"] == [4, 8]  # round(1.5 · 3), round(2.5 · 3)
        assert [r["n_grains"] for r in data["realizations"]] == [2, 2, 6, 6]
        grains = data["settings"]["materials"]["grains"]
        assert grains == {"C11": CU[0], "C12": CU[1], "C44": CU[2]}
        assert (out / "sve_variance_decay.png").stat().st_size > 0
    MPI.COMM_WORLD.barrier()


BAD = {
    "volume fraction": (
        GOOD.replace("degree = 1", "degree = 1\nvolume_fraction = 0.3"),
        r"\[sve\] volume_fraction does not apply to microstructure = 'polycrystal'",
    ),
    "min gap": (GOOD.replace("degree = 1", "degree = 1\nmin_gap = 0.1"), r"min_gap does not"),
    "elements": (
        GOOD.replace("degree = 1", "degree = 1\nelements_per_diameter = 5"),
        r"elements_per_diameter does not apply",
    ),
    "geometry order": (
        GOOD.replace("degree = 1", "degree = 1\ngeometry_order = 1"),
        r"geometry_order does not apply",
    ),
    "voxels for inclusions": (
        GOOD.replace('microstructure = "polycrystal"', "volume_fraction = 0.3"),
        r"voxels_per_grain does not apply to microstructure = 'inclusions'",
    ),
    "no volume fraction": (
        GOOD.replace('microstructure = "polycrystal"', "").replace("voxels_per_grain = 3", ""),
        r"volume_fraction is required for microstructure = 'inclusions'",
    ),
    "inclusion phases": (
        GOOD.replace("[materials.grains]", "[materials.matrix]"),
        r"exactly the phases \['grains'\]; missing \['grains'\]; unknown \['matrix'\]",
    ),
    "extra phase": (
        GOOD + '\n[materials.matrix]\nmodel = "crystal"\n',
        r"exactly the phases \['grains'\]; unknown \['matrix'\]",
    ),
    "one stiffness for all grains": (
        GOOD.replace('model = "crystal"', "E = 1.0\nnu = 0.3"),
        r"\[materials.grains\] model = 'elastic' gives every grain the same stiffness",
    ),
    "unknown microstructure": (
        GOOD.replace('"polycrystal"', '"foam"'),
        r"microstructure = 'foam': expected 'inclusions' or 'polycrystal'",
    ),
    "too few voxels": (
        GOOD.replace("voxels_per_grain = 3", "voxels_per_grain = 0.5"),
        r"grains do not fit in .* voxels; raise voxels_per_grain",
    ),
    "bad voxels": (
        GOOD.replace("voxels_per_grain = 3", "voxels_per_grain = -1"),
        r"voxels_per_grain = -1: expected a positive number",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(workdir, capsys, case):
    text, pattern = BAD[case]
    code, err, out = run_command("sve", workdir, text, capsys)
    assert code != 0
    assert not (out / "sve.json").exists()
    if MPI.COMM_WORLD.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fe2x: error: "), err
        assert re.search(pattern, lines[0]), lines[0]


def test_api_errors():
    with pytest.raises(ValueError, match="volume_fraction applies to inclusions"):
        study(volume_fraction=0.3)
    with pytest.raises(ValueError, match="exactly the material 'grains'"):
        study(materials={"grains": copper(), "matrix": copper()})
    with pytest.raises(ValueError, match="per-grain 'orientation'"):
        study(materials={"grains": IsotropicElastic(1.0, 0.3)})
    with pytest.raises(ValueError, match="microstructure must be one of"):
        study(microstructure="foam")
    with pytest.raises(ValueError, match="volume_fraction must be in"):
        study(microstructure="inclusions")


def test_a_realization_is_the_rve_of_its_seed():
    """A realization rebuilt as the `fe2x homogenize` cell `[cell] type = "polycrystal"` of the
    same seed, grain count and resolution (its orientations drawn from the same seed) has the
    same periodic C_eff: any SVE of a study can be looked at alone."""
    from fe2x.config.cells import PolycrystalCell
    from fe2x.micro.homogenization import homogenize

    result = run_sve_study(study(sizes=[2.0], realizations=1, bcs=("periodic",)), MPI.COMM_WORLD)
    r = result.realizations[0]
    cell = PolycrystalCell(
        type="polycrystal", dim=2, lengths=(2.0, 2.0), n_grains=4, resolution=8, seed=r.seed
    )
    C = homogenize(cell.build(MPI.COMM_WORLD), {"grains": copper()}, bcs=("periodic",), degree=1)
    assert np.allclose(C.C_eff["periodic"], r.C["periodic"], rtol=1e-10, atol=1e-10 * CU[0])
