"""Material cards of effective properties for Abaqus, CalculiX, Ansys APDL and LS-DYNA input decks.

fe2x keeps stiffnesses in Mandel form (order 11, 22, 33, 23, 13, 12, √2 on shears). The solvers
take the Voigt stiffness with engineering shear strains γ = 2ε, C_voigt[I, J] =
C_mandel[I, J]/(w_I w_J) with w = (1, 1, 1, √2, √2, √2), i.e. the tensor components C_ijkl,
with the shear rows reordered to each solver's order. Units are those of the input (fe2x is
unit-agnostic); each card says so in a comment. Only 3D properties are written: a plane-strain
C_eff lacks the out-of-plane terms the solvers' elements need.

What each card follows, as checked in the solvers' documentation:

- CalculiX (User's Manual, doc/CalculiX.tex, and its reader sources): ``*ELASTIC, TYPE=ANISO``
  holds D_IJKL with S_IJ = D_IJKL E_KL summed over all nine K, L (tensor components; an
  isotropic D_1212 = μ), 21 values in the order D1111, D1122, D2222, D1133, D2233, D3333, D1112,
  D2212 | D3312, D1212, D1113, D2213, D3313, D1213, D1313, D1123 | D2223, D3323, D1223, D1323,
  D2323 (eight per line). ``TYPE=ENGINEERING CONSTANTS``: E1, E2, E3, ν12, ν13, ν23, G12, G13 |
  G23. ``*CONDUCTIVITY, TYPE=ANISO``: κ11, κ22, κ33, κ12, κ13, κ23 (conductivitys.f reads them
  in that order, e_c3d_th.f uses the 4th as κ12). ``*EXPANSION, TYPE=ANISO``: α11, α22, α33,
  α12, α13, α23, tensor components (calcmechstrain.f subtracts α12 ΔT from both ∂u1/∂x2 and
  ∂u2/∂x1). Each number is read from at most 20 columns.
- Abaqus (Scripting Reference tables of Elastic, Conductivity and Expansion, which list the
  keyword data lines): the same *ELASTIC orders and D_ijkl meaning (σ = D ε with strains 11, 22,
  33, γ12, γ13, γ23), the same *EXPANSION order, but ``*CONDUCTIVITY, TYPE=ANISO`` takes k11,
  k12, k22, k13, k23, k33 -- not CalculiX's order, hence two formats. Numbers of at most 20
  characters.
- Ansys APDL (Material Reference, Anisotropic Elasticity; Theory Reference, Structural
  Fundamentals): ``TB,ANEL`` (TBOPT = 0, stiffness form) relates x, y, z, xy, yz, xz with
  engineering shear strains, and TBDATA constants C1..C21 are D11, D21, D31, D41, D51, D61, D22,
  D32, D42, D52, D62, D33, D43, D53, D63, D44, D54, D64, D55, D65, D66 (lower triangle by
  columns, six per TBDATA). ``MP,KXX/KYY/KZZ`` and ``MP,ALPX/ALPY/ALPZ`` are orthotropic only.
- LS-DYNA (``*MAT_ANISOTROPIC_ELASTIC``, MAT_002 ANIS, as the keyword manual's card layout is
  generated into ansys/pydyna): MID RO C11 C12 C22 C13 C23 C33 | C14 C24 C34 C44 C15 C25 C35
  C45 | C55 C16 C26 C36 C46 C56 C66 AOPT | XP YP ZP A1 A2 A3 MACF IHIS | V1 V2 V3 D1 D2 D3 BETA
  REF, eight fields of 10 columns; AOPT = 2 with a = e1, d = e2 puts the material axes on the
  cell axes. Its indices 4, 5, 6 are the shears ab, bc, ca (12, 23, 31), engineering strains --
  LS-DYNA's vector convention (taken from its user-material conventions, not read in the
  keyword manual here). Ten columns hold about six significant digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mpi4py import MPI

import numpy as np
import numpy.typing as npt

from fe2x.errors import Fe2xError, MaterialError
from fe2x.io.results import write_on_root
from fe2x.materials.engineering import ORTHOTROPY_TOL, engineering_constants
from fe2x.materials.mandel import mandel_to_tensor

CARD_FORMATS = ("abaqus", "calculix", "ansys", "lsdyna")
ELASTIC_FORMS = ("aniso", "engineering")

_W = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])
_WW = np.outer(_W, _W)
_WW[3:, 3:] = 2.0  # exactly, not √2·√2
# Mandel rows of each solver's Voigt order (Mandel: 11, 22, 33, 23, 13, 12).
_ABAQUS_ORDER = (0, 1, 2, 5, 4, 3)  # 11, 22, 33, 12, 13, 23
_ANSYS_ORDER = (0, 1, 2, 5, 3, 4)  # x, y, z, xy, yz, xz
_LSDYNA_ORDER = (0, 1, 2, 5, 3, 4)  # a, b, c, ab, bc, ca
_UPPER_BY_COLUMNS = tuple((i, j) for j in range(6) for i in range(j + 1))
_LOWER_BY_COLUMNS = tuple((i, j) for j in range(6) for i in range(j, 6))
_K_ABAQUS = ((0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2))
_DIAGONAL_THEN_SHEARS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,79}")
_SYMMETRY_TOL = 1e-8


def material_card(
    fmt: str,
    C_eff: npt.ArrayLike,
    name: str = "FE2X_EFFECTIVE",
    conductivity: npt.ArrayLike | None = None,
    expansion: npt.ArrayLike | None = None,
    density: float | None = None,
    elastic: str = "aniso",
    material_id: int = 1,
    tol: float = ORTHOTROPY_TOL,
) -> str:
    """The text of a material card of C_eff (and k_eff, α_eff, ρ when given) for ``fmt``.

    Args:
        fmt: One of :data:`CARD_FORMATS`.
        C_eff: Effective Mandel stiffness, (6, 6), symmetric positive definite.
        name: Material name (a letter, then up to 79 letters, digits, ``_`` or ``-``).
        conductivity: Effective conductivity, a symmetric (3, 3) tensor or its Mandel (6,) vector.
        expansion: Effective thermal expansion, (3, 3) or Mandel (6,), e.g. from
            :func:`fe2x.materials.thermoelastic.levin_expansion`.
        density: Mass density; LS-DYNA's card requires it.
        elastic: "aniso" (21 constants) or "engineering" (Abaqus/CalculiX ``TYPE=ENGINEERING
            CONSTANTS``, for a C_eff orthotropic in the cell axes to ``tol``).
        material_id: Material number of the Ansys and LS-DYNA cards.
        tol: Orthotropy tolerance of ``elastic="engineering"`` and of Ansys' orthotropic k, α.

    Raises:
        Fe2xError: Unknown format or elastic form, bad name or id.
        MaterialError: Properties of the wrong shape, not symmetric, not positive definite, or
            not representable in the chosen card.
    """
    if fmt not in _WRITERS:
        raise Fe2xError(
            f"unknown material card format {fmt!r}: known are {', '.join(CARD_FORMATS)}"
        )
    if elastic not in ELASTIC_FORMS:
        raise Fe2xError(f"elastic = {elastic!r}: expected one of {', '.join(ELASTIC_FORMS)}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Fe2xError(
            f"material name {name!r} must start with a letter and hold at most 80 letters, "
            "digits, '_' or '-'"
        )
    if not isinstance(material_id, int) or material_id < 1:
        raise Fe2xError(f"material_id = {material_id!r} must be a positive integer")
    if density is not None and not (np.isfinite(density) and density > 0):
        raise MaterialError(f"density = {density!r} must be positive")
    C = _stiffness(C_eff)
    k = None if conductivity is None else _tensor(conductivity, "conductivity")
    a = None if expansion is None else _tensor(expansion, "expansion", definite=False)
    card = _Card(name, C, k, a, density, elastic, material_id, tol)
    return "\n".join(_WRITERS[fmt](card)) + "\n"


def write_material_card(
    comm: MPI.Comm, path: str | Path, fmt: str, C_eff: npt.ArrayLike, **options: object
) -> None:
    """Collective: write :func:`material_card` (same arguments) to ``path`` from rank 0.

    The card is built on every rank, so bad input raises everywhere; the file is written
    atomically.
    """
    text = material_card(fmt, C_eff, **options)  # type: ignore[arg-type]
    write_on_root(comm, Path(path), lambda tmp: tmp.write_text(text))


class _Card:
    """The checked properties of one card."""

    def __init__(
        self,
        name: str,
        C: np.ndarray,
        k: np.ndarray | None,
        alpha: np.ndarray | None,
        density: float | None,
        elastic: str,
        material_id: int,
        tol: float,
    ) -> None:
        self.name, self.C, self.k, self.alpha, self.density = name, C, k, alpha, density
        self.elastic, self.material_id, self.tol = elastic, material_id, tol

    def voigt(self, order: tuple[int, ...]) -> np.ndarray:
        """C_voigt = C_mandel/(w wᵀ) with rows and columns in the solver's ``order``."""
        V = self.C / _WW
        return V[np.ix_(order, order)]


