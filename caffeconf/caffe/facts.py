"""The one table of Caffe facts caffeconf relies on (BVLC master): layer types, which types take
no bottom or are fed data, learnable blobs per type with their names, integer field ranges,
caffe.proto defaults, telling a net from a solver, and the layer types and fields that the
common forks (SSD, SegNet/ENet, Faster R-CNN, ShuffleNet, PSPNet) add to caffe.proto, with the
setup rules that shape inference and the runner share (SSD's Permute and PriorBox, the forks'
ConvolutionDepthwise, ShuffleChannel and Interp, pooling's rounding)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from google.protobuf.descriptor import FieldDescriptor

from ..errors import did_you_mean
from . import dialect, messages

# Every type string BVLC Caffe registers (src/caffe/layers/*.cpp, layer_factory.cpp).
LAYER_TYPES = frozenset("""
AbsVal Accuracy ArgMax BNLL BatchNorm BatchReindex Bias Clip Concat ContrastiveLoss Convolution Crop
Data Deconvolution Dropout DummyData ELU Eltwise Embed EuclideanLoss Exp Filter Flatten HDF5Data
HDF5Output HingeLoss Im2col ImageData InfogainLoss InnerProduct Input LRN LSTM LSTMUnit Log MVN
MemoryData MultinomialLogisticLoss PReLU Parameter Pooling Power Python RNN ReLU Reduction Reshape SPP
Scale Sigmoid SigmoidCrossEntropyLoss Silence Slice Softmax SoftmaxWithLoss Split Swish TanH Threshold
Tile WindowData
""".split())

# Forks by the name a hint gives them, with where their caffe.proto lives.
SSD = "the SSD fork (weiliu89/caffe, branch ssd)"
SEGNET = "the SegNet/ENet forks (alexgkendall/caffe-segnet, TimoSaemann/caffe-enet-cudnn)"
FAST_RCNN = "the Fast/Faster R-CNN fork (rbgirshick/caffe-fast-rcnn)"
SHUFFLENET = "the ShuffleNet forks (farmingyard/ShuffleNet, farmingyard/caffe-mobilenet)"
DEPTHWISE = "the depthwise-convolution forks (yonghenglh6/DepthwiseConvolution)"
PSPNET = "the PSPNet/DeepLab forks (hszhao/PSPNet, DeepLab's caffe)"
POOLING_CEIL = "the forks with a ceil_mode switch (DenseNet-Caffe, PSPNet)"

# Layer types that forks register (their *.cpp) -> the fork.
FORK_LAYER_TYPES = {
    **dict.fromkeys(("AnnotatedData", "DetectionEvaluate", "DetectionOutput", "MultiBoxLoss", "Normalize",
                     "Permute", "PriorBox", "VideoData"), SSD),
    **dict.fromkeys(("BN", "DenseImageData", "Upsample"), SEGNET),
    **dict.fromkeys(("ROIPooling", "SmoothL1Loss"), FAST_RCNN),
    **dict.fromkeys(("ShuffleChannel", "ConvolutionDepthwise"), SHUFFLENET),
    "DepthwiseConvolution": DEPTHWISE,
    "Interp": PSPNET,
}

# (message, field) that forks add to BVLC's messages -> the fork.
FORK_FIELDS = {
    **{("LayerParameter", name): SSD for name in (
        "annotated_data_param", "detection_evaluate_param", "detection_output_param", "multibox_loss_param",
        "norm_param", "permute_param", "prior_box_param", "video_data_param")},
    **{("TransformationParameter", name): SSD for name in (
        "resize_param", "noise_param", "distort_param", "expand_param", "emit_constraint")},
    **{("SolverParameter", name): SSD for name in ("eval_type", "ap_version", "show_per_class_result")},
    **{("LayerParameter", name): SEGNET for name in ("bn_param", "upsample_param", "dense_image_data_param")},
    **{("LayerParameter", name): FAST_RCNN for name in ("roi_pooling_param", "smooth_l1_loss_param")},
    ("LayerParameter", "shuffle_channel_param"): SHUFFLENET,
    ("LayerParameter", "interp_param"): PSPNET,
    ("PoolingParameter", "ceil_mode"): POOLING_CEIL,
}


def fork_field_hint(message_name: str, field_name: str) -> str | None:
    """For a field BVLC lacks but a common fork defines: say so and point to --proto."""
    fork = FORK_FIELDS.get((message_name, field_name))
    return f"'{field_name}' is defined by the caffe.proto of {fork}; pass --proto FILE" if fork else None


def layer_types() -> frozenset[str]:
    """The layer types caffeconf accepts in the dialect in force: BVLC's, and with a fork's
    caffe.proto also the common forks' types."""
    return LAYER_TYPES if messages.current_is_bvlc() else LAYER_TYPES | frozenset(FORK_LAYER_TYPES)


