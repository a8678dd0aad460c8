"""Engineering constants against closed forms: isotropic, transversely isotropic, compliance."""

import numpy as np
import pytest

from fe2x.errors import MaterialError
from fe2x.materials import isotropic_stiffness, plane_strain, rotation_mandel
from fe2x.materials.engineering import (
    EngineeringConstants,
    engineering_constants,
    orthotropic_stiffness,
    orthotropy_defect,
    plane_strain_constants,
)

W = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])
# A carbon-fibre-like orthotropic solid (Pa): fibres along 1.
CFRP = EngineeringConstants(
    E1=140e9, E2=10e9, E3=9e9, nu12=0.3, nu13=0.28, nu23=0.45, G12=5e9, G13=4.5e9, G23=3.2e9
)


def voigt_compliance(c: EngineeringConstants) -> np.ndarray:
    """Textbook compliance, engineering shears, order 11, 22, 33, 23, 13, 12 (Mandel's order)."""
    S = np.zeros((6, 6))
    S[0, 0], S[1, 1], S[2, 2] = 1 / c.E1, 1 / c.E2, 1 / c.E3
    S[0, 1] = S[1, 0] = -c.nu12 / c.E1
    S[0, 2] = S[2, 0] = -c.nu13 / c.E1
    S[1, 2] = S[2, 1] = -c.nu23 / c.E2
    S[3, 3], S[4, 4], S[5, 5] = 1 / c.G23, 1 / c.G13, 1 / c.G12
    return S


def test_round_trip():
    C = orthotropic_stiffness(CFRP)
    back = engineering_constants(C)
    assert np.allclose(back, CFRP, rtol=1e-12, atol=0.0)
    assert np.allclose(orthotropic_stiffness(back), C, rtol=1e-12, atol=1e-12 * np.abs(C).max())


def test_isotropic():
    E, nu = 70e9, 0.33
    c = engineering_constants(isotropic_stiffness(E, nu))
    assert c.E1 == pytest.approx(E, rel=1e-13) and c.E3 == pytest.approx(E, rel=1e-13)
    assert c.nu12 == pytest.approx(nu, rel=1e-13) and c.nu23 == pytest.approx(nu, rel=1e-13)
    for G in (c.G12, c.G13, c.G23):
        assert G == pytest.approx(E / (2 * (1 + nu)), rel=1e-13)


def test_transversely_isotropic_closed_form():
    """Hexagonal stiffness (axis 3) in Voigt constants C11, C12, C13, C33, C44, C66=(C11−C12)/2."""
    C11, C12, C13, C33, C44 = 20e9, 8e9, 6e9, 150e9, 5e9
    C66 = (C11 - C12) / 2
    voigt = np.zeros((6, 6))
    voigt[:3, :3] = [[C11, C12, C13], [C12, C11, C13], [C13, C13, C33]]
    voigt[3, 3] = voigt[4, 4] = C44
    voigt[5, 5] = C66
    c = engineering_constants(voigt * np.outer(W, W))
    D = C11 * C33 - C13**2
    E_T = (C11 - C12) * (C11 * C33 + C12 * C33 - 2 * C13**2) / D
    E_L = C33 - 2 * C13**2 / (C11 + C12)
    assert c.E1 == pytest.approx(E_T, rel=1e-12) and c.E2 == pytest.approx(E_T, rel=1e-12)
    assert c.E3 == pytest.approx(E_L, rel=1e-12)
    assert c.nu12 == pytest.approx((C12 * C33 - C13**2) / D, rel=1e-12)
    assert c.nu13 == pytest.approx(C13 * (C11 - C12) / D, rel=1e-12)
    assert c.nu31 == pytest.approx(C13 / (C11 + C12), rel=1e-12)
    assert c.G13 == pytest.approx(C44, rel=1e-12) and c.G23 == pytest.approx(C44, rel=1e-12)
    assert c.G12 == pytest.approx(C66, rel=1e-12)


def test_constants_reproduce_the_compliance():
    rng = np.random.default_rng(3)
    C = orthotropic_stiffness(CFRP) * (1 + 0.01 * np.diag(rng.random(6)))  # other orthotropic C
    S_voigt = np.linalg.inv(C) * np.outer(W, W)  # engineering-shear compliance
    expected = voigt_compliance(engineering_constants(C))
    assert np.allclose(S_voigt, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_symmetry_of_poisson_ratios():
    c = engineering_constants(orthotropic_stiffness(CFRP))
    assert c.nu21 / c.E2 == pytest.approx(c.nu12 / c.E1, rel=1e-12)
    assert c.nu32 / c.E3 == pytest.approx(c.nu23 / c.E2, rel=1e-12)


def test_anisotropic_refused():
    θ = np.radians(30.0)
    R = np.array([[np.cos(θ), -np.sin(θ), 0], [np.sin(θ), np.cos(θ), 0], [0, 0, 1]])
    Q = rotation_mandel(R)
    C = Q @ orthotropic_stiffness(CFRP) @ Q.T
    defect, _ = orthotropy_defect(C)
    assert defect > 0.1
    with pytest.raises(
        MaterialError, match=r"not orthotropic in the cell axes: coupling .* = 0\.\d+"
    ):
        engineering_constants(C)


def test_plane_strain_moduli():
    """E1_ps = E1/(1 − ν13 ν31), ν12_ps = (ν12 + ν13 ν32)/(1 − ν13 ν31) (ε33 = 0)."""
    c = CFRP
    ps = plane_strain_constants(plane_strain(orthotropic_stiffness(c)))
    assert ps.E1_ps == pytest.approx(c.E1 / (1 - c.nu13 * c.nu31), rel=1e-12)
    assert ps.E2_ps == pytest.approx(c.E2 / (1 - c.nu23 * c.nu32), rel=1e-12)
    assert ps.nu12_ps == pytest.approx(
        (c.nu12 + c.nu13 * c.nu32) / (1 - c.nu13 * c.nu31), rel=1e-12
    )
    assert ps.G12 == pytest.approx(c.G12, rel=1e-12)
    with pytest.raises(MaterialError, match=r"plane-strain .* does not determine the 3D"):
        engineering_constants(plane_strain(orthotropic_stiffness(c)))


@pytest.mark.parametrize(
    ("change", "match"),
    [({"E2": -1.0}, "positive moduli"), ({"nu23": 1.5}, "not positive definite")],
)
def test_bad_constants(change, match):
    with pytest.raises(MaterialError, match=match):
        orthotropic_stiffness(CFRP._replace(**change))