def _abaqus(card: _Card) -> list[str]:
    return _keyword_card(card, conductivity_order=_K_ABAQUS, solver="Abaqus")


def _calculix(card: _Card) -> list[str]:
    return _keyword_card(card, conductivity_order=_DIAGONAL_THEN_SHEARS, solver="CalculiX")


def _keyword_card(
    card: _Card, conductivity_order: tuple[tuple[int, int], ...], solver: str
) -> list[str]:
    """*MATERIAL block of Abaqus and CalculiX; they differ only in the conductivity order."""
    lines = [
        f"** fe2x effective material for {solver}: units are those of the input",
        "** (stiffness: stress, conductivity: power/(length*temperature), expansion: 1/temp.)",
        f"*MATERIAL, NAME={card.name}",
    ]
    if card.elastic == "engineering":
        c = engineering_constants(card.C, card.tol)
        lines += ["*ELASTIC, TYPE=ENGINEERING CONSTANTS", *_data_lines(list(c), 8, _number20)]
    else:
        V = card.voigt(_ABAQUS_ORDER)
        values = [V[i, j] for i, j in _UPPER_BY_COLUMNS]
        lines += ["*ELASTIC, TYPE=ANISO", *_data_lines(values, 8, _number20)]
    if card.k is not None:
        values = [card.k[i, j] for i, j in conductivity_order]
        lines += ["*CONDUCTIVITY, TYPE=ANISO", *_data_lines(values, 8, _number20)]
    if card.alpha is not None:
        values = [card.alpha[i, j] for i, j in _DIAGONAL_THEN_SHEARS]
        lines += ["*EXPANSION, TYPE=ANISO", *_data_lines(values, 8, _number20)]
    if card.density is not None:
        lines += ["*DENSITY", _number20(card.density)]
    return lines


