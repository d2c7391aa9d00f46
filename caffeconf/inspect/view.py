"""The explorable HTML view of a net: flat Net + shapes -> one self-contained page.

The page carries the net once, as JSON (layers with their Caffe fields, shapes,
parameter counts, MACs and source spans; the tree of module uses; the edges),
and Graphviz compiled to WebAssembly (@viz-js/viz, vendored by
scripts/vendor_js.sh). It lays the drawing out again in the browser on every
open or close, so that a collapsed module is one node of normal size, and adds
pan, zoom, search and a details panel (view_assets/view.js).
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from ..ir import Layer, Net
from .draw import (FILL, GROUP_FILL, IN_PLACE_FILL, OTHER_FILL, blob_edges, layer_label, net_outputs,
                   shared_weights)
from .measure import layer_costs
from .shapes import NetShapes, format_shape

ASSETS = resources.files(__package__) / "view_assets"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def view_data(net: Net, shapes: NetShapes, rankdir: str = "TB") -> dict[str, Any]:
    """What the page needs, each fact once: layers, module uses (a tree), edges and outputs."""
    uses: dict[tuple[str, ...], int] = {}
    use_rows: list[dict[str, Any]] = []
    costs = layer_costs(shapes)
    layers = [_layer_row(entry, cost, _use_ids(entry.layer, uses, use_rows))
              for entry, cost in zip(shapes.layers, costs)]
    return {
        "name": net.name or "net",
        "rankdir": rankdir,
        "colors": {"types": FILL, "inPlace": IN_PLACE_FILL, "other": OTHER_FILL, "module": GROUP_FILL},
        "layers": layers,
        "uses": use_rows,
        "edges": blob_edges(net),
        "outputs": net_outputs(net),
        "shared": shared_weights(net),
    }


def _use_ids(layer: Layer, uses: dict[tuple[str, ...], int], rows: list[dict[str, Any]]) -> list[int]:
    """The ids of the module uses around the layer, outermost first, numbering new ones."""
    chain = layer.origin.uses if layer.origin else ()
    ids = []
    for depth, use in enumerate(chain):
        key = tuple(u.instance for u in chain[:depth + 1])
        if key not in uses:
            uses[key] = len(rows)
            rows.append({"instance": use.instance, "module": use.module, "path": "/".join(key),
                         "parent": ids[-1] if ids else None, "depth": depth + 1, "span": str(use.span)})
        ids.append(uses[key])
    return ids


def _layer_row(entry, cost, use_ids: list[int]) -> dict[str, Any]:
    layer: Layer = entry.layer
    return {
        "name": layer.name,
        "type": layer.type,
        "label": layer_label(layer),
        "inPlace": layer.is_in_place(),
        "bottoms": [[name, format_shape(shape)] for name, shape in zip(layer.bottoms, entry.bottoms)],
        "tops": [[name, format_shape(shape)] for name, shape in zip(layer.tops, entry.tops)],
        "fields": layer.fields,
        "params": cost.params,
        "macs": cost.macs,
        "span": str(layer.origin.span) if layer.origin else None,
        "uses": use_ids,
    }


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '<' can end it or open a comment."""
    return json.dumps(value, separators=(",", ":"), default=str).replace("<", "\\u003c")


def to_html(net: Net, shapes: NetShapes, rankdir: str = "TB") -> str:
    """The page: the template with the vendored Graphviz, the page's script and the net's data filled in."""
    parts = {
        "title": html.escape(net.name or "net"),
        "viz": (ASSETS / "viz-global.js").read_text(encoding="utf-8"),
        "script": (ASSETS / "view.js").read_text(encoding="utf-8"),
        "data": _script_json(view_data(net, shapes, rankdir)),
    }
    template = (ASSETS / "page.html").read_text(encoding="utf-8")
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], template)
