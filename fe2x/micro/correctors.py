"""The one corrector solve of an RVE: its response to each unit macro strain, condensed.

A unit macro load is an affine field u_E,k: a unit strain e_k·(y − y_c) of the displacement
(elasticity) or a unit gradient e_k·(y − y_c) of the temperature (conduction). With the reduced
operator J = Pᵀ K P of a stiffness or conductivity (elastic, or the algorithmic tangent at a
converged state), the corrector of load k solves J x_k = −Pᵀ K u_E,k and gives the total
field u_k = u_E,k + P x_k; the condensed (homogenized) operator is
C[:, k] = ⟨flux(u_k)⟩, e.g. ⟨σ(u_k)⟩ = ⟨C (e_k + ε(P x_k))⟩.

Under SUBC the fluctuation also satisfies ⟨ε(P x)⟩ = 0 by multipliers λ: with the constraint
rows G (g_i = Pᵀ ∫ ε(v)_i dy), X = J⁻¹ Gᵀ and the Schur complement S = G X, the field of unit
strain e_k is u_k = P X M[:, k] (up to a rigid motion) with M = |Ω| S⁻¹, and C = M: the
multipliers are the macro stress (:class:`SchurComplement`).

The linear RVE (C_eff and its correctors), the nonlinear RVE's consistent tangent and its
elastic localization (the shortcut) all call :class:`UnitStrainCorrectors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from petsc4py import PETSc

import dolfinx.fem.petsc
import numpy as np
from dolfinx import fem

from fe2x.geometry import RVEMesh
from fe2x.materials.mandel import mandel_to_tensor
from fe2x.micro.solver import create_ksp, solve

__all__ = [
    "Condensation",
    "CorrectorLoad",
    "LinearSolve",
    "ReducedSolver",
    "SchurComplement",
    "UnitStrainCorrectors",
    "unit_gradient_fields",
    "unit_strain_fields",
]

#: ``solve(b, x)``: x = J⁻¹ b with the current reduced operator; raises SolverError on failure.
#: x holds the initial guess on entry (used by Krylov methods with a nonzero initial guess).
LinearSolve = Callable[[PETSc.Vec, PETSc.Vec], None]


def _affine_fields(
    V: fem.FunctionSpace, cell: RVEMesh, tensors: list[np.ndarray], name: str
) -> list[fem.Function]:
    """u_k = T_k·(y − y_c) for each tensor T_k ((dim, dim) for vector V, (dim,) for scalar V).

    Interpolated exactly: the fields are linear, and V's degree is at least the geometry's.
    """
    dim = V.mesh.topology.dim
    centre = np.asarray(cell.origin) + 0.5 * np.asarray(cell.lengths)
    fields = []
    for k, T in enumerate(tensors):
        u = fem.Function(V, name=f"{name}{k}")
        u.interpolate(lambda x, T=T: T @ (x[:dim] - centre[:, None]))
        fields.append(u)
    return fields


def unit_strain_fields(V: fem.FunctionSpace, cell: RVEMesh) -> list[fem.Function]:
    """u_E,k = e_k·(y − y_c) for each Mandel unit strain e_k, y_c the cell centre."""
    dim = V.mesh.topology.dim
    n = 3 if dim == 2 else 6
    tensors = [mandel_to_tensor(np.eye(n)[k], dim) for k in range(n)]
    return _affine_fields(V, cell, tensors, "u_E")


def unit_gradient_fields(V: fem.FunctionSpace, cell: RVEMesh) -> list[fem.Function]:
    """θ_G,k = e_k·(y − y_c) for each unit macro temperature gradient e_k (a scalar space V)."""
    dim = V.mesh.topology.dim
    return _affine_fields(V, cell, list(np.eye(dim)[:, None, :]), "theta_G")


def assemble_functional(L: fem.Form) -> PETSc.Vec:
    """The vector of the linear form ``L``, ghost contributions added to their owners."""
    b = dolfinx.fem.petsc.assemble_vector(L)
    b.ghostUpdate(  # petsc4py's stub types the members of InsertMode and ScatterMode as int
        addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]
        mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
    )
    return b


class UnitLoadChecks(NamedTuple):
    """The checks of the responses u_k to unit macro loads e_k, and their fluctuations."""

    hill_mandel_residual: np.ndarray  # |Y_kk − ⟨energy(u_k)⟩| / |Y_kk| per load case
    mean_load_error: float  # max_k |⟨load(u_k)⟩ − e_k|
    fluctuations: list[fem.Function]  # u_k − e_k·(y − y_c)


def unit_load_checks(
    effective: np.ndarray,
    totals: Sequence[fem.Function],
    unit_fields: Sequence[fem.Function],
    energy: Callable[[fem.Function], float],
    mean_load: Callable[[fem.Function], np.ndarray],
    name: str,
) -> UnitLoadChecks:
    """Hill–Mandel residual, mean-load error and fluctuations ``<name>_<k>`` of unit responses.

    ``effective`` holds the effective property column by column (C_eff or k_eff), ``totals``
    the total fields u_k, ``unit_fields`` the affine fields of the unit loads.
    """
    hill_mandel = np.array(
        [abs(effective[k, k] - energy(u)) / abs(effective[k, k]) for k, u in enumerate(totals)]
    )
    identity = np.eye(effective.shape[0])
    mean_error = max(
        float(np.max(np.abs(mean_load(u) - identity[:, k]))) for k, u in enumerate(totals)
    )
    fluctuations = []
    for k, u in enumerate(totals):
        w = fem.Function(u.function_space, name=f"{name}_{k}")
        w.x.array[:] = u.x.array - unit_fields[k].x.array
        fluctuations.append(w)
    return UnitLoadChecks(hill_mandel, mean_error, fluctuations)


class SchurComplement:
    """The SUBC multiplier step of a reduced operator J: X = J⁻¹ Gᵀ and S = G X.

    One solve per constraint row factors it; afterwards :meth:`project` maps a step y onto the
    constraint, y ← (I − X S⁻¹ G) y, and :meth:`multipliers` gives M = |Ω| S⁻¹.

    Args:
        rows: the constraint rows g_i (reduced vectors), one per Mandel component.
    """

    def __init__(self, rows: Sequence[PETSc.Vec]) -> None:
        self.rows = list(rows)
        self.X = [g.duplicate() for g in self.rows]
        self.S = np.full((len(self.rows), len(self.rows)), np.nan)
        self.version: object = None

    def factor(self, solve: LinearSolve, version: object = None) -> None:
        """X = J⁻¹ Gᵀ and S = G X for the operator that ``solve`` applies (tagged ``version``).

        On failure X is zeroed (no stale columns survive) and the error propagates.
        """
        self.version = None
        try:
            for g, X in zip(self.rows, self.X, strict=True):
                solve(g, X)
        except Exception:
            for X in self.X:
                X.set(0.0)
            raise
        self.S = np.array([X.mDot(self.rows) for X in self.X]).T
        self.version = version

    def project(self, y: PETSc.Vec) -> None:
        """Apply y ← (I − X S⁻¹ G) y: the step with the multiplier eliminated (G y = 0 after)."""
        coefficients = np.linalg.solve(self.S, np.asarray(y.mDot(self.rows)))
        y.maxpy([-float(c) for c in coefficients], self.X)

    def multipliers(self, volume: float) -> np.ndarray:
        """M = |Ω| S⁻¹: column k holds the multipliers (the macro stress) of unit strain e_k."""
        return volume * np.linalg.inv(self.S)

    def destroy(self) -> None:
        """Free the PETSc vectors X."""
        for X in self.X:
            X.destroy()


#: ``rhs(C, k, out)``: out = −Pᵀ K(C) u_E,k, the corrector load of unit strain e_k.
CorrectorLoad = Callable[[Any, int, PETSc.Vec], None]
#: ``condensed(C, xs)``: the matrix of columns ⟨C (e_k + ε(P x_k))⟩ for the correctors xs.
Condensation = Callable[[Any, Sequence[PETSc.Vec]], np.ndarray]


class UnitStrainCorrectors:
    """Corrector solves for every unit macro strain, and the condensed stiffness.

    What the stiffness is (a tangent field at quadrature points, constant phase stiffnesses,
    ...) is the caller's: it comes in through ``rhs`` and ``condensed``, and is passed on as C.
    The correctors x_k are kept between calls (Krylov solves start from the last ones).

    Args:
        P: the prolongation of the boundary condition.
        n: the number of unit strains (Mandel components).
        volume: |Ω|.
        rhs: the corrector load of each unit strain.
        condensed: the condensed stiffness from the correctors (None: only correctors wanted).
        schur: for SUBC, the Schur complement of the operator (factored by the caller, or by
            :meth:`solve` when stale).
        unit: the unit strain fields u_E,k as full vectors, for :meth:`displacement`.
    """

    def __init__(
        self,
        P: PETSc.Mat,
        n: int,
        volume: float,
        rhs: CorrectorLoad,
        condensed: Condensation | None = None,
        schur: SchurComplement | None = None,
        unit: Sequence[PETSc.Vec] = (),
    ) -> None:
        self.P, self.volume, self.schur = P, float(volume), schur
        self._rhs, self._condensed, self.unit = rhs, condensed, list(unit)
        self.x = [P.createVecRight() for _ in range(n)]
        self._b = P.createVecRight()

    def solve(self, C: Any, solve: LinearSolve, version: object = None) -> None:
        """The correctors x_k of the stiffness C, whose reduced operator ``solve`` applies.

        SUBC: x_k = X M[:, k] from the Schur complement (refactored unless it is of
        ``version``); otherwise J x_k = rhs_k (x_k zeroed if the solve fails).
        """
        if self.schur is not None:
            if self.schur.version is None or self.schur.version != version:
                self.schur.factor(solve, version)
            M = self.schur.multipliers(self.volume)
            for k, x in enumerate(self.x):
                x.set(0.0)
                x.maxpy([float(m) for m in M[:, k]], self.schur.X)
            return
        for k, x in enumerate(self.x):
            self._rhs(C, k, self._b)
            try:
                solve(self._b, x)
            except Exception:
                x.set(0.0)
                raise

    def displacement(self, k: int, out: PETSc.Vec) -> PETSc.Vec:
        """The total field of unit strain e_k: u_E,k + P x_k (SUBC: P x_k, up to rigid motion)."""
        self.P.mult(self.x[k], out)
        if self.schur is None:
            out.axpy(1.0, self.unit[k])
        return out

    def stiffness(self, C: Any) -> np.ndarray:
        """The condensed stiffness: columns ⟨C (e_k + ε(P x_k))⟩ (SUBC: M = |Ω| S⁻¹ exactly)."""
        if self.schur is not None:
            return self.schur.multipliers(self.volume)
        if self._condensed is None:
            raise ValueError("these correctors were made without a condensation")
        return self._condensed(C, self.x)

    def destroy(self) -> None:
        """Free the work vectors and correctors."""
        for v in (*self.x, self._b):
            v.destroy()


class ReducedSolver:
    """One factorized reduced operator Pᵀ K P of a symmetric K under a boundary condition.

    It serves the unit-load correctors of the linear RVEs (elastic, conduction) and more solves.
    With the mean-gradient constraint (SUBC), the Schur complement of the rows
    g_i = Pᵀ b_i of the mean functionals b_i = ∫ ∂v_i is factored as well. Use it as a
    context manager: the PETSc objects are freed on exit.

    Args:
        K: the assembled full operator.
        V: its space.
        cell: the cell's box (origin, lengths).
        bc: the boundary condition.
        volume: |Ω| (the mean constraint's scale).
        mean_functionals: b_i, the functionals of the mean strain or gradient.
        kind: ``"direct"`` or ``"iterative"`` (:func:`fe2x.micro.solver.choose_solver`).
        petsc_options_prefix: the solver's options prefix.
        petsc_options: options overriding fe2x's defaults.
        near_null_space: for ``"iterative"``, the near-null space of the reduced operator from
            the prolongation (rigid modes); None if not needed.
    """

    def __init__(
        self,
        K: PETSc.Mat,
        V: fem.FunctionSpace,
        cell: RVEMesh,
        bc: Any,
        volume: float,
        mean_functionals: Sequence[PETSc.Vec],
        kind: Literal["direct", "iterative"],
        petsc_options_prefix: str,
        petsc_options: Any = None,
        near_null_space: Callable[[Any], PETSc.NullSpace] | None = None,
    ) -> None:
        self.K, self.V, self.kind, self.volume = K, V, kind, float(volume)
        self.timings: dict[str, float] = {}
        self.iterations: list[int] = []
        t0 = time.perf_counter()
        self.prolongation = bc.prolongation(V, cell.origin, cell.lengths)
        self.P = P = self.prolongation.P
        self._K_red = K.PtAP(P)
        self.schur: SchurComplement | None = None
        if bc.mean_strain_constraint:
            rows = [P.createVecRight() for _ in mean_functionals]
            for b, g in zip(mean_functionals, rows, strict=True):
                P.multTranspose(b, g)
            self.schur = SchurComplement(rows)
        self.timings["constraints"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        null_space = near_null_space(self.prolongation) if near_null_space else None
        self.ksp = create_ksp(self._K_red, kind, petsc_options_prefix, petsc_options, null_space)
        self.timings["factorization"] = time.perf_counter() - t0

    def solve(self, b: PETSc.Vec, x: PETSc.Vec) -> None:
        """Solve x = (Pᵀ K P)⁻¹ b, counting the iterations; SolverError if it fails."""
        self.iterations.append(solve(self.ksp, b, x))

    def unit_load_fields(self, unit: Sequence[fem.Function], name: str) -> list[fem.Function]:
        """The total field of each unit load u_E,k: u_E,k + P x_k (SUBC: P X M[:, k])."""
        t0 = time.perf_counter()
        vectors = [u.x.petsc_vec for u in unit]
        full = self.K.createVecLeft()

        def rhs(_: object, k: int, out: PETSc.Vec) -> None:  # −Pᵀ K u_E,k
            self.K.mult(vectors[k], full)
            self.P.multTranspose(full, out)
            out.scale(-1.0)

        correctors = UnitStrainCorrectors(
            self.P, len(unit), self.volume, rhs, None, self.schur, vectors
        )
        try:
            correctors.solve(None, self.solve)
            fields = [fem.Function(self.V, name=f"{name}_{k}") for k in range(len(unit))]
            for k, u in enumerate(fields):
                correctors.displacement(k, u.x.petsc_vec)
                u.x.scatter_forward()
        finally:
            correctors.destroy()
            full.destroy()
        self.timings["solves"] = self.timings.get("solves", 0.0) + time.perf_counter() - t0
        return fields

    def __enter__(self) -> ReducedSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.schur is not None:
            self.schur.destroy()
            for g in self.schur.rows:
                g.destroy()
        self.ksp.destroy()
        self._K_red.destroy()
        self.P.destroy()
