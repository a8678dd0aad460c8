"""Building a reduced RVE from training data: POD basis, empirical cubature, calibration.

The POD basis, the empirical cubature, and the calibration of the error indicator.

From the fluctuation snapshots x_s of one microstructure (:mod:`fe2x.io.training_data`):

1. **Basis.** The elastic correctors x_k (J_el x_k = −Pᵀ ∫ C_el e_k : ε(v) dy) are the first n
   modes, orthonormalised in the energy inner product M = Pᵀ K_el P, so the elastic response is
   represented exactly; the snapshots' M-orthogonal complement to them gives the remaining
   modes by POD in M (:func:`fe2x.rom.pod.pod_basis`).
2. **Stresses.** The snapshots of a macro point (or sampled path) are a sequence in time: the
   laws are replayed along ε_s = E_s + B x_s at all quadrature points from the virgin state,
   which gives every snapshot's stress field without storing it. The replayed Σ must agree
   with the recorded one: training data of another RVE are refused.
3. **Cubature.** The integrands are the reduced residual's, (B Φ_j)ᵀ σ_s for every mode j and
   snapshot s, the stress components σ_s (for Σ) and the mode strains ε(Φ_j) (which integrate
   to zero), each normalised; their span is kept by a streaming weighted SVD, truncated at the
   cubature tolerance and integrated by the ECM (:func:`fe2x.rom.ecm.empirical_cubature`).
   Every training integrand's error is then checked on a second replay, and the truncation
   tightened threefold until each meets the tolerance.
4. **Calibration.** The reduced RVE (no fallback) is driven along every training sequence; at
   up to :data:`CALIBRATION_REFERENCES` evaluations the full RVE is solved from the same
   committed state, and the effectivity κ = max_s e_s / η_s of the relative stress error e_s
   (‖ΔΣ‖ / ‖σ‖_rms) over the indicator η_s is recorded, so that κ η bounds the error online
   (:mod:`fe2x.micro.reduced`). The largest training ‖E‖ bounds the training range.

Rate-dependent laws are replayed with dt = 0 (the training files do not hold time steps) and
are therefore not supported; subc is not (its multipliers are not reduced).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from fe2x.errors import Fe2xError, SolverError
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.io.reduced_basis import ReducedBasis
from fe2x.io.training_data import TrainingData
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.reduced import ReducedRVE
from fe2x.micro.reduced_operators import energy_inner_product, mode_strains, stress_rms
from fe2x.micro.reduced_provenance import rve_provenance
from fe2x.micro.rve_problem import RVEProblem
from fe2x.rom.ecm import Cubature, empirical_cubature, integration_errors
from fe2x.rom.pod import pod_basis

__all__ = [
    "Reduction",
    "build_reduced_basis",
    "elastic_modes",
    "snapshot_fluctuations",
    "snapshot_sequences",
]

logger = logging.getLogger(__name__)

#: Relative disagreement of replayed and recorded Σ above which training data are refused.
REPLAY_MISMATCH = 1e-5
#: Up to this many quadrature points the integrands' span is found from their Gram matrix.
GRAM_POINTS = 6000
#: Most evaluations of the calibration checked against a full solve.
CALIBRATION_REFERENCES = 400
#: Relative stress errors below this are round-off, left out of the effectivity.
ERROR_FLOOR = 1e-6
#: How often, and by which factor, the span's truncation is tightened when a training integrand
#: misses the cubature tolerance.
MAX_TIGHTENING, TIGHTENING = 8, 3.0


@dataclass(frozen=True)
class Reduction:
    """A built reduced basis and how it came about.

    Attributes:
        basis: the basis, cubature and provenance, ready to be written.
        energy: fraction of the snapshots' energy ‖X‖²_M that Φ captures.
        cubature_error: the ECM's worst relative error over the integrands' span.
        training_integration_error: the largest relative error of a training integrand.
        indicator: η of every calibration evaluation; stress_error: its relative error of Σ.
        seconds: wall time of each stage.
    """

    basis: ReducedBasis
    energy: float
    cubature_error: float
    training_integration_error: float
    indicator: np.ndarray
    stress_error: np.ndarray
    seconds: dict[str, float]


def snapshot_sequences(data: TrainingData, name: str) -> list[np.ndarray]:
    """The records of microstructure ``name`` that hold a fluctuation, by macro point in order.

    One sequence per macro point (or path) in step order, whichever groups wrote them (a point
    that migrated between groups has records in several files); a sequence ends at the first
    record without one after it began (its history cannot be replayed further).
    """
    fluctuation_of = np.full(data.E.shape[0], -1, dtype=np.int64)
    snapshots = data.fluctuations[name]
    fluctuation_of[snapshots.evaluation] = np.arange(snapshots.evaluation.size)
    mine = np.flatnonzero((data.microstructure == name) & data.converged)
    sequences = []
    for point in np.unique(data.point_id[mine]):
        records = mine[data.point_id[mine] == point]
        records = records[np.argsort(data.step[records], kind="stable")]
        held = fluctuation_of[records] >= 0
        if not held.any():
            continue
        first = int(np.argmax(held))
        gap = np.flatnonzero(~held[first:])
        end = first + (int(gap[0]) if gap.size else held.size - first)
        sequences.append(records[first:end])
    return sequences


def snapshot_fluctuations(rve: NonlinearRVE, data: TrainingData, name: str) -> np.ndarray:
    """The fluctuation snapshots of microstructure ``name`` in the dof order of the one-rank RVE.

    ``(n_snapshots, n_reduced)`` in the order of ``rve``, the files' rows being
    partition-independent (:mod:`fe2x.micro.snapshot_rows`).
    """
    _, rows = rve.fluctuation_rows
    return data.fluctuations[name].x[:, rows]


def elastic_modes(rve: NonlinearRVE, M: scipy.sparse.csr_matrix) -> np.ndarray:
    """The elastic correctors of ``rve``, M-orthonormalised: ``(n_reduced, n)``."""
    p = rve.problem
    C = p.laws.elastic_stiffness()
    f = p.P.createVecRight()
    try:
        loads = []
        for k in range(p.n_strain):
            p.ops.residual(C[:, :, k], f)
            loads.append(-f.array_r.copy())
    finally:
        f.destroy()
    X = scipy.sparse.linalg.splu(M.tocsc()).solve(np.column_stack(loads))
    return _orthonormal(X, M)


def _orthonormal(X: np.ndarray, M: scipy.sparse.csr_matrix) -> np.ndarray:
    """X L⁻ᵀ with Xᵀ M X = L Lᵀ: M-orthonormal columns spanning X."""
    L = scipy.linalg.cholesky(X.T @ (M @ X), lower=True)
    return scipy.linalg.solve_triangular(L, X.T, lower=True).T


class _Replay:
    """The laws of all points replayed along the training sequences (stress fields on demand)."""

    def __init__(self, rve: NonlinearRVE, data: TrainingData, name: str) -> None:
        p = rve.problem
        self.problem, self.data = p, data
        self.laws = QuadratureLaws(p.laws.laws, p.points, p.dim, p.rule.n_points, p.laws.parameters)
        snapshots = data.fluctuations[name]
        self.position = {int(e): k for k, e in enumerate(snapshots.evaluation)}
        self.x = snapshot_fluctuations(rve, data, name)
        self.sequences = snapshot_sequences(data, name)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(record, strain field, stress field) of every snapshot, sequence by sequence."""
        p, laws = self.problem, self.laws
        vec = p.P.createVecRight()
        try:
            for records in self.sequences:
                state = laws.initial_state()
                for record in records.tolist():
                    vec.array[:] = self.x[self.position[record]]
                    eps = p.strains(vec, self.data.E[record])
                    try:
                        laws.evaluate(eps, state)
                    except SolverError as error:
                        raise Fe2xError(
                            f"training data: the laws fail on a stored fluctuation ({error}); "
                            "the data do not belong to this RVE"
                        ) from None
                    assert laws.trial is not None, "set by the successful evaluate"
                    state = laws.trial
                    yield record, eps, laws.stress.copy()
        finally:
            vec.destroy()