def unknown_type_problem(layer_type: str) -> tuple[str, str, str | None] | None:
    """(severity, message, hint) for a layer type that is not in `layer_types()`, else None.
    With a fork's caffe.proto an unknown type may be the fork's own, so it is accepted
    structurally (a warning: fields checked, shapes unknown); with BVLC's it is an error."""
    known = layer_types()
    if layer_type in known:
        return None
    hint = did_you_mean(layer_type, known)
    if not messages.current_is_bvlc():
        return ("warning", f"layer type '{layer_type}' is not one caffeconf has rules for: accepted as "
                f"defined by {messages.dialect_name()} (fields checked, shapes unknown)", hint)
    fork = FORK_LAYER_TYPES.get(layer_type)
    if fork:
        return ("error", f"unknown layer type '{layer_type}'",
                f"'{layer_type}' is a layer type of {fork}; pass --proto FILE with its caffe.proto")
    return ("error", f"unknown layer type '{layer_type}'", hint)


# Data the caller or a dataset provides, batch by batch.
FED_TYPES = frozenset({"Input", "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData"})
# Layers whose tops are data (DummyData fills its own; SegNet's DenseImageData, which caffeconf does
# not run, reads images and label images): their shapes are the net's input shapes.
DATA_TYPES = FED_TYPES | {"DummyData", "DenseImageData"}
# Types that take no bottom blob: an omitted `bottom` means none rather than the previous top.
SOURCE_TYPES = DATA_TYPES | {"Parameter"}

# Caffe's Layer::CheckBlobCounts: ((least, most) bottoms, (least, most) tops) per type, None for no
# bound (the Exact/Min/MaxNum...Blobs of include/caffe/layers/*.hpp; SSD's from weiliu89/caffe).
_ONE, _ANY, _NONE, _SOME = (1, 1), (0, None), (0, 0), (1, None)
BLOB_COUNTS = {
    **dict.fromkeys(("AbsVal", "BNLL", "Clip", "Dropout", "ELU", "Exp", "Log", "Power", "PReLU", "ReLU",
                     "Sigmoid", "Swish", "TanH", "Threshold", "ArgMax", "BatchNorm", "Embed", "Flatten",
                     "Im2col", "InnerProduct", "LRN", "MVN", "Reduction", "Reshape", "Softmax", "SPP", "Tile",
                     "Normalize", "Permute"), (_ONE, _ONE)),
    **dict.fromkeys(("EuclideanLoss", "HingeLoss", "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss"),
                    ((2, 2), _ONE)),
    **dict.fromkeys(("Data", "AnnotatedData"), (_NONE, (1, 2))),
    **dict.fromkeys(("ImageData", "MemoryData", "WindowData"), (_NONE, (2, 2))),
    **dict.fromkeys(("Input", "DummyData", "HDF5Data", "VideoData"), (_NONE, _SOME)),
    **dict.fromkeys(("Convolution", "Deconvolution"), (_SOME, _SOME)),
    "Accuracy": ((2, 2), (1, 2)), "SoftmaxWithLoss": ((2, 2), (1, 2)), "InfogainLoss": ((2, 3), (1, 2)),
    "ContrastiveLoss": ((3, 3), _ONE), "BatchReindex": ((2, 2), _ONE), "Crop": ((2, 2), _ONE),
    "Bias": ((1, 2), _ONE), "Scale": ((1, 2), _ONE), "Concat": (_SOME, _ONE), "Eltwise": ((2, None), _ONE),
    "Filter": ((2, None), _SOME), "Slice": (_ONE, _SOME), "Split": (_ONE, _SOME), "Pooling": (_ONE, (1, 2)),
    "HDF5Output": ((2, 2), _NONE), "Silence": (_SOME, _NONE), "LSTMUnit": ((3, 3), (2, 2)),
    "Parameter": (_NONE, _ONE), "DetectionOutput": ((3, 4), _ONE), "MultiBoxLoss": ((4, 4), _ONE),
    # SSD's PriorBox and DetectionEvaluate misspell ExactNumBottomBlobs, but PriorBox reads both bottoms.
    "PriorBox": ((2, 2), _ONE), "DetectionEvaluate": (_ANY, _ONE),
}
# Loss layers get unnamed tops for those missing (Net::Init, AutoTopBlobs): only their most applies.
_AUTO_TOPS = frozenset(("EuclideanLoss", "HingeLoss", "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss",
                        "SoftmaxWithLoss", "InfogainLoss", "ContrastiveLoss", "MultiBoxLoss"))


