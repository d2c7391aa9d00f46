"""The layer table's entries: Caffe type string -> builder of a PyTorch implementation.

A builder takes a `LayerContext` (the flat layer, the phase, parsed params) and
returns an `Op`: `forward(bottoms, blobs) -> tops` on tensors, the shapes and
fillers of the layer's learnable blobs given its bottom shapes, and optionally
an in-place forward the interpreter may use in inference. Builders parse the
layer's fields once, so the forward closures do only tensor work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ...caffe import messages
from ...caffe.facts import fork_field_hint, legacy_dim
from ...errors import CaffeconfError
from ...ir import Layer
from ..params import Params, layer_params

Tensor = torch.Tensor
Shape = tuple[int, ...]
Forward = Callable[[list[Tensor], list[Tensor]], list[Tensor]]


@dataclass(frozen=True)
class BlobSpec:
    """One learnable blob: its shape, the FillerParameter that initializes it, and its role
    (a key of fillers.RANDOM_BY_ROLE: what `run --random-weights` fills it with)."""

    shape: Shape
    filler: Params
    role: str = "weight"


@dataclass
class Op:
    forward: Forward
    # bottom shapes -> the layer's blobs, in Caffe's order (weights, bias, ...)
    blob_specs: Callable[[Sequence[Shape]], list[BlobSpec]] | None = None
    # Same contract as `forward` but may overwrite bottoms[0]; used only without autograd.
    forward_in_place: Forward | None = None
    # Convolutions, without autograd: `forward` with a blob added to the top (`residual`, an
    # Eltwise SUM) and then Caffe's ReLU (`relu`), as one kernel where the backend has one;
    # `cache` (a dict kept with the blobs) holds the weights prepared for that kernel.
    forward_fused: Callable[[list[Tensor], list[Tensor], Tensor | None, bool, dict], list[Tensor]] | None = None


@dataclass
class LayerContext:
    layer: Layer
    phase: str
    generator: torch.Generator
    device: torch.device = torch.device("cpu")  # where the net runs (for tops made from no bottom)

    def param(self, name: str) -> Params:
        if name not in messages.descriptor("LayerParameter").fields_by_name:  # a fork's layer, another proto
            raise self.error(f"{messages.dialect_name()} has no `{name}`, which this layer type reads",
                             hint=fork_field_hint("LayerParameter", name))
        return layer_params(self.layer.fields, name)

    def error(self, message: str, hint: str | None = None) -> CaffeconfError:
        """A user-facing error at the place the layer was written."""
        span = self.layer.origin.span if self.layer.origin else None
        where = self.layer.origin.describe() if self.layer.origin else ""
        text = f"layer '{self.layer.name}' ({self.layer.type}): {message}"
        return CaffeconfError.at(span, text + (f" ({where})" if where else ""), hint=hint)

    def checked(self, rule: Callable[..., Any], *args: Any) -> Any:
        """`rule(*args)`, a setup rule shared with shape inference (caffe.facts, caffe.fork_layers),
        its ValueError raised as this layer's located error."""
        try:
            return rule(*args)
        except ValueError as problem:
            raise self.error(str(problem)) from None

    def axis(self, axis: int, ndim: int) -> int:
        """Caffe's CanonicalAxisIndex: negative axes count from the end."""
        if not -ndim <= axis < ndim:
            raise self.error(f"axis {axis} is out of range for a blob with {ndim} axes")
        return axis % ndim


Builder = Callable[[LayerContext], Op]
LAYERS: dict[str, Builder] = {}


def register(*types: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        for type_name in types:
            LAYERS[type_name] = builder
        return builder
    return add


def legacy_4d(ctx: LayerContext, x: Tensor) -> Tensor:
    """The bottom as the forks read it: num, channels, height, width (Blob::LegacyShape)."""
    return x.reshape([ctx.checked(legacy_dim, tuple(x.shape), axis) for axis in range(4)])


def filler(type_name: str, **values: Any) -> Params:
    """A FillerParameter built in code, for Caffe's implicit fillers (e.g. PReLU's 0.25)."""
    return Params.of("FillerParameter", {"type": type_name, **values})


def filler_or(params: Params, name: str, default: Params) -> Params:
    """The written filler, or the layer's implicit default when none is written."""
    return params[name] if params.has(name) else default
