"""The micro scale: RVE problems, micro models and their contract, boundary conditions.

The core names are loaded on first use (they pull in DOLFINx and PETSc):

- the contract: :class:`MicroModel`, :class:`RVEResult`, :class:`Capabilities`
  (:mod:`fe2x.micro.model`);
- micro models: :class:`NonlinearRVE`, :class:`MaterialPoint`, :class:`ElasticPoint`;
- the linear RVE and homogenization: :class:`LinearRVE`, :func:`homogenize`;
- boundary conditions: :func:`boundary_condition` (:mod:`fe2x.micro.constraints`);
- paths: :class:`LoadPath`, :func:`drive`; the pool of a group: :class:`MicroPool`.
"""

from fe2x.lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, _WHERE)
