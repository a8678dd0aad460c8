"""What a config's ``petsc_options`` may put into PETSc's options database.

A config is data: its options may tune solvers but not run code or write files. PETSc runs
Python code for Python types (``pc_type = "python"`` with ``pc_python_type = "file.py:Ctx"``
runs that file; ``"module.Class"`` imports any installed module), starts programs
(``start_in_debugger``, ``on_error_attach_debugger``), loads libraries (``dll_append``), and
opens files or connections for every option that takes a viewer (``PetscOptionsCreateViewer``:
``type:filename:format:mode``, e.g. ``ksp_view = "ascii:/any/path"``, ``binary`` defaulting
to the file ``binaryoutput``, ``draw``, ``socket``, ``saws``; the ``*_view*``, ``*_monitor*``
and ``*_converged_reason`` families) or names a file (``options_file``, ``log_view``,
``info``, ``history``, ``*_filename``, ``*_dump``...). :func:`check_petsc_options` refuses all
of these unless the user allows them (``--allow-petsc-scripts``); viewer options may still
print to the terminal (``ksp_monitor = true``, ``ksp_view = ""``). Keys must be plain option
names under the solver's prefix, values single words or finite numbers.

:func:`validate_with_petsc` then lets PETSc itself judge the types and values on throw-away
solver objects, so an unknown ``ksp_type`` gives one line instead of a PETSc traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mpi4py import MPI

from fe2x.errors import ConfigError

__all__ = ["check_petsc_options", "validate_with_petsc"]

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")
_HINT = "; pass --allow-petsc-scripts to allow it"
#: Key words of options that take a viewer: allowed to print to the terminal only.
_VIEWER_WORDS = frozenset({"view", "monitor"})
#: Key words of options that name a file, a directory, a display or a connection.
_FILE_WORDS = frozenset(
    {
        "file", "files", "filename", "dir", "dirname", "directory", "path", "history", "dump",
        "save", "load", "trajectory", "draw", "plot", "lg", "viewer", "display", "socket",
        "saws", "binary", "hdf5", "vtk", "matlab", "glvis", "adios", "exodusii", "cgns",
        "output",
    }
)  # fmt: skip
#: Option names (or their first words) acting on the whole process or the database itself.
_PROCESS_WORDS = ("options", "prefix", "log", "info", "malloc", "objects", "petscrc", "mpidump")
#: Viewer values that only print to the terminal (the default is ``ascii:stdout``).
_TERMINAL = frozenset({"", "ascii", "stdout", "ascii:stdout"})
_FLAGS = {"true": True, "false": False}


def _refusal(key: str, value: object, allow_scripts: bool) -> str | None:
    """Why the policy refuses ``key = value`` (None if it does not)."""
    if allow_scripts:
        return None
    words = key.lower().split("_")
    text = str(value).lower()
    if "python" in key.lower() or "python" in text:
        return "would run Python code"
    if "debugger" in words or key.lower().startswith("on_error") or "terminal" in words:
        return "would start an external program (a debugger)"
    if "dll" in words or "library" in words or "plugin" in words:
        return "would load a dynamic library"
    if words[0] in _PROCESS_WORDS:
        return "acts on the whole process (files read or written, logs)"
    if _FILE_WORDS.intersection(words):
        return "names a file, a display or a connection"
    if isinstance(value, str) and ":" in value and value.lower() not in _TERMINAL:
        return "names a viewer destination (type:file:format)"
    if _VIEWER_WORDS.intersection(words) or key.lower().endswith("converged_reason"):
        if not (isinstance(value, bool) or text in _TERMINAL | {"true", "false"}):
            return "takes a viewer: only true, false or empty (the terminal) are allowed"
    return None


def _checked_value(where: str, key: str, value: object) -> object:
    """``value`` if PETSc can take it as one word or number, else ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: petsc_options {key!r} = {value!r} is not finite")
        return value
    if isinstance(value, str):
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ConfigError(
                f"{where}: petsc_options {key!r} = {value!r} is not a single word (no spaces)"
            )
        return value
    raise ConfigError(
        f"{where}: petsc_options {key!r} = {value!r} must be a string, number or boolean, "
        f"not {type(value).__name__}"
    )


def _is_viewer_key(key: str) -> bool:
    words = key.lower().split("_")
    return bool(_VIEWER_WORDS.intersection(words)) or key.lower().endswith("converged_reason")


