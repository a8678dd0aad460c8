"""The macro problem of FE²: quadrature-space stress and tangent, Newton, load steps."""

from fe2x.macro.problem import (
    DEFAULT_OPTIONS,
    Constitutive,
    DirichletSpec,
    MacroProblem,
    StepResult,
    TractionSpec,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "Constitutive",
    "DirichletSpec",
    "MacroProblem",
    "StepResult",
    "TractionSpec",
]
