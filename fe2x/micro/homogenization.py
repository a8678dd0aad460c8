"""Linear homogenization of one RVE: C_eff (and α_eff) or k_eff under each boundary condition.

The effective properties come with their bounds and checks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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
from fe2x.materials.bounds import hashin_shtrikman_conductivity
from fe2x.materials.law import ConstitutiveLaw, ElasticStiffness
from fe2x.materials.thermal import (
    conductivity_tensor,
    expansion_mandel,
    isotropic_value,
    plane_strain_expansion,
)
from fe2x.micro.conduction import ConductionRVE, UnitGradientResponse
from fe2x.micro.linear import LinearRVE, UnitStrainResponse
from fe2x.registry import BOUNDARY_CONDITIONS

logger = logging.getLogger(__name__)

ElasticMaterial = IsotropicElastic | AnisotropicElastic

#: How result files state the notation of the thermal quantities.
THERMAL_NOTATION = {
    "k_eff": "full (dim, dim) tensor k_ij; q = -k grad(theta) in each phase, Q = <q> = -k_eff G",
    "alpha_eff": "Mandel strain per unit temperature change, Sigma = C_eff (E - alpha_eff dT)",
    "thermal_stress": "Mandel Sigma_th = <sigma> at E = 0, dT = 1; alpha_eff = -C_eff^-1 Sigma_th",
}


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
        """The effective (apparent) Mandel stiffness under each boundary condition."""
        return {bc: r.C_eff for bc, r in self.responses.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready summary written as ``result.json``."""
        dim = self.rve.dim
        bcs: dict[str, dict[str, Any]] = {}
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
            if r.thermal_stress is not None and r.alpha_eff is not None:
                bcs[bc]["alpha_eff"] = r.alpha_eff.tolist()
                bcs[bc]["thermal_stress"] = r.thermal_stress.tolist()
                bcs[bc]["thermal_reciprocity_residual"] = r.thermal_reciprocity_residual
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
    fractions: Mapping[str, float],
    stiffness: Mapping[str, np.ndarray],
    materials: Mapping[str, object],
    dim: int,
) -> dict[str, object]:
    """Elastic bounds of the cell: Voigt and Reuss always, Hashin–Shtrikman for isotropic phases.

    Voigt and Reuss come from the phase ``stiffness`` (Mandel, the cell's notation);
    Hashin–Shtrikman bounds are added when every phase's material is isotropic.
    """
    names = list(fractions)
    f = [fractions[n] for n in names]
    C = [stiffness[n] for n in names]
    bounds: dict[str, object] = {"voigt": voigt_bound(f, C), "reuss": reuss_bound(f, C)}
    iso = [m for n in names if isinstance(m := materials[n], IsotropicElastic)]
    if len(iso) == len(names):
        bulk = [m.bulk_modulus if dim == 3 else m.plane_strain_bulk_modulus for m in iso]
        shear = [m.shear_modulus for m in iso]
        hs = hashin_shtrikman(f, bulk, shear, dim)
        bounds["hashin_shtrikman"] = {k: list(v) for k, v in hs.items()}
    return bounds


def cell_eigenstrains(
    materials: Mapping[str, ConstitutiveLaw], expansion: Mapping[str, npt.ArrayLike], dim: int
) -> dict[str, np.ndarray]:
    """Phase eigenstrains per unit ΔT in the cell's Mandel notation: α (3D) or α' (2D).

    ``expansion`` maps each phase to a scalar, a 3x3 tensor or a Mandel (6,) vector; in 2D the
    plane-strain α' = C_ps⁻¹ (C α)_p of :func:`fe2x.materials.thermal.plane_strain_expansion`.
    """
    eigenstrains = {}
    for name in materials:
        if name not in expansion:
            raise Fe2xError(f"no thermal expansion given for phase {name!r}")
        a = expansion_mandel(expansion[name], name)
        law = materials[name]
        if not isinstance(law, ElasticStiffness):
            raise Fe2xError(f"phase {name!r}: its law has no elastic stiffness for the eigenstrain")
        C3 = law.elastic_stiffness()
        eigenstrains[name] = a if dim == 3 else plane_strain_expansion(a, C3)
    return eigenstrains


def phase_stiffness(cell: RVEMesh, name: str, law: ConstitutiveLaw) -> np.ndarray:
    """The elastic Mandel stiffness of phase ``name`` (plane strain in 2D).

    One matrix, or one per local cell when its law reads per-cell parameters (e.g. a grain
    orientation) from ``cell.cell_data``; rows of cells outside the phase are zero.

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
    expansion: Mapping[str, npt.ArrayLike] | None = None,
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
        expansion: phase name -> thermal expansion (scalar, 3x3 or Mandel (6,)); given, each
            response also holds Σ_th and α_eff (:mod:`fe2x.micro.linear`).
    """
    dim = cell.mesh.topology.dim
    stiffness = {
        name: phase_stiffness(cell, name, materials[name])
        for name in cell.phases
        if name in materials
    }
    eigenstrains = None if expansion is None else cell_eigenstrains(materials, expansion, dim)
    rve = LinearRVE(cell, stiffness, degree=degree, expansion=eigenstrains)
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
        bounds = elastic_bounds(rve.volume_fractions, stiffness, materials, dim)
    else:
        voigt, mean_compliance = rve.mean_stiffness()
        reuss = np.linalg.inv(mean_compliance)
        bounds = {"voigt": voigt, "reuss": 0.5 * (reuss + reuss.T)}
    return HomogenizationResult(rve=rve, responses=responses, bounds=bounds, timings=rve.timings)


