"""Static shape inference: flat Net (+ known input shapes) -> every blob's and weight's shape.

Each Caffe layer type has a rule in `SHAPE_RULES` that computes what the
layer's `Reshape` would: Caffe's own output-size formulas (pooling's ceil and
clipping of the last window, dilated convolution, Reshape's 0 and -1, Crop,
Concat/Slice axes, ...). A shape is a tuple of dims; a dim is None when it is
not known statically (a Data layer's channels come from the database), and a
whole shape is None when even its rank is unknown (HDF5Data, Python layers).
Unknowns propagate; nothing is guessed.

Mismatches (Concat inputs that disagree, a kernel larger than its padded
input, a negative size...) are reported at the layer's location with its
module chain; every layer is checked, not just the first bad one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from ..errors import CaffeconfError, Diagnostic, did_you_mean
from ..caffe.facts import (DATA_TYPES, LAYER_TYPES, MAX_BLOB_AXES, MAX_BLOB_ELEMENTS, NotInDialect, blob_count_problem,
                           constructed_fillers,
                           depthwise_geometry, depthwise_output, filler_problem, fixed_blobs, interp_size,
                           learnable_blobs, legacy_dim, permute_order, pooling_rounds_up, prior_box_setup,
                           proto_default, shuffle_group)
from ..caffe.fork_layers import (check_bn_tops, check_smooth_l1_bottoms, check_smooth_l1_shapes,
                                 dense_image_tops, roi_pooled_size, upsample_size)
from ..ir import Layer, Net

Dim = int | None
Shape = tuple[Dim, ...]


class ShapeMismatch(Exception):
    """Raised by a rule; the driver turns it into a located diagnostic."""


def _checked(rule, *args):
    """`rule(*args)` of caffe.facts or the fork layers, its ValueError (what Caffe refuses) a ShapeMismatch."""
    try:
        return rule(*args)
    except ValueError as problem:
        raise ShapeMismatch(str(problem)) from None


@dataclass(frozen=True)
class Inferred:
    """What one rule computes: a shape per top (None: unknown) and the layer's
    learnable blob shapes (None: unknown, e.g. the input channels are unknown)."""

    tops: tuple[Shape | None, ...]
    params: tuple[Shape, ...] | None = ()


@dataclass(frozen=True)
class LayerShapes:
    layer: Layer
    bottoms: tuple[Shape | None, ...]
    tops: tuple[Shape | None, ...]
    params: tuple[Shape, ...] | None


@dataclass(frozen=True)
class NetShapes:
    layers: tuple[LayerShapes, ...]

    def blob(self, name: str) -> Shape | None:
        """The blob's shape as its last writer leaves it."""
        for entry in reversed(self.layers):
            for top, shape in zip(entry.layer.tops, entry.tops):
                if top == name:
                    return shape
        raise KeyError(name)


# ---------------------------------------------------------------- fields and defaults

def layer_param(layer: Layer, message: str, name: str):
    """The layer's `<message>.<name>` as written, else caffe.proto's default."""
    written = layer.fields.get(message) or {}
    return written[name] if name in written else proto_default(message, name)


def has_param(layer: Layer, message: str, name: str) -> bool:
    return name in (layer.fields.get(message) or {})


# ---------------------------------------------------------------- dim arithmetic

def count(dims: Sequence[Dim]) -> int | None:
    """Product of the dims; None if any is unknown."""
    if any(d is None for d in dims):
        return None
    return math.prod(dims)


def _canonical_axis(axis: int, rank: int) -> int:
    """Caffe's Blob::CanonicalAxisIndex: negative axes count from the end."""
    if not -rank <= axis < rank:
        raise ShapeMismatch(f"axis {axis} is out of range for a blob with {rank} axes")
    return axis + rank if axis < 0 else axis


def _same(a: Dim, b: Dim) -> bool:
    return a is None or b is None or a == b


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape) if shape else "scalar"


# ---------------------------------------------------------------- geometry shared by conv / pool

def _per_axis(param: Mapping, name: str, num_axes: int, default: int | None) -> list[int]:
    """kernel/pad/stride per spatial axis from `<name>` (scalar or repeated) or `<name>_h/_w`;
    Caffe refuses a zero kernel or stride (its CHECK_GT), where a division would fail."""
    values = _written_per_axis(param, name, num_axes, default)
    if name in ("kernel_size", "stride") and any(v is not None and v <= 0 for v in values):
        field = "kernel" if name == "kernel_size" else name
        raise ShapeMismatch(f"{field} must be greater than zero, got {values}")
    return values


def _written_per_axis(param: Mapping, name: str, num_axes: int, default: int | None) -> list[int]:
    field = "kernel" if name == "kernel_size" else name
    if f"{field}_h" in param or f"{field}_w" in param:
        if num_axes != 2:
            raise ShapeMismatch(f"{field}_h and {field}_w are for 2D blobs only")
        if field == "pad":  # Caffe reads both; the one not written is its proto default, 0
            return [param.get("pad_h", 0), param.get("pad_w", 0)]
        if f"{field}_h" not in param or f"{field}_w" not in param:  # Caffe needs both to be > 0
            raise ShapeMismatch(f"{field}_h and {field}_w must be given together")
        return [param[f"{field}_h"], param[f"{field}_w"]]
    value = param.get(name, [])
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        if default is None:
            raise ShapeMismatch(f"{name} (or {field}_h and {field}_w) must be given")
        return [default] * num_axes
    if len(values) == 1:
        return values * num_axes
    if len(values) != num_axes:
        raise ShapeMismatch(f"{name} has {len(values)} values for {num_axes} spatial axes")
    return values


def _conv_out(size: int, kernel: int, pad: int, stride: int, dilation: int) -> int:
    extent = dilation * (kernel - 1) + 1
    # Caffe's C++ division truncates toward zero, so a kernel a little larger than a strided
    # input still gives one output; only a non-positive size is refused.
    out = int((size + 2 * pad - extent) / stride) + 1
    if out <= 0:
        raise ShapeMismatch(f"kernel extent {extent} is larger than the padded input {size + 2 * pad}")
    return out


def _deconv_out(size: int, kernel: int, pad: int, stride: int, dilation: int) -> int:
    out = stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad
    if out <= 0:
        raise ShapeMismatch(f"output size {out} is not positive")
    return out


