"""The layer table: Caffe type string -> builder of a PyTorch implementation (see `registry`).

Importing this package imports every layer family, which fills `LAYERS`.
"""

from . import common, data, detection, forks, loss, neuron, python, rcnn, recurrent, segmentation, vision  # noqa: F401
from .registry import LAYERS, LayerContext, Op

__all__ = ["LAYERS", "LayerContext", "Op"]
