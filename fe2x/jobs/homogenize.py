"""The ``fe2x homogenize`` job: a cell's effective properties and the files that report them.

The properties come under each boundary condition; the files are its fields, its material
cards and ``result.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from mpi4py import MPI

import numpy as np

from fe2x.config import HomogenizationConfig, as_dict
from fe2x.config.rve_tables import CARD_EXTENSIONS, export_bc
from fe2x.errors import ConfigError, MaterialError
from fe2x.io.fields import write_micro_fields, write_unit_gradient_fields, write_unit_strain_fields
from fe2x.io.material_cards import material_card
from fe2x.io.results import write_json, write_on_root
from fe2x.jobs.cells import warn_if_volume_lost, write_cell_data
from fe2x.jobs.solver_options import check_solver_options
from fe2x.materials.engineering import engineering_constants, plane_strain_constants
from fe2x.micro.homogenization import (
    THERMAL_NOTATION,
    ConductionResult,
    HomogenizationResult,
    homogenize,
    homogenize_conduction,
)

__all__ = ["HomogenizeOutcome", "card_texts", "run_homogenize"]

logger = logging.getLogger(__name__)


@dataclass
class HomogenizeOutcome:
    """What ``fe2x homogenize`` computed and wrote.

    Attributes:
        elastic: C_eff (and α_eff, Σ_th) per boundary condition, unless physics omits them.
        conduction: k_eff per boundary condition, if physics asks for it.
        cards: card format -> the file written.
    """

    elastic: HomogenizationResult | None
    conduction: ConductionResult | None
    cards: dict[str, Path] = field(default_factory=dict)


def card_texts(
    config: HomogenizationConfig,
    elastic: HomogenizationResult,
    conduction: ConductionResult | None,
) -> dict[str, str]:
    """The text of each card of ``[export]``: C_eff, and k_eff and α_eff where computed.

    LS-DYNA's card holds the stiffness only. A property a card cannot hold (an anisotropic
    C_eff asked as engineering constants, an anisotropic k_eff for Ansys' MP) raises a one-line
    ConfigError naming the key, before any file is written.
    """
    export = config.export
    bc = export_bc(config.homogenize, export)
    response = elastic.responses[bc]
    thermal: dict[str, np.ndarray] = {}
    if conduction is not None:
        thermal["conductivity"] = conduction.responses[bc].k_eff
    if response.alpha_eff is not None:
        thermal["expansion"] = response.alpha_eff
    texts = {}
    for fmt in export.formats:
        options = {} if fmt == "lsdyna" else thermal
        try:
            texts[fmt] = material_card(
                fmt,
                response.C_eff,
                name=export.name,
                conductivity=options.get("conductivity"),
                expansion=options.get("expansion"),
                density=export.density,
                elastic=export.elastic,
                material_id=export.material_id,
            )
        except MaterialError as error:
            raise ConfigError(
                f"{config.path}: [export] {fmt} card of the {bc} properties "
                f"(elastic = {export.elastic!r}): {error}"
            ) from None
        if fmt == "lsdyna" and thermal:
            logger.info("the lsdyna card holds the stiffness only (%s not written)", list(thermal))
    return texts


def _constants(C_eff: np.ndarray, dim: int) -> dict[str, float] | str:
    """Engineering constants of an orthotropic C_eff (plane-strain moduli in 2D), else why not."""
    try:
        constants = engineering_constants(C_eff) if dim == 3 else plane_strain_constants(C_eff)
    except MaterialError as error:
        return str(error)
    return constants._asdict()


def _summary(
    config: HomogenizationConfig,
    elastic: HomogenizationResult | None,
    conduction: ConductionResult | None,
) -> dict[str, object]:
    """result.json: the elastic summary with the conduction entries merged in per BC."""
    summary: dict[str, Any]
    if elastic is not None:
        summary = elastic.to_dict()
        for bc, r in elastic.responses.items():
            summary["bc"][bc]["engineering_constants"] = _constants(r.C_eff, elastic.rve.dim)
    else:
        assert conduction is not None, "the config asks for one physics at least"
        rve = conduction.rve
        summary = {
            "dim": rve.dim,
            "volume_fractions": rve.volume_fractions,
            "n_dofs": rve.n_dofs,
            "n_ranks": rve.comm.size,
            "bc": {bc: {} for bc in conduction.responses},
            "bounds": {},
            "timings": dict(conduction.timings),
        }
    thermal = elastic is not None and any(
        r.alpha_eff is not None for r in elastic.responses.values()
    )
    if conduction is not None:
        for bc in conduction.responses:
            summary["bc"][bc].update(conduction.bc_dict(bc))
        summary["bounds"]["conductivity"] = conduction.bounds_dict()
        summary["conduction_n_dofs"] = conduction.rve.n_dofs
    keys = (["k_eff"] if conduction is not None else []) + (
        ["alpha_eff", "thermal_stress"] if thermal else []
    )
    if keys:
        summary["thermal_notation"] = {key: THERMAL_NOTATION[key] for key in keys}
    summary["physics"] = list(config.homogenize.physics)
    return summary


def _write_fields(
    elastic: HomogenizationResult | None, conduction: ConductionResult | None, directory: Path
) -> dict[str, list[str]]:
    """The correctors, localization, thermal displacement and heat fluxes for ParaView."""
    written: dict[str, list[Path]] = {}
    if elastic is not None:
        for bc, r in elastic.responses.items():
            written[bc] = write_unit_strain_fields(bc, r.fluctuations, r.displacements, directory)
            if r.thermal_displacement is not None:
                path = directory / f"{bc}_thermal_displacement.bp"
                written[bc].append(write_micro_fields({"u_th": r.thermal_displacement}, path))
    if conduction is not None:
        for bc, g in conduction.responses.items():
            fluxes = [conduction.rve.flux(theta) for theta in g.temperatures]
            paths = write_unit_gradient_fields(bc, g.correctors, fluxes, directory)
            written.setdefault(bc, []).extend(paths)
    return {bc: [str(p.relative_to(directory.parent)) for p in ps] for bc, ps in written.items()}


class SolverSettings(NamedTuple):
    """The solver arguments that :func:`homogenize` and :func:`homogenize_conduction` share."""

    bcs: tuple[str, ...]
    degree: int
    solver: str
    petsc_options: dict[str, object]


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (a card's writer for :func:`write_on_root`)."""
    path.write_text(text)


