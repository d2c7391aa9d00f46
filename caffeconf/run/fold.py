"""Inference-time folding: Convolution followed by per-channel affine layers
(BatchNorm with global statistics, one-bottom channel Scale and Bias) becomes one
convolution with adjusted weights and bias, as y = A * conv(x) + C per channel.

The folded weights are a snapshot of the blobs when `fold_affine` is called;
the original blobs stay untouched (and are what a .caffemodel gets). A chain
folds only when the convolution's output feeds nothing but the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ir import Layer
from .params import layer_params


@dataclass(frozen=True)
class Folded:
    weight: torch.Tensor
    bias: torch.Tensor
    tops: tuple[str, ...]  # the names the fused step writes (the chain's last top)
    absorbed: tuple[int, ...]  # steps (layer indices) the fused step replaces


def fold_affine(model) -> dict[int, Folded]:
    """Folds for every foldable chain, keyed by the convolution's step index."""
    folds: dict[int, Folded] = {}
    steps = model.steps
    with torch.no_grad():
        for position, step in enumerate(steps):
            if step.layer.type != "Convolution" or not step.ready or len(step.layer.tops) != 1:
                continue
            chain = _chain(steps, position, model.outputs)
            if chain:
                folds[step.index] = _fold(model, step, chain)
    return folds


def _chain(steps, position: int, outputs) -> list:
    """The affine steps right after a convolution that may be folded into it."""
    chain, name = [], steps[position].layer.tops[0]
    for step in steps[position + 1:]:
        if (not step.ready or not _is_channel_affine(step.layer, step.ctx.phase)
                or step.layer.bottoms != (name,)):
            break
        top = step.layer.tops[0]
        if top != name and (_read_later(steps, step, name) or name in outputs):
            break
        chain.append(step)
        name = top
    return chain


def _read_later(steps, after, name: str) -> bool:
    later = steps[steps.index(after) + 1:]
    return any(name in step.layer.bottoms for step in later)


def _is_channel_affine(layer: Layer, phase: str) -> bool:
    if len(layer.bottoms) != 1 or len(layer.tops) != 1:
        return False
    if layer.type == "BatchNorm":
        p = layer_params(layer.fields, "batch_norm_param")
        return p["use_global_stats"] if p.has("use_global_stats") else phase == "TEST"
    if layer.type in ("Scale", "Bias"):
        p = layer_params(layer.fields, "scale_param" if layer.type == "Scale" else "bias_param")
        return p["axis"] in (1, -3) and p["num_axes"] == 1
    return False


def _fold(model, conv_step, chain) -> Folded:
    blobs = list(model.layer_blobs[conv_step.index])
    weight = blobs[0].detach()
    scale = torch.ones(weight.shape[0], dtype=weight.dtype, device=weight.device)
    shift = blobs[1].detach().clone() if len(blobs) > 1 else torch.zeros_like(scale)
    for step in chain:
        factor, offset = _affine(model, step)
        scale, shift = scale * factor, shift * factor + offset
    folded_weight = weight * scale.reshape((-1,) + (1,) * (weight.dim() - 1))
    return Folded(folded_weight, shift, chain[-1].layer.tops, tuple(s.index for s in chain))


def _affine(model, step) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, C) with the step computing A * x + C per channel."""
    blobs = [b.detach() for b in model.layer_blobs[step.index]]
    if step.layer.type == "BatchNorm":
        eps = layer_params(step.layer.fields, "batch_norm_param")["eps"]
        stored = blobs[2].reshape(-1)[0]
        factor = 0.0 if stored == 0 else 1.0 / stored
        inverse_std = torch.rsqrt(blobs[1] * factor + eps)
        return inverse_std, -blobs[0] * factor * inverse_std
    if step.layer.type == "Scale":
        return blobs[0], (blobs[1] if len(blobs) > 1 else torch.zeros_like(blobs[0]))
    return torch.ones_like(blobs[0]), blobs[0]
