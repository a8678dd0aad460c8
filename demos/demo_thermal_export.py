# # A fibre composite as an Abaqus material: stiffness, conductivity and thermal expansion
#
# Unidirectional glass fibres (E = 72 GPa, ν = 0.22, k = 1.1 W/(m K), α = 5·10⁻⁶ /K) in epoxy
# (E = 3.5 GPa, ν = 0.35, k = 0.2 W/(m K), α = 60·10⁻⁶ /K), fibre volume fraction 0.4, fibres
# along z in a square array. This demo
#
# - meshes the periodic cell with gmsh as any other tool would, writes it to a `.msh` file and
#   reads it back with {py:func}`fe2x.geometry.read_cell` (`.inp`, `.vtu` and `.xdmf` files
#   work the same way);
# - computes the effective stiffness C_eff and, from one extra solve, the effective thermal
#   expansion α_eff, and checks α_eff against Levin's exact relation;
# - computes the full effective conductivity k_eff and checks it against the rule of mixtures
#   along the fibres and the Hashin–Shtrikman bounds across them;
# - writes the three as one Abaqus `*MATERIAL` card and explains how to use it.
#
# The command-line equivalent is `fe2x homogenize` with `[cell] type = "file"`,
# `[homogenize] physics = ["thermoelasticity", "conduction"]` and `--export abaqus`.
# Run it serially or in parallel; `--coarse` (or `FE2X_DEMO_COARSE=1`) uses a coarser mesh,
# `--out DIR` (or `FE2X_DEMO_OUT`) chooses where the mesh and the card go:
#
# ```sh
# python demos/demo_thermal_export.py
# mpiexec -n 2 python demos/demo_thermal_export.py --coarse
# ```

# +
import argparse
import os
from pathlib import Path

from mpi4py import MPI

import gmsh
import numpy as np

