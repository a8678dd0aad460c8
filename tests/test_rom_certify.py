"""Certification of the reduced RVE once per converged step: the pool and the path driver commit
only certified reduced answers, and a rejected point is answered by the full RVE from the same
committed state, exactly.

Every RVE here is on one rank (COMM_SELF): under mpiexec each rank runs the same checks.
"""

from mpi4py import MPI

import numpy as np
import pytest
from test_reduced_rve import held_out_paths, local_reference, make_rve, trained  # noqa: F401

from fe2x.errors import Fe2xError
from fe2x.micro.model import Capabilities, Certified
from fe2x.micro.path import LoadPath, drive
from fe2x.micro.pool import MicroPool
from fe2x.micro.reduced import ReducedRVE

#: Below the largest local errors of the test basis: some answers must be rejected.
TIGHT = 2e-3


def test_reduced_rve_is_certified_and_the_rve_is_not(trained):  # noqa: F811
    """The capability is found once: the reduced RVE has it, the full RVE does not."""
    rve = make_rve(trained["config"])
    reduced = ReducedRVE(make_rve(trained["config"]), trained["reduction"].basis)
    assert isinstance(reduced, Certified) and Capabilities.of(reduced).certified
    assert not Capabilities.of(rve).certified


def test_solve_is_reduced_only_and_certify_lifts_as_the_eager_indicator(trained):  # noqa: F811
    """solve leaves an uncertified state (no full history); certify lifts it: its η and full
    history equal those the lazily lifted answer (``last``) gets, its Σ the full-rule average
    of the lifted stress to the cubature's accuracy, and a lifted state passes as it is."""
    basis = trained["reduction"].basis
    a = ReducedRVE(make_rve(trained["config"]), basis, tolerance=None, strain_range=None)
    b = ReducedRVE(make_rve(trained["config"]), basis, tolerance=None, strain_range=None)
    E = np.array([0.02, -0.01, 0.012])
    for model in (a, b):
        assert model.solve(E).converged
        model.commit()
    state = a.get_state()
    assert "history" not in state and np.isnan(state["indicator"])
    ok, lifted = a.certify(state)
    assert ok and a.counts["certified"] == 1
    assert float(lifted["indicator"]) == pytest.approx(b.outcome().indicator, rel=1e-12)
    for name, values in b.get_state()["history"].items():
        for key, v in values.items():
            assert np.allclose(lifted["history"][name][key], v, rtol=0, atol=1e-14)
    again, same = a.certify(lifted)
    assert again and same["history"] is lifted["history"] and a.counts["certified"] == 1


def test_rejected_answers_are_the_full_rve_from_the_committed_state(trained):  # noqa: F811
    """Every committed answer is reduced and certified, with its local error (against the full
    RVE from the same committed state) within the tolerance, or the full RVE's from that
    state, exactly: the sequence the pool and the path driver follow (solve, certify; if
    rejected, solve_full from the committed state). The counts add up."""
    reference, other = make_rve(trained["config"]), make_rve(trained["config"])
    reduced = ReducedRVE(other, trained["reduction"].basis, tolerance=TIGHT)
    start = reduced.get_state()
    kappa = trained["reduction"].basis.effectivity
    rejected = 0
    for path in held_out_paths():
        reduced.set_state(start)
        for E in path:
            committed = reduced.get_state()
            answer, rms = local_reference(reference, reduced, E)
            result = reduced.solve(E)
            assert result.converged
            reduced.commit()
            ok, state = reduced.certify(reduced.get_state())
            if ok:
                reduced.set_state(state)
                assert np.linalg.norm(result.Sigma - answer.Sigma) / rms <= TIGHT
                assert reduced.diagnostics()["rom_fallback"] == 0.0
                continue
            rejected += 1
            assert kappa * float(state["indicator"]) > TIGHT
            reduced.set_state(committed)
            result = reduced.solve_full(E, state)
            assert result.converged and "rejected at certification" in result.reason
            reduced.commit()
            assert np.abs(result.Sigma - answer.Sigma).max() <= 1e-12 * rms
            assert reduced.diagnostics()["rom_fallback"] == 1.0
            assert reduced.diagnostics()["rom_indicator"] == float(state["indicator"])
            assert reduced.certify(reduced.get_state())[0]  # a full answer passes as it is
    counts = reduced.counts
    assert rejected > 0 and counts["rejected"] == rejected == counts["indicator"]
    assert counts["reduced"] == counts["certified"] + rejected
    assert counts["evaluations"] == counts["reduced"] + reduced.fallbacks