def blob_count_problem(layer_type: str, fields: Mapping[str, Any], bottoms: int, tops: int) -> str | None:
    """What Caffe's CheckBlobCounts refuses about a layer's numbers of bottoms and tops, in words."""
    if layer_type in _RECURRENT:  # x, cont, an optional x_static, then the exposed initial states
        exposed = _RECURRENT[layer_type][2] if fields.get("recurrent_param", {}).get("expose_hidden") else 0
        counts = ((2 + exposed, 3 + exposed), (1 + exposed,) * 2)
    elif layer_type in BLOB_COUNTS and layer_type in layer_types():  # not a fork's type under BVLC's proto
        counts = BLOB_COUNTS[layer_type]
    else:
        return None
    (least, most), (top_least, top_most) = counts
    if layer_type in _AUTO_TOPS:
        top_least = 0
    problem = _count_problem("takes", "bottom", "given", least, most, bottoms) \
        or _count_problem("makes", "top", "named", top_least, top_most, tops)
    if problem is None and layer_type in ("Convolution", "Deconvolution") and bottoms != tops:
        problem = f"makes one top per bottom, but it has {bottoms} bottom(s) and {tops} top(s)"
    return problem


def _count_problem(verb: str, noun: str, done: str, least: int, most: int | None, count: int) -> str | None:
    if least <= count and (most is None or count <= most):
        return None
    bound = least if count < least else most
    need = f"{bound}" if least == most else f"at least {bound}" if count < least else f"at most {bound}"
    return f"{verb} {need} {noun} blob{'s' * (bound != 1)}, but {count} {'is' if count == 1 else 'are'} {done}"

# Blob::Reshape checks, axis by axis, that a blob's element count stays within INT_MAX.
MAX_BLOB_ELEMENTS = 2**31 - 1
# Blob::Reshape also refuses a shape of more than kMaxBlobAxes axes.
MAX_BLOB_AXES = 32

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
    if layer_type == "BN" and bn_is_pspnets():
        return ("slope", "bias", "mean", "variance")
    return _FIXED_BLOBS.get(layer_type, ())


def bn_is_pspnets() -> bool:
    """Two forks define a BN layer: SegNet/ENet's (bn_param.bn_mode; blobs scale, shift) and
    PSPNet's (bn_param.momentum, eps, frozen; blobs slope, bias, moving mean and variance). The
    dialect's BNParameter tells which."""
    return (dialect.current().has_message("BNParameter")
            and "momentum" in messages.descriptor("BNParameter").fields_by_name)


def fixed_blobs(layer_type: str, fields: Mapping[str, Any]) -> frozenset[int]:
    """Positions of the blobs whose lr_mult the layer's setup forces to 0: BVLC's BatchNorm, its
    three statistics (forks from before BVLC masked them do not); PSPNet's BN, its moving
    statistics, and with `frozen` its slope and bias too."""
    if layer_type == "BatchNorm" and messages.current_is_bvlc():
        return frozenset({0, 1, 2})
    if layer_type != "BN" or not bn_is_pspnets():
        return frozenset()
    return frozenset({0, 1, 2, 3} if fields.get("bn_param", {}).get("frozen") else {2, 3})


_WEIGHT_AND_BIAS = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
                    "InnerProduct": "inner_product_param", "Embed": "embed_param",
                    # the depthwise forks' types read convolution_param's bias_term and fillers too
                    "ConvolutionDepthwise": "convolution_param", "DepthwiseConvolution": "convolution_param"}
