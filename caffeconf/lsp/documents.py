"""An open config (read through the buffers) -> its located tree, its declarations and the
modules visible from it: what hover, definition and completion look things up in; and which
flat layers of a compiled net an entry wrote."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..compile.compiler import load_sources
from ..compile.library import Library, unit_key
from ..compile.source import is_config, load_tree
from ..compile.syntax import Document, ModuleDecl
from ..compile.tree import Node
from ..errors import CaffeconfError, DiagnosticList, Span
from ..ir import Layer
from ..limits import Limits
from .places import Place, place_at


@dataclass(frozen=True)
class Config:
    root: Node
    document: Document
    library: Library

    def module(self, name: str) -> ModuleDecl | None:
        """The module `name` (`namespace.module` for an imported one) as this file sees it."""
        return self.library.lookup(name, unit_key(self.document.path))

    def place(self, line: int, col: int) -> Place:
        return place_at(self.root, line, col)

    def entry_module(self, place: Place) -> ModuleDecl | None:
        """The module that the layer entry around `place` uses, if it uses one."""
        inside = place.within_entry()
        use = inside[0].get("use") if inside else None
        return self.module(use.value) if use is not None and isinstance(use.value, str) else None


def read_config(path: str, limits: Limits) -> Config | None:
    """The config at `path` as far as it parses (None for a prototxt or a file that does not
    parse); call it inside `Checks.reading()` so that unsaved buffers count."""
    if not is_config(path):
        return None
    try:
        root = load_tree(path, limits)
        document, library = load_sources(path, limits, DiagnosticList())
    except CaffeconfError:
        return None
    return Config(root, document, library)


def written_by(layer: Layer, span: Span, uses: bool = False) -> bool:
    """Whether the entry at `span` wrote the flat `layer` (or, with `uses`, is a module use
    around it); paths compare as files (`nets/../blocks.yaml` is `blocks.yaml`)."""
    if layer.origin is None:
        return False
    spans = (layer.origin.span, *(use.span for use in layer.origin.uses)) if uses else (layer.origin.span,)
    return file_place(span) in {file_place(other) for other in spans}


def file_place(span: Span) -> tuple:
    return os.path.abspath(span.path), span.line, span.col
