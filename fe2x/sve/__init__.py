"""Statistical volume elements: ensembles of random cells, their statistics and RVE size."""

from fe2x.sve.ensemble import (
    PROPERTIES,
    Realization,
    SVEError,
    SVEResult,
    SVEStudy,
    run_sve_study,
    task_seed,
)
from fe2x.sve.statistics import (
    PowerLawFit,
    SampleStatistics,
    confidence_interval,
    fit_power_law,
    integral_range,
    kanit_variance,
    point_variance,
    realizations_needed,
    relative_error,
    rve_volume,
    sample_statistics,
    size_for_one_realization,
)

__all__ = [
    "PROPERTIES",
    "PowerLawFit",
    "Realization",
    "SVEError",
    "SVEResult",
    "SVEStudy",
    "SampleStatistics",
    "confidence_interval",
    "fit_power_law",
    "integral_range",
    "kanit_variance",
    "point_variance",
    "realizations_needed",
    "relative_error",
    "run_sve_study",
    "rve_volume",
    "sample_statistics",
    "size_for_one_realization",
    "task_seed",
]
