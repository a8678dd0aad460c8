"""The eigenstrain load case of the linear RVE against Levin's exact relation, the laminate
closed form, homogeneous cells and Betti's reciprocity, in 2D (plane strain) and 3D."""

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.errors import Fe2xError
from fe2x.geometry import inclusion_cell, laminate_cell, random_cell
from fe2x.materials import AnisotropicElastic, IsotropicElastic, plane_strain
from fe2x.materials.thermal import expansion_mandel, plane_strain_expansion
from fe2x.materials.thermoelastic import laminate_expansion, levin_expansion
from fe2x.micro.homogenization import homogenize
from fe2x.micro.linear import LinearRVE

ALUMINIUM, EPOXY = IsotropicElastic(70e9, 0.33), IsotropicElastic(3.5e9, 0.35)
ALPHA_AL, ALPHA_EP = 23e-6, 60e-6
COMM = MPI.COMM_WORLD


#: Two-phase cells of any microstructure: a centred inclusion (2D, 3D), a random one.
CELLS = {
    "inclusion 2D": lambda: inclusion_cell(COMM, 2, [1.0, 1.0], 0.35, 0.15),
    "inclusion 3D": lambda: inclusion_cell(COMM, 3, [1.0] * 3, 0.2, 0.35, 1),
    "random 2D": lambda: random_cell(COMM, 2, [1.0, 0.8], 0.3, 0.1, seed=4, min_gap=0.03, number=4),
}


@pytest.fixture(scope="module", params=list(CELLS))
def two_phase(request):
    cell = CELLS[request.param]()
    materials = {"matrix": EPOXY, "inclusion": ALUMINIUM}
    expansion = {"matrix": ALPHA_EP, "inclusion": ALPHA_AL}
    degree = 2 if cell.mesh.topology.dim == 2 else 1
    return homogenize(cell, materials, degree=degree, expansion=expansion)


def test_levin_relation_under_every_boundary_condition(two_phase):
    """α_eff from the eigenstrain solve equals Levin's α_eff(C_eff) of the unit-strain solves.

    Levin's relation holds for the apparent properties of each condition too: the uniform
    field it rests on is admissible for PBC, KUBC and SUBC alike.
    """
    f = two_phase.rve.volume_fractions
    fractions = [f["matrix"], f["inclusion"]]
    for bc, r in two_phase.responses.items():
        levin = levin_expansion(r.C_eff, fractions, [EPOXY, ALUMINIUM], [ALPHA_EP, ALPHA_AL])
        assert np.abs(r.alpha_eff - levin).max() < 1e-10 * np.abs(levin).max(), bc
        assert np.allclose(r.thermal_stress, -r.C_eff @ r.alpha_eff, rtol=1e-12, atol=0), bc


def test_reciprocity_and_signs(two_phase):
    """Betti: Σ_th = −⟨ε(u_k)·C α⟩ at round-off; a heated, held cell is in compression and the
    expansion lies between the phases'."""
    dim = two_phase.rve.dim
    alphas = (
        [ALPHA_AL, ALPHA_EP]
        if dim == 3
        else [(1 + ALUMINIUM.nu) * ALPHA_AL, (1 + EPOXY.nu) * ALPHA_EP]
    )
    for bc, r in two_phase.responses.items():
        assert r.thermal_reciprocity_residual < 1e-10, bc
        assert np.all(r.thermal_stress[:dim] < 0), bc
        assert np.all((min(alphas) < r.alpha_eff[:dim]) & (r.alpha_eff[:dim] < max(alphas))), bc
        assert r.hill_mandel_residual.max() < 1e-12, bc


@pytest.mark.parametrize(("dim", "axis"), [(2, 0), (2, 1), (3, 0), (3, 2)])
def test_laminate_closed_form(dim, axis):
    fractions = [0.4, 0.6]
    lengths = [1.0, 0.8, 0.6][:dim]
    cell = laminate_cell(
        COMM, dim, lengths, fractions, axis, 0.35 if dim == 3 else 0.2, 1, phase_names=["al", "ep"]
    )
    result = homogenize(
        cell,
        {"al": ALUMINIUM, "ep": EPOXY},
        bcs=("periodic",),
        degree=1,
        expansion={"al": ALPHA_AL, "ep": ALPHA_EP},
    )
    expected = laminate_expansion(fractions, [ALUMINIUM, EPOXY], [ALPHA_AL, ALPHA_EP], axis, dim)
    alpha = result.responses["periodic"].alpha_eff
    assert np.abs(alpha - expected).max() < 1e-10 * np.abs(expected).max()


@pytest.mark.parametrize("dim", [2, 3])
def test_homogeneous_cell_returns_its_anisotropic_expansion(dim):
    """One anisotropic material in both phases: the free cell strains by α (2D: α'), exactly,
    under every boundary condition."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    material = AnisotropicElastic(1e9 * (A @ A.T + 6 * np.eye(6)))
    alpha = np.array([[1.0, 0.4, 0.3], [0.4, 2.0, 0.2], [0.3, 0.2, 3.0]]) * 1e-5
    cell = inclusion_cell(COMM, dim, [1.0] * dim, 0.2, 0.4 if dim == 3 else 0.25, 1)
    result = homogenize(
        cell,
        {"matrix": material, "inclusion": material},
        degree=1,
        expansion={"matrix": alpha, "inclusion": alpha},
    )
    expected = expansion_mandel(alpha)
    if dim == 2:
        expected = plane_strain_expansion(expected, material.C3)
    for bc, r in result.responses.items():
        assert np.abs(r.alpha_eff - expected).max() < 1e-10 * np.abs(expected).max(), bc
        stress = (material.C3 @ expansion_mandel(alpha))[[0, 1, 5]] if dim == 2 else None
        if stress is not None:  # the in-plane eigenstress of the 3D law
            assert r.thermal_stress == pytest.approx(-stress, rel=1e-10)


def test_plane_strain_eigenstress_is_the_3d_one():
    """2D: the in-plane stress of the held cell is that of the 3D law at ε_33 = 0."""
    cell = inclusion_cell(COMM, 2, [1.0, 1.0], 0.3, 0.25, 1)
    stiffness = {"matrix": plane_strain(EPOXY.C3), "inclusion": plane_strain(EPOXY.C3)}
    alpha = plane_strain_expansion(expansion_mandel(ALPHA_EP), EPOXY.C3)
    rve = LinearRVE(cell, stiffness, degree=1, expansion={"matrix": alpha, "inclusion": alpha})
    r = rve.solve_unit_strains("kubc")
    lam, mu = EPOXY.lame
    held = -(3 * lam + 2 * mu) * ALPHA_EP  # σ_11 = σ_22 of a fully held isotropic solid
    assert r.thermal_stress == pytest.approx([held, held, 0.0], rel=1e-10, abs=1e-6)


def test_missing_expansion_is_an_error():
    cell = inclusion_cell(COMM, 2, [1.0, 1.0], 0.3, 0.3, 1)
    with pytest.raises(Fe2xError, match="no thermal expansion given for phase 'inclusion'"):
        homogenize(
            cell,
            {"matrix": EPOXY, "inclusion": ALUMINIUM},
            degree=1,
            expansion={"matrix": ALPHA_EP},
        )
