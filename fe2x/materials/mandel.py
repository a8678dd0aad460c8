"""Mandel notation: conversions between symmetric tensors and orthonormal vector/matrix form.

3D order 11, 22, 33, 23, 13, 12 and 2D (plane strain) order 11, 22, 12, with √2 on the
shear terms, so that a : b = a_mandel · b_mandel and rotations act as orthogonal matrices.
"""

import numpy as np
import numpy.typing as npt

MANDEL_3D = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
MANDEL_2D = ((0, 0), (1, 1), (0, 1))
PLANE_STRAIN_ROWS = (0, 1, 5)
"""Rows (and columns) of the 3D Mandel vector (matrix) kept in 2D plane strain."""

_PAIRS = {2: MANDEL_2D, 3: MANDEL_3D}
_DIM_OF_N = {3: 2, 6: 3}


def n_mandel(dim: int) -> int:
    """Length of a Mandel vector in ``dim`` dimensions.

    >>> n_mandel(2), n_mandel(3)
    (3, 6)
    """
    _check_dim(dim)
    return dim * (dim + 1) // 2


def component_labels(dim: int) -> list[str]:
    """Index labels of the Mandel components, e.g. for result-file headers.

    >>> component_labels(2)
    ['11', '22', '12']
    """
    _check_dim(dim)
    return [f"{i + 1}{j + 1}" for i, j in _PAIRS[dim]]


def mandel_weights(dim: int) -> np.ndarray:
    """The factor of each Mandel component over its tensor component (1, or √2 for shears).

    >>> mandel_weights(2).round(4).tolist()
    [1.0, 1.0, 1.4142]
    """
    _check_dim(dim)
    return _indices(dim)[2]


def _check_dim(dim: int) -> None:
    if dim not in _PAIRS:
        raise ValueError(f"dim = {dim!r} must be 2 or 3")


def _dim_from_n(n: int, dim: int | None) -> int:
    if n not in _DIM_OF_N:
        raise ValueError(f"Mandel length {n} must be 3 (2D) or 6 (3D)")
    if dim is not None and _DIM_OF_N[n] != dim:
        raise ValueError(f"Mandel length {n} does not match dim = {dim}")
    return _DIM_OF_N[n]


