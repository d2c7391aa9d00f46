"""Spatial layers: Convolution, Deconvolution, Im2col, Pooling, SPP, LRN."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from ...caffe.facts import pooling_rounds_up
from ..params import Params
from .registry import BlobSpec, LayerContext, Op, register

NEG_INF = float("-inf")


# ---------------------------------------------------------------- convolution

@dataclass(frozen=True)
class ConvGeometry:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]


def _per_axis(ctx: LayerContext, p: Params, name: str, spatial: int, default: int) -> tuple[int, ...]:
    """A repeated conv field: empty -> default, one value -> every axis, else one per axis."""
    values = p[name]
    if not values:
        return (default,) * spatial
    if len(values) == 1:
        return (values[0],) * spatial
    if len(values) != spatial:
        raise ctx.error(f"convolution_param.{name} has {len(values)} values; "
                        f"give 1 or {spatial} (one per spatial axis)")
    return tuple(values)


def _hw_or(ctx: LayerContext, p: Params, name: str, spatial: int, default: int) -> tuple[int, ...]:
    """`name_h`/`name_w` when written (2-D only), else the repeated `name` field."""
    if p.has(f"{name}_h") or p.has(f"{name}_w"):
        if spatial != 2:
            raise ctx.error(f"{name}_h/{name}_w need 2 spatial axes, the bottom has {spatial}")
        if p.has(name if name != "kernel" else "kernel_size"):
            raise ctx.error(f"give either {name}_h/{name}_w or the repeated field, not both")
        return (p[f"{name}_h"], p[f"{name}_w"])
    return _per_axis(ctx, p, "kernel_size" if name == "kernel" else name, spatial, default)


def conv_geometry(ctx: LayerContext, p: Params, spatial: int) -> ConvGeometry:
    kernel = _hw_or(ctx, p, "kernel", spatial, 0)
    if any(k <= 0 for k in kernel):
        raise ctx.error("convolution_param needs kernel_size (or kernel_h and kernel_w)")
    return ConvGeometry(kernel, _hw_or(ctx, p, "stride", spatial, 1), _hw_or(ctx, p, "pad", spatial, 0),
                        _per_axis(ctx, p, "dilation", spatial, 1))


def _conv_setup(ctx: LayerContext, shapes):
    p = ctx.param("convolution_param")
    shape = shapes[0]
    if p["axis"] % len(shape) != 1:
        raise ctx.error("only channel axis 1 is supported (convolution_param.axis)")
    spatial = len(shape) - 2
    if spatial not in (1, 2, 3):
        raise ctx.error(f"convolution over {spatial} spatial axes is not supported (1 to 3 are)")
    channels, groups, outputs = shape[1], p["group"], p["num_output"]
    if channels % groups or outputs % groups:
        raise ctx.error(f"group {groups} must divide the {channels} input channels and "
                        f"num_output {outputs}")
    return p, spatial, channels, groups, outputs


def _convolution(ctx: LayerContext, transposed: bool) -> Op:
    p = ctx.param("convolution_param")
    if not p.has("num_output"):
        raise ctx.error("convolution_param.num_output is required")
    bias = p["bias_term"]
    geometry: dict[int, ConvGeometry] = {}

    def specs(shapes):
        p, spatial, channels, groups, outputs = _conv_setup(ctx, shapes)
        geo = geometry.setdefault(spatial, conv_geometry(ctx, p, spatial))
        # Caffe's layouts: conv (out, in/group, k...), deconv (in, out/group, k...).
        weight = ((channels, outputs // groups) if transposed else (outputs, channels // groups))
        blobs = [BlobSpec(weight + geo.kernel, p["weight_filler"])]
        return blobs + ([BlobSpec((outputs,), p["bias_filler"], "bias")] if bias else [])

    group = p["group"]

    def forward(bottoms, blobs):
        x = bottoms[0]
        spatial = x.dim() - 2
        geo = geometry.get(spatial) or geometry.setdefault(spatial, conv_geometry(ctx, p, spatial))
        b = blobs[1] if len(blobs) > 1 else None  # folding may add a bias to a bias-free layer
        if transposed:
            run = getattr(F, f"conv_transpose{spatial}d")
            return [run(x, blobs[0], b, geo.stride, geo.pad, 0, group, geo.dilation)]
        run = getattr(F, f"conv{spatial}d")
        return [run(x, blobs[0], b, geo.stride, geo.pad, geo.dilation, group)]

    def fused(bottoms, blobs, residual, relu, cache):
        x, b = bottoms[0], (blobs[1] if len(blobs) > 1 else None)
        if not transposed and _onednn_fusable(x, blobs[0]):
            geo = geometry.get(2) or geometry.setdefault(2, conv_geometry(ctx, p, 2))
            shape = (x.shape[0], blobs[0].shape[0]) + tuple(_conv_out(x.shape[2 + i], geo, i) for i in range(2))
            _check_residual(ctx, residual, shape)
            # Weights reordered for another input shape would be reordered again on every call.
            if cache.get("input_shape") != x.shape:
                cache.update(input_shape=x.shape, weight=_onednn_weight(blobs[0], geo, group, x.shape))
            return [_onednn_conv(x, cache["weight"], b, geo, group, residual, relu)]
        top = forward(bottoms, blobs)[0]
        if residual is not None:
            _check_residual(ctx, residual, tuple(top.shape))
            top.add_(residual)
        return [top.relu_() if relu else top]

    return Op(forward=forward, blob_specs=specs, forward_fused=fused)


def _check_residual(ctx: LayerContext, residual, shape) -> None:
    if residual is not None and tuple(residual.shape) != shape:
        raise ctx.error(f"the Eltwise after it adds a bottom of shape {tuple(residual.shape)} "
                        f"to its top of shape {shape}")


def _onednn_fusable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.dim() == 4 and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and ONEDNN_POINTWISE is not None)


def _mkldnn_op(name: str):
    """torch.ops.mkldnn's `name`, when this build has it."""
    try:
        return getattr(torch.ops.mkldnn, name)
    except (AttributeError, RuntimeError):
        return None


