"""FE² checkpoints in HDF5: written part by part and atomically, checked when read.

Everything in a checkpoint is independent of the partition, so a run can continue on another
number of ranks or RVE group size: the macro displacement is stored per node with its
coordinates (matched again on restart), and every micro state by the global id of its macro
point. A micro state is a nested dict of numpy arrays (or None for a point that never left the
elastic range). An RVE distributed over a group stores one piece per group rank, located by
that rank's *layout* (node coordinates, quadrature-point keys), stored once per microstructure,
group and rank.

The micro states are most of a checkpoint, so no rank ever holds more of them than its own:
the ranks write their parts into the file in turn (``/parts/<rank>``), rank 0 first with the
macro state, and rank 0 renames the finished file onto the checkpoint. On restart every rank
reads only the states of the points it gets (:func:`read_micro_states`).
The turns are passed by MPI messages, so HDF5's file locks are not used (some parallel file
systems do not support them).

Everything that decides the result is checked on reading. The file format keeps a checksum of
all HDF5 metadata (object headers, attributes, chunk indexes); every dataset carries a
Fletcher-32 checksum of its data; the header (attributes and macro arrays) has a SHA-256
digest and each part a SHA-256 manifest of its datasets' names, types and shapes; and the
values are checked for range and consistency. Links other than hard links, external storage
and virtual datasets, which would pull bytes from other files, are refused. Every decision is
collective: a failure on any rank, of any kind, raises the same :class:`CheckpointError` on
every rank, so a run falls back to the previous checkpoint or stops, and never hangs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

import h5py
import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.results import reason, temporary_beside

logger = logging.getLogger(__name__)

FORMAT = "fe2x-checkpoint-4"
CHECKPOINT = "checkpoint.h5"
PREVIOUS_CHECKPOINT = "checkpoint.prev.h5"
_HEADER = ("step", "load_factor", "increment", "config_digest", "group_size", "force_scale")
_ARRAYS = ("coordinates", "displacement", "point_ids", "assignment", "costs")
#: Format bounds: superblock 3 and version-2 object headers, whose metadata HDF5 checksums.
_LIBVER = ("v110", "v114")
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Time this module was imported, before any checkpoint of this process was begun: older
#: checkpoint temporaries are left by killed writers.
_STARTED = time.time()


class CheckpointError(Fe2xError):
    """A checkpoint is missing, corrupt, or belongs to another configuration."""


@dataclass
class Checkpoint:
    """The state of an FE² run after a converged step, without its micro states.

    Attributes:
        step: number of converged steps so far.
        load_factor: load factor reached.
        increment: the load increment the stepper would try next.
        config_digest: digest of the config the run was started with.
        group_size: ranks per RVE group when the checkpoint was written.
        coordinates: coordinates of the macro displacement nodes, (n_nodes, dim).
        displacement: the displacement at those nodes, (n_nodes, dim).
        point_ids: global ids of the macro points; assignment: their RVE group; costs: their
            last measured cost.
        history: rows of history.csv so far, one per converged step.
        force_scale: the macro Newton's absolute-tolerance reference (see MacroProblem).
        path: the file read, from which :func:`read_micro_states` takes the micro states.
        state_parts: state key -> the part holding that state, for the states that are not
            None. States are keyed by ``id * group_size + group rank``.
        layout_parts: ``"<microstructure>/<group>/<group rank>"`` -> the part holding where
            that rank's pieces of the states of that microstructure lie (models with
            partition-independent states).
    """

    step: int
    load_factor: float
    increment: float
    config_digest: str
    group_size: int
    coordinates: np.ndarray
    displacement: np.ndarray
    point_ids: np.ndarray
    assignment: np.ndarray
    costs: np.ndarray
    history: list[list[float]] = field(default_factory=list)
    force_scale: float = 0.0
    path: Path | None = None
    state_parts: dict[int, int] = field(default_factory=dict)
    layout_parts: dict[str, int] = field(default_factory=dict)


def _why(error: BaseException) -> str:
    """:func:`reason`, saying so when HDF5 found a checksum not to match."""
    text = reason(error)
    return "a checksum does not match: the file is damaged" if "filter" in text else text


def _agree(comm: MPI.Comm, error: str | None) -> None:
    """Collective: raise CheckpointError on every rank with the first rank's error, if any."""
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise CheckpointError(errors[0])


