"""Scale-separation diagnostics of FE²: loss of ellipticity and the strain-gradient indicator.

First-order homogenization assumes that the macro strain varies slowly over one RVE and that
the homogenized tangent stays elliptic. Two per-point checks flag where this fails:

* :func:`acoustic_minimum` / :func:`loses_ellipticity`: the minimum over unit directions ν of
  det A(ν), A_ik = ν_j C_ijkl ν_l, of the tangents; det ≤ 0 marks the onset of localization,
  where the first-order FE² solution becomes mesh dependent. Small strain: the Mandel dσ/dε;
  finite strain: the acoustic tensor of the first Piola–Kirchhoff tangent, Q_ik(N) =
  A_iJkL N_J N_L with N in the reference configuration (the rank-one convexity of the
  homogenized energy, lost where a jump F⁺ − F⁻ = a ⊗ N can form).
* :func:`strain_gradient_indicator`: ℓ |∇E| / |E| at the macro quadrature points, with ℓ the
  RVE size in macro length units (finite strain: E the Green–Lagrange strain, which ignores
  the rotations); values of order one or more mean the macro strain changes over one RVE by as
  much as the strain itself.

:func:`summarise` reduces an indicator field to the numbers behind the per-step warning
(:func:`warnings_for`), optionally per region (cell tags, see :func:`point_regions`).
"""

from __future__ import annotations

from collections.abc import Mapping

from mpi4py import MPI
from petsc4py import PETSc

import basix.ufl
import dolfinx.fem.petsc
import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem
from dolfinx.mesh import MeshTags

from fe2x.fem.forms import SQRT2, mandel_strain
from fe2x.materials.mandel import mandel_to_tensor4

__all__ = [
    "acoustic_determinants",
    "acoustic_minimum",
    "directions",
    "loses_ellipticity",
    "point_regions",
    "strain_gradient_indicator",
    "summarise",
    "warnings_for",
]

_GOLDEN = 0.5 * (np.sqrt(5.0) - 1.0)
_DEFAULT_DIRECTIONS = {2: 360, 3: 2000}
_CHUNK = 2_000_000  # entries of the (points, directions, d, d) acoustic tensors per chunk


# -- acoustic tensor -----------------------------------------------------------------------
def directions(dim: int, n: int | None = None) -> np.ndarray:
    """Unit directions ``(n, dim)``: uniform on the half circle (2D), Fibonacci sphere (3D).

    det A(ν) is even in ν, so in 2D the half circle θ ∈ [0, π) suffices (default n = 360,
    0.5° apart); in 3D the Fibonacci points cover the whole sphere (default n = 2000).
    """
    n = _DEFAULT_DIRECTIONS[dim] if n is None else int(n)
    if dim == 2:
        theta = np.pi * np.arange(n) / n
        return np.column_stack([np.cos(theta), np.sin(theta)])
    if dim == 3:
        k = np.arange(n) + 0.5
        z = 1.0 - 2.0 * k / n
        r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
        phi = np.pi * (3.0 - np.sqrt(5.0)) * k
        return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    raise ValueError(f"dim = {dim!r} must be 2 or 3")


def _det(A: np.ndarray) -> np.ndarray:
    """Determinants of (..., d, d) matrices, d = 2 or 3, in closed form."""
    if A.shape[-1] == 2:
        return A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0]
    return (
        A[..., 0, 0] * (A[..., 1, 1] * A[..., 2, 2] - A[..., 1, 2] * A[..., 2, 1])
        - A[..., 0, 1] * (A[..., 1, 0] * A[..., 2, 2] - A[..., 1, 2] * A[..., 2, 0])
        + A[..., 0, 2] * (A[..., 1, 0] * A[..., 2, 1] - A[..., 1, 1] * A[..., 2, 0])
    )


