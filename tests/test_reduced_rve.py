"""The reduced RVE against the full one: the full basis at all points reproduces it, the reduced
tangent is the derivative of the reduced Σ, Hill–Mandel holds by the Galerkin projection, the
cubature integrates the training integrands, held-out paths stay within 1 %, the indicator
ranks the true errors and catches every error above the tolerance, and bases of other RVEs are
refused (the certification and the full RVE's answers of rejected points:
``test_rom_certify.py``).

Every RVE here is on one rank (COMM_SELF): under mpiexec each rank runs the same checks.
"""

from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import spearmanr

from fe2x.config.rom_tables import read_sample_config
from fe2x.errors import Fe2xError
from fe2x.io.reduced_basis import ReducedBasis, read_reduced_basis, write_reduced_basis
from fe2x.io.training_data import read_training_data
from fe2x.jobs.sample import run_sample, strain_design
from fe2x.micro.model import Capabilities
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.reduced import (
    ReducedRVE,
    energy_inner_product,
    mode_strains,
    rve_provenance,
    stress_rms,
)
from fe2x.micro.reduction import build_reduced_basis, snapshot_fluctuations, snapshot_sequences
from fe2x.rom.ecm import integration_errors

CELL = """
[cell]
type = "inclusion"
dim = 2
volume_fraction = {fraction}
mesh_size = {mesh_size}
geometry_order = 1
[materials.matrix]
model = "j2"
E = 3.0
nu = 0.35
sigma_y = {sigma_y}
H = 0.3
H_kin = 0.1
[materials.inclusion]
E = 70.0
nu = 0.2
[rve]
degree = 1
petsc_options = {{snes_rtol = 1e-13}}
[sample]
paths = 24
steps = 8
max_strain = 0.04
[reduce]
modes = 16
cubature_tolerance = 0.01
"""
MAX_STRAIN = 0.04
TOLERANCE = 0.01


def write_config(directory: Path, fraction=0.3, mesh_size=0.1, sigma_y=0.03) -> Path:
    path = directory / "rve.toml"
    path.write_text(CELL.format(fraction=fraction, mesh_size=mesh_size, sigma_y=sigma_y))
    return path