def _ansys(card: _Card) -> list[str]:
    """TB,ANEL stiffness table and orthotropic MP properties of material ``material_id``."""
    if card.elastic != "aniso":
        raise MaterialError("the Ansys card writes the 21 TB,ANEL constants only (elastic='aniso')")
    m = card.material_id
    V = card.voigt(_ANSYS_ORDER)
    values = [V[i, j] for i, j in _LOWER_BY_COLUMNS]
    lines = [
        f"! fe2x effective material {card.name} for Ansys APDL: units are those of the input",
        f"TB,ANEL,{m},1,,0",
    ]
    for start in range(0, 21, 6):
        chunk = ",".join(_number20(v) for v in values[start : start + 6])
        lines.append(f"TBDATA,{start + 1},{chunk}")
    for label, tensor, names in (
        ("conductivity", card.k, ("KXX", "KYY", "KZZ")),
        ("expansion", card.alpha, ("ALPX", "ALPY", "ALPZ")),
    ):
        if tensor is None:
            continue
        _check_diagonal(tensor, label, card.tol)
        lines += [f"MP,{n},{m},{_number20(tensor[i, i])}" for i, n in enumerate(names)]
    if card.density is not None:
        lines.append(f"MP,DENS,{m},{_number20(card.density)}")
    return lines


def _lsdyna(card: _Card) -> list[str]:
    """*MAT_ANISOTROPIC_ELASTIC_TITLE with global material axes (AOPT = 2, a = e1, d = e2)."""
    if card.elastic != "aniso":
        raise MaterialError("the LS-DYNA card writes the 21 anisotropic constants only")
    if card.k is not None or card.alpha is not None:
        raise MaterialError(
            "the LS-DYNA card writes the stiffness only (thermal properties go in *MAT_THERMAL_ "
            "cards with curves, not written by fe2x)"
        )
    if card.density is None:
        raise MaterialError("LS-DYNA's *MAT_ANISOTROPIC_ELASTIC needs the mass density RO")
    V = card.voigt(_LSDYNA_ORDER)
    c = [V[i, j] for i, j in _UPPER_BY_COLUMNS]
    rows: list[list[float | int]] = [
        [card.material_id, card.density, *c[0:6]],
        c[6:14],
        [*c[14:21], 2.0],
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1, 0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    ]
    return [
        "$ fe2x effective material: units are those of the input (RO: mass density)",
        "*MAT_ANISOTROPIC_ELASTIC_TITLE",
        card.name,
        *("".join(_field10(v) for v in row) for row in rows),
    ]


