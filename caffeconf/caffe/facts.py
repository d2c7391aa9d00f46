"""The one table of Caffe facts caffeconf relies on (BVLC master): layer types, which types take
no bottom or are fed data, learnable blobs per type with their names, integer field ranges,
caffe.proto defaults, and telling a net from a solver."""

from __future__ import annotations

import functools
from typing import Any, Mapping

from google.protobuf.descriptor import FieldDescriptor

from . import caffe_pb2

# Every type string BVLC Caffe registers (src/caffe/layers/*.cpp, layer_factory.cpp).
LAYER_TYPES = frozenset("""
AbsVal Accuracy ArgMax BNLL BatchNorm BatchReindex Bias Clip Concat ContrastiveLoss Convolution Crop
Data Deconvolution Dropout DummyData ELU Eltwise Embed EuclideanLoss Exp Filter Flatten HDF5Data
HDF5Output HingeLoss Im2col ImageData InfogainLoss InnerProduct Input LRN LSTM LSTMUnit Log MVN
MemoryData MultinomialLogisticLoss PReLU Parameter Pooling Power Python RNN ReLU Reduction Reshape SPP
Scale Sigmoid SigmoidCrossEntropyLoss Silence Slice Softmax SoftmaxWithLoss Split Swish TanH Threshold
Tile WindowData
""".split())

# Data the caller or a dataset provides, batch by batch.
FED_TYPES = frozenset({"Input", "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData"})
# Layers whose tops are data (DummyData fills its own): their shapes are the net's input shapes.
DATA_TYPES = FED_TYPES | {"DummyData"}
# Types that take no bottom blob: an omitted `bottom` means none rather than the previous top.
SOURCE_TYPES = DATA_TYPES | {"Parameter"}

# (low, high, caffe.proto's name) of each integer C++ type.
INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1, "int32"),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1, "int64"),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1, "uint32"),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1, "uint64"),
}


def learnable_blobs(layer_type: str, fields: Mapping[str, Any], bottom_count: int) -> tuple[str, ...]:
    """The learnable blobs Caffe gives a layer of this type, in order (what `param` entries refer to)."""
    def bias(param_key: str, default: bool) -> tuple[str, ...]:
        return ("bias",) if fields.get(param_key, {}).get("bias_term", default) else ()

    if layer_type in _WEIGHT_AND_BIAS:
        return ("weight",) + bias(_WEIGHT_AND_BIAS[layer_type], True)
    if layer_type == "Scale":
        return (("scale",) if bottom_count == 1 else ()) + bias("scale_param", False)
    if layer_type == "Bias":
        return ("bias",) if bottom_count == 1 else ()
    if layer_type in _RECURRENT:
        return _recurrent_blobs(layer_type, fields, bottom_count)
    return _FIXED_BLOBS.get(layer_type, ())


_WEIGHT_AND_BIAS = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
                    "InnerProduct": "inner_product_param", "Embed": "embed_param"}
_FIXED_BLOBS = {"PReLU": ("slope",), "Parameter": ("value",), "BatchNorm": ("mean", "variance", "scale_factor")}
# Caffe's order: the x weight and bias, (the x_static weight), then the recurrent ones.
_RECURRENT = {"LSTM": (("W_xc", "b_c"), ("W_hc",), 2),
              "RNN": (("W_xh", "b_h"), ("W_hh", "W_ho", "b_o"), 1)}


def _recurrent_blobs(layer_type: str, fields: Mapping[str, Any], bottom_count: int) -> tuple[str, ...]:
    """An x_static bottom (one more than x, cont and any exposed hidden state) adds its weight."""
    before, after, exposed_states = _RECURRENT[layer_type]
    exposed = exposed_states if fields.get("recurrent_param", {}).get("expose_hidden") else 0
    static = (before[0] + "_x_static",) if bottom_count > 2 + exposed else ()
    return before + static + after


@functools.cache
def _layer_field(message: str, name: str) -> FieldDescriptor:
    return caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[message].message_type.fields_by_name[name]


def proto_default(message: str, name: str) -> Any:
    """caffe.proto's default for `LayerParameter.<message>.<name>` (enums by name, repeated: [])."""
    field = _layer_field(message, name)
    if field.is_repeated:
        return []
    if field.enum_type is not None:
        return field.enum_type.values_by_number[field.default_value].name
    return field.default_value


def looks_like_solver(top_level_names: set[str]) -> bool:
    """Whether a text file's top-level field names are a SolverParameter's rather than a net's:
    more names only a solver knows than names only a net knows."""
    net = set(caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name)
    solver = set(caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name)
    return len(top_level_names & solver - net) > len(top_level_names & net - solver)