_FIXED_BLOBS = {"PReLU": ("slope",), "Parameter": ("value",), "BatchNorm": ("mean", "variance", "scale_factor"),
                "Normalize": ("scale",), "BN": ("scale", "shift")}
# Caffe's order: the x weight and bias, (the x_static weight), then the recurrent ones.
_RECURRENT = {"LSTM": (("W_xc", "b_c"), ("W_hc",), 2),
              "RNN": (("W_xh", "b_h"), ("W_hh", "W_ho", "b_o"), 1)}


def _recurrent_blobs(layer_type: str, fields: Mapping[str, Any], bottom_count: int) -> tuple[str, ...]:
    """An x_static bottom (one more than x, cont and any exposed hidden state) adds its weight."""
    before, after, exposed_states = _RECURRENT[layer_type]
    exposed = exposed_states if fields.get("recurrent_param", {}).get("expose_hidden") else 0
    static = (before[0] + "_x_static",) if bottom_count > 2 + exposed else ()
    return before + static + after


# Caffe's GetFiller knows these; any other type is fatal when the layer is set up.
FILLER_TYPES = ("constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear")


def constructed_fillers(layer_type: str, fields: Mapping[str, Any], bottom_count: int) -> list[tuple[str, Mapping]]:
    """(field path, FillerParameter data) of each filler Caffe builds when it sets the layer up:
    those of its learnable blobs (built even when weights are loaded later), DummyData's."""
    blobs = learnable_blobs(layer_type, fields, bottom_count)
    message = _WEIGHT_AND_BIAS.get(layer_type) or {"LSTM": "recurrent_param", "RNN": "recurrent_param"}.get(layer_type)
    wanted: list[tuple[str, str]] = []
    if message:
        wanted = [(message, "weight_filler")] + ([(message, "bias_filler")] if "bias" in blobs or
                                                 layer_type in _RECURRENT else [])
    elif layer_type == "Scale":
        wanted = ([("scale_param", "filler")] if "scale" in blobs else []) + \
                 ([("scale_param", "bias_filler")] if "bias" in blobs else [])
    elif layer_type in ("Bias", "PReLU") and blobs:
        wanted = [(f"{layer_type.lower()}_param", "filler")]
    elif layer_type == "BN":
        names = ("slope_filler", "bias_filler") if bn_is_pspnets() else ("scale_filler", "shift_filler")
        wanted = [("bn_param", name) for name in names]
    found = [(f"{m}.{f}", fields[m][f]) for m, f in wanted if f in fields.get(m, {})]
    fillers = fields.get("dummy_data_param", {}).get("data_filler", []) if layer_type == "DummyData" else []
    return found + [(f"dummy_data_param.data_filler[{i}]", spec) for i, spec in enumerate(fillers)]


def filler_problem(spec: Mapping[str, Any]) -> str | None:
    """What Caffe's filler would abort on (caffe_rng_gaussian's sigma > 0, caffe_rng_uniform's
    min <= max, GetFiller's known types), or None."""
    kind = spec.get("type", "constant")
    if kind not in FILLER_TYPES:
        return f"unknown filler type '{kind}' (Caffe's are {', '.join(FILLER_TYPES)})"
    if kind == "gaussian" and not spec.get("std", 1.0) > 0:
        return f"a gaussian filler needs std > 0, got {spec['std']}"
    if kind == "uniform" and not spec.get("min", 0.0) <= spec.get("max", 1.0):
        return f"a uniform filler needs min <= max, got min {spec.get('min', 0.0)} and max {spec.get('max', 1.0)}"
    return None


def legacy_dim(shape: Sequence, index: int) -> Any:
    """Blob::LegacyShape (num, channels, height, width): 1 past the last axis; ValueError beyond
    4 axes (the fork's SSD layers read their bottoms so)."""
    if len(shape) > 4:
        raise ValueError(f"needs at most 4 axes (num, channels, height, width), got {len(shape)}")
    return shape[index] if index < len(shape) else 1


def permute_order(order: list[int], rank: int) -> list[int]:
    """SSD's Permute: the written axes, then the unnamed ones in their order; ValueError for an
    axis out of range or named twice (the fork's CHECKs)."""
    for axis in order:
        if axis >= rank:
            raise ValueError(f"permute_param.order {axis} is not an axis of a {rank}-axis bottom")
    if len(set(order)) != len(order):
        raise ValueError(f"permute_param.order {list(order)} names an axis twice")
    return list(order) + [axis for axis in range(rank) if axis not in order]


