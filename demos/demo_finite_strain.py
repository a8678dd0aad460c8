# # A porous elastomer at finite strain: where the first-order RVE breaks down
#
# A sheet of rubber with a square array of circular holes, compressed, suddenly changes its
# pattern: past a critical strain the ligaments between the holes buckle, and the holes turn
# into ellipses alternately horizontal and vertical (Mullin, Deschanel, Bertoldi & Boyce,
# Phys. Rev. Lett. 99, 2007). The buckled pattern repeats over *two* holes in each direction,
# so a periodic cell of one hole cannot show it, and a first-order homogenized material whose
# RVE is a cell of two by two holes answers differently from one whose RVE holds a single hole:
# the homogenized response has lost its meaning, since it depends on the cell. fe2x watches
# for this with the micro-instability diagnostic `micro_stability`, the lowest eigenvalue of
# the RVE's reduced Jacobian (the second variation of the cell's energy over its periodic
# fluctuations) relative to its value in the undeformed cell: it falls to 0 where a
# fluctuation mode costs no energy, the bifurcation.
#
# The demo
#
# - meshes periodic cells of one and of two by two holes (porosity 0.45) in a compressible
#   Neo-Hookean elastomer, with gmsh and {py:func}`fe2x.geometry.read_cell`;
# - drives both along uniaxial compression, F̄22 decreasing with P̄11 = 0 and F̄12 = F̄21 = 0
#   (a path in (F̄, P̄) must fix the rigid rotation: P̄(Q F̄) = Q P̄(F̄)), with
#   {py:func}`fe2x.micro.path.drive`, the engine of `fe2x rve-path`;
# - finds the first step where `micro_stability` <= 0 and shows the instability mode, the
#   buckled micro field (the eigenvector of the lowest eigenvalue);
# - runs a small finite-strain FE² specimen with `[macro] kinematics = "finite"` whose RVE is
#   the two-by-two cell, below the critical strain, through {py:func}`fe2x.jobs.run_fe2`.
#
# `--coarse` (or `FE2X_DEMO_COARSE=1`) uses coarser meshes and fewer steps; `--out DIR` (or
# `FE2X_DEMO_OUT`) chooses where the results go (default `results/demos`).

# +
import argparse
import csv
import json
import os
from pathlib import Path

from mpi4py import MPI

import numpy as np

from fe2x.config import read_run_config
from fe2x.geometry import read_cell
from fe2x.io.fields import write_micro_fields
from fe2x.jobs import run_fe2
from fe2x.materials.hyperelastic import NeoHookean
from fe2x.micro.nonlinear import STABILITY, NonlinearRVE
from fe2x.micro.path import LoadPath, drive

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--coarse", action="store_true", help="coarse meshes, few steps (tests)")
parser.add_argument("--out", default=os.environ.get("FE2X_DEMO_OUT", "results/demos"))
args, _ = parser.parse_known_args()
coarse = args.coarse or os.environ.get("FE2X_DEMO_COARSE", "0") not in ("", "0")
comm = MPI.COMM_WORLD
out = Path(args.out) / "finite_strain"
if comm.rank == 0:
    out.mkdir(parents=True, exist_ok=True)
comm.barrier()
POROSITY = 0.45
ELASTOMER = NeoHookean(1.0, 0.4, "elastomer")  # E = 1 (units of stress), ν = 0.4
MESH_SIZE = 0.2 if coarse else 0.07
# -

# ## Periodic cells with holes
#
# Holes are voids: the mesh covers the elastomer only. Each hole has radius
# r = √(0.45 / π) ≈ 0.38 in a unit square per hole, so the ligaments are 0.24 wide. gmsh's
# `setPeriodic` makes the right and top edges' meshes copies of the left and bottom ones,
# which the periodic boundary condition needs (a corner, here in the elastomer, is pinned
# against translation).


