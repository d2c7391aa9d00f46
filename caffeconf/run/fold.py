"""Inference-time folding: Convolution followed by per-channel affine layers
(BatchNorm with global statistics, one-bottom channel Scale and Bias) becomes one
convolution with adjusted weights and bias, as y = A * conv(x) + C per channel.
After the chain, an Eltwise SUM adding one other blob and a ReLU (slope 0) are
fused into the same step: the convolution's kernel applies them as it writes.
Every convolution also keeps its weights reordered once for the backend (oneDNN
would reorder them on every call).

The folded weights are a snapshot of the blobs when `fold_affine` is called;
the original blobs stay untouched (and are what a .caffemodel gets). A chain
folds only when the convolution's output feeds nothing but the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..ir import Layer
from .params import layer_params


@dataclass(frozen=True)
class Folded:
    weight: torch.Tensor
    bias: torch.Tensor | None
    tops: tuple[str, ...]  # the names the fused step writes (the last absorbed step's top)
    absorbed: tuple[int, ...]  # steps (layer indices) the fused step replaces
    residual: str | None = None  # the blob an absorbed Eltwise SUM adds
    relu: bool = False  # an absorbed ReLU
    # The convolution's own use: weights reordered once into the backend's layout.
    cache: dict = field(default_factory=dict, compare=False)


def fold_affine(model) -> dict[int, Folded]:
    """An entry for every convolution with its blobs (those absorbing nothing still get their
    weights prepared once), keyed by the convolution's step index."""
    folds: dict[int, Folded] = {}
    steps = model.steps
    with torch.no_grad():
        for position, step in enumerate(steps):
            if step.layer.type != "Convolution" or not step.ready or len(step.layer.tops) != 1:
                continue
            chain = _chain(steps, position, model.outputs)
            end = position + len(chain)
            name = chain[-1].layer.tops[0] if chain else step.layer.tops[0]
            residual_step = _residual_sum(steps, position, end, name, model.outputs)
            if residual_step:
                end, name = end + 1, residual_step.layer.tops[0]
            relu_step = _relu(steps, end, name, model.outputs)
            folds[step.index] = _fold(model, step, chain, residual_step, relu_step)
    return folds


def _chain(steps, position: int, outputs) -> list:
    """The affine steps right after a convolution that may be folded into it."""
    chain, name = [], steps[position].layer.tops[0]
    for step in steps[position + 1:]:
        if (not step.ready or not _is_channel_affine(step.layer, step.ctx.phase)
                or step.layer.bottoms != (name,)):
            break
        if not _consumed_only_by(steps, step, name, outputs):
            break
        chain.append(step)
        name = step.layer.tops[0]
    return chain


def _consumed_only_by(steps, step, name: str, outputs) -> bool:
    """`name` is overwritten in place by `step`, or `step` is its last reader and it is no output."""
    return step.layer.tops[0] == name or not (_read_later(steps, step, name) or name in outputs)


def _next(steps, position: int):
    return steps[position + 1] if position + 1 < len(steps) else None


def _residual_sum(steps, conv_position: int, position: int, name: str, outputs):
    """An Eltwise right after `position` that adds `name` (once) and one blob made before the
    convolution at `conv_position`."""
    step = _next(steps, position)
    if step is None or step.layer.type != "Eltwise" or len(step.layer.bottoms) != 2:
        return None
    p = layer_params(step.layer.fields, "eltwise_param")
    if p["operation"] != "SUM" or any(c != 1 for c in p["coeff"]) or step.layer.bottoms.count(name) != 1:
        return None
    made_here = {top for s in steps[conv_position:position + 1] for top in s.layer.tops}
    other = next(b for b in step.layer.bottoms if b != name)
    if other in made_here or not _consumed_only_by(steps, step, name, outputs):
        return None
    return step


def _relu(steps, position: int, name: str, outputs):
    """A ReLU (negative_slope 0) right after `position` reading `name`."""
    step = _next(steps, position)
    if step is None or step.layer.type != "ReLU" or step.layer.bottoms != (name,):
        return None
    slope = layer_params(step.layer.fields, "relu_param")["negative_slope"]
    return step if slope == 0 and _consumed_only_by(steps, step, name, outputs) else None


def _read_later(steps, after, name: str) -> bool:
    return any(name in step.layer.bottoms for step in steps[steps.index(after) + 1:])


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


def _fold(model, conv_step, chain, residual_step, relu_step) -> Folded:
    blobs = [b.detach() for b in model.layer_blobs[conv_step.index]]
    weight, bias = blobs[0], (blobs[1] if len(blobs) > 1 else None)
    if chain:
        scale = torch.ones(weight.shape[0], dtype=weight.dtype, device=weight.device)
        shift = bias.clone() if bias is not None else torch.zeros_like(scale)
        for step in chain:
            factor, offset = _affine(model, step)
            scale, shift = scale * factor, shift * factor + offset
        weight, bias = weight * scale.reshape((-1,) + (1,) * (weight.dim() - 1)), shift
    absorbed = chain + [s for s in (residual_step, relu_step) if s]
    residual = None
    if residual_step:
        name = (chain[-1] if chain else conv_step).layer.tops[0]
        residual = next(b for b in residual_step.layer.bottoms if b != name)
    return Folded(weight, bias, (absorbed[-1] if absorbed else conv_step).layer.tops,
                  tuple(s.index for s in absorbed), residual, relu_step is not None)


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
