"""`share:` on module uses -> `param` names on the learnable layers inside them, so that every
use with one key shares one set of blobs (and the uses are checked to line up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..caffe.facts import learnable_blobs
from ..errors import DiagnosticList, Note, Span
from .syntax import LayerEntry, ModuleUse, check_keys
from .tree import Map, Node, Scalar
from .values import Env, Evaluator

SHARE_KEYS = ("key", "name")
# Learnable blobs with conventional names in shared param names; other types' blobs go by index.
BLOB_NAMES = {"Convolution": ("w", "b"), "Deconvolution": ("w", "b"), "InnerProduct": ("w", "b"),
              "Embed": ("w", "b")}


@dataclass(frozen=True)
class Share:
    """Weights shared by every use with the same key.

    The k-th learnable layer of each such use shares the k-th layer's blobs of the first use;
    param names derive from the key and that first layer's path inside its use.
    """

    key: str
    prefix: str  # flat-name prefix of the sharing use, stripped to get the inner layer path
    template: Scalar | None  # custom `${key}`/`${layer}`/`${blob}` name, else "<key>/<layer>_<blob>"
    span: Span
    seen: list[int] = field(default_factory=lambda: [0])  # learnable layers met so far in this use


class Sharing:
    """The layout of each share key's first use, and the param names derived from it."""

    def __init__(self, evaluator: Evaluator, separator: str):
        self.evaluator, self.separator = evaluator, separator
        self.diags: DiagnosticList = evaluator.diags
        self.layouts: dict[str, list[tuple[str, str, Span]]] = {}  # key -> (inner path, type, where)

    def use_share(self, entry: ModuleUse, prefix: str, env: Env) -> Share | None:
        node = entry.share
        if node is None:
            return None
        template = None
        key_node: Node | None = node
        if isinstance(node, Map):
            check_keys(node, SHARE_KEYS, "`share`", self.diags)
            key_node, template = node.get("key"), node.get("name")
            if key_node is None:
                self.diags.error(node.span, "`share` needs a `key`")
                return None
        key = self.evaluator.text(key_node, "the `share` key", env)
        if key is None:
            return None
        if template is not None and not isinstance(template, Scalar):
            self.diags.error(template.span, "`share.name` must be a string such as \"${layer}_${blob}\"")
            template = None
        return Share(key, f"{prefix}{self.separator}" if prefix else "", template, entry.span)

    def name_params(self, fields: dict[str, Any], layer_type: str, flat_name: str, bottom_count: int,
                    scope, entry: LayerEntry) -> dict[str, Any]:
        """Explicit param names qualified per instance; under `share:`, every learnable blob named."""
        params = [dict(spec) for spec in fields.get("param", ())]
        global_params = scope.module.global_params if scope.module else frozenset()
        for spec in params:
            if "name" in spec and scope.prefix and spec["name"] not in global_params:
                spec["name"] = scope.qualify(spec["name"])
        count = len(learnable_blobs(layer_type, fields, bottom_count))
        if scope.share is not None and count:
            layer = self._shared_layer(scope.share, layer_type, flat_name, entry)
            params += [{} for _ in range(count - len(params))]
            for index, spec in enumerate(params[:count]):
                spec.setdefault("name", self._shared_name(scope.share, layer_type, layer, index))
        if params:
            fields["param"] = params
        return fields

    def _shared_layer(self, share: Share, layer_type: str, flat_name: str, entry: LayerEntry) -> str:
        """The inner path of the first use's layer in this position (checking the types agree)."""
        layout = self.layouts.setdefault(share.key, [])
        position = share.seen[0]
        share.seen[0] += 1
        if position == len(layout):
            inner = flat_name[len(share.prefix):] if flat_name.startswith(share.prefix) else flat_name
            layout.append((inner, layer_type, entry.span))
            return inner
        if position > len(layout) or layout[position][1] != layer_type:
            first = layout[position] if position < len(layout) else None
            self.diags.error(entry.span, f"uses sharing '{share.key}' differ: this is learnable layer {position + 1} "
                             f"({layer_type}) but the first use has "
                             + (f"a layer of type {first[1]} there" if first else f"only {len(layout)}"),
                             notes=[Note(f"first use sharing '{share.key}'", first[2] if first else share.span)])
        return layout[min(position, len(layout) - 1)][0]

    def _shared_name(self, share: Share, layer_type: str, layer: str, index: int) -> str:
        names = BLOB_NAMES.get(layer_type, ())
        blob = names[index] if index < len(names) else str(index)
        default = f"{share.key}{self.separator}{layer}_{blob}"
        if share.template is None:
            return default
        env = {"key": share.key, "layer": layer, "blob": blob}
        return self.evaluator.text(share.template, "`share.name`", env) or default
