"""The seams at work: a constitutive law and a micro model defined here, in the test, run
through ``fe2x rve-path`` and ``fe2x run`` with nothing changed in fe2x but a registry entry.

(a) A Maxwell viscoelastic law (elastic bulk, Maxwell deviator, relaxation time τ), integrated
exactly for strains piecewise linear in time. Under a strain ramp at rate r to ε₀ and a hold,
uniaxial strain gives σ₁₁ = K ε₁₁ + s₁₁ with s₁₁ = (4/3) G r τ (1 − e^{−t/τ}) on the ramp and
s₁₁(t₁) e^{−(t − t₁)/τ} in the hold: the closed form of the relaxation.

(b) An analytic micro model whose two "phases" are evaluated by the two ranks of its RVE group
(an allreduce per solve, as a distributed RVE would): Σ = ½ (C₁ + C₂) E, the Voigt average.
"""

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from mpi4py import MPI

import numpy as np
import pytest
from conftest import run_command

from fe2x.config import MATERIAL_MODELS, MICRO_MODELS, MaterialTable, MicroTable
from fe2x.config.schema import REQUIRED, option
from fe2x.materials import IsotropicElastic
from fe2x.materials.law import LawResponse
from fe2x.micro.model import Capabilities, RVEResult

_DEV = np.eye(6)
_DEV[:3, :3] -= 1.0 / 3.0  # deviatoric projector, 3D Mandel
_VOL = np.zeros((6, 6))
_VOL[:3, :3] = 1.0


class Maxwell:
    """σ = K tr(ε) 1 + s, ṡ = 2 G ė − s / τ (e = dev ε); exact for piecewise-linear ε(t)."""

    kinematics = "small"
    state_shapes: ClassVar = {"s": (6,), "eps": (6,)}
    parameter_shapes: ClassVar = {}

    def __init__(self, K: float, G: float, tau: float, name: str = "") -> None:
        self.K, self.G, self.tau, self.name = K, G, tau, name

    def initial_state(self, n):
        return {"s": np.zeros((n, 6)), "eps": np.zeros((n, 6))}

    def update(self, strain, state, dt=0.0, parameters=None):
        decay = np.exp(-dt / self.tau)
        g = 1.0 if dt == 0.0 else self.tau / dt * (1.0 - decay)
        de = (strain - state["eps"]) @ _DEV
        s = decay * state["s"] + 2.0 * self.G * g * de
        stress = self.K * (strain @ _VOL) + s
        C = self.K * _VOL + 2.0 * self.G * g * _DEV
        return LawResponse(
            stress, np.broadcast_to(C, (len(strain), 6, 6)), {"s": s, "eps": strain.copy()}
        )


@dataclass(frozen=True, kw_only=True)
class MaxwellTable(MaterialTable):
    """[materials.<phase>] model = "maxwell"."""

    TAG_VALUE: ClassVar[str] = "maxwell"
    K: float = option(REQUIRED, doc="bulk modulus")
    G: float = option(REQUIRED, doc="shear modulus")
    tau: float = option(REQUIRED, doc="relaxation time")

    def build(self, name):
        return Maxwell(self.K, self.G, self.tau, name)


K, G, TAU = 5.0e9, 1.0e9, 0.5
EPS0, T_RAMP = 0.01, 1.0


def maxwell_sigma11(t: np.ndarray) -> np.ndarray:
    """σ₁₁(t) of uniaxial strain ramped at rate ε₀/t₁ until t₁, then held."""
    r = EPS0 / T_RAMP
    ramp = 4.0 / 3.0 * G * r * TAU * (1.0 - np.exp(-np.minimum(t, T_RAMP) / TAU))
    s = ramp * np.exp(-np.maximum(t - T_RAMP, 0.0) / TAU)
    return K * EPS0 * np.minimum(t, T_RAMP) / T_RAMP + s


@pytest.fixture
def maxwell():
    MATERIAL_MODELS.register("maxwell", MaxwellTable)
    yield
    MATERIAL_MODELS.unregister("maxwell")


LAMINATE_OF_MAXWELL = """
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["a", "b"]
mesh_size = 0.5
geometry_order = 1
"""


