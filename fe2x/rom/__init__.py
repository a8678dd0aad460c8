"""Reduced-order RVEs: POD bases of the fluctuation and empirical cubature of the integrands."""

from fe2x.rom.ecm import Cubature, empirical_cubature, integration_errors
from fe2x.rom.pod import PODBasis, pod_basis, pod_basis_distributed

__all__ = [
    "Cubature",
    "PODBasis",
    "empirical_cubature",
    "integration_errors",
    "pod_basis",
    "pod_basis_distributed",
]
