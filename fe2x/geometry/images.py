"""Readers of voxel label images (.npy, TIFF stacks, VTK ImageData .vti) in the voxel convention.

Every reader returns ``labels[i, j(, k)]`` with array axis 0 = x, 1 = y, 2 = z
(:mod:`fe2x.geometry.voxels`). How each format's axes map to it:

- ``.npy``: the array as stored, already ``[x, y(, z)]``; no voxel size.
- TIFF: page = z, image row = y, image column = x, i.e. ``labels[x, y, z] = page_z[y, x]``
  (row 0 at y = 0, no flip); one page gives a 2D image. Every page must be a single-sample
  (grey) image of the same size. Resolution tags are not read: no voxel size.
- ``.vti`` (VTK XML ImageData, as DAMASK writes its grids): one cell-data array with one
  component; VTK stores x fastest, so ``labels[i, j, k]`` is value ``i + nx (j + ny k)``.
  Supported: inline ``ascii`` and ``binary`` (base64) data, ``appended`` data in ``raw`` or
  ``base64`` encoding; no compression or ``vtkZLibDataCompressor``; ``header_type`` UInt32
  or UInt64; either byte order; one piece covering the whole extent. Refused with a message:
  other compressors (LZ4, LZMA), several pieces, a non-identity ``Direction``, point data only,
  several components. An extent with zero cells in z gives a 2D image; the voxel size is the
  ``Spacing`` and the origin the lower corner of the first cell.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fe2x.errors import GeometryError
from fe2x.geometry.voxels import as_labels

__all__ = ["LabelImage", "read_labels", "read_npy", "read_tiff", "read_vti"]

#: The cell-data array DAMASK writes its material index to.
DAMASK_ARRAY = "material"

_VTK_TYPES = {
    "Int8": "i1",
    "UInt8": "u1",
    "Int16": "i2",
    "UInt16": "u2",
    "Int32": "i4",
    "UInt32": "u4",
    "Int64": "i8",
    "UInt64": "u8",
    "Float32": "f4",
    "Float64": "f8",
}
_HEADER_TYPES = {"UInt32": "u4", "UInt64": "u8"}
_ZLIB = "vtkZLibDataCompressor"


class LabelImage(NamedTuple):
    """A label image read from a file.

    Attributes:
        labels: int64 array ``[x, y(, z)]``.
        lengths: Edge lengths of the image box, or None when the format has no voxel size.
        origin: Lower corner of the image box, or None when the format has none.
    """

    labels: np.ndarray
    lengths: np.ndarray | None = None
    origin: np.ndarray | None = None


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise GeometryError(f"label image not found: {p}")
    return p


def read_labels(path: str | Path, array: str | None = None) -> LabelImage:
    """Read a label image, choosing the reader by the file suffix (.npy, .tif/.tiff, .vti).

    Args:
        path: The file.
        array: For .vti, the cell-data array to read (see :func:`read_vti`).

    Raises:
        GeometryError: Missing file, unknown suffix, or what the reader refuses.
    """
    p = _existing(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return read_npy(p)
    if suffix in (".tif", ".tiff"):
        return read_tiff(p)
    if suffix == ".vti":
        return read_vti(p, array)
    raise GeometryError(
        f"label image {p}: unknown file type {p.suffix!r} (supported: .npy, .tif, .tiff, .vti)"
    )


def read_npy(path: str | Path) -> LabelImage:
    """Read a 2D or 3D integer array ``[x, y(, z)]`` from a numpy .npy file."""
    p = _existing(path)
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GeometryError(f"cannot read {p} as a .npy array: {e}") from None
    if not isinstance(a, np.ndarray):
        raise GeometryError(f"{p} holds no single array (an .npz archive?)")
    return LabelImage(as_labels(a, f"labels in {p}"))


def read_tiff(path: str | Path) -> LabelImage:
    """Read a TIFF stack (page = z, row = y, column = x) as labels ``[x, y(, z)]``."""
    import tifffile

    p = _existing(path)
    try:
        with tifffile.TiffFile(p) as tif:
            pages = []
            for n, page in enumerate(tif.pages):
                layout = page.keyframe  # the page itself, or the page a TiffFrame shares it with
                assert layout is not None  # tifffile gives every frame it yields its keyframe
                if layout.samplesperpixel != 1:
                    raise GeometryError(
                        f"{p}: page {n} has {layout.samplesperpixel} samples per pixel "
                        "(colour?); label images need one"
                    )
                pages.append(np.asarray(page.asarray()))
    except (tifffile.TiffFileError, OSError, ValueError) as e:
        raise GeometryError(f"cannot read {p} as a TIFF file: {e}") from None
    if not pages:
        raise GeometryError(f"{p} has no pages")
    shapes = {a.shape for a in pages}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise GeometryError(f"{p}: pages must be 2D images of one size, got {sorted(shapes)}")
    stack = np.stack(pages)  # (z, y, x)
    labels = stack[0].T if stack.shape[0] == 1 else stack.transpose(2, 1, 0)
    return LabelImage(as_labels(labels, f"labels in {p}"))


# -- VTK XML ImageData ---------------------------------------------------------------------


def _split_appended(raw: bytes, path: Path) -> tuple[bytes, bytes | None]:
    """The XML text with a raw appended payload cut out, and that payload (after the '_')."""
    start = raw.find(b"<AppendedData")
    if start < 0:
        return raw, None
    tag_end = raw.find(b">", start)
    if tag_end < 0 or b'encoding="raw"' not in raw[start:tag_end]:
        return raw, None
    underscore = raw.find(b"_", tag_end)
    close = raw.rfind(b"</AppendedData>")
    if underscore < 0 or close < underscore:
        raise GeometryError(f"{path}: malformed raw <AppendedData> section")
    return raw[: underscore + 1] + raw[close:], raw[underscore + 1 : close]


def _b64_chars(n_bytes: int) -> int:
    return 4 * ((n_bytes + 2) // 3)


class _Block:
    """Reader of one data block (header + data) of a VTK XML binary array.

    Binary blocks are ``[header][data]``: uncompressed, the header is the data byte count;
    zlib-compressed, it is ``[n_blocks, block_size, last_block_size, c_1 .. c_n]`` followed by
    the compressed blocks. In base64 text, VTK encodes the header and the data separately
    (the header's padding shows it); a single encoding of both is read too.
    """

    def __init__(self, header: np.dtype, compressed: bool, path: Path) -> None:
        self.header, self.compressed, self.path = header, compressed, path

    def _b64(self, text: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise GeometryError(f"{self.path}: corrupt base64 data: {e}") from None

    def _check(self, got: int, expected: int) -> None:
        if got < expected:
            raise GeometryError(f"{self.path}: data block truncated ({got} of {expected} bytes)")

    def _inflate(self, head: np.ndarray, data: bytes) -> bytes:
        sizes = head[3:].astype(np.int64)
        ends = np.cumsum(sizes)
        self._check(len(data), int(ends[-1]) if sizes.size else 0)
        try:
            return b"".join(
                zlib.decompress(data[e - s : e]) for s, e in zip(sizes, ends, strict=True)
            )
        except zlib.error as e:
            raise GeometryError(f"{self.path}: corrupt zlib data: {e}") from None

    def _header_size(self, first: np.ndarray) -> int:
        n_items = 3 + int(first[0]) if self.compressed else 1
        return n_items * self.header.itemsize

    def from_bytes(self, stream: bytes) -> bytes:
        """The data of the block at the start of raw bytes ``stream``."""
        item = self.header.itemsize
        self._check(len(stream), item)
        size = self._header_size(np.frombuffer(stream[:item], self.header))
        self._check(len(stream), size)
        head = np.frombuffer(stream[:size], self.header)
        if self.compressed:
            return self._inflate(head, stream[size:])
        n = int(head[0])
        self._check(len(stream) - size, n)
        return stream[size : size + n]

    def from_base64(self, text: str) -> bytes:
        """The data of the block at the start of base64 ``text`` (whitespace removed)."""
        item = self.header.itemsize
        first = self._b64(text[: _b64_chars(item)])
        self._check(len(first), item)
        size = self._header_size(np.frombuffer(first[:item], self.header))
        head_chars = _b64_chars(size)
        head_bytes = self._b64(text[:head_chars])
        self._check(len(head_bytes), size)
        head = np.frombuffer(head_bytes[:size], self.header)
        data_size = int(head[3:].sum()) if self.compressed else int(head[0])
        if size % 3 and text[head_chars - 1] == "=":  # header encoded on its own
            data = self._b64(text[head_chars : head_chars + _b64_chars(data_size)])
        else:
            data = self._b64(text[: _b64_chars(size + data_size)])[size:]
        if self.compressed:
            return self._inflate(head, data)
        self._check(len(data), data_size)
        return data[:data_size]


def _numbers(text: str | None, n: int, kind: type, what: str, path: Path) -> list:
    try:
        values = [kind(v) for v in (text or "").split()]
    except ValueError:
        values = []
    if len(values) != n:
        raise GeometryError(f"{path}: {what} must be {n} numbers, got {text!r}")
    return values


def _file_format(root: ET.Element, path: Path) -> tuple[str, _Block]:
    """Byte order and block reader of a VTKFile element, refusing unsupported variants."""
    if root.tag != "VTKFile" or root.get("type") != "ImageData":
        raise GeometryError(
            f"{path} is not VTK ImageData (VTKFile type={root.get('type')!r}); "
            "only .vti image files are read"
        )
    order = {"LittleEndian": "<", "BigEndian": ">"}.get(root.get("byte_order", "LittleEndian"))
    header_type = root.get("header_type", "UInt32")
    if order is None or header_type not in _HEADER_TYPES:
        raise GeometryError(
            f"{path}: unsupported byte_order={root.get('byte_order')!r} or "
            f"header_type={header_type!r} (UInt32 or UInt64)"
        )
    compressor = root.get("compressor", "")
    if compressor not in ("", _ZLIB):
        raise GeometryError(f"{path}: compressor {compressor!r} is not supported (only {_ZLIB})")
    return order, _Block(np.dtype(order + _HEADER_TYPES[header_type]), bool(compressor), path)


def _grid(image: ET.Element, path: Path) -> tuple[ET.Element, np.ndarray, np.ndarray, np.ndarray]:
    """The single piece, the cell counts, lower corner and spacing of an ImageData element."""
    extent = _numbers(image.get("WholeExtent"), 6, int, "WholeExtent", path)
    origin = np.array(_numbers(image.get("Origin", "0 0 0"), 3, float, "Origin", path))
    spacing = np.array(_numbers(image.get("Spacing", "1 1 1"), 3, float, "Spacing", path))
    direction = image.get("Direction")
    if direction is not None and not np.allclose(
        _numbers(direction, 9, float, "Direction", path), np.eye(3).ravel()
    ):
        raise GeometryError(f"{path}: rotated images (Direction={direction!r}) are not supported")
    if not np.all(spacing > 0):
        raise GeometryError(f"{path}: Spacing must be positive, got {spacing.tolist()}")
    pieces = image.findall("Piece")
    if len(pieces) != 1:
        raise GeometryError(f"{path} has {len(pieces)} pieces; only single-piece files are read")
    if _numbers(pieces[0].get("Extent"), 6, int, "Piece Extent", path) != extent:
        raise GeometryError(f"{path}: the piece does not cover the whole extent")
    lo, hi = np.array(extent[0::2]), np.array(extent[1::2])
    cells = hi - lo
    if np.any(cells < 0):
        raise GeometryError(f"{path}: WholeExtent {extent} is empty")
    flat = cells == 0
    if flat[:2].any() or flat.sum() > 1:
        raise GeometryError(
            f"{path}: image extent {cells.tolist()} cells; only z may be flat (2D images in x, y)"
        )
    return pieces[0], cells, origin + lo * spacing, spacing


def _cell_array(piece: ET.Element, array: str | None, path: Path) -> tuple[str, ET.Element]:
    """The name and DataArray element of the cell-data array to read."""
    arrays = {a.get("Name", ""): a for a in piece.findall("CellData/DataArray")}
    if not arrays:
        points = [a.get("Name", "") for a in piece.findall("PointData/DataArray")]
        raise GeometryError(
            f"{path} has no cell data (labels are per voxel)"
            + (f"; its point data {points} cannot be labels" if points else "")
        )
    if array is None:
        if len(arrays) == 1:
            array = next(iter(arrays))
        elif DAMASK_ARRAY in arrays:
            array = DAMASK_ARRAY
        else:
            raise GeometryError(f"{path} has cell arrays {sorted(arrays)}; name one with array=")
    if array not in arrays:
        raise GeometryError(f"{path} has no cell array {array!r}; it has {sorted(arrays)}")
    node = arrays[array]
    if node.get("type", "") not in _VTK_TYPES:
        raise GeometryError(
            f"{path}: array {array!r} of type {node.get('type')!r} cannot be labels"
        )
    if int(node.get("NumberOfComponents", "1")) != 1:
        raise GeometryError(
            f"{path}: array {array!r} has {node.get('NumberOfComponents')} components; "
            "labels need 1"
        )
    return array, node


def _values(
    root: ET.Element,
    node: ET.Element,
    dtype: np.dtype,
    block: _Block,
    raw_appended: bytes | None,
    what: str,
) -> np.ndarray:
    """The values of a DataArray in any supported format (ascii, binary, appended)."""
    fmt = node.get("format", "ascii")
    if fmt == "ascii":
        kind = float if dtype.kind == "f" else int
        try:
            return np.array(
                [kind(v) for v in (node.text or "").split()], dtype=dtype.newbyteorder("=")
            )
        except (ValueError, OverflowError) as e:
            raise GeometryError(f"{what}: bad ASCII value: {e}") from None
    if fmt == "binary":
        data = block.from_base64("".join((node.text or "").split()))
    elif fmt == "appended":
        offset = int(node.get("offset", "0"))
        appended = root.find("AppendedData")
        if appended is None:
            raise GeometryError(f"{what} is appended but the file has no <AppendedData>")
        if raw_appended is not None:
            data = block.from_bytes(raw_appended[offset:])
        elif appended.get("encoding") == "base64":
            text = "".join((appended.text or "").split())
            if not text.startswith("_"):
                raise GeometryError(f"{what}: <AppendedData> must start with '_'")
            data = block.from_base64(text[1 + offset :])
        else:
            raise GeometryError(
                f"{what}: AppendedData encoding {appended.get('encoding')!r} is not supported "
                "(raw or base64)"
            )
    else:
        raise GeometryError(f"{what} has unknown format {fmt!r}")
    if len(data) % dtype.itemsize:
        raise GeometryError(f"{what}: {len(data)} bytes are no whole number of values")
    return np.frombuffer(data, dtype)


def read_vti(path: str | Path, array: str | None = None) -> LabelImage:
    """Read one cell-data array of a VTK XML ImageData file as labels ``[x, y(, z)]``.

    Args:
        path: The .vti file (variants supported: module notes).
        array: Name of the cell-data array; default: the only one, or DAMASK's ``material``.

    Returns:
        The labels with the box lengths (cells × ``Spacing``) and origin.

    Raises:
        GeometryError: Missing or unsupported file, missing array, wrong data.
    """
    p = _existing(path)
    xml_bytes, raw_appended = _split_appended(p.read_bytes(), p)
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as e:
        raise GeometryError(f"{p} is not a VTK XML file: {e}") from None
    order, block = _file_format(root, p)
    image = root.find("ImageData")
    if image is None:
        raise GeometryError(f"{p} has no <ImageData> element")
    piece, cells, corner, spacing = _grid(image, p)
    array, node = _cell_array(piece, array, p)
    what = f"{p}: array {array!r}"
    dtype = np.dtype(order + _VTK_TYPES[node.get("type", "")])
    values = _values(root, node, dtype, block, raw_appended, what)
    shape = np.maximum(cells, 1)
    if values.size != int(np.prod(shape)):
        raise GeometryError(f"{what} has {values.size} values for {cells.tolist()} cells")
    labels = values.reshape(tuple(shape[::-1])).T  # VTK: x fastest
    dim = 2 if cells[2] == 0 else 3
    if dim == 2:
        labels = labels[:, :, 0]
    return LabelImage(
        as_labels(labels, f"array {array!r} in {p}"),
        (cells * spacing)[:dim].copy(),
        corner[:dim].copy(),
    )
