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
def traced(write: Callable[[str], object]) -> Iterator[None]:
    """Within this block every pass writes what it produced to `write`."""
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


def _written(node: Node | None) -> str:
    return "-" if node is None else str(node.value) if isinstance(node, Scalar) else "..."


def _entry_line(entry: Entry) -> str:
    what = f"layer {_written(entry.name)} ({_written(entry.type)})" if isinstance(entry, LayerEntry) else \
        f"use {_written(entry.use)} as {_written(entry.name)}"
    marks = "".join(f" {key}" for key in ("repeat", "when") if getattr(entry, key) is not None)
    return f"{what}{marks} at {entry.span.line}:{entry.span.col}"


def _names(items) -> str:
    return ", ".join(item.name for item in items)


def _module_lines(module: ModuleDecl) -> list[str]:
    params = ", ".join(f"{p.name}: {p.type_text}" for p in module.params.values())
    head = f"module {module.name}({params}) [{_names(module.inputs)}] -> [{_names(module.outputs)}]"
    return [head] + [f"  {_entry_line(entry)}" for entry in module.entries]


def dump_surface(document: Document, library: Library) -> str:
    """Every module the config can use (its own and its imports'), then its layers: one line each."""
    lines = [line for unit in library.units.values() for module in unit.modules.values()
             for line in _module_lines(module)]
    return "\n".join(lines + ["layers"] + [f"  {_entry_line(entry)}" for entry in document.entries]) + "\n"


def dump_net(net: Net | None) -> str:
    return "(no net: errors stopped the pass)\n" if net is None else net.dump()


def dump_findings(found: list[Diagnostic]) -> str:
    return render_text(found) if found else "no problems\n"


def after_net(name: str, net: Net) -> None:
    """Report a pass that yields a net: the net, then what the verifier finds in it."""
    if _TRACE.get() is not None:
        after(name, net.dump)
        found = DiagnosticList()
        verify_net(net, found)
        after("verify", lambda: dump_findings(found.items))
