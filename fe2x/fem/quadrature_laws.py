"""The one evaluator that binds constitutive laws to quadrature points, phase by phase.

It keeps the committed and the trial state of every phase. The RVE, the DNS reference and the
single material point all evaluate their laws through :class:`QuadratureLaws`: each phase's law
is called once per update on all of its points (batched, :mod:`fe2x.materials.law`), plane
strain is embedded in and reduced from the 3D law, linear phases keep their constant tangent,
and a failed update leaves the outputs and states as they were. The kinematics is a parameter:
small-strain laws take the Mandel strain, finite-strain laws the deformation gradient F
(row-major; plane strain with F₃₃ = 1 and F₁₃ = F₂₃ = F₃₁ = F₃₂ = 0), and every phase must be
of the evaluator's kinematics.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.materials.kinematics import (
    PLANE_STRAIN_ENTRIES,
    cauchy_from_piola,
    embed_plane_strain,
    unflatten,
)
from fe2x.materials.law import (
    KINEMATICS,
    ConstitutiveLaw,
    ElasticLimit,
    ElasticStiffness,
    OutputFields,
    State,
    check_law,
    is_linear,
)
from fe2x.materials.mandel import mandel_to_tensor4, tensor_to_mandel

__all__ = ["PhaseStates", "QuadratureLaws"]

#: Per phase, the state of its points.
PhaseStates = dict[str, State]

_PLANE = np.array([0, 1, 5])  # rows of the 3D Mandel vector kept in plane strain
_PLANE_F = np.array(PLANE_STRAIN_ENTRIES)  # entries 11, 12, 21, 22 of a row-major 3×3 tensor


def _as_slice(idx: np.ndarray) -> np.ndarray | slice:
    """``idx`` as a slice if it is a contiguous increasing run, else itself."""
    if idx.size and idx[-1] - idx[0] + 1 == idx.size and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class QuadratureLaws:
    """The law of every point by phase, with committed and trial states.

    Args:
        laws: phase name -> its constitutive law.
        points: phase name -> indices of its points among ``n_points``; together a partition.
        dim: 2 (plane strain) or 3.
        n_points: number of points.
        parameters: phase name -> per-point parameters of its law (the names and shapes of
            ``law.parameter_shapes``), one row per point of the phase.
        out: arrays ``(n_points, n)`` and ``(n_points, n, n)`` to hold :attr:`stress` and
            :attr:`tangent` (e.g. views of quadrature functions' values); default new ones.
        kinematics: ``"small"`` (Mandel strain, ``n`` = 3 in 2D, 6 in 3D) or ``"finite"``
            (F, P and A = ∂P/∂F row-major, ``n`` = 4 or 9); every law must be of it.

    Attributes:
        stress: ``(n_points, n)`` stress of the last successful :meth:`evaluate` (Mandel σ, or
            P row-major).
        tangent: ``(n_points, n, n)`` its consistent tangent (constant rows of linear phases).
        committed: the committed state of every phase.
        trial: the state of the last successful :meth:`evaluate`, or None.
    """

    def __init__(
        self,
        laws: Mapping[str, ConstitutiveLaw],
        points: Mapping[str, np.ndarray],
        dim: int,
        n_points: int,
        parameters: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        out: tuple[np.ndarray, np.ndarray] | None = None,
        kinematics: str = "small",
    ) -> None:
        if dim not in (2, 3):
            raise ValueError(f"dim = {dim!r} must be 2 (plane strain) or 3")
        if kinematics not in KINEMATICS:
            raise ValueError(f"unknown kinematics {kinematics!r}; allowed: {KINEMATICS}")
        missing = [name for name in points if name not in laws]
        if missing:
            raise Fe2xError(f"no material given for phase(s) {missing}")
        self.laws = {name: check_law(laws[name], f"phase {name!r}") for name in points}
        other = [name for name, law in self.laws.items() if law.kinematics != kinematics]
        if other:
            kind = "finite-strain" if kinematics == "small" else "small-strain"
            raise Fe2xError(f"phase(s) {other}: a {kind} law in a {kinematics}-strain problem")
        self.kinematics = kinematics
        self.finite = kinematics == "finite"
        n = (3 if dim == 2 else 6) if not self.finite else dim * dim
        self.dim, self.n_strain, self.n_points = dim, n, int(n_points)
        self.points = {name: np.asarray(points[name], dtype=np.int64) for name in self.laws}
        # A phase on a contiguous run of points is read and written through a view
        self._rows = {name: _as_slice(idx) for name, idx in self.points.items()}
        counts = np.bincount(
            np.concatenate([*self.points.values(), np.zeros(0, np.int64)]), minlength=n_points
        )
        if counts.size != n_points or np.any(counts != 1):
            raise Fe2xError(f"{int(np.sum(counts[:n_points] != 1))} point(s) have no single phase")
        self.parameters = self._checked_parameters(parameters or {})
        n = self.n_strain
        if out is None:
            out = (np.zeros((n_points, n)), np.zeros((n_points, n, n)))
        if out[0].shape != (n_points, n) or out[1].shape != (n_points, n, n):
            raise ValueError(
                f"out shapes {out[0].shape}, {out[1].shape} do not fit {n_points} points"
            )
        self.stress: np.ndarray = out[0]
        self.tangent: np.ndarray = out[1]
        self.linear = [name for name, law in self.laws.items() if is_linear(law)]
        #: The constant tangent of each linear phase, as stored (one matrix if uniform).
        self._linear_tangent: dict[str, np.ndarray] = {}
        for name in self.linear:
            C = self._reduce_tangent(self._stiffness(name))
            self.tangent[self.points[name]] = C
            uniform = C.shape[0] > 0 and bool(np.all(C == C[0]))
            self._linear_tangent[name] = C[0].copy() if uniform else C.copy()
        self.committed: PhaseStates = self.initial_state()
        self.trial: PhaseStates | None = None
        self.output_names = tuple(
            sorted(
                {
                    o
                    for law in self.laws.values()
                    if isinstance(law, OutputFields)
                    for o in law.output_names
                }
            )
        )

    def _checked_parameters(
        self, parameters: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, dict[str, np.ndarray]]:
        checked: dict[str, dict[str, np.ndarray]] = {}
        for name, law in self.laws.items():
            given = parameters.get(name, {})
            checked[name] = {}
            for key, shape in law.parameter_shapes.items():
                if key not in given:
                    raise Fe2xError(
                        f"phase {name!r}: its law needs the per-point parameter {key!r}"
                    )
                value = np.asarray(given[key], dtype=float)
                if value.shape != (self.points[name].size, *shape):
                    raise Fe2xError(
                        f"phase {name!r}: parameter {key!r} has shape {value.shape}, expected "
                        f"{(self.points[name].size, *shape)}"
                    )
                checked[name][key] = value
        return checked

    def _stiffness(self, name: str) -> np.ndarray:
        """The elastic stiffness of phase ``name`` at each of its points.

        ``(m, 6, 6)`` Mandel, or for finite-strain laws the tangent at F = I, ``C_iJkL`` as
        ``(m, 9, 9)``.
        """
        C = self.laws[name].elastic_stiffness(self.parameters[name])  # type: ignore[attr-defined]
        if self.finite:
            C = mandel_to_tensor4(C, 3).reshape(*np.shape(C)[:-2], 9, 9)
        width = 9 if self.finite else 6
        return np.broadcast_to(C, (self.points[name].size, width, width))

    # -- plane strain ----------------------------------------------------------------------
    def _embed(self, strain: np.ndarray) -> np.ndarray:
        if self.dim == 3:
            return strain
        if self.finite:
            return embed_plane_strain(strain)
        eps = np.zeros((strain.shape[0], 6))
        eps[:, _PLANE] = strain
        return eps

    def _reduce_stress(self, stress: np.ndarray) -> np.ndarray:
        if self.dim == 3:
            return stress
        return stress[:, _PLANE_F if self.finite else _PLANE]

    def _reduce_tangent(self, tangent: np.ndarray) -> np.ndarray:
        """In-plane block of a 3D tangent, without condensation.

        Plane strain prescribes the out-of-plane entries, so none is condensed out.
        """
        if self.dim == 3:
            return tangent
        rows = _PLANE_F if self.finite else _PLANE
        return tangent[:, rows[:, None], rows[None, :]]  # one gather: 2.6× faster than two

    # -- states ----------------------------------------------------------------------------
    def initial_state(self) -> PhaseStates:
        """The virgin state of every phase."""
        return {name: law.initial_state(self.points[name].size) for name, law in self.laws.items()}

    def commit(self) -> None:
        """The trial state of the last evaluation becomes the committed one."""
        if self.trial is not None:
            self.committed = self.trial
        self.trial = None

    def discard(self) -> None:
        """Forget the trial state."""
        self.trial = None

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(
        self, strain: np.ndarray, base: PhaseStates | None = None, dt: float = 0.0
    ) -> None:
        """Stress and tangent at ``strain`` ``(n_points, n)`` from ``base`` (default: committed).

        Fills :attr:`stress` and :attr:`tangent` and sets :attr:`trial`. A law that fails
        raises :class:`~fe2x.errors.SolverError`; then nothing is changed.
        """
        base = self.committed if base is None else base
        strain = np.asarray(strain, dtype=float)
        if strain.shape != (self.n_points, self.n_strain):
            raise ValueError(
                f"strain shape {strain.shape}; expected ({self.n_points}, {self.n_strain})"
            )
        updates: list[tuple[np.ndarray | slice, np.ndarray, np.ndarray | None]] = []
        trial: PhaseStates = {}
        for name, law in self.laws.items():
            idx = self._rows[name]
            if name in self.linear:  # σ = C ε in the problem's own components
                C, eps = self._linear_tangent[name], strain[idx]
                stress = eps @ C.T if C.ndim == 2 else np.einsum("pij,pj->pi", C, eps)
                updates.append((idx, stress, None))
                trial[name] = base[name]
                continue
            response = law.update(self._embed(strain[idx]), base[name], dt, self.parameters[name])
            C_T = self._reduce_tangent(response.tangent)
            updates.append((idx, self._reduce_stress(response.stress), C_T))
            trial[name] = response.state
        for idx, stress, tangent in updates:
            self.stress[idx] = stress
            if tangent is not None:
                self.tangent[idx] = tangent
        self.trial = trial

    def stresses(self, strain: np.ndarray, state: PhaseStates) -> np.ndarray:
        """The 3D Cauchy stress (Mandel) ``(n_points, 6)`` at ``strain`` in ``state``, no flow.

        No flow: dt = 0. E.g. the committed stress of a swapped-in history; for finite-strain
        laws ``σ = P Fᵀ / det F``. Nothing is stored.
        """
        sigma = np.zeros((self.n_points, 6))
        for name, law in self.laws.items():
            idx = self.points[name]
            strain3 = self._embed(strain[idx])
            stress = law.update(strain3, state[name], 0.0, self.parameters[name])[0]
            if self.finite:
                stress = tensor_to_mandel(cauchy_from_piola(unflatten(strain3), unflatten(stress)))
            sigma[idx] = stress
        return sigma

    # -- optional capabilities -------------------------------------------------------------
    def elastic_stiffness(self) -> np.ndarray:
        """The virgin-state stiffness of every point ``(n_points, n, n)``.

        Every law must have :class:`~fe2x.materials.law.ElasticStiffness`; finite strain: the
        tangent at F = I.
        """
        C = np.zeros((self.n_points, self.n_strain, self.n_strain))
        for name, law in self.laws.items():
            if not isinstance(law, ElasticStiffness):
                raise Fe2xError(f"phase {name!r}: its law has no elastic stiffness")
            C[self.points[name]] = self._reduce_tangent(self._stiffness(name))
        return C

    @property
    def has_elastic_limit(self) -> bool:
        """Whether every law can say when a strain stays elastic (:class:`ElasticLimit`)."""
        return all(isinstance(law, ElasticLimit) for law in self.laws.values())

    def stays_elastic(
        self, strains: np.ndarray, phases: list[str] | None = None
    ) -> np.ndarray | bool:
        """Whether every point of ``phases`` stays elastic under each strain field from virgin.

        For each of m strain fields ``(m, n_points, n)`` (or one, ``(n_points, n)``) from the
        virgin state, whether every point of ``phases`` (default: all non-linear phases) stays
        elastic: ``(m,)`` bool (or a bool for one field).
        """
        strains = np.asarray(strains, dtype=float)
        single = strains.ndim == 2
        strains = strains[None] if single else strains
        m = strains.shape[0]
        elastic = np.ones(m, dtype=bool)
        for name in phases if phases is not None else self.nonlinear_phases:
            idx = self.points[name]
            eps = self._embed(strains[:, idx].reshape(-1, self.n_strain))
            tiled = {
                k: np.tile(v, (m,) + (1,) * (v.ndim - 1)) for k, v in self.parameters[name].items()
            }
            flags = self.laws[name].stays_elastic(eps, tiled)  # type: ignore[attr-defined]
            elastic &= np.asarray(flags, dtype=bool).reshape(m, idx.size).all(axis=1)
        return bool(elastic[0]) if single else elastic

    @property
    def nonlinear_phases(self) -> list[str]:
        """The phases whose law is not linear."""
        return [name for name in self.laws if name not in self.linear]

    def outputs(self, state: PhaseStates | None = None) -> dict[str, np.ndarray]:
        """Every output field of the laws in ``state`` at every point ``(n_points,)``.

        0 where a phase's law does not have it; ``state`` defaults to the committed state.
        """
        state = self.committed if state is None else state
        fields = {name: np.zeros(self.n_points) for name in self.output_names}
        for name, law in self.laws.items():
            if isinstance(law, OutputFields):
                for key, values in law.outputs(state[name]).items():
                    fields[key][self.points[name]] = values
        return fields
