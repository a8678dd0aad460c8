"""The constitutive-law contract and the quadrature-law evaluator, on numpy arrays alone."""

from typing import ClassVar

import numpy as np
import pytest

from fe2x.errors import Fe2xError, SolverError
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.materials import AnisotropicElastic, IsotropicElastic
from fe2x.materials.j2 import J2Plasticity, J2State, return_mapping
from fe2x.materials.law import (
    ConstitutiveLaw,
    ElasticLimit,
    ElasticStiffness,
    LawResponse,
    OutputFields,
    check_law,
    is_linear,
)
from fe2x.materials.mandel import plane_strain

STEEL = J2Plasticity(200e9, 0.3, 250e6, hardening="voce", H=1e9, Q=100e6, b=20.0, H_kin=2e9)
ELASTIC = IsotropicElastic(70e9, 0.2)
RNG = np.random.default_rng(7)


def test_laws_implement_the_contract():
    for law in (STEEL, ELASTIC, AnisotropicElastic(ELASTIC.stiffness(3))):
        assert isinstance(law, ConstitutiveLaw) and law.kinematics == "small"
        assert isinstance(law, ElasticStiffness) and isinstance(law, ElasticLimit)
        assert check_law(law) is law
    assert isinstance(STEEL, OutputFields) and not is_linear(STEEL)
    assert is_linear(ELASTIC) and not isinstance(ELASTIC, OutputFields)
    with pytest.raises(TypeError, match="missing"):
        check_law(object())


def test_j2_update_is_the_return_mapping():
    eps = 4e-3 * RNG.standard_normal((20, 6))
    state = STEEL.initial_state(20)
    assert set(state) == set(STEEL.state_shapes)
    sigma, C, trial = STEEL.update(eps, state)
    reference = return_mapping(STEEL, eps, J2State.zeros(20))
    assert np.array_equal(sigma, reference.sigma) and np.array_equal(C, reference.C_alg)
    assert np.array_equal(trial["p"], reference.state.p)
    assert np.array_equal(STEEL.stays_elastic(eps), ~reference.plastic)
    assert np.array_equal(STEEL.outputs(trial)["equivalent_plastic_strain"], reference.state.p)


def test_elastic_update_is_hooke():
    eps = RNG.standard_normal((5, 6))
    sigma, C, state = ELASTIC.update(eps, {})
    assert np.allclose(sigma, eps @ ELASTIC.stiffness(3).T) and state == {}
    assert C.shape == (5, 6, 6) and np.array_equal(C[3], ELASTIC.stiffness(3))


def _two_phase(dim: int, n: int = 12) -> QuadratureLaws:
    points = {"matrix": np.arange(0, n, 2), "inclusion": np.arange(1, n, 2)}
    return QuadratureLaws({"matrix": STEEL, "inclusion": ELASTIC}, points, dim, n)


@pytest.mark.parametrize("dim", [2, 3])
def test_evaluator_follows_each_phase_law(dim):
    laws = _two_phase(dim)
    n = laws.n_strain
    eps = 4e-3 * RNG.standard_normal((laws.n_points, n))
    laws.evaluate(eps)
    full = np.zeros((laws.n_points, 6))
    full[:, [0, 1, 5] if dim == 2 else slice(None)] = eps
    sigma, C, _ = STEEL.update(full[0::2], STEEL.initial_state(6))
    rows = [0, 1, 5] if dim == 2 else list(range(6))
    assert np.array_equal(laws.stress[0::2], sigma[:, rows])
    assert np.array_equal(laws.tangent[0::2], C[:, rows][:, :, rows])
    C_el = ELASTIC.stiffness(dim)
    assert np.allclose(laws.stress[1::2], eps[1::2] @ C_el.T)
    assert np.array_equal(laws.tangent[1], C_el)
    # the trial state is kept until committed; the outputs follow the committed state
    assert laws.outputs()["equivalent_plastic_strain"].max() == 0.0
    laws.commit()
    p = laws.outputs()["equivalent_plastic_strain"]
    assert p[0::2].max() > 0 and np.all(p[1::2] == 0)
    assert np.allclose(laws.elastic_stiffness()[1], C_el)
    assert np.allclose(
        laws.elastic_stiffness()[0],
        plane_strain(STEEL.stiffness(3)) if dim == 2 else STEEL.stiffness(3),
    )


class _Failing:
    """A law that fails on strains above 1 (e.g. a local Newton that does not converge)."""

    name, kinematics = "failing", "small"
    state_shapes: ClassVar = {"n": ()}
    parameter_shapes: ClassVar[dict] = {}

    def initial_state(self, n):
        return {"n": np.zeros(n)}

    def update(self, strain, state, dt=0.0, parameters=None):
        if np.abs(strain).max() > 1.0:
            raise SolverError("no convergence")
        m = strain.shape[0]
        return LawResponse(
            strain.copy(), np.broadcast_to(np.eye(6), (m, 6, 6)), {"n": state["n"] + 1}
        )


def test_a_failed_update_changes_nothing():
    laws = QuadratureLaws({"a": _Failing(), "b": ELASTIC}, {"a": [0, 1], "b": [2]}, 3, 3)
    eps = 0.5 * np.ones((3, 6))
    laws.evaluate(eps)
    stress, trial = laws.stress.copy(), laws.trial
    with pytest.raises(SolverError):
        laws.evaluate(3 * eps)
    assert np.array_equal(laws.stress, stress) and laws.trial is trial


def test_per_point_parameters_are_checked():
    class Oriented(_Failing):
        parameter_shapes: ClassVar = {"orientation": (3, 3)}

    with pytest.raises(Fe2xError, match="needs the per-point parameter 'orientation'"):
        QuadratureLaws({"g": Oriented()}, {"g": [0, 1]}, 3, 2)
    with pytest.raises(Fe2xError, match="shape"):
        QuadratureLaws({"g": Oriented()}, {"g": [0, 1]}, 3, 2, {"g": {"orientation": np.eye(3)}})
    laws = QuadratureLaws(
        {"g": Oriented()}, {"g": [0, 1]}, 3, 2, {"g": {"orientation": np.stack([np.eye(3)] * 2)}}
    )
    assert laws.parameters["g"]["orientation"].shape == (2, 3, 3)


def test_points_must_partition():
    with pytest.raises(Fe2xError, match="single phase"):
        QuadratureLaws({"a": ELASTIC, "b": ELASTIC}, {"a": [0, 1], "b": [1]}, 3, 3)
    with pytest.raises(Fe2xError, match="no material"):
        QuadratureLaws({"a": ELASTIC}, {"a": [0], "b": [1]}, 3, 2)
