"""FE² checkpoints in HDF5: gathered to rank 0, written atomically, checked when read.

Everything in a checkpoint is independent of the partition, so a run can continue on another
number of ranks or RVE group size: the macro displacement is stored per node with its
coordinates (matched again on restart), and every micro state by the global id of its macro
point. A micro state is a nested dict of numpy arrays (or None for a point that never left the
elastic range). An RVE distributed over a group stores one piece per group rank, located by
that rank's *layout* (node coordinates, quadrature-point keys), stored once per microstructure,
group and rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

import h5py
import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.results import atomic_path

FORMAT = "fe2x-checkpoint-2"


class CheckpointError(Fe2xError):
    """A checkpoint is missing, corrupt, or belongs to another configuration."""


@dataclass
class Checkpoint:
    """The state of an FE² run after a converged step.

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
        states: point id -> committed micro state, for points that have one.
        history: rows of history.csv so far.
        force_scale: the macro Newton's absolute-tolerance reference (see MacroProblem).
        layouts: ``"<microstructure>/<group>/<group rank>"`` -> where that rank's pieces of
            the states of that microstructure lie (models with partition-independent states).
        States are keyed by ``id * group_size + group rank``.
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
    states: dict[int, Any] = field(default_factory=dict)
    history: list[list[float]] = field(default_factory=list)
    force_scale: float = 0.0
    layouts: dict[str, Any] = field(default_factory=dict)


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
    """Collective: gather each rank's part into ``checkpoint`` and write ``path`` atomically.

    ``local`` holds this rank's ``coordinates`` and ``displacement`` (owned nodes),
    ``states`` (point id -> committed state, for the states this rank holds) and ``layouts``.
    """
    gathered = comm.gather(local, root=0)
    error = None
    if comm.rank == 0:
        try:
            checkpoint.coordinates = np.vstack([g["coordinates"] for g in gathered])
            checkpoint.displacement = np.vstack([g["displacement"] for g in gathered])
            for g in gathered:
                checkpoint.states.update(g["states"])
                checkpoint.layouts.update(g["layouts"])
            with atomic_path(path) as tmp:
                _write(tmp, checkpoint)
        except (OSError, CheckpointError) as e:
            error = f"cannot write checkpoint {path}: {e}"
    error = comm.bcast(error, root=0)
    if error:
        raise CheckpointError(error)


def _write(path: Path, c: Checkpoint) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT
        for key in (
            "step",
            "load_factor",
            "increment",
            "config_digest",
            "group_size",
            "force_scale",
        ):
            f.attrs[key] = getattr(c, key)
        for key in ("coordinates", "displacement", "point_ids", "assignment", "costs"):
            f.create_dataset(key, data=getattr(c, key))
        f.create_dataset(
            "history", data=np.asarray(c.history, dtype=float).reshape(len(c.history), -1)
        )
        ids = sorted(p for p, s in c.states.items() if s is not None)
        states = f.create_group("states")
        states.create_dataset("ids", data=np.asarray(ids, dtype=np.int64))
        flat = [_flatten(c.states[p]) for p in ids]
        for key in sorted({k for s in flat for k in s}):
            arrays = [s[key] for s in flat]
            group = states.create_group(key.replace("/", "|"))
            group.create_dataset(
                "data", data=np.concatenate([a.ravel() for a in arrays]) if arrays else []
            )
            group.create_dataset(
                "shapes",
                data=np.array([a.shape for a in arrays], dtype=np.int64).reshape(len(arrays), -1),
            )
        layouts = f.create_group("layouts")
        for key, layout in c.layouts.items():
            _write_tree(layouts.create_group(key.replace("/", "|")), layout)
        f.flush()
        os.fsync(f.id.get_vfd_handle())


def read_checkpoint(comm: MPI.Comm, path: Path, config_digest: str) -> Checkpoint:
    """Collective: read and check ``path`` on rank 0 and share it with every rank."""
    result: Checkpoint | str | None = None
    if comm.rank == 0:
        try:
            result = _read(path)
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


def _read(path: Path) -> Checkpoint:
    if not path.exists():
        raise FileNotFoundError(path)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"not an {FORMAT} file")
        states_group = f["states"]
        ids = states_group["ids"][...]
        flat: list[dict[str, np.ndarray]] = [{} for _ in ids]
        for name, group in states_group.items():
            if name == "ids":
                continue
            data, shapes = group["data"][...], group["shapes"][...]
            offset = 0
            for i, shape in enumerate(shapes):
                size = int(np.prod(shape))
                flat[i][name.replace("|", "/")] = data[offset : offset + size].reshape(shape)
                offset += size
            if offset != data.size:
                raise CheckpointError(f"state data {name!r} has the wrong length")
        layouts = {key.replace("|", "/"): _read_tree(g) for key, g in f["layouts"].items()}
        history = f["history"][...]
        return Checkpoint(
            step=int(f.attrs["step"]),
            load_factor=float(f.attrs["load_factor"]),
            increment=float(f.attrs["increment"]),
            config_digest=str(f.attrs["config_digest"]),
            group_size=int(f.attrs["group_size"]),
            coordinates=f["coordinates"][...],
            displacement=f["displacement"][...],
            point_ids=f["point_ids"][...],
            assignment=f["assignment"][...],
            costs=f["costs"][...],
            states={int(p): _unflatten(s) for p, s in zip(ids, flat, strict=True)},
            history=history.tolist(),
            force_scale=float(f.attrs["force_scale"]),
            layouts=layouts,
        )