def _flatten(state: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(state, dict):
        out: dict[str, np.ndarray] = {}
        for key, value in state.items():
            out.update(_flatten(value, f"{prefix}{key}/"))
        return out
    if isinstance(state, np.ndarray | float | int):
        return {prefix.rstrip("/"): np.asarray(state)}
    raise CheckpointError(f"cannot checkpoint a micro state of type {type(state).__name__}")


def _unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = state
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return state


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """A dataset with a Fletcher-32 checksum.

    A 0-d array is stored with shape (1,) and the attribute ``scalar``, as HDF5 filters need
    chunks.
    """
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise CheckpointError(f"cannot checkpoint {name!r}: arrays of {data.dtype} are not numbers")
    dataset = group.create_dataset(name, data=data.reshape(data.shape or (1,)), fletcher32=True)
    if data.ndim == 0:
        dataset.attrs["scalar"] = True
    return dataset


def _value(dataset: h5py.Dataset) -> np.ndarray:
    """The array :func:`_dataset` stored."""
    data = dataset[...]
    return data.reshape(()) if dataset.attrs.get("scalar", False) else data


def _write_tree(group: h5py.Group, tree: dict[str, Any]) -> None:
    """A nested dict of arrays as HDF5 groups and checksummed datasets."""
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value)
        else:
            _dataset(group, key, value)


def _child(group: h5py.Group, name: str) -> Any:
    """``group[name]``, reached through hard links only.

    A soft or external link could lead to any object of any file.
    """
    node = group
    for component in name.split("/"):
        if not isinstance(node.get(component, getlink=True), h5py.HardLink):
            raise CheckpointError(f"{node.name}/{component} is missing or not a plain object")
        node = node[component]
    return node


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    """The nested dict of arrays :func:`_write_tree` wrote."""
    out: dict[str, Any] = {}
    for key in group:
        item = _child(group, key)
        out[key] = _read_tree(item) if isinstance(item, h5py.Group) else _value(item)
    return out