def make_rve(config_path: Path) -> NonlinearRVE:
    config = read_sample_config(config_path, "sample")
    return NonlinearRVE(
        config.cell.build(MPI.COMM_SELF),
        config.materials,
        degree=config.rve.degree,
        petsc_options=dict(config.rve.petsc_options),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Training data of 24 sampled paths and the basis built from them (one rank)."""
    work = tmp_path_factory.mktemp("rom")
    config_path = write_config(work)
    run_sample(read_sample_config(config_path, "sample"), work / "out", MPI.COMM_SELF)
    data = read_training_data(work / "out" / "training")
    rve = make_rve(config_path)
    reduction = build_reduced_basis(rve, data, "rve", modes=16, cubature_tolerance=TOLERANCE)
    return {"config": config_path, "data": data, "reduction": reduction, "work": work}


def held_out_paths(n_paths=8, seed=1234):
    """Out-and-back paths in directions and amplitudes that are not the training ones."""
    directions, amplitudes = strain_design(n_paths, 3, "sobol", seed, 0.3 * MAX_STRAIN, MAX_STRAIN)
    factors = np.concatenate([np.linspace(0, 1, 6)[1:], np.linspace(1, -0.5, 7)[1:]])
    return [[f * a * d for f in factors] for d, a in zip(directions, amplitudes, strict=True)]


def test_full_basis_at_all_points_reproduces_the_full_rve(trained):
    """Φ spanning every fluctuation dof (M-orthonormal by Cholesky) with the FE rule: Σ and C
    along a plastic load-unload-reverse path agree with the full RVE to 1e-10."""
    full, other = make_rve(trained["config"]), make_rve(trained["config"])
    p = other.problem
    M = energy_inner_product(p).toarray()
    Phi = scipy.linalg.solve_triangular(np.linalg.cholesky(M).T, np.eye(M.shape[0]))
    basis = ReducedBasis(Phi, np.arange(p.rule.n_points), p.weights, rve_provenance(other))
    reduced = ReducedRVE(other, basis, tolerance=None, strain_range=None)
    direction = np.array([0.01, -0.004, 0.006])
    plastic = 0
    for s in (0.5, 1.0, 2.0, 1.0, 0.0, -1.0, -2.0):
        a, b = full.solve(s * direction), reduced.solve(s * direction)
        assert a.converged and b.converged and not reduced.outcome().fallback
        full.commit()
        reduced.commit()
        scale = np.abs(a.Sigma).max()
        assert np.abs(a.Sigma - b.Sigma).max() <= 1e-10 * scale
        assert np.abs(a.C - b.C).max() <= 1e-10 * np.abs(a.C).max()
        assert b.hill_mandel_residual < 1e-12
        plastic += b.iterations > 1
    assert plastic >= 4
    assert full.diagnostics()["equivalent_plastic_strain"] == pytest.approx(
        reduced.diagnostics()["equivalent_plastic_strain"], rel=1e-9
    )


def test_reduced_tangent_is_the_derivative_of_the_reduced_stress(trained):
    """C of the hyper-reduced RVE against central differences of its Σ(E) from a plastic
    state (the macro Newton stays quadratic); and Hill–Mandel at round-off."""
    reduced = ReducedRVE(
        make_rve(trained["config"]), trained["reduction"].basis, tolerance=None, strain_range=None
    )
    E0 = np.array([0.02, -0.01, 0.012])
    assert reduced.solve(E0).converged
    reduced.commit()
    E = 1.3 * E0 + np.array([0.0, 0.003, -0.002])
    result = reduced.solve(E)
    assert result.converged and result.iterations > 1
    assert result.hill_mandel_residual < 1e-12
    h = 1e-7 * np.linalg.norm(E)
    columns = []
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        columns.append((reduced.solve(E + e).Sigma - reduced.solve(E - e).Sigma) / (2 * h))
    C_fd = np.column_stack(columns)
    assert np.linalg.norm(result.C - C_fd) <= 1e-6 * np.linalg.norm(result.C)


def test_the_cubature_integrates_every_training_integrand(trained):
    """The training integrands, rebuilt here by replaying the laws along the stored snapshots,
    are integrated by the cubature to its tolerance; positive weights sum to the volume."""
    basis, data = trained["reduction"].basis, trained["data"]
    rve = make_rve(trained["config"])
    p = rve.problem
    assert np.all(basis.weights > 0)
    assert basis.weights.sum() == pytest.approx(p.volume, rel=1e-12)
    assert basis.points.size < p.rule.n_points
    BPhi = mode_strains(p, basis.Phi)
    worst = integration_errors(BPhi.reshape(p.rule.n_points, -1), p.weights, basis_rule(basis))
    worst = float(worst.max())
    snapshots = data.fluctuations["rve"]
    X = snapshot_fluctuations(rve, data, "rve")
    row = {int(e): k for k, e in enumerate(snapshots.evaluation)}
    x = p.P.createVecRight()
    count = 0
    for records in snapshot_sequences(data, "rve"):
        laws = p.laws
        state = laws.initial_state()
        for record in records.tolist():
            x.array[:] = X[row[record]]
            laws.evaluate(p.strains(x, data.E[record]), state)
            state = laws.trial
            sigma = laws.stress
            G = np.hstack([np.einsum("pij,pi->pj", BPhi, sigma), sigma])
            worst = max(worst, float(integration_errors(G, p.weights, basis_rule(basis)).max()))
            count += 1
    assert count == data.E.shape[0]
    assert worst <= TOLERANCE


def basis_rule(basis: ReducedBasis):
    from fe2x.rom.ecm import Cubature

    return Cubature(basis.points, basis.weights, 0.0, 0)


def local_reference(full: NonlinearRVE, reduced: ReducedRVE, E: np.ndarray):
    """The full RVE's answer from the reduced model's committed state, and its ‖σ‖_rms."""
    full.set_state(reduced.full_state(reduced.get_state()))
    answer = full.solve(E)
    assert answer.converged
    p = full.problem
    return answer, max(stress_rms(p.laws.stress, p.weights, p.volume), reduced.stress_floor(E))


def test_held_out_paths_error_and_indicator(trained):
    """Held-out paths: Σ within 1 % of the full RVE's path (relative to the path's largest
    |Σ|); the indicator ranks the local errors (against the full RVE from the same state,
    Spearman ≥ 0.9); κ η is above every local error beyond the tolerance for tolerances from
    1 % down to half the largest local error (all are caught).

    Not certified below that: κ (1.8, the largest error / η on the training paths) is not a
    bound on held-out paths, where 2 of 88 errors (0.11 % and 0.16 %) exceed κ η by factors
    1.4 and 1.7, so tolerances between 0.075 % and 0.16 % would miss them; the test asserts
    κ η ≥ error for at least 95 % of the evaluations (measured: 86 of 88)."""
    reduction = trained["reduction"]
    full, reference, other = (make_rve(trained["config"]) for _ in range(3))
    reduced = ReducedRVE(other, reduction.basis, tolerance=None, strain_range=None)
    start, start_full = reduced.get_state(), full.get_state()
    path_errors, local, indicator = [], [], []
    for path in held_out_paths():
        reduced.set_state(start)
        full.set_state(start_full)
        deviations, sizes = [], []
        for E in path:
            exact = full.solve(E)
            full.commit()
            answer, rms = local_reference(reference, reduced, E)
            result = reduced.solve(E)
            assert result.converged and not reduced.outcome().fallback
            reduced.commit()
            deviations.append(np.linalg.norm(result.Sigma - exact.Sigma))
            sizes.append(np.linalg.norm(exact.Sigma))
            local.append(np.linalg.norm(result.Sigma - answer.Sigma) / rms)
            indicator.append(reduced.outcome().indicator)
        path_errors.append(max(deviations) / max(sizes))
    local, indicator = np.array(local), np.array(indicator)
    assert max(path_errors) <= 0.01, path_errors
    assert spearmanr(indicator, local).statistic >= 0.9
    kappa = reduction.basis.effectivity
    for tolerance in np.geomspace(0.5 * local.max(), TOLERANCE, 12):
        too_large = local > tolerance
        assert np.all(kappa * indicator[too_large] > tolerance), tolerance
    assert np.mean(kappa * indicator >= local) >= 0.95


def test_far_outside_the_training_range_the_full_rve_answers(trained):
    """‖E‖ three times the largest training strain falls back (cause "range") and answers as
    the full RVE; the next reduced answer continues from the full RVE's state."""
    reduction = trained["reduction"]
    reference, other = make_rve(trained["config"]), make_rve(trained["config"])
    reduced = ReducedRVE(other, reduction.basis, tolerance=TOLERANCE)
    E = 3.0 * reduction.basis.strain_bound * np.array([0.8, -0.6, 0.0])
    answer, _ = local_reference(reference, reduced, E)
    result = reduced.solve(E)
    assert reduced.counts["range"] == 1 and "training range" in reduced.outcome().fallback
    assert np.allclose(result.Sigma, answer.Sigma, rtol=1e-12, atol=0)
    reduced.commit()
    reference.commit()
    state = reduced.get_state()
    assert np.array_equal(state["x"], reference.get_state()["x"])