def acoustic_determinants(C4: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Acoustic determinants det A(ν) of fourth-order ``C4`` (m, d, d, d, d) along ``nu`` (k, d).

    Returns (m, k): A_ik = ν_j C_ijkl ν_l for every point and every direction.
    """
    return _det(np.einsum("pj,mijkl,pl->mpik", nu, C4, nu))


def _det_per_point(C4: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Acoustic determinant det A(ν_m) with one direction per point.

    C4 (m, d, d, d, d), nu (m, d) -> (m,).
    """
    return _det(np.einsum("mj,mijkl,ml->mik", nu, C4, nu))


def _refine_2d(C4: np.ndarray, theta: np.ndarray, h: float, steps: int) -> np.ndarray:
    """Golden-section search for min det A(θ) on [θ − h, θ + h], vectorised over points."""

    def f(t):
        return _det_per_point(C4, np.column_stack([np.cos(t), np.sin(t)]))

    a, b = theta - h, theta + h
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    best = np.minimum(fc, fd)
    for _ in range(steps):
        left = fc < fd  # the minimum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - _GOLDEN * (b - a)
        new_d = a + _GOLDEN * (b - a)
        fnew = f(np.where(left, new_c, new_d))
        fc, fd, c, d = (
            np.where(left, fnew, fd),
            np.where(left, fc, fnew),
            np.where(left, new_c, d),
            np.where(left, c, new_d),
        )
        best = np.minimum(best, fnew)
    return best


def _refine_3d(C4: np.ndarray, nu: np.ndarray, h: float, steps: int) -> np.ndarray:
    """Compass search on the sphere around ``nu`` (m, 3): try ν ± h t1, ν ± h t2, halve h."""
    ref = np.where(np.abs(nu[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), [[0.0, 1.0, 0.0]])
    t1 = np.cross(nu, ref)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(nu, t1)
    best = _det_per_point(C4, nu)
    step = np.full(nu.shape[0], h)
    for _ in range(steps):
        improved = np.zeros(nu.shape[0], dtype=bool)
        for t, s in ((t1, 1.0), (t1, -1.0), (t2, 1.0), (t2, -1.0)):
            trial = nu + (s * step)[:, None] * t
            trial /= np.linalg.norm(trial, axis=1, keepdims=True)
            value = _det_per_point(C4, trial)
            better = value < best
            best = np.where(better, value, best)
            nu = np.where(better[:, None], trial, nu)
            improved |= better
        step = np.where(improved, step, 0.5 * step)
        # Keep the tangent frame orthonormal to the moved direction.
        t1 = t1 - np.sum(t1 * nu, axis=1, keepdims=True) * nu
        t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
        t2 = np.cross(nu, t1)
    return best


def _tensor4(C: np.ndarray, dim: int, kinematics: str) -> np.ndarray:
    """Fourth-order tensors (m, d, d, d, d) of Mandel tangents, or of ∂P/∂F row-major."""
    if kinematics == "finite":
        if C.shape[-1] != dim * dim:
            n = dim * dim
            raise ValueError(f"finite-strain tangents of a {dim}D problem are {n}x{n}")
        return C.reshape(-1, dim, dim, dim, dim)
    return mandel_to_tensor4(C, dim)


def acoustic_minimum(
    C: npt.ArrayLike,
    dim: int,
    n_directions: int | None = None,
    refine: bool = True,
    kinematics: str = "small",
) -> np.ndarray:
    """Minimum over unit directions ν of det A(ν), A_ik = ν_j C_ijkl ν_l, per point.

    Args:
        C: tangents ``(m, n, n)`` (or one ``(n, n)``): Mandel, n = 3 (2D) or 6 (3D); finite
            strain ∂P/∂F row-major, n = 4 or 9 (A(ν) is then the acoustic tensor Q(N)).
        dim: 2 or 3.
        n_directions: size of the direction sample (:func:`directions`).
        refine: polish the best sampled direction of each point (golden section in θ in 2D,
            a compass search on the sphere in 3D); the result is never above the sampled one.
        kinematics: ``"small"`` or ``"finite"`` (the storage of C).

    Returns:
        The raw minimum ``(m,)`` (units of C^dim; not normalised, see
        :func:`loses_ellipticity`). For isotropic C it is μ^(d−1)(λ+2μ).
    """
    C = np.asarray(C, dtype=float)
    single = C.ndim == 2
    C4 = _tensor4(C[None] if single else C, dim, kinematics)
    nu = directions(dim, n_directions)
    m = C4.shape[0]
    out = np.empty(m)
    chunk = max(1, _CHUNK // (nu.shape[0] * dim * dim))
    for start in range(0, m, chunk):
        block = C4[start : start + chunk]
        dets = acoustic_determinants(block, nu)  # (mb, k)
        best = np.argmin(dets, axis=1)
        value = dets[np.arange(block.shape[0]), best]
        if refine:
            if dim == 2:
                h = np.pi / nu.shape[0]
                theta = np.arctan2(nu[best, 1], nu[best, 0])
                value = np.minimum(value, _refine_2d(block, theta, h, steps=40))
            else:
                h = np.sqrt(4.0 * np.pi / nu.shape[0])  # ~ the spacing of the sample
                value = np.minimum(value, _refine_3d(block, nu[best], h, steps=40))
        out[start : start + chunk] = value
    return out[0] if single else out


def loses_ellipticity(
    C: npt.ArrayLike,
    dim: int,
    tol: float = 0.0,
    n_directions: int | None = None,
    kinematics: str = "small",
) -> np.ndarray:
    """Points whose tangent is not strongly elliptic: min det A ≤ tol · ‖C‖₂^dim, bool ``(m,)``.

    ‖C‖₂ is the spectral norm of each tangent (Mandel, or ∂P/∂F for ``kinematics =
    "finite"``), so ``tol`` is relative (tol = 0: the exact criterion; a small positive tol
    flags near-loss too).
    """
    C = np.asarray(C, dtype=float)
    scale = np.linalg.norm(C, ord=2, axis=(-2, -1)) ** dim
    return acoustic_minimum(C, dim, n_directions, kinematics=kinematics) <= tol * scale


# -- strain-gradient indicator ---------------------------------------------------------------
def strain_gradient_indicator(problem, rve_size: float) -> np.ndarray:
    """Scale-separation indicator ℓ |∇E| / |E| at the owned macro points, ``(n_points,)``.

    The Mandel strain E = ε(u) (finite strain: the Green–Lagrange E = (Fᵀ F − I)/2, F = I + ∇u;
    discontinuous for Lagrange u) is L2-projected onto the
    continuous Lagrange space of u's degree (at least 1), with n components: one mass-matrix
    solve (CG + Jacobi, relative tolerance 1e-12). The gradient of the projection is
    evaluated at the macro quadrature points. |∇E| is the Frobenius norm of ∂E_I/∂x_k and |E|
    the Mandel (= tensor Frobenius) norm, floored at 1e-12 × the largest |E| over the mesh
    (all ranks) so that unstrained points give 0, not a division by zero.

    Collective on ``problem.comm``. Point order as in ``problem.strains()``.

    Args:
        problem: a :class:`~fe2x.macro.problem.MacroProblem` (uses ``u``, ``V``, ``mesh``,
            ``dim``, ``kinematics``, ``quadrature_degree``, ``n_points``).
        rve_size: the RVE edge length ℓ in macro length units.
    """
    mesh, dim = problem.mesh, problem.dim
    n = 3 if dim == 2 else 6
    strain = _indicator_strain(problem.u, dim, problem.kinematics)
    degree = max(1, problem.V.ufl_element().embedded_superdegree)
    W = fem.functionspace(mesh, ("Lagrange", degree, (n,)))
    p, q = ufl.TrialFunction(W), ufl.TestFunction(W)
    a = fem.form(ufl.inner(p, q) * ufl.dx)
    L = fem.form(ufl.inner(strain, q) * ufl.dx)
    E_h = fem.Function(W)
    M = dolfinx.fem.petsc.assemble_matrix(a)
    M.assemble()
    b = dolfinx.fem.petsc.assemble_vector(L)
    b.ghostUpdate(  # petsc4py's stub types the members of InsertMode and ScatterMode as int
        addv=PETSc.InsertMode.ADD,  # type: ignore[arg-type]
        mode=PETSc.ScatterMode.REVERSE,  # type: ignore[arg-type]
    )
    ksp = PETSc.KSP().create(mesh.comm)
    try:
        ksp.setOperators(M)
        ksp.setType("cg")
        ksp.getPC().setType("jacobi")
        ksp.setTolerances(rtol=1e-12, atol=1e-300, max_it=1000)
        ksp.solve(b, E_h.x.petsc_vec)
    finally:
        ksp.destroy()
        M.destroy()
        b.destroy()
    E_h.x.scatter_forward()

    points = basix.ufl.quadrature_element(
        mesh.basix_cell(), value_shape=(n,), degree=problem.quadrature_degree
    ).custom_quadrature()[0]
    cells = np.arange(mesh.topology.index_map(dim).size_local, dtype=np.int32)
    grad = fem.Expression(ufl.grad(E_h), points).eval(mesh, cells)
    grad_norm = np.linalg.norm(grad.reshape(problem.n_points, n * dim), axis=1)

    E_points = fem.Expression(strain, points).eval(mesh, cells).reshape(problem.n_points, n)
    E_norm = np.linalg.norm(E_points, axis=1)
    local_max = float(E_norm.max()) if E_norm.size else 0.0
    floor = 1e-12 * mesh.comm.allreduce(local_max, op=MPI.MAX)
    denominator = np.maximum(E_norm, floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        indicator = float(rve_size) * grad_norm / denominator
    return np.where(denominator > 0.0, indicator, 0.0)


def _indicator_strain(u: ufl.core.expr.Expr, dim: int, kinematics: str) -> ufl.core.expr.Expr:
    """The Mandel strain of the indicator: ε(u), or the Green–Lagrange strain (finite)."""
    if kinematics == "small":
        return mandel_strain(u, dim)
    F = ufl.Identity(dim) + ufl.grad(u)
    E = 0.5 * (F.T * F - ufl.Identity(dim))
    if dim == 2:
        return ufl.as_vector([E[0, 0], E[1, 1], SQRT2 * E[0, 1]])
    return ufl.as_vector(
        [E[0, 0], E[1, 1], E[2, 2], SQRT2 * E[1, 2], SQRT2 * E[0, 2], SQRT2 * E[0, 1]]
    )


# -- summaries and warnings ----------------------------------------------------------------
def point_regions(problem, cell_tags: MeshTags, untagged: int = -1) -> np.ndarray:
    """Region label of each owned macro point from cell tags, ``(n_points,)`` int."""
    n_owned = problem.mesh.topology.index_map(problem.dim).size_local
    labels = np.full(n_owned, untagged, dtype=np.int64)
    owned = cell_tags.indices < n_owned
    labels[cell_tags.indices[owned]] = cell_tags.values[owned]
    return np.repeat(labels, problem.points_per_cell)


def _reduce(values, coordinates, threshold, comm) -> dict:
    """Global max, count above threshold, point count and worst coordinates (all ranks)."""
    n_local = values.size
    if n_local:
        i = int(np.argmax(values))
        local = (float(values[i]), comm.rank, coordinates[i].tolist())
    else:
        local = (-np.inf, comm.rank, None)
    worst = max(comm.allgather(local), key=lambda t: (t[0], -t[1]))
    counts = comm.allreduce(np.array([np.count_nonzero(values > threshold), n_local]), MPI.SUM)
    n_total = int(counts[1])
    return {
        "max": worst[0] if n_total else 0.0,
        "fraction_above": float(counts[0]) / n_total if n_total else 0.0,
        "n_above": int(counts[0]),
        "n_points": n_total,
        "worst_coordinates": None if worst[2] is None else np.asarray(worst[2]),
    }


def summarise(
    indicator: npt.ArrayLike,
    threshold: float,
    coordinates: npt.ArrayLike,
    regions: npt.ArrayLike | None = None,
    comm: MPI.Comm = MPI.COMM_SELF,
) -> dict:
    """Global summary of a per-point indicator (collective on ``comm``; same on all ranks).

    Args:
        indicator: this rank's values ``(n_points,)``.
        threshold: the level above which a point is flagged.
        coordinates: the points' coordinates ``(n_points, dim)`` (``problem.point_coordinates``).
        regions: optional integer label per point (e.g. :func:`point_regions`).
        comm: the communicator over which the points are distributed.

    Returns:
        ``{"max", "fraction_above", "n_above", "n_points", "worst_coordinates"}``, plus
        ``"regions": {label: same keys}`` for every label present on any rank when
        ``regions`` is given.
    """
    values = np.asarray(indicator, dtype=float).reshape(-1)
    xyz = np.asarray(coordinates, dtype=float).reshape(values.size, -1)
    summary = _reduce(values, xyz, threshold, comm)
    if regions is not None:
        labels = np.asarray(regions).reshape(-1)
        present = sorted(set().union(*comm.allgather(set(np.unique(labels).tolist()))))
        summary["regions"] = {
            int(r): _reduce(values[labels == r], xyz[labels == r], threshold, comm) for r in present
        }
    return summary


def warnings_for(
    summary: Mapping, step: int, threshold: float, names: Mapping[int, str] | None = None
) -> list[str]:
    """Warning lines "scale separation questionable in region R at step k" for a summary.

    One line per region whose maximum exceeds ``threshold`` (or one for the whole mesh when
    the summary has no regions); empty when nothing exceeds it. ``names`` maps labels to
    region names.
    """
    names = names or {}
    parts = summary.get("regions") or {None: summary}
    lines = []
    for label, s in parts.items():
        if s["n_points"] and s["max"] > threshold:
            where = "the mesh" if label is None else f"region {names.get(label, label)}"
            x = np.round(s["worst_coordinates"], 6).tolist()
            lines.append(
                f"scale separation questionable in {where} at step {step}: max indicator "
                f"{s['max']:.3g} at {x}, {100 * s['fraction_above']:.1f}% of points > "
                f"{threshold:g}"
            )
    return lines