# oneDNN's convolution with post-ops (what torch.compile's CPU fusions call).
ONEDNN_POINTWISE = _mkldnn_op("_convolution_pointwise") if torch.backends.mkldnn.is_available() else None
_ONEDNN_REORDER = _mkldnn_op("_reorder_convolution_weight")


def _onednn_weight(weight: torch.Tensor, geo: ConvGeometry, group: int, input_shape) -> torch.Tensor:
    """The weights in the blocked layout oneDNN picks for this input shape."""
    if _ONEDNN_REORDER is None:
        return weight
    return _ONEDNN_REORDER(weight, list(geo.pad), list(geo.stride), list(geo.dilation), group, list(input_shape))


def _onednn_conv(x, weight, bias, geo: ConvGeometry, group: int, residual, relu: bool) -> torch.Tensor:
    """conv(x) (+ residual) (then ReLU) in one pass over the output: no separate add or ReLU pass."""
    args = (list(geo.pad), list(geo.stride), list(geo.dilation), group)
    if residual is None:
        return ONEDNN_POINTWISE(x, weight, bias, *args, "relu" if relu else "none", [], "")
    return ONEDNN_POINTWISE.binary(x, residual, weight, bias, *args, "add", None,
                                   "relu" if relu else None, [], "")


# yonghenglh6's DepthwiseConvolution is BaseConvolutionLayer on the CPU: Caffe's Convolution.
register("Convolution", "DepthwiseConvolution")(partial(_convolution, transposed=False))
register("Deconvolution")(partial(_convolution, transposed=True))


@register("Im2col")
def im2col(ctx: LayerContext) -> Op:
    p = ctx.param("convolution_param")
    geo = conv_geometry(ctx, p, 2)

    def forward(bottoms, blobs):
        x = bottoms[0]
        if x.dim() != 4:
            raise ctx.error("Im2col supports 4-axis bottoms only")
        columns = F.unfold(x, geo.kernel, geo.dilation, geo.pad, geo.stride)
        height, width = (_conv_out(x.shape[2 + i], geo, i) for i in range(2))
        return [columns.reshape(x.shape[0], -1, height, width)]

    return Op(forward=forward)


