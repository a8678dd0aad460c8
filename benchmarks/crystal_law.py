"""Benchmark the crystal-plasticity update per quadrature point, next to the J2 return mapping.

One ``update`` call is what every quadrature point costs per global (macro or RVE) Newton
iteration, so the cost is reported in µs per point and call, on one core (the BLAS is set to
one thread before numpy loads). The points are FCC copper grains with random orientations
(``CrystalPlasticity``: C11, C12, C44 = 168.4, 121.4, 75.4 GPa, ξ₀ = 31 MPa, ξ_∞ = 63 MPa,
h₀ = 75 MPa, a = 2.25, n = 20, γ̇₀ = 1e-3 /s, q_latent = 1.4, 12 slip systems), loaded
iso-strain along ε̇ = 1e-3 /s · diag(1, −½, −½) with dt = 1 s for ``--steps`` steps (well
past yield, every grain slipping), then timed on the next increment three ways:

- ``steady``: the same strain increment again (the start from the last slip rates is good);
- ``turned``: a step that adds a shear of the same size (the start is poorer);
- ``elastic``: dt = 0 (rotated Hooke's law, no local Newton).

The J2 law (``J2Plasticity.update``, E = 200 GPa, ν = 0.3, σ_y = 250 MPa, H = 1 GPa) is timed
on as many points in a plastic state. Each timing is the fastest of ``--repeat`` calls (a
shared machine scatters); the record also holds the mean local Newton iterations.

Run (from the repository root)::

    .venv/bin/python benchmarks/crystal_law.py                 # 10k points, ~10 s
    .venv/bin/python benchmarks/crystal_law.py --points 2000 --out /tmp/c.json

Measured on 2026-12-01, 10k points, numpy 2.5 with OpenBLAS on one thread, two cores shared
with other jobs (load ~5), so the CPU time of the process is reported (wall time was 2-2.5x):

==================  ==========  ================  ==================================
case                µs / point  local Newton its  note
==================  ==========  ================  ==================================
crystal steady      13.7        2.85 (max 5)      all 10k points slipping
crystal turned      25.8        6.39 (max 9)      increment with an added shear
crystal elastic     1.2         0                 dt = 0, rotated Hooke's law
J2 (radial return)  0.39        -                 plastic
==================  ==========  ================  ==================================

NEML2 quotes ~28 µs per crystal and step on a GPU for a comparable model.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from fe2x.materials.crystal import CrystalPlasticity, crystal_update  # noqa: E402
from fe2x.materials.j2 import J2Plasticity  # noqa: E402
from fe2x.materials.orientations import random_orientations  # noqa: E402

COPPER = CrystalPlasticity(
    168.4e3, 121.4e3, 75.4e3, xi0=31.0, n=20.0, gamma_dot_0=1e-3, h0=75.0, xi_inf=63.0, a=2.25
)
STEEL = J2Plasticity(200e3, 0.3, 250.0, H=1e3)
D = np.array([1.0, -0.5, -0.5, 0.0, 0.0, 0.0])
SHEAR = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
RATE, DT = 1e-3, 1.0


def fastest(call, repeat: int) -> tuple[float, float, object]:
    """The shortest CPU time and the shortest wall time of ``repeat`` calls, and the last
    result (on a shared machine the CPU time of this process is the fairer measure)."""
    cpu, wall, result = np.inf, np.inf, None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        result = call()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall, result


def crystal_cases(n: int, steps: int, repeat: int) -> dict:
    """Time the three crystal updates on ``n`` grains after ``steps`` plastic steps."""
    params = {"orientation": random_orientations(n, seed=1)}
    state = COPPER.initial_state(n)
    eps = np.zeros((n, 6))
    for _ in range(steps):
        eps = eps + RATE * DT * D
        state = crystal_update(COPPER, eps, state, DT, params).state
    increments = {
        "steady": RATE * DT * D,
        "turned": RATE * DT * (D + SHEAR),
        "elastic": RATE * DT * D,
    }
    cases = {}
    for name, increment in increments.items():
        dt = 0.0 if name == "elastic" else DT
        cpu, wall, out = fastest(
            lambda i=increment, t=dt: crystal_update(COPPER, eps + i, state, t, params), repeat
        )
        cases[name] = {
            "us_per_point": cpu / n * 1e6,
            "us_per_point_wall": wall / n * 1e6,
            "local_newton_iterations": float(out.iterations.mean()),
            "max_local_newton_iterations": int(out.iterations.max()),
            "slipping_points": int(
                np.count_nonzero(np.abs(out.state["gamma_dot"]).max(axis=1) > 0)
            ),
        }
    return cases


def j2_case(n: int, repeat: int) -> dict:
    """Time the J2 return mapping on ``n`` points in a plastic state."""
    state = STEEL.initial_state(n)
    state = STEEL.update(np.tile(3e-3 * D, (n, 1)), state)[2]
    strain = np.tile(4e-3 * D, (n, 1)) + 1e-4 * np.random.default_rng(2).standard_normal((n, 6))
    cpu, wall, (_, _, trial) = fastest(lambda: STEEL.update(strain, state), repeat)
    plastic = int(np.count_nonzero(trial["p"] > state["p"]))
    return {
        "us_per_point": cpu / n * 1e6,
        "us_per_point_wall": wall / n * 1e6,
        "plastic_points": plastic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=5, help="plastic steps before timing")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/crystal_law.json"))
    args = parser.parse_args()
    crystal = crystal_cases(args.points, args.steps, args.repeat)
    j2 = j2_case(args.points, args.repeat)
    record = {
        "benchmark": "crystal_law",
        "points": args.points,
        "slip_systems": int(COPPER.systems.m.shape[0]),
        "plastic_steps_before": args.steps,
        "repeat": args.repeat,
        "host": platform.node(),
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "crystal": crystal,
        "j2": j2,
    }
    print(
        f"{args.points} points, one core; µs per point and update (= per global Newton iteration)"
    )
    print(f"{'law / case':<18}{'µs/pt cpu':>10}{'µs/pt wall':>11}{'local its':>11}{'max its':>9}")
    for name, case in crystal.items():
        print(
            f"{'crystal ' + name:<18}{case['us_per_point']:>10.2f}"
            f"{case['us_per_point_wall']:>11.2f}{case['local_newton_iterations']:>11.2f}"
            f"{case['max_local_newton_iterations']:>9d}"
        )
    print(f"{'J2':<18}{j2['us_per_point']:>10.2f}{j2['us_per_point_wall']:>11.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
