"""TOML config files -> validated, typed settings, with every error in one line.

Each table is declared once (:mod:`fe2x.config.schema`); every error names the file, the key, the
value and what is allowed.

A homogenization config has three tables::

    [cell]                      # the microstructure
    type = "inclusion"          # inclusion | laminate | random | file
    dim = 2
    ...
    [materials.<phase>]         # one table per phase: E and nu, or C_mandel (6x6)
    [homogenize]                # optional: boundary conditions, degree, solver, output
"""

from fe2x.config.cells import CELL_TYPES, CellTable
from fe2x.config.files import (
    HomogenizationConfig,
    RunConfig,
    RVEPathConfig,
    SVEConfig,
    as_dict,
    load_toml,
    read_homogenization_config,
    read_run_config,
    read_rve_path_config,
    read_sve_config,
    with_export_formats,
    with_resolution,
)
from fe2x.config.materials import MATERIAL_MODELS, MaterialTable
from fe2x.config.run_tables import MACRO_SHAPES, MICRO_MODELS, MicroTable

__all__ = [
    "CELL_TYPES",
    "MACRO_SHAPES",
    "MATERIAL_MODELS",
    "MICRO_MODELS",
    "CellTable",
    "HomogenizationConfig",
    "MaterialTable",
    "MicroTable",
    "RVEPathConfig",
    "RunConfig",
    "SVEConfig",
    "as_dict",
    "load_toml",
    "read_homogenization_config",
    "read_run_config",
    "read_rve_path_config",
    "read_sve_config",
    "with_export_formats",
    "with_resolution",
]