def check_petsc_options(
    options: Mapping[str, object], where: str, allow_scripts: bool = False
) -> dict[str, object]:
    """The options a config may pass to PETSc, or ConfigError naming the first refused one.

    Refused unless ``allow_scripts``: Python types and contexts, debuggers and other
    programs, dynamic libraries, and any option naming a file, display, connection or viewer
    destination (see the module doc). Always refused: keys that are not plain option names
    (a leading ``-``, spaces, a ``fe2x_`` prefix reaching another fe2x solver, the same name
    twice in other cases), values other than one word, a finite number or a boolean. Viewer
    options given as booleans (or "true"/"false") become PETSc's flag form: true -> ``""``,
    false -> left out (PETSc would read "true" as a viewer type and fail).

    Args:
        options: option name (without the solver's prefix) -> value, from a config.
        where: what to name in messages, e.g. ``"cfg.toml: [rve]"``.
        allow_scripts: allow what runs code or writes files (``--allow-petsc-scripts``).
    """
    checked: dict[str, object] = {}
    seen: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str) or key.startswith("-"):
            raise ConfigError(
                f"{where}: petsc_options key {key!r} must be an option name without the '-'"
            )
        if not _KEY.fullmatch(key):
            raise ConfigError(
                f"{where}: petsc_options key {key!r} is not an option name (letters, digits "
                "and single underscores, e.g. ksp_rtol)"
            )
        if key.lower().startswith("fe2x_"):
            raise ConfigError(
                f"{where}: petsc_options key {key!r} would reach another fe2x solver's "
                "options; give the option name without a prefix"
            )
        if key.lower() in seen:
            raise ConfigError(
                f"{where}: petsc_options {seen[key.lower()]!r} and {key!r} are the same "
                "PETSc option (names ignore case)"
            )
        seen[key.lower()] = key
        value = _checked_value(where, key, value)
        why = _refusal(key, value, allow_scripts)
        if why is not None:
            raise ConfigError(f"{where}: petsc_options {key!r} = {value!r} {why}{_HINT}")
        flag = value if isinstance(value, bool) else _FLAGS.get(str(value).lower())
        if _is_viewer_key(key) and flag is not None:
            if flag:
                checked[key] = ""
            continue
        checked[key] = value
    return checked


def _petsc_message(error: Exception) -> str:
    """The last line of a PETSc error (its reason), without the rank tag."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return re.sub(r"^\[\d+\]\s*", "", lines[-1]) if lines else type(error).__name__


def _trial(comm: MPI.Comm, prefix: str, options: Mapping[str, object]) -> str | None:
    """Collective: PETSc's complaint about ``options`` set under ``prefix`` on any rank, or None.

    Throw-away objects are configured from them; the options database is left as found.

    A matrix and a SNES (with its KSP, PC and line search) read their options; a factor PC
    is also set up on a one-row-per-rank identity, which finds its solver package.
    """
    from petsc4py import PETSc

    database = PETSc.Options()
    names = {key: f"{prefix}{key}" for key in options}
    saved = {n: database.getString(n) if database.hasName(n) else None for n in names.values()}
    objects: list[Any] = []
    error = None
    try:
        for key, value in options.items():
            database[names[key]] = value  # type: ignore[index]  # the stub lacks __setitem__
        A = PETSc.Mat().create(comm)  # type: ignore[arg-type]  # petsc4py takes mpi4py comms
        objects.append(A)
        A.setSizes(((1, PETSc.DECIDE), (1, PETSc.DECIDE)))
        A.setOptionsPrefix(prefix)
        A.setFromOptions()
        snes = PETSc.SNES().create(comm)  # type: ignore[arg-type]
        objects.append(snes)
        snes.setOptionsPrefix(prefix)
        snes.setFromOptions()
        ksp = snes.getKSP()
        if ksp.getPC().getType() in ("lu", "cholesky", "ilu", "icc"):
            sizes = ((1, PETSc.DECIDE), (1, PETSc.DECIDE))
            identity = PETSc.Mat().createAIJ(sizes, nnz=1, comm=comm)  # type: ignore[arg-type]
            objects.append(identity)
            start = identity.getOwnershipRange()[0]
            identity.setValue(start, start, 1.0)
            identity.assemble()
            ksp.setOperators(identity)
            ksp.setUp()
    except PETSc.Error as e:
        error = _petsc_message(e)
    finally:
        for item in objects:
            item.destroy()
        for name, value in saved.items():
            database.delValue(name)
            if value is not None:
                database[name] = value  # type: ignore[index]
    errors = [e for e in comm.allgather(error) if e]
    return errors[0] if errors else None


def validate_with_petsc(
    options: Mapping[str, object], prefix: str, comm: MPI.Comm, where: str = "petsc_options"
) -> None:
    """Collective: a ConfigError naming the option PETSc refuses, before any solver is made.

    Refused are, e.g., an unknown type, a value that is not a number, a solver package not built
    in. ``options`` are those :func:`check_petsc_options` returned, tried under the solver's own
    ``prefix`` (so that what ``PETSC_OPTIONS`` sets there is seen too). Options running
    Python code (allowed by ``--allow-petsc-scripts``) are not tried, so that they run only
    in the solver they are meant for. The option named is the first whose addition makes
    PETSc fail. Options that PETSc reads only when solving (e.g. GAMG or MUMPS tuning) are
    not judged here.
    """
    python = {k for k, v in options.items() if "python" in k.lower() or "python" in str(v).lower()}
    tried = {k: v for k, v in options.items() if k not in python}
    complaint = _trial(comm, prefix, tried)
    if complaint is None:
        return
    if _trial(comm, prefix, {}) is not None:
        raise ConfigError(
            f"{where}: PETSc refuses the options already set under {prefix!r} (PETSC_OPTIONS?): "
            f"{complaint}"
        )
    items = list(tried.items())
    for n in range(1, len(items) + 1):
        if (found := _trial(comm, prefix, dict(items[:n]))) is not None:
            key, value = items[n - 1]
            raise ConfigError(f"{where}: petsc_options {key!r} = {value!r}: {found}")
    raise ConfigError(f"{where}: PETSc refuses petsc_options: {complaint}")