def test_a_law_defined_here_runs_along_a_path(workdir, capsys, maxwell):
    """rve-path follows the closed-form relaxation (a homogeneous Maxwell cell, uniaxial
    strain ramped then held) at every step, to round-off."""
    law = f'model = "maxwell"\nK = {K}\nG = {G}\ntau = {TAU}\n'
    text = (
        f"[cell]\n{LAMINATE_OF_MAXWELL}\n[materials.a]\n{law}\n[materials.b]\n{law}\n"
        "[rve]\ndegree = 1\n"
        f"[path]\ntimes = [0.0, {T_RAMP}, 2.5]\nsteps = 10\nE11 = [0.0, {EPS0}, {EPS0}]\n"
    )
    code, err, out = run_command("rve-path", workdir, text, capsys)
    assert code == 0, err
    steps = json.loads((out / "path.json").read_text())["steps"]
    t = np.array([s["t"] for s in steps])
    sigma = np.array([s["S"][0] for s in steps])
    assert t[-1] == pytest.approx(2.5)
    assert np.allclose(sigma, maxwell_sigma11(t), rtol=1e-9, atol=0)
    assert sigma[-1] - K * EPS0 < 0.1 * (sigma[3] - K * EPS0)  # the deviator relaxed


def test_a_law_defined_here_runs_in_fe2(workdir, capsys, maxwell):
    """FE² of a block in uniform uniaxial strain (ux on left/right, uy = 0 on bottom and top)
    with Maxwell RVEs: the reaction follows the closed-form ramp σ₁₁(t) · height, the load
    factor being t / end_time."""
    law = f'model = "maxwell"\nK = {K}\nG = {G}\ntau = {TAU}\n'
    text = f"""
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 1.0
[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "right"
ux = {2.0 * EPS0}
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "top"
uy = 0.0
[loading]
steps = 4
end_time = {T_RAMP}
[micro.visco.cell]
{LAMINATE_OF_MAXWELL}
[micro.visco.materials.a]
{law}
[micro.visco.materials.b]
{law}
[micro.visco.rve]
degree = 1
[output]
fields = false
"""
    code, err, out = run_command("run", workdir, text, capsys)
    assert code == 0, err
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["load_factor"]) for r in rows]) * T_RAMP
    force = np.array([float(r["F_right_x"]) for r in rows])
    assert np.allclose(force, maxwell_sigma11(t) * 1.0, rtol=1e-8, atol=0)


class VoigtPair:
    """Σ = ½ (C₁ + C₂) E with phase k evaluated on rank k of the group (both on one rank)."""

    state_replicated = True

    def __init__(self, comm: MPI.Comm, phases: Mapping[int, IsotropicElastic]) -> None:
        self.comm = comm
        mine = [k for k in phases if k % comm.size == comm.rank]
        self.C_mine = sum((phases[k].stiffness(2) for k in mine), np.zeros((3, 3)))
        self.solves = 0

    def solve(self, E):
        C = self.comm.allreduce(self.C_mine, op=MPI.SUM) / 2.0
        self.solves += 1
        return RVEResult(C @ E, C, 0.0, True, "converged", 1, ())

    def commit(self):
        """No history."""

    def get_state(self):
        return None

    def set_state(self, state):
        """No history."""


@dataclass(frozen=True, kw_only=True)
class VoigtPairTable(MicroTable):
    """[micro.<name>] model = "voigt_pair": two isotropic phases averaged by strain."""

    TAG_VALUE: ClassVar[str] = "voigt_pair"
    E: tuple[float, ...] = option(REQUIRED, doc="the two Young's moduli")
    nu: tuple[float, ...] = option(REQUIRED, doc="the two Poisson ratios")

    def factory(self, ctx, name, dim):
        phases = {k: IsotropicElastic(self.E[k], self.nu[k]) for k in range(2)}
        return lambda comm: VoigtPair(comm, phases)


def test_a_micro_model_defined_here_runs_in_fe2_on_groups(workdir, capsys):
    """The analytic model in FE² on one RVE group of all ranks (2 under mpiexec -n 2): the
    block in uniform uniaxial strain has the reaction (C_voigt E)₁ · height."""
    assert not Capabilities.of(VoigtPair(MPI.COMM_SELF, {})).portable
    MICRO_MODELS.register("voigt_pair", VoigtPairTable)
    try:
        size = MPI.COMM_WORLD.size
        text = f"""
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 0.5
[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "right"
ux = 0.002
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "top"
uy = 0.0
[loading]
steps = 2
[parallel]
group_size = {size}
[micro.pair]
model = "voigt_pair"
E = [3.0e9, 70.0e9]
nu = [0.3, 0.2]
"""
        code, err, out = run_command("run", workdir, text, capsys)
    finally:
        MICRO_MODELS.unregister("voigt_pair")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["group_size"] == MPI.COMM_WORLD.size and summary["completed"]
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    C = 0.5 * (
        IsotropicElastic(3.0e9, 0.3).stiffness(2) + IsotropicElastic(70.0e9, 0.2).stiffness(2)
    )
    assert float(rows[-1]["F_right_x"]) == pytest.approx(C[0, 0] * 0.001 * 1.0, rel=1e-10)
