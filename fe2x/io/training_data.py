"""Training data for reduced RVEs in HDF5: one file per writer, the files of a run read as one.

Every RVE evaluation is appended to the writer's own file, and one reader merges the files of a
run. Each writer owns one file, so no two ranks ever write the same file and no MPI-IO or file
locking is needed: an RVE group's leader writes ``group<g>.h5``; for an RVE distributed over a
group, every group rank ``p`` writes ``group<g>_part<p>.h5`` with the same evaluation records
and its own rows of the fluctuations (:func:`training_data_path`). Every batch is committed by
updating the row counts after the data and flushing, so a killed run leaves every committed
batch readable; rows beyond the counts (a batch cut short) are ignored.

File layout (format ``fe2x-training-data``, version 1), readable with plain h5py:

- root attributes: ``format``, ``format_version``; ``notation = "mandel"`` and ``order``, the
  components of ``E`` and ``Sigma`` and of the rows and columns of ``C`` (2D plane strain
  ``11 22 12``, 3D ``11 22 33 23 13 12``, shear terms × √2); ``units`` (none: the run's own);
  ``microstructures`` (names) and ``n_dofs`` (each one's global number of fluctuation dofs);
  ``summaries`` (names of the scalar summaries); ``group``, ``part``, ``n_parts``;
  ``n_evaluations``, the committed rows of ``/evaluations``.
- ``/evaluations``: ``point_id`` (macro point id), ``step``, ``load_factor``,
  ``microstructure`` (index into the names), ``E`` ``(N, n)``, ``Sigma`` ``(N, n)``,
  ``C = dΣ/dE`` ``(N, n, n)``, ``converged`` (1 or 0), and ``summary/<name>`` (NaN where an
  evaluation did not give it).
- ``/fluctuations/<microstructure>``: ``x`` ``(K, n_rows)`` (one fluctuation vector per row),
  ``evaluation`` ``(K,)`` (its row in ``/evaluations``), ``rows`` ``(n_rows,)`` (the global dof
  index of each column of ``x``), and the attribute ``n_committed = K``.

All datasets are chunked, resizable along the first axis and Fletcher-32 checksummed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

import h5py
import numpy as np
import numpy.typing as npt

from fe2x.errors import Fe2xError

__all__ = [
    "FORMAT",
    "VERSION",
    "Evaluation",
    "Fluctuations",
    "TrainingData",
    "TrainingDataError",
    "TrainingDataWriter",
    "read_training_data",
    "training_data_path",
]

logger = logging.getLogger(__name__)

FORMAT = "fe2x-training-data"
VERSION = 1
MANDEL_ORDER: dict[int, tuple[str, ...]] = {
    3: ("11", "22", "12"),
    6: ("11", "22", "33", "23", "13", "12"),
}
_ROWS_PER_CHUNK = 256
_CHUNK_VALUES = 2**17  # doubles per chunk of a fluctuation dataset (1 MiB)


class TrainingDataError(Fe2xError):
    """A training-data file is unreadable, corrupt, of another format, or does not fit."""


class Evaluation(NamedTuple):
    """One RVE evaluation at one macro point.

    Attributes:
        point_id: global id of the macro point.
        step: the macro load step.
        load_factor: the load factor of that step.
        microstructure: name of the point's microstructure.
        E: Mandel macro strain ``(n,)``; Sigma: Mandel stress ``(n,)``; C: tangent ``(n, n)``.
        converged: whether the RVE solve converged.
        summaries: scalar summaries by name (a subset of the writer's names).
        fluctuation: the writer's rows of the reduced fluctuation dofs, or None.
    """

    point_id: int
    step: int
    load_factor: float
    microstructure: str
    E: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    converged: bool
    summaries: Mapping[str, float] | None = None
    fluctuation: np.ndarray | None = None


def training_data_path(directory: Path, group: int, part: int = 0, n_parts: int = 1) -> Path:
    """The file of RVE group ``group`` (of its rank ``part`` if the RVE is distributed).

    >>> training_data_path(Path("td"), 3).as_posix(), training_data_path(Path("td"), 3, 1, 2).name
    ('td/group3.h5', 'group3_part1.h5')
    """
    return Path(directory) / (f"group{group}.h5" if n_parts == 1 else f"group{group}_part{part}.h5")


def _string_array(names: Sequence[str]) -> np.ndarray:
    return np.array(list(names), dtype=h5py.string_dtype())


def _in_order(value: object) -> object:
    """``value`` to compare: a mapping as its list of items, so that the order of keys counts."""
    return list(value.items()) if isinstance(value, Mapping) else value


def _strings(value: npt.ArrayLike) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value))


class TrainingDataWriter:
    """Appends evaluations to one training-data file, a batch at a time.

    Args:
        path: the file (see :func:`training_data_path`); its directory is made if missing.
        n_strain: 3 (2D plane strain) or 6 (3D), the Mandel size of ``E``.
        microstructures: name -> global number of fluctuation dofs.
        summaries: names of the scalar summaries evaluations may carry.
        rows: name -> global dof indices of the fluctuation entries this writer holds
            (default: all, ``0 .. n_dofs − 1``).
        group, part, n_parts: the RVE group, this writer's rank in it, and the group's size.
        mode: ``"w"`` creates (or overwrites) the file; ``"a"`` appends to one written with
            the same header (e.g. after a restart), dropping rows beyond its committed count,
            or creates it.
    """

    def __init__(
        self,
        path: Path,
        n_strain: int,
        microstructures: Mapping[str, int],
        summaries: Sequence[str] = (),
        rows: Mapping[str, np.ndarray] | None = None,
        group: int = 0,
        part: int = 0,
        n_parts: int = 1,
        mode: Literal["w", "a"] = "w",
    ) -> None:
        if n_strain not in MANDEL_ORDER:
            raise TrainingDataError(f"n_strain = {n_strain!r} must be 3 (2D) or 6 (3D)")
        if mode not in ("w", "a"):
            raise TrainingDataError(f"mode = {mode!r} must be 'w' or 'a'")
        if not microstructures:
            raise TrainingDataError("a training-data file needs at least one microstructure")
        if not 0 <= part < n_parts:
            raise TrainingDataError(f"part = {part} is not a rank of a group of {n_parts}")
        for name in (*microstructures, *summaries):
            if not name or "/" in name:
                raise TrainingDataError(f"name {name!r} must be non-empty and contain no '/'")
        if len(set(summaries)) != len(summaries):
            raise TrainingDataError(f"summary names {list(summaries)} repeat")
        self.path = Path(path)
        self.n_strain = n_strain
        self.names = tuple(microstructures)
        self.n_dofs = {name: int(microstructures[name]) for name in self.names}
        negative = [name for name, n in self.n_dofs.items() if n < 0]
        if negative:
            raise TrainingDataError(f"microstructure(s) {negative} have a negative dof count")
        self.summaries = tuple(summaries)
        rows = rows or {}
        unknown = [name for name in rows if name not in self.n_dofs]
        if unknown:
            raise TrainingDataError(f"rows given for unknown microstructure(s) {unknown}")
        self.rows = {}
        for name, n in self.n_dofs.items():
            r = np.asarray(rows.get(name, np.arange(n)), dtype=np.int64).reshape(-1)
            if r.size and (r.min() < 0 or r.max() >= n or np.unique(r).size != r.size):
                raise TrainingDataError(
                    f"rows of microstructure {name!r} must be distinct dof indices in [0, {n})"
                )
            self.rows[name] = r
        self.group, self.part, self.n_parts = int(group), int(part), int(n_parts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "a" and self.path.exists():
            self._file = self._reopen()
        else:
            self._file = self._create()

    # -- file set-up -----------------------------------------------------------------------
    def _header(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "format_version": VERSION,
            "notation": "mandel",
            "order": " ".join(MANDEL_ORDER[self.n_strain]),
            "units": "none (the run's own consistent units)",
            "microstructures": _string_array(self.names),
            "n_dofs": np.array([self.n_dofs[name] for name in self.names], dtype=np.int64),
            "summaries": _string_array(self.summaries),
            "group": self.group,
            "part": self.part,
            "n_parts": self.n_parts,
        }

    def _create(self) -> h5py.File:
        try:
            f = h5py.File(self.path, "w", locking=False)
        except OSError as e:
            raise TrainingDataError(f"cannot create training-data file {self.path}: {e}") from e
        for key, value in self._header().items():
            f.attrs[key] = value
        f.attrs["n_evaluations"] = 0
        n = self.n_strain
        ev = f.create_group("evaluations")
        columns: dict[str, tuple[tuple[int, ...], type]] = {
            "point_id": ((), np.int64),
            "step": ((), np.int64),
            "load_factor": ((), np.float64),
            "microstructure": ((), np.int32),
            "E": ((n,), np.float64),
            "Sigma": ((n,), np.float64),
            "C": ((n, n), np.float64),
            "converged": ((), np.uint8),
            **{f"summary/{name}": ((), np.float64) for name in self.summaries},
        }
        for key, (shape, dtype) in columns.items():
            ev.create_dataset(
                key,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(_ROWS_PER_CHUNK, *shape),
                fletcher32=True,
            )
        for name in self.names:
            g = f.create_group(f"fluctuations/{name}")
            n_rows = self.rows[name].size
            g.create_dataset("rows", data=self.rows[name])
            width = max(1, min(n_rows, _CHUNK_VALUES))
            g.create_dataset(
                "x",
                shape=(0, n_rows),
                maxshape=(None, n_rows),
                dtype=np.float64,
                chunks=(max(1, _CHUNK_VALUES // width), width) if n_rows else None,
                fletcher32=bool(n_rows),
            )
            g.create_dataset(
                "evaluation",
                shape=(0,),
                maxshape=(None,),
                dtype=np.int64,
                chunks=(_ROWS_PER_CHUNK,),
                fletcher32=True,
            )
            g.attrs["n_committed"] = 0
        f.flush()
        return f

    def _reopen(self) -> h5py.File:
        header = _read_header(self.path)
        mine = {
            "n_strain": self.n_strain,
            "n_dofs": self.n_dofs,
            "summaries": self.summaries,
            "group": self.group,
            "part": self.part,
            "n_parts": self.n_parts,
        }
        for key, value in mine.items():
            if _in_order(header[key]) != _in_order(value):
                raise TrainingDataError(
                    f"cannot append to {self.path}: it has {key} = {header[key]!r}, "
                    f"this writer {value!r}"
                )
        try:
            f = h5py.File(self.path, "r+", locking=False)
        except OSError as e:
            raise TrainingDataError(f"cannot append to {self.path}: {e}") from e
        differ = [
            name
            for name in self.names
            if not np.array_equal(f[f"fluctuations/{name}/rows"][...], self.rows[name])
        ]
        if differ:
            f.close()
            raise TrainingDataError(f"cannot append to {self.path}: its rows of {differ} differ")
        n_evaluations = int(f.attrs["n_evaluations"])
        for dataset in _datasets(f["evaluations"]):
            dataset.resize(n_evaluations, axis=0)
        for name in self.names:
            g = f[f"fluctuations/{name}"]
            for key in ("x", "evaluation"):
                g[key].resize(int(g.attrs["n_committed"]), axis=0)
        return f

    # -- writing ---------------------------------------------------------------------------
    @property
    def n_evaluations(self) -> int:
        """Committed evaluations in the file."""
        return int(self._file.attrs["n_evaluations"])

    def _checked(self, e: Evaluation) -> Evaluation:
        n = self.n_strain
        where = f"evaluation of point {e.point_id} at step {e.step}"
        if e.microstructure not in self.n_dofs:
            raise TrainingDataError(
                f"{where}: unknown microstructure {e.microstructure!r}; known: {list(self.names)}"
            )
        E, Sigma, C = (np.asarray(a, dtype=float) for a in (e.E, e.Sigma, e.C))
        if E.shape != (n,) or Sigma.shape != (n,) or C.shape != (n, n):
            raise TrainingDataError(
                f"{where}: E, Sigma, C have shapes {E.shape}, {Sigma.shape}, {C.shape}; "
                f"expected ({n},), ({n},), ({n}, {n})"
            )
        unknown = sorted(set(e.summaries or {}) - set(self.summaries))
        if unknown:
            raise TrainingDataError(f"{where}: unknown summaries {unknown}")
        x = e.fluctuation
        if x is not None:
            x = np.asarray(x, dtype=float).reshape(-1)
            expected = self.rows[e.microstructure].size
            if x.size != expected:
                raise TrainingDataError(
                    f"{where}: fluctuation has {x.size} entries; this writer holds {expected} "
                    f"rows of {e.microstructure!r}"
                )
        return e._replace(E=E, Sigma=Sigma, C=C, fluctuation=x)

    def append(self, evaluations: Iterable[Evaluation]) -> None:
        """Append a batch of evaluations and commit it (flushed to the file).

        Every evaluation is checked first, so a bad one writes nothing of the batch.
        """
        batch = [self._checked(e) for e in evaluations]
        if not batch:
            return
        f = self._file
        start = self.n_evaluations
        columns: dict[str, np.ndarray] = {
            "point_id": np.array([e.point_id for e in batch], dtype=np.int64),
            "step": np.array([e.step for e in batch], dtype=np.int64),
            "load_factor": np.array([e.load_factor for e in batch], dtype=float),
            "microstructure": np.array(
                [self.names.index(e.microstructure) for e in batch], dtype=np.int32
            ),
            "E": np.stack([e.E for e in batch]),
            "Sigma": np.stack([e.Sigma for e in batch]),
            "C": np.stack([e.C for e in batch]),
            "converged": np.array([bool(e.converged) for e in batch], dtype=np.uint8),
            **{
                f"summary/{name}": np.array(
                    [float((e.summaries or {}).get(name, np.nan)) for e in batch]
                )
                for name in self.summaries
            },
        }
        for key, values in columns.items():
            dataset = f["evaluations"][key]
            dataset.resize(start + len(batch), axis=0)
            dataset[start:] = values
        for name in self.names:
            held = {
                i: e.fluctuation
                for i, e in enumerate(batch)
                if e.microstructure == name and e.fluctuation is not None
            }
            if not held:
                continue
            g = f[f"fluctuations/{name}"]
            k = int(g.attrs["n_committed"])
            g["x"].resize(k + len(held), axis=0)
            g["x"][k:] = np.stack(list(held.values()))
            g["evaluation"].resize(k + len(held), axis=0)
            g["evaluation"][k:] = start + np.array(list(held), dtype=np.int64)
            g.attrs["n_committed"] = k + len(held)
        f.attrs["n_evaluations"] = start + len(batch)  # the commit: written last
        f.flush()

    def close(self) -> None:
        """Close the file (what was appended is already committed)."""
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> TrainingDataWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _datasets(group: h5py.Group) -> list[h5py.Dataset]:
    found: list[h5py.Dataset] = []
    group.visititems(lambda _, item: found.append(item) if isinstance(item, h5py.Dataset) else None)
    return found


# -- reading ------------------------------------------------------------------------------
class Fluctuations(NamedTuple):
    """The fluctuation snapshots of one microstructure.

    Attributes:
        evaluation: for each snapshot, its index in the records of :class:`TrainingData`.
        x: the snapshots ``(K, n_dofs)``, all rows of every part merged.
    """

    evaluation: np.ndarray
    x: np.ndarray


@dataclass(frozen=True)
class TrainingData:
    """All evaluations of a run, sorted by (step, point id), then by the order written.

    Attributes:
        point_id, step, load_factor, microstructure, converged, group: one entry per
            evaluation (``microstructure`` by name, ``group`` the RVE group that wrote it).
        E, Sigma: Mandel strain and stress ``(N, n)``; C: tangent ``(N, n, n)``.
        summaries: name -> ``(N,)`` (NaN where not given).
        fluctuations: microstructure name -> its snapshots.
        order: the Mandel components, e.g. ``("11", "22", "12")``.
        n_dofs: microstructure name -> global number of fluctuation dofs.
    """

    point_id: np.ndarray
    step: np.ndarray
    load_factor: np.ndarray
    microstructure: np.ndarray
    E: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    converged: np.ndarray
    group: np.ndarray
    summaries: dict[str, np.ndarray]
    fluctuations: dict[str, Fluctuations]
    order: tuple[str, ...]
    n_dofs: dict[str, int]


class _Part(NamedTuple):
    path: Path
    header: dict
    records: dict[str, np.ndarray]
    fluctuations: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # evaluation, rows, x


def _read_header(path: Path) -> dict:
    """The header of ``path`` after checking its format and version."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = dict(f.attrs)
    except FileNotFoundError as e:
        raise TrainingDataError(f"no training-data file {path}") from e
    except OSError as e:
        raise TrainingDataError(f"training-data file {path} is unreadable or corrupt ({e})") from e
    if _strings(attrs.get("format", ""))[0] != FORMAT:
        raise TrainingDataError(f"{path} is not an {FORMAT} file")
    version = int(attrs.get("format_version", -1))
    if version != VERSION:
        raise TrainingDataError(
            f"{path} has {FORMAT} version {version}; this fe2x reads version {VERSION}"
        )
    try:
        order = _strings(attrs["order"])[0].split()
        names = _strings(attrs["microstructures"])
        return {
            "n_strain": len(order),
            "order": tuple(order),
            "n_dofs": dict(zip(names, (int(n) for n in attrs["n_dofs"]), strict=True)),
            "summaries": _strings(attrs["summaries"]) if attrs["summaries"].size else (),
            "group": int(attrs["group"]),
            "part": int(attrs["part"]),
            "n_parts": int(attrs["n_parts"]),
            "n_evaluations": int(attrs["n_evaluations"]),
        }
    except (KeyError, ValueError, AttributeError) as e:
        raise TrainingDataError(f"training-data file {path} has a broken header ({e})") from e


def _read_part(path: Path) -> _Part:
    header = _read_header(path)
    N = header["n_evaluations"]
    keys = ("point_id", "step", "load_factor", "microstructure", "E", "Sigma", "C", "converged")
    try:
        with h5py.File(path, "r", locking=False) as f:
            ev = f["evaluations"]
            records = {key: ev[key][:N] for key in keys}
            records.update({f"summary/{s}": ev[f"summary/{s}"][:N] for s in header["summaries"]})
            fluctuations = {}
            for name in header["n_dofs"]:
                g = f[f"fluctuations/{name}"]
                K = int(g.attrs["n_committed"])
                evaluation = g["evaluation"][:K]
                fluctuations[name] = (evaluation, g["rows"][...], g["x"][:K])
                if evaluation.size != K or fluctuations[name][2].shape[0] != K:
                    raise TrainingDataError(f"{path}: fluctuations of {name!r} are truncated")
    except (OSError, KeyError, ValueError) as e:
        raise TrainingDataError(f"training-data file {path} is unreadable or corrupt ({e})") from e
    short = [key for key, values in records.items() if values.shape[0] != N]
    if short:
        raise TrainingDataError(f"{path}: datasets {short} hold fewer than {N} evaluations")
    if N and not 0 <= records["microstructure"].min() <= records["microstructure"].max() < len(
        header["n_dofs"]
    ):
        raise TrainingDataError(f"{path}: microstructure indices outside its names")
    return _Part(path, header, records, fluctuations)


def _files(paths_or_directory: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(paths_or_directory, str | Path):
        given = Path(paths_or_directory)
        if given.is_dir():
            files = sorted(given.glob("group*.h5"))
            if not files:
                raise TrainingDataError(f"no training-data files (group*.h5) in {given}")
            return files
        return [given]
    files = [Path(p) for p in paths_or_directory]
    if not files:
        raise TrainingDataError("no training-data files given")
    return files


def _merge_group(parts: dict[int, _Part]) -> _Part:
    """One group's evaluations (those every part committed) with its fluctuation rows merged."""
    first = parts[0]
    n_parts = first.header["n_parts"]
    missing = sorted(set(range(n_parts)) - set(parts))
    if missing:
        raise TrainingDataError(
            f"group {first.header['group']}: part(s) {missing} of {n_parts} missing "
            f"(have {[p.path.name for p in parts.values()]})"
        )
    N = min(p.header["n_evaluations"] for p in parts.values())
    if any(p.header["n_evaluations"] != N for p in parts.values()):
        logger.warning(
            "group %d: its parts committed different numbers of evaluations; reading the first %d",
            first.header["group"],
            N,
        )
    for p in parts.values():
        for key in ("point_id", "step"):
            if not np.array_equal(p.records[key][:N], first.records[key][:N]):
                raise TrainingDataError(f"{p.path} and {first.path} record different evaluations")
    records = {key: values[:N] for key, values in first.records.items()}
    fluctuations = {}
    for name, n_dofs in first.header["n_dofs"].items():
        pieces = [p.fluctuations[name] for p in parts.values()]
        K = min(int(np.sum(ev < N)) for ev, _, _ in pieces)
        evaluation = pieces[0][0][:K]
        rows = np.concatenate([r for _, r, _ in pieces])
        if K and not np.array_equal(np.sort(rows), np.arange(n_dofs)):
            raise TrainingDataError(
                f"group {first.header['group']}: the parts' rows of {name!r} do not cover its "
                f"{n_dofs} dofs once each"
            )
        x = np.empty((K, n_dofs))
        for ev, r, values in pieces:
            if not np.array_equal(ev[:K], evaluation):
                raise TrainingDataError(
                    f"group {first.header['group']}: parts hold fluctuations of {name!r} for "
                    "different evaluations"
                )
            x[:, r] = values[:K]
        fluctuations[name] = (evaluation, np.arange(n_dofs), x)
    return first._replace(records=records, fluctuations=fluctuations)


def read_training_data(paths_or_directory: Path | str | Iterable[Path | str]) -> TrainingData:
    """The evaluations of a run's training-data files, merged and sorted by (step, point id).

    Args:
        paths_or_directory: the files, or a directory whose ``group*.h5`` files are read.

    Raises:
        TrainingDataError: a file is unreadable, corrupt, of another format or version, or
            does not fit the others (header, missing parts).
    """
    parts = [_read_part(path) for path in _files(paths_or_directory)]
    reference = parts[0]
    groups: dict[int, dict[int, _Part]] = {}
    for p in parts:
        for key in ("order", "n_dofs", "summaries"):
            mine, theirs = p.header[key], reference.header[key]
            if key == "n_dofs":  # the names' order matters: records index them
                mine, theirs = list(mine.items()), list(theirs.items())
            if mine != theirs:
                raise TrainingDataError(f"{p.path} has {key} {mine}, {reference.path} {theirs}")
        group = groups.setdefault(p.header["group"], {})
        if p.header["part"] in group:
            raise TrainingDataError(
                f"{p.path} and {group[p.header['part']].path} are both part {p.header['part']} "
                f"of group {p.header['group']}"
            )
        group[p.header["part"]] = p
    merged = [_merge_group(groups[g]) for g in sorted(groups)]
    records = {key: np.concatenate([m.records[key] for m in merged]) for key in reference.records}
    group_of = np.concatenate(
        [np.full(m.records["step"].size, m.header["group"], dtype=np.int64) for m in merged]
    )
    offsets = np.cumsum([0] + [m.records["step"].size for m in merged])
    order = np.lexsort((np.arange(group_of.size), records["point_id"], records["step"]))
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    fluctuations = {}
    for name in reference.header["n_dofs"]:
        evaluation = position[
            np.concatenate(
                [m.fluctuations[name][0] + o for m, o in zip(merged, offsets[:-1], strict=True)]
            )
        ]
        x = np.concatenate([m.fluctuations[name][2] for m in merged])
        by_record = np.argsort(evaluation, kind="stable")
        fluctuations[name] = Fluctuations(evaluation[by_record], x[by_record])
    names = np.array(list(reference.header["n_dofs"]), dtype=object)
    return TrainingData(
        point_id=records["point_id"][order],
        step=records["step"][order],
        load_factor=records["load_factor"][order],
        microstructure=names[records["microstructure"][order]],
        E=records["E"][order],
        Sigma=records["Sigma"][order],
        C=records["C"][order],
        converged=records["converged"][order].astype(bool),
        group=group_of[order],
        summaries={s: records[f"summary/{s}"][order] for s in reference.header["summaries"]},
        fluctuations=fluctuations,
        order=reference.header["order"],
        n_dofs=dict(reference.header["n_dofs"]),
    )