def _canonical(value: Any) -> Any:
    """A JSON-able form of an attribute that is the same whether written or read back."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value).hex()
    return str(value)


def _header_digest(attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of the header attributes and of the arrays' types, shapes and bytes."""
    sha = hashlib.sha256(json.dumps({k: _canonical(attrs[k]) for k in sorted(attrs)}).encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        sha.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def _manifest(part: h5py.Group) -> str:
    """SHA-256 of the names, types, shapes, checksum flags and attributes of ``part``'s objects.

    A part whose structure changed does not match the manifest written with it.
    """
    entries: list[str] = []

    def add(name: str, item: Any) -> None:
        attrs = {k: _canonical(v) for k, v in item.attrs.items() if k != "manifest_sha256"}
        if isinstance(item, h5py.Dataset):
            entries.append(f"{name}:{item.dtype.str}:{item.shape}:{item.fletcher32}:{attrs}")
        else:
            entries.append(f"{name}/:{attrs}")

    part.visititems(add)
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def _header_arrays(c: Checkpoint) -> dict[str, np.ndarray]:
    """The header's arrays as stored: the macro arrays and the history table."""
    history = np.asarray(c.history, dtype=float)  # no rows before the first step
    arrays = {key: np.asarray(getattr(c, key)) for key in _ARRAYS}
    arrays["history"] = history.reshape(len(c.history), -1 if c.history else 0)
    return arrays


def _check_values(c: Checkpoint, n_parts: int) -> None:
    """Raise CheckpointError unless every header value is of its type and in its range."""

    def show(value: Any) -> str:
        return repr(value.item() if isinstance(value, np.generic) else value)

    def integer(name: str, value: Any, low: int) -> None:
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise CheckpointError(f"{name} = {show(value)} is not an integer")
        if value < low:
            raise CheckpointError(f"{name} = {value} is below {low}")

    def real(name: str, value: Any, low: float, high: float, open_low: bool = False) -> None:
        if not isinstance(value, int | float | np.integer | np.floating) or not (
            np.isfinite(value) and (low < value if open_low else low <= value) and value <= high
        ):
            bracket = "(" if open_low else "["
            raise CheckpointError(f"{name} = {show(value)} is not in {bracket}{low:g}, {high:g}]")

    integer("step", c.step, 0)
    integer("group_size", c.group_size, 1)
    integer("number of parts", n_parts, 1)
    if n_parts % c.group_size:
        raise CheckpointError(f"{n_parts} parts do not form groups of {c.group_size} ranks")
    real("load_factor", c.load_factor, 0.0, 1.0 + 1e-12)  # the stepper's own tolerance
    real("increment", c.increment, 0.0, 1.0 + 1e-12, open_low=True)
    real("force_scale", c.force_scale, 0.0, np.inf)
    if not isinstance(c.config_digest, str):
        raise CheckpointError("config_digest is not a string")
    arrays = _header_arrays(c)
    for key, kinds in (("coordinates", "iuf"), ("displacement", "iuf"), ("history", "f")):
        array = arrays[key]
        if array.ndim != 2 or array.dtype.kind not in kinds or not np.isfinite(array).all():
            raise CheckpointError(f"{key} is not a 2-d array of finite numbers")
    if arrays["displacement"].shape != arrays["coordinates"].shape:
        raise CheckpointError("displacement and coordinates differ in shape")
    if len(c.history) != c.step:
        raise CheckpointError(f"history has {len(c.history)} rows for {c.step} steps")
    ids, groups, costs = arrays["point_ids"], arrays["assignment"], arrays["costs"]
    for key, array, kinds in (("point_ids", ids, "iu"), ("assignment", groups, "iu")):
        if array.ndim != 1 or array.dtype.kind not in kinds or array.shape != ids.shape:
            raise CheckpointError(f"{key} is not a 1-d integer array of one entry per point")
    if ids.size and (ids.min() < 0 or np.unique(ids).size != ids.size):
        raise CheckpointError("point_ids are not unique non-negative integers")
    if groups.size and not (0 <= groups.min() and groups.max() < n_parts // c.group_size):
        raise CheckpointError(f"assignment names groups outside 0..{n_parts // c.group_size - 1}")
    if costs.shape != ids.shape or costs.dtype.kind != "f" or not np.isfinite(costs).all():
        raise CheckpointError("costs are not finite numbers, one per point")
    if (costs < 0).any():
        raise CheckpointError("costs are negative")


def write_checkpoint(
    comm: MPI.Comm,
    path: Path,
    checkpoint: Checkpoint,
    local: dict,
    *,
    previous: Path | None = None,
) -> None:
    """Collective: write ``checkpoint`` and every rank's part of it to ``path`` atomically.

    ``local`` holds this rank's ``coordinates`` and ``displacement`` (owned nodes), gathered
    into the checkpoint's, and its ``states`` (key -> committed state) and ``layouts``, which
    it writes itself when its turn comes. The file is renamed onto ``path`` only when every
    part is in it; a failure anywhere (invalid values, a full disk, ``path`` a directory)
    removes the temporary, leaves the files as they were and raises CheckpointError on every
    rank. With ``previous``, the checkpoint at ``path`` is first renamed onto ``previous`` if
    it is a valid checkpoint of the same configuration and an older step.
    """
    coordinates = comm.gather(local["coordinates"], root=0)
    displacement = comm.gather(local["displacement"], root=0)
    tmp, error = None, None
    if comm.rank == 0:
        assert coordinates is not None and displacement is not None  # gathered onto rank 0
        try:
            checkpoint.coordinates = np.vstack(coordinates)
            checkpoint.displacement = np.vstack(displacement)
            _check_values(checkpoint, comm.size)
            tmp = temporary_beside(path)
        except Exception as e:  # shared below, so that no rank waits for rank 0
            error = f"cannot write checkpoint {path}: {reason(e)}"
    tmp, error = comm.bcast((tmp, error), root=0)
    if comm.rank > 0:  # the parts are written in turn, passing on the first error
        error = comm.recv(source=comm.rank - 1)
    if error is None:
        try:
            _write_file_part(comm, tmp, checkpoint, local)
        except Exception as e:  # passed on, so that no rank is left waiting for its turn
            error = f"cannot write checkpoint {path} (part of rank {comm.rank}): {reason(e)}"
    if comm.size > 1:
        comm.send(error, dest=(comm.rank + 1) % comm.size)
        if comm.rank == 0:
            error = comm.recv(source=comm.size - 1)
    if comm.rank == 0 and tmp is not None:
        try:
            if error is None:
                if previous is not None and _is_older(path, checkpoint):
                    os.replace(path, previous)
                os.replace(tmp, path)
                _sync_directory(path.parent)
        except Exception as e:
            error = f"cannot write checkpoint {path}: {reason(e)}"
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # an orphan, removed by the next rotate_and_write
    error = comm.bcast(error, root=0)
    if error:
        raise CheckpointError(error)


def _write_file_part(comm: MPI.Comm, tmp: Path, checkpoint: Checkpoint, local: dict) -> None:
    """This rank's turn: the header (rank 0) and this rank's part, flushed to disk.

    The chunk cache is off, so that a write error (a full disk) is raised by the write that
    meets it: with a cache, HDF5 meets it when evicting chunks at close, where h5py can only
    print it, and the next call on the file crashes.
    """
    mode = "w" if comm.rank == 0 else "r+"
    with h5py.File(tmp, mode, locking=False, libver=_LIBVER, rdcc_nbytes=0) as f:
        if comm.rank == 0:
            _write_header(f, checkpoint, comm.size)
        part = f.create_group(f"parts/{comm.rank}")
        _write_part(part, local["states"], local["layouts"])
        part.attrs["manifest_sha256"] = _manifest(part)
        f.flush()
        os.fsync(f.id.get_vfd_handle())


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the file system allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is done all the same
    finally:
        os.close(fd)


def _is_older(path: Path, checkpoint: Checkpoint) -> bool:
    """Whether ``path`` is a valid checkpoint of ``checkpoint``'s configuration at an older step.

    Such a checkpoint is worth keeping as the previous one.
    """
    try:
        saved = _read_header(path)
    except Exception:
        return False
    return saved.config_digest == checkpoint.config_digest and saved.step < checkpoint.step


def _write_header(f: h5py.File, c: Checkpoint, n_parts: int) -> None:
    attrs = {"format": FORMAT, "n_parts": n_parts, **{key: getattr(c, key) for key in _HEADER}}
    arrays = _header_arrays(c)
    for key, value in attrs.items():
        f.attrs[key] = value
    for key, array in arrays.items():
        _dataset(f, key, array)
    f.attrs["header_sha256"] = _header_digest(attrs, arrays)


def _write_part(part: h5py.Group, states: dict[int, Any], layouts: dict[str, Any]) -> None:
    """Write one rank's states and layouts into its ``part``.

    Per flattened state entry: the keys of the states that have it, their arrays concatenated,
    and their shapes.
    """
    held = sorted(k for k, s in states.items() if s is not None)
    _dataset(part, "ids", np.asarray(held, dtype=np.int64))
    flat = {k: _flatten(states[k]) for k in held}
    entries = part.create_group("states")
    for name in sorted({n for f in flat.values() for n in f}):
        ids = [k for k in held if name in flat[k]]
        arrays = [flat[k][name] for k in ids]
        if len({a.ndim for a in arrays}) > 1:
            raise CheckpointError(f"state entry {name!r} has arrays of different ranks")
        group = entries.create_group(name.replace("/", "|"))
        _dataset(group, "ids", np.asarray(ids, dtype=np.int64))
        shapes = np.array([a.shape for a in arrays], dtype=np.int64)
        _dataset(group, "shapes", shapes.reshape(len(arrays), arrays[0].ndim))
        _dataset(group, "data", np.concatenate([a.ravel() for a in arrays]))
    for key, layout in layouts.items():
        _write_tree(part.create_group(f"layouts/{key.replace('/', '|')}"), layout)


def read_checkpoint(comm: MPI.Comm, path: Path, config_digest: str) -> Checkpoint:
    """Collective: read and check ``path`` on rank 0 and share all but the micro states."""
    result: Checkpoint | str | None = None
    if comm.rank == 0:
        try:
            result = _read_header(path)
            if result.config_digest != config_digest:
                result = (
                    f"checkpoint {path} was written for another configuration; restart with "
                    "the config it was made with"
                )
        except FileNotFoundError:
            result = f"no checkpoint at {path}"
        except Exception as e:  # whatever it is, shared below so that no rank waits
            result = f"checkpoint {path} is unreadable or corrupt ({_why(e)})"
    result = comm.bcast(result, root=0)
    if isinstance(result, str):
        raise CheckpointError(result)
    return result


def _refuse_foreign_objects(f: h5py.File) -> None:
    """Raise CheckpointError naming the first object of ``f`` that is not plain and checksummed.

    Refused: a soft, external or user-defined link, a dataset with external storage, a virtual
    dataset, a committed datatype, non-numeric data, a dataset without checksum.
    """
    names: list[bytes] = []
    f.id.links.visit(names.append)
    kinds = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}
    for name in names:
        where = "/" + name.decode(errors="replace")
        kind = f.id.links.get_info(name).type
        if kind != h5py.h5l.TYPE_HARD:
            raise CheckpointError(f"{where} is {kinds.get(kind, 'a user-defined link')}")
        item = f[name.decode()]
        if isinstance(item, h5py.Dataset):
            if item.is_virtual:
                raise CheckpointError(f"{where} is a virtual dataset (data of other files)")
            if item.external:
                raise CheckpointError(f"{where} keeps its data in external file(s)")
            if item.dtype.kind not in "biuf":
                raise CheckpointError(f"{where} holds {item.dtype}, not numbers")
            if not item.fletcher32:
                raise CheckpointError(f"{where} carries no checksum")
        elif not isinstance(item, h5py.Group):
            raise CheckpointError(f"{where} is neither a group nor a dataset")


def _read_header(path: Path) -> Checkpoint:
    """The checkpoint at ``path`` without its states, and where these lie.

    It is read after checking the file's objects, the header digest, every part's manifest and
    every value that decides the run.
    """
    with path.open("rb") as raw:
        start = raw.read(9)
    if start[:8] != _SIGNATURE:
        raise CheckpointError("not an HDF5 file")
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"not an {FORMAT} file (format {f.attrs.get('format')!r})")
        if start[8] < 2:
            raise CheckpointError(f"HDF5 superblock {start[8]} has no metadata checksums")
        _refuse_foreign_objects(f)
        missing = [k for k in ("n_parts", "header_sha256", *_HEADER) if k not in f.attrs]
        if missing:
            raise CheckpointError(f"header attribute(s) {missing} missing")
        attrs = {k: f.attrs[k] for k in ("format", "n_parts", *_HEADER)}
        arrays = {key: _value(_child(f, key)) for key in (*_ARRAYS, "history")}
        if _header_digest(attrs, arrays) != f.attrs["header_sha256"]:
            raise CheckpointError("the header does not match its SHA-256 digest")
        n_parts = attrs["n_parts"]
        checkpoint = Checkpoint(
            step=attrs["step"],
            load_factor=attrs["load_factor"],
            increment=attrs["increment"],
            config_digest=_canonical(attrs["config_digest"]),
            group_size=attrs["group_size"],
            force_scale=attrs["force_scale"],
            coordinates=arrays["coordinates"],
            displacement=arrays["displacement"],
            point_ids=arrays["point_ids"],
            assignment=arrays["assignment"],
            costs=arrays["costs"],
            history=arrays["history"].tolist(),
            path=path,
        )
        _check_values(checkpoint, int(n_parts))
        checkpoint.step, checkpoint.group_size = int(checkpoint.step), int(checkpoint.group_size)
        checkpoint.load_factor = float(checkpoint.load_factor)
        checkpoint.increment = float(checkpoint.increment)
        checkpoint.force_scale = float(checkpoint.force_scale)
        parts = _child(f, "parts")
        if sorted(parts) != sorted(str(r) for r in range(n_parts)):
            raise CheckpointError(f"parts missing: expected {n_parts}")
        for rank in range(n_parts):
            _index_part(_child(parts, str(rank)), rank, n_parts, checkpoint)
        return checkpoint