_WRITERS: dict[str, Callable[[_Card], list[str]]] = {
    "abaqus": _abaqus,
    "calculix": _calculix,
    "ansys": _ansys,
    "lsdyna": _lsdyna,
}


def _stiffness(C_eff: npt.ArrayLike) -> np.ndarray:
    C = np.asarray(C_eff, dtype=float)
    if C.shape == (3, 3):
        raise MaterialError(
            "material cards need a 3D (6x6) C_eff: a plane-strain (3x3) one lacks the "
            "out-of-plane terms (C1133, C2233, C3333, C2323, C1313) the solvers' elements use"
        )
    if C.shape != (6, 6) or not np.all(np.isfinite(C)):
        raise MaterialError(f"C_eff must be a finite (6, 6) Mandel matrix, got shape {C.shape}")
    asymmetry = np.abs(C - C.T).max() / np.abs(C).max()
    if asymmetry > _SYMMETRY_TOL:
        raise MaterialError(f"C_eff is not symmetric: max |C - C^T|/max |C| = {asymmetry:.2g}")
    C = 0.5 * (C + C.T)
    if np.linalg.eigvalsh(C).min() <= 0:
        raise MaterialError("C_eff is not positive definite")
    return C


def _tensor(value: npt.ArrayLike, label: str, definite: bool = True) -> np.ndarray:
    """A symmetric 3x3 tensor from a (3, 3) array or a Mandel (6,) vector."""
    t = np.asarray(value, dtype=float)
    if t.shape == (6,):
        t = mandel_to_tensor(t)
    if t.shape != (3, 3) or not np.all(np.isfinite(t)):
        raise MaterialError(
            f"{label} must be a finite 3D tensor, (3, 3) or Mandel (6,), got shape {t.shape}"
        )
    scale = np.abs(t).max()
    if scale > 0 and np.abs(t - t.T).max() > _SYMMETRY_TOL * scale:
        raise MaterialError(f"{label} is not symmetric")
    t = 0.5 * (t + t.T)
    if definite and np.linalg.eigvalsh(t).min() <= 0:
        raise MaterialError(f"{label} is not positive definite")
    return t


def _check_diagonal(t: np.ndarray, label: str, tol: float) -> None:
    """Ansys' MP properties are orthotropic: refuse off-diagonal terms above ``tol``."""
    d = np.sqrt(np.abs(np.diag(t)))
    scale = np.outer(d, d)
    off = np.abs(t - np.diag(np.diag(t))) / np.where(scale > 0, scale, 1.0)
    if off.max() > tol:
        raise MaterialError(
            f"Ansys MP takes an orthotropic {label} only: its off-diagonal terms reach "
            f"{off.max():.3g} of the diagonal (tol = {tol:g})"
        )


def _data_lines(values: list[float], per_line: int, number: Callable[[float], str]) -> list[str]:
    return [
        ", ".join(number(v) for v in values[i : i + per_line])
        for i in range(0, len(values), per_line)
    ]


def _fit(x: float, width: int) -> str:
    """The decimal text of ``x`` in at most ``width`` columns that is nearest to it, then shortest.

    Candidates are Python's shortest round-trip form, fixed-point forms (always with a '.') and
    exponent forms written E11 / E-5 (Fortran-readable, without '+').

    >>> _fit(0.3, 10), _fit(140e9, 10), _fit(-1.0 / 3.0, 10), _fit(2.0, 10)
    ('0.3', '1.4E11', '-0.3333333', '2.')
    """
    x = float(x)
    if not np.isfinite(x):
        raise MaterialError(f"cannot write the non-finite value {x!r}")
    candidates = [repr(x)] if "e" not in repr(x) else []
    for digits in range(1, 18):
        mantissa, exponent = f"{x:.{digits - 1}E}".split("E")
        candidates.append(f"{mantissa}E{int(exponent)}")
        fixed = f"{x:.{digits - 1}f}"
        candidates.append(fixed if "." in fixed else fixed + ".")
    fitting = [c for c in candidates if len(c) <= width]
    if not fitting:
        raise MaterialError(f"{x!r} does not fit in {width} columns")
    return min(fitting, key=lambda c: (abs(float(c) - x), len(c)))


def _number20(x: float) -> str:
    return _fit(x, 20)


def _field10(x: float) -> str:
    """An LS-DYNA field: right-justified in 10 columns."""
    return (str(x) if isinstance(x, int) else _fit(x, 10)).rjust(10)