class _Span:
    """An orthogonal basis of the span of weighted, normalised columns, grown by blocks.

    Up to :data:`GRAM_POINTS` points the Gram matrix S = Σ g gᵀ of the weighted columns is
    summed and diagonalised at the end (singular values to about √ε s_max, far below any
    truncation the cubature uses); beyond, blocks are merged by a streaming SVD truncated at
    ``rtol`` of the largest singular value.
    """

    def __init__(self, sqrt_w: np.ndarray, rtol: float = 1e-10, block: int = 4000) -> None:
        self.sqrt_w, self.rtol, self.block = sqrt_w, rtol, block
        n = sqrt_w.size
        self.gram = np.zeros((n, n)) if n <= GRAM_POINTS else None
        self.basis = np.zeros((n, 0))
        self.pending: list[np.ndarray] = []

    def add(self, G: np.ndarray) -> None:
        """Add the integrands G ``(n_points, k)`` (values at the points)."""
        Gw = G * self.sqrt_w[:, None]
        norms = np.linalg.norm(Gw, axis=0)
        Gw = Gw[:, norms > 0] / norms[norms > 0]
        if self.gram is not None:
            self.gram += Gw @ Gw.T
            return
        self.pending.append(Gw)
        if sum(b.shape[1] for b in self.pending) >= self.block:
            self._merge()

    def _merge(self) -> None:
        if not self.pending:
            return
        U, s, _ = np.linalg.svd(np.hstack([self.basis, *self.pending]), full_matrices=False)
        self.pending = []
        keep = s > self.rtol * s[0]
        self.basis = U[:, keep] * s[keep]

    def integrands(self) -> np.ndarray:
        """Columns spanning the added integrands, scaled by their singular values.

        Unweighted: values at the points.
        """
        if self.gram is not None:
            lam, U = np.linalg.eigh(self.gram)
            lam, U = lam[::-1], U[:, ::-1]
            keep = lam > (self.rtol * np.sqrt(max(lam[0], 0.0))) ** 2
            self.basis = U[:, keep] * np.sqrt(lam[keep])
        else:
            self._merge()
        return self.basis / self.sqrt_w[:, None]


