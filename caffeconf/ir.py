"""The flat net: the one IR every consumer reads (emit, run, draw, inspect, diff).

It knows nothing of protobuf. A layer's Caffe fields other than name, type,
bottom and top live in `fields` as plain data, keyed by caffe.proto's field
names: sub-messages are dicts, repeated fields are lists, enums are their value
names (e.g. ``{"pooling_param": {"pool": "MAX", "kernel_size": 3}}``), and
`param` (ParamSpec list), `include`/`exclude` (NetStateRule lists),
`loss_weight`, `propagate_down`, `phase` and `blobs` appear under their own
names. `caffeconf.serde` converts to and from `NetParameter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .errors import Note, Span


@dataclass(frozen=True)
class Use:
    """One module use on the chain that produced a layer."""

    module: str
    instance: str
    span: Span


@dataclass(frozen=True)
class Origin:
    """Where a flat layer was written, and the module uses around it (outermost first)."""

    span: Span
    uses: tuple[Use, ...] = ()
    bottoms: tuple[Span | None, ...] = ()  # where each bottom name is written, when known

    def bottom_span(self, index: int) -> Span:
        found = self.bottoms[index] if index < len(self.bottoms) else None
        return found or self.span

    def use_notes(self) -> tuple[Note, ...]:
        """The uses around the layer as diagnostic notes, innermost first, as the compiler notes them."""
        return tuple(Note(f"in module {use.module}, used as {use.instance}", use.span) for use in reversed(self.uses))

    def describe(self) -> str:
        """e.g. "in module inception, used as inception_3a at net.yaml:88:3"."""
        return "; ".join(
            f"in module {use.module}, used as {use.instance} at {use.span}"
            for use in reversed(self.uses)
        )


@dataclass(frozen=True)
class Layer:
    name: str
    type: str
    bottoms: tuple[str, ...] = ()
    tops: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = None

    @property
    def params(self) -> list[Mapping[str, Any]]:
        """The layer's ParamSpecs (`param` entries), possibly empty."""
        return list(self.fields.get("param", ()))

    def is_in_place(self) -> bool:
        return bool(self.tops) and self.tops == self.bottoms[: len(self.tops)]

    def summary(self) -> str:
        """A stable one-line form for debugging and tests."""
        return f"{self.name} ({self.type}) {list(self.bottoms)} -> {list(self.tops)}"


@dataclass(frozen=True)
class Net:
    name: str
    layers: tuple[Layer, ...]
    # Net-level NetParameter fields other than name and layer, as plain data
    # (force_backward, state, debug_info; a compiled config may also keep legacy `input`/`input_dim`,
    # which compile.load turns into an Input layer as Caffe's upgrade does).
    fields: Mapping[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def dump(self) -> str:
        """One line per layer, stable across runs."""
        return "\n".join(layer.summary() for layer in self.layers) + "\n"


def output_names(layers: Iterable[Layer]) -> list[str]:
    """Caffe's net outputs: tops that no later layer consumes, in order of production."""
    available: dict[str, None] = {}
    for layer in layers:
        for bottom in layer.bottoms:
            available.pop(bottom, None)
        for top in layer.tops:
            available[top] = None
    return list(available)
