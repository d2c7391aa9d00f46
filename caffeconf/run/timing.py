"""`caffe time` for a CaffeNet: average forward and backward time per layer and in total.

Each iteration times the whole forward pass and the whole backward pass (from
the net's loss, or from the sum of its outputs when it has none), then each
layer on its own: its forward on the bottoms it saw, and the backward of just
that layer (gradients of its tops, all ones, to its bottoms and blobs), the way
Caffe times every layer's Forward and Backward separately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

import torch

from .device import synchronize
from .interpreter import CaffeNet, Step
from ..caffe.facts import FED_TYPES


@dataclass
class LayerTime:
    name: str
    type: str
    forward_ms: float = 0.0
    backward_ms: float = 0.0


@dataclass
class Timing:
    iterations: int
    forward_ms: float = 0.0
    backward_ms: float = 0.0
    layers: list[LayerTime] = field(default_factory=list)
    backward: bool = True  # False: the engine runs forward only (ONNX Runtime)


def _clock(device: torch.device) -> float:
    synchronize(device)
    return time.perf_counter()


def time_net(model: CaffeNet, inputs: Mapping[str, torch.Tensor], iterations: int,
             device: torch.device) -> Timing:
    steps = [step for step in model.steps if step.layer.type not in FED_TYPES]
    timing = Timing(iterations, layers=[LayerTime(s.layer.name, s.layer.type) for s in steps])
    # Iteration 0 is a warm-up (blob creation, allocators, cuDNN autotuning) and is not counted.
    for iteration in range(iterations + 1):
        counted = 1.0 if iteration else 0.0
        start = _clock(device)
        blobs, bottoms_seen = _forward_recording(model, inputs)
        middle = _clock(device)
        target = _backward_target(model, blobs)
        if target is not None:
            target.backward()
        end = _clock(device)
        timing.forward_ms += counted * (middle - start) * 1e3
        timing.backward_ms += counted * (end - middle) * 1e3
        for record, step in zip(timing.layers, steps):
            forward_ms, backward_ms = _time_layer(model, step, bottoms_seen[step.index], device)
            record.forward_ms += counted * forward_ms
            record.backward_ms += counted * backward_ms
        model.zero_grad(set_to_none=True)
    for record in (*timing.layers, timing):
        record.forward_ms /= iterations
        record.backward_ms /= iterations
    return timing


def _forward_recording(model: CaffeNet, inputs):
    """The whole forward (with autograd), remembering each layer's bottoms."""
    env = model.feed(inputs)
    seen = {}
    for step in model.steps:
        if step.layer.type in FED_TYPES:
            continue
        bottoms = [env[name] for name in step.layer.bottoms]
        seen[step.index] = bottoms
        env.update(zip(step.layer.tops, model.run_layer(step, bottoms)))
    return env, seen


def _backward_target(model: CaffeNet, blobs):
    loss = model.loss(blobs)
    if loss is not None and loss.requires_grad:
        return loss
    terms = [blobs[name].float().sum() for name in model.outputs
             if blobs[name].requires_grad and blobs[name].is_floating_point()]
    return sum(terms) if terms else None


def _time_layer(model: CaffeNet, step: Step, bottoms, device) -> tuple[float, float]:
    detached = [b.detach().requires_grad_(b.is_floating_point()) for b in bottoms]
    start = _clock(device)
    tops = model.run_layer(step, detached)
    middle = _clock(device)
    differentiable = [t for t in tops if t.requires_grad]
    sources = [b for b in detached if b.requires_grad] + [p for p in model.layer_blobs[step.index]]
    if not differentiable or not sources:
        return (middle - start) * 1e3, 0.0
    torch.autograd.grad(differentiable, sources, [torch.ones_like(t) for t in differentiable],
                        allow_unused=True)
    end = _clock(device)
    return (middle - start) * 1e3, (end - middle) * 1e3


def format_timing(timing: Timing) -> str:
    """The report, laid out like `caffe time`'s."""
    width = max((len(r.name) for r in timing.layers), default=0)
    lines = [f"Average time per layer ({timing.iterations} iterations):"]
    for record in timing.layers:
        lines.append(f"  {record.name:>{width}}  {record.type:<12} forward: {record.forward_ms:9.3f} ms."
                     + (f"  backward: {record.backward_ms:9.3f} ms." if timing.backward else ""))
    lines.append(f"Average Forward pass: {timing.forward_ms:.3f} ms.")
    if not timing.backward:
        lines += ["No backward pass: the engine runs inference only.",
                  f"Total Time: {timing.forward_ms * timing.iterations:.3f} ms."]
    else:
        lines += [f"Average Backward pass: {timing.backward_ms:.3f} ms.",
                  f"Average Forward-Backward: {timing.forward_ms + timing.backward_ms:.3f} ms.",
                  f"Total Time: {(timing.forward_ms + timing.backward_ms) * timing.iterations:.3f} ms."]
    return "\n".join(lines) + "\n"
