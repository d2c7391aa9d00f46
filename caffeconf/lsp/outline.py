"""An open config -> its outline (modules, and the layers and uses in each and at the top level),
an open prototxt -> its layers, and LSP diagnostics with a "did you mean" hint -> the quick fix that writes the suggestion."""

from __future__ import annotations

import re

from lsprotocol import types

from ..caffe.prototxt import outline_text
from ..compile.tree import Map, Node, Scalar, Seq
from ..errors import Span
from .convert import SOURCE, span_range, whole_range

Symbol = types.DocumentSymbol
_DID_YOU_MEAN = re.compile(r"^hint: did you mean '([^'\n]+)'\?$", re.MULTILINE)
_NAME = re.compile(r"[\w.$/-]+")  # what a hint replaces: a name, never a whole value or entry


def outline(root: Node) -> list[Symbol]:
    if not isinstance(root, Map):
        return []
    symbols = []
    modules = root.get("modules")
    if isinstance(modules, Map):
        for name, module in modules.values.items():
            layers = module.get("layers") if isinstance(module, Map) else None
            symbols.append(Symbol(name, types.SymbolKind.Module, whole_range(module.span),
                                  span_range(modules.keys[name]), detail="module", children=_entries(layers)))
    return symbols + _entries(root.get("layers"))


def _entries(layers: Node | None) -> list[Symbol]:
    if not isinstance(layers, Seq):
        return []
    found = []
    for entry in layers.items:
        name = entry.get("name") if isinstance(entry, Map) else None
        if not isinstance(name, Scalar) or name.value is None:
            continue
        use, kind = entry.get("use"), entry.get("type")
        detail = f"use {use.value}" if isinstance(use, Scalar) else str(kind.value) if isinstance(kind, Scalar) else ""
        symbol_kind = types.SymbolKind.Object if isinstance(use, Scalar) else types.SymbolKind.Function
        found.append(Symbol(str(name.value), symbol_kind, whole_range(entry.span), span_range(name.span), detail=detail))
    return found


def proto_outline(path: str, text: str) -> list[Symbol]:
    """A prototxt's layers by name (where each `layer {` block starts)."""
    return [Symbol(field.layer_name or "(no name)", types.SymbolKind.Function, where, where)
            for field in outline_text(text).fields if field.name in ("layer", "layers")
            for where in [span_range(Span(path, field.line, field.col, field.line, field.col + len(field.name)))]]


def did_you_mean_fix(uri: str, written: str, diagnostic: types.Diagnostic) -> types.CodeAction | None:
    """Replace `written` (the text under one of our diagnostics) by what its hint suggests."""
    hint = _DID_YOU_MEAN.search(diagnostic.message) if diagnostic.source == SOURCE else None
    if hint is None or not _NAME.fullmatch(written) or diagnostic.range.start.line != diagnostic.range.end.line:
        return None
    edit = types.WorkspaceEdit(changes={uri: [types.TextEdit(diagnostic.range, hint.group(1))]})
    return types.CodeAction(f"Change '{written}' to '{hint.group(1)}'", kind=types.CodeActionKind.QuickFix,
                            diagnostics=[diagnostic], edit=edit, is_preferred=True)
