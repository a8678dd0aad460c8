"""The linear elastic RVE: forms compiled and stiffness assembled once, one solve per unit strain.

With u = E·(y − y_c) + w and the fluctuation w constrained by a boundary condition, the response
to each unit macro strain e_k gives one column of the effective stiffness,
C_eff[:, k] = ⟨σ(u_k)⟩. The set-up (mesh, space, forms, K) is separate from the solves so that
one RVE serves all boundary conditions, and later many macro points. A phase's stiffness is one
matrix, or one matrix per cell (e.g. a cubic crystal rotated into each grain's orientation),
held as a cell-wise constant (DG0) field.

Thermoelasticity: with phase expansions α, σ = C (ε − α ΔT), and the eigenstrain load case
(E = 0, ΔT = 1, one more solve with the same factorization) gives the thermal stress
Σ_th = ⟨σ⟩. By superposition Σ = C_eff E + Σ_th ΔT = C_eff (E − α_eff ΔT), so the effective
expansion (the macro strain of a free cell per unit ΔT) is α_eff = −S_eff Σ_th with
S_eff = C_eff⁻¹, both Mandel vectors. In 2D (plane strain, ε_33 = ε_13 = ε_23 = 0) the phases'
eigenstrains are the in-plane α' of :func:`fe2x.materials.thermal.plane_strain_expansion`, Σ_th
holds the in-plane stresses 11, 22, 12 (Σ_33 ≠ 0 is not computed) and α_eff is the in-plane α'_eff
of Σ_p = C_eff (E_p − α'_eff ΔT), not the in-plane part of a 3D α_eff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx
import dolfinx.fem.petsc
import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem

from fe2x.errors import Fe2xError
from fe2x.fem.forms import mandel_strain, stiffness_quadrature_degree
from fe2x.geometry import RVEMesh
from fe2x.micro.constraints import BoundaryCondition, Prolongation, boundary_condition
from fe2x.micro.correctors import (
    ReducedSolver,
    assemble_functional,
    unit_load_checks,
    unit_strain_fields,
)
from fe2x.micro.solver import choose_solver, rigid_body_modes

logger = logging.getLogger(__name__)


@dataclass
class UnitStrainResponse:
    """The RVE's response to each unit macro strain under one boundary condition.

    Attributes:
        bc: the boundary condition.
        C_eff: effective (apparent) stiffness, Mandel, ``C_eff[:, k] = ⟨σ(u_k)⟩``.
        displacements: total displacement u_k per unit strain e_k.
        fluctuations: the correctors w_k = u_k − e_k·(y − y_c).
        hill_mandel_residual: |Σ:E − ⟨σ:ε⟩| / |Σ:E| per load case.
        mean_strain_error: max over load cases of |⟨ε(u_k)⟩ − e_k|.
        solver: "direct" or "iterative"; iterations: Krylov iterations per solve.
        n_reduced: number of free dofs after the constraint.
        timings: seconds spent in "constraints", "factorization" and "solves".
        thermal_stress: Σ_th = ⟨σ⟩ of the eigenstrain load case (E = 0, ΔT = 1), Mandel
            (None without phase expansions).
        alpha_eff: effective expansion α_eff = −C_eff⁻¹ Σ_th, Mandel (None without them).
        thermal_displacement: the displacement of the eigenstrain load case.
        thermal_reciprocity_residual: |Σ_th + ⟨ε(u_k)·C α⟩| / |Σ_th| (max norm), Betti's
            reciprocity between the eigenstrain and the unit-strain solutions.
    """

    bc: str
    C_eff: np.ndarray
    displacements: list[fem.Function]
    fluctuations: list[fem.Function]
    hill_mandel_residual: np.ndarray
    mean_strain_error: float
    solver: str
    iterations: list[int]
    n_reduced: int
    timings: dict[str, float] = field(default_factory=dict)
    thermal_stress: np.ndarray | None = None
    alpha_eff: np.ndarray | None = None
    thermal_displacement: fem.Function | None = None
    thermal_reciprocity_residual: float | None = None

    @property
    def symmetry_defect(self) -> float:
        """|C − Cᵀ| / |C| (Frobenius)."""
        return float(np.linalg.norm(self.C_eff - self.C_eff.T) / np.linalg.norm(self.C_eff))


class LinearRVE:
    """A linear elastic RVE: phase-wise Mandel stiffness, constant or per cell, and eigenstrains.

    Args:
        cell: mesh, phase tags and box of the cell.
        stiffness: phase name -> Mandel stiffness (3x3 plane strain in 2D, 6x6 in 3D), either
            one matrix ``(n, n)`` or one per local cell ``(n_cells, n, n)`` (owned and ghost
            cells, in the order of :attr:`RVEMesh.cell_data`; rows of cells outside the phase
            are ignored).
        degree: Lagrange degree of the displacement.
        petsc_options_prefix: prefix of this RVE's PETSc options (a BC name is appended).
        expansion: phase name -> Mandel eigenstrain per unit temperature change, in the
            cell's notation (3 entries in 2D: the plane-strain α'); None: no thermal load case.
    """

    def __init__(
        self,
        cell: RVEMesh,
        stiffness: Mapping[str, np.ndarray],
        degree: int = 2,
        petsc_options_prefix: str = "fe2x_rve_",
        expansion: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        t0 = time.perf_counter()
        mesh = cell.mesh
        self.cell = cell
        self.dim = mesh.topology.dim
        self.n_strain = 3 if self.dim == 2 else 6
        missing = [name for name in cell.phases if name not in stiffness]
        if missing:
            raise Fe2xError(f"no material given for phase(s) {missing}")
        self.petsc_options_prefix = petsc_options_prefix
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (self.dim,)))
        geometry_degree = mesh.geometry.cmaps[0].degree
        if degree < geometry_degree:
            raise Fe2xError(
                f"displacement degree {degree} is below the geometry order {geometry_degree}: "
                "it cannot represent the affine macro field on curved cells; raise the degree "
                "or use geometry_order = 1"
            )
        quadrature_degree = stiffness_quadrature_degree(mesh.basix_cell(), degree, geometry_degree)
        dx = ufl.Measure(
            "dx",
            domain=mesh,
            subdomain_data=cell.cell_tags,
            metadata={"quadrature_degree": quadrature_degree},
        )
        self._C = {name: self._stiffness_field(name, stiffness[name]) for name in cell.phases}
        self._compile_forms(dx)
        eigenstress = None if expansion is None else self._eigenstresses(stiffness, expansion)
        self._eigenstress_form = None
        if eigenstress is not None:  # f*·v = ∫ ε(v)·C α dy
            eps_v = mandel_strain(ufl.TestFunction(self.V), self.dim)
            self._eigenstress_form = fem.form(
                sum(
                    ufl.inner(fem.Constant(mesh, eigenstress[name]), eps_v) * dx(tag)
                    for name, tag in cell.phases.items()
                )
            )
        self._measure_volumes(dx)
        self.mean_eigenstress = None
        if eigenstress is not None:
            self.mean_eigenstress = sum(
                self.phase_volumes[name] / self.volume * eigenstress[name] for name in cell.phases
            )
        self.timings = {"forms": time.perf_counter() - t0}
        t0 = time.perf_counter()
        self.K = dolfinx.fem.petsc.assemble_matrix(self._a)
        self.K.assemble()
        self.stress_functionals = [assemble_functional(L) for L in self._stress_forms]
        self.strain_functionals = [assemble_functional(L) for L in self._strain_forms]
        self.eigenstress: PETSc.Vec | None = None
        if self._eigenstress_form is not None:
            self.eigenstress = assemble_functional(self._eigenstress_form)
        self.unit_strain_fields = unit_strain_fields(self.V, self.cell)
        self.timings["assembly"] = time.perf_counter() - t0

    def _compile_forms(self, dx: ufl.Measure) -> None:
        """The stiffness form ∫ ε(v)·C ε(u) and the functionals ⟨σ(v)⟩_i, ⟨ε(v)⟩_i (times |Ω|)."""
        phases = self.cell.phases
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        eps_u, eps_v = mandel_strain(u, self.dim), mandel_strain(v, self.dim)
        a = sum(
            ufl.inner(ufl.dot(self._C[name], eps_u), eps_v) * dx(tag)
            for name, tag in phases.items()
        )
        self._a = fem.form(a)
        stress_v = [
            sum(ufl.dot(self._C[name], eps_v)[i] * dx(tag) for name, tag in phases.items())
            for i in range(self.n_strain)
        ]
        self._stress_forms = [fem.form(L) for L in stress_v]
        self._strain_forms = [fem.form(eps_v[i] * dx) for i in range(self.n_strain)]

    def _eigenstresses(
        self, stiffness: Mapping[str, np.ndarray], expansion: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Each phase's eigenstress per unit ΔT, C α (one stiffness per phase only)."""
        phases = self.cell.phases
        missing = [name for name in phases if name not in expansion]
        if missing:
            raise Fe2xError(f"no thermal expansion given for phase(s) {missing}")
        per_cell = [name for name in phases if np.ndim(stiffness[name]) == 3]
        if per_cell:
            raise Fe2xError(f"thermal expansion of per-cell stiffness {per_cell} (grains)")
        return {
            name: np.asarray(stiffness[name], dtype=float)
            @ np.asarray(expansion[name], dtype=float).reshape(self.n_strain)
            for name in phases
        }

    def _measure_volumes(self, dx: ufl.Measure) -> None:
        """|Ω| and each phase's volume (collective); refuses a cell with untagged volume."""
        mesh = self.cell.mesh
        self.phase_volumes = {
            name: mesh.comm.allreduce(
                fem.assemble_scalar(fem.form(1.0 * dx(tag, domain=mesh))), op=MPI.SUM
            )
            for name, tag in self.cell.phases.items()
        }
        self.volume = mesh.comm.allreduce(
            fem.assemble_scalar(fem.form(1.0 * dx(domain=mesh))), op=MPI.SUM
        )
        untagged = self.volume - sum(self.phase_volumes.values())
        if abs(untagged) > 1e-10 * self.volume:
            raise Fe2xError(f"{untagged / self.volume:.3g} of the cell volume has no phase tag")

    def _stiffness_field(self, name: str, C: npt.ArrayLike) -> fem.Constant | fem.Function:
        """Phase ``name``'s stiffness as a constant, or as a DG0 field from one matrix per cell."""
        n, mesh = self.n_strain, self.cell.mesh
        C = np.asarray(C, dtype=PETSc.ScalarType)
        cell_map = mesh.topology.index_map(self.dim)
        n_cells = cell_map.size_local + cell_map.num_ghosts
        if C.shape == (n, n):
            return fem.Constant(mesh, np.ascontiguousarray(C))
        if C.shape != (n_cells, n, n):
            raise Fe2xError(
                f"phase {name!r}: stiffness of shape {C.shape}; expected ({n}, {n}) or one "
                f"matrix per local cell ({n_cells}, {n}, {n})"
            )
        field = fem.Function(fem.functionspace(mesh, ("DG", 0, (n, n))), name=f"C_{name}")
        dofs = field.function_space.dofmap.list[:n_cells, 0]
        field.x.array.reshape(-1, n * n)[dofs] = C.reshape(n_cells, n * n)
        return field

    def mean_stiffness(self) -> tuple[np.ndarray, np.ndarray]:
        """The cell averages ⟨C⟩ and ⟨C⁻¹⟩, symmetrized; collective.

        They give the Voigt bound ⟨C⟩ and the Reuss bound ⟨C⁻¹⟩⁻¹ of this very microstructure
        (in 2D C⁻¹ is the plane-strain compliance).
        """
        n = self.n_strain
        constant, field = np.zeros((2, n, n)), np.zeros((2, n, n))
        n_owned = self.cell.mesh.topology.index_map(self.dim).size_local
        volumes = None
        for name, tag in self.cell.phases.items():
            C = self._C[name]
            if isinstance(C, fem.Constant):
                constant += self.phase_volumes[name] * np.stack([C.value, np.linalg.inv(C.value)])
                continue
            if volumes is None:
                W = fem.functionspace(self.cell.mesh, ("DG", 0))
                b = fem.assemble_vector(fem.form(ufl.TestFunction(W) * ufl.dx(self.cell.mesh)))
                volumes = b.array[W.dofmap.list[:n_owned, 0]]
            cells = self.cell.cell_tags.find(tag)
            cells = cells[cells < n_owned]
            C_cells = C.x.array.reshape(-1, n, n)[C.function_space.dofmap.list[cells, 0]]
            w = volumes[cells, None, None]
            field += np.stack([np.sum(w * C_cells, 0), np.sum(w * np.linalg.inv(C_cells), 0)])
        total = (constant + self.comm.allreduce(field, op=MPI.SUM)) / self.volume
        return 0.5 * (total[0] + total[0].T), 0.5 * (total[1] + total[1].T)

    @property
    def comm(self) -> MPI.Comm:
        """The communicator of the cell's mesh, over which set-up and solves are collective."""
        return self.cell.mesh.comm

    @property
    def n_dofs(self) -> int:
        """The global number of scalar dofs of the displacement space ``V``."""
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    @property
    def volume_fractions(self) -> dict[str, float]:
        """Each phase's volume fraction in the mesh (it may differ from the nominal one)."""
        return {name: vol / self.volume for name, vol in self.phase_volumes.items()}

    def mean_stress(self, u: fem.Function) -> np.ndarray:
        """Σ = ⟨σ(u)⟩ as a Mandel vector."""
        return np.array([b.dot(u.x.petsc_vec) for b in self.stress_functionals]) / self.volume

    def mean_strain(self, u: fem.Function) -> np.ndarray:
        """E = ⟨ε(u)⟩ as a Mandel vector."""
        return np.array([b.dot(u.x.petsc_vec) for b in self.strain_functionals]) / self.volume

    def energy(self, u: fem.Function) -> float:
        """⟨σ:ε⟩ = uᵀ K u / |Ω|."""
        Ku = self.K.createVecLeft()
        self.K.mult(u.x.petsc_vec, Ku)
        return Ku.dot(u.x.petsc_vec) / self.volume

    def _near_null_space(self, prolongation: Prolongation) -> PETSc.NullSpace:
        """Rigid-body modes restricted to the reduced dofs (averaged over periodic images)."""
        n_owned = self.V.dofmap.index_map.size_local
        x = self.V.tabulate_dof_coordinates()[:n_owned, : self.dim]
        P = prolongation.P
        ones, multiplicity = P.createVecLeft(), P.createVecRight()
        ones.set(1.0)
        P.multTranspose(ones, multiplicity)
        with multiplicity.localForm() as m:
            m.array[m.array == 0] = 1.0
        basis: list[PETSc.Vec] = []
        for mode in rigid_body_modes(x, self.V.dofmap.index_map_bs):
            full = P.createVecLeft()
            full.array[:] = mode
            reduced = P.createVecRight()
            P.multTranspose(full, reduced)
            reduced.pointwiseDivide(reduced, multiplicity)
            for q in basis:  # Gram–Schmidt
                reduced.axpy(-reduced.dot(q), q)
            reduced.normalize()
            basis.append(reduced)
        return PETSc.NullSpace().create(vectors=basis, comm=self.comm)

    def solve_unit_strains(
        self,
        bc: str | BoundaryCondition,
        solver: str = "auto",
        petsc_options: Mapping[str, object] | None = None,
    ) -> UnitStrainResponse:
        """Solve for every unit macro strain under ``bc``; one factorization serves all.

        With phase expansions, the eigenstrain load case is one more solve with it.
        """
        bc = boundary_condition(bc)
        kind = choose_solver(solver, self.dim, self.n_dofs)
        with ReducedSolver(
            self.K,
            self.V,
            self.cell,
            bc,
            self.volume,
            self.strain_functionals,
            kind,
            f"{self.petsc_options_prefix}{bc.name}_",
            petsc_options,
            self._near_null_space if kind == "iterative" else None,
        ) as reduced:
            displacements = reduced.unit_load_fields(self.unit_strain_fields, "u")
            thermal = None
            if self.eigenstress is not None:
                thermal = self._eigenstrain_displacement(reduced)
        timings, iterations, n_reduced = (
            reduced.timings,
            reduced.iterations,
            reduced.prolongation.n_reduced,
        )
        C_eff = np.column_stack([self.mean_stress(u) for u in displacements])
        hill_mandel, mean_strain_error, fluctuations = unit_load_checks(
            C_eff, displacements, self.unit_strain_fields, self.energy, self.mean_strain, "w"
        )
        response = UnitStrainResponse(
            bc=bc.name,
            C_eff=C_eff,
            displacements=displacements,
            fluctuations=fluctuations,
            hill_mandel_residual=hill_mandel,
            mean_strain_error=mean_strain_error,
            solver=kind,
            iterations=iterations,
            n_reduced=n_reduced,
            timings=timings,
        )
        if thermal is not None:
            self._add_thermal_response(response, thermal)
        return response

    def _eigenstrain_displacement(self, reduced: ReducedSolver) -> fem.Function:
        """u_th = P x of the eigenstrain load: J x = Pᵀ f* (SUBC: projected onto G x = 0)."""
        P = reduced.P
        rhs, x = P.createVecRight(), P.createVecRight()
        P.multTranspose(self.eigenstress, rhs)
        reduced.solve(rhs, x)
        if reduced.schur is not None:  # the multipliers keep ⟨ε(u_th)⟩ = 0
            reduced.schur.project(x)
        u = fem.Function(self.V, name="u_th")
        P.mult(x, u.x.petsc_vec)
        u.x.scatter_forward()
        rhs.destroy()
        x.destroy()
        return u

    def _add_thermal_response(self, response: UnitStrainResponse, u: fem.Function) -> None:
        """Σ_th = ⟨C (ε(u_th) − α)⟩, α_eff = −C_eff⁻¹ Σ_th and Betti's check."""
        assert self.eigenstress is not None, "an RVE without phase expansions has no thermal case"
        Sigma_th = self.mean_stress(u) - self.mean_eigenstress
        betti = -np.array([self.eigenstress.dot(v.x.petsc_vec) for v in response.displacements])
        scale = float(np.max(np.abs(Sigma_th)))
        response.thermal_stress = Sigma_th
        response.alpha_eff = -np.linalg.solve(response.C_eff, Sigma_th)
        response.thermal_displacement = u
        response.thermal_reciprocity_residual = float(
            np.max(np.abs(Sigma_th - betti / self.volume)) / scale
        )