# +
def holey_cell(n: int) -> Path:
    """A periodic square of n × n unit cells with one centred hole each, meshed on rank 0."""
    path = out / f"holes_{n}x{n}.msh"
    if comm.rank == 0:
        import gmsh

        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        radius = np.sqrt(POROSITY / np.pi)
        box = gmsh.model.occ.addRectangle(0.0, 0.0, 0.0, n, n)
        holes = [
            (2, gmsh.model.occ.addDisk(i + 0.5, j + 0.5, 0.0, radius, radius))
            for i in range(n)
            for j in range(n)
        ]
        gmsh.model.occ.cut([(2, box)], holes)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [t for _, t in gmsh.model.getEntities(2)], 1, "elastomer")

        def edges(axis: int, value: float) -> list[int]:
            found = []
            for _, tag in gmsh.model.getEntities(1):
                box = gmsh.model.getBoundingBox(1, tag)
                if abs(box[axis] - value) < 1e-9 and abs(box[axis + 3] - value) < 1e-9:
                    found.append(tag)
            return found

        for axis in (0, 1):
            shift = np.eye(4)
            shift[axis, 3] = n
            gmsh.model.mesh.setPeriodic(1, edges(axis, n), edges(axis, 0.0), shift.ravel().tolist())
        gmsh.option.setNumber("Mesh.MeshSizeMax", MESH_SIZE)
        gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
        gmsh.finalize()
    comm.barrier()
    return path


cells = {n: read_cell(comm, holey_cell(n)) for n in (1, 2)}
# -

# ## Uniaxial compression of the two cells
#
# The deformation gradient is row-major (F11, F12, F21, F22); F̄22 goes from 1 to 0.86 in
# equal steps, P̄11 = 0 lets the cell expand or contract laterally, and F̄12 = F̄21 = 0 fix the
# rotation. Each step reports P̄ and `micro_stability`, whose computation costs one
# shift-and-invert eigen-solve (SLEPc) with the factorization of the shifted Jacobian.

# +
steps = 7 if coarse else 28
values = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.86]])  # P11, F12, F21, F22
path = LoadPath(
    np.array([0.0, 1.0]), values, np.array([True, False, False, False]), steps, "finite"
)
curves, first_unstable, modes = {}, {}, {}
for n, cell in cells.items():
    rve = NonlinearRVE(cell, {"elastomer": ELASTOMER}, degree=2)
    rows = []

    def record(index, step, rve=rve, rows=rows, n=n):
        rows.append((step.E[3], step.E[0], step.Sigma[3], step.diagnostics[STABILITY]))
        if step.diagnostics[STABILITY] <= 0.0 and n not in first_unstable:
            first_unstable[n] = index
            modes[n] = (rve.displacement(), rve.instability_mode()[1])

    result = drive(rve, path, 0.01, rtol=1e-10, on_step=record)
    assert result.completed, result.message
    curves[n] = np.array(rows)
    if comm.rank == 0:
        print(f"{n}x{n} cell: {rve.n_dofs} dofs")
        for F22, F11, P22, stable in curves[n]:
            print(f"  F22 {F22:.4f}  F11 {F11:.4f}  P22 {P22:+.5f}  {STABILITY} {stable:+.4f}")
# -

# The one-hole cell stays stable over the whole path: its periodic fluctuations cannot take
# the alternating pattern. The two-by-two cell loses stability at about 11 % compression; the
# homogenized stress of the two cells is the same up to there (the fundamental, symmetric
# solution is the same; the two meshes differ, hence agreement to the discretization error
# only), so nothing but the eigenvalue tells that the first-order RVE is about to become
# meaningless.

# +
critical = first_unstable.get(2)
assert critical is not None, "the 2x2 cell did not buckle along the path"
assert 1 not in first_unstable, "the one-hole cell cannot buckle into the 2x2 pattern"
F22_critical = curves[2][critical, 0]
P22_critical = curves[2][critical, 2]
assert np.allclose(curves[1][: critical + 1, 2], curves[2][: critical + 1, 2], rtol=5e-3)
if comm.rank == 0:
    print(f"micro instability of the 2x2 cell at step {critical + 1}: F22 = {F22_critical:.4f}")
u, mode = modes[2]
write_micro_fields({"u": u, "instability_mode": mode}, out / "buckling_mode.bp")
# -

# ## A figure
#
# Nominal stress against stretch for both cells, the stability diagnostic, and the deformed
# two-by-two cell at the critical step with its instability mode added (a tenth of a hole
# spacing at most; colour: the mode's magnitude): the holes turn into alternating ellipses.

