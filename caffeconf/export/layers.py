"""The export's layer table: Caffe type -> a function writing that layer as ONNX nodes.

Each emitter reads the layer's fields through Params (caffe.proto's defaults) and writes nodes
whose last outputs are `e.tops`; where ONNX's operator differs from Caffe's arithmetic the
emitter writes Caffe's (pooling's rounding and AVE divisor, Eltwise coefficients, MVN's eps on
the std, Log's multiplied base). It raises Unexpressible for what ONNX cannot express.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..inspect.shapes import conv_geometry, count, pool_geometry
from .emit import Emit, Unexpressible

EMITTERS: dict[str, Callable[[Emit], None]] = {}


def emits(*types: str):
    def add(function):
        for name in types:
            EMITTERS[name] = function
        return function
    return add


# ------------------------------------------------------------------- spatial

def _conv_attributes(e: Emit) -> dict:
    geo = conv_geometry(e.layer, e.bottom_shapes[0])
    if geo.axis != 1:
        raise Unexpressible("only channel axis 1 maps to ONNX (convolution_param.axis)")
    if 0 in geo.dilation:  # Caffe reads one pixel per kernel row/column; ONNX's Conv needs dilations >= 1
        raise Unexpressible("a dilation of 0 has no ONNX Conv equivalent")
    return {"kernel_shape": list(geo.kernel), "strides": list(geo.stride), "pads": list(geo.pad) * 2,
            "dilations": list(geo.dilation), "group": e.param("convolution_param")["group"]}


@emits("Convolution", "Deconvolution")
def convolution(e: Emit) -> None:
    # Caffe's weights (out, in/group, k...) are ONNX's Conv layout, output sizes flooring as Caffe's; a
    # Deconvolution's (in, out/group, k...) is ConvTranspose's, its size s(i-1)+d(k-1)+1-2p ONNX's too.
    op = {"Convolution": "Conv", "Deconvolution": "ConvTranspose"}[e.layer.type]
    weights = [e.const(f"{i}", blob) for i, blob in enumerate(e.blobs)]
    e.node(op, [e.inputs[0], *weights], e.out(), **_conv_attributes(e))


@emits("Pooling")
def pooling(e: Emit) -> None:
    p = e.param("pooling_param")
    method = p["pool"]
    if method == "STOCHASTIC":
        raise Unexpressible("STOCHASTIC pooling has no ONNX equivalent")
    if len(e.tops) > 1:
        raise Unexpressible("the mask top of MAX pooling has no ONNX equivalent")
    x, source, top = e.inputs[0], e.bottom_shapes[0], e.top_shapes[0]
    if p["global_pooling"]:
        e.node("GlobalMaxPool" if method == "MAX" else "GlobalAveragePool", [x], e.out())
        return
    kernel, pad, stride = pool_geometry(e.layer, source)
    # Caffe's ceil rounding (with its last-window clipping) as explicit end padding: each axis is
    # padded just far enough for the number of windows Caffe computes (never a whole kernel).
    after = [max(0, (top[2 + i] - 1) * stride[i] + kernel[i] - source[2 + i] - pad[i]) for i in range(2)]
    attributes = {"kernel_shape": kernel, "strides": stride, "pads": pad + after}
    if method == "MAX":  # padding never wins a max, in ONNX as in Caffe
        e.node("MaxPool", [x], e.out(), **attributes)
        return
    factor = _ave_correction(source[2:], top[2:], kernel, pad, stride)
    if factor is None:
        e.node("AveragePool", [x], e.out(), count_include_pad=1, **attributes)
        return
    pooled = e.node("AveragePool", [x], 1, count_include_pad=1, **attributes)
    e.node("Mul", [*pooled, e.const("divisor", factor[None, None])], e.out())


def _ave_correction(size, pooled, kernel, pad, stride) -> np.ndarray | None:
    """kernel area / Caffe's divisor per window (the window clipped to the input plus its padding),
    or None when every window has the full kernel area (ONNX's divisor here)."""
    extents = []
    for axis in range(2):
        start = np.arange(pooled[axis]) * stride[axis] - pad[axis]
        end = np.minimum(start + kernel[axis], size[axis] + pad[axis])
        extents.append((end - start).astype(np.float64))
    divisor = extents[0][:, None] * extents[1][None, :]
    area = kernel[0] * kernel[1]
    return None if np.all(divisor == area) else (area / divisor).astype(np.float32)


@emits("LRN")
def lrn(e: Emit) -> None:
    p = e.param("lrn_param")
    size, alpha, beta, k = p["local_size"], p["alpha"], p["beta"], p["k"]
    if size % 2 == 0:
        raise Unexpressible(f"LRN with an even local_size ({size}) is refused by Caffe")
    x = e.inputs[0]
    if p["norm_region"] == "ACROSS_CHANNELS":  # x / (k + alpha/size * window sum of x^2)^beta
        e.node("LRN", [x], e.out(), size=size, alpha=alpha, beta=beta, bias=k)
        return
    # Caffe: square -> AVE pooling size x size, pad (size-1)/2 (divisor size^2) -> (1 + alpha * .)^-beta -> x *
    pad = (size - 1) // 2
    squared = e.node("Mul", [x, x])
    mean = e.node("AveragePool", squared, kernel_shape=[size, size], pads=[pad] * 4, count_include_pad=1)
    base = e.node("Add", [*e.node("Mul", [*mean, e.const("alpha", alpha)]), e.const("one", 1.0)])
    e.node("Mul", [x, *e.node("Pow", [*base, e.const("power", -beta)])], e.out())


# ---------------------------------------------------------------- dense layers

@emits("InnerProduct")
def inner_product(e: Emit) -> None:
    p = e.param("inner_product_param")
    source = e.bottom_shapes[0]
    axis = e.axis(p["axis"], len(source))
    rows = e.node("Flatten", [e.inputs[0]], axis=axis) if len(source) != 2 or axis != 1 else [e.inputs[0]]
    # Caffe's weight is (out, in), or (in, out) with transpose.
    operands = [*rows, e.const("0", e.blobs[0])] + ([e.const("1", e.blobs[1])] if len(e.blobs) > 1 else [])
    transposed = 0 if p["transpose"] else 1
    if axis == 1:
        e.node("Gemm", operands, e.out(), transB=transposed)
        return
    flat = e.node("Gemm", operands, transB=transposed)
    e.reshape(flat[0], (count(source[:axis]), p["num_output"]), e.top_shapes[0], e.out())


@emits("Embed")
def embed(e: Emit) -> None:
    indices = e.node("Cast", [e.inputs[0]], to=7)  # INT64
    looked_up = e.node("Gather", [e.const("0", e.blobs[0]), *indices], e.out() if len(e.blobs) == 1 else 1)
    if len(e.blobs) > 1:  # the bias
        e.node("Add", [*looked_up, e.const("1", e.blobs[1])], e.out())


# --------------------------------------------------------------- normalization

@emits("BatchNorm")
def batch_norm(e: Emit) -> None:
    p = e.param("batch_norm_param")
    if p.has("use_global_stats") and not p["use_global_stats"]:
        raise Unexpressible("use_global_stats false normalizes by the batch's own statistics "
                            "(training); export the TEST phase")
    if len(e.bottom_shapes[0]) < 2:
        raise Unexpressible("BatchNorm of a blob with fewer than 2 axes")
    mean, variance, normalizer = e.blobs
    # The stored sums divided by the moving-average normalizer (0: no statistics yet), as Caffe does.
    factor = 0.0 if normalizer.reshape(-1)[0] == 0 else 1.0 / normalizer.reshape(-1)[0]
    channels = mean.shape[0]
    e.node("BatchNormalization",
           [e.inputs[0], e.const("gamma", np.ones(channels)), e.const("beta", np.zeros(channels)),
            e.const("mean", mean * factor), e.const("variance", variance * factor)],
           e.out(), epsilon=p["eps"])


@emits("MVN")
def mvn(e: Emit) -> None:
    p = e.param("mvn_param")
    rank = len(e.bottom_shapes[0])
    axes = list(range(1 if p["across_channels"] else 2, rank))
    x = e.inputs[0]
    if not p["normalize_variance"]:
        e.node("Sub", [x, *e.reduce("ReduceMean", x, axes, 1)], e.out())
        return
    centred = e.node("Sub", [x, *e.reduce("ReduceMean", x, axes, 1)])
    variance = e.reduce("ReduceMean", e.node("Mul", [*centred, *centred])[0], axes, 1)
    std = e.node("Add", [*e.node("Sqrt", variance), e.const("eps", p["eps"])])  # eps on the std, as Caffe
    e.node("Div", [*centred, *std], e.out())


@emits("Softmax")
def softmax(e: Emit) -> None:
    axis = e.axis(e.param("softmax_param")["axis"], len(e.bottom_shapes[0]))
    e.node("Softmax", [e.inputs[0]], e.out(), axis=axis)


# --------------------------------------------------------------- scale and bias

def _factor_axis(e: Emit, message: str) -> tuple[int, int]:
    """(axis, number of axes) the factor covers in bottom 0."""
    p, rank = e.param(message), len(e.bottom_shapes[0])
    if len(e.inputs) > 1:
        factor_rank = len(e.bottom_shapes[1])
        return (0 if factor_rank == 0 else e.axis(p["axis"], rank)), factor_rank
    axis = e.axis(p["axis"], rank) if rank else 0
    return axis, (rank - axis if p["num_axes"] == -1 else p["num_axes"])


def _broadcast(e: Emit, value: str | np.ndarray, axis: int, covered: int, suffix: str) -> str:
    """The factor (a blob or bottom 1) with trailing unit axes so that it lines up from `axis`."""
    trailing = len(e.bottom_shapes[0]) - axis - covered
    if isinstance(value, np.ndarray):
        return e.const(suffix, value.reshape(value.shape + (1,) * trailing))
    if not trailing:
        return value
    return e.node("Unsqueeze", [value, e.ints("axes", range(covered, covered + trailing))])[0]


@emits("Scale")
def scale(e: Emit) -> None:
    axis, covered = _factor_axis(e, "scale_param")
    two_bottoms = len(e.inputs) > 1
    factor = _broadcast(e, e.inputs[1] if two_bottoms else e.blobs[0], axis, covered, "0")
    if not e.param("scale_param")["bias_term"]:
        e.node("Mul", [e.inputs[0], factor], e.out())
        return
    shift = _broadcast(e, e.blobs[-1], axis, covered, "bias")
    e.node("Add", [*e.node("Mul", [e.inputs[0], factor]), shift], e.out())


@emits("Bias")
def bias(e: Emit) -> None:
    axis, covered = _factor_axis(e, "bias_param")
    shift = _broadcast(e, e.inputs[1] if len(e.inputs) > 1 else e.blobs[0], axis, covered, "0")
    e.node("Add", [e.inputs[0], shift], e.out())


# --------------------------------------------------------------- element-wise

def _unary(op: str, **attributes):
    return lambda e: e.node(op, [e.inputs[0]], e.out(), **attributes)


EMITTERS.update({"Sigmoid": _unary("Sigmoid"), "TanH": _unary("Tanh"), "AbsVal": _unary("Abs")})


@emits("Dropout", "Split")
def identity(e: Emit) -> None:
    for index in range(len(e.tops)):  # Dropout at TEST, and each copy of a Split
        e.node("Identity", [e.inputs[0]], e.out(index))


@emits("ReLU")
def relu(e: Emit) -> None:
    slope = e.param("relu_param")["negative_slope"]
    if slope == 0:
        e.node("Relu", [e.inputs[0]], e.out())
    else:
        e.node("LeakyRelu", [e.inputs[0]], e.out(), alpha=slope)


@emits("ELU")
def elu(e: Emit) -> None:
    e.node("Elu", [e.inputs[0]], e.out(), alpha=e.param("elu_param")["alpha"])


@emits("BNLL")
def bnll(e: Emit) -> None:
    # Caffe's stable form: max(x, 0) + log(1 + exp(-|x|)).
    x = e.inputs[0]
    tail = e.node("Exp", e.node("Neg", e.node("Abs", [x])))
    softened = e.node("Log", e.node("Add", [*tail, e.const("one", 1.0)]))
    e.node("Add", [*e.node("Relu", [x]), *softened], e.out())


@emits("Swish")
def swish(e: Emit) -> None:
    x, beta = e.inputs[0], e.param("swish_param")["beta"]
    scaled = [x] if beta == 1 else e.node("Mul", [x, e.const("beta", beta)])
    e.node("Mul", [x, *e.node("Sigmoid", scaled)], e.out())


def _affine(e: Emit, x: str, scale: float, shift: float) -> str:
    """shift + scale * x, leaving out a unit scale and a zero shift."""
    if scale != 1:
        x = e.node("Mul", [x, e.const("scale", scale)])[0]
    if shift != 0:
        x = e.node("Add", [x, e.const("shift", shift)])[0]
    return x


@emits("Power")
def power(e: Emit) -> None:
    p = e.param("power_param")
    base = _affine(e, e.inputs[0], p["scale"], p["shift"])
    if p["power"] == 1:
        e.node("Identity", [base], e.out())
    else:
        e.node("Pow", [base, e.const("power", p["power"])], e.out())


def _log_base(p, message: str) -> float:
    base = p["base"]
    if base != -1 and base <= 0:
        raise Unexpressible(f"{message}.base must be -1 (for e) or positive, got {base}")
    return 1.0 if base == -1 else math.log(base)


@emits("Exp")
def exp(e: Emit) -> None:
    p = e.param("exp_param")
    log_base = _log_base(p, "exp_param")
    # exp(ln(base) * (shift + scale x)): the base folded into the affine part, as Caffe does.
    e.node("Exp", [_affine(e, e.inputs[0], p["scale"] * log_base, p["shift"] * log_base)], e.out())


@emits("Log")
def log(e: Emit) -> None:
    p = e.param("log_param")
    inverse = 1.0 / _log_base(p, "log_param")
    natural = e.node("Log", [_affine(e, e.inputs[0], p["scale"], p["shift"])])
    if inverse == 1:
        e.node("Identity", natural, e.out())
    else:
        e.node("Mul", [*natural, e.const("inverse_log_base", inverse)], e.out())  # Caffe multiplies


@emits("Threshold")
def threshold(e: Emit) -> None:
    above = e.node("Greater", [e.inputs[0], e.const("threshold", e.param("threshold_param")["threshold"])])
    e.node("Cast", above, e.out(), to=1)  # FLOAT


@emits("Clip")
def clip(e: Emit) -> None:
    p = e.param("clip_param")
    if not (p.has("min") and p.has("max")):
        raise Unexpressible("clip_param needs both min and max (they are required in caffe.proto)")
    e.node("Clip", [e.inputs[0], e.const("min", p["min"]), e.const("max", p["max"])], e.out())


@emits("PReLU")
def prelu(e: Emit) -> None:
    slope, rank = e.blobs[0], len(e.bottom_shapes[0])
    # one slope per channel (axis 1), lined up for ONNX's broadcasting; channel_shared: one for all
    shaped = slope.reshape(1) if slope.ndim == 0 else slope.reshape((-1,) + (1,) * (rank - 2))
    e.node("PRelu", [e.inputs[0], e.const("slope", shaped)], e.out())


@emits("Eltwise")
def eltwise(e: Emit) -> None:
    p = e.param("eltwise_param")
    operation, coeff = p["operation"], list(p["coeff"])
    if len(e.inputs) < 2:
        raise Unexpressible("Eltwise needs at least 2 bottoms")
    if len(set(e.bottom_shapes)) > 1:
        raise Unexpressible(f"bottoms of different shapes {sorted(set(e.bottom_shapes))}")
    if coeff and (operation != "SUM" or len(coeff) != len(e.inputs)):
        raise Unexpressible("eltwise_param.coeff needs operation SUM and one value per bottom")
    terms = e.inputs
    if coeff and any(c != 1 for c in coeff):
        terms = [x if c == 1 else e.node("Mul", [x, e.const(f"coeff{i}", c)])[0]
                 for i, (x, c) in enumerate(zip(e.inputs, coeff))]
    if operation == "MAX":
        e.node("Max", terms, e.out())
        return
    op = "Mul" if operation == "PROD" else "Add"
    total = terms[0]
    for index, term in enumerate(terms[1:], start=2):  # a chain in Caffe's order
        total = e.node(op, [total, term], e.out() if index == len(terms) else 1)[0]


@emits("Reduction")
def reduction(e: Emit) -> None:
    p = e.param("reduction_param")
    source = e.bottom_shapes[0]
    axis = e.axis(p["axis"], len(source)) if source else 0
    # Caffe reduces every axis from `axis` on: flatten them into one, reduce it.
    rows = e.reshape(e.inputs[0], source, source[:axis] + (count(source[axis:]),))
    op = {"SUM": "ReduceSum", "ASUM": "ReduceL1", "SUMSQ": "ReduceSumSquare", "MEAN": "ReduceMean"}[p["operation"]]
    if p["coeff"] == 1:
        e.reduce(op, rows[0], [axis], 0, e.out())
        return
    e.node("Mul", [*e.reduce(op, rows[0], [axis], 0), e.const("coeff", p["coeff"])], e.out())


# ------------------------------------------------------------- blob shuffling

@emits("Concat")
def concat(e: Emit) -> None:
    p = e.param("concat_param")
    axis = p["concat_dim"] if p.has("concat_dim") else p["axis"]
    if len(e.inputs) == 1:
        e.node("Identity", e.inputs, e.out())
        return
    e.node("Concat", e.inputs, e.out(), axis=e.axis(axis, len(e.bottom_shapes[0])))


@emits("Slice")
def slice_(e: Emit) -> None:
    p = e.param("slice_param")
    axis = e.axis(p["slice_dim"] if p.has("slice_dim") else p["axis"], len(e.bottom_shapes[0]))
    sizes = [e.static(shape, "a slice along the batch axis")[axis] for shape in e.top_shapes]
    e.node("Split", [e.inputs[0], e.ints("split", sizes)], e.tops, axis=axis)


@emits("Flatten", "Reshape")
def reshape(e: Emit) -> None:
    e.reshape(e.inputs[0], e.bottom_shapes[0], e.top_shapes[0], e.out())


@emits("Crop")
def crop(e: Emit) -> None:
    p = e.param("crop_param")
    source, top = e.bottom_shapes[0], e.top_shapes[0]
    axis, offsets = e.axis(p["axis"], len(source)), list(p["offset"])
    axes = list(range(axis, len(source)))
    starts = [offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0 for i in axes]
    sizes = e.static(tuple(top[i] for i in axes), "a crop of the batch axis")
    e.node("Slice", [e.inputs[0], e.ints("starts", starts),
                     e.ints("ends", [s + n for s, n in zip(starts, sizes)]), e.ints("axes", axes)], e.out())


@emits("Tile")
def tile(e: Emit) -> None:
    p = e.param("tile_param")
    rank = len(e.bottom_shapes[0])
    repeats = [1] * rank
    repeats[e.axis(p["axis"], rank)] = p["tiles"]
    e.node("Tile", [e.inputs[0], e.ints("repeats", repeats)], e.out())


@emits("ArgMax")
def argmax(e: Emit) -> None:
    p = e.param("argmax_param")
    source, top_k = e.bottom_shapes[0], p["top_k"]
    k = e.ints("k", [top_k])
    if p.has("axis"):
        axis = e.axis(p["axis"], len(source))
        values, indices = e.node("TopK", [e.inputs[0], k], 2, axis=axis)
        if p["out_max_val"]:
            e.node("Identity", [values], e.out())
        else:
            e.node("Cast", [indices], e.out(), to=1)
        return
    # Over everything but the batch: (N, 1, top_k) indices as floats, or (N, 2, top_k) with values.
    rows = e.node("Flatten", [e.inputs[0]], axis=1)
    values, indices = e.node("TopK", [*rows, k], 2, axis=1)
    parts = [e.node("Cast", [indices], to=1)[0]] + ([values] if p["out_max_val"] else [])
    stacked = e.node("Concat", [e.node("Unsqueeze", [part, e.ints("axes", [1])])[0] for part in parts], axis=1)
    e.reshape(stacked[0], (source[0], len(parts), top_k), e.top_shapes[0], e.out())


@emits("BatchReindex")
def batch_reindex(e: Emit) -> None:
    e.node("Gather", [e.inputs[0], *e.node("Cast", [e.inputs[1]], to=7)], e.out())


@emits("Parameter")
def parameter(e: Emit) -> None:
    e.node("Identity", [e.const("0", e.blobs[0])], e.out())


@emits("Silence")
def silence(e: Emit) -> None:
    """Nothing to compute: Silence only ends its bottoms."""


# ----------------------------------------------------------------- recurrent

@emits("LSTM", "RNN")
def recurrent(e: Emit) -> None:
    """Caffe's unrolled LSTM or RNN as one Scan over time: the input terms of every step first
    (W_x x_t + b, + W_static x_static), then each step from the previous state scaled by cont_t.
    Without expose_hidden the states start at zero, as in Caffe's first forward (Caffe then carries
    a forward's last states into the next one; an exported model starts every run afresh)."""
    p = e.param("recurrent_param")
    lstm, hidden, expose = e.layer.type == "LSTM", p["num_output"], p["expose_hidden"]
    states = 2 if lstm else 1
    static = len(e.inputs) > 2 + states * expose
    x_shape = e.bottom_shapes[0]
    if len(x_shape) < 3:
        raise Unexpressible(f"x must be T x N x ..., got {len(x_shape)} axes")
    streams, *features = e.static(x_shape[1:], "the number of streams or of x's features")
    steps = e.reshape(e.inputs[0], x_shape, (x_shape[0], streams, math.prod(features)))
    gate_x = e.node("Add", [*e.node("MatMul", [*steps, e.const("0", e.blobs[0].T)]), e.const("1", e.blobs[1])])
    if static:
        x_static = e.node("Flatten", [e.inputs[2]], axis=1)
        gate_x = e.node("Add", [*gate_x, *e.node("MatMul", [*x_static, e.const("2", e.blobs[2].T)])])
    if expose:
        initial = [e.node("Squeeze", [state, e.ints("axes", [0])])[0] for state in e.inputs[2 + static:]]
    else:
        initial = [e.const(f"state{i}", np.zeros((streams, hidden))) for i in range(states)]
    step = _lstm_step if lstm else _rnn_step
    body_inputs, body_outputs, body = step(e, e.body(), e.blobs[2 + static:], streams, hidden)
    final = [e.graph.fresh(f"{e.layer.name}/last{i}") for i in range(states)]
    stacked = e.tops[0] if lstm else e.graph.fresh(f"{e.layer.name}/h")
    e.scan(body, [*initial, *gate_x, e.inputs[1]], 2, body_inputs, body_outputs, [*final, stacked])
    if not lstm:  # o_t = tanh(W_ho h_t + b_o)
        output = e.node("MatMul", [stacked, e.const("o", e.blobs[-2].T)])
        e.node("Tanh", e.node("Add", [*output, e.const("b_o", e.blobs[-1])]), e.out())
    for index, state in enumerate(final if expose else []):
        e.node("Unsqueeze", [state, e.ints("axes", [0])], e.out(1 + index))


def _step_names(e: Emit, body, *names: str) -> list[str]:
    return [body.fresh(f"{e.layer.name}/{name}") for name in names]


def _writer(e: Emit, body):
    """Emit.node for the body: nodes named after the layer, written into `body`."""
    def node(op: str, inputs, outputs=1, **attributes) -> list[str]:
        return body.node(op, inputs, outputs, hint=e.layer.name, **attributes)
    return node


def _kept_state(e: Emit, body, state: str, cont: str) -> tuple[str, str]:
    """cont_t as a column, and the previous state times it (0 starts a sequence)."""
    node = _writer(e, body)
    column = node("Unsqueeze", [cont, e.ints("axes", [1])])[0]
    return column, node("Mul", [state, column])[0]


def _lstm_step(e: Emit, body, blobs, streams: int, hidden: int):
    """LSTMUnit on W_hc (cont_t h) + gate_x_t."""
    h, c, gate_x, cont, h_new, c_new, h_out = _step_names(e, body, "h_prev", "c_prev", "gate_x_t", "cont_t",
                                                          "h_t", "c_t", "h_out")
    node = _writer(e, body)
    column, kept = _kept_state(e, body, h, cont)
    gates = node("Add", [*node("MatMul", [kept, e.const("h", blobs[0].T)]), gate_x])
    _lstm_cell(e, node, c, gates[0], column, hidden, 1, c_new, h_new)
    node("Identity", [h_new], [h_out])
    state, gate_shape = (streams, hidden), (streams, 4 * hidden)
    return ([(h, state), (c, state), (gate_x, gate_shape), (cont, (streams,))],
            [(h_new, state), (c_new, state), (h_out, state)], body)


def _lstm_cell(e: Emit, node, c_prev: str, gates: str, column: str, hidden: int, axis: int,
               c_new: str, h_new: str) -> None:
    """Caffe's LSTMUnit: gates [i, f, o, g] along `axis`; the forget gate exactly 0 where cont is 0
    (Caffe's, not cont x sigmoid)."""
    i, f, o, g = node("Split", [gates, e.ints("split", [hidden] * 4)], 4, axis=axis)
    zero = e.const("zero", 0.0)
    forget = node("Where", [*node("Equal", [column, zero]), zero, *node("Mul", [column, *node("Sigmoid", [f])])])
    node("Add", [*node("Mul", [*forget, c_prev]), *node("Mul", [*node("Sigmoid", [i]), *node("Tanh", [g])])], [c_new])
    node("Mul", [*node("Sigmoid", [o]), *node("Tanh", [c_new])], [h_new])


@emits("LSTMUnit")
def lstm_unit(e: Emit) -> None:
    """One step: c_prev (1 x N x H), gate input (1 x N x 4H), cont (1 x N) -> c, h."""
    c_prev, gates, cont = e.inputs
    hidden = e.static(e.bottom_shapes[0], "the hidden size")[-1]
    column = e.node("Unsqueeze", [cont, e.ints("axes", [2])])[0]
    _lstm_cell(e, e.node, c_prev, gates, column, hidden, 2, e.tops[0], e.tops[1])


def _rnn_step(e: Emit, body, blobs, streams: int, hidden: int):
    """h_t = tanh(W_hh (cont_t h_{t-1}) + gate_x_t)."""
    h, gate_x, cont, h_new, h_out = _step_names(e, body, "h_prev", "gate_x_t", "cont_t", "h_t", "h_out")
    node = _writer(e, body)
    _, kept = _kept_state(e, body, h, cont)
    node("Tanh", node("Add", [*node("MatMul", [kept, e.const("h", blobs[0].T)]), gate_x]), [h_new])
    node("Identity", [h_new], [h_out])
    state = (streams, hidden)
    return [(h, state), (gate_x, state), (cont, (streams,))], [(h_new, state), (h_out, state)], body
