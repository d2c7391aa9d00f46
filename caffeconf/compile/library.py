"""A config and everything it imports -> the modules visible from each file.

`imports: {blocks: blocks.yaml}` makes `blocks.<module>` usable in the importing file; an
imported file's own modules and imports stay visible inside it under their own names.
A Caffe prototxt can be imported too: it becomes one module, named by the namespace, whose
inputs are the tops of its Input layers (or legacy `input` fields) and whose outputs are the
tops nothing inside consumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import CaffeconfError, Diagnostic, DiagnosticList, Note, Span
from ..ir import Net
from ..limits import Limits
from .tree import Map, Node, Scalar, Seq
from .source import CONFIG_SUFFIXES, is_config, load_tree
from ..caffe.netfile import read_net_file
from .syntax import Document, ModuleDecl, Port

@dataclass
class Unit:
    """One source file's namespace: its own modules and the files it imports."""

    path: str
    modules: dict[str, ModuleDecl]
    imports: dict[str, str] = field(default_factory=dict)  # namespace -> unit key
    net_module: ModuleDecl | None = None  # set for an imported prototxt: the file is this one module


@dataclass
class Library:
    units: dict[str, Unit] = field(default_factory=dict)

    def lookup(self, name: str, unit: str) -> ModuleDecl | None:
        """The module `name` (possibly `namespace.module`) as seen from file `unit`."""
        here = self.units[unit]
        if name in here.modules:
            return here.modules[name]
        namespace, _, rest = name.partition(".")
        target = here.imports.get(namespace)
        if target is None:
            return None
        if not rest:  # a prototxt import is itself the module
            return self.units[target].net_module
        return self.lookup(rest, target)

    def visible(self, unit: str) -> list[str]:
        """Names usable from `unit`, for "did you mean"."""
        here = self.units[unit]
        names = list(here.modules)
        for namespace, target in here.imports.items():
            if self.units[target].net_module is not None:
                names.append(namespace)
            names += [f"{namespace}.{name}" for name in self.units[target].modules]
        return names


def unit_key(path: str) -> str:
    return os.path.normpath(path)


def load_library(document: Document, parse: Callable[[Node, str], Document], limits: Limits,
                 diags: DiagnosticList) -> Library:
    """The main document's unit and, recursively, every unit it imports."""
    library = Library()
    _add_unit(library, document, parse, limits, diags, chain=(unit_key(document.path),))
    return library


def _add_unit(library: Library, document: Document, parse, limits: Limits, diags: DiagnosticList,
              chain: tuple[str, ...]) -> str:
    key = unit_key(document.path)
    unit = Unit(document.path, dict(document.modules))
    library.units[key] = unit
    node = document.imports
    if node is None:
        return key
    if not isinstance(node, Map):
        diags.error(node.span, "`imports` must map namespaces to relative file paths")
        return key
    for namespace, value in node.values.items():
        target = _import(library, namespace, node.keys[namespace], value, document, parse, limits, diags, chain)
        if target is not None:
            unit.imports[namespace] = target
    return key


def _import(library: Library, namespace: str, key_span: Span, value: Node, document: Document, parse,
            limits: Limits, diags: DiagnosticList, chain: tuple[str, ...]) -> str | None:
    if not namespace.isidentifier():
        diags.error(key_span, f"import namespace '{namespace}' is not an identifier")
        return None
    if namespace in document.modules:
        diags.error(key_span, f"import namespace '{namespace}' hides the module of that name")
        return None
    if not (isinstance(value, Scalar) and isinstance(value.value, str) and value.value):
        diags.error(value.span, f"import '{namespace}' must be a relative file path")
        return None
    path = os.path.join(os.path.dirname(document.path), value.value)
    refusal = import_refusal(value, path, chain[0], limits)
    if refusal is not None:
        diags.add(refusal)
        return None
    key = unit_key(path)
    if key in chain:
        cycle = " -> ".join([*(os.path.basename(k) for k in chain[chain.index(key):]), os.path.basename(key)])
        diags.error(value.span, f"import cycle: {cycle}")
        return None
    if len(chain) > limits.max_import_depth:
        diags.error(value.span, f"imports nest deeper than {limits.max_import_depth} files")
        return None
    if key in library.units:
        return key
    try:
        if is_config(path):
            imported = parse(load_tree(path, limits), path)
            return _add_unit(library, imported, parse, limits, diags, chain + (key,))
        library.units[key] = Unit(path, {}, net_module=module_from_net(namespace, read_net_file(path).net(), path))
        return key
    except CaffeconfError as error:
        located = [d for d in error.diagnostics if d.span is not None]
        for diag in located:  # problems inside the imported file, at their own places: the cause, once
            diags.add(diag.with_note(Note(f"in '{value.value}', imported here", value.span)))
        if not located:
            diags.error(value.span, f"cannot import '{value.value}'", notes=[Note(error.diagnostics[0].message)])
        return None


