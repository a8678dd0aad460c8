"""Mixed control in (F̄, P̄) along a path: the exact laminate in uniaxial stress, Cauchy stress
targets, the rotation that a path must fix, inverted material, and `fe2x rve-path` with
finite-strain materials."""

import json
import re
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command
from finite_laminate import laminate
from scipy.optimize import brentq

from fe2x.geometry import laminate_cell
from fe2x.materials.hyperelastic import NeoHookean
from fe2x.materials.kinematics import embed_plane_strain
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.nonlinear import STABILITY, NonlinearRVE
from fe2x.micro.path import LoadPath, cauchy_stress, drive, free_rotations

SOFT = NeoHookean(75.0, 0.3, "soft")
STIFF = NeoHookean(400.0, 0.2, "stiff")
N1 = np.array([1.0, 0.0, 0.0])


def uniaxial(stretch: float, steps: int, cauchy: bool = False) -> LoadPath:
    """F11 from 1 to ``stretch``, P22 = 0 (or σ22 = 0), F12 = F21 = 0 (plane strain,
    row-major 11 12 21 22)."""
    values = np.array([[1.0, 0.0, 0.0, 0.0], [stretch, 0.0, 0.0, 0.0]])
    lateral = np.array([False, False, False, True])
    return LoadPath(
        np.array([0.0, 1.0]), values, lateral, steps, "finite", lateral if cauchy else None
    )


def laminate_uniaxial(stretch: float) -> tuple[float, float]:
    """The exact laminate under F̄ = diag(λ, F22) with F22 solving P̄22(F22) = 0: (F22, P̄11)."""

    def response(F22: float) -> np.ndarray:
        F = embed_plane_strain(np.array([[stretch, 0.0, 0.0, F22]]))
        return laminate(F, (SOFT, STIFF), (0.5, 0.5), N1).P[0]

    F22 = brentq(lambda f: response(f)[4], 0.3, 1.5, xtol=1e-15, rtol=1e-15)
    return F22, response(F22)[0]


@pytest.fixture(scope="module")
def laminate_2d():
    """The two-layer plane-strain cell (soft, stiff) of the laminate tests."""
    return laminate_cell(
        MPI.COMM_WORLD, 2, [1.0, 1.0], [0.5, 0.5], 0, 0.25, 1, phase_names=["soft", "stiff"]
    )


def test_uniaxial_stress_of_the_laminate_is_exact(laminate_2d):
    """Stretch across the layers with the lateral stress free: F̄22 and P̄11 at every step are
    those of the exact laminate with P̄22 = 0 solved for F22 by root finding."""
    rve = NonlinearRVE(laminate_2d, {"soft": SOFT, "stiff": STIFF}, degree=1)
    result = drive(rve, uniaxial(1.6, 4), 75.0, rtol=1e-12)
    assert result.completed
    for step in result.steps:
        F22, P11 = laminate_uniaxial(step.E[0])
        assert step.E[3] == pytest.approx(F22, rel=1e-10)
        assert step.Sigma[0] == pytest.approx(P11, rel=1e-9)
        assert abs(step.Sigma[3]) < 1e-11 * 75.0
        assert step.E[1] == step.E[2] == 0.0
        assert 0.0 < step.diagnostics[STABILITY] <= 1.5
    assert result.steps[-1].E[3] < 0.95  # the lateral contraction


def neo_hookean_cauchy(F: np.ndarray, law: NeoHookean) -> np.ndarray:
    """σ = (μ (F Fᵀ − I) + λ ln J I) / J of the compressible Neo-Hookean law (3×3 F)."""
    lam, mu = law.lame
    J = np.linalg.det(F)
    return (mu * (F @ F.T - np.eye(3)) + lam * np.log(J) * np.eye(3)) / J


