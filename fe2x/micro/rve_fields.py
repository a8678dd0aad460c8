"""The fields of an RVE: displacement space, quadrature rule, stress and tangent fields bound to
the phases' laws, the compiled forms, and what is assembled or evaluated from them.

:class:`RVEFields` holds no boundary condition and no solver; the Newton problem
(:class:`~fe2x.micro.rve_problem.RVEProblem`) builds on it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx.fem.petsc
import numpy as np
import ufl
from dolfinx import fem

from fe2x.errors import Fe2xError
from fe2x.fem.forms import mandel_strain, stiffness_quadrature_degree
from fe2x.fem.quadrature import QuadratureRule, tag_of_cells
from fe2x.fem.quadrature_laws import QuadratureLaws
from fe2x.geometry import RVEMesh
from fe2x.materials.law import ConstitutiveLaw
from fe2x.micro.correctors import unit_strain_fields

__all__ = ["RVEFields"]


def _phase_points(cell: RVEMesh, rule: QuadratureRule) -> dict[str, np.ndarray]:
    """The owned quadrature points of each phase (owned cells only: assembly integrates those)."""
    tag = tag_of_cells(cell.cell_tags, rule.n_cells)
    if np.any(tag < 0):
        raise Fe2xError(f"{int(np.sum(tag < 0))} cell(s) have no phase tag")
    tag = np.repeat(tag, rule.n_q)
    return {name: np.flatnonzero(tag == value) for name, value in cell.phases.items()}


def _point_parameters(
    cell: RVEMesh, laws: Mapping[str, ConstitutiveLaw], points: Mapping[str, np.ndarray], nq: int
) -> dict[str, dict[str, np.ndarray]]:
    """Per phase, the per-point parameters its law reads, from the cell data of the mesh."""
    data = cell.cell_data or {}
    parameters: dict[str, dict[str, np.ndarray]] = {}
    for name, law in laws.items():
        parameters[name] = {}
        for key in getattr(law, "parameter_shapes", {}):
            if key not in data:
                raise Fe2xError(f"phase {name!r}: its law needs the cell data {key!r}")
            parameters[name][key] = np.asarray(data[key])[points[name] // nq]
    return parameters


class RVEFields:
    """Space, quadrature fields, laws and forms of an RVE (collective set-up).

    Args:
        cell: mesh, phase tags and box of the cell.
        laws: phase name -> constitutive law (2D is plane strain).
        degree: Lagrange degree of the displacement.
    """

    def __init__(self, cell: RVEMesh, laws: Mapping[str, ConstitutiveLaw], degree: int) -> None:
        t0 = time.perf_counter()
        mesh = cell.mesh
        self.cell = cell
        self.dim = dim = mesh.topology.dim
        self.n_strain = n = 3 if dim == 2 else 6
        geometry_degree = mesh.geometry.cmaps[0].degree
        if degree < geometry_degree:
            raise Fe2xError(
                f"displacement degree {degree} is below the geometry order {geometry_degree}: "
                "it cannot represent the affine macro field on curved cells; raise the degree "
                "or use geometry_order = 1"
            )
        self.V = fem.functionspace(mesh, ("Lagrange", degree, (dim,)))
        # Quadrature: the same degree as the linear RVE, so elastic answers coincide.
        self.rule = rule = QuadratureRule(
            mesh, stiffness_quadrature_degree(mesh.basix_cell(), degree, geometry_degree)
        )
        self._sigma_q = rule.function((n,), "sigma")
        self._C_q = rule.function((n, n), "C_alg")
        self.points = _phase_points(cell, rule)
        self.laws = self._bind_laws(laws)
        self.volume = self.comm.allreduce(fem.assemble_scalar(fem.form(1.0 * rule.dx)), MPI.SUM)
        self._compile_forms()
        self.timings = {"forms": time.perf_counter() - t0}

        self.unit = unit_strain_fields(self.V, cell)
        self._b = dolfinx.fem.petsc.create_vector(self.V)
        self._tangent_vecs = [dolfinx.fem.petsc.create_vector(self.V) for _ in self.unit]
        self._K = dolfinx.fem.petsc.create_matrix(self._a)
        self._C_at_jacobian: np.ndarray | None = None
        self._jacobian_version = 0

    def _bind_laws(self, laws: Mapping[str, ConstitutiveLaw]) -> QuadratureLaws:
        rule, n = self.rule, self.n_strain
        stress = rule.point_rows(self._sigma_q, n)
        tangent = rule.point_rows(self._C_q, n * n)
        views = stress.base is not None and tangent.base is not None
        self._rows = None if views else rule.rows(self._sigma_q)
        out = (stress, tangent.reshape(-1, n, n)) if views else None
        parameters = _point_parameters(self.cell, laws, self.points, rule.n_q)
        bound = QuadratureLaws(laws, self.points, self.dim, rule.n_points, parameters, out)
        self._write_fields(bound)
        return bound

    def _write_fields(self, laws: QuadratureLaws) -> None:
        """Copy the evaluator's stress and tangent into the quadrature functions (unless they
        are views of them already)."""
        if self._rows is not None:
            n = self.n_strain
            self._sigma_q.x.array.reshape(-1, n)[self._rows] = laws.stress
            self._C_q.x.array.reshape(-1, n * n)[self._rows] = laws.tangent.reshape(-1, n * n)

    def _compile_forms(self) -> None:
        n, dim, dx = self.n_strain, self.dim, self.rule.dx
        self.u = fem.Function(self.V, name="u")
        du, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        eps_v, eps_du = mandel_strain(v, dim), mandel_strain(du, dim)
        eps_u = mandel_strain(self.u, dim)
        self._strain = self.rule.expression(eps_u)
        self._L = fem.form(ufl.inner(self._sigma_q, eps_v) * dx)
        self._a = fem.form(ufl.inner(ufl.dot(self._C_q, eps_du), eps_v) * dx)
        self._tangent_forms = [fem.form(ufl.dot(self._C_q, eps_v)[i] * dx) for i in range(n)]
        self._strain_functional_forms = [fem.form(eps_v[i] * dx) for i in range(n)]
        # ⟨σ⟩, ⟨ε⟩ and ⟨σ : ε⟩ in one assembly of n + n + 1 scalars
        self._average_forms = [
            *(fem.form(self._sigma_q[i] * dx) for i in range(n)),
            *(fem.form(eps_u[i] * dx) for i in range(n)),
            fem.form(ufl.inner(self._sigma_q, eps_u) * dx),
        ]

    @property
    def comm(self) -> MPI.Comm:
        """Communicator of the cell's mesh."""
        return self.cell.mesh.comm

    @property
    def n_dofs(self) -> int:
        """Global number of displacement dofs (before the constraint)."""
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    def _assemble_vector(self, b: PETSc.Vec, L: fem.Form) -> PETSc.Vec:
        with b.localForm() as b_local:
            b_local.set(0.0)
        dolfinx.fem.petsc.assemble_vector(b, L)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return b

    def _stress_functionals(self) -> list[PETSc.Vec]:
        """t_i = ∫ (C_alg ε(v))_i dy with the current tangent field (kept vectors, overwritten)."""
        return [
            self._assemble_vector(b, L)
            for b, L in zip(self._tangent_vecs, self._tangent_forms, strict=True)
        ]

    def elastic_operators(self) -> tuple[PETSc.Mat, list[PETSc.Vec]]:
        """K_el and the stress functionals with every point's elastic (virgin) stiffness, as
        new objects for the caller to destroy; the tangent field is restored afterwards."""
        n = self.n_strain
        C_field = self._C_q.x.array
        saved = C_field.copy()
        try:
            C_el = self.laws.elastic_stiffness().reshape(-1, n * n)
            C_field.reshape(-1, n * n)[self.rule.rows(self._C_q)] = C_el
            K = dolfinx.fem.petsc.create_matrix(self._a)
            dolfinx.fem.petsc.assemble_matrix(K, self._a)
            K.assemble()
            tangent = [v.copy() for v in self._stress_functionals()]
        finally:
            C_field[:] = saved
        return K, tangent

    def strains_of(self, u: PETSc.Vec) -> np.ndarray:
        """Mandel strain ``(n_points, n)`` of the displacement ``u`` at the owned points
        (:attr:`u` is used as scratch and restored)."""
        saved = self.u.x.array.copy()
        try:
            u.copy(self.u.x.petsc_vec)
            self.u.x.scatter_forward()
            return self.rule.evaluate(self._strain, self.n_strain)
        finally:
            self.u.x.array[:] = saved

    def averages(self) -> tuple[np.ndarray, np.ndarray, float]:
        """⟨σ⟩, ⟨ε⟩ and ⟨σ : ε⟩ at the last evaluated point (one collective)."""
        n = self.n_strain
        local = np.array([fem.assemble_scalar(form) for form in self._average_forms], float)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        total /= self.volume
        return total[:n], total[n : 2 * n], float(total[2 * n])

    def _assemble_K(self) -> None:
        self._K.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(self._K, self._a)
        self._K.assemble()
        self._C_at_jacobian = self._C_q.x.array.copy()
        self._jacobian_version += 1

    def _tick(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0
