"""Static checks over module declarations, before any instance is expanded:
unknown modules in `use:` and modules that use themselves (`a -> b -> a`).
"""

from __future__ import annotations

from .errors import DiagnosticList, Note, Span, did_you_mean
from .load import Map, Scalar
from .syntax import ModuleDecl


def _uses(layers: tuple[Map, ...]) -> list[tuple[str, Span]]:
    """Module names used by plain `use: name` entries (templated names are checked per instance)."""
    found = []
    for entry in layers:
        node = entry.get("use")
        if isinstance(node, Scalar) and isinstance(node.value, str) and "${" not in node.value:
            found.append((node.value, node.span))
    return found


def check_modules(modules: dict[str, ModuleDecl], top_layers: tuple[Map, ...], diags: DiagnosticList) -> None:
    for layers in [top_layers] + [m.layers for m in modules.values()]:
        for name, span in _uses(layers):
            if name not in modules:
                diags.error(span, f"unknown module '{name}'", hint=did_you_mean(name, modules))
    for cycle, span in find_cycles(modules):
        diags.error(span, f"module '{cycle[0]}' uses itself: {' -> '.join(cycle)}",
                    notes=[Note(f"module '{cycle[0]}' declared here", modules[cycle[0]].span)])


def find_cycles(modules: dict[str, ModuleDecl]) -> list[tuple[list[str], Span]]:
    """Each cycle once, as the chain of names and the span of the use that closes it."""
    state: dict[str, str] = {}  # name -> "active" | "done"
    cycles: list[tuple[list[str], Span]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "active"
        for used, span in _uses(modules[name].layers):
            if used not in modules:
                continue
            if state.get(used) == "active":
                cycles.append((path[path.index(used):] + [used], span))
            elif used not in state:
                visit(used, path + [used])
        state[name] = "done"

    for name in modules:
        if name not in state:
            visit(name, [name])
    return cycles
