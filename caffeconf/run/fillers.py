"""Caffe's weight fillers (`FillerParameter`) on a seeded torch.Generator.

FillerParameter + shape + generator -> a float32 tensor. The random streams are
PyTorch's, not Caffe's, so values differ from Caffe's; the distributions match.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .params import Params

Shape = tuple[int, ...]


def fill(shape: Shape, spec: Params, generator: torch.Generator) -> torch.Tensor:
    """A new CPU float32 tensor of `shape` filled as `spec` says; ValueError for a bad spec."""
    kind = spec["type"]
    if kind not in FILLERS:
        raise ValueError(f"unknown filler type '{kind}' (Caffe's are {', '.join(sorted(FILLERS))})")
    return FILLERS[kind](tuple(shape), spec, generator)


def _constant(shape, spec, generator):
    return torch.full(shape, spec["value"], dtype=torch.float32)


def _uniform(shape, spec, generator):
    low, high = spec["min"], spec["max"]
    return torch.rand(shape, generator=generator) * (high - low) + low


def _gaussian(shape, spec, generator):
    values = torch.randn(shape, generator=generator) * spec["std"] + spec["mean"]
    sparse = spec["sparse"]
    if sparse >= 0:
        # Keep each weight with probability sparse / num_outputs (outputs = axis 0).
        if len(shape) < 1:
            raise ValueError("a sparse gaussian filler needs a blob with at least one axis")
        keep = sparse / shape[0]
        values *= (torch.rand(shape, generator=generator) < keep).to(torch.float32)
    return values


def _positive_unitball(shape, spec, generator):
    values = torch.rand(shape, generator=generator)
    rows = shape[0] if shape else 1
    flat = values.reshape(rows, -1)
    return (flat / flat.sum(dim=1, keepdim=True)).reshape(shape)


def _fans(shape: Shape) -> tuple[int, int]:
    """Caffe's fans: fan_in = count / shape[0], fan_out = count / shape[1]."""
    count = math.prod(shape)
    fan_in = count // shape[0] if shape else count
    fan_out = count // shape[1] if len(shape) > 1 else count
    return fan_in, fan_out


def _variance_norm(shape: Shape, spec: Params) -> float:
    fan_in, fan_out = _fans(shape)
    return {"FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}.get(spec["variance_norm"], fan_in)


def _xavier(shape, spec, generator):
    limit = math.sqrt(3.0 / _variance_norm(shape, spec))
    return torch.rand(shape, generator=generator) * (2 * limit) - limit


def _msra(shape, spec, generator):
    return torch.randn(shape, generator=generator) * math.sqrt(2.0 / _variance_norm(shape, spec))


def _bilinear(shape, spec, generator):
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ValueError(f"the bilinear filler needs a 4-axis blob with square kernels, got {shape}")
    size = shape[3]
    factor = math.ceil(size / 2)
    centre = (2 * factor - 1 - factor % 2) / (2.0 * factor)
    ramp = 1 - torch.abs(torch.arange(size, dtype=torch.float32) / factor - centre)
    kernel = ramp[:, None] * ramp[None, :]
    return kernel.expand(shape).clone()


FILLERS: dict[str, Callable[[Shape, Params, torch.Generator], torch.Tensor]] = {
    "constant": _constant,
    "uniform": _uniform,
    "gaussian": _gaussian,
    "positive_unitball": _positive_unitball,
    "xavier": _xavier,
    "msra": _msra,
    "bilinear": _bilinear,
}


# `run --random-weights`: values of a sensible scale for each kind of blob, whatever the net's
# fillers say (a deploy net has none: its blobs would all be zero).
def _random_weight(shape, generator):
    fan_in = max(_fans(shape)[0], 1)
    return torch.randn(shape, generator=generator) / math.sqrt(fan_in)


def _random_near(centre: float, spread: float):
    return lambda shape, generator: centre + spread * torch.randn(shape, generator=generator)


def _random_between(low: float, high: float):
    return lambda shape, generator: low + (high - low) * torch.rand(shape, generator=generator)


RANDOM_BY_ROLE: dict[str, Callable[[Shape, torch.Generator], torch.Tensor]] = {
    "weight": _random_weight,
    "bias": _random_near(0.0, 0.1),
    "mean": _random_near(0.0, 0.1),  # BatchNorm's stored mean
    "variance": _random_between(0.5, 1.5),  # BatchNorm's stored variance: positive
    # BatchNorm's moving-average normalizer: 1, so the stored statistics are used as they are
    "normalizer": lambda shape, generator: torch.ones(shape),
    "gain": _random_near(1.0, 0.1),  # Scale's factor
    "slope": _random_between(0.0, 0.5),  # PReLU's negative slope
}


def fill_random(shape: Shape, role: str, generator: torch.Generator) -> torch.Tensor:
    """A new CPU float32 tensor of `shape` with seeded random values suited to a blob of `role`."""
    return RANDOM_BY_ROLE[role](tuple(shape), generator).to(torch.float32)
