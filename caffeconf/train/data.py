"""Caffe's data layers as batch sources: (data layer, phase) -> batch number -> {top: array}.

A source is stateless: batch `k` is a pure function of the seed, the phase and `k`, so a
resumed run reads exactly the records (and random crops) an uninterrupted run would, and
`rank` r of `world` processes reads the r-th slice of the batch one process would read with
`world` times the batch size. Records are read in order, wrapping at the end, as Caffe's
readers do; a shuffled source permutes its records afresh each epoch.

Relative paths (`source`, `mean_file`, `root_folder`) are taken from the current directory,
as Caffe takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from google.protobuf.message import DecodeError

from ..errors import CaffeconfError
from ..files import check_image_size
from ..ir import Layer
from ..caffe import messages
from ..run.params import Params, layer_params
from ..caffe.weights import read_blob_file

PHASE_NUMBER = {"TRAIN": 0, "TEST": 1}


@dataclass(frozen=True)
class Shard:
    """Which slice of each global batch this process reads."""

    rank: int = 0
    world: int = 1


# ---------------------------------------------------------------- transform_param


class Transformer:
    """Caffe's DataTransformer on C x H x W arrays: crop (random in TRAIN, centred in TEST),
    mirror (random, in either phase, as Caffe does), minus the mean, times scale."""

    def __init__(self, p: Params, phase: str, layer: Layer):
        self.scale, self.crop, self.mirror = p["scale"], p["crop_size"], p["mirror"]
        self.phase = phase
        if p["mean_file"] and p["mean_value"]:
            raise _error(layer, "give transform_param.mean_file or mean_value, not both (Caffe refuses both)")
        self.mean_image = _mean_image(p["mean_file"]) if p["mean_file"] else None
        self.mean_values = np.asarray(p["mean_value"], dtype=np.float32)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        channels, height, width = image.shape
        mirrored = bool(self.mirror and rng.integers(2))
        top, left, out_h, out_w = self._window(height, width, rng)
        window = image[:, top:top + out_h, left:left + out_w].astype(np.float32)
        if self.mean_image is not None:
            window = window - self._mean_window(image.shape, top, left, out_h, out_w)
        elif self.mean_values.size:
            window = window - self._channel_means(channels)[:, None, None]
        if self.scale != 1:
            window = window * np.float32(self.scale)
        return window[:, :, ::-1] if mirrored else window

    def _window(self, height, width, rng):
        if not self.crop:
            return 0, 0, height, width
        if self.crop > height or self.crop > width:
            raise CaffeconfError.at(None, f"crop_size {self.crop} exceeds the {height}x{width} input")
        if self.phase == "TRAIN":
            return int(rng.integers(height - self.crop + 1)), int(rng.integers(width - self.crop + 1)), self.crop, self.crop
        return (height - self.crop) // 2, (width - self.crop) // 2, self.crop, self.crop

    def _mean_window(self, shape, top, left, out_h, out_w):
        if self.mean_image.shape != shape:
            raise CaffeconfError.at(None, f"the mean image has shape {self.mean_image.shape}, "
                                          f"the data {shape}: they must match")
        return self.mean_image[:, top:top + out_h, left:left + out_w]

    def _channel_means(self, channels):
        if self.mean_values.size not in (1, channels):
            raise CaffeconfError.at(None, f"{self.mean_values.size} mean values for {channels} channels; "
                                          f"give 1 or {channels}")
        return np.broadcast_to(self.mean_values, (channels,))


def _mean_image(path: str) -> np.ndarray:
    blob = read_blob_file(path)
    return blob.reshape(blob.shape[-3:]).astype(np.float32)


# ---------------------------------------------------------------- records


def datum_to_array(datum, force_color: bool = False, force_gray: bool = False) -> np.ndarray:
    """A Datum's image as C x H x W: encoded bytes through cv2.imdecode, else raw uint8 or float_data."""
    if datum.encoded:
        import cv2

        flag = cv2.IMREAD_COLOR if force_color else cv2.IMREAD_GRAYSCALE if force_gray else cv2.IMREAD_ANYCOLOR
        image = cv2.imdecode(np.frombuffer(datum.data, np.uint8), flag)
        if image is None:
            raise CaffeconfError.at(None, "a Datum's encoded image cannot be decoded")
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    shape = (datum.channels, datum.height, datum.width)
    stored = len(datum.data) if datum.data else len(datum.float_data)
    if stored != datum.channels * datum.height * datum.width:
        raise CaffeconfError.at(None, f"the Datum holds {stored} values for its {'x'.join(map(str, shape))} shape")
    if datum.data:
        return np.frombuffer(datum.data, np.uint8).reshape(shape)
    return np.asarray(datum.float_data, np.float32).reshape(shape)


