"""Tests of the label image readers: .npy, TIFF stacks and .vti files of every supported
variant written here (and by pyevtk when installed) and read back, literal VTK files, and the
one-line refusals of bad or unsupported files."""

import base64
import zlib

import numpy as np
import pytest
import tifffile

from fe2x.errors import GeometryError
from fe2x.geometry.images import read_labels, read_npy, read_tiff, read_vti

RNG = np.random.default_rng(42)
LABELS_3D = RNG.integers(0, 7, (5, 4, 3))
LABELS_2D = RNG.integers(0, 7, (6, 5))
VTK_TYPE = {
    "i4": "Int32",
    "u1": "UInt8",
    "i8": "Int64",
    "f4": "Float32",
    "u2": "UInt16",
    "f8": "Float64",
}


def block(values, header, compress, block_size):
    """One VTK binary block: [header][data], zlib-compressed in blocks if asked."""
    data = values.tobytes()
    if not compress:
        return np.array([len(data)], header).tobytes(), data
    chunks = [data[i : i + block_size] for i in range(0, len(data), block_size)] or [b""]
    packed = [zlib.compress(c) for c in chunks]
    last = len(chunks[-1]) if len(chunks[-1]) < block_size else 0
    head = [len(chunks), block_size, last, *[len(p) for p in packed]]
    return np.array(head, header).tobytes(), b"".join(packed)


def write_vti(
    path,
    arrays,
    fmt="binary",
    compress=False,
    header="UInt64",
    order="<",
    spacing=(1.0, 1.0, 1.0),
    origin=(0.0, 0.0, 0.0),
    encoding="raw",
    separate=True,
    block_size=32,
    point_data="",
):
    """A VTK XML ImageData file with the given cell arrays (name -> labels [x, y(, z)])."""
    first = next(iter(arrays.values()))
    cells = [*first.shape, 0][:3]
    extent = " ".join(f"0 {c}" for c in cells)
    hdtype = np.dtype(order + {"UInt32": "u4", "UInt64": "u8"}[header])
    compressor = ' compressor="vtkZLibDataCompressor"' if compress else ""
    elements, appended, offset = [], [], 0
    for name, labels in arrays.items():
        values = np.asarray(labels).ravel(order="F")  # VTK: x fastest
        values = values.astype(values.dtype.newbyteorder(order))
        kind = VTK_TYPE[values.dtype.str[1:]]
        attrs = f'type="{kind}" Name="{name}" NumberOfComponents="1"'
        if fmt == "ascii":
            text = " ".join(str(v) for v in values.tolist())
            elements.append(f'<DataArray {attrs} format="ascii">\n{text}\n</DataArray>')
            continue
        head, data = block(values, hdtype, compress, block_size)
        if fmt == "binary":
            if separate:
                text = (base64.b64encode(head) + base64.b64encode(data)).decode()
            else:
                text = base64.b64encode(head + data).decode()
            elements.append(f'<DataArray {attrs} format="binary">\n  {text}\n</DataArray>')
            continue
        if encoding == "raw":
            piece = head + data
        else:
            piece = base64.b64encode(head) + base64.b64encode(data)
        elements.append(f'<DataArray {attrs} format="appended" offset="{offset}"/>')
        appended.append(piece)
        offset += len(piece)
    xml = (
        f'<?xml version="1.0"?>\n<VTKFile type="ImageData" version="1.0" '
        f'byte_order="{"LittleEndian" if order == "<" else "BigEndian"}" '
        f'header_type="{header}"{compressor}>\n'
        f'<ImageData WholeExtent="{extent}" Origin="{" ".join(map(str, origin))}" '
        f'Spacing="{" ".join(map(str, spacing))}">\n<Piece Extent="{extent}">\n'
        f"{point_data}<CellData>\n"
        + "\n".join(elements)
        + "\n</CellData>\n</Piece>\n</ImageData>\n"
    ).encode()
    if appended:
        xml += f'<AppendedData encoding="{encoding}">\n_'.encode() + b"".join(appended)
        xml += b"\n</AppendedData>\n"
    path.write_bytes(xml + b"</VTKFile>\n")
    return path


