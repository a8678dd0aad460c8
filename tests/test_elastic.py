"""Elastic phases: moduli, stiffness and compliance, validation messages, config tables."""

import dataclasses

import numpy as np
import pytest

from fe2x.errors import MaterialError
from fe2x.materials import AnisotropicElastic, IsotropicElastic, elastic_material
from fe2x.materials.mandel import isotropic_stiffness, lame_parameters, rotation_mandel


def _orthotropic_C() -> np.ndarray:
    """Mandel stiffness of an orthotropic material from engineering constants (compliance form)."""
    E1, E2, E3 = 150e9, 10e9, 12e9
    n12, n13, n23 = 0.3, 0.25, 0.4
    G23, G13, G12 = 3.5e9, 5e9, 5.5e9
    S = np.zeros((6, 6))
    S[:3, :3] = [
        [1 / E1, -n12 / E1, -n13 / E1],
        [-n12 / E1, 1 / E2, -n23 / E2],
        [-n13 / E1, -n23 / E2, 1 / E3],
    ]
    S[3, 3], S[4, 4], S[5, 5] = 1 / (2 * G23), 1 / (2 * G13), 1 / (2 * G12)
    return np.linalg.inv(S)


def test_isotropic_moduli():
    m = IsotropicElastic(E=3.0, nu=0.25, name="matrix")
    lam, mu = lame_parameters(3.0, 0.25)
    assert m.lame == (lam, mu)
    assert m.bulk_modulus == pytest.approx(2.0)
    assert m.shear_modulus == pytest.approx(1.2)
    assert m.plane_strain_bulk_modulus == pytest.approx(lam + mu)
    np.testing.assert_allclose(m.stiffness(3), isotropic_stiffness(3.0, 0.25))
    np.testing.assert_allclose(
        m.stiffness(2), [[lam + 2 * mu, lam, 0], [lam, lam + 2 * mu, 0], [0, 0, 2 * mu]]
    )


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize(
    "material",
    [
        IsotropicElastic(E=70e9, nu=0.33),
        IsotropicElastic(E=1.0, nu=-0.9),
        AnisotropicElastic(_orthotropic_C()),
    ],
)
def test_compliance_inverts_stiffness(material, dim):
    I = material.compliance(dim) @ material.stiffness(dim)
    np.testing.assert_allclose(I, np.eye(3 if dim == 2 else 6), atol=1e-12)


def test_anisotropic_plane_strain_and_isotropic_agreement():
    C = isotropic_stiffness(5.0, 0.2)
    a = AnisotropicElastic(C, name="iso-as-aniso")
    i = IsotropicElastic(5.0, 0.2)
    for dim in (2, 3):
        np.testing.assert_allclose(a.stiffness(dim), i.stiffness(dim), rtol=1e-15)
        np.testing.assert_allclose(a.compliance(dim), i.compliance(dim), rtol=1e-12)


def test_anisotropic_stores_readonly_copy():
    C = _orthotropic_C()
    Q = rotation_mandel(np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    C = Q @ C @ Q.T
    a = AnisotropicElastic(C)
    C[0, 0] = -1.0
    assert a.C[0, 0] > 0
    with pytest.raises(ValueError):
        a.C[0, 0] = 1.0
    a.stiffness(3)[0, 0] = 0.0  # returns copies
    assert a.C[0, 0] > 0


def test_frozen():
    m = IsotropicElastic(1.0, 0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.E = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("E", "nu", "match"),
    [
        (1.0, 0.5, r"phase 'fibre': Poisson ratio nu = 0.5 must lie in \(-1, 0.5\)"),
        (1.0, -1.0, r"phase 'fibre': Poisson ratio nu = -1.0 must lie in \(-1, 0.5\)"),
        (1.0, float("nan"), r"phase 'fibre': Poisson ratio nu = nan must lie in \(-1, 0.5\)"),
        (0.0, 0.3, r"phase 'fibre': Young's modulus E = 0.0 must lie in \(0, inf\)"),
        (-2e9, 0.3, r"phase 'fibre': Young's modulus E = -2000000000.0 must lie in \(0, inf\)"),
        (float("inf"), 0.3, r"phase 'fibre': Young's modulus E = inf must lie in \(0, inf\)"),
        ("1e9", 0.3, r"phase 'fibre': Young's modulus E = '1e9' is not a real number"),
        (True, 0.3, r"phase 'fibre': Young's modulus E = True is not a real number"),
        (1.0, None, r"phase 'fibre': Poisson ratio nu = None is not a real number"),
    ],
)
def test_isotropic_rejects(E, nu, match):
    with pytest.raises(MaterialError, match=match):
        IsotropicElastic(E, nu, name="fibre")


def test_unnamed_phase_message():
    with pytest.raises(MaterialError, match=r"^elastic material: Poisson ratio nu = 0.6"):
        IsotropicElastic(1.0, 0.6)


def test_anisotropic_rejects():
    C = _orthotropic_C()
    with pytest.raises(MaterialError, match=r"phase 'ply': .* shape \(3, 3\), expected \(6, 6\)"):
        AnisotropicElastic(np.eye(3), name="ply")
    bad = C.copy()
    bad[0, 1] *= 1.01
    with pytest.raises(MaterialError, match=r"phase 'ply': stiffness C_mandel is not symmetric"):
        AnisotropicElastic(bad, name="ply")
    bad = C.copy()
    bad[2, 2] = np.nan
    with pytest.raises(MaterialError, match=r"phase 'ply': .* non-finite"):
        AnisotropicElastic(bad, name="ply")
    with pytest.raises(MaterialError, match=r"phase 'ply': .* not positive definite"):
        AnisotropicElastic(-C, name="ply")
    singular = isotropic_stiffness(1.0, 0.3)
    singular[:3, :3] = 1.0  # rank-deficient volumetric block
    with pytest.raises(MaterialError, match=r"not positive definite \(smallest eigenvalue"):
        AnisotropicElastic(singular, name="ply")
    with pytest.raises(MaterialError, match=r"phase 'ply': .* not a 6x6 array of numbers"):
        AnisotropicElastic([[1.0, 2.0], [3.0]], name="ply")


def test_tiny_asymmetry_is_accepted_and_removed():
    C = _orthotropic_C()
    C[0, 1] *= 1 + 1e-13
    a = AnisotropicElastic(C)
    np.testing.assert_array_equal(a.C, a.C.T)


def test_elastic_material_from_tables():
    iso = elastic_material("matrix", {"E": 3e9, "nu": 0.35})
    assert iso == IsotropicElastic(3e9, 0.35, name="matrix")
    C = _orthotropic_C()
    ani = elastic_material("ply", {"C_mandel": C.tolist()})
    assert isinstance(ani, AnisotropicElastic) and ani.name == "ply"
    np.testing.assert_allclose(ani.C, C)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"E": 1.0, "nu": 0.3, "G": 1.0}, r"phase 'm': unknown key\(s\) 'G'; allowed keys are 'E'"),
        ({"E": 1.0, "nu": 0.3, "C_mandel": np.eye(6)}, r"phase 'm': give either .*, not both"),
        ({}, r"phase 'm': no elastic constants; give 'E' and 'nu' \(isotropic\) or 'C_mandel'"),
        ({"E": 1.0}, r"phase 'm': missing key 'nu'"),
        ({"E": 1.0, "nu": 0.7}, r"phase 'm': Poisson ratio nu = 0.7 must lie in"),
        ([1.0, 0.3], r"phase 'm': expected a table with keys"),
    ],
)
def test_elastic_material_rejects(table, match):
    with pytest.raises(MaterialError, match=match):
        elastic_material("m", table)