def _pool_out(size: Dim, kernel: int, pad: int, stride: int, ceil: bool) -> Dim:
    if size is None:
        return None
    # Caffe rounds up by default, even when the kernel overhangs the padded input (pooling_layer.cpp)...
    span = size + 2 * pad - kernel
    pooled = (-(-span // stride) if ceil else span // stride) + 1
    # ...but the last window must start inside the image or the left padding.
    if pad > 0 and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    if pooled <= 0:
        raise ShapeMismatch(f"kernel {kernel} is larger than the padded input {size + 2 * pad}")
    return pooled


@dataclass(frozen=True)
class ConvGeometry:
    axis: int
    kernel: list[int]
    pad: list[int]
    stride: list[int]
    dilation: list[int]


def conv_geometry(layer: Layer, bottom: Shape) -> ConvGeometry:
    param = layer.fields.get("convolution_param") or {}
    axis = _canonical_axis(layer_param(layer, "convolution_param", "axis"), len(bottom))
    spatial = len(bottom) - axis - 1
    return ConvGeometry(
        axis=axis,
        kernel=_per_axis(param, "kernel_size", spatial, None),
        pad=_per_axis(param, "pad", spatial, 0),  # Caffe's kDefaultPad
        stride=_per_axis(param, "stride", spatial, 1),  # kDefaultStride
        dilation=_per_axis(param, "dilation", spatial, 1),  # kDefaultDilation
    )


def _grouped_channels(layer: Layer, channels: Dim) -> tuple[int, Dim]:
    num_output = layer_param(layer, "convolution_param", "num_output")
    group = layer_param(layer, "convolution_param", "group")
    if num_output <= 0:
        raise ShapeMismatch("convolution_param.num_output must be positive")
    if group <= 0:
        raise ShapeMismatch(f"convolution_param.group must be positive, got {group}")
    if num_output % group or (channels is not None and channels % group):
        raise ShapeMismatch(f"input channels {'?' if channels is None else channels} and num_output {num_output} "
                            f"must be multiples of group {group}")
    return num_output, None if channels is None else channels // group


def _with_bias(layer: Layer, message: str, weight: Shape, bias: Shape) -> tuple[Shape, ...]:
    return (weight, bias) if layer_param(layer, message, "bias_term") else (weight,)


def _conv_params(layer: Layer, weight: Shape, num_output: int) -> tuple[Shape, ...] | None:
    if None in weight:
        return None
    return _with_bias(layer, "convolution_param", weight, (num_output,))


def _convolution(layer: Layer, bottoms: list[Shape]) -> Inferred:
    geo = conv_geometry(layer, bottoms[0])
    num_output, group_in = _grouped_channels(layer, bottoms[0][geo.axis])
    tops = tuple(_conv_top(geo, b, num_output, _conv_out) for b in bottoms)
    weight = (num_output, group_in, *geo.kernel)
    return Inferred(tops, _conv_params(layer, weight, num_output))


def _deconvolution(layer: Layer, bottoms: list[Shape]) -> Inferred:
    geo = conv_geometry(layer, bottoms[0])
    num_output, _ = _grouped_channels(layer, bottoms[0][geo.axis])
    group = layer_param(layer, "convolution_param", "group")
    tops = tuple(_conv_top(geo, b, num_output, _deconv_out) for b in bottoms)
    weight = (bottoms[0][geo.axis], num_output // group, *geo.kernel)
    return Inferred(tops, _conv_params(layer, weight, num_output))


def _conv_top(geo: ConvGeometry, bottom: Shape, channels: int, size_rule) -> Shape:
    spatial = bottom[geo.axis + 1:]
    sizes = tuple(None if s is None else size_rule(s, k, p, st, d) for s, k, p, st, d in
                  zip(spatial, geo.kernel, geo.pad, geo.stride, geo.dilation))
    return (*bottom[:geo.axis], channels, *sizes)


def _im2col(layer: Layer, bottoms: list[Shape]) -> Inferred:
    geo = conv_geometry(layer, bottoms[0])
    channels = bottoms[0][geo.axis]
    columns = None if channels is None else channels * math.prod(geo.kernel)
    top = _conv_top(geo, bottoms[0], 0, _conv_out)
    return Inferred(((*top[:geo.axis], columns, *top[geo.axis + 1:]),))


def pool_geometry(layer: Layer, bottom: Shape) -> tuple[list[Dim], list[int], list[int]]:
    """A Pooling layer's (kernel, pad, stride) per spatial axis for a 4-axis bottom; a global
    pooling's kernel is the bottom's spatial size (None where unknown)."""
    param = layer.fields.get("pooling_param") or {}
    if layer_param(layer, "pooling_param", "global_pooling"):
        if "kernel_size" in param or "kernel_h" in param:
            raise ShapeMismatch("with global_pooling the kernel size is the input size; give no kernel")
        kernel = list(bottom[2:])
    else:
        kernel = _per_axis(param, "kernel_size", 2, None)
    pad = _per_axis(param, "pad", 2, layer_param(layer, "pooling_param", "pad"))
    stride = _per_axis(param, "stride", 2, layer_param(layer, "pooling_param", "stride"))
    return kernel, pad, stride


def _pooling(layer: Layer, bottoms: list[Shape]) -> Inferred:
    _check_pooling_tops(layer)
    bottom = _require_rank(bottoms[0], 4, "Pooling")
    kernel, pad, stride = pool_geometry(layer, bottom)
    if None in kernel:
        return Inferred((bottom[:2] + (1, 1),) * len(layer.tops))
    if any(p >= k for p, k in zip(pad, kernel)):
        raise ShapeMismatch(f"pad {pad} must be smaller than kernel {kernel}")
    ceil = pooling_rounds_up(layer.fields.get("pooling_param") or {})
    top = bottom[:2] + tuple(_pool_out(s, k, p, st, ceil) for s, k, p, st in zip(bottom[2:], kernel, pad, stride))
    return Inferred((top,) * len(layer.tops))  # a MAX pooling's second top is its argmax mask


def _check_pooling_tops(layer: Layer) -> None:
    """Caffe's MaxTopBlobs: a second top (the argmax mask) for MAX pooling only."""
    most = 2 if layer_param(layer, "pooling_param", "pool") == "MAX" else 1
    if len(layer.tops) > most:
        raise ShapeMismatch(f"{layer_param(layer, 'pooling_param', 'pool')} pooling makes at most {most} "
                            f"top(s) (a second, the argmax mask, for MAX only), got {len(layer.tops)}")


def _spp(layer: Layer, bottoms: list[Shape]) -> Inferred:
    n, c, *_ = _require_rank(bottoms[0], 4, "SPP")
    height = layer_param(layer, "spp_param", "pyramid_height")
    if height == 1:  # Caffe then uses the pooling output directly, unflattened
        return Inferred(((n, c, 1, 1),))
    bins = sum(4 ** level for level in range(height))
    return Inferred(((n, None if c is None else c * bins),))


def _require_rank(shape: Shape, rank: int, what: str) -> Shape:
    if len(shape) != rank:
        raise ShapeMismatch(f"{what} needs a {rank}-axis input, got {format_shape(shape)}")
    return shape


# ---------------------------------------------------------------- dense, normalization, scale

def _inner_product(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    axis = _canonical_axis(layer_param(layer, "inner_product_param", "axis"), len(bottom))
    num_output = layer_param(layer, "inner_product_param", "num_output")
    inputs = count(bottom[axis:])
    weight = (inputs, num_output) if layer_param(layer, "inner_product_param", "transpose") \
        else (num_output, inputs)
    params = None if inputs is None else _with_bias(layer, "inner_product_param", weight, (num_output,))
    return Inferred(((*bottom[:axis], num_output),), params)


def _embed(layer: Layer, bottoms: list[Shape]) -> Inferred:
    num_output = layer_param(layer, "embed_param", "num_output")
    weight = (layer_param(layer, "embed_param", "input_dim"), num_output)
    return Inferred(((*bottoms[0], num_output),), _with_bias(layer, "embed_param", weight, (num_output,)))


def _prelu(layer: Layer, bottoms: list[Shape]) -> Inferred:
    if len(bottoms[0]) < 2:
        raise ShapeMismatch("PReLU needs an input with at least 2 axes")
    channels = 1 if layer_param(layer, "prelu_param", "channel_shared") else bottoms[0][1]
    return Inferred((bottoms[0],), None if channels is None else ((channels,),))


def _batch_norm(layer: Layer, bottoms: list[Shape]) -> Inferred:
    channels = bottoms[0][1] if len(bottoms[0]) > 1 else 1
    params = None if channels is None else ((channels,), (channels,), (1,))
    return Inferred((bottoms[0],), params)


def _scale_shape(layer: Layer, message: str, bottom: Shape) -> Shape:
    axis = _canonical_axis(layer_param(layer, message, "axis"), len(bottom))
    num_axes = layer_param(layer, message, "num_axes")
    if num_axes < -1:
        raise ShapeMismatch(f"{message}.num_axes must be -1 or non-negative")
    end = len(bottom) if num_axes == -1 else axis + num_axes
    if end > len(bottom):
        raise ShapeMismatch(f"axis {axis} + num_axes {num_axes} exceeds the input's {len(bottom)} axes")
    return bottom[axis:end]


def _check_broadcast(layer: Layer, message: str, bottom: Shape, factor: Shape) -> None:
    """Caffe lines the second bottom up with the first starting at `axis`."""
    if not factor:
        return
    axis = _canonical_axis(layer_param(layer, message, "axis"), len(bottom))
    window = bottom[axis:axis + len(factor)]
    if len(window) != len(factor) or not all(_same(a, b) for a, b in zip(window, factor)):
        raise ShapeMismatch(f"second bottom {format_shape(factor)} does not match input "
                            f"{format_shape(bottom)} from axis {axis}")


def _scale(layer: Layer, bottoms: list[Shape]) -> Inferred:
    if len(bottoms) > 1:
        _check_broadcast(layer, "scale_param", bottoms[0], bottoms[1])
        bias = (bottoms[1],) if layer_param(layer, "scale_param", "bias_term") else ()
        return Inferred((bottoms[0],), None if None in bottoms[1] else bias)
    shape = _scale_shape(layer, "scale_param", bottoms[0])
    return Inferred((bottoms[0],), None if None in shape else _with_bias(layer, "scale_param", shape, shape))


def _bias(layer: Layer, bottoms: list[Shape]) -> Inferred:
    if len(bottoms) > 1:
        _check_broadcast(layer, "bias_param", bottoms[0], bottoms[1])
        return Inferred((bottoms[0],))
    shape = _scale_shape(layer, "bias_param", bottoms[0])
    return Inferred((bottoms[0],), None if None in shape else (shape,))


def _lrn(layer: Layer, bottoms: list[Shape]) -> Inferred:
    size = layer_param(layer, "lrn_param", "local_size")
    if size % 2 == 0:
        raise ShapeMismatch(f"LRN needs an odd local_size, got {size}")
    return Inferred((_require_rank(bottoms[0], 4, "LRN"),))


# ---------------------------------------------------------------- blob plumbing

def _same_as_bottom(layer: Layer, bottoms: list[Shape]) -> Inferred:
    return Inferred((bottoms[0],) * len(layer.tops))


def _softmax(layer: Layer, bottoms: list[Shape]) -> Inferred:
    _canonical_axis(layer_param(layer, "softmax_param", "axis"), len(bottoms[0]))
    return Inferred((bottoms[0],) * len(layer.tops))


def _eltwise(layer: Layer, bottoms: list[Shape]) -> Inferred:
    for other in bottoms[1:]:
        if len(other) != len(bottoms[0]) or not all(map(_same, other, bottoms[0])):
            raise ShapeMismatch("Eltwise inputs differ in shape: "
                                + ", ".join(format_shape(b) for b in bottoms))
    coeffs = layer_param(layer, "eltwise_param", "coeff")
    if coeffs and len(coeffs) != len(bottoms):
        raise ShapeMismatch(f"Eltwise has {len(coeffs)} coefficients for {len(bottoms)} bottoms")
    return Inferred((bottoms[0],))


def _legacy_axis(layer: Layer, message: str, legacy: str) -> int:
    """Concat's concat_dim and Slice's slice_dim win over `axis` when written."""
    if has_param(layer, message, legacy):
        return layer_param(layer, message, legacy)
    return layer_param(layer, message, "axis")


def _concat(layer: Layer, bottoms: list[Shape]) -> Inferred:
    first = bottoms[0]
    axis = _canonical_axis(_legacy_axis(layer, "concat_param", "concat_dim"), len(first))
    for other in bottoms[1:]:
        disagree = len(other) != len(first) or not all(
            _same(a, b) for i, (a, b) in enumerate(zip(first, other)) if i != axis)
        if disagree:
            raise ShapeMismatch(f"Concat inputs must agree on every axis but {axis}: "
                                + ", ".join(format_shape(b) for b in bottoms))
    sizes = [b[axis] for b in bottoms]
    merged = None if None in sizes else sum(sizes)
    return Inferred(((*first[:axis], merged, *first[axis + 1:]),))


def _slice(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    axis = _canonical_axis(_legacy_axis(layer, "slice_param", "slice_dim"), len(bottom))
    size, tops = bottom[axis], len(layer.tops)
    points = list(layer_param(layer, "slice_param", "slice_point"))
    if points:
        if len(points) != tops - 1:
            raise ShapeMismatch(f"Slice has {len(points)} slice points for {tops} tops")
        edges = [0, *points, size]
        if size is not None and any(b <= a for a, b in zip(edges, edges[1:])):
            raise ShapeMismatch(f"slice points {points} must increase inside 0..{size}")
        sizes = [None if b is None else b - a for a, b in zip(edges, edges[1:])]
    else:
        if size is not None and size % tops:
            raise ShapeMismatch(f"axis {axis} of size {size} does not split evenly into {tops} tops")
        sizes = [None if size is None else size // tops] * tops
    return Inferred(tuple((*bottom[:axis], s, *bottom[axis + 1:]) for s in sizes))


def _flatten(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    start = _canonical_axis(layer_param(layer, "flatten_param", "axis"), len(bottom))
    end = _canonical_axis(layer_param(layer, "flatten_param", "end_axis"), len(bottom))
    if end < start:  # Blob::count(start, end + 1) CHECKs start <= end + 1
        raise ShapeMismatch(f"flatten_param.end_axis (axis {end}) comes before axis (axis {start})")
    return Inferred(((*bottom[:start], count(bottom[start:end + 1]), *bottom[end + 1:]),))


def _reshape(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    dims = list((layer_param(layer, "reshape_param", "shape") or {}).get("dim", []))
    axis = layer_param(layer, "reshape_param", "axis")
    num_axes = layer_param(layer, "reshape_param", "num_axes")
    # Caffe counts a negative axis from the end *inclusive*: -1 means "after the last axis".
    start = axis if axis >= 0 else len(bottom) + axis + 1
    end = len(bottom) if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= len(bottom):
        raise ShapeMismatch(f"reshape axis {axis} with num_axes {num_axes} is out of range "
                            f"for input {format_shape(bottom)}")
    if dims.count(-1) > 1:
        raise ShapeMismatch("reshape_param.shape may infer (-1) at most one dim")
    if any(d < -1 for d in dims):
        raise ShapeMismatch(f"negative size in reshape_param.shape {dims}")
    copied = [start + i for i, d in enumerate(dims) if d == 0]
    if copied and copied[-1] >= len(bottom):
        raise ShapeMismatch(f"reshape_param.shape {dims} has a 0 (copy the bottom's axis) at axis {copied[-1]}, "
                            f"which input {format_shape(bottom)} does not have")
    middle = [bottom[start + i] if d == 0 else d for i, d in enumerate(dims)]
    if -1 in middle:
        middle[middle.index(-1)] = _inferred_dim(bottom[start:end], middle)
    elif None not in middle and count(bottom[start:end]) not in (None, count(middle)):
        raise ShapeMismatch(f"cannot reshape {format_shape(bottom)} to {dims}: counts differ")
    return Inferred(((*bottom[:start], *middle, *bottom[end:]),))


def _inferred_dim(replaced: Shape, middle: list) -> Dim:
    total, known = count(replaced), count([d for d in middle if d != -1])
    if total is None or known is None:
        return None
    if known == 0 or total % known:
        raise ShapeMismatch(f"cannot infer the -1 dim: {total} elements do not divide by {known}")
    return total // known


def _crop(layer: Layer, bottoms: list[Shape]) -> Inferred:
    data, reference = bottoms
    if len(data) != len(reference):
        raise ShapeMismatch(f"Crop bottoms differ in rank: {format_shape(data)} and {format_shape(reference)}")
    axis = _canonical_axis(layer_param(layer, "crop_param", "axis"), len(data))
    offsets = list(layer_param(layer, "crop_param", "offset"))
    if len(offsets) > 1 and axis + len(offsets) != len(data):
        raise ShapeMismatch(f"Crop has {len(offsets)} offsets for {len(data) - axis} cropped axes")
    for i in range(axis, len(data)):
        offset = offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0
        if data[i] is not None and reference[i] is not None and data[i] - offset < reference[i]:
            raise ShapeMismatch(f"crop of axis {i} is out of bounds: size {reference[i]} at offset "
                                f"{offset} in {data[i]}")
    return Inferred(((*data[:axis], *reference[axis:]),))


def _tile(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    axis = _canonical_axis(layer_param(layer, "tile_param", "axis"), len(bottom))
    tiles = layer_param(layer, "tile_param", "tiles")
    if tiles <= 0:
        raise ShapeMismatch(f"tile_param.tiles must be positive, got {tiles}")
    size = None if bottom[axis] is None else bottom[axis] * tiles
    return Inferred(((*bottom[:axis], size, *bottom[axis + 1:]),))


def _reduction(layer: Layer, bottoms: list[Shape]) -> Inferred:
    axis = _canonical_axis(layer_param(layer, "reduction_param", "axis"), len(bottoms[0]))
    return Inferred((bottoms[0][:axis],))


def _argmax(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    top_k = layer_param(layer, "argmax_param", "top_k")
    if has_param(layer, "argmax_param", "axis"):
        axis = _canonical_axis(layer_param(layer, "argmax_param", "axis"), len(bottom))
        if bottom[axis] is not None and top_k > bottom[axis]:
            raise ShapeMismatch(f"argmax_param.top_k {top_k} is more than the {bottom[axis]} values of axis {axis}")
        return Inferred(((*bottom[:axis], top_k, *bottom[axis + 1:]),))
    per_item = count(bottom[1:])
    if per_item is not None and top_k > per_item:
        raise ShapeMismatch(f"argmax_param.top_k {top_k} is more than the {per_item} values of each item")
    values = 2 if layer_param(layer, "argmax_param", "out_max_val") else 1
    return Inferred(((bottom[0], values, top_k) + (1,) * (len(bottom) - 3),))


def _filter(layer: Layer, bottoms: list[Shape]) -> Inferred:
    # How many items pass depends on the selector's values: unknown statically.
    return Inferred(tuple((None, *b[1:]) for b in bottoms[:-1]))


def _batch_reindex(layer: Layer, bottoms: list[Shape]) -> Inferred:
    return Inferred(((bottoms[1][0], *bottoms[0][1:]),))


# ---------------------------------------------------------------- losses and metrics

def _scalar_loss(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """Loss top is a scalar; some losses also output their probabilities.
    Caffe makes an unnamed loss top when none is named (AutoTopBlobs)."""
    return Inferred(((), bottoms[0])[:len(layer.tops)])


def _check_labels(layer: Layer, scores: Shape, labels: Shape, message: str) -> int:
    axis = _canonical_axis(layer_param(layer, message, "axis"), len(scores))
    predictions = count(scores[:axis] + scores[axis + 1:])
    if predictions is not None and count(labels) not in (None, predictions):
        raise ShapeMismatch(f"{count(labels)} labels for {predictions} predictions "
                            f"(scores {format_shape(scores)}, labels {format_shape(labels)})")
    return axis


def _softmax_with_loss(layer: Layer, bottoms: list[Shape]) -> Inferred:
    _check_labels(layer, bottoms[0], bottoms[1], "softmax_param")
    return _scalar_loss(layer, bottoms)


def _accuracy(layer: Layer, bottoms: list[Shape]) -> Inferred:
    axis = _check_labels(layer, bottoms[0], bottoms[1], "accuracy_param")
    return Inferred(((), (bottoms[0][axis],))[:len(layer.tops)])


# ---------------------------------------------------------------- recurrent

def _recurrent(gates: int, states: int, extra: Callable[[int], tuple[Shape, ...]]):
    """LSTM (4 gates, h and c states) and RNN (h): x is T x N x ...; the output is T x N x num_output.

    Bottoms are x, cont, then x_static when present, then (with expose_hidden) the initial states,
    which come back as extra tops: as Caffe counts them, x_static is there when the bottoms number
    more than 2 plus the exposed states.
    """

    def rule(layer: Layer, bottoms: list[Shape]) -> Inferred:
        x = bottoms[0]
        if len(x) < 3:
            raise ShapeMismatch(f"x must be T x N x ... (3 axes at least), got {format_shape(x)}")
        hidden = layer_param(layer, "recurrent_param", "num_output")
        if hidden <= 0:
            raise ShapeMismatch(f"recurrent_param.num_output must be positive, got {hidden}")
        exposed = states if layer_param(layer, "recurrent_param", "expose_hidden") else 0
        has_static = len(bottoms) > 2 + exposed
        inputs = count(x[2:])
        static = count(bottoms[2][1:]) if has_static else None
        params = None if inputs is None or (has_static and static is None) else (
            (gates * hidden, inputs), (gates * hidden,),
            *(((gates * hidden, static),) if has_static else ()),
            *extra(hidden))
        return Inferred(((*x[:2], hidden),) + tuple(bottoms[2 + has_static:]), params)

    return rule


def _lstm_unit(layer: Layer, bottoms: list[Shape]) -> Inferred:
    return Inferred((bottoms[0], bottoms[0]))


# ---------------------------------------------------------------- SSD's detection layers

def _legacy_dim(shape: Shape, index: int) -> Dim:
    return _checked(legacy_dim, shape, index)


def _legacy_shape(shape: Shape) -> Shape:
    return tuple(_legacy_dim(shape, index) for index in range(4))


def _normalize(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    if len(bottom) < 2:
        raise ShapeMismatch("Normalize needs a bottom with at least 2 axes")
    if layer_param(layer, "norm_param", "channel_shared"):
        return Inferred((bottom,), ((),))
    return Inferred((bottom,), None if bottom[1] is None else ((bottom[1],),))


def _permute(layer: Layer, bottoms: list[Shape]) -> Inferred:
    bottom = bottoms[0]
    order = _checked(permute_order, list(layer_param(layer, "permute_param", "order")), len(bottom))
    return Inferred((tuple(bottom[axis] for axis in order),))


def _prior_box(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """(1, 2, H*W*priors*4): the boxes, then their variances; the image bottom's size is read at
    forward time only."""
    priors = _checked(prior_box_setup, layer.fields.get("prior_box_param") or {}).priors_per_cell
    if len(bottoms) != 2:
        raise ShapeMismatch(f"PriorBox takes 2 bottoms (a feature map and the image), got {len(bottoms)}")
    cells = count((_legacy_dim(bottoms[0], 2), _legacy_dim(bottoms[0], 3)))
    return Inferred(((1, 2, None if cells is None else cells * priors * 4),))


def _detection_output(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """Caffe's Reshape declares one row, [1, 1, 1, 7]; forward resizes it to the detections kept."""
    if len(bottoms) != 3:
        raise ShapeMismatch(f"DetectionOutput takes 3 bottoms (locations, confidences, priors), got {len(bottoms)}")
    if not has_param(layer, "detection_output_param", "num_classes"):
        raise ShapeMismatch("detection_output_param.num_classes is required")
    loc, conf, priors = bottoms
    classes = layer_param(layer, "detection_output_param", "num_classes")
    loc_classes = 1 if layer_param(layer, "detection_output_param", "share_location") else classes
    num_priors = None if _legacy_dim(priors, 2) is None else _legacy_dim(priors, 2) // 4
    if not _same(loc[0], conf[0]):
        raise ShapeMismatch(f"locations {format_shape(loc)} and confidences {format_shape(conf)} "
                            "differ in batch size")
    for what, shape, per_prior in (("locations", loc, loc_classes * 4), ("confidences", conf, classes)):
        expected = None if num_priors is None else num_priors * per_prior
        if not _same(_legacy_dim(shape, 1), expected):
            raise ShapeMismatch(f"{what} {format_shape(shape)} need {expected} channels "
                                f"({num_priors} priors x {per_prior})")
    return Inferred(((1, 1, 1, 7),))


# ---------------------------------------------------------------- fork layers

def _convolution_depthwise(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """One filter per bottom channel: num_output and group are not read (the forks' own layer)."""
    geo = _checked(depthwise_geometry, layer.fields.get("convolution_param") or {})
    n, c, h, w = _legacy_shape(bottoms[0])
    sizes = tuple(None if size is None else _checked(depthwise_output, size, *args)
                  for size, *args in zip((h, w), geo.kernel, geo.pad, geo.stride, geo.dilation))
    params = None if c is None else _with_bias(layer, "convolution_param", (c, 1, *geo.kernel), (c,))
    return Inferred(((n, c, *sizes),), params)


def _shuffle_channel(layer: Layer, bottoms: list[Shape]) -> Inferred:
    legacy = _legacy_shape(bottoms[0])
    _checked(shuffle_group, layer.fields.get("shuffle_channel_param") or {}, legacy[1])
    return Inferred((legacy,))


def _interp(layer: Layer, bottoms: list[Shape]) -> Inferred:
    n, c, h, w = _legacy_shape(bottoms[0])
    return Inferred(((n, c, *_checked(interp_size, layer.fields.get("interp_param") or {}, h, w)),))


def _bn(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """(num, channels, height, width) of the bottom, then (SegNet's) the batch mean and variance
    (1, C, 1, 1); a (1, C, 1, 1) blob for each learnable blob (SegNet's scale and shift, PSPNet's
    slope, bias, moving mean and variance)."""
    _checked(check_bn_tops, layer.fields.get("bn_param") or {}, len(layer.tops))
    top = _legacy_shape(bottoms[0])
    statistic = (1, top[1], 1, 1)
    blobs = len(learnable_blobs("BN", layer.fields, len(bottoms)))
    return Inferred((top,) + (statistic,) * (len(layer.tops) - 1), None if top[1] is None else (statistic,) * blobs)


def _upsample(layer: Layer, bottoms: list[Shape]) -> Inferred:
    if len(bottoms) != 2:
        raise ShapeMismatch(f"Upsample takes 2 bottoms (values and a pooling's mask), got {len(bottoms)}")
    data, mask = (_require_rank(b, 4, "Upsample") for b in bottoms)
    if not all(map(_same, data, mask)):
        raise ShapeMismatch(f"the mask {format_shape(mask)} differs in shape from the values {format_shape(data)}")
    size = _checked(upsample_size, layer.fields.get("upsample_param") or {}, data[2], data[3])
    return Inferred(((*data[:2], *size),))


def _roi_pooling(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """(ROIs, channels, pooled_h, pooled_w); each ROI is (batch index, x1, y1, x2, y2)."""
    pooled = _checked(roi_pooled_size, layer.fields.get("roi_pooling_param") or {})
    if len(bottoms) != 2:
        raise ShapeMismatch(f"ROIPooling takes 2 bottoms (features, ROIs), got {len(bottoms)}")
    features, rois = _legacy_shape(bottoms[0]), bottoms[1]
    per_roi = count(rois[1:]) if rois else 1
    if per_roi is not None and per_roi < 5:
        raise ShapeMismatch(f"ROIs {format_shape(rois)} need 5 values each (batch index, x1, y1, x2, y2)")
    return Inferred(((_legacy_dim(rois, 0), features[1], *pooled),))


def _smooth_l1_loss(layer: Layer, bottoms: list[Shape]) -> Inferred:
    _checked(check_smooth_l1_bottoms, len(bottoms))
    _checked(check_smooth_l1_shapes, bottoms)
    return _scalar_loss(layer, bottoms)


def _dense_image_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """SegNet's and ENet's images and label images; where neither a crop nor a new size gives their
    size, it is the first image's (inspect/sources.py reads it). No learnable blobs."""
    tops = _checked(dense_image_tops, layer.fields.get("dense_image_data_param") or {},
                    layer.fields.get("transform_param") or {})
    return Inferred(tops, ())


# ---------------------------------------------------------------- sources (no bottoms)

def _blob_shape(message: Mapping) -> Shape:
    dims = tuple(message.get("dim", []))
    if any(d < 0 for d in dims):
        raise ShapeMismatch(f"negative size in shape {list(dims)}")
    return dims


def _per_top(layer: Layer, shapes: list[Shape], what: str) -> tuple[Shape, ...]:
    """One shape for every top, or one shape per top (Input, DummyData)."""
    if len(shapes) == 1:
        return tuple(shapes) * len(layer.tops)
    if len(shapes) != len(layer.tops):
        raise ShapeMismatch(f"{what} has {len(shapes)} shapes for {len(layer.tops)} tops")
    return tuple(shapes)


def _input(layer: Layer, bottoms: list[Shape]) -> Inferred:
    shapes = [_blob_shape(s) for s in layer_param(layer, "input_param", "shape")]
    if not shapes:
        raise ShapeMismatch("input_param.shape is missing")
    return Inferred(_per_top(layer, shapes, "input_param"))


def _dummy_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    shapes = [_blob_shape(s) for s in layer_param(layer, "dummy_data_param", "shape")]
    if not shapes:  # the legacy 4-D form: num/channels/height/width, each 1 value or 1 per top
        legacy = [list(layer_param(layer, "dummy_data_param", f))
                  for f in ("num", "channels", "height", "width")]
        tops = max(map(len, legacy))
        if any(len(values) not in (1, tops) for values in legacy):
            raise ShapeMismatch("num, channels, height and width need 1 value or 1 per top")
        shapes = [tuple(v[i] if len(v) > 1 else v[0] for v in legacy) for i in range(tops)]
    return Inferred(_per_top(layer, shapes, "dummy_data_param"))


def _labelled_batch(layer: Layer, data: Shape, batch: int) -> Inferred:
    """Data layers: the data top, and a label top of shape (batch,) when there are two."""
    return Inferred((data, (batch,))[:len(layer.tops)])


def _crop_size(layer: Layer) -> int:
    return layer_param(layer, "transform_param", "crop_size")


def _data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    # The image size and channels are those of the database's records: unknown here.
    batch, crop = layer_param(layer, "data_param", "batch_size"), _crop_size(layer)
    return _labelled_batch(layer, (batch, None, crop or None, crop or None), batch)


def _image_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    batch = layer_param(layer, "image_data_param", "batch_size")
    channels = 3 if layer_param(layer, "image_data_param", "is_color") else 1
    crop = _crop_size(layer)
    height = crop or layer_param(layer, "image_data_param", "new_height") or None
    width = crop or layer_param(layer, "image_data_param", "new_width") or None
    return _labelled_batch(layer, (batch, channels, height, width), batch)


def _window_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    batch = layer_param(layer, "window_data_param", "batch_size")
    crop = _crop_size(layer) or layer_param(layer, "window_data_param", "crop_size")
    return _labelled_batch(layer, (batch, 3, crop or None, crop or None), batch)


def _memory_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    sizes = [layer_param(layer, "memory_data_param", f) for f in ("batch_size", "channels", "height", "width")]
    if 0 in sizes:  # MemoryDataLayer's CHECK_GT(batch_size * size, 0)
        raise ShapeMismatch("memory_data_param's batch_size, channels, height and width must all be positive")
    return _labelled_batch(layer, tuple(sizes), sizes[0])


def _parameter(layer: Layer, bottoms: list[Shape]) -> Inferred:
    shape = _blob_shape(layer_param(layer, "parameter_param", "shape") or {})
    return Inferred((shape,), (shape,))


def _unknown_tops(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """Python layers and unknown types: shapes and learnable blobs come from code."""
    return Inferred((None,) * len(layer.tops), None)


def _python(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """Shapes come from the layer's code; pycaffe's factory imports `module` and calls its `layer`
    class, so a net that names neither cannot be built."""
    written = layer.fields.get("python_param") or {}
    if not written.get("module") or not written.get("layer"):
        raise ShapeMismatch(PYTHON_PARAM_NEEDED)
    return _unknown_tops(layer, bottoms)


PYTHON_PARAM_NEEDED = "python_param needs both `module` and `layer` (the class)"


def python_module(layer: Layer) -> str:
    """The module a Python layer's python_param names ('?' when none is written)."""
    return (layer.fields.get("python_param") or {}).get("module") or "?"


def _hdf5_data(layer: Layer, bottoms: list[Shape]) -> Inferred:
    """Shapes come from the files (inspect/sources.py reads them); no learnable blobs."""
    return Inferred((None,) * len(layer.tops), ())


def _no_tops(layer: Layer, bottoms: list[Shape]) -> Inferred:
    return Inferred(())


SHAPE_RULES: dict[str, Callable[[Layer, list[Shape]], Inferred]] = {
    "Input": _input, "DummyData": _dummy_data, "Data": _data, "ImageData": _image_data,
    "WindowData": _window_data, "MemoryData": _memory_data, "HDF5Data": _hdf5_data,
    "Python": _python, "Parameter": _parameter,
    "Convolution": _convolution, "Deconvolution": _deconvolution, "Im2col": _im2col,
    "Pooling": _pooling, "SPP": _spp, "InnerProduct": _inner_product, "Embed": _embed,
    "LRN": _lrn, "BatchNorm": _batch_norm, "Scale": _scale, "Bias": _bias, "PReLU": _prelu,
    "Eltwise": _eltwise, "Concat": _concat, "Slice": _slice, "Flatten": _flatten,
    "Reshape": _reshape, "Crop": _crop, "Tile": _tile, "Reduction": _reduction,
    "ArgMax": _argmax, "Filter": _filter, "BatchReindex": _batch_reindex,
    "SoftmaxWithLoss": _softmax_with_loss, "Accuracy": _accuracy,
    "LSTM": _recurrent(4, 2, lambda h: ((4 * h, h),)),
    "RNN": _recurrent(1, 1, lambda h: ((h, h), (h, h), (h,))),
    "Softmax": _softmax, "LSTMUnit": _lstm_unit, "Silence": _no_tops, "HDF5Output": _no_tops,
    "Normalize": _normalize, "Permute": _permute, "PriorBox": _prior_box, "DetectionOutput": _detection_output,
    "ConvolutionDepthwise": _convolution_depthwise, "DepthwiseConvolution": _convolution,
    "ShuffleChannel": _shuffle_channel, "Interp": _interp,
    "BN": _bn, "Upsample": _upsample, "ROIPooling": _roi_pooling, "SmoothL1Loss": _smooth_l1_loss,
    "DenseImageData": _dense_image_data,
    **{t: _same_as_bottom for t in (
        "ReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold",
        "Clip", "Swish", "Dropout", "Split", "MVN")},
    **{t: _scalar_loss for t in (
        "EuclideanLoss", "SigmoidCrossEntropyLoss", "ContrastiveLoss", "HingeLoss",
        "InfogainLoss", "MultinomialLogisticLoss")},
}

# ---------------------------------------------------------------- the driver

def infer_shapes(net: Net, inputs: Mapping[str, Sequence[int]] | None = None,
                 batch: int | None = None) -> NetShapes:
    """Every layer's bottom, top and parameter shapes, in net order.

    `inputs` gives shapes for blobs that source layers (Input, Data, ...)
    produce, replacing what the layer declares; `batch` replaces the first dim
    of every source top. Raises CaffeconfError with one diagnostic per bad layer.
    """
    overrides = _check_overrides(net, inputs or {})
    blobs = {name: overrides.get(name, shape) for name, shape in net_inputs(net).items()}
    if batch is not None:
        blobs = {name: shape if not shape else (batch, *shape[1:]) for name, shape in blobs.items()}
    entries, problems = [], []
    for layer in net.layers:
        bottoms = tuple(_bottom_shape(layer, name, blobs) for name in layer.bottoms)
        try:
            _check_setup(layer)
            inferred = _infer_layer(layer, bottoms)
        except ShapeMismatch as mismatch:
            problems.append(_diagnostic(layer, str(mismatch)))
            inferred = Inferred((None,) * len(layer.tops), None)
        inferred = _apply_overrides(layer, inferred, overrides, batch)
        oversized = oversized_blobs(layer, inferred)
        if oversized:
            problems.append(_diagnostic(layer, oversized[0]))
            inferred = Inferred((None,) * len(layer.tops), None)
        blobs.update(zip(layer.tops, inferred.tops))
        entries.append(LayerShapes(layer, bottoms, inferred.tops, inferred.params))
    if problems:
        raise CaffeconfError(problems)
    return NetShapes(tuple(entries))


def _check_setup(layer: Layer) -> None:
    """What Caffe's Layer::SetUp aborts on before any shape: the numbers of bottoms and tops, loss
    weights not one per top, fillers, a learned BatchNorm statistic."""
    count_problem = blob_count_problem(layer.type, layer.fields, len(layer.bottoms), len(layer.tops))
    if count_problem:
        raise ShapeMismatch(count_problem)
    blobs = learnable_blobs(layer.type, layer.fields, len(layer.bottoms))
    if layer.type in LAYER_TYPES - {"Python"} and len(layer.params) > len(blobs):  # Net::Init's CHECK
        raise ShapeMismatch(f"{len(layer.params)} param entr{'y' if len(layer.params) == 1 else 'ies'}, but the "
                            f"layer has {len(blobs)} learnable "
                            f"blob(s){' (' + ', '.join(blobs) + ')' if blobs else ''}: Caffe refuses more")
    weights = layer.fields.get("loss_weight") or []
    if weights and len(weights) != len(layer.tops):
        raise ShapeMismatch(f"{len(weights)} loss_weight values for {len(layer.tops)} tops: give none or one per top")
    for path, spec in constructed_fillers(layer.type, layer.fields, len(layer.bottoms)):
        problem = filler_problem(spec)
        if problem:
            raise ShapeMismatch(f"{path}: {problem}")
    if layer.type == "BatchNorm" and 0 in fixed_blobs(layer.type, layer.fields):
        for index, spec in enumerate(layer.params[:3]):
            if spec.get("lr_mult", 1.0) != 0:
                raise ShapeMismatch(f"param[{index}].lr_mult is {spec.get('lr_mult', 1.0):g}: BatchNorm's statistics "
                                    "are not learned (Caffe's setup refuses any lr_mult but 0)")


def _infer_layer(layer: Layer, bottoms: tuple[Shape | None, ...]) -> Inferred:
    rule = SHAPE_RULES.get(layer.type)
    if rule is None:
        return _unknown_tops(layer, list(bottoms))
    if any(b is None for b in bottoms):
        return Inferred((None,) * len(layer.tops), None)
    try:
        inferred = rule(layer, list(bottoms))
    except NotInDialect:  # a fork's layer under a proto without its fields (validate names the type)
        return _unknown_tops(layer, list(bottoms))
    if len(inferred.tops) != len(layer.tops):
        raise ShapeMismatch(f"{layer.type} makes {len(inferred.tops)} top(s) here, "
                            f"but {len(layer.tops)} are named")
    for shape in inferred.tops:
        if shape is not None and any(d is not None and d < 0 for d in shape):
            raise ShapeMismatch(f"negative size in output shape {format_shape(shape)}")
    return inferred


def over_blob_limit(shape: Shape | None) -> bool:
    """Whether Caffe's Blob::Reshape would refuse `shape`: the count grows past INT_MAX at some
    axis (a zero earlier stops the growth, as in Caffe). Unknown dims are left out."""
    count = 1
    for dim in shape or ():
        if dim is None:
            continue
        if count and dim > MAX_BLOB_ELEMENTS // count:
            return True
        count *= dim
    return False


def oversized_blobs(layer: Layer, inferred: Inferred) -> list[str]:
    """What of the layer's tops and learnable blobs no Caffe blob could be, in words: more than
    kMaxBlobAxes axes, a negative size, more elements than INT_MAX (Blob::Reshape's CHECKs)."""
    named = [(f"top '{top}'", shape) for top, shape in zip(layer.tops, inferred.tops)]
    named += [(f"learnable blob {i}", shape) for i, shape in enumerate(inferred.params or ())]
    problems = []
    for what, shape in named:
        if shape is not None and len(shape) > MAX_BLOB_AXES:
            problems.append(f"{what} has {len(shape)} axes: a Caffe blob has at most {MAX_BLOB_AXES} (kMaxBlobAxes)")
        elif any(d is not None and d < 0 for d in shape or ()):
            problems.append(f"{what} has a negative size: {format_shape(shape)}")
        elif over_blob_limit(shape):
            problems.append(f"{what} of shape {format_shape(shape)} has more elements than the "
                            f"{MAX_BLOB_ELEMENTS} (INT_MAX) a Caffe blob can hold")
    return problems


def check_source_sizes(net: Net, shapes: Mapping[str, Shape]) -> None:
    """Refuse, before anything is allocated, source tops (`shapes`, e.g. with --batch applied)
    that no Caffe blob could hold, at their layers."""
    problems = [_diagnostic(layer, message) for layer in net.layers if layer.type in DATA_TYPES
                for message in oversized_blobs(layer, Inferred(tuple(shapes.get(top) for top in layer.tops)))]
    if problems:
        raise CaffeconfError(problems)


def _bottom_shape(layer: Layer, name: str, blobs: Mapping[str, Shape | None]) -> Shape | None:
    if name not in blobs:
        raise CaffeconfError([_diagnostic(layer, f"bottom '{name}' is not produced by any earlier layer",
                                          hint=did_you_mean(name, blobs))])
    return blobs[name]


def net_inputs(net: Net) -> dict[str, Shape | None]:
    """Net-level `input` blobs (the legacy form a deploy config may keep) with their declared shapes."""
    names = list(net.fields.get("input", ()))
    shapes = [tuple(s.get("dim", ())) for s in net.fields.get("input_shape", ())]
    dims = list(net.fields.get("input_dim", ()))
    shapes = shapes or [tuple(dims[i:i + 4]) for i in range(0, len(dims), 4)]
    return {name: shapes[i] if i < len(shapes) else None for i, name in enumerate(names)}


def _check_overrides(net: Net, inputs: Mapping[str, Sequence[int]]) -> dict[str, Shape]:
    sources = {top for layer in net.layers if layer.type in DATA_TYPES for top in layer.tops}
    sources |= set(net_inputs(net))
    for name in inputs:
        if name not in sources:
            raise CaffeconfError.at(None, f"no input blob named '{name}' (inputs: {', '.join(sorted(sources))})",
                                    hint=did_you_mean(name, sources))
    return {name: tuple(shape) for name, shape in inputs.items()}


def _apply_overrides(layer: Layer, inferred: Inferred, overrides: Mapping[str, Shape],
                     batch: int | None) -> Inferred:
    if layer.type not in DATA_TYPES:
        return inferred
    tops = tuple(overrides.get(name, shape) for name, shape in zip(layer.tops, inferred.tops))
    if batch is not None:
        tops = tuple(shape if not shape else (batch, *shape[1:]) for shape in tops)
    return replace(inferred, tops=tops)


def _diagnostic(layer: Layer, message: str, hint: str | None = None) -> Diagnostic:
    origin = layer.origin
    notes = origin.use_notes() if origin else ()
    return Diagnostic(f"layer '{layer.name}' ({layer.type}): {message}",
                      origin.span if origin else None, notes=notes, hint=hint)
