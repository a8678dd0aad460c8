"""FE² with polycrystal RVEs (rate-dependent crystal plasticity with hardening): the same
answer on any number of ranks and group size, and restart equal to the uninterrupted run, also
with another group size."""

import csv
import shutil
from pathlib import Path

from mpi4py import MPI

import h5py  # noqa: F401  (checkpoints: h5py must load its HDF5 before PETSc loads another)
import numpy as np
import pytest

from fe2x.cli import main
from fe2x.geometry import polycrystal_cell
from fe2x.geometry.macro import block
from fe2x.macro.fe2 import FE2Engine
from fe2x.macro.problem import DirichletSpec, MacroProblem
from fe2x.macro.stepping import run_load_steps
from fe2x.materials.crystal import CrystalPlasticity
from fe2x.materials.orientations import random_orientations
from fe2x.parallel.layout import split_groups

COPPER = CrystalPlasticity(
    168.4e9, 121.4e9, 75.4e9, xi0=31.0e6, n=20.0, h0=75.0e6, xi_inf=63.0e6, a=2.25
)
STRAIN, END_TIME = 0.004, 4.0  # the reference rate γ̇₀ = 1e-3 /s
LENGTHS = (1.0, 0.5)


def rve_factory(comm):
    from fe2x.micro.nonlinear import NonlinearRVE

    R = random_orientations(4, 3)
    cell = polycrystal_cell(comm, 2, [1.0, 1.0], 4, 6, 1, grain_data={"orientation": R})
    return NonlinearRVE(cell, {"grains": COPPER}, degree=1)


def run(comm, group_size=1, balance=True, steps=4):
    """Reaction force on the right face after each step of a block stretched along x."""
    specimen = block(comm, 2, LENGTHS, 1.0)
    b = specimen.boundaries
    problem = MacroProblem(
        specimen.mesh,
        specimen.facet_tags,
        2,
        dirichlet=[
            DirichletSpec(b["left"], 0, 0.0),
            DirichletSpec(b["right"], 0, STRAIN * LENGTHS[0]),
            DirichletSpec(b["bottom"], 1, 0.0),
        ],
    )
    layout = split_groups(comm, group_size)
    engine = FE2Engine(
        problem,
        layout,
        ["rve"] * problem.n_points,
        {"rve": rve_factory},
        balance,
        end_time=END_TIME,
    )
    forces = []

    def record(number, step, cutbacks, increment):
        forces.append(problem.reactions(b["right"])[0])

    result = run_load_steps(engine.step, steps, before_step=engine.rebalance, after_step=record)
    assert result.completed, result.message
    layout.free()
    return np.array(forces)


@pytest.fixture(scope="module")
def reference_forces():
    """Everything on each single rank (COMM_SELF)."""
    return run(MPI.COMM_SELF)


def test_the_run_is_plastic(reference_forces):
    """Past yield the force grows far slower than elastically (the grains slip)."""
    increments = np.diff(np.concatenate([[0.0], reference_forces]))
    assert increments[-1] < 0.3 * increments[0]


@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("balance", [True, False])
def test_same_answer_on_any_ranks_and_group_size(reference_forces, group_size, balance):
    comm = MPI.COMM_WORLD
    if comm.size % group_size:
        pytest.skip(f"group size {group_size} needs a multiple of {group_size} ranks")
    forces = run(comm, group_size, balance)
    assert np.allclose(forces, reference_forces, rtol=1e-8)


CONFIG = """
[macro]
shape = "block"
dim = 2
lengths = [1.0, 0.5]
mesh_size = 1.0

[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "right"
ux = 0.004

[loading]
steps = 4
end_time = 4.0

[checkpoint]
every_steps = 1

[micro.copper]
[micro.copper.cell]
type = "polycrystal"
dim = 2
n_grains = 4
resolution = 6
seed = 1
[micro.copper.materials.grains]
model = "crystal"
[micro.copper.rve]
degree = 1
"""


def history(directory: Path) -> dict[str, np.ndarray]:
    with (directory / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    if a.keys() != b.keys() or len(a["step"]) != len(b["step"]):
        return False
    force = max(np.abs(v).max() for k, v in a.items() if k.startswith("F_"))
    return all(
        np.allclose(a[k], b[k], rtol=0, atol=1e-8 * (force if k.startswith("F_") else 1.0))
        for k in a
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    """The config and a complete run with a checkpoint after every step (the last one is of
    step 3: a finished run writes none)."""
    comm = MPI.COMM_WORLD
    work = Path(comm.bcast(tmp_path_factory.mktemp("poly_ckpt") if comm.rank == 0 else None))
    config = work / "cfg.toml"
    if comm.rank == 0:
        config.write_text(CONFIG)
    comm.barrier()
    assert main(["run", str(config), "--out", str(work / "full"), "--quiet"]) == 0
    return config, work / "full"


def copy_run(source: Path, target: Path) -> None:
    if MPI.COMM_WORLD.rank == 0:
        shutil.copytree(source, target)
    MPI.COMM_WORLD.barrier()


def test_restart_equals_the_uninterrupted_run(uninterrupted):
    """Continuing after step 3 recomputes step 4 from the checkpointed crystal states (slip
    resistances, slip, slip rates, plastic strain) exactly; the grains are written per
    microstructure."""
    config, full = uninterrupted
    again = full.parent / "again"
    copy_run(full, again)
    assert main(["run", str(config), "--restart", str(again), "--quiet"]) == 0
    assert same(history(again), history(full))
    h = history(full)
    forces = h[next(k for k in h if k.startswith("F_"))]
    assert np.abs(np.diff(forces))[-1] < 0.3 * abs(forces[0])  # plastic
    assert (full / "copper_grains.csv").is_file() and (full / "copper_pole_figures.png").is_file()


def test_restart_with_another_group_size(uninterrupted):
    """The crystal states move between partitions of the RVE mesh: a checkpoint of one-rank
    RVEs continues with two-rank RVEs, with the uninterrupted history."""
    comm = MPI.COMM_WORLD
    if comm.size % 2:
        pytest.skip("RVE groups of 2 ranks need an even number of ranks")
    _, full = uninterrupted
    grouped = full.parent / "grouped.toml"
    if comm.rank == 0:
        grouped.write_text(CONFIG + "\n[parallel]\ngroup_size = 2\n")
    comm.barrier()
    widened = full.parent / "widened"
    copy_run(full, widened)
    assert main(["run", str(grouped), "--restart", str(widened), "--quiet"]) == 0
    assert same(history(widened), history(full))