def test_checkpointed_state_continues_identically(trained):
    """get_state/set_state round trip (as a checkpoint does) gives the same next answers."""
    reduced = ReducedRVE(make_rve(trained["config"]), trained["reduction"].basis)
    E = np.array([0.02, -0.01, 0.01])
    reduced.solve(E)
    reduced.commit()
    saved = {
        k: np.array(v, copy=True) if not isinstance(v, dict) else v
        for k, v in reduced.get_state().items()
    }
    first = reduced.solve(1.2 * E)
    reduced.set_state(saved)
    again = reduced.solve(1.2 * E)
    assert np.array_equal(first.Sigma, again.Sigma) and np.array_equal(first.C, again.C)
    with pytest.raises(Fe2xError, match="macro strain components"):
        reduced.set_state(dict(saved, E=np.zeros(4)))


def test_warm_start_and_predictor_are_the_same_answer_in_fewer_iterations(trained):
    """The reduced Newton started from an earlier answer of the step moved by its tangent
    predictor q + (dq/dE) ΔE (``solve_from``, as the pool does in later macro iterations), or
    from the committed answer's predictor (``solve``), gives the cold start's Σ and C to the
    Newton tolerance, in fewer iterations (the law update starts from the committed state
    whatever q starts from)."""
    reduced = ReducedRVE(make_rve(trained["config"]), trained["reduction"].basis)
    assert Capabilities.of(reduced).warm
    E1 = np.array([0.02, -0.01, 0.01])
    reduced.solve(E1)
    reduced.commit()
    ok, committed = reduced.certify(reduced.get_state())
    assert ok and "dq_dE" in committed
    E2 = 1.2 * E1
    reduced.set_state(committed)
    reduced.solve(E2)
    reduced.commit()
    trial = reduced.get_state()
    E = E2 + np.array([2e-5, 1e-5, -1e-5])  # the next macro iterate
    cold_state = {k: v for k, v in committed.items() if k != "dq_dE"}  # no predictor
    answers = {}
    for name, state, solve in (
        ("cold", cold_state, lambda: reduced.solve(E)),
        ("predicted", committed, lambda: reduced.solve(E)),
        ("warm", committed, lambda: reduced.solve_from(E, trial)),
    ):
        reduced.set_state(state)
        answers[name] = solve()
    cold = answers["cold"]
    for name in ("predicted", "warm"):
        answer = answers[name]
        assert answer.converged and answer.iterations < cold.iterations, name
        assert np.allclose(answer.Sigma, cold.Sigma, rtol=1e-10, atol=0), name
        assert np.allclose(answer.C, cold.C, rtol=1e-8, atol=1e-10 * np.abs(cold.C).max()), name
    assert answers["warm"].iterations <= answers["predicted"].iterations