def _conv_out(size: int, geo: ConvGeometry, axis: int) -> int:
    extent = geo.dilation[axis] * (geo.kernel[axis] - 1) + 1
    return (size + 2 * geo.pad[axis] - extent) // geo.stride[axis] + 1


# -------------------------------------------------------------------- pooling

@dataclass(frozen=True)
class PoolGeometry:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    ceil: bool


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's pooled extent: ceil (or floor) division, then drop a last window
    that would start in the padding past the input."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool(x: torch.Tensor, method: str, geo: PoolGeometry) -> torch.Tensor:
    """Caffe's MAX or AVE pooling of a 4-axis tensor."""
    if _fits_torch(geo):
        # PyTorch's ceil_mode rule and AVE divisor (window clipped to input+pad) equal Caffe's.
        if method == "MAX":
            return F.max_pool2d(x, geo.kernel, geo.stride, geo.pad, ceil_mode=geo.ceil)
        return F.avg_pool2d(x, geo.kernel, geo.stride, geo.pad, ceil_mode=geo.ceil,
                            count_include_pad=True)
    return _pool_padded(x, method, geo)


def _padded_for_pooling(x: torch.Tensor, geo: PoolGeometry, fill: float) -> tuple[torch.Tensor, list[int]]:
    """`x` padded by hand (Caffe allows pad < kernel; PyTorch only pad <= kernel / 2), and the pooled size."""
    sizes = [pooled_size(x.shape[2 + i], geo.kernel[i], geo.stride[i], geo.pad[i], geo.ceil)
             for i in range(2)]
    after = [max(0, (sizes[i] - 1) * geo.stride[i] + geo.kernel[i] - x.shape[2 + i] - geo.pad[i])
             for i in range(2)]
    return F.pad(x, (geo.pad[1], after[1], geo.pad[0], after[0]), value=fill), sizes