VARIANTS = {
    "ascii": {"fmt": "ascii"},
    "binary": {"fmt": "binary"},
    "binary-joint-uint32": {"fmt": "binary", "header": "UInt32", "separate": False},
    "binary-zlib": {"fmt": "binary", "compress": True},
    "binary-zlib-uint32-bigendian": {
        "fmt": "binary",
        "compress": True,
        "header": "UInt32",
        "order": ">",
    },
    "binary-zlib-joint": {"fmt": "binary", "compress": True, "separate": False},
    "appended-raw": {"fmt": "appended"},
    "appended-raw-zlib": {"fmt": "appended", "compress": True},
    "appended-base64-zlib": {"fmt": "appended", "compress": True, "encoding": "base64"},
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", ["i4", "u1", "i8"])
def test_vti_round_trip(tmp_path, variant, dtype):
    labels = LABELS_3D.astype(dtype)
    other = (LABELS_3D * 3 + 1).astype("i4")
    path = write_vti(
        tmp_path / "grid.vti",
        {"material": labels, "other": other},
        spacing=(0.5, 0.25, 2.0),
        origin=(1.0, -1.0, 0.0),
        **VARIANTS[variant],
    )
    image = read_vti(path)  # two arrays: DAMASK's "material" is the default
    assert image.labels.dtype == np.int64 and np.array_equal(image.labels, labels)
    assert np.allclose(image.lengths, [2.5, 1.0, 6.0]) and np.allclose(image.origin, [1, -1, 0])
    assert np.array_equal(read_labels(path, array="other").labels, other)


def test_vti_2d_and_float_labels(tmp_path):
    path = write_vti(tmp_path / "flat.vti", {"phase": LABELS_2D}, compress=True)
    image = read_vti(path)
    assert image.labels.shape == (6, 5) and np.array_equal(image.labels, LABELS_2D)
    assert np.allclose(image.lengths, [6.0, 5.0])
    path = write_vti(tmp_path / "f.vti", {"phase": LABELS_3D.astype("f4")}, fmt="ascii")
    assert np.array_equal(read_vti(path).labels, LABELS_3D)
    path = write_vti(tmp_path / "g.vti", {"phase": (LABELS_3D + 0.5).astype("f4")})
    with pytest.raises(GeometryError, match="must be integers; 60 of 60"):
        read_vti(path)


def test_vti_literal_files(tmp_path):
    """Hand-written files as VTK writes them (base64 header encoded on its own)."""
    head = '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian"{}>'
    body = (
        '<ImageData WholeExtent="0 2 0 2 0 1" Origin="0 0 0" Spacing="1 1 1">'
        '<Piece Extent="0 2 0 2 0 1"><CellData Scalars="material">'
        '<DataArray type="Int32" Name="material" format="{}">{}</DataArray>'
        "</CellData></Piece></ImageData></VTKFile>"
    )
    expected = np.array([[3, 5], [4, 6]])[:, :, None]  # x fastest: values 3, 4, 5, 6
    ascii_file = tmp_path / "a.vti"
    ascii_file.write_text(head.format("") + body.format("ascii", "3 4\n 5 6"))
    assert np.array_equal(read_vti(ascii_file).labels, expected)
    binary = tmp_path / "b.vti"
    data = "EAAAAA==AwAAAAQAAAAFAAAABgAAAA=="  # UInt32 header 16, then Int32 3 4 5 6
    binary.write_text(head.format(' header_type="UInt32"') + body.format("binary", data))
    assert np.array_equal(read_vti(binary).labels, expected)


def test_vti_written_by_pyevtk(tmp_path):
    hl = pytest.importorskip("pyevtk.hl")
    labels = LABELS_3D.astype(np.int32)
    stem = str(tmp_path / "evtk")
    hl.imageToVTK(stem, origin=(0.0, 0.0, 0.0), spacing=(0.1, 0.2, 0.3), cellData={"g": labels})
    image = read_vti(stem + ".vti")
    assert np.array_equal(image.labels, labels)
    assert np.allclose(image.lengths, [0.5, 0.8, 0.9])


EDITS = {
    "lz4": (
        b'header_type="UInt64"',
        b'header_type="UInt64" compressor="vtkLZ4DataCompressor"',
        "compressor 'vtkLZ4DataCompressor' is not supported",
    ),
    "grid": (b'type="ImageData"', b'type="UnstructuredGrid"', "is not VTK ImageData"),
    "no cells": (b"CellData>", b"FieldData>", "has no cell data"),
    "vector": (
        b'NumberOfComponents="1"',
        b'NumberOfComponents="3"',
        "3 components; labels need 1",
    ),
    "pieces": (b"</Piece>", b'</Piece><Piece Extent="0 5 0 4 0 3"></Piece>', "2 pieces"),
    "rotated": (b'Spacing="1.0 1.0 1.0"', b'Direction="0 1 0 1 0 0 0 0 1"', "rotated images"),
    "count": (b'Extent="0 5', b'Extent="0 6', "60 values for"),
    "cut": (b"</VTKFile>", b"", "is not a VTK XML file"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_vti_refusals(tmp_path, edit):
    old, new, match = EDITS[edit]
    path = write_vti(tmp_path / "ok.vti", {"material": LABELS_3D.astype("i4")})
    path.write_bytes(path.read_bytes().replace(old, new))
    with pytest.raises(GeometryError, match=match):
        read_vti(path)


def test_vti_array_choice(tmp_path):
    path = write_vti(tmp_path / "two.vti", {"a": LABELS_3D, "b": LABELS_3D})
    with pytest.raises(GeometryError, match=r"cell arrays \['a', 'b'\]; name one"):
        read_vti(path)
    with pytest.raises(GeometryError, match="no cell array 'c'"):
        read_vti(path, array="c")
    point = '<PointData><DataArray type="Int32" Name="p" format="ascii">0</DataArray></PointData>'
    path = write_vti(tmp_path / "p.vti", {"a": LABELS_3D}, point_data=point)
    assert np.array_equal(read_vti(path).labels, LABELS_3D)


def test_vti_corrupt_data(tmp_path):
    path = write_vti(tmp_path / "z.vti", {"material": LABELS_3D.astype("i4")}, compress=True)
    text = path.read_bytes()
    start = text.index(b'format="binary">') + len(b'format="binary">\n  ')
    path.write_bytes(text[: start + 30] + b"AAAA" + text[start + 34 :])
    with pytest.raises(GeometryError, match=r"corrupt zlib data|truncated"):
        read_vti(path)


def test_npy_round_trip_and_refusals(tmp_path):
    for labels in (LABELS_2D, LABELS_3D.astype(np.uint16)):
        np.save(tmp_path / "a.npy", labels)
        image = read_labels(tmp_path / "a.npy")
        assert np.array_equal(image.labels, labels) and image.lengths is None
    np.save(tmp_path / "b.npy", np.zeros((2, 2, 2, 2), dtype=int))
    with pytest.raises(GeometryError, match=r"2D or 3D array, got shape \(2, 2, 2, 2\)"):
        read_npy(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", np.array([[0.5, 1.0]]))
    with pytest.raises(GeometryError, match="must be integers"):
        read_npy(tmp_path / "c.npy")
    np.save(tmp_path / "d.npy", np.array([[None, 1]], dtype=object))
    with pytest.raises(GeometryError, match="cannot read"):
        read_npy(tmp_path / "d.npy")
    with pytest.raises(GeometryError, match="label image not found"):
        read_labels(tmp_path / "missing.npy")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(GeometryError, match=r"unknown file type '\.png'"):
        read_labels(tmp_path / "x.png")


def test_tiff_pages_are_z(tmp_path):
    stack = LABELS_3D.transpose(2, 1, 0).astype(np.uint16)  # (z, y, x): one page per z
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    image = read_labels(tmp_path / "s.tif")
    assert image.labels.shape == (5, 4, 3) and np.array_equal(image.labels, LABELS_3D)
    assert image.labels[1, 2, 0] == stack[0, 2, 1]
    tifffile.imwrite(tmp_path / "one.tiff", LABELS_2D.T.astype(np.uint8))  # rows y, columns x
    assert np.array_equal(read_tiff(tmp_path / "one.tiff").labels, LABELS_2D)


def test_tiff_refusals(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with pytest.raises(GeometryError, match="3 samples per pixel"):
        read_tiff(tmp_path / "rgb.tif")
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        tif.write(np.zeros((4, 5), dtype=np.uint8))
        tif.write(np.zeros((3, 5), dtype=np.uint8))
    with pytest.raises(GeometryError, match="pages must be 2D images of one size"):
        read_tiff(tmp_path / "mixed.tif")
    tifffile.imwrite(tmp_path / "f.tif", np.full((3, 3), 0.5, dtype=np.float32))
    with pytest.raises(GeometryError, match="must be integers"):
        read_tiff(tmp_path / "f.tif")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(GeometryError, match=r"cannot read .* as a TIFF file"):
        read_tiff(tmp_path / "bad.tif")
