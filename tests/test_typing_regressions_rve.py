"""Bugs found by type-checking the RVE problem: the SUBC PC's Jacobian version once freed."""

import gc
import weakref

from mpi4py import MPI

import numpy as np
import pytest

from fe2x.geometry import inclusion_cell
from fe2x.materials.elastic import IsotropicElastic
from fe2x.materials.j2 import J2Plasticity
from fe2x.micro.nonlinear import NonlinearRVE

MATRIX = J2Plasticity(E=3.0, nu=0.35, sigma_y=0.03, H=0.3, H_kin=0.1, name="matrix")
FIBRE = IsotropicElastic(70.0, 0.2)


def test_subc_jacobian_version_after_its_problem_is_freed():
    """The SUBC PC reads its problem's Jacobian version while it lives, then says it is gone.

    Before, the PC's weak reference was dereferenced unchecked: an AttributeError on None.
    """
    cell = inclusion_cell(MPI.COMM_WORLD, 2, [1.0, 1.0], 0.3, 0.2, geometry_order=1)
    rve = NonlinearRVE(cell, {"matrix": MATRIX, "inclusion": FIBRE}, bc="subc", degree=1)
    assert rve.solve(np.array([0.01, -0.004, 0.006])).converged
    constrained = rve.problem.solver.constrained
    assert constrained is not None
    version = constrained._version
    assert version() == rve.problem._jacobian_version >= 1
    alive = weakref.ref(rve.problem)
    del rve
    gc.collect()
    assert alive() is None
    with pytest.raises(ReferenceError, match="PC was called after it was freed"):
        version()
