"""Problems found in several written uses of one module -> one diagnostic that names them all,
e.g. "in all 3 uses of module block (b1, b2, b3)" (the note format of repetitions and states).

The DiagnosticList keeps the first report of a problem; the uses after it find it again. A use
written once but expanded many times (in a `repeat:`, or inside another module's uses) counts
once: its repetitions have their own note, and the outer module its own uses."""

from __future__ import annotations

from ..errors import DiagnosticList, Note, Span
from .syntax import ModuleDecl


class UseFindings:
    def __init__(self, diags: DiagnosticList):
        self.diags = diags
        self.uses: dict[int, tuple[ModuleDecl, dict[Span, str]]] = {}  # module -> its written uses' first instances
        self.hits: dict[tuple[int, tuple], dict[Span, str]] = {}  # (module, problem) -> the uses finding it

    def start(self) -> tuple[int, int]:
        """A mark before one use's body is expanded."""
        return len(self.diags.items), len(self.diags.found_again)

    def record(self, module: ModuleDecl, instance: str, use_span: Span, start: tuple[int, int]) -> None:
        """The problems the body of this use found since `start`, new or found again."""
        self.uses.setdefault(id(module), (module, {}))[1].setdefault(use_span, instance)
        new, again = start
        keys = [self.diags.key(d) for d in self.diags.items[new:]] + self.diags.found_again[again:]
        for key in keys:
            self.hits.setdefault((id(module), key), {}).setdefault(use_span, instance)

    def annotate(self) -> None:
        """A note on each problem found in more than one written use of its module."""
        for (module_id, key), found_in in self.hits.items():
            module, uses = self.uses[module_id]
            if len(found_in) < 2:
                continue
            held = f"all {len(uses)}" if len(found_in) == len(uses) else f"{len(found_in)} of {len(uses)}"
            self.diags.annotate(key, Note(f"in {held} uses of module {module.name} ({', '.join(found_in.values())})",
                                          module.span))
