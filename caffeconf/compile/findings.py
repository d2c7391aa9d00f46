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
        """One diagnostic, with a note, for each place (in one module) where more than one written
        use of the module found a problem; the message may differ by use (it names the instance's
        blobs), then it is the first use's."""
        places: dict[tuple, dict[Span, tuple[str, tuple]]] = {}  # (module, span, severity) -> use -> (instance, key)
        for (module_id, key), found_in in self.hits.items():
            place = places.setdefault((module_id, key[0], key[2]), {})
            for use_span, instance in found_in.items():
                place.setdefault(use_span, (instance, key))
        for (module_id, _, _), found_in in places.items():
            if len(found_in) > 1:
                self._merge(*self.uses[module_id], list(found_in.values()))

    def _merge(self, module: ModuleDecl, uses: dict[Span, str], found_in: list[tuple[str, tuple]]) -> None:
        keys = list(dict.fromkeys(key for _, key in found_in))
        held = f"all {len(uses)}" if len(found_in) == len(uses) else f"{len(found_in)} of {len(uses)}"
        shown = f"; the message is for {found_in[0][0]}" if len(keys) > 1 else ""
        self.diags.annotate(keys[0], Note(f"in {held} uses of module {module.name} "
                                          f"({', '.join(instance for instance, _ in found_in)}){shown}", module.span))
        for key in keys[1:]:
            self.diags.remove(key)
