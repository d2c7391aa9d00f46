"""The shapes data layers give their tops, read from their sources where those exist, as Caffe's
layers find them at setup: Data from its LMDB's first record, HDF5Data from the datasets of the
first file its list names, ImageData and (SegNet's, ENet's) DenseImageData from the first image of
their list.

Paths are relative to the current directory, as Caffe opens them. A source that is absent,
unreadable, or needs a library that is not installed (lmdb, h5py) gives nothing, and the shape
stays as the layer declares it. Every read is bounded: one record, one header, one list line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from ..caffe import messages
from ..caffe.fork_layers import dense_image_data_defined, dense_image_tops
from ..caffe.image_list import parse_list
from ..errors import CaffeconfError
from ..files import check_regular_file, image_dimensions
from ..ir import Layer, Net
from .shapes import Shape, format_shape, layer_param

MAX_RECORD_BYTES = 64 << 20  # a Datum larger than this is not parsed just for its shape
LIST_HEAD_BYTES = 64 << 10  # enough for the first line of any list


@dataclass(frozen=True)
class SourceShapes:
    layer: str
    tops: dict[str, Shape]
    source: str  # what was read, in words

    def describe(self) -> str:
        shapes = ", ".join(f"'{top}' {format_shape(shape)}" for top, shape in self.tops.items())
        return f"layer '{self.layer}': {shapes} from {self.source}"


def read_source_shapes(net: Net) -> list[SourceShapes]:
    """What each data layer whose source can be read gives its tops."""
    read = [_READERS[layer.type](layer) for layer in net.layers if layer.type in _READERS]
    return [found for found in read if found is not None]


def source_inputs(found: list[SourceShapes]) -> dict[str, Shape]:
    """The shapes read, as `infer_shapes` inputs."""
    return {top: shape for read in found for top, shape in read.tops.items()}


def _tops(layer: Layer, image: tuple[int, int, int], batch: int, source: str) -> SourceShapes:
    """A batch of one image (channels, height, width) through the transform's crop, and its labels."""
    channels, height, width = image
    crop = layer_param(layer, "transform_param", "crop_size")
    data = (batch, channels, crop or height, crop or width)
    return SourceShapes(layer.name, dict(zip(layer.tops, (data, (batch,)))), source)


def _lmdb(layer: Layer) -> SourceShapes | None:
    source = layer_param(layer, "data_param", "source")
    if layer_param(layer, "data_param", "backend") != "LMDB" or not _is_file(Path(source, "data.mdb")):
        return None
    try:
        import lmdb
    except ImportError:
        return None
    try:
        with lmdb.open(source, readonly=True, lock=False, readahead=False, max_readers=1) as environment:
            with environment.begin(buffers=True) as txn:
                cursor = txn.cursor()
                if not cursor.first() or len(cursor.value()) > MAX_RECORD_BYTES:
                    return None
                datum = messages.Datum.FromString(bytes(cursor.value()))
    except (lmdb.Error, DecodeError):  # a damaged database: the run says what is wrong with it
        return None
    image = _datum_image(datum, layer)
    if image is None:
        return None
    batch = layer_param(layer, "data_param", "batch_size")
    return _tops(layer, image, batch, f"LMDB '{source}' (its first record)")


def _datum_image(datum, layer: Layer) -> tuple[int, int, int] | None:
    """(channels, height, width) of a Datum as the data transformer sees it."""
    if not datum.encoded:
        return datum.channels, datum.height, datum.width
    try:
        import cv2
        import numpy as np
    except ImportError:
        return None
    force_color = layer_param(layer, "transform_param", "force_color")
    force_gray = layer_param(layer, "transform_param", "force_gray")
    flag = cv2.IMREAD_COLOR if force_color else cv2.IMREAD_GRAYSCALE if force_gray else cv2.IMREAD_ANYCOLOR
    image = cv2.imdecode(np.frombuffer(datum.data, np.uint8), flag)
    if image is None:
        return None
    return (1 if image.ndim == 2 else image.shape[2]), image.shape[0], image.shape[1]


def _image_data(layer: Layer) -> SourceShapes | None:
    source = layer_param(layer, "image_data_param", "source")
    first = _first_entry(source)
    if first is None:
        return None
    path = layer_param(layer, "image_data_param", "root_folder") + first
    height = layer_param(layer, "image_data_param", "new_height")
    width = layer_param(layer, "image_data_param", "new_width")
    if not (height > 0 and width > 0):  # Caffe resizes only when both are given
        size = image_dimensions(path) if _is_file(Path(path)) else None
        if size is None:
            return None
        width, height = size
    channels = 3 if layer_param(layer, "image_data_param", "is_color") else 1
    batch = layer_param(layer, "image_data_param", "batch_size")
    return _tops(layer, (channels, height, width), batch, f"image '{path}' (the first of '{source}')")


def _dense_image_data(layer: Layer) -> SourceShapes | None:
    if not dense_image_data_defined():
        return None
    source = layer_param(layer, "dense_image_data_param", "source")
    # The fork reads the list as whitespace-separated pairs: an image, then its label image.
    first = (_first_line(source) or "").split()
    if len(first) < 2:
        return None
    path = layer_param(layer, "dense_image_data_param", "root_folder") + first[0]
    size = image_dimensions(path) if _is_file(Path(path)) else None
    if size is None:
        return None
    width, height = size
    try:
        data, label = dense_image_tops(layer.fields.get("dense_image_data_param") or {},
                                       layer.fields.get("transform_param") or {}, (height, width))
    except ValueError:  # refused: the shape rule says why, but for a crop larger than this image (unreported)
        return None
    return SourceShapes(layer.name, dict(zip(layer.tops, (data, label))), f"image '{path}' (the first of '{source}')")


def _hdf5_data(layer: Layer) -> SourceShapes | None:
    source = layer_param(layer, "hdf5_data_param", "source")
    first = (_first_line(source) or "").strip()
    if not first or not _is_file(Path(first)):
        return None
    try:
        import h5py
    except ImportError:
        return None
    batch = layer_param(layer, "hdf5_data_param", "batch_size")
    try:
        with h5py.File(first, "r") as handle:
            datasets = [handle.get(top) for top in layer.tops]
            if any(not isinstance(d, h5py.Dataset) or not d.shape for d in datasets):
                return None
            tops = {top: (batch, *dataset.shape[1:]) for top, dataset in zip(layer.tops, datasets)}
    except (OSError, ValueError):  # not HDF5: the run says so
        return None
    return SourceShapes(layer.name, tops, f"HDF5 '{first}' (the first of '{source}')")


def _first_entry(source: str) -> str | None:
    line = _first_line(source)
    if line is None:
        return None
    try:
        entries = parse_list([line], source)
    except CaffeconfError:
        return None
    return entries[0][0]


def _first_line(source: str) -> str | None:
    """The first line with text of a list file (a bounded read), or None."""
    if not _is_file(Path(source)):
        return None
    try:
        with open(source, "rb") as handle:
            head = handle.read(LIST_HEAD_BYTES)
    except OSError:
        return None
    if len(head) == LIST_HEAD_BYTES:
        head = head[:head.rfind(b"\n") + 1]  # the last line may be cut
    return next((line for line in head.decode("utf-8", errors="replace").splitlines() if line.strip()), None)


def _is_file(path: Path) -> bool:
    """A regular file (never a FIFO or device, which could block or never end)."""
    try:
        check_regular_file(path)
    except (OSError, ValueError, CaffeconfError):
        return False
    return True


_READERS = {"Data": _lmdb, "ImageData": _image_data, "HDF5Data": _hdf5_data, "DenseImageData": _dense_image_data}
