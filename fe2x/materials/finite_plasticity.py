"""Finite-strain plasticity in the logarithmic strain space, in (F, P, A).

A small-strain law (J2) is applied to the Lagrangian Hencky strain.

Formulation: Miehe, Apel & Lambrecht (2002), "Anisotropic additive plasticity in the
logarithmic strain space: modular kinematic formulation and implementation based on
incremental minimization principles for standard materials", CMAME 191. The total Lagrangian
Hencky strain ``e = ½ ln C`` (``C = Fᵀ F``) takes the place of the small strain, the plastic
strain is additive in it (``e_e = e − e_p``, with the plastic metric ``G_p = exp(2 e_p)``),
and the small-strain law maps ``e`` and its state to the stress ``T`` conjugate to ``e`` and
its algorithmic tangent ``∂T/∂e``. The geometric pre- and post-processor of
:mod:`fe2x.materials.kinematics` then gives ``S = T : ∂e/∂E``, ``∂S/∂E`` and ``P = F S``, ``A``.

Why this formulation rather than the exponential-map return on the elastic left Cauchy–Green
tensor (Eterovic & Bathe 1990; Simo 1992): it reuses :func:`fe2x.materials.j2.return_mapping`
unchanged, kinematic hardening included (the spatial ``b_e`` formulation carries isotropic
hardening only without extra structure); its state (``e_p``, back stress, ``p``) is Lagrangian,
so it is objective by construction, needs no rotation when swapped, checkpointed or migrated,
and has the same names and shapes as the small-strain state; its consistent tangent is
analytic (the small-strain ``C_alg`` pushed through the exact first and second derivatives of
``ln C``). With isotropic hardening it coincides with the multiplicative ``F = Fe Fp``
exponential-map model whenever the principal axes of ``C`` stay fixed in the material (e.g.
uniaxial stress or strain along fixed axes); otherwise it is a different, equally
thermodynamically consistent model. Plastic flow
is deviatoric, ``tr e_p = 0``, hence ``det G_p = 1``: plastic incompressibility.

The equivalent plastic strain is the accumulated logarithmic one; in uniaxial stress along a
fixed axis, the Kirchhoff stress ``τ₁₁`` as a function of ``ln λ₁`` is exactly the small-strain
uniaxial curve ``σ₁₁(ε₁₁)`` of the same constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fe2x.errors import MaterialError
from fe2x.materials.kinematics import flatten, log_strain, log_stress_to_piola, unflatten
from fe2x.materials.law import (
    ConstitutiveLaw,
    ElasticStiffness,
    LawResponse,
    OutputFields,
    State,
    check_law,
)

__all__ = ["LogStrainPlasticity"]


@dataclass(frozen=True)
class LogStrainPlasticity:
    """A small-strain law lifted to finite strain in the Lagrangian logarithmic strain space.

    ``T, ∂T/∂e, state = small.update(e)`` with ``e = ½ ln(Fᵀ F)`` (Mandel), then
    ``S = T : ℙ``, ``∂S/∂E = ℙ : ∂T/∂e : ℙ + T : ∂ℙ/∂E``, ``ℙ = ∂e/∂E``, ``P = F S``,
    ``A = ∂P/∂F``. With ``small`` a :class:`~fe2x.materials.j2.J2Plasticity` this is finite-strain
    J2 plasticity (mixed hardening); with an elastic law, Hencky hyperelasticity.

    State and per-point parameters are those of ``small`` (for J2: ``eps_p``, the plastic
    Hencky strain, Mandel; ``beta``, the back stress conjugate to it; ``p``). A point with
    ``det F <= 0`` raises :class:`~fe2x.errors.SolverError`.

    Attributes:
        small: the small-strain law (``kinematics = "small"``, with an elastic stiffness).
        name: label used in messages (default: that of ``small``).
    """

    kinematics: ClassVar[str] = "finite"

    small: ConstitutiveLaw
    name: str = ""

    def __post_init__(self) -> None:
        law = check_law(self.small, "LogStrainPlasticity")
        if law.kinematics != "small" or not isinstance(law, ElasticStiffness):
            raise MaterialError(
                f"LogStrainPlasticity {self.name!r}: the lifted law must be a small-strain law "
                f"with an elastic stiffness; {type(law).__name__} has kinematics "
                f"{law.kinematics!r}"
            )
        if not self.name:
            object.__setattr__(self, "name", getattr(law, "name", ""))

    @property
    def state_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """The state of the small-strain law (its strains are Hencky strains)."""
        return self.small.state_shapes

    @property
    def parameter_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """The per-point parameters of the small-strain law."""
        return self.small.parameter_shapes

    @property
    def output_names(self) -> tuple[str, ...]:
        """The output fields of the small-strain law, if it has any."""
        return self.small.output_names if isinstance(self.small, OutputFields) else ()

    def outputs(self, state: State) -> dict[str, np.ndarray]:
        """The output fields of the small-strain law."""
        return self.small.outputs(state) if isinstance(self.small, OutputFields) else {}

    def elastic_stiffness(self, parameters: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The small-strain 3D Mandel stiffness: the tangent at ``F = I`` from the initial state."""
        return self.small.elastic_stiffness(parameters)  # type: ignore[attr-defined]

    def initial_state(self, n: int) -> State:
        """The virgin state of the small-strain law."""
        return self.small.initial_state(n)

    def update(
        self,
        strain: np.ndarray,
        state: State,
        dt: float = 0.0,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> LawResponse:
        """``P (n, 9)``, ``A (n, 9, 9)`` and the trial state at ``F = strain (n, 9)``.

        ``P`` and ``A`` are allocated before the temporaries of the kinematics and the small law:
        freed above them, those do not shrink the heap under them (glibc trims its top; with
        the outputs last, an RVE evaluation of 2,000 points took 240 page faults, +30 %).
        """
        F = unflatten(strain)
        n = F.shape[0]
        out = np.empty((n, 3, 3)), np.empty((n, 9, 9))
        e = log_strain(F, f"LogStrainPlasticity {self.name!r}")
        T, dT_de, new_state = self.small.update(e.e, state, dt, parameters)
        P, A = log_stress_to_piola(F, e, T, dT_de, out)
        return LawResponse(flatten(P), A, new_state)
