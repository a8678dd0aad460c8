"""Grain orientations: rotation matrices from Bunge Euler angles, quaternions, textures, files.

The textures are random or fibre textures; the files hold one orientation per line.

Convention (used by every function here and by :class:`fe2x.materials.crystal.
CrystalPlasticity`): an orientation is the rotation matrix ``R`` that maps the components of a
vector in the crystal frame to its components in the sample frame, ``v_sample = R v_crystal``;
its columns are the crystal axes [100], [010], [001] written in the sample frame.

- Bunge Euler angles ``(φ1, Φ, φ2)``, ZXZ: the sample frame is brought onto the crystal frame
  by rotating it by φ1 about its Z axis, then by Φ about the new X axis, then by φ2 about the
  new Z axis. The classical (passive) Bunge matrix ``g = Rz(φ2) Rx(Φ) Rz(φ1)`` maps sample
  components to crystal components, so ``R = gᵀ = Z(φ1) X(Φ) Z(φ2)`` with ``Z, X`` the active
  rotations about the sample axes.
- Quaternions ``q = (w, x, y, z)``, scalar first, unit, Hamilton product: ``q = (cos ω/2,
  sin ω/2 u)`` is the active rotation ``R`` by ω about the unit axis ``u`` (so
  ``v_sample = q v_crystal q*``). ``q`` and ``-q`` are the same rotation; functions return the
  one with ``w >= 0``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fe2x.errors import MaterialError

__all__ = [
    "ORIENTATION_KINDS",
    "QUATERNION_NORM_TOL",
    "axis_angle_to_matrix",
    "euler_to_matrix",
    "euler_to_quaternion",
    "fibre_texture",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "quaternion_to_euler",
    "quaternion_to_matrix",
    "random_orientations",
    "read_orientations",
]

#: What the rows of an orientation file hold, and the file header that says so.
ORIENTATION_KINDS: dict[str, tuple[str, ...]] = {
    "euler_degrees": ("phi1", "phi", "phi2"),
    "euler_radians": ("phi1", "phi", "phi2"),
    "quaternion": ("q0", "q1", "q2", "q3"),
}

#: A quaternion read from a file is accepted (and normalised) when | |q| - 1 | is below this.
QUATERNION_NORM_TOL = 1e-4

_DEGENERATE = 1e-12  # sin Φ below this: φ1 and φ2 are not separable, φ2 is set to 0


def _vectors(a: npt.ArrayLike, size: int, what: str) -> tuple[np.ndarray, bool]:
    """``a`` as float rows ``(n, size)`` and whether it was a single row."""
    a = np.asarray(a, dtype=float)
    if a.shape[-1:] != (size,) or a.ndim > 2:
        raise ValueError(f"{what}: shape {a.shape}; expected ({size},) or (n, {size})")
    return np.atleast_2d(a), a.ndim == 1


def _matrices(R: npt.ArrayLike) -> tuple[np.ndarray, bool]:
    """``R`` as ``(n, 3, 3)`` and whether it was a single matrix."""
    R = np.asarray(R, dtype=float)
    if R.shape[-2:] != (3, 3) or R.ndim > 3:
        raise ValueError(f"rotation matrices: shape {R.shape}; expected (3, 3) or (n, 3, 3)")
    return R.reshape(-1, 3, 3), R.ndim == 2


def euler_to_matrix(euler: npt.ArrayLike, degrees: bool = False) -> np.ndarray:
    """Orientations ``R = Z(φ1) X(Φ) Z(φ2)`` (crystal → sample) of Bunge angles ``(..., 3)``.

    >>> euler_to_matrix([90.0, 0.0, 0.0], degrees=True).round(12) @ [1.0, 0.0, 0.0]
    array([0., 1., 0.])
    """
    e, single = _vectors(euler, 3, "Euler angles")
    if degrees:
        e = np.radians(e)
    c1, cP, c2 = np.cos(e).T
    s1, sP, s2 = np.sin(e).T
    R = np.empty((e.shape[0], 3, 3))
    R[:, 0, 0] = c1 * c2 - s1 * s2 * cP
    R[:, 0, 1] = -c1 * s2 - s1 * c2 * cP
    R[:, 0, 2] = s1 * sP
    R[:, 1, 0] = s1 * c2 + c1 * s2 * cP
    R[:, 1, 1] = -s1 * s2 + c1 * c2 * cP
    R[:, 1, 2] = -c1 * sP
    R[:, 2, 0] = s2 * sP
    R[:, 2, 1] = c2 * sP
    R[:, 2, 2] = cP
    return R[0] if single else R


def matrix_to_euler(R: npt.ArrayLike, degrees: bool = False) -> np.ndarray:
    """Bunge angles ``(..., 3)`` of orientations, φ1, φ2 in [0, 2π), Φ in [0, π].

    Where Φ = 0 or π only φ1 ± φ2 is defined; then φ2 = 0.
    """
    R, single = _matrices(R)
    sP = np.hypot(R[:, 0, 2], R[:, 1, 2])
    Phi = np.arctan2(sP, R[:, 2, 2])
    phi1 = np.arctan2(R[:, 0, 2], -R[:, 1, 2])
    phi2 = np.arctan2(R[:, 2, 0], R[:, 2, 1])
    flat = sP < _DEGENERATE
    # Φ = 0: R = Z(φ1 + φ2); Φ = π: R = Z(φ1 - φ2) X(π); with φ2 = 0, φ1 is the Z angle
    phi1[flat] = np.arctan2(R[flat, 1, 0], R[flat, 0, 0])
    phi2[flat] = 0.0
    e = np.stack([np.mod(phi1, 2.0 * np.pi), Phi, np.mod(phi2, 2.0 * np.pi)], axis=-1)
    e[:, [0, 2]] = np.where(e[:, [0, 2]] >= 2.0 * np.pi, 0.0, e[:, [0, 2]])
    if degrees:
        e = np.degrees(e)
    return e[0] if single else e


def quaternion_to_matrix(q: npt.ArrayLike) -> np.ndarray:
    """Orientations ``R`` of quaternions ``(..., 4)`` (normalised first)."""
    q, single = _vectors(q, 4, "quaternions")
    norm = np.linalg.norm(q, axis=1)
    if not np.all(norm > 0.0):
        raise ValueError("quaternions: a zero quaternion is no rotation")
    w, x, y, z = (q / norm[:, None]).T
    R = np.empty((q.shape[0], 3, 3))
    R[:, 0, 0] = 1.0 - 2.0 * (y * y + z * z)
    R[:, 0, 1] = 2.0 * (x * y - w * z)
    R[:, 0, 2] = 2.0 * (x * z + w * y)
    R[:, 1, 0] = 2.0 * (x * y + w * z)
    R[:, 1, 1] = 1.0 - 2.0 * (x * x + z * z)
    R[:, 1, 2] = 2.0 * (y * z - w * x)
    R[:, 2, 0] = 2.0 * (x * z - w * y)
    R[:, 2, 1] = 2.0 * (y * z + w * x)
    R[:, 2, 2] = 1.0 - 2.0 * (x * x + y * y)
    return R[0] if single else R


def matrix_to_quaternion(R: npt.ArrayLike) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` with ``w >= 0`` of orientations, by Shepperd's method.

    Each is computed from the largest of ``1 + tr R``, ``1 + 2 R_ii - tr R``, for accuracy at
    every angle.
    """
    R, single = _matrices(R)
    tr = np.trace(R, axis1=1, axis2=2)
    d = np.diagonal(R, axis1=1, axis2=2)
    candidates = np.column_stack([1.0 + tr, 1.0 + 2.0 * d - tr[:, None]])  # 4 w², 4 x², ...
    pick = np.argmax(candidates, axis=1)
    big = 0.5 * np.sqrt(np.maximum(candidates[np.arange(R.shape[0]), pick], 0.0))  # |component|
    # off-diagonal combinations: 4 w x, 4 w y, 4 w z, 4 x y, 4 x z, 4 y z
    wx, wy, wz = R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]
    xy, xz, yz = R[:, 0, 1] + R[:, 1, 0], R[:, 0, 2] + R[:, 2, 0], R[:, 1, 2] + R[:, 2, 1]
    products = np.array(
        [
            [4.0 * big**2, wx, wy, wz],
            [wx, 4.0 * big**2, xy, xz],
            [wy, xy, 4.0 * big**2, yz],
            [wz, xz, yz, 4.0 * big**2],
        ]
    )  # products[i, j] = 4 q_i q_j where i or j is the picked component
    q = products[pick, :, np.arange(R.shape[0])] / (4.0 * big[:, None])
    q *= np.where(q[:, :1] < 0.0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=1)[:, None]
    return q[0] if single else q


