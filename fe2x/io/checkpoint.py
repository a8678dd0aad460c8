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
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

import h5py
import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.results import temporary_beside

FORMAT = "fe2x-checkpoint-3"
_HEADER = ("step", "load_factor", "increment", "config_digest", "group_size", "force_scale")
_ARRAYS = ("coordinates", "displacement", "point_ids", "assignment", "costs")


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
        history: rows of history.csv so far.
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


def _write_tree(group: h5py.Group, tree: dict[str, Any]) -> None:
    """A nested dict of arrays as HDF5 groups and datasets."""
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value)
        else:
            group.create_dataset(key, data=np.asarray(value))


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    """The nested dict of arrays :func:`_write_tree` wrote."""
    return {
        key: _read_tree(item) if isinstance(item, h5py.Group) else item[...]
        for key, item in group.items()
    }


def write_checkpoint(comm: MPI.Comm, path: Path, checkpoint: Checkpoint, local: dict) -> None:
    """Collective: write ``checkpoint`` and every rank's part of it to ``path`` atomically.

    ``local`` holds this rank's ``coordinates`` and ``displacement`` (owned nodes), gathered
    into the checkpoint's, and its ``states`` (key -> committed state) and ``layouts``, which
    it writes itself when its turn comes. The file is renamed onto ``path`` only when every
    part is in it.
    """
    coordinates = comm.gather(local["coordinates"], root=0)
    displacement = comm.gather(local["displacement"], root=0)
    tmp, error = None, None
    if comm.rank == 0:
        try:
            tmp = temporary_beside(path)
            checkpoint.coordinates = np.vstack(coordinates)
            checkpoint.displacement = np.vstack(displacement)
        except OSError as e:
            error = f"cannot write checkpoint {path}: {e.strerror or e}"
    tmp = comm.bcast(tmp, root=0)
    if comm.rank > 0:  # the parts are written in turn, passing on the first error
        error = comm.recv(source=comm.rank - 1)
    if error is None:
        try:
            with h5py.File(tmp, "w" if comm.rank == 0 else "r+", locking=False) as f:
                if comm.rank == 0:
                    _write_header(f, checkpoint, comm.size)
                _write_part(f.create_group(f"parts/{comm.rank}"), local["states"], local["layouts"])
                f.flush()
                os.fsync(f.id.get_vfd_handle())
        except Exception as e:  # passed on, so that no rank is left waiting for its turn
            error = f"cannot write checkpoint {path} (part of rank {comm.rank}): {e}"
    if comm.size > 1:
        comm.send(error, dest=(comm.rank + 1) % comm.size)
        if comm.rank == 0:
            error = comm.recv(source=comm.size - 1)
    if comm.rank == 0 and tmp is not None:
        try:
            if error is None:
                os.replace(tmp, path)
        except OSError as e:
            error = f"cannot write checkpoint {path}: {e.strerror or e}"
        finally:
            tmp.unlink(missing_ok=True)
    error = comm.bcast(error, root=0)
    if error:
        raise CheckpointError(error)


def _write_header(f: h5py.File, c: Checkpoint, n_parts: int) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["n_parts"] = n_parts
    for key in _HEADER:
        f.attrs[key] = getattr(c, key)
    for key in _ARRAYS:
        f.create_dataset(key, data=getattr(c, key))
    history = np.asarray(c.history, dtype=float)  # no rows before the first step
    f.create_dataset("history", data=history.reshape(len(c.history), -1 if c.history else 0))


def _write_part(part: h5py.Group, states: dict[int, Any], layouts: dict[str, Any]) -> None:
    """One rank's states and layouts: per flattened state entry, the keys of the states that
    have it, their arrays concatenated, and their shapes (checksummed, as they are the bulk)."""
    held = sorted(k for k, s in states.items() if s is not None)
    part.create_dataset("ids", data=np.asarray(held, dtype=np.int64))
    flat = {k: _flatten(states[k]) for k in held}
    entries = part.create_group("states")
    for name in sorted({n for f in flat.values() for n in f}):
        ids = [k for k in held if name in flat[k]]
        arrays = [flat[k][name] for k in ids]
        if len({a.ndim for a in arrays}) > 1:
            raise CheckpointError(f"state entry {name!r} has arrays of different ranks")
        group = entries.create_group(name.replace("/", "|"))
        group.create_dataset("ids", data=np.asarray(ids, dtype=np.int64))
        shapes = np.array([a.shape for a in arrays], dtype=np.int64)
        group.create_dataset("shapes", data=shapes.reshape(len(arrays), arrays[0].ndim))
        data = np.concatenate([a.ravel() for a in arrays])
        group.create_dataset("data", data=data, fletcher32=data.size > 0)
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
        except (OSError, KeyError, ValueError, CheckpointError) as e:
            result = f"checkpoint {path} is unreadable or corrupt ({e})"
    result = comm.bcast(result, root=0)
    if isinstance(result, str):
        raise CheckpointError(result)
    return result


