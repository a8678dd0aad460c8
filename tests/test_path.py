"""The mixed-control path driver on a material point, against closed-form uniaxial responses."""

import numpy as np
import pytest

from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.model import MicroModel, RVEResult
from fe2x.micro.path import LoadPath, drive

E_MOD, NU, SIGMA_Y = 200e3, 0.3, 250.0


def uniaxial_path(strains: list[float], dim: int, steps: int) -> LoadPath:
    """E11 follows ``strains`` at t = 0, 1, 2, ...; every other stress component stays zero."""
    n = 6 if dim == 3 else 3
    values = np.zeros((len(strains), n))
    values[:, 0] = strains
    stress_controlled = np.ones(n, dtype=bool)
    stress_controlled[0] = False
    return LoadPath(np.arange(len(strains), dtype=float), values, stress_controlled, steps)


def test_material_point_is_a_micro_model():
    assert isinstance(MaterialPoint(J2Plasticity(E_MOD, NU, SIGMA_Y), 3), MicroModel)


@pytest.mark.parametrize(("H", "H_kin"), [(0.0, 0.0), (10e3, 0.0), (0.0, 20e3), (5e3, 5e3)])
def test_uniaxial_stress_follows_bilinear_law(H, H_kin):
    law = J2Plasticity(E_MOD, NU, SIGMA_Y, H=H, H_kin=H_kin)
    result = drive(MaterialPoint(law, 3), uniaxial_path([0.0, 0.01], 3, 20), SIGMA_Y)
    assert result.completed
    E_t = E_MOD * (H + H_kin) / (E_MOD + H + H_kin)
    eps_y = SIGMA_Y / E_MOD
    for step in result.steps:
        eps = step.E[0]
        expected = E_MOD * eps if eps <= eps_y else SIGMA_Y + E_t * (eps - eps_y)
        assert step.Sigma[0] == pytest.approx(expected, rel=1e-8)
        assert np.abs(step.Sigma[1:]).max() < 1e-8 * SIGMA_Y
    # The uniaxial tangent condensed from C equals E_t after yield.
    C = result.steps[-1].C
    S = np.linalg.inv(C)
    assert 1.0 / S[0, 0] == pytest.approx(E_t, rel=1e-8, abs=1e-9 * E_MOD)


def test_bauschinger_effect_with_kinematic_hardening():
    """Pure kinematic hardening: after loading to σ_max, reverse yield occurs at σ_max − 2σ_y."""
    law = J2Plasticity(E_MOD, NU, SIGMA_Y, H_kin=20e3)
    result = drive(MaterialPoint(law, 3), uniaxial_path([0.0, 0.005, -0.005], 3, 400), SIGMA_Y)
    assert result.completed
    sigma = np.array([s.Sigma[0] for s in result.steps])
    eps = np.array([s.E[0] for s in result.steps])
    peak = int(np.argmax(eps))
    sigma_max = sigma[peak]
    # Unloading is elastic (slope E) from the peak; the last steps are plastic with slope E_t.
    E_t = E_MOD * 20e3 / (E_MOD + 20e3)
    slope = (sigma[-1] - sigma[-2]) / (eps[-1] - eps[-2])
    assert slope == pytest.approx(E_t, rel=1e-8)
    assert (sigma[peak + 1] - sigma_max) / (eps[peak + 1] - eps[peak]) == pytest.approx(E_MOD)
    # Where the elastic unloading line meets the reverse plastic line: σ_max − 2σ_y.
    eps_star = (sigma[-1] - E_t * eps[-1] - sigma_max + E_MOD * eps[peak]) / (E_MOD - E_t)
    sigma_star = sigma_max + E_MOD * (eps_star - eps[peak])
    assert sigma_star == pytest.approx(sigma_max - 2 * SIGMA_Y, rel=1e-8)


def test_plane_strain_uniaxial_stress_elastic():
    """2D plane strain with Σ22 = Σ12 = 0: Σ11 = E/(1 − ν²) E11 while elastic."""
    law = J2Plasticity(E_MOD, NU, SIGMA_Y)
    result = drive(MaterialPoint(law, 2), uniaxial_path([0.0, 0.0005], 2, 4), SIGMA_Y)
    for step in result.steps:
        assert step.Sigma[0] == pytest.approx(E_MOD / (1 - NU**2) * step.E[0], rel=1e-10)


class Fragile:
    """A model that fails when the strain jumps by more than ``limit`` from its committed one."""

    def __init__(self, model: MaterialPoint, limit: float) -> None:
        self.model, self.limit = model, limit
        self.committed = np.zeros(6)
        self.trial = self.committed

    def solve(self, E):
        if np.abs(E - self.committed).max() > self.limit:
            nan = np.full(6, np.nan)
            return RVEResult(nan, np.full((6, 6), np.nan), np.nan, False, "diverged", 3, ())
        self.trial = np.array(E)
        return self.model.solve(E)

    def commit(self):
        self.committed = self.trial
        self.model.commit()


def test_cutback_recovers_and_reports_when_it_cannot():
    law = J2Plasticity(E_MOD, NU, SIGMA_Y, H=10e3)
    path = uniaxial_path([0.0, 0.004], 3, 2)  # steps of 0.002
    recovered = drive(Fragile(MaterialPoint(law, 3), 0.0006), path, SIGMA_Y)
    assert recovered.completed
    assert recovered.steps[-1].E[0] == pytest.approx(0.004)
    assert max(s.cutbacks for s in recovered.steps) >= 2
    stuck = drive(Fragile(MaterialPoint(law, 3), 1e-7), path, SIGMA_Y, max_cutbacks=3)
    assert not stuck.completed
    assert "failed after 3 cutbacks" in stuck.message and "diverged" in stuck.message
    assert stuck.steps == []


def test_bad_path_is_rejected():
    with pytest.raises(ValueError, match="strictly increasing"):
        LoadPath(np.array([0.0, 0.0]), np.zeros((2, 3)), np.zeros(3, dtype=bool), 2)
    with pytest.raises(ValueError, match="one row per time"):
        LoadPath(np.array([0.0, 1.0]), np.zeros((3, 3)), np.zeros(3, dtype=bool), 2)