@pytest.mark.parametrize("dim", [2, 3])
def test_cauchy_stress_derivative_is_the_finite_difference(dim):
    """σ̄ and ∂σ̄/∂F̄ from a Neo-Hookean point's P̄ and dP̄/dF̄ against the closed-form σ(F) and
    its central differences (plane strain in 2D: F33 = 1)."""
    F = np.array([[1.3, 0.2, -0.1], [0.15, 0.8, 0.25], [-0.05, 0.1, 1.1]])[:dim, :dim]

    def sigma(F: np.ndarray) -> np.ndarray:
        full = np.eye(3)
        full[:dim, :dim] = F
        return neo_hookean_cauchy(full, SOFT)[:dim, :dim].reshape(-1)

    point = MaterialPoint(SOFT, dim).solve(F.reshape(-1))
    s, ds = cauchy_stress(F.reshape(-1), point.Sigma, point.C)
    assert np.allclose(s, sigma(F), rtol=0.0, atol=1e-12 * np.abs(s).max())
    h, n = 1e-5, dim * dim
    fd = np.column_stack(
        [
            (sigma(F + h * e.reshape(dim, dim)) - sigma(F - h * e.reshape(dim, dim))) / (2 * h)
            for e in np.eye(n)
        ]
    )
    assert np.abs(ds - fd).max() < 1e-8 * np.abs(fd).max()


def lateral_stretch(stretch: float, law: NeoHookean, sigma_lateral: float) -> tuple[float, float]:
    """F = diag(λ, f, f) with σ22 = σ33 = ``sigma_lateral`` by scalar Newton on the closed form
    G (f² − 1) + Λ ln(λ f²) − s λ f² = 0: (f, σ11)."""
    lam, mu = law.lame
    f = 1.0
    for _ in range(50):
        residual = (
            mu * (f * f - 1.0) + lam * np.log(stretch * f * f) - sigma_lateral * stretch * f * f
        )
        step = residual / (2.0 * mu * f + 2.0 * lam / f - 2.0 * sigma_lateral * stretch * f)
        f -= step
        if abs(step) < 1e-15:
            break
    J = stretch * f * f
    return f, (mu * (stretch**2 - 1.0) + lam * np.log(J)) / J


@pytest.mark.parametrize("sigma_lateral", [0.0, -10.0])
def test_cauchy_targets_of_a_homogeneous_cell(sigma_lateral):
    """One Neo-Hookean phase in 3D, F̄11 from 1 to 1.5 and to 0.7, σ̄22 = σ̄33 = s, no shear:
    the lateral stretch and σ̄11 at every step are the closed form's; with s ≠ 0 the Piola
    stress differs from the target (P̄22 = s J / F̄22), so σ̄ is what is controlled."""
    cell = laminate_cell(MPI.COMM_WORLD, 3, [1.0, 1.0, 1.0], [1.0], 0, 1.0, 1, ["rubber"])
    lateral = np.zeros(9, dtype=bool)
    lateral[[4, 8]] = True
    for stretch in (1.5, 0.7):
        values = np.tile(np.eye(3).reshape(9), (2, 1))
        values[1, 0] = stretch
        values[:, [4, 8]] = [[0.0, 0.0], [sigma_lateral, sigma_lateral]]
        path = LoadPath(np.array([0.0, 1.0]), values, lateral, 3, "finite", lateral)
        rve = NonlinearRVE(cell, {"rubber": SOFT}, degree=1, stability=False)
        result = drive(rve, path, 75.0, rtol=1e-12)
        assert result.completed
        for step in result.steps:
            f, sigma11 = lateral_stretch(step.E[0], SOFT, sigma_lateral * step.t)
            assert step.E[4] == pytest.approx(f, rel=1e-10)
            assert step.E[8] == pytest.approx(f, rel=1e-10)
            sigma = cauchy_stress(step.E, step.Sigma, step.C)[0]
            assert sigma[0] == pytest.approx(sigma11, rel=1e-9)
            assert np.allclose(sigma[[4, 8]], sigma_lateral * step.t, rtol=0.0, atol=1e-10)
            J = step.E[0] * f * f
            assert np.allclose(step.Sigma[[4, 8]], sigma_lateral * step.t * J / f, atol=1e-10)
            assert np.abs(np.delete(step.E, [0, 4, 8])).max() == 0.0
            assert step.control_iterations <= 5  # quadratic (the tangent is ∂σ̄/∂F̄) to 1e-12


