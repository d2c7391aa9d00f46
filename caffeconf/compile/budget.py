"""The expansion limits, checked while expanding: layers and text bytes as they are made, and
projections that refuse a repeat or a module use as soon as it is clear it would pass --max-layers."""

from __future__ import annotations

from typing import Any

from ..errors import CaffeconfError, Span
from ..limits import Limits

RAISE_LAYERS = "raise the limit with --max-layers if this is intended"


class Budget:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.text_bytes = 0  # names and strings of the layers made, against limits.max_text_bytes
        self.made: dict[int, int] = {}  # id of a module -> layers its last complete use made

    def count_layer(self, span: Span, layers: int, names: tuple[str, ...], fields: dict[str, Any]) -> None:
        """One more layer (after `layers` made so far), with its names and field strings."""
        if layers >= self.limits.max_layers:
            raise CaffeconfError.at(span, f"the net expands to more than {self.limits.max_layers} layers",
                                    hint=RAISE_LAYERS)
        self.text_bytes += sum(map(len, names)) + _text_size(fields)
        if self.text_bytes > self.limits.max_text_bytes:
            raise CaffeconfError.at(span, f"the net's names and strings expand to more than "
                                    f"{self.limits.max_text_bytes} bytes",
                                    hint="raise the limit with --max-text-bytes if this is intended")

    def check_repeat(self, span: Span, layers: int, done: int, count: int, made: int) -> None:
        """Refuse a repeat as soon as its first copies show the rest would pass --max-layers,
        rather than after building the limit's worth of layers (10,000 x 10,000 nested repeats)."""
        projected = layers + made * (count - done) // done
        if projected > self.limits.max_layers:
            raise CaffeconfError.at(span, f"this `repeat` would expand the net to about {projected} layers "
                                    f"(its first {done} of {count} copies made {made}), over the limit of "
                                    f"{self.limits.max_layers}", hint=RAISE_LAYERS)

    def check_use(self, span: Span, module_key: int, module_name: str, layers: int) -> None:
        """Refuse a use before expanding it when its module's last use made more layers than are
        left under --max-layers, so a 2^30 fan-out stops early rather than after the limit's worth."""
        projected = layers + self.made.get(module_key, 0)
        if projected > self.limits.max_layers:
            raise CaffeconfError.at(span, f"this use of module '{module_name}' would expand the net to about "
                                    f"{projected} layers (its last use made {self.made[module_key]}), "
                                    f"over the limit of {self.limits.max_layers}", hint=RAISE_LAYERS)


def _text_size(value: Any) -> int:
    """Characters of the strings in a layer's field data (keys are caffe.proto's, not counted)."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (dict, list)):
        return sum(map(_text_size, value.values() if isinstance(value, dict) else value))
    return 0