def run_homogenize(
    config: HomogenizationConfig, out: Path, comm: MPI.Comm = MPI.COMM_WORLD
) -> HomogenizeOutcome:
    """Build the cell, homogenize it, and write its fields, cards and ``out/result.json``.

    The fields include the cell data of polycrystals (grain ids, orientations, ``grains.csv``
    and pole figures); ``result.json`` is written last, atomically. A card that cannot be made
    stops the job before any file is written.
    """
    options = config.homogenize.petsc_options
    prefixes = [f"fe2x_rve_{bc}_" for bc in config.homogenize.bcs]
    check_solver_options(comm, config.path, [("homogenize", p, options) for p in prefixes])
    t0 = time.perf_counter()
    cell = config.cell.build(comm)
    meshing = time.perf_counter() - t0
    logger.info("meshed %s cell in %.2f s", config.cell.type, meshing)
    settings = config.homogenize
    solver_settings = SolverSettings(
        settings.bcs, settings.degree, settings.solver, dict(settings.petsc_options)
    )
    elastic: HomogenizationResult | None = None
    conduction: ConductionResult | None = None
    if settings.elastic:
        thermal = "thermoelasticity" in settings.physics
        expansion = config.expansion if thermal else None
        elastic = homogenize(cell, config.materials, *solver_settings, expansion=expansion)
        elastic.timings["meshing"] = meshing
        fractions = elastic.rve.volume_fractions
    if "conduction" in settings.physics:
        conduction = homogenize_conduction(cell, config.conductivity, *solver_settings)
        conduction.timings["meshing"] = meshing
        fractions = conduction.rve.volume_fractions
    warn_if_volume_lost(config.cell, fractions, comm)
    texts = {}
    if config.export.formats:
        assert elastic is not None, "[export] needs elastic physics (checked by the config)"
        texts = card_texts(config, elastic, conduction)
    summary = _summary(config, elastic, conduction)
    if settings.write_fields:
        summary["fields"] = _write_fields(elastic, conduction, out / "fields")
    grain_files = write_cell_data(cell, out)
    if grain_files:
        summary["cell_data"] = [str(p.relative_to(out)) for p in grain_files]
    cards = {}
    for fmt, text in texts.items():
        cards[fmt] = out / f"{fmt}.{CARD_EXTENSIONS[fmt]}"
        write_on_root(comm, cards[fmt], partial(_write_text, text=text))
    if cards:
        summary["material_cards"] = {
            "bc": export_bc(settings, config.export),
            "files": {fmt: path.name for fmt, path in cards.items()},
        }
    summary["config"] = as_dict(config)
    write_json(comm, out / "result.json", summary)
    return HomogenizeOutcome(elastic, conduction, cards)
