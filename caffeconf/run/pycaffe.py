"""The `caffe` module a Python layer's code imports (`import caffe; class L(caffe.Layer)`), as pycaffe
exposes it to layers: `Layer`, `Blob`, `TRAIN` and `TEST`. `run/layers/python.py` puts this module in
`sys.modules["caffe"]` while it imports a layer's module; nothing else of pycaffe (Net, io, ...) is here.

Blobs hold float32 arrays as Caffe's do: `.data` and `.diff` are writable views of the blob's memory in
its current shape; `reshape` keeps the memory while the count fits in it (Caffe's capacity) and
allocates zeros otherwise, so arrays taken before a reshape must be taken again.
"""

from __future__ import annotations

import numpy as np

TRAIN, TEST = 0, 1  # caffe.proto's Phase values, which pycaffe's layers see in `self.phase`

_MAX_AXES = 32  # Caffe's kMaxBlobAxes


class Blob:
    """A Caffe blob as pycaffe shows it: no shape (count 0) until reshaped."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()
        self._count = 0
        self._data = np.zeros(0, np.float32)
        self._diff = np.zeros(0, np.float32)

    def reshape(self, *shape: int) -> None:
        if len(shape) > _MAX_AXES:
            raise ValueError(f"a blob has at most {_MAX_AXES} axes, got {len(shape)}")
        dims = tuple(int(d) for d in shape)
        if any(d < 0 for d in dims):
            raise ValueError(f"blob dimensions must not be negative, got {dims}")
        count = int(np.prod(dims, dtype=np.int64))
        if count > self._data.size:
            self._data, self._diff = np.zeros(count, np.float32), np.zeros(count, np.float32)
        self._shape, self._count = dims, count

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def count(self) -> int:
        return self._count

    @property
    def data(self) -> np.ndarray:
        return self._data[:self._count].reshape(self._shape)

    @property
    def diff(self) -> np.ndarray:
        return self._diff[:self._count].reshape(self._shape)

    # Caffe's LegacyShape: 4-axis names, 1 for the axes a blob of fewer axes lacks.
    def _legacy(self, index: int) -> int:
        if len(self._shape) > 4:
            raise ValueError(f"num/channels/height/width need a blob of at most 4 axes, this one has "
                             f"{len(self._shape)}")
        return self._shape[index] if index < len(self._shape) else 1

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))


class LayerParameter:
    """Opaque, as pycaffe's: what a layer's constructor receives."""


class _NoLearnableBlobs(list):
    """`Layer.blobs`: caffeconf runs no Python layer with learnable blobs of its own."""

    def add_blob(self, *shape: int) -> None:
        raise NotImplementedError("caffeconf runs Python layers without learnable blobs: blobs.add_blob "
                                  "is not supported")


class Layer:
    """The base of a Python layer. Before `setup`, the runner sets `param_str` (python_param.param_str)
    and `phase` (TRAIN or TEST); it then calls `setup(bottom, top)` and `reshape(bottom, top)` once,
    and on every pass `reshape` and `forward(bottom, top)`; `backward(top, propagate_down, bottom)`
    when a bottom needs a gradient. The layer defines all four, as with pycaffe."""

    type = "Python"

    def __init__(self, param: LayerParameter | None = None) -> None:
        self.blobs = _NoLearnableBlobs()