def _worst_training_error(
    replay: _Replay, BPhi: np.ndarray, weights: np.ndarray, cubature: Any
) -> float:
    """The largest relative integration error of any training integrand.

    By :func:`~fe2x.rom.ecm.integration_errors`, over the mode strains and every snapshot's
    integrands (by a replay).
    """
    n_points = BPhi.shape[0]
    worst = float(integration_errors(BPhi.reshape(n_points, -1), weights, cubature).max())
    for _, _, sigma in replay:
        errors = integration_errors(_integrands(BPhi, sigma), weights, cubature)
        worst = max(worst, float(errors.max()))
    return worst


def _integrands(BPhi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(B Φ_j)ᵀ σ for every mode j, and σ's components: ``(n_points, r + n)``."""
    return np.hstack([np.einsum("pij,pi->pj", BPhi, sigma), sigma])


def build_reduced_basis(
    rve: NonlinearRVE,
    data: TrainingData,
    name: str,
    modes: int | None = None,
    energy_tolerance: float | None = None,
    cubature_tolerance: float = 1e-3,
    report: dict[str, Any] | None = None,
) -> Reduction:
    """The reduced basis of microstructure ``name`` of ``rve`` from ``data`` (one rank).

    Args:
        rve: the full RVE the training data came from.
        data: the training data (:func:`fe2x.io.training_data.read_training_data`).
        name: the microstructure whose snapshots are used.
        modes: the basis size r, elastic modes included; or
        energy_tolerance: the uncaptured energy fraction allowed of the inelastic part of the
            snapshots (the elastic modes are always kept).
        cubature_tolerance: the ECM's relative integration error over the integrands' span.
        report: facts added to the basis's report (e.g. the training files).

    Raises:
        Fe2xError: bad input (tolerances, a size the snapshots cannot give), training data of
            another RVE, a cubature that does not reach its tolerance.
    """
    p = rve.problem
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    _check_request(p, data, name, modes, energy_tolerance, cubature_tolerance)
    n = p.n_strain
    sequences = snapshot_sequences(data, name)
    used = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int64)
    snapshots = data.fluctuations[name]
    position = {int(e): k for k, e in enumerate(snapshots.evaluation)}
    K = used.size
    _check_size(modes, n, K, name)

    # 1. The basis: elastic correctors, then POD of the rest in the energy inner product.
    X = snapshot_fluctuations(rve, data, name)[[position[int(e)] for e in used]].T
    Phi, energy = _modes(rve, X, modes, energy_tolerance)
    seconds["basis"] = time.perf_counter() - t0

    # 2-3. The replayed stresses and the integrands' span; the cubature.
    t0 = time.perf_counter()
    replay, BPhi, span, mismatch = _replayed_span(rve, data, name, Phi)
    seconds["replay"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cubature, worst = _cubature(replay, BPhi, p.weights, span, cubature_tolerance)
    seconds["cubature"] = time.perf_counter() - t0

    # 4. Calibration of the indicator along the training sequences.
    t0 = time.perf_counter()
    strain_bound = float(np.max(np.linalg.norm(data.E[data.microstructure == name], axis=1)))
    facts = {
        "microstructure": name,
        "snapshots": K,
        "sequences": len(sequences),
        "modes": int(Phi.shape[1]),
        "elastic_modes": n,
        "energy_captured": energy,
        "cubature_points": int(cubature.points.size),
        "quadrature_points": int(p.rule.n_points),
        "cubature_tolerance": float(cubature_tolerance),
        "cubature_error": float(cubature.error),
        "training_integration_error": worst,
        "replay_mismatch": mismatch,
        **(report or {}),
    }
    basis = ReducedBasis(
        Phi, cubature.points, cubature.weights, rve_provenance(rve), n, strain_bound, np.nan, facts
    )
    indicator, error, deviation = _calibrate(rve, basis, data, sequences)
    effectivity = _effectivity(indicator, error)
    seconds["calibration"] = time.perf_counter() - t0
    facts.update(
        {
            "effectivity": effectivity,
            "calibration_evaluations": int(indicator.size),
            "calibration_max_stress_error": float(error.max(initial=0.0)),
            "training_path_deviation": deviation,
            "seconds": seconds,
        }
    )
    basis = ReducedBasis(
        Phi,
        cubature.points,
        cubature.weights,
        basis.provenance,
        n,
        strain_bound,
        effectivity,
        facts,
    )
    return Reduction(basis, energy, float(cubature.error), worst, indicator, error, seconds)


def _check_request(
    p: RVEProblem,
    data: TrainingData,
    name: str,
    modes: int | None,
    energy_tolerance: float | None,
    cubature_tolerance: float,
) -> None:
    """Refuse a boundary condition, tolerances or training data a reduced basis cannot use."""
    if p.bc.mean_strain_constraint:
        raise Fe2xError(f"reduced RVEs support the periodic and kubc conditions, not {p.bc.name}")
    if not cubature_tolerance > 0:
        raise Fe2xError(f"cubature tolerance = {cubature_tolerance!r} must be > 0")
    if energy_tolerance is not None and not 0 < energy_tolerance < 1:
        raise Fe2xError(f"energy tolerance = {energy_tolerance!r} must be in (0, 1)")
    if (modes is None) == (energy_tolerance is None):
        raise Fe2xError("give the basis size by modes or by energy_tolerance, not both or neither")
    if name not in data.fluctuations:
        raise Fe2xError(
            f"the training data have no microstructure {name!r}; they have {list(data.n_dofs)}"
        )
    if data.n_dofs[name] != p.n_reduced:
        raise Fe2xError(
            f"the training data of {name!r} have {data.n_dofs[name]} fluctuation dofs, this RVE "
            f"{p.n_reduced}: they come from another RVE mesh"
        )


def _check_size(modes: int | None, n: int, K: int, name: str) -> None:
    """Refuse a basis size ``modes`` that n elastic modes and K snapshots cannot give."""
    if modes is not None:
        if modes != int(modes) or modes < n:
            raise Fe2xError(f"modes = {modes!r} must be an integer >= the {n} elastic modes")
        if modes - n > K:
            raise Fe2xError(
                f"the training data hold {K} fluctuation snapshots of {name!r}; modes = {modes} "
                f"needs at least {modes - n}"
            )
    if K == 0:
        raise Fe2xError(f"the training data hold no fluctuation snapshots of {name!r}")


def _modes(
    rve: NonlinearRVE, X: np.ndarray, modes: int | None, energy_tolerance: float | None
) -> tuple[np.ndarray, float]:
    """Φ: the elastic modes, then the POD in M of the snapshots X's complement to them.

    Returns Φ and the fraction of the snapshots' energy ‖X‖²_M it captures.
    """
    p = rve.problem
    n = p.n_strain
    M = energy_inner_product(p)
    Phi_el = elastic_modes(rve, M)
    X_perp = X - Phi_el @ (Phi_el.T @ (M @ X))
    extra = None if modes is None else int(modes) - n
    if extra == 0:
        Phi = Phi_el
    else:
        pod = pod_basis(X_perp, M, energy_tol=energy_tolerance, size=extra)
        Phi_in = pod.Phi - Phi_el @ (Phi_el.T @ (M @ pod.Phi))
        Phi = np.hstack([Phi_el, _orthonormal(Phi_in, M)])
    MX = M @ X
    total = float(np.einsum("ij,ij->", X, MX))
    coefficients = Phi.T @ MX
    energy = float(np.sum(coefficients**2) / total) if total > 0 else 1.0
    return Phi, energy


def _replayed_span(
    rve: NonlinearRVE, data: TrainingData, name: str, Phi: np.ndarray
) -> tuple[_Replay, np.ndarray, _Span, float]:
    """The span of the training integrands, by a replay that must reproduce the recorded Σ.

    Returns the replay, the mode strains B Φ ``(n_points, n, r)``, the integrands' span and
    the largest relative mismatch of replayed and recorded Σ.
    """
    p = rve.problem
    weights = p.weights
    BPhi = mode_strains(p, Phi)
    span = _Span(np.sqrt(weights))
    span.add(BPhi.reshape(p.rule.n_points, -1))
    replay = _Replay(rve, data, name)
    mismatch = 0.0
    for record, _, sigma in replay:
        Sigma = weights @ sigma / p.volume
        recorded = data.Sigma[record]
        scale = max(float(np.linalg.norm(recorded)), 1e-300)
        mismatch = max(mismatch, float(np.linalg.norm(Sigma - recorded)) / scale)
        span.add(_integrands(BPhi, sigma))
    if mismatch > REPLAY_MISMATCH:
        raise Fe2xError(
            f"the training data of {name!r} do not belong to this RVE: the stress replayed from "
            f"their fluctuations differs from the recorded one by {mismatch:.2e} (relative); "
            "another microstructure, mesh or law?"
        )
    return replay, BPhi, span, mismatch


def _cubature(
    replay: _Replay,
    BPhi: np.ndarray,
    weights: np.ndarray,
    span: _Span,
    cubature_tolerance: float,
) -> tuple[Cubature, float]:
    """The empirical cubature of the span, truncated tighter until every training integrand fits.

    Returns the cubature and the largest relative error of a training integrand.
    """
    integrands, svd_tol = span.integrands(), cubature_tolerance
    for _ in range(MAX_TIGHTENING + 1):
        cubature = empirical_cubature(integrands, weights, cubature_tolerance, svd_tol=svd_tol)
        worst = _worst_training_error(replay, BPhi, weights, cubature)
        if worst <= cubature_tolerance:
            break
        logger.info(
            "cubature of %d points integrates a training integrand to %.2e > %.2e: the span "
            "is truncated less (svd_tol %.1e)",
            cubature.points.size,
            worst,
            cubature_tolerance,
            svd_tol / TIGHTENING,
        )
        svd_tol /= TIGHTENING
    else:
        raise Fe2xError(
            f"the empirical cubature does not integrate the training integrands to "
            f"{cubature_tolerance:g} (worst {worst:.2e} with {cubature.points.size} points)"
        )
    return cubature, worst


def _effectivity(indicator: np.ndarray, error: np.ndarray) -> float:
    """κ = max_s e_s / η_s over the errors e_s above :data:`ERROR_FLOOR` (1 if none is)."""
    informative = error > ERROR_FLOOR
    effectivity = 1.0
    if informative.any():
        effectivity = float(np.max(error[informative] / np.maximum(indicator[informative], 1e-300)))
    return effectivity


def _calibrate(
    rve: NonlinearRVE,
    basis: ReducedBasis,
    data: TrainingData,
    sequences: list[np.ndarray],
    references: int = CALIBRATION_REFERENCES,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The reduced RVE (no fallback) along each training sequence: indicators and errors.

    At evenly spread evaluations (at most ``references``), its indicator η and its relative
    stress error against the full RVE solved from the same committed state (‖ΔΣ‖ / ‖σ‖_rms);
    and the largest deviation of its Σ along a sequence from the recorded one, relative to the
    sequence's largest |Σ|.
    """
    reduced = ReducedRVE(rve, basis, tolerance=None, strain_range=None)
    p = rve.problem
    initial = reduced.get_state()
    every = max(1, -(-sum(s.size for s in sequences) // references))
    indicator, error, deviation, count = [], [], 0.0, 0
    for records in sequences:
        reduced.set_state(initial)
        scale = max(float(np.max(np.linalg.norm(data.Sigma[records], axis=1))), 1e-300)
        for record in records.tolist():
            E = data.E[record]
            reference = None
            if count % every == 0:
                rve.set_state(reduced.full_state(reduced.get_state()))
                answer = rve.solve(E)
                if answer.converged:
                    floor = reduced.stress_floor(E)
                    rms = max(stress_rms(p.laws.stress, p.weights, p.volume), floor)
                    reference = (answer.Sigma, rms)
            count += 1
            result = reduced.solve(E)
            if not result.converged:
                break
            reduced.commit()
            deviation = max(
                deviation, float(np.linalg.norm(result.Sigma - data.Sigma[record])) / scale
            )
            outcome = reduced.outcome()
            if reference is not None and not outcome.fallback and reference[1] > 0:
                indicator.append(outcome.indicator)
                error.append(float(np.linalg.norm(result.Sigma - reference[0])) / reference[1])
    return np.array(indicator), np.array(error), deviation