def _fits_torch(geo: PoolGeometry) -> bool:
    return all(p <= k // 2 for p, k in zip(geo.pad, geo.kernel))


def _pool_padded(x: torch.Tensor, method: str, geo: PoolGeometry) -> torch.Tensor:
    """Pooling when the pad exceeds half the kernel."""
    padded, sizes = _padded_for_pooling(x, geo, NEG_INF if method == "MAX" else 0.0)
    if method == "MAX":
        return F.max_pool2d(padded, geo.kernel, geo.stride)[:, :, :sizes[0], :sizes[1]]
    sums = F.avg_pool2d(padded, geo.kernel, geo.stride, divisor_override=1)[:, :, :sizes[0], :sizes[1]]
    return sums / _ave_divisor(x.shape[2:], sizes, geo).to(device=x.device, dtype=x.dtype)


def max_pool_with_mask(x: torch.Tensor, geo: PoolGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """MAX pooling and Caffe's mask top: each maximum's flat index h * width + w in its input plane,
    as the blob's float type; the first maximum in the window, row by row, where several tie."""
    if _fits_torch(geo):
        values, places = F.max_pool2d(x, geo.kernel, geo.stride, geo.pad, ceil_mode=geo.ceil, return_indices=True)
        return values, places.to(x.dtype)
    padded, sizes = _padded_for_pooling(x, geo, NEG_INF)
    values, places = F.max_pool2d(padded, geo.kernel, geo.stride, return_indices=True)
    values, places = values[:, :, :sizes[0], :sizes[1]], places[:, :, :sizes[0], :sizes[1]]
    row, column = places // padded.shape[3] - geo.pad[0], places % padded.shape[3] - geo.pad[1]
    return values, (row * x.shape[3] + column).to(x.dtype)


def _ave_divisor(input_size, sizes, geo: PoolGeometry) -> torch.Tensor:
    """Caffe divides each window's sum by its extent clipped to the padded input."""
    extents = []
    for axis in range(2):
        start = torch.arange(sizes[axis]) * geo.stride[axis] - geo.pad[axis]
        end = torch.clamp(start + geo.kernel[axis], max=input_size[axis] + geo.pad[axis])
        extents.append((end - start).to(torch.float32))
    return extents[0][:, None] * extents[1][None, :]


def pool_geometry(ctx: LayerContext, p: Params, height: int, width: int) -> PoolGeometry:
    if p["global_pooling"]:
        if p.has("kernel_size") or p.has("kernel_h"):
            raise ctx.error("with global_pooling the kernel size cannot be given")
        if p["pad"] or p["pad_h"] or p["pad_w"] or p["stride"] != 1 or p.has("stride_h"):
            raise ctx.error("with global_pooling only pad 0 and stride 1 are allowed")
        return PoolGeometry((height, width), (1, 1), (0, 0), True)
    if p.has("kernel_size") == (p.has("kernel_h") or p.has("kernel_w")):
        raise ctx.error("pooling needs kernel_size or kernel_h and kernel_w (exactly one form)")
    kernel = (p["kernel_size"],) * 2 if p.has("kernel_size") else (p["kernel_h"], p["kernel_w"])
    pad = (p["pad_h"], p["pad_w"]) if p.has("pad_h") or p.has("pad_w") else (p["pad"],) * 2
    stride = ((p["stride_h"], p["stride_w"]) if p.has("stride_h") or p.has("stride_w")
              else (p["stride"],) * 2)
    if any(k <= 0 for k in kernel) or any(s <= 0 for s in stride):
        raise ctx.error("pooling kernel and stride must be positive")
    if any(pd >= k for pd, k in zip(pad, kernel)):
        raise ctx.error(f"pooling pad {pad} must be smaller than the kernel {kernel}")
    return PoolGeometry(kernel, stride, pad, pooling_rounds_up(ctx.layer.fields.get("pooling_param") or {}))


@register("Pooling")
def pooling(ctx: LayerContext) -> Op:
    p = ctx.param("pooling_param")
    method = p["pool"]
    if method == "STOCHASTIC":
        raise ctx.error("STOCHASTIC pooling is not supported (Caffe runs it on the GPU only)")
    if len(ctx.layer.tops) > (2 if method == "MAX" else 1):
        raise ctx.error(f"{method} pooling makes at most {2 if method == 'MAX' else 1} top(s) "
                        "(a second, the argmax mask, for MAX only)")
    with_mask = len(ctx.layer.tops) == 2
    geometries: dict[tuple[int, int], PoolGeometry] = {}

    def forward(bottoms, blobs):
        x = bottoms[0]
        if x.dim() != 4:
            raise ctx.error(f"Pooling needs a 4-axis bottom, got shape {tuple(x.shape)}")
        size = (x.shape[2], x.shape[3])
        geo = geometries.get(size) or geometries.setdefault(size, pool_geometry(ctx, p, *size))
        return list(max_pool_with_mask(x, geo)) if with_mask else [pool(x, method, geo)]

    return Op(forward=forward)


@register("SPP")
def spp(ctx: LayerContext) -> Op:
    p = ctx.param("spp_param")
    method, height_levels = p["pool"], p["pyramid_height"]
    if method == "STOCHASTIC":
        raise ctx.error("STOCHASTIC pooling is not supported (Caffe runs it on the GPU only)")
    if height_levels < 1:
        raise ctx.error("spp_param.pyramid_height must be at least 1")

    def forward(bottoms, blobs):
        x = bottoms[0]
        if height_levels == 1:  # Caffe then runs one global pooling and keeps its 4-axis shape
            return [pool(x, method, _spp_geometry(ctx, x.shape[2], x.shape[3], 1))]
        levels = [pool(x, method, _spp_geometry(ctx, x.shape[2], x.shape[3], 2 ** level)).flatten(1)
                  for level in range(height_levels)]
        return [torch.cat(levels, dim=1)]

    return Op(forward=forward)


def _spp_geometry(ctx: LayerContext, height: int, width: int, bins: int) -> PoolGeometry:
    """Caffe's SPP level: kernel = ceil(size / bins), padding the remainder on both sides."""
    kernel = (math.ceil(height / bins), math.ceil(width / bins))
    pad = tuple((k * bins - size + 1) // 2 for k, size in zip(kernel, (height, width)))
    if any(p >= k for p, k in zip(pad, kernel)):
        # Caffe's pooling layer refuses pad >= kernel, so such a pyramid cannot run there either.
        raise ctx.error(f"a {height}x{width} bottom is too small for {bins}x{bins} SPP bins "
                        f"(pad {pad} would reach the kernel {kernel})")
    return PoolGeometry(kernel, kernel, pad, True)


# ------------------------------------------------------------------------ LRN

def _lrn_across(x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """x * (k + alpha / size * sum of x^2 over `size` channels centred on c) ^ -beta."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _CrossChannelLRN.apply(x, size, alpha, beta, k)
    return x * _negative_power(_lrn_scale(x, size, alpha, k), beta)


def _lrn_scale(x: torch.Tensor, size: int, alpha: float, k: float) -> torch.Tensor:
    return _channel_window_sum(x * x, size).mul_(alpha / size).add_(k)


def _channel_window_sum(values: torch.Tensor, size: int) -> torch.Tensor:
    """The sum over `size` channels centred on each, zero padded at both ends (Caffe's formula),
    as shifted slices: a few cheap passes in any memory layout, where a pooling kernel is slow."""
    total = values.clone()
    for shift in range(1, min(size // 2, values.shape[1] - 1) + 1):
        total[:, shift:] += values[:, :-shift]
        total[:, :-shift] += values[:, shift:]
    return total


class _CrossChannelLRN(torch.autograd.Function):
    """The LRN with Caffe's closed-form gradient (LRNLayer::CrossChannelBackward):
    dx = dy * scale^-beta - 2 alpha beta / size * x * window sum of (dy * y / scale).
    Autograd through the slices would copy every slice back in its backward."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        scale = _lrn_scale(x, size, alpha, k)
        y = x * _negative_power(scale.clone(), beta)
        ctx.save_for_backward(x, scale, y)
        ctx.constants = (size, alpha, beta)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, scale, y = ctx.saved_tensors
        size, alpha, beta = ctx.constants
        ratios = _channel_window_sum((dy * y).div_(scale), size)
        dx = dy * _negative_power(scale.clone(), beta)
        return dx.addcmul_(x, ratios, value=-2 * alpha * beta / size), None, None, None, None


def _negative_power(base: torch.Tensor, beta: float) -> torch.Tensor:
    """base ^ -beta, overwriting `base`; Caffe's default beta 0.75 as rsqrt(b) * sqrt(rsqrt(b)),
    much cheaper than a general power."""
    if beta != 0.75:
        return base.pow_(-beta)
    root = base.rsqrt_()
    return root.mul_(root.sqrt())


@register("LRN")
def lrn(ctx: LayerContext) -> Op:
    p = ctx.param("lrn_param")
    size, alpha, beta, k = p["local_size"], p["alpha"], p["beta"], p["k"]
    if size % 2 == 0:
        raise ctx.error(f"LRN supports odd local_size only, got {size}")
    if p["norm_region"] == "ACROSS_CHANNELS":
        return Op(forward=lambda bottoms, blobs: [_lrn_across(bottoms[0], size, alpha, beta, k)])
    pad = (size - 1) // 2

    def within_channel(bottoms, blobs):
        # Caffe composes square -> AVE pool (size x size, pad (size-1)/2) -> power with
        # shift 1 (k is unused here) -> product; every window divides by size * size.
        x = bottoms[0]
        mean_square = F.avg_pool2d(x * x, size, 1, pad, count_include_pad=True)
        return [x * torch.pow(1.0 + alpha * mean_square, -beta)]

    return Op(forward=within_channel)