def sample_rng(seed: int, phase: str, position: int) -> np.random.Generator:
    """The random stream of one sample: its crop and mirror depend on nothing else."""
    return np.random.default_rng([seed, PHASE_NUMBER.get(phase, 2), position])


class Source:
    """Batches of `batch_size` records (per process) from `count` records read by `read(record, rng)`."""

    def __init__(self, layer: Layer, tops: Sequence[str], batch_size: int, count: int,
                 read: Callable[[int, np.random.Generator], Sequence[np.ndarray]],
                 seed: int, phase: str, shard: Shard, shuffle: bool = False,
                 permute: Callable[[np.random.Generator], np.ndarray] | None = None):
        if batch_size < 1:
            raise _error(layer, "its batch_size must be at least 1")
        if count < 1:
            raise _error(layer, "its source holds no records")
        self.layer, self.tops, self.batch_size, self.count = layer, list(tops), batch_size, count
        self.read, self.seed, self.phase, self.shard, self.shuffle = read, seed, phase, shard, shuffle
        self._order: tuple[int, np.ndarray] | None = None
        # how a shuffled source orders its records for one epoch (default: a plain permutation)
        self.permute = permute or (lambda rng: rng.permutation(count))

    def batch(self, number: int) -> dict[str, np.ndarray]:
        start = (number * self.shard.world + self.shard.rank) * self.batch_size
        samples = [self.read(self._record(start + j), sample_rng(self.seed, self.phase, start + j))
                   for j in range(self.batch_size)]
        return {top: np.stack([sample[i] for sample in samples]) for i, top in enumerate(self.tops)}

    def _record(self, position: int) -> int:
        epoch, offset = divmod(position, self.count)
        if not self.shuffle:
            return offset
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self.permute(np.random.default_rng([self.seed, epoch])))
        return int(self._order[1][offset])


def _error(layer: Layer, message: str, hint: str | None = None) -> CaffeconfError:
    span = layer.origin.span if layer.origin else None
    return CaffeconfError.at(span, f"layer '{layer.name}' ({layer.type}): {message}", hint=hint)


def _label(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


# ---------------------------------------------------------------- layer types


def lmdb_source(layer: Layer, phase: str, seed: int, shard: Shard) -> Source:
    """`Data` with backend LMDB: Datum records in key order."""
    p = layer_params(layer.fields, "data_param")
    if p["backend"] != "LMDB":
        raise _error(layer, f"backend {p['backend']} is not supported", hint="convert the database to LMDB")
    import lmdb

    environment, keys = open_lmdb(layer, p["source"])
    t = layer_params(layer.fields, "transform_param")
    transform = Transformer(t, phase, layer)

    def read(record, rng):
        try:
            with environment.begin() as txn:
                datum = messages.Datum.FromString(txn.get(keys[record]))
            image = datum_to_array(datum, t["force_color"], t["force_gray"])
        except (DecodeError, ValueError, lmdb.Error) as error:  # not a Datum, or its sizes disagree
            raise _error(layer, f"record {keys[record]!r} of '{p['source']}' is not a usable Datum: "
                                f"{_worded(error)}") from None
        except CaffeconfError as error:
            raise _error(layer, f"record {keys[record]!r} of '{p['source']}': {error.diagnostics[0].message}") from None
        return transform(image, rng), _label(datum.label)

    return Source(layer, layer.tops, p["batch_size"], len(keys), read, seed, phase, shard)


def open_lmdb(layer: Layer, source: str):
    import lmdb

    if not Path(source, "data.mdb").is_file():
        raise _error(layer, f"no LMDB at '{source}' (relative paths are read from {Path.cwd()}, as Caffe does)")
    try:
        environment = lmdb.open(source, readonly=True, lock=False, readahead=False, max_readers=126)
        with environment.begin() as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))
    except lmdb.Error as error:
        raise _error(layer, f"'{source}' is not a readable LMDB: {_worded(error)}") from None
    if not keys:
        raise _error(layer, f"the LMDB at '{source}' holds no record")
    return environment, keys


def _worded(error: Exception) -> str:
    """A library's message without its own prefixes (LMDB names the file it failed on first)."""
    text = str(error).strip() or type(error).__name__
    return text.rsplit(": ", 1)[-1]


