"""fe2x: MPI-parallel FE² and computational homogenization on FEniCSx."""

# mpi4py must be loaded before DOLFINx or petsc4py: with the dolfinx-solver
# wheel, their shared libraries find libmpi only once mpi4py has loaded it.
from mpi4py import MPI  # noqa: F401

# h5py must be loaded before dolfinx.fem.petsc: after it, h5py's HDF5 finds no gzip filter
# ('Compression filter "gzip" is unavailable' when meshio writes or reads a compressed XDMF).
import h5py  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name: str):
    """``fe2x.homogenize`` without importing DOLFINx at ``import fe2x`` (keeps the CLI fast)."""
    if name == "homogenize":
        from fe2x.micro.homogenization import homogenize

        return homogenize
    raise AttributeError(f"module 'fe2x' has no attribute {name!r}")