def test_cauchy_and_piola_free_lateral_stress_are_one_path(laminate_2d):
    """Under F̄ = diag(λ, F22) σ̄22 = P̄22 F22 / J, so σ̄22 = 0 and P̄22 = 0 are the same path
    (by another control Jacobian): F̄ and P̄ agree at every step."""
    laws = {"soft": SOFT, "stiff": STIFF}
    piola = drive(NonlinearRVE(laminate_2d, laws, degree=1), uniaxial(1.6, 4), 75.0, rtol=1e-12)
    cauchy = drive(
        NonlinearRVE(laminate_2d, laws, degree=1), uniaxial(1.6, 4, cauchy=True), 75.0, rtol=1e-12
    )
    assert piola.completed and cauchy.completed
    for a, b in zip(piola.steps, cauchy.steps, strict=True):
        assert np.allclose(a.E, b.E, rtol=1e-11, atol=0.0)
        assert np.allclose(a.Sigma, b.Sigma, rtol=0.0, atol=1e-9 * np.abs(a.Sigma).max())


def test_cauchy_targets_are_stress_controlled_components():
    lateral = np.array([False, False, False, True])
    with pytest.raises(ValueError, match="among the stress-controlled components"):
        LoadPath(np.array([0.0, 1.0]), np.zeros((2, 4)), lateral, 1, "finite", ~lateral)
    with pytest.raises(ValueError, match="need finite kinematics"):
        LoadPath(np.array([0.0, 1.0]), np.zeros((2, 3)), lateral[1:], 1, "small", lateral[1:])


