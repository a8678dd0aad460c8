"""Benchmark linear homogenization: cost and mesh convergence of C_eff, 2D fibre and 3D sphere.

Each case is a centred inclusion in a unit periodic cell (2D: fibre, volume fraction 0.5; 3D:
sphere, 0.2), epoxy matrix (E = 3 GPa, ν = 0.35) and glass inclusion (E = 70 GPa, ν = 0.2),
periodic boundary conditions, P2 displacement on a curved (order-2) mesh, at three mesh sizes.
Run serially or under ``mpiexec``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpi4py import MPI

import dolfinx
import numpy as np

from fe2x.geometry import RVEMesh, inclusion_cell
from fe2x.materials import IsotropicElastic
from fe2x.micro.homogenization import homogenize

MATERIALS = {
    "matrix": IsotropicElastic(3.0e9, 0.35, name="epoxy"),
    "inclusion": IsotropicElastic(70.0e9, 0.2, name="glass"),
}
VOLUME_FRACTION = {2: 0.5, 3: 0.2}
#: Mesh sizes (largest element edge in a unit cell) per dimension, coarse to fine.
MESH_SIZES = {2: (0.1, 0.05, 0.025), 3: (0.15, 0.075, 0.048)}
QUICK_MESH_SIZES = {2: (0.2, 0.1, 0.05), 3: (0.25, 0.15, 0.12)}
TOLERANCE = 1e-3
STAGES = ("meshing", "forms", "assembly", "constraints", "factorization", "solves")


@dataclass
class Run:
    """One homogenization: size, timings (seconds, max over ranks) and C_eff."""

    dim: int
    mesh_size: float
    solver: str
    n_dofs: int
    iterations: list[int]
    timings: dict[str, float]
    total: float
    C_eff: list[list[float]]
    hill_mandel_residual: float
    error: float = float("nan")
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def C1111(self) -> float:
        return self.C_eff[0][0]


def build(comm: MPI.Comm, dim: int, mesh_size: float) -> tuple[RVEMesh, float]:
    """The inclusion cell and the seconds it took to mesh and distribute it."""
    comm.barrier()
    t0 = time.perf_counter()
    cell = inclusion_cell(comm, dim, [1.0] * dim, VOLUME_FRACTION[dim], mesh_size, geometry_order=2)
    return cell, comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)


def run(comm: MPI.Comm, cell: RVEMesh, meshing: float, mesh_size: float, solver: str) -> Run:
    """Homogenize ``cell`` under periodic BCs with ``solver``; timings are max over ranks."""
    comm.barrier()
    t0 = time.perf_counter()
    result = homogenize(cell, MATERIALS, bcs=("periodic",), degree=2, solver=solver)
    elapsed = time.perf_counter() - t0
    response = result.responses["periodic"]
    local = {"meshing": meshing, **result.timings, **response.timings}
    timings = {k: comm.allreduce(local.get(k, 0.0), op=MPI.MAX) for k in STAGES}
    elapsed = comm.allreduce(elapsed, op=MPI.MAX)
    timings["other"] = max(elapsed - sum(v for k, v in timings.items() if k != "meshing"), 0.0)
    return Run(
        dim=cell.mesh.topology.dim,
        mesh_size=mesh_size,
        solver=response.solver,
        n_dofs=result.rve.n_dofs,
        iterations=list(response.iterations),
        timings=timings,
        total=meshing + elapsed,
        C_eff=response.C_eff.tolist(),
        hill_mandel_residual=float(response.hill_mandel_residual.max()),
    )


def richardson(runs: list[Run], dim: int) -> tuple[np.ndarray, dict[str, object]]:
    """The converged C_eff: Richardson-extrapolated from three levels when regular, else finest.

    With h = n_dofs^(-1/dim) and C(h) = C_∞ + a h^p, the order p solves
    |C₂ − C₁| / |C₃ − C₂| = (h₁^p − h₂^p) / (h₂^p − h₃^p) (Frobenius norms), and
    C_∞ = C₃ − (C₂ − C₃) h₃^p / (h₂^p − h₃^p). "Regular" means the differences shrink, p lies in
    [0.5, 8], and every entry above 1e-3 max|C| changes with the same sign on both refinements.
    """
    levels = sorted({r.n_dofs: r for r in runs}.values(), key=lambda r: r.n_dofs)
    C = [np.asarray(r.C_eff) for r in levels]
    finest = {"definition": "finest run", "C_eff": C[-1].tolist()}
    if len(levels) < 3:
        return C[-1], finest
    (C1, C2, C3), h = C[-3:], [r.n_dofs ** (-1.0 / dim) for r in levels[-3:]]
    d1, d2 = np.linalg.norm(C2 - C1), np.linalg.norm(C3 - C2)
    big = np.abs(C3) > 1e-3 * np.abs(C3).max()
    same_sign = np.all(np.sign((C2 - C1)[big]) == np.sign((C3 - C2)[big]))
    if not (d2 < d1 and same_sign):
        return C[-1], {**finest, "richardson": "irregular convergence (not monotone)"}

    def ratio(p: float) -> float:
        return (h[0] ** p - h[1] ** p) / (h[1] ** p - h[2] ** p)

    lo, hi = 0.5, 8.0
    target = d1 / d2
    if not ratio(lo) <= target <= ratio(hi):
        return C[-1], {**finest, "richardson": f"observed order outside [0.5, 8] ({target=:.3g})"}
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(mid) < target else (lo, mid)
    p = 0.5 * (lo + hi)
    C_inf = C3 - (C2 - C3) * h[2] ** p / (h[1] ** p - h[2] ** p)
    info = {"definition": "Richardson extrapolation", "order": p, "C_eff": C_inf.tolist()}
    return C_inf, info


def first_within(runs: list[Run], tolerance: float) -> Run | None:
    """The cheapest (fewest dofs) run within ``tolerance`` of the converged C_eff."""
    good = [r for r in sorted(runs, key=lambda r: r.n_dofs) if r.error < tolerance]
    return good[0] if good else None


def table(runs: list[Run]) -> str:
    """A plain-text table of all runs."""
    head = (
        f"{'dim':>3} {'h':>6} {'solver':>9} {'dofs':>8} {'its':>4} {'total':>7} "
        + " ".join(f"{k[:7]:>7}" for k in (*STAGES, "other"))
        + f" {'C1111/GPa':>10} {'rel.err':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        its = max(r.iterations) if r.solver == "iterative" else 1
        lines.append(
            f"{r.dim:>3} {r.mesh_size:>6.3f} {r.solver:>9} {r.n_dofs:>8} {its:>4} {r.total:>7.2f} "
            + " ".join(f"{r.timings[k]:>7.2f}" for k in (*STAGES, "other"))
            + f" {r.C1111 / 1e9:>10.5f} {r.error:>8.1e}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    parser.add_argument("--dim", type=int, choices=(2, 3), action="append", help="2 and/or 3")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/homogenize.json"))
    parser.add_argument(
        "--direct-max-dofs",
        type=int,
        default=150_000,
        help="in 3D, also time MUMPS LU on cells up to this size (default 150000)",
    )
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    sizes = QUICK_MESH_SIZES if args.quick else MESH_SIZES
    dims = args.dim or [2, 3]

    # Warm-up: compile the forms (JIT, cached on disk) so that no run pays for it.
    for dim in dims:
        cell, _ = build(comm, dim, QUICK_MESH_SIZES[dim][0])
        homogenize(cell, MATERIALS, bcs=("periodic",), solver="direct")
        del cell
        gc.collect()

    runs: list[Run] = []
    summary: dict[str, object] = {}
    for dim in dims:
        dim_runs = []
        for h in sizes[dim]:
            cell, meshing = build(comm, dim, h)
            n_dofs = None
            solvers = ["direct"] if dim == 2 else ["iterative", "direct"]
            for solver in solvers:
                if solver == "direct" and dim == 3 and n_dofs and n_dofs > args.direct_max_dofs:
                    continue
                r = run(comm, cell, meshing, h, solver)
                n_dofs = r.n_dofs
                dim_runs.append(r)
                if comm.rank == 0:
                    print(
                        f"dim {dim} h {h} {r.solver}: {r.n_dofs} dofs, {r.total:.2f} s, "
                        f"C1111 {r.C1111:.6e}",
                        flush=True,
                    )
                gc.collect()
            del cell
            gc.collect()
        converged, info = richardson(dim_runs, dim)
        for r in dim_runs:
            r.error = float(np.linalg.norm(np.asarray(r.C_eff) - converged))
            r.error /= float(np.linalg.norm(converged))
        reached = {}
        for solver in {r.solver for r in dim_runs}:
            first = first_within([r for r in dim_runs if r.solver == solver], TOLERANCE)
            reached[solver] = (
                None
                if first is None
                else {
                    "n_dofs": first.n_dofs,
                    "total": first.total,
                    "solve": first.timings["factorization"] + first.timings["solves"],
                    "error": first.error,
                }
            )
        summary[str(dim)] = {"converged": info, f"first_within_{TOLERANCE:g}": reached}
        runs.extend(dim_runs)

    if comm.rank == 0:
        print()
        print(table(runs))
        for dim, s in summary.items():
            print(f"\n{dim}D converged value: {s['converged']['definition']}", end="")
            if "order" in s["converged"]:
                print(f" (observed order {s['converged']['order']:.2f} in h = dofs^(-1/d))")
            else:
                print(f" ({s['converged'].get('richardson', 'fewer than 3 levels')})")
            for solver, first in s[f"first_within_{TOLERANCE:g}"].items():
                if first is None:
                    print(f"  {solver}: no run within {TOLERANCE:.1%}")
                else:
                    print(
                        f"  {solver}: within {TOLERANCE:.1%} at {first['n_dofs']} dofs, "
                        f"{first['total']:.2f} s total ({first['solve']:.2f} s set-up + solves)"
                    )
        record = {
            "benchmark": "fe2x linear homogenization, periodic BC, P2, geometry order 2",
            "notation": "mandel",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "n_ranks": comm.size,
            "host": platform.node(),
            "processor": platform.processor() or platform.machine(),
            "dolfinx": dolfinx.__version__,
            "quick": args.quick,
            "tolerance": TOLERANCE,
            "error_definition": "|C_eff - C_converged|_F / |C_converged|_F",
            "timings": "seconds, max over ranks; total = meshing + homogenize()",
            "materials": {k: {"E": m.E, "nu": m.nu} for k, m in MATERIALS.items()},
            "volume_fraction": VOLUME_FRACTION,
            "summary": summary,
            "runs": [{**asdict(r), "C1111": r.C1111} for r in runs],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