def as_float32(value: float) -> float:
    """`value` rounded to a float, as a C++ float (and a caffe.proto float field) holds it."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def shortest_float32(value: float) -> float:
    """The float with the fewest significant digits that rounds to the same float32 (0.1, not
    0.10000000149011612; 0.0001, not 9.999999747378752e-05): how a float field reads and writes."""
    target = as_float32(value)
    for digits in range(1, 10):  # nine significant digits always round-trip a float32
        candidate = float(f"{value:.{digits}g}")
        if as_float32(candidate) == target:
            return candidate
    return target  # NaN, which equals nothing


def prior_aspect_ratios(ratios: Sequence[float], flip: bool) -> list[float]:
    """SSD's PriorBox: 1, then each written ratio not already there (within 1e-6), each followed by
    its inverse with `flip` (rounded to float, as the fork keeps them in a vector<float>)."""
    kept = [1.0]
    for ratio in ratios:
        if all(abs(ratio - seen) >= 1e-6 for seen in kept):
            kept.append(ratio)
            if flip:
                kept.append(as_float32(1.0 / ratio))
    return kept


@dataclass(frozen=True)
class PriorBoxSetup:
    """What SSD's PriorBoxLayer::LayerSetUp reads from prior_box_param; 0 image size or step:
    taken from the bottoms at forward time."""

    min_sizes: tuple[float, ...]
    max_sizes: tuple[float, ...]
    aspect_ratios: tuple[float, ...]
    clip: bool
    variances: tuple[float, ...]
    image: tuple[int, int]  # (height, width)
    step: tuple[float, float]  # (height, width)
    offset: float

    @property
    def priors_per_cell(self) -> int:
        return len(self.aspect_ratios) * len(self.min_sizes) + len(self.max_sizes)


def prior_box_setup(written: Mapping[str, Any]) -> PriorBoxSetup:
    """The layer's prior_box_param (as written) checked as the fork's CHECKs do; ValueError if not."""
    def get(name):
        return written[name] if name in written else proto_default("prior_box_param", name)

    min_sizes, max_sizes = tuple(get("min_size")), tuple(get("max_size"))
    if not min_sizes or any(size <= 0 for size in min_sizes):
        raise ValueError("prior_box_param needs min_size, each positive")
    if max_sizes and len(max_sizes) != len(min_sizes):
        raise ValueError(f"prior_box_param has {len(max_sizes)} max_size for {len(min_sizes)} min_size")
    if any(high <= low for low, high in zip(min_sizes, max_sizes)):
        raise ValueError("prior_box_param.max_size must be greater than its min_size")
    variances = tuple(get("variance")) or (0.1,)
    if len(variances) not in (1, 4) or any(v <= 0 for v in variances):
        raise ValueError(f"prior_box_param.variance needs 1 or 4 positive values, got {list(variances)}")
    return PriorBoxSetup(min_sizes, max_sizes, tuple(prior_aspect_ratios(get("aspect_ratio"), get("flip"))),
                         get("clip"), variances, _either_pair(written, "img", "img_size", int),
                         _either_pair(written, "step", "step", float), get("offset"))


def _either_pair(written: Mapping[str, Any], prefix: str, single: str, kind: type) -> tuple:
    """(h, w) from `<prefix>_h`/`<prefix>_w`, else `single` for both, else zeros; not both, none zero."""
    pair = (f"{prefix}_h", f"{prefix}_w")
    if any(name in written for name in pair):
        if single in written:
            raise ValueError(f"give either prior_box_param.{single} or {pair[0]}/{pair[1]}, not both")
        values = tuple(kind(written.get(name, 0)) for name in pair)
    else:
        values = (kind(written.get(single, 0)),) * 2
    if (any(name in written for name in (*pair, single))) and min(values) <= 0:
        raise ValueError(f"prior_box_param.{single} ({pair[0]}/{pair[1]}) must be larger than 0")
    return values


@dataclass(frozen=True)
class DepthwiseGeometry:
    """(height, width) pairs of what the ShuffleNet/MobileNet forks' ConvolutionDepthwiseLayer
    reads from convolution_param."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]


