"""The micro scale: RVE problems, micro models and their contract, boundary conditions.

The core names are loaded on first use (they pull in DOLFINx and PETSc):

- the contract: :class:`MicroModel`, :class:`RVEResult`, :class:`Capabilities`
  (:mod:`fe2x.micro.model`);
- micro models: :class:`NonlinearRVE`, :class:`MaterialPoint`, :class:`ElasticPoint`;
- the linear RVE and homogenization: :class:`LinearRVE`, :func:`homogenize`;
- boundary conditions: :func:`boundary_condition` (:mod:`fe2x.micro.constraints`);
- paths: :class:`LoadPath`, :func:`drive`; the pool of a group: :class:`MicroPool`.
"""

import importlib
from typing import Any

_WHERE = {
    "Capabilities": "fe2x.micro.model",
    "MicroModel": "fe2x.micro.model",
    "RVEResult": "fe2x.micro.model",
    "NonlinearRVE": "fe2x.micro.nonlinear",
    "RVEProblem": "fe2x.micro.rve_problem",
    "MaterialPoint": "fe2x.micro.material_point",
    "ElasticPoint": "fe2x.micro.material_point",
    "LinearRVE": "fe2x.micro.linear",
    "homogenize": "fe2x.micro.homogenization",
    "boundary_condition": "fe2x.micro.constraints",
    "LoadPath": "fe2x.micro.path",
    "drive": "fe2x.micro.path",
    "MicroPool": "fe2x.micro.pool",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """``fe2x.micro.<name>`` from the module that defines it, imported when first asked."""
    if name not in _WHERE:
        raise AttributeError(f"module 'fe2x.micro' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