def euler_to_quaternion(euler: npt.ArrayLike, degrees: bool = False) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` of Bunge angles ``(..., 3)``."""
    return matrix_to_quaternion(euler_to_matrix(euler, degrees))


def quaternion_to_euler(q: npt.ArrayLike, degrees: bool = False) -> np.ndarray:
    """Bunge angles ``(..., 3)`` of quaternions ``(..., 4)``."""
    return matrix_to_euler(quaternion_to_matrix(q), degrees)


def axis_angle_to_matrix(axis: npt.ArrayLike, angle: npt.ArrayLike) -> np.ndarray:
    """Rotations by ``angle`` (radians) about ``axis`` (normalised), by Rodrigues' formula.

    ``R = I + sin ω K + (1 - cos ω) K²`` with ``K v = u × v``; axes ``(..., 3)`` and angles
    ``(...)`` broadcast together.
    """
    axis = np.asarray(axis, dtype=float)
    angle = np.asarray(angle, dtype=float)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    if not np.all(norm > 0.0):
        raise ValueError("axis_angle_to_matrix: a zero axis is no direction")
    u = axis / norm
    K = np.zeros((*u.shape[:-1], 3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -u[..., 2], u[..., 1], -u[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def random_orientations(n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``n`` orientations uniform on SO(3) (Haar measure), reproducible from ``seed``.

    Shoemake's uniform unit quaternions: with u1, u2, u3 uniform on [0, 1),
    ``q = (√(1−u1) sin 2πu2, √(1−u1) cos 2πu2, √u1 sin 2πu3, √u1 cos 2πu3)``.
    """
    u1, u2, u3 = np.random.default_rng(seed).random((3, int(n)))
    a, b = np.sqrt(1.0 - u1), np.sqrt(u1)
    t2, t3 = 2.0 * np.pi * u2, 2.0 * np.pi * u3
    q = np.column_stack([a * np.sin(t2), a * np.cos(t2), b * np.sin(t3), b * np.cos(t3)])
    return quaternion_to_matrix(q).reshape(-1, 3, 3)


def fibre_texture(
    n: int,
    crystal_direction: npt.ArrayLike,
    sample_direction: npt.ArrayLike,
    spread: float,
    seed: int | np.random.Generator | None = None,
    degrees: bool = True,
) -> np.ndarray:
    """``n`` orientations of a fibre texture: uniform spin about the fibre, Gaussian tilt.

    The fibre puts ``crystal_direction`` (e.g. [1, 1, 1]) along ``sample_direction``
    (e.g. [0, 0, 1]).

    ``R = T S R0``: ``R0`` maps the crystal direction onto the sample direction ``d``, ``S`` is a
    rotation about ``d`` by a uniform angle, and ``T`` a rotation by ``|t|`` about ``t / |t|``,
    where the tilt vector ``t`` ⊥ ``d`` has independent normal components of standard
    deviation ``spread``. The angle between ``R c`` and ``d`` is then ``|t|``, Rayleigh
    distributed with scale ``spread``; ``spread = 0`` is the ideal fibre.
    """
    c = np.asarray(crystal_direction, dtype=float)
    d = np.asarray(sample_direction, dtype=float)
    for what, v in (("crystal_direction", c), ("sample_direction", d)):
        if v.shape != (3,) or not np.all(np.isfinite(v)) or not np.linalg.norm(v) > 0.0:
            raise MaterialError(f"fibre texture: {what} = {v.tolist()} is not a 3D direction")
    if not (math.isfinite(spread) and spread >= 0.0):
        raise MaterialError(f"fibre texture: spread = {spread!r} must be finite and >= 0")
    c, d = c / np.linalg.norm(c), d / np.linalg.norm(d)
    sigma = math.radians(spread) if degrees else float(spread)
    rng = np.random.default_rng(seed)
    # R0: c -> d about c × d (or about any axis ⊥ c when c = -d)
    axis = np.cross(c, d)
    if np.linalg.norm(axis) < 1e-12:
        e = np.eye(3)[np.argmin(np.abs(c))]
        axis = np.cross(c, e) if c @ d < 0 else c
    R0 = axis_angle_to_matrix(axis, math.atan2(np.linalg.norm(np.cross(c, d)), c @ d))
    spin = axis_angle_to_matrix(d, rng.uniform(0.0, 2.0 * np.pi, int(n)))
    e1 = np.cross(d, np.eye(3)[np.argmin(np.abs(d))])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    t = sigma * rng.standard_normal((int(n), 2))
    tilt_axis = t[:, :1] * e1 + t[:, 1:] * e2
    angle = np.linalg.norm(t, axis=1)
    tilt = np.broadcast_to(np.eye(3), (int(n), 3, 3)).copy()
    tilted = angle > 0.0
    tilt[tilted] = axis_angle_to_matrix(tilt_axis[tilted], angle[tilted])
    return tilt @ spin @ R0


def _orientation_error(path: Path, message: str) -> MaterialError:
    return MaterialError(f"orientation file {str(path)!r}: {message}")


def _kind_of_header(path: Path, line_no: int, tokens: list[str]) -> str:
    """``"euler_degrees"`` or ``"quaternion"`` from a header row naming the columns."""
    names = tuple(t.lower() for t in tokens)
    for kind in ("euler_degrees", "quaternion"):
        if names == ORIENTATION_KINDS[kind]:
            return kind
    raise _orientation_error(
        path,
        f"line {line_no}: header {', '.join(tokens)!r} is unknown; allowed: 'phi1, Phi, phi2' "
        "(Euler angles in degrees) or 'q0, q1, q2, q3' (quaternions)",
    )


def read_orientations(
    path: str | Path, kind: str | None = None, expected: int | None = None
) -> np.ndarray:
    """Orientations ``(n, 3, 3)`` from a text or CSV file with one row per grain.

    Values are separated by commas or white space; blank lines and lines starting with ``#``
    are skipped. Rows are Bunge Euler angles ``phi1 Phi phi2`` (degrees unless ``kind`` is
    ``"euler_radians"``) or quaternions ``q0 q1 q2 q3`` (scalar first, see the module notes).
    What they are is said by ``kind`` (one of :data:`ORIENTATION_KINDS`) or by a first row
    naming the columns (``phi1, Phi, phi2`` means degrees); with neither, Euler angles in
    degrees. Quaternions must be unit to :data:`QUATERNION_NORM_TOL` and are normalised.

    Args:
        path: the file.
        kind: ``"euler_degrees"``, ``"euler_radians"`` or ``"quaternion"``; None: from the
            header, else ``"euler_degrees"``.
        expected: the number of grains the file must hold, or None.

    Raises:
        MaterialError: unreadable file, unknown header or kind, a row with the wrong number
            of values, a value that is not a finite number, a non-unit quaternion, or not
            ``expected`` rows.
    """
    path = Path(path)
    if kind is not None and kind not in ORIENTATION_KINDS:
        raise _orientation_error(
            path, f"kind = {kind!r} is unknown; allowed: {', '.join(map(repr, ORIENTATION_KINDS))}"
        )
    kind_in_file = None
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _orientation_error(path, f"cannot be read ({exc.__class__.__name__})") from None
    rows: list[list[float]] = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = [t.strip() for t in (line.split(",") if "," in line else line.split())]
        numbers = [_number(t) for t in tokens]
        if not rows and kind_in_file is None and all(v is None for v in numbers):
            kind_in_file = _kind_of_header(path, line_no, tokens)
            if kind is not None and kind[:5] != kind_in_file[:5]:
                raise _orientation_error(
                    path, f"line {line_no}: the header names {kind_in_file} columns, not {kind}"
                )
            kind = kind or kind_in_file
            continue
        kind = kind or "euler_degrees"
        columns = ORIENTATION_KINDS[kind]
        if len(tokens) != len(columns):
            raise _orientation_error(
                path,
                f"line {line_no}: {len(tokens)} values, expected {len(columns)} "
                f"({' '.join(columns)})",
            )
        bad = next((t for t, v in zip(tokens, numbers, strict=True) if v is None), None)
        if bad is not None:
            raise _orientation_error(path, f"line {line_no}: {bad!r} is not a number")
        values = [v for v in numbers if v is not None]  # all of them, as checked above
        if not all(math.isfinite(v) for v in values):
            raise _orientation_error(path, f"line {line_no}: a value is not finite")
        rows.append(values)
    if not rows:
        raise _orientation_error(path, "holds no orientations")
    if expected is not None and len(rows) != expected:
        raise _orientation_error(path, f"holds {len(rows)} orientations, expected {expected}")
    a = np.array(rows)
    if kind == "quaternion":
        off = np.abs(np.linalg.norm(a, axis=1) - 1.0)
        if np.any(off > QUATERNION_NORM_TOL):
            worst = int(np.argmax(off))
            raise _orientation_error(
                path,
                f"quaternion {worst + 1} has norm {np.linalg.norm(a[worst]):.6g}, not 1 "
                f"(allowed | |q| - 1 | <= {QUATERNION_NORM_TOL:g})",
            )
        return quaternion_to_matrix(a).reshape(-1, 3, 3)
    return euler_to_matrix(a, degrees=kind == "euler_degrees").reshape(-1, 3, 3)


def _number(token: str) -> float | None:
    """``token`` as a float, or None if it is not a number."""
    try:
        return float(token)
    except ValueError:
        return None
