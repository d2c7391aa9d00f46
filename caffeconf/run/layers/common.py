"""Inner products, normalization, arithmetic and blob-shuffling layers."""

from __future__ import annotations

import math
from functools import reduce

import torch
import torch.nn.functional as F

from .registry import BlobSpec, LayerContext, Op, filler, filler_or, register


# ------------------------------------------------------------ learned layers

@register("InnerProduct")
def inner_product(ctx: LayerContext) -> Op:
    p = ctx.param("inner_product_param")
    if not p.has("num_output"):
        raise ctx.error("inner_product_param.num_output is required")
    outputs, bias, transpose, axis_param = p["num_output"], p["bias_term"], p["transpose"], p["axis"]

    def specs(shapes):
        axis = ctx.axis(axis_param, len(shapes[0]))
        inputs = math.prod(shapes[0][axis:])
        weight = (inputs, outputs) if transpose else (outputs, inputs)
        blobs = [BlobSpec(weight, p["weight_filler"])]
        return blobs + ([BlobSpec((outputs,), p["bias_filler"], "bias")] if bias else [])

    def forward(bottoms, blobs):
        x = bottoms[0]
        axis = ctx.axis(axis_param, x.dim())
        weight = blobs[0].t() if transpose else blobs[0]
        return [F.linear(x.flatten(axis) if axis < x.dim() - 1 else x, weight, blobs[1] if bias else None)]

    return Op(forward=forward, blob_specs=specs)


@register("Embed")
def embed(ctx: LayerContext) -> Op:
    p = ctx.param("embed_param")
    outputs, vocabulary, bias = p["num_output"], p["input_dim"], p["bias_term"]

    def specs(shapes):
        blobs = [BlobSpec((vocabulary, outputs), p["weight_filler"])]
        return blobs + ([BlobSpec((outputs,), p["bias_filler"], "bias")] if bias else [])

    def forward(bottoms, blobs):
        index = bottoms[0].long()
        if index.numel() and (index.min() < 0 or index.max() >= vocabulary):
            raise ctx.error(f"Embed indices must lie in [0, {vocabulary})")
        y = blobs[0][index]
        return [y + blobs[1] if bias else y]

    return Op(forward=forward, blob_specs=specs)


@register("Parameter")
def parameter(ctx: LayerContext) -> Op:
    shape = tuple(ctx.param("parameter_param")["shape"]["dim"])
    # Caffe's ParameterLayer allocates its blob without a filler: zeros.
    return Op(forward=lambda bottoms, blobs: [blobs[0]],
              blob_specs=lambda shapes: [BlobSpec(shape, filler("constant"))])


# ------------------------------------------------------------- normalization