def image_data_source(layer: Layer, phase: str, seed: int, shard: Shard) -> Source:
    """`ImageData`: a list file of `path label` lines, images read with OpenCV."""
    import cv2

    p = layer_params(layer.fields, "image_data_param")
    entries = read_image_list(layer, p["source"])
    transform = Transformer(layer_params(layer.fields, "transform_param"), phase, layer)
    flag = cv2.IMREAD_COLOR if p["is_color"] else cv2.IMREAD_GRAYSCALE
    size = (p["new_width"], p["new_height"])

    def read(record, rng):
        path, label = entries[record]
        try:
            check_image_size(p["root_folder"] + path)
        except CaffeconfError as error:
            raise _error(layer, error.diagnostics[0].message) from None
        image = cv2.imread(p["root_folder"] + path, flag)
        if image is None:
            raise _error(layer, f"cannot read image '{p['root_folder'] + path}'")
        if size[0] and size[1]:
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return transform(chw, rng), _label(label)

    return Source(layer, layer.tops, p["batch_size"], len(entries), read, seed, phase, shard,
                  shuffle=p["shuffle"])


def read_image_list(layer: Layer, source: str) -> list[tuple[str, int]]:
    """ImageData's list file, its lines as Caffe reads them."""
    from ..caffe.image_list import read_image_list as read_entries

    try:
        return read_entries(source)
    except OSError as error:
        raise _error(layer, f"cannot read image list '{source}': {error.strerror}") from None


def hdf5_source(layer: Layer, phase: str, seed: int, shard: Shard) -> Source:
    """`HDF5Data`: a text file listing .h5 files, each holding one dataset per top (rows = samples).
    All files are loaded; with `shuffle`, as in Caffe, each epoch takes the files in a new order and
    the rows of each file in a new order."""
    import h5py

    p = layer_params(layer.fields, "hdf5_data_param")
    files = [line.strip() for line in _read_lines(layer, p["source"]) if line.strip()]
    columns: dict[str, list[np.ndarray]] = {top: [] for top in layer.tops}
    for name in files:
        with h5py.File(name, "r") as handle:
            for top in layer.tops:
                if top not in handle:
                    raise _error(layer, f"'{name}' has no dataset '{top}'")
                columns[top].append(np.asarray(handle[top], dtype=np.float32))
    arrays = {top: np.concatenate(parts) for top, parts in columns.items()}
    sizes = [len(part) for part in columns[layer.tops[0]]]
    starts = np.cumsum([0, *sizes[:-1]])

    def files_then_rows(rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([starts[f] + rng.permutation(sizes[f]) for f in rng.permutation(len(sizes))])

    return array_source(layer, arrays, p["batch_size"], phase, seed, shard, shuffle=p["shuffle"],
                        permute=files_then_rows)


def _read_lines(layer: Layer, source: str) -> list[str]:
    try:
        return Path(source).read_text().splitlines()
    except OSError as error:
        raise _error(layer, f"cannot read '{source}': {error.strerror}") from None


def array_source(layer: Layer, arrays: Mapping[str, np.ndarray], batch_size: int, phase: str,
                 seed: int, shard: Shard, shuffle: bool = False,
                 permute: Callable[[np.random.Generator], np.ndarray] | None = None) -> Source:
    """Arrays given from Python (or HDF5), one per top, sliced along the first axis."""
    missing = [top for top in layer.tops if top not in arrays]
    if missing:
        raise _error(layer, f"no array given for tops {missing}")
    counts = {len(arrays[top]) for top in layer.tops}
    if len(counts) != 1:
        raise _error(layer, f"its arrays have different numbers of rows: {sorted(counts)}")
    columns = [np.asarray(arrays[top], dtype=np.float32) for top in layer.tops]
    return Source(layer, layer.tops, batch_size, counts.pop(), lambda record, _: [column[record] for column in columns],
                  seed, phase, shard, shuffle=shuffle, permute=permute)


READERS = {"Data": lmdb_source, "ImageData": image_data_source, "HDF5Data": hdf5_source}


def make_source(layer: Layer, phase: str, seed: int, shard: Shard = Shard(),
                arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> Source:
    """The batch source for a data layer; `arrays` (by layer name) feeds a layer from Python."""
    if arrays and layer.name in arrays:
        return array_source(layer, arrays[layer.name], _fed_batch_size(layer), phase, seed, shard)
    if layer.type not in READERS:
        raise _error(layer, "caffeconf cannot read data of this layer type",
                     hint="use a Data (LMDB), ImageData, HDF5Data or DummyData layer")
    return READERS[layer.type](layer, phase, seed, shard)


def _fed_batch_size(layer: Layer) -> int:
    for name in ("data_param", "image_data_param", "hdf5_data_param", "memory_data_param"):
        if name in layer.fields:
            return layer_params(layer.fields, name)["batch_size"]
    if layer.type == "Input":
        shape = layer_params(layer.fields, "input_param")["shape"]
        if shape and shape[0]["dim"]:
            return shape[0]["dim"][0]
    raise _error(layer, "no batch size: give it a data_param, memory_data_param or input shape")
