"""Config files as data: every table validated from its declaration, one-line errors naming the
file, the key path, the value and what is allowed; reading imports no DOLFINx or PETSc."""

import subprocess
import sys
from pathlib import Path

from mpi4py import MPI

import pytest

from fe2x.config import (
    read_homogenization_config,
    read_run_config,
    read_rve_path_config,
)
from fe2x.errors import ConfigError

DEMOS = Path(__file__).parents[1] / "demos"

HOMOGENIZE = """
[cell]
type = "inclusion"
volume_fraction = 0.3
[materials.matrix]
E = 3.0e9
nu = 0.35
[materials.inclusion]
E = 70.0e9
nu = 0.2
"""

RUN = """
[macro]
shape = "block"
lengths = [2.0, 1.0]
[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "right"
ux = 0.01
[micro.m]
model = "elastic"
E = 1.0
nu = 0.3
"""


def read(reader, tmp_path: Path, text: str):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return reader(path)


def fails(reader, tmp_path: Path, text: str, pattern: str) -> str:
    with pytest.raises(ConfigError, match=pattern) as error:
        read(reader, tmp_path, text)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "cfg.toml")), message
    return message


def test_defaults_come_from_the_declaration(tmp_path):
    config = read(read_homogenization_config, tmp_path, HOMOGENIZE)
    assert config.cell.dim == 2 and config.cell.lengths == (1.0, 1.0)
    assert config.cell.mesh_size == 0.1 and config.cell.geometry_order == 2
    assert config.homogenize.bcs == ("periodic", "kubc", "subc")
    assert config.homogenize.solver == "auto" and dict(config.homogenize.petsc_options) == {}
    run = read(read_run_config, tmp_path, RUN)
    assert (run.steps, run.max_cutbacks, run.group_size, run.end_time) == (10, 5, 1, 1.0)
    assert run.micro["m"].model == "elastic" and run.boundaries[1].displacement == {0: 0.01}


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (("dim = 2", 'dim = "2"'), r"\[cell\] dim = '2': expected 2 or 3"),
        (("volume_fraction = 0.3", "volume_fraction = true"), r"volume_fraction = True"),
        (("volume_fraction = 0.3", "volume_fraction = nan"), r"volume_fraction = nan"),
        (("E = 3.0e9", "E = inf"), r"E = inf"),
        (("E = 3.0e9", "E = [3.0e9]"), r"\[materials.matrix\] E = \[3000000000.0\]"),
        (
            ("volume_fraction = 0.3", "volume_fraction = 0.3\nradius = 0.1"),
            r"unknown key 'radius' for 'inclusion'",
        ),
        (("[cell]", "[cell]\nmodel = 1"), r"unknown key 'model'"),
        (('type = "inclusion"', 'type = "sphere"'), r"type = 'sphere': expected inclusion \|"),
        (
            ("nu = 0.35", 'model = "plastic"\nnu = 0.35'),
            r"model = 'plastic': expected elastic \| j2",
        ),
        (("nu = 0.35", "nu = 0.35\nC_mandel = [[1.0]]"), r"either E and nu .* or C_mandel"),
        (("nu = 0.35", "C_mandel = 1.0"), r"C_mandel = 1.0: expected a 6x6 array"),
    ],
)
def test_bad_values_name_file_key_value_and_what_is_allowed(tmp_path, edit, pattern):
    text = HOMOGENIZE.replace(*edit, 1)
    if "dim = " in edit[1]:
        text = text.replace('type = "inclusion"', 'type = "inclusion"\ndim = 2').replace(*edit, 1)
    fails(read_homogenization_config, tmp_path, text, pattern)


def test_a_plastic_law_is_refused_where_only_linear_ones_apply(tmp_path):
    text = HOMOGENIZE.replace("nu = 0.35", 'nu = 0.35\nmodel = "j2"\nsigma_y = 1.0e7')
    fails(read_homogenization_config, tmp_path, text, r"model = 'j2' is not linear elastic")


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ('[[boundary]]\nname = "left"\nuy = 0.0\n', r"'left' is given twice"),
        ('[[boundary]]\nname = "top"\nuy = 0.0\ntraction = [0.0, 1.0]\n', r"uy and a traction"),
        ('[[boundary]]\nname = "top"\nuz = 0.0\n', r"uz does not apply to a 2D"),
        ('[[boundary]]\nname = "top"\ntraction = [0.0, 1.0, 2.0]\n', r"expected a list of 2"),
        ("[output]\nmicro_points = [[1.0, nan]]\n", r"micro_points = \[\[1.0, nan\]\]"),
        ("[output]\nmicro_points = [[1.0]]\n", r"points with 2 coordinates"),
        ("[output]\nmicro_steps = [true]\n", r"micro_steps = \[True\]"),
        ("[loading]\nsteps = 0\n", r"\[loading\] steps = 0: expected a positive integer"),
        ("[loading]\nsteps = 2.0\n", r"steps = 2.0: expected a positive integer"),
        ("[parallel]\nbalance = 1\n", r"\[parallel\] balance = 1: expected true or false"),
        ("[micro.m.cell]\ntype = 'inclusion'\n", r"unknown key 'cell' for 'elastic'"),
    ],
)
def test_contradictory_or_meaningless_run_input_is_refused(tmp_path, extra, pattern):
    fails(read_run_config, tmp_path, RUN + extra, pattern)


def test_a_region_is_claimed_once(tmp_path):
    text = RUN.replace("[micro.m]", '[micro.m]\nregions = ["body"]') + (
        '[micro.n]\nmodel = "elastic"\nE = 2.0\nnu = 0.3\nregions = ["body"]\n'
    )
    fails(
        read_run_config, tmp_path, text, r"region 'body' is claimed by \[micro.m\] and \[micro.n\]"
    )


def test_a_path_needs_its_components_once(tmp_path):
    base = HOMOGENIZE.replace("[cell]", "[cell]") + "[path]\nsteps = 2\n"
    assert read(read_rve_path_config, tmp_path, base + "E11 = 0.01\n").load.steps == 2
    fails(read_rve_path_config, tmp_path, base + "E11 = 0.01\nS11 = 0.0\n", "both given")
    fails(read_rve_path_config, tmp_path, base + "E33 = 0.01\n", "unknown key 'E33' for a 2D")
    fails(read_rve_path_config, tmp_path, base + "E11 = [0.0, nan]\n", r"E11 = \[0.0, nan\]")
    fails(read_rve_path_config, tmp_path, base + "E11 = [0.0, 1.0, 2.0]\n", "one per time")


def test_malformed_and_non_utf8_files(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_bytes(b'[cell]\ntype = "incl\xe9sion"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_homogenization_config(path)
    with pytest.raises(ConfigError, match="is a directory"):
        read_homogenization_config(tmp_path)


def test_reading_configs_imports_neither_dolfinx_nor_petsc():
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("starts a fresh Python in a subprocess; serial only")
    code = (
        "import sys\n"
        "from fe2x.config import read_run_config, read_homogenization_config, read_sve_config\n"
        f"read_run_config({str(DEMOS / 'plate_with_hole.toml')!r})\n"
        f"read_homogenization_config({str(DEMOS / 'fibre_composite_2d.toml')!r})\n"
        f"read_sve_config({str(DEMOS / 'sve_study.toml')!r})\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('dolfinx', 'petsc4py', 'ufl')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
