""".caffemodel files (binary NetParameter) <-> blobs by layer name.

Reading keeps each blob's data with the shape it was stored with: `shape`, or
the legacy num/channels/height/width, which Caffe accepts for any blob of up
to 4 axes whose shape, padded with leading 1s, equals them. V1 (`layers`) and
V0 (`layers { layer { } }`) files are read by layer name in the same way Caffe
reads them after upgrading. Writing goes through `files.write_atomic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from ..errors import CaffeconfError
from ..files import read_bounded, write_atomic
from ..ir import Net
from . import messages


@dataclass(frozen=True)
class StoredBlob:
    data: np.ndarray  # float32, flat
    shape: tuple[int, ...]
    legacy: bool  # shape came from num/channels/height/width


def shape_matches(blob: StoredBlob, expected: Sequence[int]) -> bool:
    """Caffe's Blob::ShapeEquals against a stored blob."""
    expected = tuple(expected)
    if blob.legacy:
        return len(expected) <= 4 and (1,) * (4 - len(expected)) + expected == blob.shape
    return blob.shape == expected


def describe_shape(blob: StoredBlob) -> str:
    legacy = " (legacy num/channels/height/width)" if blob.legacy else ""
    return f"{blob.shape}{legacy}"


def blob_from_proto(proto) -> StoredBlob:
    if proto.HasField("shape"):
        shape, legacy = tuple(proto.shape.dim), False
    else:
        shape, legacy = (proto.num, proto.channels, proto.height, proto.width), True
    values = proto.double_data if len(proto.double_data) else proto.data
    data = np.asarray(values, dtype=np.float32)
    if data.size != math.prod(shape):  # exact: a hostile shape's product may overflow int64
        raise ValueError(f"a blob of shape {shape} holds {data.size} values")
    return StoredBlob(data, shape, legacy)


def read_caffemodel(path: str | Path) -> dict[str, list[StoredBlob]]:
    """Blobs by layer name; layers without blobs are left out. A file holding no layer at all
    (empty, or junk that protobuf happens to accept) is refused, so that the fillers are
    never used in its place unnoticed. Errors name the file without quoting its binary text."""
    message = messages.NetParameter()
    try:
        data = read_bounded(path)
        message.ParseFromString(data)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read weights '{path}': {error.strerror}") from None
    except DecodeError:
        raise CaffeconfError.at(None, f"{path}: not a binary NetParameter (.caffemodel) file") from None
    named = [(layer.name, layer.blobs) for layer in message.layer]
    named += [(layer.name, layer.blobs) for layer in message.layers if not layer.HasField("layer")]
    named += [(layer.layer.name, layer.layer.blobs) for layer in message.layers if layer.HasField("layer")]
    try:
        stored = {name: [blob_from_proto(blob) for blob in blobs] for name, blobs in named if len(blobs)}
    except ValueError as error:
        raise CaffeconfError.at(None, f"{path}: corrupt blob: {error}") from None
    if not named:
        what = "is empty" if not data else "holds no layer"
        raise CaffeconfError.at(None, f"{path}: the weights file {what}: not a .caffemodel",
                                hint="leave out --weights to start from the fillers")
    return stored


def read_blob_file(path: str | Path) -> np.ndarray:
    """A single binary BlobProto (e.g. a mean file or an infogain matrix), shaped."""
    message = messages.BlobProto()
    try:
        message.ParseFromString(read_bounded(path))
        blob = blob_from_proto(message)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read blob file '{path}': {error.strerror}") from None
    except (DecodeError, ValueError) as error:
        raise CaffeconfError.at(None, f"{path}: not a binary BlobProto file ({error})") from None
    return blob.data.reshape(blob.shape)


def caffemodel_bytes(net: Net, blobs: Mapping[str, Sequence[np.ndarray]]) -> bytes:
    """A binary NetParameter with the net's layers (name, type, bottoms, tops) and their blobs."""
    message = messages.NetParameter(name=net.name)
    for layer in net.layers:
        entry = message.layer.add(name=layer.name, type=layer.type)
        entry.bottom.extend(layer.bottoms)
        entry.top.extend(layer.tops)
        for array in blobs.get(layer.name, ()):
            entry.blobs.add().MergeFromString(blob_bytes(np.asarray(array, dtype=np.float32)))
    return message.SerializeToString()


def blob_bytes(array: np.ndarray) -> bytes:
    """A serialized BlobProto: its shape, then `data` as one packed little-endian float field.

    Encoding the packed field directly is ~50x faster than filling the repeated
    field value by value, which matters for nets with 10^7+ weights.
    """
    shape = messages.BlobProto(shape=messages.BlobShape(dim=[int(d) for d in array.shape]))
    payload = array.astype("<f4").tobytes()
    data_tag = bytes([(DATA_FIELD << 3) | LENGTH_DELIMITED])
    return shape.SerializeToString() + data_tag + _varint(len(payload)) + payload


DATA_FIELD = messages.BlobProto.DESCRIPTOR.fields_by_name["data"].number
LENGTH_DELIMITED = 2  # protobuf wire type of packed repeated fields


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def write_caffemodel(path: str | Path, net: Net, blobs: Mapping[str, Sequence[np.ndarray]]) -> None:
    write_atomic(path, caffemodel_bytes(net, blobs))