@dataclass
class ConductionResult:
    """Effective conductivity of one RVE under several boundary conditions.

    Attributes:
        rve: the set-up conduction RVE, reusable for more solves.
        responses: boundary condition -> its unit-gradient response (k_eff, correctors, checks).
        bounds: "arithmetic" ⟨k⟩ and "harmonic" ⟨k⁻¹⟩⁻¹ (dim, dim) tensors (Wiener: they bound
            k_eff as quadratic forms), and "hashin_shtrikman" (lower, upper) scalars when every
            phase is isotropic.
        timings: seconds of the set-up ("forms", "assembly").
    """

    rve: ConductionRVE
    responses: dict[str, UnitGradientResponse]
    bounds: dict[str, object]
    timings: dict[str, float]

    @property
    def k_eff(self) -> dict[str, np.ndarray]:
        """The effective (apparent) conductivity ``(dim, dim)`` under each boundary condition."""
        return {bc: r.k_eff for bc, r in self.responses.items()}

    def bc_dict(self, bc: str) -> dict[str, object]:
        """The JSON-ready entries of boundary condition ``bc`` (merged into result.json)."""
        r = self.responses[bc]
        return {
            "k_eff": r.k_eff.tolist(),
            "conduction_hill_mandel_residual": float(r.hill_mandel_residual.max()),
            "conduction_symmetry_defect": r.symmetry_defect,
            "mean_gradient_error": r.mean_gradient_error,
            "conduction_solver": r.solver,
            "conduction_timings": r.timings,
        }

    def bounds_dict(self) -> dict[str, object]:
        """The bounds as JSON-ready lists."""
        return {
            key: value if key == "hashin_shtrikman" else np.asarray(value).tolist()
            for key, value in self.bounds.items()
        }


def conduction_bounds(
    fractions: Mapping[str, float], conductivity: Mapping[str, np.ndarray], dim: int
) -> dict[str, object]:
    """Wiener bounds ⟨k⁻¹⟩⁻¹ ≤ k_eff ≤ ⟨k⟩ (tensors), and Hashin–Shtrikman when all isotropic."""
    names = list(fractions)
    f = np.array([fractions[n] for n in names])
    k = np.array([conductivity[n] for n in names])
    bounds: dict[str, object] = {
        "arithmetic": np.einsum("i,ijk->jk", f, k),
        "harmonic": np.linalg.inv(np.einsum("i,ijk->jk", f, np.linalg.inv(k))),
    }
    scalars = [s for n in names if (s := isotropic_value(conductivity[n])) is not None]
    if len(scalars) == len(names):
        bounds["hashin_shtrikman"] = list(hashin_shtrikman_conductivity(f, scalars, dim))
    return bounds


def homogenize_conduction(
    cell: RVEMesh,
    conductivity: Mapping[str, npt.ArrayLike],
    bcs: Sequence[str] = BOUNDARY_CONDITIONS.names(),
    degree: int = 2,
    solver: str = "auto",
    petsc_options: Mapping[str, object] | None = None,
) -> ConductionResult:
    """Effective conductivity of ``cell`` under each boundary condition in ``bcs``.

    Args:
        cell: the meshed RVE (see :mod:`fe2x.geometry`).
        conductivity: phase name -> conductivity (scalar or symmetric positive definite 3x3).
        bcs: any of "periodic", "kubc" (uniform temperature gradient), "subc" (uniform flux).
        degree: Lagrange degree of the temperature (1 or 2).
        solver: "auto", "direct" (MUMPS LU) or "iterative" (CG + GAMG).
        petsc_options: PETSc options overriding fe2x's solver defaults.
    """
    dim = cell.mesh.topology.dim
    tensors = {name: conductivity_tensor(k, dim, name) for name, k in conductivity.items()}
    rve = ConductionRVE(cell, tensors, degree=degree)
    logger.info("conduction RVE set up: %d dofs on %d rank(s)", rve.n_dofs, rve.comm.size)
    responses = {}
    for bc in bcs:
        t0 = time.perf_counter()
        responses[bc] = rve.solve_unit_gradients(bc, solver=solver, petsc_options=petsc_options)
        logger.info(
            "%s: solved %d conduction load cases in %.2f s, Hill–Mandel residual %.1e",
            bc,
            dim,
            time.perf_counter() - t0,
            responses[bc].hill_mandel_residual.max(),
        )
    bounds = conduction_bounds(rve.volume_fractions, rve.conductivity, dim)
    return ConductionResult(rve=rve, responses=responses, bounds=bounds, timings=rve.timings)
