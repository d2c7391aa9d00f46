"""Element-wise layers (Caffe's "neuron" layers): one bottom, one top of the same shape."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import BlobSpec, LayerContext, Op, filler, filler_or, register


def _unary(function, in_place=None) -> Op:
    return Op(forward=lambda bottoms, blobs: [function(bottoms[0])],
              forward_in_place=(lambda bottoms, blobs: [in_place(bottoms[0])]) if in_place else None)


@register("ReLU")
def relu(ctx: LayerContext) -> Op:
    slope = ctx.param("relu_param")["negative_slope"]
    if slope == 0:
        return _unary(F.relu, F.relu_)
    return _unary(lambda x: F.leaky_relu(x, slope), lambda x: F.leaky_relu_(x, slope))


# The layers without parameters: type -> (function, its in-place form).
for _type, (_function, _in_place) in {"Sigmoid": (torch.sigmoid, torch.sigmoid_), "TanH": (torch.tanh, torch.tanh_),
                                      "AbsVal": (torch.abs, torch.abs_)}.items():
    register(_type)(lambda ctx, function=_function, in_place=_in_place: _unary(function, in_place))


@register("BNLL")
def bnll(ctx: LayerContext) -> Op:
    # Caffe's stable form: x + log(1 + exp(-x)) for x > 0, log(1 + exp(x)) otherwise.
    return _unary(lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())))


@register("ELU")
def elu(ctx: LayerContext) -> Op:
    alpha = ctx.param("elu_param")["alpha"]
    return _unary(lambda x: F.elu(x, alpha), lambda x: F.elu_(x, alpha))


@register("Swish")
def swish(ctx: LayerContext) -> Op:
    beta = ctx.param("swish_param")["beta"]
    return _unary(lambda x: x * torch.sigmoid(beta * x))


@register("Power")
def power(ctx: LayerContext) -> Op:
    p = ctx.param("power_param")
    exponent, scale, shift = p["power"], p["scale"], p["shift"]
    return _unary(lambda x: torch.pow(shift + scale * x, exponent))


def _log_of_base(ctx: LayerContext, p, message: str) -> float:
    """ln(base), where Caffe's base -1 means e."""
    base = p["base"]
    if base != -1 and base <= 0:
        raise ctx.error(f"{message}.base must be -1 (for e) or positive, got {base}")
    return 1.0 if base == -1 else math.log(base)


@register("Exp")
def exp(ctx: LayerContext) -> Op:
    p = ctx.param("exp_param")
    log_base, scale, shift = _log_of_base(ctx, p, "exp_param"), p["scale"], p["shift"]
    return _unary(lambda x: torch.exp(log_base * (shift + scale * x)))


@register("Log")
def log(ctx: LayerContext) -> Op:
    p = ctx.param("log_param")
    inverse_log_base, scale, shift = 1.0 / _log_of_base(ctx, p, "log_param"), p["scale"], p["shift"]
    return _unary(lambda x: torch.log(shift + scale * x) * inverse_log_base)  # Caffe multiplies


@register("Threshold")
def threshold(ctx: LayerContext) -> Op:
    level = ctx.param("threshold_param")["threshold"]
    return _unary(lambda x: (x > level).to(x.dtype))


@register("Clip")
def clip(ctx: LayerContext) -> Op:
    p = ctx.param("clip_param")
    if not (p.has("min") and p.has("max")):
        raise ctx.error("clip_param needs both min and max (they are required in caffe.proto)")
    low, high = p["min"], p["max"]
    return _unary(lambda x: x.clamp(low, high), lambda x: x.clamp_(low, high))


@register("Dropout")
def dropout(ctx: LayerContext) -> Op:
    keep = 1.0 - ctx.param("dropout_param")["dropout_ratio"]
    if ctx.phase == "TEST":
        return _unary(lambda x: x)
    # At train time Caffe keeps each unit with probability 1 - ratio and scales
    # the kept ones by 1 / (1 - ratio), so TEST is the identity.
    def forward(bottoms, blobs):
        x = bottoms[0]
        mask = torch.rand(x.shape, generator=ctx.generator) < keep
        return [x * mask.to(device=x.device, dtype=x.dtype) / keep]

    return Op(forward=forward)


@register("PReLU")
def prelu(ctx: LayerContext) -> Op:
    p = ctx.param("prelu_param")
    shared = p["channel_shared"]

    def specs(shapes):
        if len(shapes[0]) < 2:
            raise ctx.error("PReLU needs a bottom with at least 2 axes")
        shape = () if shared else (shapes[0][1],)
        return [BlobSpec(shape, filler_or(p, "filler", filler("constant", value=0.25)), "slope")]

    def forward(bottoms, blobs):
        x, slope = bottoms[0], blobs[0]
        slope = slope.reshape((1, -1) + (1,) * (x.dim() - 2)) if not shared else slope
        return [torch.where(x > 0, x, x * slope)]

    return Op(forward=forward, blob_specs=specs)
