"""Mixed microstructures: an RVE region beside a homogeneous elastic region that needs none."""

import csv
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from test_macro_geometry import write_on_root

from fe2x.config import read_run_config
from fe2x.geometry import laminate_cell
from fe2x.geometry.macro import read_macro
from fe2x.jobs import run_fe2
from fe2x.macro.diagnostics import point_regions
from fe2x.macro.problem import DirichletSpec, MacroProblem
from fe2x.materials import IsotropicElastic
from fe2x.micro.linear import LinearRVE

CONFIG = """
[macro]
shape = "file"
dim = 2
path = "{mesh}"

[[boundary]]
name = "clamp"
ux = 0.0
uy = 0.0
[[boundary]]
name = "pull"
ux = 0.01

[loading]
steps = 1

[micro.composite]
regions = ["soft"]
[micro.composite.cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["a", "b"]
mesh_size = 0.5
geometry_order = 1
[micro.composite.materials.a]
E = 3.0e9
nu = 0.3
[micro.composite.materials.b]
E = 70.0e9
nu = 0.2
[micro.composite.rve]
degree = 1

[micro.steel]
regions = ["stiff"]
model = "elastic"
E = 200.0e9
nu = 0.3
"""


def test_rve_region_beside_an_elastic_region(tmp_path_factory):
    """FE² equals a macro elastic solve with C_eff of the RVE in one half, steel in the other."""
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("mixed") if comm.rank == 0 else None))
    mesh_file = write_on_root(comm, work / "halves.msh", regions=True, boundaries=True)
    config_file = work / "mixed.toml"
    if comm.rank == 0:
        config_file.write_text(CONFIG.format(mesh=mesh_file.name))
    comm.barrier()
    run_fe2(read_run_config(config_file), work / "out", comm)
    with (work / "out" / "history.csv").open() as f:
        force = float(list(csv.DictReader(f))[-1]["F_pull_x"])

    layers = {"a": IsotropicElastic(3.0e9, 0.3), "b": IsotropicElastic(70.0e9, 0.2)}
    cell = laminate_cell(
        comm, 2, [1.0, 1.0], [0.5, 0.5], 0, 0.5, geometry_order=1, phase_names=["a", "b"]
    )
    stiffness = {name: m.stiffness(2) for name, m in layers.items()}
    C_eff = LinearRVE(cell, stiffness, degree=1).solve_unit_strains("periodic").C_eff
    C_steel = IsotropicElastic(200.0e9, 0.3).stiffness(2)
    specimen = read_macro(comm, mesh_file)
    b = specimen.boundaries
    problem = MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        2,
        dirichlet=[DirichletSpec(b["clamp"]), DirichletSpec(b["pull"], 0, 0.01)],
    )
    regions = point_regions(problem, specimen.cell_tags)
    C = np.where((regions == specimen.regions["soft"])[:, None, None], C_eff, C_steel)

    def by_region(E):
        return np.einsum("pij,pj->pi", C, E), C.copy(), True

    assert problem.solve_step(1.0, by_region).converged
    expected = problem.reactions(b["pull"])[0]
    assert force == pytest.approx(expected, rel=1e-8)
    # Not a trivial agreement: the two regions really differ.
    assert np.linalg.norm(C_eff - C_steel) > 0.5 * np.linalg.norm(C_steel)
