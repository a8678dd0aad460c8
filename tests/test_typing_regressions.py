"""Regressions of the bugs that type-checking found, each refused or fixed as it should be.

Bad input refused in one line instead of a traceback (mixed cell types, unnamed VTK arrays,
missing voxel labels), TIFF frames read like pages, copies that are copies, and a clear error
from a callback that outlived its object.
"""

import gc
from functools import partial
from types import MappingProxyType

from mpi4py import MPI

import gmsh
import numpy as np
import pytest
import tifffile

from fe2x.errors import GeometryError
from fe2x.geometry import read_cell
from fe2x.geometry.images import read_tiff, read_vti
from fe2x.geometry.voxels import voxel_cell
from fe2x.materials import IsotropicElastic
from fe2x.materials.j2 import J2State
from fe2x.materials.law import check_law
from fe2x.petsc_setup import weak_method
from fe2x.sve.study import SVEStudy

COMM = MPI.COMM_WORLD


def write_mixed_cell(path):
    """A unit square of two phases, one meshed in triangles, the other in quadrilaterals."""
    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("mixed")
        left = gmsh.model.occ.addRectangle(0.0, 0.0, 0.0, 0.5, 1.0)
        right = gmsh.model.occ.addRectangle(0.5, 0.0, 0.0, 0.5, 1.0)
        gmsh.model.occ.fragment([(2, left)], [(2, right)])
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [left], 1, name="left")
        gmsh.model.addPhysicalGroup(2, [right], 2, name="right")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.25)
        gmsh.model.mesh.setRecombine(2, right)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()


def test_mixed_cell_types_refused(workdir):
    """DOLFINx gives a mesh of triangles and quadrilaterals no cell tags: refused at reading."""
    path = workdir / "mixed.msh"
    if COMM.rank == 0:
        write_mixed_cell(path)
    COMM.barrier()
    with pytest.raises(GeometryError, match=r"no cell tags \(are its cells of several types\?\)"):
        read_cell(COMM, path)


def test_tiff_frames_read_as_pages(tmp_path, monkeypatch):
    """tifffile yields light TiffFrames for LSM, ScanImage and NDPI files: same labels as pages."""
    labels = np.random.default_rng(3).integers(0, 5, (7, 5, 6)).astype(np.uint8)  # (z, y, x)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, labels)
    as_pages = read_tiff(path).labels
    with tifffile.TiffFile(path, _useframes=True) as tif:
        assert [type(page).__name__ for page in tif.pages][1:] == ["TiffFrame"] * 6
    monkeypatch.setattr(tifffile, "TiffFile", partial(tifffile.TiffFile, _useframes=True))
    as_frames = read_tiff(path).labels
    expected = labels.transpose(2, 1, 0)  # [x, y, z]
    assert np.array_equal(as_pages, expected) and np.array_equal(as_frames, expected)


VTI = (
    '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian">'
    '<ImageData WholeExtent="0 2 0 2 0 1" Origin="0 0 0" Spacing="1 1 1">'
    '<Piece Extent="0 2 0 2 0 1"><CellData>{}</CellData></Piece></ImageData></VTKFile>'
)


def test_vti_unnamed_arrays(tmp_path):
    """A cell array without a Name is read when alone and listed (as '') among others."""
    unnamed = '<DataArray type="Int32" format="ascii">3 4 5 6</DataArray>'
    named = '<DataArray type="Int32" Name="grain" format="ascii">1 1 2 2</DataArray>'
    alone = tmp_path / "alone.vti"
    alone.write_text(VTI.format(unnamed))
    assert np.array_equal(read_vti(alone).labels, np.array([[3, 5], [4, 6]])[:, :, None])
    both = tmp_path / "both.vti"
    both.write_text(VTI.format(unnamed + named))
    with pytest.raises(GeometryError, match=r"cell arrays \['', 'grain'\]; name one with array="):
        read_vti(both)
    assert np.array_equal(read_vti(both, array="grain").labels[:, :, 0], [[1, 2], [1, 2]])


def test_voxel_labels_missing_on_root():
    """No labels on the reading rank: a GeometryError saying so, not a shape complaint."""
    with pytest.raises(GeometryError, match="labels are None on rank 0, the rank that reads"):
        voxel_cell(COMM, None)


def test_j2_state_take_copies():
    """``take`` copies for every kind of index, a slice included (a slice alone would view)."""
    state = J2State(np.ones((4, 6)), 2.0 * np.ones((4, 6)), np.arange(4.0))
    for index in (slice(1, 3), np.array([1, 2]), np.array([False, True, True, False])):
        part = state.take(index)
        part.eps_p[:] = part.beta[:] = part.p[:] = -1.0
        assert part.p.tolist() == [-1.0, -1.0]
        assert (state.eps_p == 1.0).all() and (state.beta == 2.0).all()
        assert state.p.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_check_law_names_what_is_wrong():
    """A bad kinematics is named as such; an object lacking the contract lists what it lacks."""

    class Bogus:
        name, kinematics = "bogus", "large"
        state_shapes = parameter_shapes = MappingProxyType({})

        def initial_state(self, n):
            return {}

        def update(self, strain, state, dt=0.0, parameters=None):
            raise NotImplementedError

    with pytest.raises(TypeError, match=r"Bogus is not a constitutive law \(kinematics 'large'\)"):
        check_law(Bogus())
    with pytest.raises(TypeError, match=r"missing \['name', 'kinematics', .*'update'\]"):
        check_law(object())


def test_weak_method_after_its_object_is_freed():
    """The weak callback calls its method while the object lives, then says it is gone."""

    class Owner:
        def value(self, x):
            return 2 * x

    owner = Owner()
    call = weak_method(owner.value)
    assert call(3) == 6
    del owner
    gc.collect()
    with pytest.raises(ReferenceError, match="called after its object was freed"):
        call(3)


def test_realization_counts_one_per_size():
    """One realization count for all sizes is spread over them; one per size is kept."""
    materials = {"matrix": IsotropicElastic(1.0, 0.3), "inclusion": IsotropicElastic(10.0, 0.2)}
    study = partial(SVEStudy, dim=2, volume_fraction=0.3, materials=materials)
    one = study(sizes=(2, 3, 4), realizations=5)
    each = study(sizes=(2, 3), realizations=[4, 2])
    assert one.realization_counts == (5, 5, 5) and each.realization_counts == (4, 2)
