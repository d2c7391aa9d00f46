"""A config's `caffe_proto:` header -> the dialect its fields are checked in.

`caffe_proto: path/to/caffe.proto` (relative to the config) names a fork's caffe.proto; the
config, and every file it imports, is then read in that dialect. An imported file may name
the same proto (by content) or none."""

from __future__ import annotations

from pathlib import Path

from ..caffe.dialect import adopt, load_dialect
from ..errors import CaffeconfError, DiagnosticList
from .tree import Map, Node, Scalar

HEADER_KEY = "caffe_proto"


def adopt_config_proto(tree: Node, source: str, diags: DiagnosticList) -> None:
    """Make the proto that `tree`'s header names the dialect in force (problems go to `diags`)."""
    node = tree.get(HEADER_KEY) if isinstance(tree, Map) else None
    if node is None:
        return
    if not (isinstance(node, Scalar) and isinstance(node.value, str) and node.value):
        diags.error(node.span, f"`{HEADER_KEY}` must be the path of a caffe.proto, relative to this config")
        return
    try:
        adopt(load_dialect(Path(source).parent / node.value, at=node.span), node.span, f"`{HEADER_KEY}`")
    except CaffeconfError as error:
        diags.extend(error)
