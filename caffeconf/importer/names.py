"""A recovered module's layers and copies → the names a person would give it, its parameters and ports.

- A module is named after the common part of its instances' names (`inception_a1`, `inception_a2` →
  `inception_a`), unless that part is an abbreviation (`res`) and the block says what it is: a
  residual block (an Eltwise sum of its input, or of a projection of it, closing the block) is a
  `bottleneck` when its main branch has three convolutions, else `residual`. Two modules that would
  share a name are told apart by `_projection` on the one whose shortcut is a convolution.
- In a residual block, the parameter that sets the channels of the sum is `channels`, and one that
  sets a narrower width inside it is `reduce`.
- A port that every copy binds to the same data-layer top is named after it (`label`); the others are
  `x`, or `x` and `y`, or `x1`, `x2`, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os.path import commonprefix
from typing import Any

from ..ir import Layer
from .params import identifier, plain_ports
from .units import Use

ABBREVIATION = 3  # letters: a stem this short (`res`) gives way to what the block is
_CHANNEL_KEYS = ("num_output", "channels")  # a Caffe field, or a unit's parameter for it


def instance_stem(names: list[str]) -> str:
    """The common part of the instances' names, without a number cut in the middle (`res2a`, `res3a` → `res`)."""
    common = commonprefix(names)
    if any(len(name) > len(common) and name[len(common)].isdigit() for name in names):
        common = common.rstrip("0123456789")
    stem = re.sub(r"[^a-z0-9]+", "_", common.lower()).strip("_")
    return stem if stem[:1].isalpha() else ""


def first_type(item: Layer) -> str:
    """The Caffe type of a layer, or of a unit's first layer."""
    return item.unit.types[0] if isinstance(item, Use) and item.unit else item.type


@dataclass(frozen=True)
class Residual:
    """The Eltwise that closes a residual block: its index, the indexes of the layers that feed it from
    inside the block, and whether the shortcut is a projection (no bottom of it is the block's input)."""

    index: int
    feeding: frozenset[int]
    projection: bool


def residual(layers: list[Layer], wiring: tuple) -> Residual | None:
    """The block's closing sum, if it is one: an Eltwise (SUM) followed only by in-place layers."""
    index = max((k for k, item in enumerate(layers) if first_type(item) == "Eltwise"), default=None)
    if index is None or any(top != wiring[index][2] for _, _, top in wiring[index + 1:]):
        return None
    if not isinstance(layers[index], Use) and layers[index].fields.get("eltwise_param", {}).get(
            "operation", "SUM") != "SUM":
        return None
    bottoms = wiring[index][1]
    feeding = frozenset(min(k for k, (_, _, tops) in enumerate(wiring) if ref in tops)
                        for ref in bottoms if ref[0] == "blob")
    return Residual(index, feeding, projection=all(ref[0] == "blob" for ref in bottoms))


def block_word(layers: list[Layer], wiring: tuple) -> tuple[str | None, bool]:
    """What a block is (`bottleneck`, `residual`, or None), and whether its shortcut is a projection."""
    found = residual(layers, wiring)
    if found is None:
        return None, False
    shortcut = 1 if found.projection else 0  # the projection's convolution is not on the main branch
    convolutions = sum(first_type(item) == "Convolution" for item in layers) - shortcut
    return ("bottleneck" if convolutions == 3 else "residual"), found.projection


def module_names(wanted: list[tuple[str, str | None, bool]], taken: set[str]) -> list[str]:
    """A name per module from (instance stem, block word, projection): the stem, or the word where the
    stem is an abbreviation or missing; where several want one name, `_projection` on projecting ones,
    then numbers."""
    bases = [word if word and len(stem) <= ABBREVIATION else stem or word or "block" for stem, word, _ in wanted]
    counts = {base: bases.count(base) for base in bases}
    names = []
    for base, (_, _, projection) in zip(bases, wanted):
        wished = f"{base}_projection" if projection and counts[base] > 1 else base
        name = next(n for n in [wished] + [f"{wished}_{k}" for k in range(2, 10000)] if n not in taken)
        taken.add(name)
        names.append(name)
    return names


def role_names(params: list[Any], layers: list[Layer], wiring: tuple) -> dict[int, str]:
    """Parameter names by role in a residual block, keyed by `id(param)`: `channels` for the one
    parameter that sets the channels of the layers feeding the sum, `reduce` for one other channel
    parameter whose values are all smaller."""
    found = residual(layers, wiring)
    if found is None:
        return {}
    channel_params = [param for param in params if param.key in _CHANNEL_KEYS]
    summed = [param for param in channel_params if param.layers & found.feeding]
    if len(summed) != 1:
        return {}
    names = {id(summed[0]): "channels"}
    others = [param for param in channel_params if param is not summed[0]]
    if len(others) == 1 and all(isinstance(a, int) and isinstance(b, int) and a < b
                                for a, b in zip(others[0].values, summed[0].values)):
        names[id(others[0])] = "reduce"
    return names


def port_names(bindings: list[list[str]], sources: set[str], taken: set[str]) -> list[str]:
    """Port names for inputs bound, per copy, to `bindings[copy][port]`: a data-layer top every copy
    binds (`label`) keeps its name; the rest are `x`, `x`/`y` or `x1`...`xn`."""
    first = bindings[0] if bindings else []
    fixed = {port: blob for port, blob in enumerate(first) if blob in sources and blob not in taken
             and all(copy[port] == blob for copy in bindings) and identifier(blob, set()) == blob}
    free = [port for port in range(len(first)) if port not in fixed]
    fixed.update(zip(free, plain_ports(len(free), taken | set(fixed.values()))))
    return [fixed[port] for port in range(len(first))]