def _index_part(part: h5py.Group, rank: int, n_parts: int, checkpoint: Checkpoint) -> None:
    """Check part ``rank`` and add where its states and layouts lie to ``checkpoint``.

    The checks: its manifest, its state keys, the consistency of its entries, its layout names.
    """
    if part.attrs.get("manifest_sha256") != _manifest(part):
        raise CheckpointError(f"part {rank} does not match its manifest")
    g = checkpoint.group_size
    keys = _child(part, "ids")[...]
    if keys.ndim != 1 or keys.dtype.kind not in "iu" or np.unique(keys).size != keys.size:
        raise CheckpointError(f"the state ids of part {rank} are not unique integers")
    for key in keys.tolist():
        if key < 0:
            raise CheckpointError(f"part {rank} holds a state of negative key {key}")
        if checkpoint.state_parts.setdefault(key, rank) != rank:
            raise CheckpointError(f"state {key} stored twice")
    held = set(keys.tolist())
    for name, entry in _child(part, "states").items():
        ids = _child(entry, "ids")[...]
        shapes = _child(entry, "shapes")[...]
        data = _child(entry, "data")
        if (
            ids.ndim != 1
            or not held.issuperset(ids.tolist())
            or np.unique(ids).size != ids.size
            or shapes.ndim != 2
            or shapes.dtype.kind not in "iu"
            or len(shapes) != len(ids)
            or (shapes < 0).any()
            or data.ndim != 1
            or data.size != int(np.prod(shapes, axis=1).sum())
        ):
            raise CheckpointError(f"state entry {name!r} of part {rank} is inconsistent")
    n_groups = n_parts // g
    for name in part.get("layouts", {}):
        *model, group, group_rank = name.split("|")
        if not (model and group.isdigit() and group_rank.isdigit()) or not (
            int(group) < n_groups and int(group_rank) < g
        ):
            raise CheckpointError(f"layout {name!r} of part {rank} names no group rank")
        checkpoint.layout_parts[name.replace("|", "/")] = rank


