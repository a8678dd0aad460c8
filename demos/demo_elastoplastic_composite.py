# # An elastoplastic fibre composite: uniaxial stress and cyclic shear
#
# This demo follows one periodic cell of a unidirectional glass/epoxy composite into the plastic
# range. Perpendicular to the fibres the composite is in plane strain, so a 2D cell suffices:
# glass fibres (E = 70 GPa, ν = 0.2, elastic) at volume fraction 0.5 in an epoxy-like matrix
# that is elastoplastic (von Mises, E = 3 GPa, ν = 0.35, σ_y = 30 MPa, linear isotropic
# hardening H = 300 MPa and linear kinematic hardening H_kin = 200 MPa). It shows
#
# - how to set up a {py:class}`fe2x.micro.nonlinear.NonlinearRVE`, which answers "given the
#   macro strain E and my history, what is the stress Σ and the consistent tangent dΣ/dE?",
# - how {py:func}`fe2x.micro.path.drive` follows a macro loading path with *mixed control*
#   (some strains prescribed, the other stresses held at zero),
# - how the composite differs from its matrix alone (a
#   {py:class}`fe2x.micro.material_point.MaterialPoint` of the same law, same control) under
#   uniaxial transverse stress, and what the homogenized tangent does after yield,
# - the hysteresis loop and the Bauschinger effect of the composite under cyclic shear, and the
#   energy it dissipates per cycle.
#
# The same paths can be run from the command line: `demos/fibre_composite_uniaxial.toml` and
# `demos/fibre_composite_cyclic_shear.toml` (`fe2x rve-path CONFIG --out DIR`).
#
# Run it serially or in parallel; `--coarse` (or `FE2X_DEMO_COARSE=1`) uses a coarser mesh and
# fewer load steps, `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the figures go (default
# `results/demos`):
#
# ```sh
# python demos/demo_elastoplastic_composite.py
# mpiexec -n 2 python demos/demo_elastoplastic_composite.py --coarse
# ```

