"""Direct numerical simulation (DNS), the reference of FE²: a specimen resolved cell by cell.

A rectangle tiled with n_x × n_y copies of a periodic cell
(:func:`~fe2x.geometry.tiled.tiled_specimen`) is solved by
:class:`~fe2x.macro.problem.MacroProblem` with the law of each point's phase
(:class:`PhaseLaw`). As the cells shrink (n grows, total size fixed) the DNS tends to the
homogenized (FE²) response with the same cell.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpi4py import MPI

import dolfinx
import numpy as np

from fe2x.errors import Fe2xError, SolverError
from fe2x.macro.problem import MacroProblem, StepResult
from fe2x.materials.elastic import AnisotropicElastic, IsotropicElastic
from fe2x.materials.j2 import (
    J2Plasticity,
    J2State,
    plane_strain_reduce,
    plane_strain_strain,
    return_mapping,
)

__all__ = ["PhaseLaw"]

logger = logging.getLogger(__name__)

Material = IsotropicElastic | AnisotropicElastic | J2Plasticity


class PhaseLaw:
    """The DNS constitutive callback: each point of ``problem`` follows its cell's phase law.

    ``law(E) -> (stress, tangent, ok)`` (plane strain: the 3D J2 law at ε₃₃ = 0), vectorised
    per phase; J2 phases return from the committed history to a trial one, which
    :meth:`commit` keeps and :meth:`discard` drops. :meth:`step` is the DNS counterpart of
    :meth:`~fe2x.macro.fe2.FE2Engine.step`.

    Args:
        problem: the DNS problem (its points are those of the owned cells).
        cell_tags: phase tag of every cell.
        phases: phase name -> cell tag value.
        materials: phase name -> elastic or J2 material.
    """

    def __init__(
        self,
        problem: MacroProblem,
        cell_tags: dolfinx.mesh.MeshTags,
        phases: Mapping[str, int],
        materials: Mapping[str, Material],
    ) -> None:
        missing = [name for name in phases if name not in materials]
        if missing:
            raise Fe2xError(f"no material given for phase(s) {missing}; phases: {list(phases)}")
        for name in phases:
            if not isinstance(materials[name], Material):
                raise Fe2xError(
                    f"phase {name!r}: material {type(materials[name]).__name__} is not one of "
                    "IsotropicElastic, AnisotropicElastic, J2Plasticity"
                )
        self.problem = problem
        self.dim = dim = problem.dim
        mesh = problem.mesh
        n_owned = mesh.topology.index_map(dim).size_local
        phase_of_cell = np.full(n_owned, -1)
        keep = cell_tags.indices < n_owned
        phase_of_cell[cell_tags.indices[keep]] = cell_tags.values[keep]
        if np.any(phase_of_cell < 0):
            raise Fe2xError(f"{int(np.sum(phase_of_cell < 0))} cell(s) have no phase tag")
        nq = problem.points_per_cell
        self.materials = {name: materials[name] for name in phases}
        self.points = {
            name: np.flatnonzero(np.repeat(phase_of_cell == tag, nq))
            for name, tag in phases.items()
        }
        self._elastic_C = {
            name: np.asarray(law.stiffness(dim), dtype=float)
            for name, law in self.materials.items()
            if not isinstance(law, J2Plasticity)
        }
        self.committed = {
            name: J2State.zeros(len(self.points[name]))
            for name, law in self.materials.items()
            if isinstance(law, J2Plasticity)
        }
        self.trial: dict[str, J2State] | None = None

    def __call__(self, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Stress ``(n_points, n)`` and tangent ``(n_points, n, n)`` (Mandel) at strains E."""
        E = np.asarray(E, dtype=float)
        n = E.shape[1]
        stress = np.zeros_like(E)
        tangent = np.zeros((E.shape[0], n, n))
        trial: dict[str, J2State] = {}
        try:
            for name, law in self.materials.items():
                idx = self.points[name]
                if name in self._elastic_C:
                    C = self._elastic_C[name]
                    stress[idx] = E[idx] @ C.T
                    tangent[idx] = C
                    continue
                eps = plane_strain_strain(E[idx]) if self.dim == 2 else E[idx]
                sigma, C_alg, trial[name], _ = return_mapping(law, eps, self.committed[name])
                if self.dim == 2:
                    sigma, C_alg = plane_strain_reduce(sigma, C_alg)
                stress[idx], tangent[idx] = sigma, C_alg
        except SolverError as error:
            logger.debug("DNS return mapping failed: %s", error)
            self.trial = None
            return stress, tangent, False
        self.trial = trial
        return stress, tangent, True

    def commit(self) -> None:
        """Keep the histories of the last evaluation (a converged step)."""
        if self.trial is not None:
            self.committed = self.trial
        self.trial = None

    def discard(self) -> None:
        """Forget the trial histories (a failed step)."""
        self.trial = None

    def plastic_points(self) -> int:
        """Number of points (on all ranks) with accumulated plastic strain p > 0."""
        local = sum(int(np.count_nonzero(s.p > 0)) for s in self.committed.values())
        return self.problem.comm.allreduce(local, op=MPI.SUM)

    def step(self, load_factor: float) -> StepResult:
        """One load step of the DNS; commits the histories if it converged, else discards."""
        saved = self.problem.save_state()
        result = self.problem.solve_step(load_factor, self)
        if result.converged:
            self.commit()
        else:
            self.discard()
            self.problem.restore_state(saved)
        return result