def test_pool_forces_the_rejected_points_to_the_full_rve(trained):  # noqa: F811
    """A pool of reduced points: commit refuses uncertified trial states; certify rejects some
    points, whose next evaluation in the step is the full RVE's from their committed state
    (to round-off), and then the step commits; the committed states are the lifted ones."""
    reference = make_rve(trained["config"])
    reduced = ReducedRVE(make_rve(trained["config"]), trained["reduction"].basis, tolerance=TIGHT)
    pool = MicroPool({"rve": reduced}, use_shortcut=False)
    paths = held_out_paths()
    ids = np.arange(len(paths))
    names = ["rve"] * len(ids)
    rejected_steps = 0
    for k in range(len(paths[0])):
        E = np.array([path[k] for path in paths])
        first = pool.evaluate(ids, names, E)
        assert first.converged.all()
        with pytest.raises(Fe2xError, match="not certified before commit"):
            pool.commit()
        outcome = pool.certify()
        assert np.array_equal(outcome.ids, ids)
        rejected = outcome.rejected
        if rejected.size:
            rejected_steps += 1
            again = pool.evaluate(ids, names, E)
            for i in rejected.tolist():
                reference.set_state(reduced.full_state(pool.load(i, "rve").get_state()))
                exact = reference.solve(E[i])
                scale = np.abs(exact.Sigma).max()
                assert np.abs(again.Sigma[i] - exact.Sigma).max() <= 1e-12 * scale
            second = pool.certify()
            assert second.passed.all()
            fallback = second.diagnostics[:, pool.diagnostic_names.index("rom_fallback")]
            assert np.array_equal(np.flatnonzero(fallback == 1.0), rejected)
        pool.commit()
        assert all("history" in s for s in pool.committed.values())
        assert not pool.forced
    assert rejected_steps > 0


def test_drive_re_solves_a_rejected_step_with_the_full_rve(trained):  # noqa: F811
    """rve-path with the reduced RVE at a tight tolerance: each step that fell back is the
    full RVE's answer from the previous committed state (to round-off), the others are within
    the tolerance of it; a mixed (uniaxial-stress) path converges with the full answers."""
    reference = make_rve(trained["config"])
    reduced = ReducedRVE(make_rve(trained["config"]), trained["reduction"].basis, tolerance=TIGHT)
    states = [reduced.get_state()]
    path = LoadPath(
        np.array([0.0, 1.0, 2.0]),
        np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [-0.01, 0.0, 0.0]]),
        np.array([False, True, True]),
        steps=8,
    )
    result = drive(reduced, path, 0.03, on_step=lambda i, step: states.append(reduced.get_state()))
    assert result.completed
    fell_back = 0
    for before, step in zip(states[:-1], result.steps, strict=True):
        reference.set_state(reduced.full_state(before))
        exact = reference.solve(step.E)
        p = reference.problem
        rms = np.sqrt(p.weights @ np.einsum("pi,pi->p", p.laws.stress, p.laws.stress) / p.volume)
        error = np.linalg.norm(step.Sigma - exact.Sigma) / rms
        if step.diagnostics["rom_fallback"] == 1.0:
            fell_back += 1
            assert error <= 1e-9
        else:
            assert error <= TIGHT
        assert np.abs(step.Sigma[1:]).max() <= 1e-8 * 0.03  # the uniaxial stress control holds
    assert fell_back > 0 and reduced.counts["rejected"] >= fell_back
    assert MPI.COMM_SELF.size == 1