# +
V = u.function_space
owned = V.dofmap.index_map.size_local
pieces = comm.gather(  # the P2 nodes of every rank, their displacement and mode
    [
        V.tabulate_dof_coordinates()[:owned, :2],
        u.x.array.reshape(-1, 2)[:owned],
        mode.x.array.reshape(-1, 2)[:owned],
    ],
    root=0,
)
if comm.rank == 0:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, u_all, mode_all = (np.vstack(p) for p in zip(*pieces, strict=True))
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4))
    for n, c in curves.items():
        ax1.plot(c[:, 0], -c[:, 2], "o-", ms=3, label=f"{n}×{n} holes")
        ax2.plot(c[:, 0], c[:, 3], "o-", ms=3, label=f"{n}×{n} holes")
    ax1.set_xlabel("F̄22")
    ax1.set_ylabel("−P̄22 / E")
    ax1.invert_xaxis()
    ax1.legend()
    ax2.axhline(0.0, color="k", lw=0.8)
    ax2.axvline(F22_critical, color="r", lw=0.8, ls="--")
    ax2.set_xlabel("F̄22")
    ax2.set_ylabel(STABILITY)
    ax2.invert_xaxis()
    ax2.legend()
    from matplotlib.tri import Triangulation

    reference = Triangulation(x[:, 0], x[:, 1])  # Delaunay of the nodes; drop the holes
    centres = np.array([[i + 0.5, j + 0.5] for i in range(2) for j in range(2)])
    middle = x[reference.triangles].mean(axis=1)
    in_hole = np.linalg.norm(middle[:, None] - centres[None], axis=2).min(axis=1) < np.sqrt(
        POROSITY / np.pi
    )
    deformed = x + u_all + 0.1 * mode_all
    shape = Triangulation(deformed[:, 0], deformed[:, 1], reference.triangles, mask=in_hole)
    ax3.tripcolor(shape, np.linalg.norm(mode_all, axis=1), shading="gouraud", cmap="viridis")
    ax3.set_aspect("equal")
    ax3.set_title(f"instability mode at F̄22 = {F22_critical:.3f}")
    fig.tight_layout()
    fig.savefig(out / "finite_strain.png", dpi=120)
    print(f"wrote {out / 'finite_strain.png'}")
# -

# ## A finite-strain FE² specimen
#
# A 2 × 1 block of the porous elastomer, clamped at the bottom and pressed down at the top
# by 6 % of its height (below the critical strain of the cell), with the top held against
# sliding: the total Lagrangian macro problem (`[macro] kinematics = "finite"`) asks every
# quadrature point's two-by-two RVE for P̄ and dP̄/dF̄, and reports the smallest
# `micro_stability` of each step in `summary.json`. The config is written beside the results,
# so `fe2x run` can repeat the run.

# +
config = out / "fe2.toml"
if comm.rank == 0:
    config.write_text(
        f"""
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = {0.5 if coarse else 0.25}
kinematics = "finite"

[[boundary]]
name = "bottom"
ux = 0.0
uy = 0.0
[[boundary]]
name = "top"
ux = 0.0
uy = -0.06

[loading]
steps = {2 if coarse else 4}

[output]
fields = false

[micro.porous]
[micro.porous.cell]
type = "file"
path = "holes_2x2.msh"
[micro.porous.materials.elastomer]
model = "neo_hookean"
E = 1.0
nu = 0.4
[micro.porous.rve]
degree = 2
"""
    )
comm.barrier()
run_fe2(read_run_config(config), out / "fe2", comm)
summary = json.loads((out / "fe2" / "summary.json").read_text())
last = summary["steps"][-1]
with (out / "fe2" / "history.csv").open() as f:
    force = float(list(csv.DictReader(f))[-1]["F_top_y"])
if comm.rank == 0:
    print(
        f"FE²: {summary['macro_points']} macro points, top force {force:.6e}, smallest "
        f"{STABILITY} {last['min_micro_stability']:.4f}, unstable points "
        f"{last['micro_unstable_points']}"
    )
# -

# The number printed last, the nominal force on the top of the FE² specimen, is checked by
# the test suite to agree between serial and parallel runs.

if comm.rank == 0:
    print(f"RESULT {force:.15e}")
