"""Linear homogenization of one RVE: C_eff under each boundary condition, with bounds and checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fe2x.errors import Fe2xError
from fe2x.geometry import RVEMesh
from fe2x.materials import (
    AnisotropicElastic,
    IsotropicElastic,
    component_labels,
    hashin_shtrikman,
    isotropic_projection,
    plane_strain,
    reuss_bound,
    voigt_bound,
)
from fe2x.materials.law import ConstitutiveLaw, ElasticStiffness
from fe2x.micro.linear import LinearRVE, UnitStrainResponse
from fe2x.registry import BOUNDARY_CONDITIONS

logger = logging.getLogger(__name__)

ElasticMaterial = IsotropicElastic | AnisotropicElastic


@dataclass
class HomogenizationResult:
    """Effective stiffness of one RVE under several boundary conditions.

    Attributes:
        rve: the set-up RVE (mesh, space, stiffness), reusable for more solves.
        responses: boundary condition -> its unit-strain response (C_eff, correctors, checks).
        bounds: "voigt" and "reuss" Mandel matrices, and "hashin_shtrikman" bulk/shear
            (lower, upper) pairs when every phase is isotropic.
        timings: seconds of the set-up ("forms", "assembly").
    """

    rve: LinearRVE
    responses: dict[str, UnitStrainResponse]
    bounds: dict[str, object]
    timings: dict[str, float]

    @property
    def C_eff(self) -> dict[str, np.ndarray]:
        return {bc: r.C_eff for bc, r in self.responses.items()}

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready summary written as ``result.json``."""
        dim = self.rve.dim
        bcs = {}
        for bc, r in self.responses.items():
            bulk, shear = isotropic_projection(r.C_eff, dim)
            bcs[bc] = {
                "C_eff": r.C_eff.tolist(),
                "hill_mandel_residual": float(r.hill_mandel_residual.max()),
                "hill_mandel_residuals": r.hill_mandel_residual.tolist(),
                "symmetry_defect": r.symmetry_defect,
                "mean_strain_error": r.mean_strain_error,
                "bulk_modulus": bulk,
                "shear_modulus": shear,
                "solver": r.solver,
                "iterations": r.iterations,
                "n_reduced_dofs": r.n_reduced,
                "timings": r.timings,
            }
        bounds: dict[str, object] = {
            "voigt": np.asarray(self.bounds["voigt"]).tolist(),
            "reuss": np.asarray(self.bounds["reuss"]).tolist(),
        }
        if "hashin_shtrikman" in self.bounds:
            bounds["hashin_shtrikman"] = self.bounds["hashin_shtrikman"]
        return {
            "notation": "mandel",
            "dim": dim,
            "components": component_labels(dim),
            "bulk_modulus_definition": "K=(1/9)sum C_ij, i,j<3"
            if dim == 3
            else "kappa=(C11+C22+2C12)/4 (plane strain)",
            "volume_fractions": self.rve.volume_fractions,
            "n_dofs": self.rve.n_dofs,
            "degree": self.rve.V.element.basix_element.degree,
            "geometry_order": self.rve.cell.mesh.geometry.cmaps[0].degree,
            "n_ranks": self.rve.comm.size,
            "bc": bcs,
            "bounds": bounds,
            "timings": self.timings,
        }


def elastic_bounds(
    fractions: Mapping[str, float], materials: Mapping[str, ElasticMaterial], dim: int
) -> dict[str, object]:
    """Voigt and Reuss bounds, and Hashin–Shtrikman bounds when every phase is isotropic."""
    names = list(fractions)
    f = [fractions[n] for n in names]
    C = [materials[n].stiffness(dim) for n in names]
    bounds: dict[str, object] = {"voigt": voigt_bound(f, C), "reuss": reuss_bound(f, C)}
    if all(isinstance(materials[n], IsotropicElastic) for n in names):
        iso = [materials[n] for n in names]
        bulk = [m.bulk_modulus if dim == 3 else m.plane_strain_bulk_modulus for m in iso]
        shear = [m.shear_modulus for m in iso]
        hs = hashin_shtrikman(f, bulk, shear, dim)
        bounds["hashin_shtrikman"] = {k: list(v) for k, v in hs.items()}
    return bounds


