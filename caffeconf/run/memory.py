"""How much memory the runner really uses for one pass: the peak of its allocations.

On CUDA, the allocator's own peak counter. On the CPU, PyTorch's profiler records
every allocation and free; their running sum during the pass gives the peak. The
net's parameters and the inputs, allocated before the pass, are added.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Mapping

import torch
from torch.profiler import ProfilerActivity, profile

from .interpreter import CaffeNet


def measure_peak_bytes(model: CaffeNet, inputs: Mapping[str, torch.Tensor], train: bool = False) -> int:
    """Peak bytes held during one forward (and, with `train`, backward) pass, parameters included.

    Run one pass first so that lazily created blobs exist; gradients are cleared before measuring.
    """
    run_pass(model, inputs, train)
    model.zero_grad(set_to_none=True)
    resident = sum(p.numel() * p.element_size() for p in model.parameters())
    resident += sum(t.numel() * t.element_size() for t in inputs.values())
    device = next(iter(inputs.values())).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run_pass(model, inputs, train)
        torch.cuda.synchronize(device)
        return resident + torch.cuda.max_memory_allocated(device) - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        run_pass(model, inputs, train)
    return resident + running_peak(profiler)


def run_pass(model: CaffeNet, inputs: Mapping[str, torch.Tensor], train: bool) -> None:
    if not train:
        with torch.no_grad():
            model(inputs)
        return
    outputs = model(inputs)
    loss = model.loss(outputs)
    if loss is None:  # a deploy net has no loss: back-propagate from every output
        loss = sum(blob.sum() for blob in outputs.values() if blob.is_floating_point())
    loss.backward()


def running_peak(profiler) -> int:
    """The highest running sum of the allocations and frees a memory-profiling run recorded."""
    allocations = [event for event in profiler.profiler.kineto_results.events() if event.name() == "[memory]"]
    ordered = sorted(allocations, key=lambda e: e.start_ns())
    return max(accumulate((event.nbytes() for event in ordered), initial=0))
