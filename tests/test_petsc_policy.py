"""A config's PETSc options cannot run code or write files, and PETSc's own refusals of types
and values come as one line naming the option."""

import math
import re
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

import pytest

from fe2x.errors import ConfigError
from fe2x.petsc_policy import check_petsc_options, validate_with_petsc

WHERE = "cfg.toml: [rve]"

PAYLOADS = [
    ("pc_type", "python"),
    ("pc_python_type", "payload.py:Ctx"),
    ("pc_python_type", "os.Ctx"),
    ("ksp_type", "python"),
    ("snes_type", "python"),
    ("mat_python_type", "module.Mat"),
    ("ksp_view", "ascii:/any/path"),
    ("ksp_view", "binary"),  # the file binaryoutput
    ("mat_view", "hdf5:m.h5"),
    ("ksp_view_mat", "binary:A.bin"),
    ("ksp_monitor", "ascii:/tmp/residuals.txt"),
    ("snes_monitor", "draw"),
    ("ksp_converged_reason", "ascii:reasons.txt"),
    ("ksp_monitor_lg_residualnorm", True),  # draws in an X window
    ("snes_view", "socket"),
    ("ksp_view", "saws"),
    ("options_file", "other.opts"),
    ("log_view", ""),
    ("log_view", ":log.txt"),
    ("log_trace", "trace"),
    ("info", "info.txt"),
    ("history", "history.txt"),
    ("malloc_dump", "dump.txt"),
    ("viewer_binary_filename", "f.bin"),
    ("ts_trajectory_dirname", "dir"),
    ("dm_plex_filename", "mesh.msh"),
    ("draw_save", "movie"),
    ("dll_append", "libplugin.so"),
    ("start_in_debugger", "gdb"),
    ("on_error_attach_debugger", "gdb"),
    ("debug_terminal", "xterm"),
    ("fieldsplit_0_pc_type", "python"),
    ("pc_composite_pcs", "ilu,python"),
]


@pytest.mark.parametrize(("key", "value"), PAYLOADS, ids=[f"{k}={v}" for k, v in PAYLOADS])
def test_payloads_are_refused_unless_allowed(key, value):
    """Options running Python, programs or libraries, or naming files, displays or
    connections, are refused with one line naming where, the key, the value and the flag
    allowing them; with ``allow_scripts`` they pass."""
    with pytest.raises(ConfigError) as error:
        check_petsc_options({"ksp_rtol": 1e-8, key: value}, WHERE)
    message = str(error.value)
    assert message.startswith(f"{WHERE}: petsc_options {key!r} = {value!r} ")
    assert message.endswith("; pass --allow-petsc-scripts to allow it")
    assert "\n" not in message
    assert list(check_petsc_options({key: value}, WHERE, allow_scripts=True)) == [key]


def test_typical_options_pass():
    """Solver tuning passes; viewer options given as booleans become PETSc's flag form."""
    options = {
        "ksp_rtol": 1e-10,
        "pc_type": "gamg",
        "ksp_monitor": True,
        "snes_max_it": 50,
        "pc_factor_mat_solver_type": "mumps",
        "snes_linesearch_type": "bt",
        "ksp_view": "",
        "snes_converged_reason": False,
        "ksp_converged_reason": "true",
        "mat_mumps_icntl_14": 80,
        "pc_hypre_boomeramg_relax_type_all": "symmetric-SOR/Jacobi",
        "fieldsplit_0_ksp_type": "preonly",
        "ksp_initial_guess_nonzero": True,
        "snes_monitor": "ascii",
    }
    checked = check_petsc_options(options, WHERE)
    expected = {k: v for k, v in options.items() if k != "snes_converged_reason"}
    expected.update(ksp_monitor="", ksp_converged_reason="")
    assert checked == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"-ksp_type": "cg"}, "key '-ksp_type' must be an option name without the '-'"),
        ({"ksp type": "cg"}, "key 'ksp type' is not an option name"),
        ({"ksp__type": "cg"}, "is not an option name"),
        ({"ksp_type=cg": "cg"}, "is not an option name"),
        ({"fe2x_macro_ksp_type": "cg"}, "would reach another fe2x solver's options"),
        ({"FE2X_rve_a_pc_type": "lu"}, "would reach another fe2x solver's options"),
        ({"KSP_TYPE": "cg", "ksp_type": "gmres"}, "'KSP_TYPE' and 'ksp_type' are the same"),
        ({"ksp_rtol": math.nan}, "'ksp_rtol' = nan is not finite"),
        ({"ksp_atol": -math.inf}, "'ksp_atol' = -inf is not finite"),
        ({"ksp_rtol": [1e-8]}, "must be a string, number or boolean, not list"),
        ({"ksp_rtol": None}, "must be a string, number or boolean, not NoneType"),
        ({"pc_type": "gamg -ksp_view ascii:/x"}, "is not a single word"),
        ({"pc_type": "lu\n-ksp_view"}, "is not a single word"),
    ],
)
def test_bad_keys_and_values_are_refused_always(options, message):
    for allow in (False, True):
        with pytest.raises(ConfigError, match=message):
            check_petsc_options(options, WHERE, allow_scripts=allow)