def phase_stiffness(cell: RVEMesh, name: str, law: ConstitutiveLaw) -> np.ndarray:
    """The elastic Mandel stiffness of phase ``name`` (plane strain in 2D): one matrix, or one
    per local cell when its law reads per-cell parameters (e.g. a grain orientation) from
    ``cell.cell_data``; rows of cells outside the phase are zero.

    Raises:
        Fe2xError: the law has no elastic stiffness, or the cell lacks a parameter it reads.
    """
    if not isinstance(law, ElasticStiffness):
        raise Fe2xError(f"phase {name!r}: its law has no elastic stiffness to homogenize")
    dim = cell.mesh.topology.dim
    reduce = plane_strain if dim == 2 else np.asarray
    if not law.parameter_shapes:
        return reduce(law.elastic_stiffness())
    data = cell.cell_data or {}
    missing = [key for key in law.parameter_shapes if key not in data]
    if missing:
        raise Fe2xError(f"phase {name!r}: its law needs the cell data {missing[0]!r}")
    cell_map = cell.mesh.topology.index_map(dim)
    n, n_cells = 3 if dim == 2 else 6, cell_map.size_local + cell_map.num_ghosts
    cells = cell.cell_tags.find(cell.phases[name])
    parameters = {key: np.asarray(data[key])[cells] for key in law.parameter_shapes}
    C = np.zeros((n_cells, n, n))
    C[cells] = reduce(np.broadcast_to(law.elastic_stiffness(parameters), (cells.size, 6, 6)))
    return C


def homogenize(
    cell: RVEMesh,
    materials: Mapping[str, ConstitutiveLaw],
    bcs: Sequence[str] = BOUNDARY_CONDITIONS.names(),
    degree: int = 2,
    solver: str = "auto",
    petsc_options: Mapping[str, object] | None = None,
) -> HomogenizationResult:
    """Effective stiffness of ``cell`` under each boundary condition in ``bcs``.

    Each phase enters with the elastic stiffness of its law (``elastic_stiffness``), per cell
    when the law reads per-cell parameters such as grain orientations (:func:`phase_stiffness`).
    The Voigt and Reuss bounds are then those of the cell's own stiffness field, ⟨C⟩ and
    ⟨C⁻¹⟩⁻¹.

    Args:
        cell: the meshed RVE (see :mod:`fe2x.geometry`).
        materials: phase name -> linear elastic material, or any law with an elastic
            stiffness (e.g. a crystal-plasticity phase: its rotated cubic elasticity).
        bcs: any of "periodic", "kubc", "subc".
        degree: Lagrange degree of the displacement (1 or 2).
        solver: "auto", "direct" (MUMPS LU) or "iterative" (CG + GAMG).
        petsc_options: PETSc options overriding fe2x's solver defaults.
    """
    dim = cell.mesh.topology.dim
    stiffness = {
        name: phase_stiffness(cell, name, materials[name])
        for name in cell.phases
        if name in materials
    }
    rve = LinearRVE(cell, stiffness, degree=degree)
    logger.info("RVE set up: %d dofs on %d rank(s)", rve.n_dofs, rve.comm.size)
    responses = {}
    for bc in bcs:
        t0 = time.perf_counter()
        responses[bc] = rve.solve_unit_strains(bc, solver=solver, petsc_options=petsc_options)
        logger.info(
            "%s: solved %d load cases (%s) in %.2f s, Hill–Mandel residual %.1e",
            bc,
            rve.n_strain,
            responses[bc].solver,
            time.perf_counter() - t0,
            responses[bc].hill_mandel_residual.max(),
        )
    if all(C.ndim == 2 for C in stiffness.values()):
        bounds = elastic_bounds(rve.volume_fractions, materials, dim)
    else:
        voigt, mean_compliance = rve.mean_stiffness()
        reuss = np.linalg.inv(mean_compliance)
        bounds = {"voigt": voigt, "reuss": 0.5 * (reuss + reuss.T)}
    return HomogenizationResult(rve=rve, responses=responses, bounds=bounds, timings=rve.timings)
