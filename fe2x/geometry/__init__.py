"""gmsh builders and readers of periodic box cells (RVEs) as DOLFINx meshes."""

from fe2x.geometry.cells import inclusion_cell, laminate_cell, random_cell
from fe2x.geometry.mesh_file import RVEMesh, read_cell
from fe2x.geometry.packing import random_sequential_addition
from fe2x.geometry.periodicity import on_boundary, periodic_images

__all__ = [
    "RVEMesh",
    "inclusion_cell",
    "laminate_cell",
    "on_boundary",
    "periodic_images",
    "random_cell",
    "random_sequential_addition",
    "read_cell",
]
