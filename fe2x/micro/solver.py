"""Linear solvers of the reduced RVE system: MUMPS LU or CG with smoothed-aggregation AMG (GAMG)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from petsc4py import PETSc

import numpy as np

from fe2x.errors import SolverError
from fe2x.petsc_setup import merged_options, pushed, reason_name

SolverKind = Literal["auto", "direct", "iterative"]
SOLVER_KINDS: tuple[str, ...] = ("auto", "direct", "iterative")

#: Above this many dofs a 3D cell defaults to CG + GAMG: periodic 3D factorizations grow fast
#: (measured on this 2-core machine: direct 18.7 s against GAMG 27.1 s CPU at 73k dofs, the
#: crossover near 100-140k; a ~200k-dof cell takes minutes in MUMPS).
DIRECT_3D_MAX_DOFS = 120_000

DEFAULT_OPTIONS: dict[str, dict[str, object]] = {
    "direct": {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
    "iterative": {
        "ksp_type": "cg",
        "ksp_rtol": 1e-10,  # C_eff to ~1e-9; 1e-12 doubled the iterations for nothing
        "ksp_atol": 1e-50,
        "ksp_max_it": 2000,
        "pc_type": "gamg",
        "pc_gamg_type": "agg",
        "pc_gamg_threshold": 0.01,
        "mg_levels_ksp_type": "chebyshev",
        "mg_levels_pc_type": "jacobi",
    },
}


def choose_solver(kind: str, dim: int, n_dofs: int) -> Literal["direct", "iterative"]:
    """Resolve ``"auto"``: LU for 2D and small 3D cells, CG + GAMG for large 3D cells."""
    if kind not in SOLVER_KINDS:
        raise ValueError(f"unknown solver {kind!r}; allowed: {SOLVER_KINDS}")
    if kind == "auto":
        return "direct" if dim == 2 or n_dofs <= DIRECT_3D_MAX_DOFS else "iterative"
    return kind  # type: ignore[return-value]


def create_ksp(
    A: PETSc.Mat,
    kind: Literal["direct", "iterative"],
    petsc_options_prefix: str,
    petsc_options: Mapping[str, object] | None = None,
    near_null_space: PETSc.NullSpace | None = None,
) -> PETSc.KSP:
    """A set-up KSP on ``A`` (factorized, or AMG built) with fe2x defaults for ``kind``.

    ``petsc_options`` override the defaults. They are pushed under ``petsc_options_prefix``,
    applied through set-up (multigrid levels read theirs only then), and removed again, so
    nothing leaks into PETSc's global options database. Options already in the database under
    the prefix (e.g. from ``PETSC_OPTIONS``) take precedence over fe2x's defaults.
    """
    merged = merged_options(petsc_options_prefix, DEFAULT_OPTIONS[kind], petsc_options)
    if near_null_space is not None:
        A.setNearNullSpace(near_null_space)
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOptionsPrefix(petsc_options_prefix)
    ksp.setOperators(A)
    with pushed({f"{petsc_options_prefix}{key}": v for key, v in merged.items()}):
        ksp.setFromOptions()
        ksp.setUp()
    return ksp


def solve(ksp: PETSc.KSP, b: PETSc.Vec, x: PETSc.Vec) -> int:
    """Solve ``A x = b``; raise SolverError unless the KSP converged. Returns the iterations."""
    ksp.solve(b, x)
    reason: int = ksp.getConvergedReason()  # type: ignore[assignment]  # an int at run time
    if reason < 0:
        name = reason_name(PETSc.KSP.ConvergedReason, reason)
        direct = ksp.getType() == "preonly"
        hint = (
            "the matrix may be singular (check the materials and the mesh)"
            if direct
            else "try solver = 'direct' or other PETSc options"
        )
        raise SolverError(
            f"RVE linear solve failed ({name}) after {ksp.getIterationNumber()} iterations; " + hint
        )
    return ksp.getIterationNumber()


def rigid_body_modes(x: np.ndarray, bs: int) -> list[np.ndarray]:
    """Translations and infinitesimal rotations at node coordinates ``x`` (n, dim), blocked.

    Returns ``dim (dim + 1) / 2`` arrays of length ``n * bs``: the near-null space of elasticity
    that smoothed-aggregation AMG needs.
    """
    n, dim = x.shape
    modes = []
    for i in range(dim):
        t = np.zeros((n, bs))
        t[:, i] = 1.0
        modes.append(t)
    for i, j in ((0, 1), (1, 2), (0, 2))[: 1 if dim == 2 else 3]:
        r = np.zeros((n, bs))
        r[:, i] = -x[:, j]
        r[:, j] = x[:, i]
        modes.append(r)
    return [m.reshape(-1) for m in modes]
