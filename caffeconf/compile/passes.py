"""The compiler's passes, watched: with a trace on (`caffeconf compile --debug-passes`), each pass
writes its name and the IR it leaves — the surface tree, the flat net, the verifier's findings."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from ..errors import Diagnostic, DiagnosticList, render_text
from ..ir import Net
from .library import Library
from .syntax import Document, Entry, LayerEntry, ModuleDecl
from .tree import Node, Scalar
from .verify import verify_net

_TRACE: ContextVar[Callable[[str], object] | None] = ContextVar("caffeconf_trace", default=None)


@contextmanager
def traced(write: Callable[[str], object] | None) -> Iterator[None]:
    """Within this block every pass writes what it produced to `write` (None: nothing is traced)."""
    token = _TRACE.set(write)
    try:
        yield
    finally:
        _TRACE.reset(token)


def after(name: str, render: Callable[[], str]) -> None:
    """Report pass `name`'s result, rendered only when a trace is on."""
    write = _TRACE.get()
    if write is not None:
        write(f"=== after {name} ===\n{render()}")


def after_net(name: str, net: Net) -> None:
    """Report a pass that yields a net: the net, then what the verifier finds in it."""
    if _TRACE.get() is not None:
        after(name, net.dump)
        found = DiagnosticList()
        verify_net(net, found)
        after("verify", lambda: findings(found.items))


def findings(found: list[Diagnostic]) -> str:
    return render_text(found) if found else "no problems\n"


def _written(node: Node | None) -> str:
    return "-" if node is None else str(node.value) if isinstance(node, Scalar) else "..."


def _entry_line(entry: Entry) -> str:
    what = f"layer {_written(entry.name)} ({_written(entry.type)})" if isinstance(entry, LayerEntry) else \
        f"use {_written(entry.use)} as {_written(entry.name)}"
    marks = "".join(f" {key}" for key in ("repeat", "when") if getattr(entry, key) is not None)
    return f"  {what}{marks} at {entry.span.line}:{entry.span.col}"


def _module_lines(module: ModuleDecl) -> list[str]:
    params = ", ".join(f"{p.name}: {p.type_text}" for p in module.params.values())
    ports = [", ".join(port.name for port in ports) for ports in (module.inputs, module.outputs)]
    return [f"module {module.name}({params}) [{ports[0]}] -> [{ports[1]}]", *map(_entry_line, module.entries)]


def surface(document: Document, library: Library) -> str:
    """Every module the config can use (its own and its imports'), then its layers: one line each."""
    lines = [line for unit in library.units.values() for module in unit.modules.values()
             for line in _module_lines(module)]
    return "\n".join(lines + ["layers", *map(_entry_line, document.entries)]) + "\n"