def _indices(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices i, column indices j and weights (1 or √2) of the Mandel components."""
    pairs = np.array(_PAIRS[dim])
    i, j = pairs[:, 0], pairs[:, 1]
    w = np.where(i == j, 1.0, np.sqrt(2.0))
    return i, j, w


def tensor_to_mandel(t: npt.ArrayLike) -> np.ndarray:
    """Mandel vector of the symmetric part of second-order tensors, (..., d, d) -> (..., n).

    >>> tensor_to_mandel([[1.0, 2.0], [2.0, 3.0]]).round(4)
    array([1.    , 3.    , 2.8284])
    """
    t = np.asarray(t, dtype=float)
    d = t.shape[-1]
    if t.ndim < 2 or t.shape[-2] != d:
        raise ValueError(f"expected (..., d, d) tensors, got shape {t.shape}")
    _check_dim(d)
    i, j, w = _indices(d)
    return 0.5 * (t[..., i, j] + t[..., j, i]) * w


def mandel_to_tensor(v: npt.ArrayLike, dim: int | None = None) -> np.ndarray:
    """Symmetric tensors from Mandel vectors, (..., n) -> (..., d, d); ``dim`` is checked if given.

    >>> mandel_to_tensor([1.0, 3.0, 2.0**0.5])
    array([[1., 1.],
           [1., 3.]])
    """
    v = np.asarray(v, dtype=float)
    d = _dim_from_n(v.shape[-1], dim)
    i, j, w = _indices(d)
    t = np.zeros((*v.shape[:-1], d, d))
    t[..., i, j] = v / w
    t[..., j, i] = v / w
    return t


def tensor4_to_mandel(C: npt.ArrayLike) -> np.ndarray:
    """Mandel matrix of fourth-order tensors, (..., d, d, d, d) -> (..., n, n).

    C_IJ = w_I w_J C_ijkl with (i, j) = pair I, (k, l) = pair J, w = 1 or √2; the tensor is
    first symmetrized in its minor index pairs (ij) and (kl).
    """
    C = np.asarray(C, dtype=float)
    d = C.shape[-1]
    if C.ndim < 4 or C.shape[-4:] != (d, d, d, d):
        raise ValueError(f"expected (..., d, d, d, d) tensors, got shape {C.shape}")
    _check_dim(d)
    i, j, w = _indices(d)
    I, J, K, L = i[:, None], j[:, None], i[None, :], j[None, :]
    minor = 0.25 * (
        C[..., I, J, K, L] + C[..., J, I, K, L] + C[..., I, J, L, K] + C[..., J, I, L, K]
    )
    return minor * np.outer(w, w)


def mandel_to_tensor4(M: npt.ArrayLike, dim: int | None = None) -> np.ndarray:
    """Minor-symmetric fourth-order tensors from Mandel matrices, (..., n, n) -> (..., d,d,d,d)."""
    M = np.asarray(M, dtype=float)
    n = M.shape[-1]
    if M.ndim < 2 or M.shape[-2] != n:
        raise ValueError(f"expected (..., n, n) matrices, got shape {M.shape}")
    d = _dim_from_n(n, dim)
    i, j, w = _indices(d)
    I, J, K, L = i[:, None], j[:, None], i[None, :], j[None, :]
    values = M / np.outer(w, w)
    C = np.zeros((*M.shape[:-2], d, d, d, d))
    for a, b in ((I, J), (J, I)):
        for c, e in ((K, L), (L, K)):
            C[..., a, b, c, e] = values
    return C


def plane_strain(C6: npt.ArrayLike) -> np.ndarray:
    """Plane-strain Mandel stiffness (..., 3, 3): rows/columns PLANE_STRAIN_ROWS of a 6x6 one."""
    C6 = np.asarray(C6, dtype=float)
    if C6.shape[-2:] != (6, 6):
        raise ValueError(f"expected (..., 6, 6) Mandel matrices, got shape {C6.shape}")
    rows = list(PLANE_STRAIN_ROWS)
    return C6[..., rows, :][..., :, rows]


def rotation_mandel(R: npt.ArrayLike) -> np.ndarray:
    """Orthogonal Mandel matrix Q of a rotation R (3x3 -> 6x6, in-plane 2x2 -> 3x3).

    Q maps the Mandel vector of a tensor a to that of R a Rᵀ, so a stiffness rotates as
    C' = Q C Qᵀ. Built column by column from the rotated orthonormal Mandel basis.
    """
    R = np.asarray(R, dtype=float)
    d = R.shape[-1]
    if R.ndim < 2 or R.shape[-2] != d:
        raise ValueError(f"expected (..., d, d) rotation matrices, got shape {R.shape}")
    _check_dim(d)
    if not np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(d), rtol=0.0, atol=1e-10):
        raise ValueError("R is not orthogonal (R Rᵀ != I)")
    basis = mandel_to_tensor(np.eye(n_mandel(d)))  # (n, d, d), orthonormal under ':'
    rotated = np.einsum("...ai,Jij,...bj->...Jab", R, basis, R)
    return np.swapaxes(tensor_to_mandel(rotated), -1, -2)


def lame_parameters(E: float, nu: float) -> tuple[float, float]:
    """Lamé constants (λ, μ) = (Eν/((1+ν)(1−2ν)), E/(2(1+ν))).

    >>> lame_parameters(1.0, 0.25)
    (0.4, 0.4)
    """
    return float(E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))), float(E / (2.0 * (1.0 + nu)))


def bulk_shear(E: float, nu: float) -> tuple[float, float]:
    """Bulk and shear moduli (K, μ) = (E/(3(1−2ν)), E/(2(1+ν))).

    >>> bulk_shear(3.0, 0.25)
    (2.0, 1.2)
    """
    return float(E / (3.0 * (1.0 - 2.0 * nu))), float(E / (2.0 * (1.0 + nu)))


def isotropic_stiffness(E: float, nu: float) -> np.ndarray:
    """3D isotropic Mandel stiffness (6, 6): C = λ 1⊗1 + 2μ I."""
    lam, mu = lame_parameters(E, nu)
    C = 2.0 * mu * np.eye(6)
    C[:3, :3] += lam
    return C
