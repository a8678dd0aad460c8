"""Statistical volume elements: ensembles of random cells, their statistics and RVE size.

Names are loaded on first use: the study settings (:mod:`fe2x.sve.study`) are read with a
config, which must not load DOLFINx or PETSc.
"""

from fe2x.lazy import lazy_getattr

_WHERE = {
    "PROPERTIES": "fe2x.sve.ensemble",
    "Realization": "fe2x.sve.ensemble",
    "SVEError": "fe2x.sve.ensemble",
    "SVEResult": "fe2x.sve.ensemble",
    "run_sve_study": "fe2x.sve.ensemble",
    "task_seed": "fe2x.sve.ensemble",
    "orientation_point_variance": "fe2x.sve.ensemble",
    "scalar_property": "fe2x.sve.ensemble",
    "MICROSTRUCTURES": "fe2x.sve.study",
    "SVEStudy": "fe2x.sve.study",
    "PowerLawFit": "fe2x.sve.statistics",
    "SampleStatistics": "fe2x.sve.statistics",
    "confidence_interval": "fe2x.sve.statistics",
    "fit_power_law": "fe2x.sve.statistics",
    "integral_range": "fe2x.sve.statistics",
    "kanit_variance": "fe2x.sve.statistics",
    "point_variance": "fe2x.sve.statistics",
    "realizations_needed": "fe2x.sve.statistics",
    "relative_error": "fe2x.sve.statistics",
    "rve_volume": "fe2x.sve.statistics",
    "sample_statistics": "fe2x.sve.statistics",
    "size_for_one_realization": "fe2x.sve.statistics",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