def read_micro_states(
    comm: MPI.Comm, checkpoint: Checkpoint, keys: Iterable[int], layouts: Iterable[str] = ()
) -> tuple[dict[int, Any], dict[str, Any]]:
    """Collective: this rank's wanted micro states and layouts from the checkpoint's file.

    Returns the states of those ``keys`` that have one (the others were None) and the
    ``layouts`` asked for. Every rank opens the file for reading and takes only what it asks
    for, so memory follows its own share of the run. A failure on any rank (a checksum, a
    missing layout, non-finite values, anything) raises CheckpointError on every rank.
    """
    flat: dict[int, dict[str, np.ndarray]] = {}
    trees: dict[str, Any] = {}
    error = None
    try:
        wanted = sorted({k for k in keys if k in checkpoint.state_parts})
        flat = {k: {} for k in wanted}
        with h5py.File(checkpoint.path, "r", locking=False) as f:
            for rank in sorted({checkpoint.state_parts[k] for k in wanted}):
                for name, entry in _child(f, f"parts/{rank}/states").items():
                    _read_entry(entry, name.replace("|", "/"), flat)
            for key in layouts:
                if key not in checkpoint.layout_parts:
                    raise CheckpointError(f"no layout {key!r}")
                where = f"parts/{checkpoint.layout_parts[key]}/layouts/{key.replace('/', '|')}"
                trees[key] = _read_tree(_child(f, where))
                if not all(np.isfinite(a).all() for a in _flatten(trees[key]).values()):
                    raise CheckpointError(f"layout {key!r} holds non-finite values")
    except Exception as e:  # whatever it is, agreed below so that every rank raises
        error = (
            f"checkpoint {checkpoint.path}: cannot read rank {comm.rank}'s micro states ({_why(e)})"
        )
    _agree(comm, error)
    return {k: _unflatten(s) for k, s in flat.items()}, trees