def depthwise_geometry(written: Mapping[str, Any]) -> DepthwiseGeometry:
    """ConvolutionDepthwiseLayer::LayerSetUp (farmingyard/caffe-mobilenet): `<name>_h` and
    `<name>_w` when both are written, else the first (one value) or first two values of the
    repeated field; dilation defaults to 1, but kernel, stride and pad have no default there
    (the fork reads a value that is not written), so they must be written. ValueError if not."""
    kernel = _depthwise_pair(written, "kernel_size", "kernel")
    stride = _depthwise_pair(written, "stride", "stride")
    pad = _depthwise_pair(written, "pad", "pad")
    dilation = _depthwise_pair(written, "dilation", None)
    for name, values in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if min(values) <= 0:
            raise ValueError(f"ConvolutionDepthwise needs a positive {name}, got {list(values)}")
    return DepthwiseGeometry(kernel, stride, pad, dilation)


def _depthwise_pair(written: Mapping[str, Any], name: str, prefix: str | None) -> tuple[int, int]:
    if prefix and f"{prefix}_h" in written and f"{prefix}_w" in written:
        return written[f"{prefix}_h"], written[f"{prefix}_w"]
    value = written.get(name, [])
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        if prefix is None:
            return 1, 1
        raise ValueError(f"ConvolutionDepthwise has no default for convolution_param.{name}: "
                         f"write {name} (or {prefix}_h and {prefix}_w)")
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def depthwise_output(size: int, kernel: int, pad: int, stride: int, dilation: int) -> int:
    """ConvolutionDepthwiseLayer::Reshape's output extent; ValueError where its unsigned
    arithmetic would wrap (a kernel extent larger than the padded input)."""
    extent = dilation * (kernel - 1) + 1
    if size + 2 * pad < extent:
        raise ValueError(f"kernel extent {extent} is larger than the padded input {size + 2 * pad}")
    return (size + 2 * pad - extent) // stride + 1


def shuffle_group(written: Mapping[str, Any], channels: int | None) -> int:
    """ShuffleChannelLayer's group (farmingyard/ShuffleNet): positive (LayerSetUp's CHECK) and
    dividing the channels (Forward's "Wrong group size."); ValueError if not."""
    group = written.get("group", 1)
    if group <= 0:
        raise ValueError(f"shuffle_channel_param.group must be greater than 0, got {group}")
    if channels is not None and channels % group:
        raise ValueError(f"shuffle_channel_param.group {group} does not divide the {channels} channels")
    return group


def interp_crop(written: Mapping[str, Any]) -> tuple[int, int]:
    """Interp's (pad_beg, pad_end): the fork crops only, so both are 0 or negative; ValueError if not."""
    pad_beg, pad_end = written.get("pad_beg", 0), written.get("pad_end", 0)
    if pad_beg > 0 or pad_end > 0:
        raise ValueError(f"interp_param.pad_beg and pad_end must be 0 or negative (the fork only crops), "
                         f"got {pad_beg} and {pad_end}")
    return pad_beg, pad_end


def interp_size(written: Mapping[str, Any], height: int | None, width: int | None) -> tuple:
    """InterpLayer::Reshape (hszhao/PSPNet, DeepLab v2): the output (height, width) from the
    cropped input size, taking, in this order, shrink_factor alone, zoom_factor alone, height
    and width, both factors (shrink, then zoom); None where the input size is unknown. ValueError where the
    fork's CHECKs fail."""
    pad_beg, pad_end = interp_crop(written)
    sizes = [None if size is None else size + pad_beg + pad_end for size in (height, width)]
    if any(size is not None and size <= 0 for size in sizes):
        raise ValueError(f"the input cropped by interp_param.pad_beg/pad_end is empty ({height}x{width})")
    shrink, zoom = written.get("shrink_factor"), written.get("zoom_factor")
    if (shrink is None) == (zoom is None) and "height" in written and "width" in written:
        out = (written["height"], written["width"])
    elif shrink is None and zoom is None:
        raise ValueError("interp_param needs zoom_factor, shrink_factor, or height and width")
    else:
        for name, factor in (("shrink_factor", shrink), ("zoom_factor", zoom)):
            if factor is not None and factor < 1:
                raise ValueError(f"interp_param.{name} must be at least 1, got {factor}")
        out = tuple(None if size is None else _interp_resize(size, shrink, zoom) for size in sizes)
    if any(size is not None and size <= 0 for size in out):
        raise ValueError(f"interp_param gives an empty output, {out[0]}x{out[1]}")
    return out