def test_basis_file_round_trip_and_refusals(trained, tmp_path):
    """The file keeps the basis; a basis of another mesh, microstructure or law is refused
    with one line naming what differs; bad tolerances are refused."""
    basis = trained["reduction"].basis
    path = tmp_path / "basis.h5"
    write_reduced_basis(path, basis)
    back = read_reduced_basis(path)
    assert np.array_equal(back.Phi, basis.Phi) and np.array_equal(back.points, basis.points)
    assert back.provenance == basis.provenance and back.effectivity == basis.effectivity
    ReducedRVE.from_file(make_rve(trained["config"]), path)
    cases = [
        ({"mesh_size": 0.12}, "another RVE mesh"),
        ({"fraction": 0.4}, "another (RVE mesh|microstructure)"),
        ({"sigma_y": 0.04}, "other laws .*sigma_y 0.03 there, 0.04 here"),
    ]
    for change, match in cases:
        other = make_rve(write_config(tmp_path, **change))
        with pytest.raises(Fe2xError, match=match):
            ReducedRVE.from_file(other, path)
    rve = make_rve(trained["config"])
    for bad, match in (
        ({"tolerance": 0.0}, "tolerance = 0.0 must be > 0"),
        ({"indicator_tolerance": -1.0}, "must be > 0"),
        ({"strain_range": 0.0}, "strain_range"),
    ):
        with pytest.raises(Fe2xError, match=match):
            ReducedRVE(rve, basis, **bad)
    (tmp_path / "foreign.h5").write_bytes(b"not hdf5")
    with pytest.raises(Fe2xError, match="unreadable or corrupt"):
        read_reduced_basis(tmp_path / "foreign.h5")
    with pytest.raises(Fe2xError, match="no reduced basis file"):
        read_reduced_basis(tmp_path / "missing.h5")


def test_build_refuses_bad_input(trained, tmp_path):
    """Too few snapshots for the size, a tolerance ≤ 0, training data of another RVE."""
    data, rve = trained["data"], make_rve(trained["config"])
    n_snapshots = data.fluctuations["rve"].x.shape[0]
    with pytest.raises(Fe2xError, match=f"hold {n_snapshots} fluctuation snapshots"):
        build_reduced_basis(rve, data, "rve", modes=n_snapshots + 10)
    with pytest.raises(Fe2xError, match=r"cubature tolerance = 0\.0 must be > 0"):
        build_reduced_basis(rve, data, "rve", modes=8, cubature_tolerance=0.0)
    with pytest.raises(Fe2xError, match="modes or by energy_tolerance"):
        build_reduced_basis(rve, data, "rve")
    other = make_rve(write_config(tmp_path, sigma_y=0.02))
    with pytest.raises(Fe2xError, match="do not belong to this RVE"):
        build_reduced_basis(other, data, "rve", modes=8)
    coarser = make_rve(write_config(tmp_path, mesh_size=0.2))
    with pytest.raises(Fe2xError, match="come from another RVE mesh"):
        build_reduced_basis(coarser, data, "rve", modes=8)


def test_energy_and_report(trained):
    """The basis is M-orthonormal, its first modes span the elastic correctors, and the
    report holds what the build measured."""
    reduction, rve = trained["reduction"], make_rve(trained["config"])
    basis = reduction.basis
    M = energy_inner_product(rve.problem)
    assert np.allclose(basis.Phi.T @ (M @ basis.Phi), np.eye(basis.size), atol=1e-10)
    assert basis.n_elastic == 3
    assert 0.999 < reduction.energy <= 1.0 + 1e-12
    report = basis.report
    assert report["cubature_points"] == basis.points.size
    assert report["training_integration_error"] <= TOLERANCE
    assert report["effectivity"] == basis.effectivity > 0
    assert report["replay_mismatch"] < 1e-8