NET_SUFFIXES = (".prototxt", ".pbtxt")
_OUTSIDE_HINT = ("imports are relative paths that stay inside the config's folder or the current directory; "
                 "--allow-absolute-imports allows others")


def import_refusal(value: Scalar, path: str, root: str, limits: Limits) -> Diagnostic | None:
    """Why the import `value` (the file `path`) is refused, or None: it must name a config or a
    prototxt by suffix, so no other file is ever read and echoed in an error, and unless allowed
    it must be relative and stay inside the folder of the root config `root` or the current
    directory (the user's project: `../blocks.yaml` beside a nets folder), symlinks followed."""
    if "\0" in path:
        return Diagnostic(f"import {value.value!r}: a file path cannot hold a NUL byte", value.span)
    text, real, suffixes = value.value, os.path.realpath(path), CONFIG_SUFFIXES + NET_SUFFIXES
    named = f"'{text}'" if real == os.path.abspath(path) else f"'{text}' (a link to '{real}')"
    if not all(p.lower().endswith(suffixes) for p in (path, real)):
        return Diagnostic(f"import {named} has no config or prototxt suffix ({', '.join(suffixes)}): not read",
                          value.span)
    if limits.allow_absolute_imports:
        return None
    if os.path.isabs(text):
        return Diagnostic(f"import '{text}' is an absolute path", value.span, hint=_OUTSIDE_HINT)
    folders = {os.path.realpath(os.path.dirname(root) or "."), os.path.realpath(".")}
    if not any(os.path.commonpath([folder, real]) == folder for folder in folders):
        return Diagnostic(f"import {named} leads outside the folder of {os.path.basename(root)} "
                          "and the current directory", value.span, hint=_OUTSIDE_HINT)
    return None


def module_from_net(name: str, net: Net, path: str) -> ModuleDecl:
    """A prototxt as a module: Input tops are its inputs, tops nothing consumes its outputs."""
    inputs = [top for layer in net.layers if layer.type == "Input" for top in layer.tops]
    inputs += list(net.fields.get("input", ()))
    body = [layer for layer in net.layers if layer.type != "Input"]
    consumed = {bottom for layer in body for bottom in layer.bottoms}
    outputs = list(dict.fromkeys(top for layer in body for top in layer.tops if top not in consumed))
    span = Span(path, 1, 1)
    entries = tuple(located({"name": layer.name, "type": layer.type, "bottom": list(layer.bottoms),
                             "top": list(layer.tops), **layer.fields}, layer.origin.span if layer.origin else span)
                    for layer in body)
    return ModuleDecl(name=name, span=span, path=path, params={},
                      inputs=tuple(_port(n, span) for n in inputs), outputs=tuple(_port(n, span) for n in outputs),
                      layers=entries)


def _port(name: str, span: Span) -> Port:
    return Port(name, span, Scalar(_escaped(name), span))


def _escaped(value: Any) -> Any:
    """Plain text from a prototxt is never a template."""
    return value.replace("${", "$${") if isinstance(value, str) else value


def located(data: Any, span: Span) -> Node:
    """Plain data as a located tree, every node at `span`."""
    if isinstance(data, dict):
        return Map({k: located(v, span) for k, v in data.items()}, {k: span for k in data}, span)
    if isinstance(data, list):
        return Seq(tuple(located(v, span) for v in data), span)
    if isinstance(data, bytes):
        data = data.decode("latin-1")
    return Scalar(_escaped(data), span)