# +
import argparse
import os
import time
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.geometry import inclusion_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.material_point import MaterialPoint
from fe2x.micro.nonlinear import NonlinearRVE
from fe2x.micro.path import LoadPath, PathResult, drive

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse mesh, few steps (for tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
t_start = time.perf_counter()
# -

# ## The cell and the materials
#
# One fibre in the middle of a unit square, meshed by gmsh on rank 0 with matching nodes on
# opposite faces and curved (quadratic) elements along the fibre, then distributed.
#
# {py:class}`fe2x.materials.j2.J2Plasticity` is small-strain von Mises plasticity with
# radial return. Its hardening moduli are those of a uniaxial test: after yield the matrix
# alone has the tangent E_t = E (H + H_kin) / (E + H + H_kin) = 0.43 GPa, about 1/7 of its
# Young's modulus. The isotropic part H expands the yield surface, the kinematic part H_kin
# (Prager) moves it with the back stress β, which is what makes the reverse yield stress
# differ from the forward one. In 2D the law is evaluated in plane strain, with the
# out-of-plane stress and plastic strain carried along.

# +
volume_fraction = 0.5
mesh_size = 0.1 if coarse else 0.04
cell = inclusion_cell(comm, 2, [1.0, 1.0], volume_fraction, mesh_size, geometry_order=2)
epoxy = J2Plasticity(
    E=3.0e9, nu=0.35, sigma_y=30.0e6, hardening="linear", H=300.0e6, H_kin=200.0e6, name="epoxy"
)
glass = IsotropicElastic(70.0e9, 0.2, name="glass")
sigma_y = epoxy.sigma_y
E_t = epoxy.E * (epoxy.H + epoxy.H_kin) / (epoxy.E + epoxy.H + epoxy.H_kin)
# -

# ## The nonlinear RVE
#
# The displacement is u(y) = E·(y − y_c) + w(y) with a periodic fluctuation w. For a given
# macro strain E (Mandel vector E₁₁, E₂₂, √2 E₁₂ in 2D) the RVE solves the micro equilibrium
# for w by Newton's method (PETSc SNES), with the stress and the algorithmic tangent from the
# return mapping at every quadrature point, and returns an `RVEResult`: the volume average
# Σ = ⟨σ⟩, the consistent homogenized tangent C = dΣ/dE (condensed from the converged micro
# Jacobian with one extra solve per unit strain, reusing its factorization), the Hill–Mandel
# residual, the Newton iterations and whether it converged. `solve(E)` works on a *trial*
# history, starting from the last committed one; `commit()` accepts it. This is exactly what a
# macro Gauss point in FE² needs, and `drive` below uses the same two calls.
#
# A first solve at a tiny strain is purely elastic and gives the elastic tangent C_el (we do not
# commit it, so the history stays virgin).

# +
rve = NonlinearRVE(cell, {"matrix": epoxy, "inclusion": glass}, bc="periodic", degree=2)
virgin = rve.get_state()
elastic = rve.solve(np.array([1e-6, 0.0, 0.0]))
assert elastic.converged
C_el = elastic.C
if comm.rank == 0:
    print(f"{rve.n_dofs} dofs on {comm.size} rank(s)")
    print("elastic C / GPa (Mandel 11 22 12):")
    print(np.array2string(C_el / 1e9, precision=3, suppress_small=True))
# -

# ## 1. Uniaxial transverse stress
#
# The path prescribes E₁₁ from 0 to 2 % and keeps the other two *stresses* at zero, Σ₂₂ =
# Σ₁₂ = 0: a uniaxial tension test across the fibres. A {py:class}`fe2x.micro.path.LoadPath`
# holds, per component, whether it is strain- or stress-controlled and its values at the knot
# times (linear in between). At every step `drive` finds the free strains E₂₂, E₁₂ by Newton's
# method with the consistent tangent, ΔE_s = C_ss⁻¹ (Σ_s,target − Σ_s), commits the history,
# and cuts a step in halves if the micro solve or the control fails.
#
# The matrix alone gets the same path through a `MaterialPoint`: the same return mapping, but
# homogeneous, so it is the answer of a cell without fibres.

# +
uniaxial = LoadPath(
    times=np.array([0.0, 1.0]),
    values=np.array([[0.0, 0.0, 0.0], [0.02, 0.0, 0.0]]),
    stress_controlled=np.array([False, True, True]),
    steps=10 if coarse else 40,
)
t0 = time.perf_counter()
composite_uni = drive(rve, uniaxial, stress_scale=sigma_y)
t_uni = time.perf_counter() - t0
matrix_uni = drive(MaterialPoint(epoxy, 2), uniaxial, stress_scale=sigma_y)
assert composite_uni.completed and matrix_uni.completed, composite_uni.message


def curve(result: PathResult, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Strain and stress of Mandel component ``i`` along a path, from the unloaded start."""
    E = np.array([0.0] + [step.E[i] for step in result.steps])
    S = np.array([0.0] + [step.Sigma[i] for step in result.steps])
    return E, S


# -

# **The tangent under uniaxial stress.** The tangent C relates all three strain and stress
# components. Under Σ₂₂ = Σ₁₂ = 0 the free strains follow E₁₁, and the slope of the Σ₁₁–E₁₁ curve
# is the tangent condensed on these conditions: from dE = C⁻¹ dΣ with dΣ = (dΣ₁₁, 0, 0),
# dΣ₁₁/dE₁₁ = 1 / (C⁻¹)₁₁. Before yield it is the transverse Young's modulus of the composite;
# at the end of the path the matrix flows everywhere it is loaded.


# +
def uniaxial_tangent(C: np.ndarray) -> float:
    """dΣ₁₁/dE₁₁ with Σ₂₂ = Σ₁₂ = 0: 1 / (C⁻¹)₁₁."""
    return 1.0 / np.linalg.inv(C)[0, 0]


E_c, S_c = curve(composite_uni, 0)
E_m, S_m = curve(matrix_uni, 0)
initial = uniaxial_tangent(C_el)
final = uniaxial_tangent(composite_uni.steps[-1].C)
initial_matrix = uniaxial_tangent(MaterialPoint(epoxy, 2).solve(np.array([1e-6, 0, 0])).C)
final_matrix = uniaxial_tangent(matrix_uni.steps[-1].C)
if comm.rank == 0:
    print(f"\nuniaxial transverse stress to E11 = {E_c[-1]:.3g} ({t_uni:.1f} s)")
    print(f"  Σ11 composite {S_c[-1] / 1e6:8.2f} MPa   matrix alone {S_m[-1] / 1e6:8.2f} MPa")
    print(
        f"  initial tangent dΣ11/dE11: composite {initial / 1e9:.3f} GPa, "
        f"matrix {initial_matrix / 1e9:.3f} GPa"
    )
    print(
        f"  final tangent   dΣ11/dE11: composite {final / 1e9:.3f} GPa, "
        f"matrix {final_matrix / 1e9:.3f} GPa (E_t = {E_t / 1e9:.3f} GPa)"
    )
    print(
        f"  final / initial: composite {final / initial:.3f}, "
        f"matrix {final_matrix / initial_matrix:.3f}"
    )
# -

# The composite starts about three times stiffer than the matrix (whose plane-strain modulus
# is E/(1 − ν²) = 3.42 GPa) and yields *earlier* in macroscopic strain, but gradually: the stiff
# fibres concentrate the strain in the matrix ligaments between them, so the first quadrature
# points reach σ_y while the average stress is still small, and the plastic zone then spreads.
# The tangent falls smoothly over about 0.3–0.7 % strain instead of with the matrix's kink.
#
# What it falls to is the interesting part. The matrix alone drops to its hardening tangent
# (0.56 GPa in plane strain, a little above the uniaxial-stress value E_t = 0.43 GPa because
# σ₃₃ builds up), about 1/6 of its elastic modulus. The composite keeps about a third of its
# initial tangent, six times the matrix's. Plastic flow is isochoric, and in plane strain
# stretching along 1 while shortening along 2 means shearing on ±45° planes. In a square array
# at vf 0.5 every ±45° band hits fibres (r = 0.40 > 0.5/√2 = 0.35), so the matrix cannot form a
# plastic mechanism around the elastic fibres. The flow is locked, and the remaining compliance
# is elastic (fibres and matrix volume change) plus hardening. The fibre-free strips along 1
# and 2 (width 1 − 2r = 0.2) do allow slip, but that slip is shear E₁₂, which the cyclic path
# below exercises. A linear homogenization gets neither the gradual yield nor this anisotropic
# post-yield stiffness.

# ## 2. Cyclic shear
#
# Now E₁₂ goes to +1 %, then twice between +1 % and −1 %, with Σ₁₁ = Σ₂₂ = 0. The knots are
# placed so that equal time steps are equal strain steps: a cycle is +1 % → −1 % → +1 %, from
# t = 1 to t = 5 and from t = 5 to t = 9. We start again from the virgin state. Strains and
# stresses in the Mandel vector carry √2 on the shear: E₃ = √2 E₁₂, Σ₃ = √2 Σ₁₂.

# +
knots = np.array([0.0, 1.0, 3.0, 5.0, 7.0, 9.0])
E12 = 0.01 * np.array([0.0, 1.0, -1.0, 1.0, -1.0, 1.0])
values = np.zeros((len(knots), 3))
values[:, 2] = np.sqrt(2.0) * E12
shear = LoadPath(
    times=knots,
    values=values,
    stress_controlled=np.array([True, True, False]),
    steps=(4 if coarse else 16) * 9,
)
rve.set_state(virgin)
t0 = time.perf_counter()
composite_cyc = drive(rve, shear, stress_scale=sigma_y)
t_cyc = time.perf_counter() - t0
matrix_cyc = drive(MaterialPoint(epoxy, 2), shear, stress_scale=sigma_y)
assert composite_cyc.completed and matrix_cyc.completed, composite_cyc.message
t_c = np.array([0.0] + [step.t for step in composite_cyc.steps])
g_c, s_c = (x / np.sqrt(2.0) for x in curve(composite_cyc, 2))  # tensor E12, Σ12
t_m = np.array([0.0] + [step.t for step in matrix_cyc.steps])
g_m, s_m = (x / np.sqrt(2.0) for x in curve(matrix_cyc, 2))
# -

# **Dissipated energy.** Over a closed cycle the elastic energy returns to its start, so the
# work done on the cell, ∮ Σ : dE = ∮ 2 Σ₁₂ dE₁₂ (the other stresses are zero), is the energy
# dissipated by plastic flow per unit volume: the area of the loop in the Σ₁₂–γ plane
# (γ = 2E₁₂). We integrate it with the trapezoid rule over the steps of each cycle.
#
# **Bauschinger effect.** We measure the yield stress on a branch by an offset: the stress at
# which the inelastic shear strain, Δγ − ΔΣ₁₂/μ_el from the start of the branch (μ_el = C_el,33/2,
# the elastic shear modulus), reaches 0.05 %. On first loading this is the initial yield stress
# τ_0; on the first reversal from +1 % it is the reverse yield stress τ_r. At the reversal the
# material is flowing forward at τ_peak, its current forward yield stress. With isotropic
# hardening alone the yield surface would only grow, and reverse flow would start at −τ_peak;
# the Bauschinger effect is that it starts much earlier, τ_r > −τ_peak.


# +
def dissipation(t: np.ndarray, gamma: np.ndarray, tau: np.ndarray, t0: float, t1: float) -> float:
    """∮ τ dγ over the steps with t0 <= t <= t1 (trapezoid rule)."""
    sel = (t >= t0 - 1e-9) & (t <= t1 + 1e-9)
    g, s = gamma[sel], tau[sel]
    return float(np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(g)))


def offset_yield(
    t: np.ndarray, gamma: np.ndarray, tau: np.ndarray, t0: float, t1: float, mu: float
) -> tuple[float, float]:
    """(γ, τ) on the branch t0 <= t <= t1 where |Δγ − Δτ/μ| first reaches the offset 5e-4."""
    sel = (t >= t0 - 1e-9) & (t <= t1 + 1e-9)
    g, s = gamma[sel], tau[sel]
    inelastic = np.abs((g - g[0]) - (s - s[0]) / mu)
    k = int(np.argmax(inelastic >= 5e-4))
    if k == 0:
        return float("nan"), float("nan")
    w = (5e-4 - inelastic[k - 1]) / (inelastic[k] - inelastic[k - 1])
    return float(g[k - 1] + w * (g[k] - g[k - 1])), float(s[k - 1] + w * (s[k] - s[k - 1]))


def yield_points(t: np.ndarray, gamma: np.ndarray, tau: np.ndarray, mu: float) -> dict:
    """Initial yield, stress at the first reversal (t = 1) and reverse yield of a shear path."""
    (g0, tau0), (gr, taur) = (offset_yield(t, gamma, tau, *b, mu) for b in ((0, 1), (1, 3)))
    peak = float(tau[np.argmin(np.abs(t - 1.0))])
    return {"initial": tau0, "peak": peak, "reverse": taur, "gamma": (g0, gr)}


cycles = [(1.0, 5.0), (5.0, 9.0)]
W_c = [dissipation(t_c, 2 * g_c, s_c, *c) for c in cycles]
W_m = [dissipation(t_m, 2 * g_m, s_m, *c) for c in cycles]
yc = yield_points(t_c, 2 * g_c, s_c, C_el[2, 2] / 2.0)
ym = yield_points(t_m, 2 * g_m, s_m, epoxy.G)
if comm.rank == 0:
    print(
        f"\ncyclic shear E12 = ±1 %, two cycles ({t_cyc:.1f} s, {len(composite_cyc.steps)} steps)"
    )
    for k, (wc, wm) in enumerate(zip(W_c, W_m, strict=True), start=1):
        print(f"  cycle {k}: dissipated {wc / 1e6:.4f} MJ/m³ (matrix alone {wm / 1e6:.4f} MJ/m³)")
    print("  Σ12 [MPa]        initial yield  at reversal  reverse yield")
    for name, y in (("composite", yc), ("matrix alone", ym)):
        print(
            f"  {name:14s} {y['initial'] / 1e6:12.2f} {y['peak'] / 1e6:12.2f} "
            f"{y['reverse'] / 1e6:13.2f}"
        )
assert all(w > 0 for w in W_c), "a closed plastic cycle must dissipate energy"
assert yc["reverse"] > -yc["peak"], "the reverse yield stress shows no Bauschinger effect"
# -

# The composite reverse-yields far before −τ_peak: the Bauschinger effect. Two mechanisms add
# up. Within the matrix, kinematic hardening moves the yield surface along with the flow (back
# stress β), so reverse flow starts a little earlier. Alone, with H_kin < H and a small plastic
# strain at 1 % shear, this is a fraction of an MPa (the "matrix alone" row). The much larger
# effect in the composite comes from the microstructure. Shear E₁₂ slides the matrix in the
# fibre-free strips along 1 and 2 while the matrix near the fibres stays elastic longer. On
# reversal the elastic parts push back and leave residual stresses in the strips that help
# reverse yielding. The composite therefore reverse-yields at about the same magnitude as its
# initial yield, although it was flowing at τ_peak, and it dissipates several times the energy
# of the matrix alone. In the second cycle the peaks are higher and the dissipation somewhat
# lower: isotropic hardening widens the elastic range at fixed strain amplitude.

# ## Figures
#
# Σ₁₁–E₁₁ of the composite and of the matrix alone, with the condensed tangent along the path;
# and the Σ₁₂–E₁₂ hysteresis loops, with the forward and reverse yield points marked.

# +
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(100 * E_c, S_c / 1e6, "o-", ms=3, label="composite (vf 0.5)")
    ax1.plot(100 * E_m, S_m / 1e6, "s-", ms=3, label="matrix alone")
    ax1.axhline(sigma_y / 1e6, color="0.6", ls=":", label="σ_y of the matrix")
    ax1.set_xlabel("E₁₁ [%]")
    ax1.set_ylabel("Σ₁₁ [MPa]")
    ax1.set_title("uniaxial transverse stress (Σ₂₂ = Σ₁₂ = 0)")
    ax1.legend()
    tangents_c = [initial] + [uniaxial_tangent(s.C) for s in composite_uni.steps]
    tangents_m = [initial_matrix] + [uniaxial_tangent(s.C) for s in matrix_uni.steps]
    ax2.semilogy(100 * E_c, np.array(tangents_c) / 1e9, "o-", ms=3, label="composite")
    ax2.semilogy(100 * E_m, np.array(tangents_m) / 1e9, "s-", ms=3, label="matrix alone")
    ax2.set_xlabel("E₁₁ [%]")
    ax2.set_ylabel("dΣ₁₁/dE₁₁ = 1/(C⁻¹)₁₁ [GPa]")
    ax2.set_title("condensed tangent")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "elastoplastic_uniaxial.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(100 * g_c, s_c / 1e6, "-", label="composite (vf 0.5)")
    ax.plot(100 * g_m, s_m / 1e6, "--", label="matrix alone")
    g_0, g_r = (gamma / 2 for gamma in yc["gamma"])
    ax.plot(100 * g_0, yc["initial"] / 1e6, "k^", label="initial yield (offset 0.05 %)")
    ax.plot(100 * g_r, yc["reverse"] / 1e6, "kv", label="reverse yield (offset 0.05 %)")
    ax.axhline(-yc["peak"] / 1e6, color="0.5", ls=":", label="−(stress at reversal)")
    ax.set_xlabel("E₁₂ [%]")
    ax.set_ylabel("Σ₁₂ [MPa]")
    ax.set_title(f"cyclic shear; dissipated per cycle {W_c[0] / 1e6:.3f}, {W_c[1] / 1e6:.3f} MJ/m³")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "elastoplastic_cyclic_shear.png", dpi=120)
    plt.close(fig)
    print(f"\nwrote {out / 'elastoplastic_uniaxial.png'}, {out / 'elastoplastic_cyclic_shear.png'}")
    print(f"total {time.perf_counter() - t_start:.1f} s")
# -

# The number the demo tests compare between serial and parallel runs: Σ₁₁ at the last uniaxial
# step over the matrix yield stress.

if comm.rank == 0:
    print(f"RESULT {composite_uni.steps[-1].Sigma[0] / sigma_y:.15e}")
