"""A position in an open config -> where the thing there is defined: a `use:` -> its module
(also in an imported file), a bottom -> the layer that produces that blob, an import -> its file."""

from __future__ import annotations

import os

from ..compile.load import compile_config
from ..compile.tree import Map, Scalar
from ..errors import CaffeconfError, Span
from ..limits import Limits
from .documents import Config
from .places import Place


def definition(config: Config, place: Place, limits: Limits) -> Span | None:
    if len(place.keys) == 2 and place.keys[0] == "imports" and isinstance(place.node, Scalar):
        return Span(os.path.join(os.path.dirname(config.document.path), str(place.node.value)), 1, 1)
    inside = place.within_entry()
    if inside is None:
        return None
    entry, keys = inside
    if keys[:1] == ("use",):
        module = config.entry_module(place)
        return module.span if module else None
    if keys[:1] == ("with",) and len(keys) == 2:
        module = config.entry_module(place)
        decl = module.params.get(keys[1]) if module else None
        return decl.span if decl else None
    if keys[:1] == ("bottom",) and not place.on_key and "use" not in entry:
        return producer(config.document.path, entry, keys[1] if len(keys) > 1 else 0, limits)
    return None


def producer(path: str, entry: Map, index: int, limits: Limits) -> Span | None:
    """Where the layer is written that produces bottom `index` of the (first) flat layer `entry`
    wrote: the last earlier layer with that blob among its tops."""
    try:
        result = compile_config(path, limits)
    except CaffeconfError:
        return None
    layers = result.net.layers if result.ok else ()
    at = next((i for i, layer in enumerate(layers) if layer.origin and layer.origin.span == entry.span), None)
    if at is None or index >= len(layers[at].bottoms):
        return None
    blob = layers[at].bottoms[index]
    found = next((layer for layer in reversed(layers[:at]) if blob in layer.tops), None)
    return found.origin.span if found and found.origin else None