def _read_entry(entry: h5py.Group, name: str, flat: dict[int, dict[str, np.ndarray]]) -> None:
    """Add entry ``name`` of the states in ``flat`` that have it, in one contiguous read."""
    ids = _child(entry, "ids")[...]
    rows = np.flatnonzero(np.isin(ids, list(flat)))
    if rows.size == 0:
        return
    shapes = _child(entry, "shapes")[...]
    offsets = np.concatenate([[0], np.cumsum(np.prod(shapes, axis=1))])
    first = int(offsets[rows[0]])
    data = _child(entry, "data")[first : int(offsets[rows[-1] + 1])]
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise CheckpointError(f"state entry {name!r} holds non-finite values")
    for row in rows:
        start, end = int(offsets[row]) - first, int(offsets[row + 1]) - first
        flat[int(ids[row])][name] = data[start:end].reshape(shapes[row])


def remove_orphans(directory: Path, name: str = CHECKPOINT, started: float | None = None) -> int:
    """Remove the temporaries that killed writers left in ``directory``; return how many.

    Removed are the temporaries of ``name`` (``.checkpoint.*.h5``) last changed before
    ``started`` (default: when this process imported this module). Not collective: call it on
    one rank.
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    started = _STARTED if started is None else started
    removed = 0
    for path in directory.glob(f".{stem}.*{suffix}"):
        try:
            if path.is_file() and path.stat().st_mtime < started:
                path.unlink()
                removed += 1
        except OSError:
            pass  # gone meanwhile, or not ours to remove: left as it is
    return removed


def rotate_and_write(
    comm: MPI.Comm,
    directory: Path,
    checkpoint: Checkpoint,
    local: dict,
    *,
    started: float | None = None,
) -> None:
    """Collective: write ``directory/checkpoint.h5``, keeping an older one as the previous.

    The checkpoint it replaces becomes ``checkpoint.prev.h5`` when that is an older step of the
    same run. The same step written again (after a signal) replaces the newest and keeps the
    previous, so ``checkpoint.prev.h5`` always holds an older step than ``checkpoint.h5``.
    Temporaries of killed writers older than ``started`` (see :func:`remove_orphans`) are
    removed first. Raises CheckpointError on every rank if the checkpoint cannot be written;
    the files are then as they were.
    """
    if comm.rank == 0:
        try:
            if count := remove_orphans(directory, CHECKPOINT, started):
                logger.info("removed %d checkpoint temporaries of killed writers", count)
        except Exception as e:  # cleaning up is no reason to stop the run, nor to hang it
            logger.warning("cannot remove old checkpoint temporaries in %s: %s", directory, e)
    write_checkpoint(
        comm, directory / CHECKPOINT, checkpoint, local, previous=directory / PREVIOUS_CHECKPOINT
    )


def restore_latest(
    comm: MPI.Comm, directory: Path, config_digest: str, restore: Callable[[Checkpoint], None]
) -> Checkpoint:
    """Collective: ``restore`` the newest usable checkpoint in ``directory`` and return it.

    ``checkpoint.h5`` is tried first, then ``checkpoint.prev.h5``. ``restore(checkpoint)``
    (e.g. ``engine.restore``) may fail on some ranks only, with any exception: the ranks
    agree after it returns, and all fall back, or all raise CheckpointError.
    """
    try:
        return _restore(comm, directory / CHECKPOINT, config_digest, restore)
    except CheckpointError as error:
        previous = directory / PREVIOUS_CHECKPOINT
        if not comm.bcast(previous.is_file(), root=0):
            raise
        if comm.rank == 0:
            logger.warning("%s; using the previous checkpoint", error)
    return _restore(comm, previous, config_digest, restore)


def _restore(
    comm: MPI.Comm, path: Path, config_digest: str, restore: Callable[[Checkpoint], None]
) -> Checkpoint:
    checkpoint = read_checkpoint(comm, path, config_digest)
    error = None
    try:
        restore(checkpoint)
    except Exception as e:
        error = f"cannot restart from checkpoint {path} on rank {comm.rank}: {reason(e)}"
    _agree(comm, error)
    return checkpoint
