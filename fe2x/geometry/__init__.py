"""gmsh builders and readers of periodic box cells (RVEs) as DOLFINx meshes.

The names are loaded on first use, so that pure-numpy pieces (e.g.
:mod:`fe2x.geometry.packing`) can be imported without gmsh or DOLFINx (config reading must
not load them).
"""

from fe2x.lazy import lazy_getattr

_WHERE = {
    "RVEMesh": "fe2x.geometry.mesh_file",
    "read_cell": "fe2x.geometry.mesh_file",
    "inclusion_cell": "fe2x.geometry.cells",
    "laminate_cell": "fe2x.geometry.cells",
    "random_cell": "fe2x.geometry.cells",
    "random_sequential_addition": "fe2x.geometry.packing",
    "voxel_cell": "fe2x.geometry.voxels",
    "check_periodic_labels": "fe2x.geometry.voxels",
    "read_labels": "fe2x.geometry.images",
    "polycrystal_cell": "fe2x.geometry.polycrystal",
    "grain_labels": "fe2x.geometry.tessellation",
    "random_seeds": "fe2x.geometry.tessellation",
    "cell_measures": "fe2x.geometry.tessellation",
    "on_boundary": "fe2x.geometry.periodicity",
    "periodic_images": "fe2x.geometry.periodicity",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
