"""The conduction RVE: temperature correctors under unit macro gradients, and k_eff.

The temperature is θ = G·(y − y_c) + θ̃ with the macro gradient G and a fluctuation θ̃ in a
scalar Lagrange space, constrained by a boundary condition of :mod:`fe2x.micro.constraints`:
``"periodic"`` (θ̃ periodic, one node pinned), ``"kubc"`` (θ̃ = 0 on the boundary: a uniform
temperature gradient there) or ``"subc"`` (only ⟨∇θ̃⟩ = 0, by multipliers: a uniform normal
flux q·n = Q·n). The response to each unit gradient e_k gives one column of the effective
conductivity. Sign convention: Fourier's law q = −k ∇θ in every phase, Q = ⟨q⟩, and k_eff is
reported so that Q = −k_eff G, i.e. k_eff[:, k] = −⟨q(θ_k)⟩ = ⟨k ∇θ_k⟩ (symmetric positive
definite). For the same cell, KUBC ≥ PBC ≥ SUBC as quadratic forms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from mpi4py import MPI

import dolfinx
import dolfinx.fem.petsc
import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem

from fe2x.errors import Fe2xError
from fe2x.fem.forms import stiffness_quadrature_degree
from fe2x.fem.quadrature import tag_of_cells
from fe2x.geometry import RVEMesh
from fe2x.materials.thermal import conductivity_tensor
from fe2x.micro.constraints import BoundaryCondition, boundary_condition
from fe2x.micro.correctors import (
    ReducedSolver,
    assemble_functional,
    unit_gradient_fields,
    unit_load_checks,
)
from fe2x.micro.solver import choose_solver

__all__ = ["ConductionRVE", "UnitGradientResponse"]


@dataclass
class UnitGradientResponse:
    """The conduction RVE's response to each unit macro gradient under one boundary condition.

    Attributes:
        bc: the boundary condition.
        k_eff: effective (apparent) conductivity (dim, dim), Q = −k_eff G,
            ``k_eff[:, k] = ⟨k ∇θ_k⟩``.
        temperatures: total temperature θ_k per unit gradient e_k.
        correctors: the fluctuations θ̃_k = θ_k − e_k·(y − y_c).
        hill_mandel_residual: |Q·G − ⟨q·∇θ⟩| / |Q·G| per load case.
        mean_gradient_error: max over load cases of |⟨∇θ_k⟩ − e_k|.
        solver: "direct" or "iterative"; iterations: Krylov iterations per solve.
        n_reduced: number of free dofs after the constraint.
        timings: seconds spent in "constraints", "factorization" and "solves".
    """

    bc: str
    k_eff: np.ndarray
    temperatures: list[fem.Function]
    correctors: list[fem.Function]
    hill_mandel_residual: np.ndarray
    mean_gradient_error: float
    solver: str
    iterations: list[int]
    n_reduced: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def symmetry_defect(self) -> float:
        """|k − kᵀ| / |k| (Frobenius)."""
        return float(np.linalg.norm(self.k_eff - self.k_eff.T) / np.linalg.norm(self.k_eff))


class ConductionRVE:
    """A steady heat-conduction RVE with phase-wise conductivity tensors.

    Args:
        cell: mesh, phase tags and box of the cell.
        conductivity: phase name -> conductivity: a scalar or a symmetric positive definite
            3x3 tensor (a 2D cell uses its in-plane block), see
            :func:`fe2x.materials.thermal.conductivity_tensor`.
        degree: Lagrange degree of the temperature.
        petsc_options_prefix: prefix of this RVE's PETSc options (a BC name is appended).
    """

    def __init__(
        self,
        cell: RVEMesh,
        conductivity: Mapping[str, npt.ArrayLike],
        degree: int = 2,
        petsc_options_prefix: str = "fe2x_conduction_",
    ) -> None:
        t0 = time.perf_counter()
        mesh = cell.mesh
        self.cell = cell
        self.dim = dim = mesh.topology.dim
        missing = [name for name in cell.phases if name not in conductivity]
        if missing:
            raise Fe2xError(f"no conductivity given for phase(s) {missing}")
        self.conductivity = {
            name: conductivity_tensor(conductivity[name], dim, name) for name in cell.phases
        }
        geometry_degree = mesh.geometry.cmaps[0].degree
        if degree < geometry_degree:
            raise Fe2xError(
                f"temperature degree {degree} is below the geometry order {geometry_degree}: "
                "it cannot represent the affine macro field on curved cells; raise the degree "
                "or use geometry_order = 1"
            )
        self.petsc_options_prefix = petsc_options_prefix
        self.V = fem.functionspace(mesh, ("Lagrange", degree))
        self.k = self._conductivity_field()
        quadrature_degree = stiffness_quadrature_degree(mesh.basix_cell(), degree, geometry_degree)
        dx = ufl.Measure(
            "dx",
            domain=mesh,
            subdomain_data=cell.cell_tags,
            metadata={"quadrature_degree": quadrature_degree},
        )
        theta, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        flux_v = ufl.dot(self.k, ufl.grad(v))
        self._a = fem.form(ufl.inner(ufl.dot(self.k, ufl.grad(theta)), ufl.grad(v)) * dx)
        self._flux_forms = [fem.form(flux_v[i] * dx) for i in range(dim)]
        self._gradient_forms = [fem.form(ufl.grad(v)[i] * dx) for i in range(dim)]
        self.phase_volumes = {
            name: self.comm.allreduce(
                fem.assemble_scalar(fem.form(1.0 * dx(tag, domain=mesh))), op=MPI.SUM
            )
            for name, tag in cell.phases.items()
        }
        self.volume = self.comm.allreduce(
            fem.assemble_scalar(fem.form(1.0 * dx(domain=mesh))), op=MPI.SUM
        )
        untagged = self.volume - sum(self.phase_volumes.values())
        if abs(untagged) > 1e-10 * self.volume:
            raise Fe2xError(f"{untagged / self.volume:.3g} of the cell volume has no phase tag")
        self.timings = {"forms": time.perf_counter() - t0}
        t0 = time.perf_counter()
        self.K = dolfinx.fem.petsc.assemble_matrix(self._a)
        self.K.assemble()
        self.flux_functionals = [assemble_functional(L) for L in self._flux_forms]
        self.gradient_functionals = [assemble_functional(L) for L in self._gradient_forms]
        self.unit_gradient_fields = unit_gradient_fields(self.V, cell)
        self.timings["assembly"] = time.perf_counter() - t0

    def _conductivity_field(self) -> fem.Function:
        """k(y) as a cell-wise constant (DG0) tensor field, from the phase tags."""
        dim = self.dim
        Q = fem.functionspace(self.cell.mesh, ("Discontinuous Lagrange", 0, (dim, dim)))
        k = fem.Function(Q, name="k")
        n_cells = self.cell.mesh.topology.index_map(dim).size_local
        tags = tag_of_cells(self.cell.cell_tags, n_cells)
        values = k.x.array.reshape(-1, dim * dim)
        dofs = Q.dofmap.list[:n_cells, 0]
        for name, tag in self.cell.phases.items():
            values[dofs[tags == tag]] = self.conductivity[name].reshape(-1)
        k.x.scatter_forward()
        return k

    @property
    def comm(self) -> MPI.Comm:
        """The communicator of the cell's mesh."""
        return self.cell.mesh.comm

    @property
    def n_dofs(self) -> int:
        """Global number of temperature dofs (before the boundary condition reduces them)."""
        return self.V.dofmap.index_map.size_global

    @property
    def volume_fractions(self) -> dict[str, float]:
        """Phase name -> volume fraction |Ω_phase| / |Ω|."""
        return {name: vol / self.volume for name, vol in self.phase_volumes.items()}

    def mean_flux(self, theta: fem.Function) -> np.ndarray:
        """Q = ⟨q(θ)⟩ = −⟨k ∇θ⟩."""
        x = theta.x.petsc_vec
        return -np.array([b.dot(x) for b in self.flux_functionals]) / self.volume

    def mean_gradient(self, theta: fem.Function) -> np.ndarray:
        """⟨∇θ⟩."""
        x = theta.x.petsc_vec
        return np.array([b.dot(x) for b in self.gradient_functionals]) / self.volume

    def dissipation(self, theta: fem.Function) -> float:
        """⟨k ∇θ·∇θ⟩ = −⟨q·∇θ⟩ = θᵀ K θ / |Ω|."""
        Kx = self.K.createVecLeft()
        self.K.mult(theta.x.petsc_vec, Kx)
        value = Kx.dot(theta.x.petsc_vec) / self.volume
        Kx.destroy()
        return value

    def flux(self, theta: fem.Function) -> fem.Function:
        """The heat flux q = −k ∇θ, interpolated into discontinuous vectors of degree p − 1."""
        degree = self.V.element.basix_element.degree
        W = fem.functionspace(self.cell.mesh, ("Discontinuous Lagrange", degree - 1, (self.dim,)))
        q = fem.Function(W, name=f"q_{theta.name}")
        expression = -ufl.dot(self.k, ufl.grad(theta))
        q.interpolate(fem.Expression(expression, W.element.interpolation_points))
        return q

    def solve_unit_gradients(
        self,
        bc: str | BoundaryCondition,
        solver: str = "auto",
        petsc_options: Mapping[str, object] | None = None,
    ) -> UnitGradientResponse:
        """Solve for every unit macro gradient under ``bc``; one factorization serves all."""
        bc = boundary_condition(bc)
        kind = choose_solver(solver, self.dim, self.n_dofs)
        with ReducedSolver(
            self.K,
            self.V,
            self.cell,
            bc,
            self.volume,
            self.gradient_functionals,
            kind,
            f"{self.petsc_options_prefix}{bc.name}_",
            petsc_options,
        ) as reduced:
            temperatures = reduced.unit_load_fields(self.unit_gradient_fields, "theta")
        k_eff = np.column_stack([-self.mean_flux(theta) for theta in temperatures])
        hill_mandel, mean_gradient_error, fluctuations = unit_load_checks(
            k_eff,
            temperatures,
            self.unit_gradient_fields,
            self.dissipation,
            self.mean_gradient,
            "theta_tilde",
        )
        return UnitGradientResponse(
            bc=bc.name,
            k_eff=k_eff,
            temperatures=temperatures,
            correctors=fluctuations,
            hill_mandel_residual=hill_mandel,
            mean_gradient_error=mean_gradient_error,
            solver=kind,
            iterations=reduced.iterations,
            n_reduced=reduced.prolongation.n_reduced,
            timings=reduced.timings,
        )