def _interp_resize(size: int, shrink: int | None, zoom: int | None) -> int:
    if shrink is not None:
        size = (size - 1) // shrink + 1
    return size if zoom is None else size + (size - 1) * (zoom - 1)


class NotInDialect(KeyError):
    """A layer field that neither the dialect in force nor BVLC's defines (a fork layer's, read
    under another proto): what depends on it is unknown."""


def _layer_field(message: str, name: str) -> FieldDescriptor:
    """The field in the dialect in force, else BVLC's: a fork older than a BVLC field (Faster
    R-CNN's has no ConvolutionParameter.axis) behaves as BVLC's default for it."""
    for layer in (messages.descriptor("LayerParameter"), dialect.bvlc().descriptor("LayerParameter")):
        holder = layer.fields_by_name.get(message)
        if holder is not None and name in holder.message_type.fields_by_name:
            return holder.message_type.fields_by_name[name]
    raise NotInDialect(f"{message}.{name}")


def proto_default(message: str, name: str) -> Any:
    """caffe.proto's default for `LayerParameter.<message>.<name>` (enums by name, repeated: [])."""
    field = _layer_field(message, name)
    if field.is_repeated:
        return []
    if field.enum_type is not None:
        return field.enum_type.values_by_number[field.default_value].name
    return field.default_value


def pooling_rounds_up(written: Mapping[str, Any]) -> bool:
    """Whether a Pooling layer's output size rounds up, in the dialect in force: BVLC's
    `round_mode` (CEIL by default), or the `ceil_mode` switch of the forks that took BVLC PR
    #3057 (DenseNet-Caffe's, OpenCV's caffe.proto; true by default). Either way Caffe then drops
    a last window that would start in the bottom padding."""
    fields = messages.descriptor("PoolingParameter").fields_by_name
    if "ceil_mode" in fields:
        return bool(written.get("ceil_mode", fields["ceil_mode"].default_value))
    if "round_mode" in fields:
        return written.get("round_mode", "CEIL") == "CEIL"
    return True  # protos older than both always round up


def looks_like_solver(top_level_names: set[str]) -> bool:
    """Whether a text file's top-level field names are a SolverParameter's rather than a net's:
    more names only a solver knows than names only a net knows."""
    net = set(messages.descriptor("NetParameter").fields_by_name)
    solver = set(messages.descriptor("SolverParameter").fields_by_name)
    return len(top_level_names & solver - net) > len(top_level_names & net - solver)


# What Caffe's solvers know: SolverRegistry's types, SGDSolver's lr_policy and regularization_type.
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")
LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
REGULARIZATION_TYPES = ("L1", "L2")


def solver_value_problems(solver) -> list[tuple[tuple[str, ...], str, str | None]]:
    """(the fields to place it at, first written first; message; hint) for each value Caffe's solver
    refuses: when it is made (type, average_loss) or once it trains (iter_size divides the gradients;
    lr_policy and the stepsize and gamma GetLearningRate CHECKs; regularization_type)."""
    found = []
    for field in ("iter_size", "average_loss"):
        if getattr(solver, field) < 1:
            found.append(((field,), f"{field} must be at least 1, got {getattr(solver, field)}", None))
    for field, known in (("type", SOLVER_TYPES), ("lr_policy", LR_POLICIES),
                         ("regularization_type", REGULARIZATION_TYPES)):
        value = getattr(solver, field)
        if value not in known:
            found.append(((field,), f"unknown {field} '{value}'" if value else f"no {field}: the solver needs one",
                          did_you_mean(value, known) or "use one of: " + ", ".join(known)))
    policy = solver.lr_policy
    if policy in ("step", "sigmoid") and solver.stepsize <= 0:
        found.append((("stepsize", "lr_policy"), f"lr_policy '{policy}' needs a positive stepsize, "
                                                 f"got {solver.stepsize}", None))
    if policy in LR_POLICIES and policy not in ("fixed", "poly") and solver.gamma < 0:
        found.append((("gamma", "lr_policy"), f"lr_policy '{policy}' needs a gamma of at least 0, "
                                              f"got {solver.gamma:g}", None))
    return found