def _read_header(path: Path) -> Checkpoint:
    """The checkpoint without its states, and where these lie, after checking that every part
    is present and every state entry's data has the length its shapes say."""
    if not path.exists():
        raise FileNotFoundError(path)
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"not an {FORMAT} file")
        n_parts = int(f.attrs["n_parts"])
        if sorted(f["parts"], key=int) != [str(r) for r in range(n_parts)]:
            raise CheckpointError(f"parts missing: expected {n_parts}")
        state_parts: dict[int, int] = {}
        layout_parts: dict[str, int] = {}
        for rank in range(n_parts):
            part = f[f"parts/{rank}"]
            for key in part["ids"][...].tolist():
                if state_parts.setdefault(key, rank) != rank:
                    raise CheckpointError(f"state {key} stored twice")
            for name, entry in part["states"].items():
                shapes = entry["shapes"][...]
                if len(shapes) != len(entry["ids"]) or entry["data"].size != int(
                    np.prod(shapes, axis=1).sum()
                ):
                    raise CheckpointError(f"state entry {name!r} of part {rank} is inconsistent")
            layout_parts.update({k.replace("|", "/"): rank for k in part.get("layouts", {})})
        return Checkpoint(
            step=int(f.attrs["step"]),
            load_factor=float(f.attrs["load_factor"]),
            increment=float(f.attrs["increment"]),
            config_digest=str(f.attrs["config_digest"]),
            group_size=int(f.attrs["group_size"]),
            force_scale=float(f.attrs["force_scale"]),
            **{key: f[key][...] for key in _ARRAYS},
            history=f["history"][...].tolist(),
            path=path,
            state_parts=state_parts,
            layout_parts=layout_parts,
        )


def read_micro_states(
    comm: MPI.Comm, checkpoint: Checkpoint, keys: Iterable[int], layouts: Iterable[str] = ()
) -> tuple[dict[int, Any], dict[str, Any]]:
    """Collective: this rank's wanted micro states and layouts from the checkpoint's file.

    Returns the states of those ``keys`` that have one (the others were None) and the
    ``layouts`` asked for. Every rank opens the file for reading and takes only what it asks
    for, so memory follows its own share of the run.
    """
    wanted = sorted({k for k in keys if k in checkpoint.state_parts})
    flat: dict[int, dict[str, np.ndarray]] = {k: {} for k in wanted}
    trees: dict[str, Any] = {}
    error = None
    try:
        with h5py.File(checkpoint.path, "r", locking=False) as f:
            for rank in sorted({checkpoint.state_parts[k] for k in wanted}):
                for name, entry in f[f"parts/{rank}/states"].items():
                    _read_entry(entry, name.replace("|", "/"), flat)
            for key in layouts:
                rank = checkpoint.layout_parts[key]
                trees[key] = _read_tree(f[f"parts/{rank}/layouts/{key.replace('/', '|')}"])
    except (OSError, KeyError, ValueError) as e:
        error = f"checkpoint {checkpoint.path}: cannot read rank {comm.rank}'s micro states ({e})"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise CheckpointError(errors[0])
    return {k: _unflatten(s) for k, s in flat.items()}, trees


def _read_entry(entry: h5py.Group, name: str, flat: dict[int, dict[str, np.ndarray]]) -> None:
    """Add entry ``name`` of the states in ``flat`` that have it, in one contiguous read."""
    ids = entry["ids"][...]
    rows = np.flatnonzero(np.isin(ids, list(flat)))
    if rows.size == 0:
        return
    shapes = entry["shapes"][...]
    offsets = np.concatenate([[0], np.cumsum(np.prod(shapes, axis=1))])
    first = int(offsets[rows[0]])
    data = entry["data"][first : int(offsets[rows[-1] + 1])]
    for row in rows:
        start, end = int(offsets[row]) - first, int(offsets[row + 1]) - first
        flat[int(ids[row])][name] = data[start:end].reshape(shapes[row])
