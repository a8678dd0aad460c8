"""Reduced-basis files in HDF5: the POD basis, the empirical cubature and what they came from.

They are written atomically and refused when they do not fit.

File layout (format ``fe2x-reduced-basis``, version 1), readable with plain h5py:

- root attributes: ``format``, ``format_version``; ``provenance`` (JSON: the RVE the basis was
  built on, see :func:`fe2x.micro.reduced_provenance.rve_provenance`); ``report`` (JSON: POD energy,
  cubature error, training data, calibration); ``n_elastic`` (leading modes spanning the
  elastic correctors); ``strain_bound`` (largest Mandel norm ‖E‖ of the training strains);
  ``effectivity`` (κ: the relative stress error over the error indicator, largest over the
  training data, so that κ η estimates the error);
- ``Phi`` ``(n_reduced, r)``: the basis, orthonormal in the energy inner product
  ``Φᵀ Pᵀ K_el P Φ = I``;
- ``points`` ``(m,)``: the cubature points (indices of the RVE's quadrature points, cell by
  cell) and ``weights`` ``(m,)``: their positive weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fe2x.errors import Fe2xError
from fe2x.io.results import atomic_path

__all__ = ["FORMAT", "VERSION", "ReducedBasis", "read_reduced_basis", "write_reduced_basis"]

FORMAT = "fe2x-reduced-basis"
VERSION = 1


@dataclass(frozen=True)
class ReducedBasis:
    """A POD basis of an RVE's fluctuation and an empirical cubature of its integrands.

    Attributes:
        Phi: ``(n_reduced, r)`` basis of the reduced fluctuation dofs, ``Φᵀ M Φ = I`` with
            ``M = Pᵀ K_el P``.
        points: ``(m,)`` indices of the cubature points among the RVE's quadrature points.
        weights: ``(m,)`` their weights, positive, summing to the cell volume.
        provenance: what the basis was built from (mesh, phases, laws, boundary condition).
        n_elastic: the first ``n_elastic`` modes span the elastic correctors.
        strain_bound: the largest ‖E‖ (Mandel) of the training strains.
        effectivity: κ, the largest relative stress error over the indicator on the training
            data (NaN: not calibrated).
        report: how it was built (energy captured, cubature error, training files, ...).
    """

    Phi: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    provenance: dict[str, Any]
    n_elastic: int = 0
    strain_bound: float = np.inf
    effectivity: float = np.nan
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Phi = np.asarray(self.Phi, dtype=float)
        points = np.asarray(self.points, dtype=np.int64)
        weights = np.asarray(self.weights, dtype=float)
        if Phi.ndim != 2 or Phi.shape[1] == 0:
            raise Fe2xError(
                f"reduced basis: Phi must be a non-empty (n, r) matrix, got {Phi.shape}"
            )
        if points.ndim != 1 or points.shape != weights.shape or points.size == 0:
            raise Fe2xError(
                f"reduced basis: points {points.shape} and weights {weights.shape} must be "
                "non-empty and of one length"
            )
        if not (np.isfinite(Phi).all() and np.isfinite(weights).all() and np.all(weights > 0)):
            raise Fe2xError("reduced basis: Phi or the cubature weights are not finite/positive")
        if np.unique(points).size != points.size or points.min() < 0:
            raise Fe2xError("reduced basis: the cubature points must be distinct indices")
        if not 0 <= self.n_elastic <= Phi.shape[1]:
            raise Fe2xError(
                f"reduced basis: n_elastic = {self.n_elastic} outside 0..{Phi.shape[1]}"
            )
        object.__setattr__(self, "Phi", Phi)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "weights", weights)

    @property
    def size(self) -> int:
        """Number of modes r."""
        return int(self.Phi.shape[1])


def write_reduced_basis(path: Path, basis: ReducedBasis) -> None:
    """Write ``basis`` to ``path`` atomically (a failed write leaves no file behind)."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w", locking=False) as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = VERSION
                f.attrs["provenance"] = json.dumps(basis.provenance, sort_keys=True)
                f.attrs["report"] = json.dumps(basis.report, sort_keys=True, default=float)
                f.attrs["n_elastic"] = int(basis.n_elastic)
                f.attrs["strain_bound"] = float(basis.strain_bound)
                f.attrs["effectivity"] = float(basis.effectivity)
                f.create_dataset("Phi", data=basis.Phi, fletcher32=True)
                f.create_dataset("points", data=basis.points, fletcher32=True)
                f.create_dataset("weights", data=basis.weights, fletcher32=True)
    except OSError as e:
        raise Fe2xError(f"cannot write reduced basis {path}: {e.strerror or e}") from None


def read_reduced_basis(path: Path) -> ReducedBasis:
    """The basis in ``path``; a missing, foreign, other-version or corrupt file raises one line."""
    path = Path(path)
    if path.is_dir():
        raise Fe2xError(f"reduced basis {path} is a directory, not a file")
    try:
        with h5py.File(path, "r", locking=False) as f:
            if f.attrs.get("format") != FORMAT:
                raise Fe2xError(f"{path} is not an {FORMAT} file")
            version = int(f.attrs.get("format_version", -1))
            if version != VERSION:
                raise Fe2xError(
                    f"{path} has {FORMAT} version {version}; this fe2x reads version {VERSION}"
                )
            return ReducedBasis(
                Phi=f["Phi"][...],
                points=f["points"][...],
                weights=f["weights"][...],
                provenance=json.loads(f.attrs["provenance"]),
                n_elastic=int(f.attrs["n_elastic"]),
                strain_bound=float(f.attrs["strain_bound"]),
                effectivity=float(f.attrs["effectivity"]),
                report=json.loads(f.attrs["report"]),
            )
    except FileNotFoundError:
        raise Fe2xError(f"no reduced basis file {path}") from None
    except (OSError, KeyError, ValueError) as e:
        raise Fe2xError(f"reduced basis {path} is unreadable or corrupt ({e})") from None