@pytest.fixture
def payload(workdir) -> tuple[str, Path]:
    """A Python preconditioner context whose import creates a marker file (one per rank)."""
    marker = workdir / f"marker{MPI.COMM_WORLD.rank}"
    source = workdir / f"payload{MPI.COMM_WORLD.rank}.py"
    source.write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "class Ctx:\n    def apply(self, pc, x, y):\n        x.copy(y)\n"
    )
    return f"{source}:Ctx", marker


def configure_solver(options: dict, prefix: str, allow_scripts: bool = False) -> None:
    """What a solver does with a config's options, the policy first: check, push under the
    prefix, set a KSP up from them, remove them."""
    checked = check_petsc_options(options, WHERE, allow_scripts)
    database = PETSc.Options()
    for key, value in checked.items():
        database[f"{prefix}{key}"] = value
    ksp = PETSc.KSP().create(MPI.COMM_SELF)
    try:
        ksp.setOptionsPrefix(prefix)
        ksp.setFromOptions()
    finally:
        ksp.destroy()
        for key in checked:
            database.delValue(f"{prefix}{key}")


def test_a_refused_payload_does_not_run(payload):
    """The issue's payload (a pc_python_type file): refused before PETSc sees it, the file
    never runs; the control shows that PETSc would run it, once allowed."""
    context, marker = payload
    options = {"pc_type": "python", "pc_python_type": context}
    with pytest.raises(ConfigError, match="would run Python code"):
        configure_solver(options, "fe2x_test_policy_")
    assert not marker.exists()
    configure_solver(options, "fe2x_test_policy_", allow_scripts=True)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ksp_type": "foo"}, "'ksp_type' = 'foo': Unable to find requested KSP type foo"),
        ({"pc_type": "nopc"}, "'pc_type' = 'nopc': Unable to find requested PC type nopc"),
        ({"snes_type": "bar"}, "'snes_type' = 'bar': Unable to find requested SNES type bar"),
        ({"snes_linesearch_type": "qq"}, "'snes_linesearch_type' = 'qq': .*Line Search"),
        ({"mat_type": "baz"}, "'mat_type' = 'baz': Unknown Mat type given: baz"),
        ({"ksp_rtol": "small"}, "'ksp_rtol' = 'small': Input string small has no numeric"),
        (
            {"ksp_rtol": 1e-9, "pc_type": "lu", "pc_factor_mat_solver_type": "nosuch"},
            "'pc_factor_mat_solver_type' = 'nosuch': Could not locate solver type nosuch",
        ),
    ],
)
def test_petsc_refusals_name_the_option(options, message):
    """Unknown types, values that are not numbers and solver packages not built in: one line
    naming the option (collective), the options database left as found."""
    comm = MPI.COMM_WORLD
    before = PETSc.Options().getAll()
    with pytest.raises(ConfigError, match=f"^{re.escape(WHERE)}: petsc_options {message}") as error:
        validate_with_petsc(check_petsc_options(options, WHERE), "fe2x_rve_a_", comm, WHERE)
    assert "\n" not in str(error.value)
    assert PETSc.Options().getAll() == before


def test_valid_options_pass_petsc_and_keep_the_database():
    """Typical options are accepted; an option already in the database under the prefix
    (from PETSC_OPTIONS) keeps its value afterwards."""
    comm = MPI.COMM_WORLD
    database = PETSc.Options()
    database["fe2x_rve_b_ksp_type"] = "cg"
    try:
        before = database.getAll()
        options = {
            "ksp_type": "gmres",
            "ksp_rtol": 1e-10,
            "pc_type": "lu",
            "pc_factor_mat_solver_type": "mumps",
            "ksp_monitor": True,
            "snes_max_it": 50,
        }
        validate_with_petsc(check_petsc_options(options, WHERE), "fe2x_rve_b_", comm, WHERE)
        assert database.getAll() == before
    finally:
        database.delValue("fe2x_rve_b_ksp_type")


def test_options_in_the_database_are_blamed_as_such():
    comm = MPI.COMM_WORLD
    database = PETSc.Options()
    database["fe2x_rve_c_ksp_type"] = "nosuch"
    try:
        with pytest.raises(ConfigError, match="options already set under 'fe2x_rve_c_'"):
            validate_with_petsc({"ksp_rtol": 1e-8}, "fe2x_rve_c_", comm, WHERE)
    finally:
        database.delValue("fe2x_rve_c_ksp_type")