from fe2x.geometry import read_cell
from fe2x.io.material_cards import material_card, write_material_card
from fe2x.materials import IsotropicElastic
from fe2x.materials.bounds import hashin_shtrikman_conductivity
from fe2x.materials.engineering import engineering_constants, orthotropy_defect
from fe2x.materials.thermoelastic import levin_expansion
from fe2x.micro.homogenization import homogenize, homogenize_conduction

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse mesh (for tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
out = Path(args.out)
# -

# ## The cell, meshed elsewhere
#
# A unit square cross-section with one fibre of radius r = √(0.4/π) in its middle, extruded
# along z to a depth of 0.5 (the fields do not vary along the fibres, so the depth only sets
# the mesh). The mesh must be periodic: the mesh of each upper face is a translated copy of
# the lower one, which gmsh's `setPeriodic` does. fe2x checks it on reading.

# +
volume_fraction, depth = 0.4, 0.5
mesh_size = 0.25 if coarse else 0.1
mesh_file = out / "fibre_cell.msh"


def write_fibre_cell(path: Path) -> None:
    """The periodic cell as a second-order gmsh mesh, phases as physical groups."""
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    occ = gmsh.model.occ
    box = occ.addBox(0, 0, 0, 1, 1, depth)
    fibre = occ.addCylinder(0.5, 0.5, 0, 0, 0, depth, np.sqrt(volume_fraction / np.pi))
    _, pieces = occ.fragment([(3, box)], [(3, fibre)])
    occ.synchronize()
    fibres = [t for _, t in pieces[1]]
    gmsh.model.addPhysicalGroup(3, [t for _, t in pieces[0] if t not in fibres], 1, "epoxy")
    gmsh.model.addPhysicalGroup(3, fibres, 2, "glass")
    lengths, eps = np.array([1.0, 1.0, depth]), 1e-6
    for axis in range(3):  # each upper face piece follows its lower twin
        shift = np.eye(4)
        shift[axis, 3] = lengths[axis]
        low = np.r_[-eps, -eps, -eps, lengths + eps]
        low[3 + axis] = eps
        for _, lower in gmsh.model.getEntitiesInBoundingBox(*low, 2):
            target = np.array(gmsh.model.getBoundingBox(2, lower))
            target[[axis, 3 + axis]] += lengths[axis]
            inside = gmsh.model.getEntitiesInBoundingBox(
                *(target[:3] - eps), *(target[3:] + eps), 2
            )
            twin = min(inside, key=lambda e: np.abs(gmsh.model.getBoundingBox(*e) - target).max())
            gmsh.model.mesh.setPeriodic(2, [twin[1]], [lower], shift.ravel().tolist())
    gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.HighOrderPeriodic", 2)
    gmsh.model.mesh.generate(3)
    gmsh.model.mesh.setOrder(2)
    gmsh.write(str(path))
    gmsh.finalize()


if comm.rank == 0:
    out.mkdir(parents=True, exist_ok=True)
    write_fibre_cell(mesh_file)
comm.barrier()
cell = read_cell(comm, mesh_file)
# -

# ## Stiffness and thermal expansion
#
# With the phase expansions given, {py:func}`fe2x.micro.homogenization.homogenize` solves, for
# each boundary condition, the six unit strains and one more load case with the same
# factorization: the eigenstrain ε* = α ΔT at ΔT = 1 with zero macro strain. Its mean stress is
# the thermal stress Σ_th, and since Σ = C_eff (E − α_eff ΔT), the effective expansion is
# α_eff = −C_eff⁻¹ Σ_th (Mandel vectors: 11, 22, 33, 23, 13, 12, √2 on the shears).
#
# Levin's relation is exact for any two-phase composite of isotropic phases:
# α_eff = ⟨α⟩ I + (α₁ − α₂)/(1/K₁ − 1/K₂) (3 S_eff : I − ⟨1/K⟩ I) with S_eff = C_eff⁻¹. It
# links the eigenstrain solve to the unit-strain solves, so the two must agree to solver
# precision, whatever the mesh.

# +
epoxy, glass = IsotropicElastic(3.5e9, 0.35, "epoxy"), IsotropicElastic(72e9, 0.22, "glass")
alpha = {"epoxy": 60e-6, "glass": 5e-6}
conductivity = {"epoxy": 0.2, "glass": 1.1}
elastic = homogenize(
    cell, {"epoxy": epoxy, "glass": glass}, bcs=("periodic",), degree=2, expansion=alpha
)
response = elastic.responses["periodic"]
C_eff, alpha_eff = response.C_eff, response.alpha_eff
f = elastic.rve.volume_fractions
levin = levin_expansion(C_eff, [f["epoxy"], f["glass"]], [epoxy, glass], list(alpha.values()))
levin_defect = np.abs(alpha_eff - levin).max() / np.abs(levin).max()
if comm.rank == 0:
    print(f"{elastic.rve.n_dofs} dofs, volume fractions {f}")
    print("C_eff [GPa], Mandel 11 22 33 23 13 12:")
    print(np.array2string(C_eff / 1e9, precision=3, suppress_small=True))
    print("alpha_eff [1e-6/K]:", np.array2string(alpha_eff / 1e-6, precision=4))
    print(f"Levin's relation holds to {levin_defect:.1e} (relative)")
# -

# The square array is orthotropic in the cell axes (tetragonal, in fact) up to the mesh's
# small asymmetries, so the engineering constants exist; along the fibres the Young's modulus
# is close to the rule of mixtures, across them the epoxy dominates.

# +
defect, _ = orthotropy_defect(C_eff)
constants = engineering_constants(C_eff, tol=max(1e-3, 2 * defect))
if comm.rank == 0:
    print(f"orthotropy defect {defect:.1e}")
    print(
        f"E1 = {constants.E1 / 1e9:.3f} GPa, E3 (fibres) = {constants.E3 / 1e9:.3f} GPa "
        f"(rule of mixtures {(f['epoxy'] * epoxy.E + f['glass'] * glass.E) / 1e9:.3f}), "
        f"nu31 = {constants.nu31:.4f}, G13 = {constants.G13 / 1e9:.3f} GPa"
    )
# -

# ## Conductivity
#
# The temperature is θ = G·(y − y_c) + θ̃ with a periodic θ̃, one solve per unit macro
# gradient; with Fourier's law q = −k ∇θ the result is reported so that Q = ⟨q⟩ = −k_eff G.
# Along the fibres every phase carries the same gradient, so k₃₃ is exactly the arithmetic
# mean; across them k₁₁ = k₂₂ lies between the 2D Hashin–Shtrikman bounds.

# +
conduction = homogenize_conduction(cell, conductivity, bcs=("periodic",), degree=2)
k_eff = conduction.k_eff["periodic"]
arithmetic = f["epoxy"] * 0.2 + f["glass"] * 1.1
hs = hashin_shtrikman_conductivity([f["epoxy"], f["glass"]], [0.2, 1.1], 2)
if comm.rank == 0:
    print("k_eff [W/(m K)]:")
    print(np.array2string(k_eff, precision=5, suppress_small=True))
    print(f"k33 - arithmetic mean = {k_eff[2, 2] - arithmetic:.1e}")
    print(f"HS (transverse) {hs[0]:.5f} <= k11 = {k_eff[0, 0]:.5f} <= {hs[1]:.5f}")
# -

# ## The Abaqus material
#
# {py:func}`fe2x.io.material_cards.write_material_card` writes C_eff as the 21 constants of
# `*ELASTIC, TYPE=ANISO` (Voigt order 11, 22, 33, 12, 13, 23 with engineering shear strains,
# converted from Mandel), k_eff as `*CONDUCTIVITY, TYPE=ANISO` and α_eff as
# `*EXPANSION, TYPE=ANISO` (tensor components). The same card comes out of
# `fe2x homogenize ... --export abaqus` as `DIR/abaqus.inp`.
#
# To use it in an Abaqus model:
#
# - `*INCLUDE, INPUT=fibre_composite.inp` in the model data puts the `*MATERIAL` in the deck;
#   the section refers to it by name, `*SOLID SECTION, ELSET=PLY, MATERIAL=GLASS_EPOXY_UD,
#   ORIENTATION=FIBRES`.
# - The constants are in the cell axes: 3 is the fibre direction. An `*ORIENTATION,
#   NAME=FIBRES` that maps local 3 onto the fibres of the part is needed whenever they are not
#   along the global z axis.
# - Units are those of the inputs: here Pa, W/(m K) and 1/K, so lengths in m.
# - The expansion acts from the reference temperature (`ZERO=` on `*EXPANSION`, default 0) and
#   needs a temperature field (`*INITIAL CONDITIONS, TYPE=TEMPERATURE` and a temperature load,
#   or a coupled temperature–displacement step, which also uses the conductivity). A dynamic
#   step also needs a `*DENSITY` (the `density` argument, or `[export] density`).

# +
card = out / "fibre_composite.inp"
options = {"conductivity": k_eff, "expansion": alpha_eff, "name": "GLASS_EPOXY_UD"}
write_material_card(comm, card, "abaqus", C_eff, **options)
if comm.rank == 0:
    print(material_card("abaqus", C_eff, **options))
    print(f"wrote {card}")
# -

# The number the demo tests compare between serial and parallel runs: the transverse
# effective conductivity over the epoxy's.

if comm.rank == 0:
    print(f"RESULT {k_eff[0, 0] / 0.2:.15e}")
