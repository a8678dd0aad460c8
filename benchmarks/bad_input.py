"""A bad-input survey: one-defect variants of the demo configs through the ``fe2x`` command.

Each variant changes one thing in a good config (a key removed, renamed or duplicated; a value
of the wrong type, negative, zero, NaN, infinite, huge, tiny, empty or absurd) and runs
``fe2x <command> CONFIG --out DIR`` in a subprocess with a timeout. A variant ends *cleanly*
when fe2x either accepts it (exit 0: the defect was harmless, e.g. a default-valued key
removed) or refuses it with exit ≠ 0, exactly one line on stderr starting ``fe2x: error:``, no
Python traceback, and no result file left behind; or, for a solve that gives up (*stopped*),
when every stderr line is a ``fe2x:`` warning and the last the error saying where the
converged steps were kept. Everything else (a traceback, a crash, a hang, a result left
behind without saying so) is listed. Prints the counts and writes
``benchmarks/results/bad_input.json``.

    .venv/bin/python benchmarks/bad_input.py [--limit N] [--timeout 120]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: demo config -> the command that runs it
CONFIGS = {
    "fibre_composite_2d.toml": "homogenize",
    "fibre_composite_uniaxial.toml": "rve-path",
    "plate_with_hole.toml": "run",
    "sve_study.toml": "sve",
}
#: made cheap first, so that an accepted variant runs in seconds
CHEAP = {
    "fibre_composite_2d.toml": {("cell", "mesh_size"): 0.2},
    "fibre_composite_uniaxial.toml": {("cell", "mesh_size"): 0.2, ("path", "steps"): 2},
    "plate_with_hole.toml": {("loading", "steps"): 1, ("output", "fields"): False},
    "sve_study.toml": {("sve", "sizes"): [2.0, 3.0], ("sve", "realizations"): 2},
}
RESULTS = ("result.json", "path.json", "summary.json", "sve.json", "history.csv")
#: values tried in place of a number
NUMBERS = [-1.0, 0.0, math.nan, math.inf, 1e30, 1e-30, "1.0", True, [1.0]]
#: values tried in place of a string
STRINGS = ["", "no_such_thing", 1, ["a"], "../../../etc/passwd"]
#: values tried in place of a list
LISTS = [[], [math.nan], "x", [[1.0]], [1.0] * 20]


def toml_value(value: Any) -> str:
    """A value as TOML writes it (NaN and inf included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_text(data: dict, prefix: str = "") -> str:
    """A nested dict as TOML tables (arrays of tables for lists of dicts)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            tables.append((key, value, "tables"))
        elif isinstance(value, dict):
            tables.append((key, value, "table"))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value, "array"))
        else:
            lines.append(f"{key} = {toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value, kind in tables:
        name = f"{prefix}{key}"
        if kind == "array":
            for entry in value:
                text += f"\n[[{name}]]\n" + toml_text(entry, f"{name}.")
        else:
            text += f"\n[{name}]\n" + toml_text(value, f"{name}.")
    return text


def leaves(data: Any, path: tuple = ()) -> list[tuple]:
    """Every (path, value) of a parsed config's scalar and list leaves."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out += leaves(v, (*path, k))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, v in enumerate(data):
            out += leaves(v, (*path, i))
    else:
        out.append((path, data))
    return out


def setting(data: dict, path: tuple, value: Any, remove: bool = False) -> dict:
    new = copy.deepcopy(data)
    node = new
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return new


def variants(data: dict) -> list[tuple[str, dict]]:
    """One-defect variants of a parsed config."""
    out = [("unknown top table", {**data, "no_such_table": {"x": 1}})]
    for path, value in leaves(data):
        name = ".".join(map(str, path))
        out.append((f"remove {name}", setting(data, path, None, remove=True)))
        if isinstance(path[-1], str):
            parent = setting(data, path, None, remove=True)
            out.append((f"misspell {name}", setting(parent, (*path[:-1], path[-1] + "x"), value)))
        if isinstance(value, bool):
            out.append((f"{name} = 1", setting(data, path, 1)))
        elif isinstance(value, int | float):
            out += [(f"{name} = {v!r}", setting(data, path, v)) for v in NUMBERS]
        elif isinstance(value, str):
            out += [(f"{name} = {v!r}", setting(data, path, v)) for v in STRINGS]
        elif isinstance(value, list):
            out += [(f"{name} = {v!r}", setting(data, path, v)) for v in LISTS]
    return out


def run(command: str, text: str, work: Path, timeout: float) -> dict:
    config, out = work / "cfg.toml", work / "out"
    config.write_text(text)
    env = {"FE2X_MAX_ELEMENTS": "200000", "MPLBACKEND": "Agg"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fe2x.cli", command, str(config), "--out", str(out), "--quiet"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**__import__("os").environ, **env},
        )
    except subprocess.TimeoutExpired:
        return {"verdict": "hang"}
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    left = [name for name in RESULTS if (out / name).exists()]
    if done.returncode == 0:
        return {"verdict": "accepted"}
    one_line = (
        bool(lines) and lines[-1].startswith("fe2x: error:") and "Traceback" not in done.stderr
    )
    if one_line and len(lines) == 1 and not left:
        verdict = "clean"
    elif one_line and all(line.startswith("fe2x:") for line in lines) and "kept in" in lines[-1]:
        # A solver that gave up after warnings, its converged steps kept (by design).
        verdict = "stopped"
    else:
        verdict = "unclean"
    return {
        "verdict": verdict,
        "code": done.returncode,
        "stderr": done.stderr[-600:],
        "left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="variants per config (0: all)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bad_input.json")
    args = parser.parse_args()
    report: dict[str, list] = {
        "clean": [],
        "stopped": [],
        "accepted": [],
        "unclean": [],
        "hang": [],
    }
    for name, command in CONFIGS.items():
        data = tomllib.loads((ROOT / "demos" / name).read_text())
        for path, value in CHEAP[name].items():
            data = setting(data, path, value)
        cases = variants(data)
        if args.limit:
            cases = cases[:: max(1, len(cases) // args.limit)][: args.limit]
        for label, variant in cases:
            with tempfile.TemporaryDirectory() as tmp:
                text = toml_text(variant).replace('path = "', f'path = "{ROOT / "demos"}/')
                outcome = run(command, text, Path(tmp), args.timeout)
            outcome["case"] = f"{name}: {label}"
            report[outcome["verdict"]].append(outcome)
            print(f"{outcome['verdict']:9s} {outcome['case']}", flush=True)
    tried = sum(len(v) for v in report.values())
    counts = {k: len(v) for k, v in report.items()}
    print(f"\n{tried} variants: {counts}")
    for outcome in report["unclean"] + report["hang"]:
        print(f"\n--- {outcome['case']}: {outcome.get('code')} {outcome.get('left')}")
        print(outcome.get("stderr", ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"counts": counts, **report}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
