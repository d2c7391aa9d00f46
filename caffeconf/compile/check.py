"""Static checks over module declarations, before any instance is expanded:
unknown modules in `use:` (in every file of the library) and modules that use
themselves, directly or through others (`a -> b -> a`).
"""

from __future__ import annotations

from ..caffe.facts import layer_types
from ..errors import DiagnosticList, Note, Span, did_you_mean
from .library import Library, unit_key
from .tree import Scalar
from .syntax import Entry, ModuleDecl, ModuleUse


def _uses(entries: tuple[Entry, ...]) -> list[tuple[str, Span]]:
    """Module names used by plain `use: name` entries (templated names are checked per instance)."""
    nodes = [entry.use for entry in entries if isinstance(entry, ModuleUse)]
    return [(node.value, node.span) for node in nodes
            if isinstance(node, Scalar) and isinstance(node.value, str) and "${" not in node.value]


def unknown_module(diags: DiagnosticList, span: Span, name: str, library: Library, unit: str) -> None:
    """A `use:` of a module not visible from `unit`, with the likeliest fix as the hint."""
    hint = f"'{name}' is a Caffe layer type: write `type: {name}`" if name in layer_types() else None
    diags.error(span, f"unknown module '{name}'", hint=hint or did_you_mean(name, library.visible(unit)))


def check_modules(library: Library, main: str, top_entries: tuple[Entry, ...], diags: DiagnosticList) -> None:
    for key, unit in library.units.items():
        layer_lists = [m.entries for m in unit.modules.values()] + ([top_entries] if key == main else [])
        for layers in layer_lists:
            for name, span in _uses(layers):
                if library.lookup(name, key) is None:
                    unknown_module(diags, span, name, library, key)
    for cycle, span, first in find_cycles(library):
        diags.error(span, f"module '{cycle[0]}' uses itself: {' -> '.join(cycle)}",
                    notes=[Note(f"module '{cycle[0]}' declared here", first.span)])


def find_cycles(library: Library) -> list[tuple[list[str], Span, ModuleDecl]]:
    """Each cycle once: the chain of names, the span of the use that closes it, the module it returns to."""
    state: dict[int, str] = {}  # id(module) -> "active" | "done"
    cycles: list[tuple[list[str], Span, ModuleDecl]] = []

    def visit(module: ModuleDecl, path: list[ModuleDecl]) -> None:
        state[id(module)] = "active"
        for name, span in _uses(module.entries):
            used = library.lookup(name, unit_key(module.path))
            if used is None:
                continue
            if state.get(id(used)) == "active":
                loop = path[path.index(used):] + [used]
                cycles.append(([m.name for m in loop], span, used))
            elif id(used) not in state:
                visit(used, path + [used])
        state[id(module)] = "done"

    for unit in library.units.values():
        for module in unit.modules.values():
            if id(module) not in state:
                visit(module, [module])
    return cycles