@register("BatchNorm")
def batch_norm(ctx: LayerContext) -> Op:
    p = ctx.param("batch_norm_param")
    eps, fraction = p["eps"], p["moving_average_fraction"]
    use_global = p["use_global_stats"] if p.has("use_global_stats") else ctx.phase == "TEST"

    def specs(shapes):
        channels = shapes[0][1] if len(shapes[0]) > 1 else 1
        zero = filler("constant")
        return [BlobSpec((channels,), zero, "mean"), BlobSpec((channels,), zero, "variance"),
                BlobSpec((1,), zero, "normalizer")]

    def stored_statistics(blobs):
        # Blob 2 is the moving-average normalizer; Caffe treats 0 as "no statistics yet".
        scale = blobs[2].reshape(-1)[0]
        factor = torch.where(scale == 0, torch.zeros_like(scale), 1.0 / scale)
        return blobs[0] * factor, blobs[1] * factor

    def global_forward(bottoms, blobs):
        # The stored statistics are not learned (Caffe sends no gradient to them).
        mean, var = (s.detach() for s in stored_statistics(blobs))
        return [F.batch_norm(bottoms[0], mean, var, None, None, False, 0.0, eps)]

    def global_in_place(bottoms, blobs):
        x = bottoms[0]
        mean, var = stored_statistics(blobs)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return [x.sub_(mean.reshape(shape)).mul_(torch.rsqrt(var + eps).reshape(shape))]

    def batch_forward(bottoms, blobs):
        x = bottoms[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        _update_moving_averages(blobs, mean, var, x.numel() // x.shape[1], fraction)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return [(x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)]

    if use_global:
        return Op(forward=global_forward, blob_specs=specs, forward_in_place=global_in_place)
    return Op(forward=batch_forward, blob_specs=specs)


def _update_moving_averages(blobs, mean, var, samples: int, fraction: float) -> None:
    """Caffe accumulates sums (not averages): s = s*f + 1, mean += batch mean, var += m/(m-1) var."""
    with torch.no_grad():
        correction = samples / (samples - 1) if samples > 1 else 1.0
        blobs[2].mul_(fraction).add_(1.0)
        blobs[0].mul_(fraction).add_(mean.detach())
        blobs[1].mul_(fraction).add_(var.detach() * correction)


@register("MVN")
def mvn(ctx: LayerContext) -> Op:
    p = ctx.param("mvn_param")
    normalize_variance, across, eps = p["normalize_variance"], p["across_channels"], p["eps"]

    def forward(bottoms, blobs):
        x = bottoms[0]
        dims = tuple(range(1 if across else 2, x.dim()))
        centred = x - x.mean(dim=dims, keepdim=True)
        if not normalize_variance:
            return [centred]
        std = (centred * centred).mean(dim=dims, keepdim=True).sqrt()
        return [centred / (std + eps)]  # Caffe adds eps to the std, not the variance

    return Op(forward=forward)


@register("Softmax")
def softmax(ctx: LayerContext) -> Op:
    axis = ctx.param("softmax_param")["axis"]
    return Op(forward=lambda bottoms, blobs: [F.softmax(bottoms[0], dim=ctx.axis(axis, bottoms[0].dim()))])


# ------------------------------------------------------------ scale and bias

def _broadcast(x: torch.Tensor, factor: torch.Tensor, axis: int) -> torch.Tensor:
    """`factor` (shape of x[axis:axis+k]) viewed so it broadcasts against x."""
    return factor.reshape((1,) * axis + tuple(factor.shape) + (1,) * (x.dim() - axis - factor.dim()))


def _factor_axes(ctx: LayerContext, p, shape) -> tuple[int, tuple[int, ...]]:
    axis = ctx.axis(p["axis"], len(shape)) if shape else 0
    num_axes = p["num_axes"]
    if num_axes < -1:
        raise ctx.error(f"num_axes must be -1 or non-negative, got {num_axes}")
    end = len(shape) if num_axes == -1 else axis + num_axes
    if end > len(shape):
        raise ctx.error(f"axis {axis} + num_axes {num_axes} exceeds the bottom's {len(shape)} axes")
    return axis, tuple(shape[axis:end])


def _factor_axis(ctx: LayerContext, p, x: torch.Tensor, factor: torch.Tensor, is_bottom: bool) -> int:
    """The axis of x where `factor` (a bottom or a blob) starts; Caffe ignores `axis` for a scalar factor."""
    if factor.dim() == 0:
        return 0
    axis = ctx.axis(p["axis"], x.dim())
    if is_bottom and tuple(x.shape[axis:axis + factor.dim()]) != tuple(factor.shape):
        raise ctx.error(f"bottom[1] shape {tuple(factor.shape)} does not match bottom[0] shape "
                        f"{tuple(x.shape)} from axis {axis}")
    return axis


@register("Scale")
def scale(ctx: LayerContext) -> Op:
    p = ctx.param("scale_param")
    two_bottoms, bias = len(ctx.layer.bottoms) > 1, p["bias_term"]

    def specs(shapes):
        factor_shape = tuple(shapes[1]) if two_bottoms else _factor_axes(ctx, p, shapes[0])[1]
        blobs = [] if two_bottoms else [
            BlobSpec(factor_shape, filler_or(p, "filler", filler("constant", value=1.0)), "gain")]
        return blobs + ([BlobSpec(factor_shape, p["bias_filler"], "bias")] if bias else [])

    def operands(bottoms, blobs):
        x = bottoms[0]
        factor = bottoms[1] if two_bottoms else blobs[0]
        axis = _factor_axis(ctx, p, x, factor, two_bottoms)
        shift = blobs[-1] if bias else None
        return x, _broadcast(x, factor, axis), (_broadcast(x, shift, axis) if bias else None)

    def forward(bottoms, blobs):
        x, factor, shift = operands(bottoms, blobs)
        return [torch.addcmul(shift, x, factor) if bias else x * factor]

    def in_place(bottoms, blobs):
        x, factor, shift = operands(bottoms, blobs)
        return [x.mul_(factor).add_(shift) if bias else x.mul_(factor)]

    return Op(forward=forward, blob_specs=specs, forward_in_place=in_place)


@register("Bias")
def bias(ctx: LayerContext) -> Op:
    p = ctx.param("bias_param")
    two_bottoms = len(ctx.layer.bottoms) > 1

    def specs(shapes):
        return [] if two_bottoms else [BlobSpec(_factor_axes(ctx, p, shapes[0])[1], p["filler"], "bias")]

    def operands(bottoms, blobs):
        x = bottoms[0]
        shift = bottoms[1] if two_bottoms else blobs[0]
        axis = _factor_axis(ctx, p, x, shift, two_bottoms)
        return x, _broadcast(x, shift, axis)

    def forward(bottoms, blobs):
        x, shift = operands(bottoms, blobs)
        return [x + shift]

    def in_place(bottoms, blobs):
        x, shift = operands(bottoms, blobs)
        return [x.add_(shift)]

    return Op(forward=forward, blob_specs=specs, forward_in_place=in_place)


# ------------------------------------------------------------ arithmetic

@register("Eltwise")
def eltwise(ctx: LayerContext) -> Op:
    p = ctx.param("eltwise_param")
    operation, coeff = p["operation"], list(p["coeff"])
    count = len(ctx.layer.bottoms)
    if count < 2:
        raise ctx.error("Eltwise needs at least 2 bottoms")
    if coeff and (operation != "SUM" or len(coeff) != count):
        raise ctx.error(f"eltwise_param.coeff needs operation SUM and one value per bottom "
                        f"({count}), got {len(coeff)}")
    combine = {"PROD": torch.mul, "MAX": torch.maximum}.get(operation, torch.add)

    def forward(bottoms, blobs):
        shapes = {tuple(x.shape) for x in bottoms}
        if len(shapes) > 1:
            raise ctx.error(f"bottoms must have equal shapes, got {sorted(shapes)}")
        if not coeff:  # coeff comes only with SUM (checked above)
            return [reduce(combine, bottoms)]
        total = bottoms[0] * coeff[0]
        for factor, x in zip(coeff[1:], bottoms[1:]):
            total = total.add(x, alpha=factor)
        return [total]

    return Op(forward=forward)


@register("Reduction")
def reduction(ctx: LayerContext) -> Op:
    p = ctx.param("reduction_param")
    operation, coeff, axis_param = p["operation"], p["coeff"], p["axis"]
    reduce_last = {
        "SUM": lambda x: x.sum(dim=-1),
        "ASUM": lambda x: x.abs().sum(dim=-1),
        "SUMSQ": lambda x: (x * x).sum(dim=-1),
        "MEAN": lambda x: x.mean(dim=-1),
    }[operation]

    def forward(bottoms, blobs):
        x = bottoms[0]
        axis = ctx.axis(axis_param, x.dim()) if x.dim() else 0
        # Caffe reduces every axis from `axis` to the end.
        return [reduce_last(x.reshape(tuple(x.shape[:axis]) + (-1,))) * coeff]

    return Op(forward=forward)


# ------------------------------------------------------------ blob shuffling

@register("Split")
def split(ctx: LayerContext) -> Op:
    return Op(forward=lambda bottoms, blobs: [bottoms[0]] * len(ctx.layer.tops))


@register("Silence")
def silence(ctx: LayerContext) -> Op:
    return Op(forward=lambda bottoms, blobs: [])


def _axis_or_legacy(ctx: LayerContext, p, message: str, legacy: str) -> int:
    """`axis`, or the legacy field that Caffe still honours in its place (never both)."""
    if p.has("axis") and p.has(legacy):
        raise ctx.error(f"give either {message}.axis or the legacy {legacy}, not both")
    return p[legacy] if p.has(legacy) else p["axis"]


@register("Concat")
def concat(ctx: LayerContext) -> Op:
    p = ctx.param("concat_param")
    axis = _axis_or_legacy(ctx, p, "concat_param", "concat_dim")

    def forward(bottoms, blobs):
        if len(bottoms) == 1:
            return [bottoms[0]]
        return [torch.cat(bottoms, dim=ctx.axis(axis, bottoms[0].dim()))]

    return Op(forward=forward)


@register("Slice")
def slice_(ctx: LayerContext) -> Op:
    p = ctx.param("slice_param")
    axis_param = _axis_or_legacy(ctx, p, "slice_param", "slice_dim")
    points, tops = list(p["slice_point"]), len(ctx.layer.tops)
    if points and len(points) != tops - 1:
        raise ctx.error(f"{len(points)} slice_point values for {tops} tops; give {tops - 1}")

    def forward(bottoms, blobs):
        x = bottoms[0]
        axis = ctx.axis(axis_param, x.dim())
        size = x.shape[axis]
        if points:
            bounds = [0] + points + [size]
            if any(a >= b for a, b in zip(bounds, bounds[1:])):
                raise ctx.error(f"slice points {points} must increase within the axis size {size}")
            return list(torch.split(x, [b - a for a, b in zip(bounds, bounds[1:])], dim=axis))
        if size % tops:
            raise ctx.error(f"axis {axis} of size {size} does not split evenly into {tops} tops")
        return list(torch.split(x, size // tops, dim=axis))

    return Op(forward=forward)


@register("Flatten")
def flatten(ctx: LayerContext) -> Op:
    p = ctx.param("flatten_param")
    start, end = p["axis"], p["end_axis"]

    def forward(bottoms, blobs):
        x = bottoms[0]
        return [x.flatten(ctx.axis(start, x.dim()), ctx.axis(end, x.dim()))]

    return Op(forward=forward)


def reshaped(ctx: LayerContext, shape, spec, axis_param: int, num_axes: int) -> tuple[int, ...]:
    """Caffe's Reshape: `spec` replaces axes [axis, axis+num_axes); 0 copies, -1 infers."""
    ndim = len(shape)
    if not -ndim - 1 <= axis_param <= ndim:
        raise ctx.error(f"reshape_param.axis {axis_param} is out of range for {ndim} axes")
    start = axis_param if axis_param >= 0 else ndim + axis_param + 1
    end = ndim if num_axes == -1 else start + num_axes
    if end > ndim:
        raise ctx.error(f"reshape_param axis {start} + num_axes {num_axes} exceeds {ndim} axes")
    if list(spec).count(-1) > 1:
        raise ctx.error("reshape_param.shape may infer (-1) at most one dimension")
    middle = [shape[start + i] if dim == 0 else dim for i, dim in enumerate(spec)]
    new = list(shape[:start]) + middle + list(shape[end:])
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        if known == 0 or math.prod(shape) % known:
            raise ctx.error(f"cannot infer the -1 in {list(spec)} for a bottom of shape {tuple(shape)}")
        new[new.index(-1)] = math.prod(shape) // known
    if math.prod(new) != math.prod(shape):
        raise ctx.error(f"reshape to {tuple(new)} changes the count of a bottom of shape {tuple(shape)}")
    return tuple(new)


@register("Reshape")
def reshape(ctx: LayerContext) -> Op:
    p = ctx.param("reshape_param")
    spec, axis, num_axes = list(p["shape"]["dim"]), p["axis"], p["num_axes"]
    return Op(forward=lambda bottoms, blobs: [
        bottoms[0].reshape(reshaped(ctx, tuple(bottoms[0].shape), spec, axis, num_axes))])


@register("Crop")
def crop(ctx: LayerContext) -> Op:
    p = ctx.param("crop_param")
    offsets, axis_param = list(p["offset"]), p["axis"]

    def forward(bottoms, blobs):
        x, reference = bottoms
        axis = ctx.axis(axis_param, x.dim())
        cropped = x.dim() - axis
        if len(offsets) > 1 and len(offsets) != cropped:
            raise ctx.error(f"crop_param.offset has {len(offsets)} values; give 0, 1 or {cropped}")
        index = [slice(None)] * x.dim()
        for i in range(axis, x.dim()):
            start = offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0
            size = reference.shape[i]
            if start + size > x.shape[i]:
                raise ctx.error(f"crop of axis {i} at offset {start} with size {size} overruns "
                                f"the bottom's size {x.shape[i]}")
            index[i] = slice(start, start + size)
        return [x[tuple(index)]]

    return Op(forward=forward)


@register("Tile")
def tile(ctx: LayerContext) -> Op:
    p = ctx.param("tile_param")
    axis_param, tiles = p["axis"], p["tiles"]
    if tiles < 1:
        raise ctx.error("tile_param.tiles must be positive")

    def forward(bottoms, blobs):
        x = bottoms[0]
        repeats = [1] * x.dim()
        repeats[ctx.axis(axis_param, x.dim())] = tiles
        return [x.repeat(repeats)]

    return Op(forward=forward)


@register("ArgMax")
def argmax(ctx: LayerContext) -> Op:
    p = ctx.param("argmax_param")
    with_values, top_k, has_axis, axis_param = p["out_max_val"], p["top_k"], p.has("axis"), p["axis"]

    def forward(bottoms, blobs):
        x = bottoms[0]
        if has_axis:
            axis = ctx.axis(axis_param, x.dim())
            values, indices = torch.topk(x, top_k, dim=axis)
            return [values if with_values else indices.to(x.dtype)]
        values, indices = torch.topk(x.flatten(1), top_k, dim=1)
        parts = [indices.to(x.dtype)] + ([values] if with_values else [])
        return [torch.stack(parts, dim=1)]  # (N, 1 or 2, top_k), as Caffe lays it out

    return Op(forward=forward)


@register("Filter")
def filter_(ctx: LayerContext) -> Op:
    if len(ctx.layer.bottoms) != len(ctx.layer.tops) + 1:
        raise ctx.error("Filter needs one top per bottom, plus the selector as the last bottom")

    def forward(bottoms, blobs):
        *data, selector = bottoms
        keep = torch.nonzero(selector.reshape(selector.shape[0], -1)[:, 0] != 0).reshape(-1)
        return [x.index_select(0, keep) for x in data]

    return Op(forward=forward)


@register("BatchReindex")
def batch_reindex(ctx: LayerContext) -> Op:
    def forward(bottoms, blobs):
        x, order = bottoms
        index = order.reshape(-1).long()
        if index.numel() and (index.min() < 0 or index.max() >= x.shape[0]):
            raise ctx.error(f"BatchReindex indices must lie in [0, {x.shape[0]})")
        return [x.index_select(0, index)]

    return Op(forward=forward)
