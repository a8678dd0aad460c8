"""Direct numerical simulation (DNS), the reference of FE²: a specimen resolved cell by cell.

A rectangle tiled with n_x × n_y copies of a periodic cell
(:func:`~fe2x.geometry.tiled.tiled_specimen`) is solved by
:class:`~fe2x.macro.problem.MacroProblem` with the law of each point's phase
(:class:`PhaseLaw`). As the cells shrink (n grows, total size fixed) the DNS tends to the
homogenized (FE²) response with the same cell. The DNS has the kinematics of its macro problem
(finite strain: total Lagrangian, the phases' finite-strain laws in F and P).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpi4py import MPI

import dolfinx
import numpy as np

from fe2x.errors import Fe2xError, SolverError
from fe2x.fem.quadrature import tag_of_cells
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.macro.problem import MacroProblem, StepResult
from fe2x.materials.law import ConstitutiveLaw

__all__ = ["PhaseLaw"]

logger = logging.getLogger(__name__)


class PhaseLaw:
    """The DNS constitutive callback: each point of ``problem`` follows its cell's phase law.

    ``law(E) -> (stress, tangent, ok)`` evaluates the laws of the phases at the points
    (:class:`~fe2x.fem.quadrature_laws.QuadratureLaws`, in the kinematics of ``problem``;
    plane strain: the 3D law at ε₃₃ = 0, or F₃₃ = 1) from the committed history to a trial
    one, which :meth:`commit` keeps and
    :meth:`discard` drops. :meth:`step` is the DNS counterpart of
    :meth:`~fe2x.macro.fe2.FE2Engine.step`.

    Args:
        problem: the DNS problem (its points are those of the owned cells).
        cell_tags: phase tag of every cell.
        phases: phase name -> cell tag value.
        materials: phase name -> constitutive law.
        end_time: the time at load factor 1 (a step from λ to λ' lasts (λ' − λ) · end_time).
    """

    def __init__(
        self,
        problem: MacroProblem,
        cell_tags: dolfinx.mesh.MeshTags,
        phases: Mapping[str, int],
        materials: Mapping[str, ConstitutiveLaw],
        end_time: float = 1.0,
    ) -> None:
        self.problem = problem
        self.dim = problem.dim
        nq = problem.points_per_cell
        tag = tag_of_cells(cell_tags, problem.n_points // nq)
        if np.any(tag < 0):
            raise Fe2xError(f"{int(np.sum(tag < 0))} cell(s) have no phase tag")
        tag = np.repeat(tag, nq)
        points = {name: np.flatnonzero(tag == value) for name, value in phases.items()}
        missing = [name for name in phases if name not in materials]
        if missing:
            raise Fe2xError(f"no material given for phase(s) {missing}; phases: {list(phases)}")
        self.laws = QuadratureLaws(
            {name: materials[name] for name in phases},
            points,
            self.dim,
            problem.n_points,
            kinematics=problem.kinematics,
        )
        self.end_time, self.load_factor, self._dt = float(end_time), 0.0, 0.0

    def __call__(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Stress ``(n_points, n)`` and tangent ``(n_points, n, n)`` at strains E.

        They are Mandel, or F, P and ∂P/∂F.
        """
        try:
            self.laws.evaluate(np.asarray(E, dtype=float), dt=self._dt)
        except SolverError as error:
            logger.debug("DNS constitutive update failed: %s", error)
            self.laws.discard()
            return self.laws.stress, self.laws.tangent, False
        return self.laws.stress, self.laws.tangent, True

    def commit(self) -> None:
        """Keep the histories of the last evaluation (a converged step)."""
        self.laws.commit()

    def discard(self) -> None:
        """Forget the trial histories (a failed step)."""
        self.laws.discard()

    def plastic_points(self) -> int:
        """Number of points (on all ranks) with accumulated plastic strain p > 0."""
        p = self.laws.outputs().get("equivalent_plastic_strain", np.zeros(0))
        return self.problem.comm.allreduce(int(np.count_nonzero(p > 0)), op=MPI.SUM)

    def step(self, load_factor: float) -> StepResult:
        """One load step of the DNS; commits the histories if it converged, else discards."""
        self._dt = (load_factor - self.load_factor) * self.end_time
        saved = self.problem.save_state()
        result = self.problem.solve_step(load_factor, self)
        if result.converged:
            self.commit()
            self.load_factor = float(load_factor)
        else:
            self.discard()
            self.problem.restore_state(saved)
        return result
