# # A two-phase laminate: checking homogenization against the exact solution
#
# A laminate (layers stacked along one axis) is the one microstructure whose effective stiffness
# is known in closed form for any anisotropic phases. Under a uniform macro strain, the strain
# in each layer is uniform too, so the finite element solution is exact on any mesh that
# resolves the layer interfaces: periodic homogenization must reproduce the closed form to
# round-off. This demo derives the formula, builds 2D (plane strain) and 3D laminates of epoxy
# (E = 3 GPa, ν = 0.35) and glass (E = 70 GPa, ν = 0.2) with
# {py:func}`fe2x.geometry.laminate_cell`, and prints the error.
#
# The command-line equivalent of the 3D case is `fe2x homogenize demos/laminate.toml`.
# `--coarse` (or `FE2X_DEMO_COARSE=1`) uses coarser meshes.

# +
import argparse
import os
from collections.abc import Sequence

from mpi4py import MPI

import numpy as np

from fe2x.geometry import laminate_cell
from fe2x.materials import IsotropicElastic
from fe2x.micro.homogenization import homogenize

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse mesh (for tests)")
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
# -

# ## The closed form
#
# Let the layers be normal to the axis n = e_a. Split the strain (Mandel vector) into the
# components that the interfaces couple, the *normal* ones N = {ε_aa, ε_ab (b ≠ a)}, and the
# *in-plane* ones T (the rest). Two continuity conditions across the interfaces fix the layer
# fields:
#
# 1. **in-plane strain continuity**: the displacement is continuous along the interface, so
#    ε_T is the same in every layer, ε_T = E_T;
# 2. **traction continuity**: σ·n is continuous, so σ_N is the same in every layer.
#
# In layer i, σ_N = C_NN ε_N + C_NT E_T, hence ε_N = C_NN⁻¹ (σ_N − C_NT E_T). Averaging over
# the layers (volume fractions f_i) and using ⟨ε_N⟩ = E_N:
#
# σ_N = ⟨C_NN⁻¹⟩⁻¹ (E_N + ⟨C_NN⁻¹ C_NT⟩ E_T),
#
# and the in-plane stress is the average σ_T = ⟨C_TN ε_N + C_TT E_T⟩. One unit strain at a
# time gives the columns of C_eff. (For isotropic layers and E = e_aa this reduces to the
# familiar series rule for the normal stiffness.)


# +
def laminate_stiffness(
    fractions: Sequence[float], stiffness: Sequence[np.ndarray], normal: Sequence[int]
) -> np.ndarray:
    """Exact Mandel stiffness of a laminate; ``normal`` are the Mandel rows of N."""
    n = stiffness[0].shape[0]
    N = list(normal)
    T = [i for i in range(n) if i not in N]
    inv_NN = sum(
        f * np.linalg.inv(C[np.ix_(N, N)]) for f, C in zip(fractions, stiffness, strict=True)
    )
    coupling = sum(
        f * np.linalg.solve(C[np.ix_(N, N)], C[np.ix_(N, T)])
        for f, C in zip(fractions, stiffness, strict=True)
    )
    C_eff = np.zeros((n, n))
    for k in range(n):
        E = np.eye(n)[k]
        sigma_N = np.linalg.solve(inv_NN, E[N] + coupling @ E[T])
        sigma_T = np.zeros(len(T))
        for f, C in zip(fractions, stiffness, strict=True):
            eps_N = np.linalg.solve(C[np.ix_(N, N)], sigma_N - C[np.ix_(N, T)] @ E[T])
            sigma_T += f * (C[np.ix_(T, N)] @ eps_N + C[np.ix_(T, T)] @ E[T])
        C_eff[N, k] = sigma_N
        C_eff[T, k] = sigma_T
    return C_eff


# -

# The Mandel rows of the normal components, for layers normal to the x axis (a = 0): in 2D
# (11, 22, 12) they are 11 and 12; in 3D (11, 22, 33, 23, 13, 12) they are 11, 13 and 12.

NORMAL_ROWS = {2: (0, 2), 3: (0, 4, 5)}

# ## The cells and the comparison
#
# Two layers, 40 % glass and 60 % epoxy, stacked along x. Straight interfaces need no curved
# geometry (`geometry_order=1`). Periodic boundary conditions; P2 elements (P1 would be exact
# too, since the exact displacement is piecewise linear).

# +
materials = {
    "epoxy": IsotropicElastic(3.0e9, 0.35, name="epoxy"),
    "glass": IsotropicElastic(70.0e9, 0.2, name="glass"),
}
fractions = [0.4, 0.6]
names = ["glass", "epoxy"]
E_m = materials["epoxy"].E
C_eff = {}
for dim in (2, 3):
    cell = laminate_cell(
        comm,
        dim,
        [1.0] * dim,
        fractions,
        axis=0,
        mesh_size=(0.5 if coarse else 0.25) if dim == 3 else (0.25 if coarse else 0.1),
        geometry_order=1,
        phase_names=names,
    )
    result = homogenize(cell, materials, bcs=("periodic",), degree=2)
    C_eff[dim] = result.C_eff["periodic"]
    exact = laminate_stiffness(
        fractions, [materials[p].stiffness(dim) for p in names], NORMAL_ROWS[dim]
    )
    error = np.linalg.norm(C_eff[dim] - exact) / np.linalg.norm(exact)
    if comm.rank == 0:
        print(f"\n{dim}D laminate, {result.rve.n_dofs} dofs; C_eff / E_epoxy (periodic):")
        print(np.array2string(C_eff[dim] / E_m, precision=4, suppress_small=True))
        print(f"closed form:\n{np.array2string(exact / E_m, precision=4, suppress_small=True)}")
        print(f"relative error |C_fe - C_exact| / |C_exact| = {error:.2e}")
        hm = result.responses["periodic"].hill_mandel_residual.max()
        print(f"Hill–Mandel residual {hm:.1e}")
    if error > 1e-8:
        raise RuntimeError(f"{dim}D laminate misses the closed form by {error:.2e}")
# -

# The normal stiffness C₁₁₁₁ is a harmonic-type (Reuss-like) average and much lower than the
# in-plane C₂₂₂₂, which is close to the Voigt average ⟨C⟩: the laminate is strongly
# anisotropic even though both phases are isotropic.
#
# The number the demo tests compare between serial and parallel runs: the 3D normal stiffness
# C₁₁₁₁ over the epoxy Young's modulus.

if comm.rank == 0:
    print(f"RESULT {C_eff[3][0, 0] / E_m:.15e}")
