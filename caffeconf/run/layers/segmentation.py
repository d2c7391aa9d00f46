"""SegNet's and ENet's layers (alexgkendall/caffe-segnet, TimoSaemann/caffe-enet; the two forks'
bn_layer.cpp and upsample_layer.cpp are the same): BN and Upsample, after their CPU forward and
backward."""

from __future__ import annotations

import torch

from ...caffe.facts import bn_is_pspnets
from ...caffe.fork_layers import BN_EPS, bn_mode, check_bn_tops, upsample_size
from .registry import BlobSpec, LayerContext, Op, filler, legacy_4d, register


def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BN's LEARN statistics of an (N, C, H, W) bottom, per channel, as the fork computes them:
    the mean over each plane, then over the batch; the variance as E(x^2) - E(x)^2 the same way
    (not the mean squared deviation: it can round below zero, as in the fork)."""
    mean = x.mean(dim=(2, 3)).mean(dim=0)
    mean_of_squares = (x * x).mean(dim=(2, 3)).mean(dim=0)
    return mean, mean_of_squares - mean * mean


@register("BN")
def bn(ctx: LayerContext) -> Op:
    """LEARN: (x - batch mean) / sqrt(batch variance + 1e-9) * scale + shift, in either phase (the
    fork keeps no running statistics; SegNet's compute_bn_statistics.py folds them into the scale and
    shift of an INFERENCE net); INFERENCE: x * scale + shift. Autograd gives the fork's backward:
    with batch statistics dx = scale / std * (dy - mean(dy) - x_norm * mean(dy * x_norm)), the means
    over N, H, W; the extra mean and variance tops get no gradient."""
    p = ctx.param("bn_param")
    written = ctx.layer.fields.get("bn_param") or {}
    ctx.checked(check_bn_tops, written, len(ctx.layer.tops))
    if bn_is_pspnets():
        return _pspnet_bn(ctx, p)
    learn = bn_mode(written) == "LEARN"

    def specs(shapes):
        channels = shapes[0][1] if len(shapes[0]) > 1 else 1
        return [BlobSpec((1, channels, 1, 1), p["scale_filler"], "gain"),
                BlobSpec((1, channels, 1, 1), p["shift_filler"], "bias")]

    def forward(bottoms, blobs):
        x = legacy_4d(ctx, bottoms[0])
        scale, shift = blobs[0].reshape(1, -1, 1, 1), blobs[1].reshape(1, -1, 1, 1)
        if not learn:
            return [x * scale + shift]
        mean, variance = batch_statistics(x)
        std = torch.sqrt(variance + BN_EPS).reshape(1, -1, 1, 1)
        top = (x - mean.reshape(1, -1, 1, 1)) / std * scale + shift
        return [top, mean.detach().reshape(1, -1, 1, 1), variance.detach().reshape(1, -1, 1, 1)][:len(ctx.layer.tops)]

    return Op(forward=forward, blob_specs=specs)


def _pspnet_bn(ctx: LayerContext, p) -> Op:
    """PSPNet's BN (hszhao/PSPNet bn_layer.cpp): slope * (x - mean) / sqrt(var + eps) + bias with
    the moving mean and variance (blobs 2 and 3) in TEST or when `frozen`; else with the batch's
    (means over N, H, W; the variance the mean squared deviation), which then move the stored ones:
    stored = (1 - momentum) * batch + momentum * stored. Autograd gives the fork's backward; the
    setup's lr_mult 0 for the statistics (and with `frozen` for slope and bias) is facts.fixed_blobs."""
    eps, momentum, frozen = p["eps"], p["momentum"], p["frozen"]
    use_stored = frozen or ctx.phase == "TEST"

    def specs(shapes):
        statistic = (1, shapes[0][1] if len(shapes[0]) > 1 else 1, 1, 1)
        return [BlobSpec(statistic, p["slope_filler"], "gain"), BlobSpec(statistic, p["bias_filler"], "bias"),
                BlobSpec(statistic, filler("constant"), "mean"),
                BlobSpec(statistic, filler("constant", value=1.0 if frozen else 0.0), "variance")]

    def forward(bottoms, blobs):
        x = legacy_4d(ctx, bottoms[0])
        slope, bias, stored_mean, stored_variance = (blob.reshape(1, -1, 1, 1) for blob in blobs)
        if use_stored:
            mean, variance = stored_mean.detach(), stored_variance.detach()
        else:
            mean = x.mean(dim=(2, 3), keepdim=True).mean(dim=0, keepdim=True)
            variance = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True).mean(dim=0, keepdim=True)
            with torch.no_grad():
                stored_mean.mul_(momentum).add_((1 - momentum) * mean.detach())
                stored_variance.mul_(momentum).add_((1 - momentum) * variance.detach())
        return [slope * (x - mean) / torch.sqrt(variance + eps) + bias]

    return Op(forward=forward, blob_specs=specs)


class _Unpool(torch.autograd.Function):
    """top[mask[i]] = x[i] per (num, channel) plane, zeros elsewhere, a later i winning where two
    write one place (the fork's loop); backward dx[i] = dy[mask[i]] for every i, a gather (so where
    overlapping pooling windows chose one place twice, both get its gradient, as in the fork)."""

    @staticmethod
    def forward(ctx, x, places, size):
        batch, channels, count = places.shape
        order = torch.arange(count, device=x.device).expand_as(places)
        last = torch.full((batch, channels, size), -1, dtype=torch.long, device=x.device)
        last.scatter_reduce_(2, places, order, reduce="amax")
        values = x.reshape(batch, channels, count).gather(2, last.clamp(min=0))
        ctx.save_for_backward(places)
        ctx.input_shape = x.shape
        return torch.where(last >= 0, values, torch.zeros_like(values))

    @staticmethod
    def backward(ctx, dy):
        (places,) = ctx.saved_tensors
        return dy.gather(2, places).reshape(ctx.input_shape), None, None


@register("Upsample")
def upsample(ctx: LayerContext) -> Op:
    """Values put back where a MAX pooling's mask (its second top: flat indices into each input
    plane) says, in a (num, channels, upsample_h, upsample_w) top."""
    written = ctx.layer.fields.get("upsample_param") or {}
    ctx.checked(upsample_size, written, 1, 1)

    def forward(bottoms, blobs):
        if len(bottoms) != 2:
            raise ctx.error(f"Upsample takes 2 bottoms (values and a pooling's mask), got {len(bottoms)}")
        x, mask = bottoms
        if x.dim() != 4 or tuple(mask.shape) != tuple(x.shape):
            raise ctx.error(f"Upsample needs 4-axis values and a mask of their shape, got "
                            f"{tuple(x.shape)} and {tuple(mask.shape)}")
        height, width = upsample_size(written, x.shape[2], x.shape[3])
        places = mask.detach().reshape(x.shape[0], x.shape[1], -1).to(torch.long)  # C++'s int cast truncates
        if places.numel() and bool(((places < 0) | (places >= height * width)).any()):
            raise ctx.error(f"a mask index lies outside the {height}x{width} top: the scale does not "
                            "match the pooling that made the mask")
        top = _Unpool.apply(x, places, height * width)
        return [top.reshape(x.shape[0], x.shape[1], height, width)]

    return Op(forward=forward)