def test_a_path_must_fix_the_rotation():
    assert free_rotations(np.array([True, True, True, False])) == [(0, 1)]
    assert free_rotations(np.array([False] * 9)) == []
    assert free_rotations(np.array([0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=bool)) == [(0, 2)]
    with pytest.raises(ValueError, match="F12 and F21 are both stress-controlled"):
        LoadPath(np.array([0.0, 1.0]), np.zeros((2, 4)), np.array([0, 1, 1, 0], bool), 1, "finite")


def test_an_inverting_path_stops_with_a_clear_message():
    """F11 from 1 to −1: the steps beyond F11 = 0 are cut back, then the path stops."""
    values = np.array([[1.0, 0.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 1.0]])
    path = LoadPath(np.array([0.0, 1.0]), values, np.zeros(4, dtype=bool), 4, "finite")
    result = drive(MaterialPoint(SOFT, 2), path, 75.0, max_cutbacks=3)
    assert not result.completed
    assert "det F̄" in result.message and "inverted" in result.message
    assert result.steps and all(s.E[0] > 0.0 for s in result.steps)


CONFIG = """
[cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "stiff"]
mesh_size = 0.25
geometry_order = 1

[materials.soft]
model = "neo_hookean"
E = 75.0
nu = 0.3

[materials.stiff]
model = "neo_hookean"
K = 222.222222222222
G = 166.666666666667

[rve]
degree = 1

[path]
times = [0.0, 1.0]
steps = 3
{path}
"""
UNIAXIAL = "F11 = [1.0, 1.6]\nP22 = 0.0"


def run(workdir: Path, text: str, capsys) -> tuple[int, str, Path]:
    return run_command("rve-path", workdir, text, capsys)


def test_rve_path_with_finite_strain_materials(workdir, capsys):
    code, _, out = run(workdir, CONFIG.format(path=UNIAXIAL), capsys)
    assert code == 0
    result = json.loads((out / "path.json").read_text())
    assert result["kinematics"] == "finite" and result["notation"] == "row-major"
    assert result["control"] == {"11": "strain", "12": "strain", "21": "strain", "22": "stress"}
    last = result["steps"][-1]
    assert last["F"][0] == pytest.approx(1.6) and last["F"][1:3] == [0.0, 0.0]
    stiff = NeoHookean.from_bulk_shear(222.222222222222, 166.666666666667)
    assert stiff.E == pytest.approx(400.0) and stiff.nu == pytest.approx(0.2)
    F22, P11 = laminate_uniaxial(1.6)
    assert last["F"][3] == pytest.approx(F22, rel=1e-7)
    assert last["P"][0] == pytest.approx(P11, rel=1e-7)
    assert 0.0 < last["diagnostics"][STABILITY] < 1.5
    assert result["micro_instability_step"] is None
    rows = (out / "path.csv").read_text().splitlines()
    assert rows[0].startswith("step,t,F_11,F_12,F_21,F_22,P_11") and STABILITY in rows[0]


def test_rve_path_with_a_cauchy_target(workdir, capsys):
    """sigma22 = 0 in the config: the exact laminate's lateral stretch, σ̄ in path.json."""
    code, _, out = run(workdir, CONFIG.format(path="F11 = [1.0, 1.6]\nsigma22 = 0.0"), capsys)
    assert code == 0
    result = json.loads((out / "path.json").read_text())
    assert result["control"] == {"11": "strain", "12": "strain", "21": "strain", "22": "cauchy"}
    last = result["steps"][-1]
    F22, P11 = laminate_uniaxial(1.6)
    assert last["F"][3] == pytest.approx(F22, rel=1e-7)
    assert last["sigma"][0] == pytest.approx(P11 / F22, rel=1e-7)
    assert abs(last["sigma"][3]) < 1e-7 * abs(last["sigma"][0])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("E11 = [0.0, 0.1]", r"E11: the materials are finite-strain models, driven by F11, P11"),
        ("F11 = [1.0, 1.2]\nP12 = 0.0\nP21 = 0.0", r"rotation in the 1-2 plane is left free"),
        ("F11 = [1.0, -0.5]", r"det F = .* <= 0 at t = .*the path inverts the material"),
        ("F11 = [1.0, 1.2]\nF33 = 1.1", r"unknown key 'F33' for a 2D cell"),
        ("F11 = [1.0, 1.2]\nP11 = 0.0", r"F11 and P11 both given"),
        ("F22 = [1.0, 1.2]\nP11 = 0.0\nsigma11 = 0.0", r"P11 and sigma11 both given"),
        ("F11 = [1.0, 1.2]\nsigma21 = 0.0", r"unknown key 'sigma21'"),
        ("F11 = [1.0, 1.2]\nsigma33 = 0.0", r"unknown key 'sigma33' \(for a 2D cell\)"),
    ],
)
def test_bad_finite_paths_are_refused(workdir, capsys, path, message):
    code, err, _ = run(workdir, CONFIG.format(path=path), capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:  # rank 0 prints the error
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err


def test_a_cauchy_target_in_a_small_strain_path_is_refused(workdir, capsys):
    text = CONFIG.format(path="E11 = [0.0, 0.01]\nsigma22 = 0.0").replace("neo_hookean", "elastic")
    text = text.replace("K = 222.222222222222\nG = 166.666666666667", "E = 400.0\nnu = 0.2")
    code, err, _ = run(workdir, text, capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(r"unknown key 'sigma22' \(for a small-strain path use S\)", err), err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            '[materials.soft]\nmodel = "elastic"\nE = 75.0\nnu = 0.3',
            r"\['stiff'\] have finite-strain models and \['soft'\] small-strain ones",
        ),
        ('[materials.soft]\nmodel = "neo_hookean"\nE = 75.0', r"give E and nu, or K and G"),
    ],
)
def test_bad_finite_materials_are_refused(workdir, capsys, change, message):
    text = CONFIG.format(path=UNIAXIAL)
    table = change.split("\n", 1)[0]
    start = text.index(table)
    end = text.index("\n[", start + 1)
    code, err, _ = run(workdir, text[:start] + change + "\n" + text[end:], capsys)
    assert code != 0
    if MPI.COMM_WORLD.rank == 0:
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err
