"""Test-suite set-up: collective clean-up after each test (PETSc destructors are collective)."""

import gc

from mpi4py import MPI

import pytest


@pytest.fixture(autouse=True)
def _collective_cleanup():
    yield
    gc.collect()
    MPI.COMM_WORLD.barrier()
