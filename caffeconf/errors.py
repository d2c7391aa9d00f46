"""The one user-facing error type, its diagnostics, and how they are rendered.

Raising and rendering are separate: code raises `CaffeconfError` holding one or
more `Diagnostic`s; the CLI renders them as text (compiler style) or JSON.
`InternalError` is for broken invariants, i.e. bugs, and is never rendered as a
user diagnostic.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence


@dataclass(frozen=True)
class Span:
    """A place in a source file; `line` and `col` are 1-based."""

    path: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    @classmethod
    def after(cls, path: str, prefix: str) -> "Span":
        """The place just after the text `prefix` of the file `path`."""
        return cls(path, prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1)


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None
    severity: str = "error"  # "error" or "warning"
    notes: tuple[Note, ...] = ()
    hint: str | None = None

    def with_note(self, note: Note) -> "Diagnostic":
        return Diagnostic(self.message, self.span, self.severity, self.notes + (note,), self.hint)


class CaffeconfError(Exception):
    """Bad input: carries every diagnostic found, each with its location."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(_headline(d) for d in self.diagnostics))

    @classmethod
    def at(cls, span: Span | None, message: str, *, notes: Iterable[Note] = (),
           hint: str | None = None) -> "CaffeconfError":
        return cls([Diagnostic(message, span, notes=tuple(notes), hint=hint)])


class InternalError(Exception):
    """A broken invariant inside caffeconf: a bug, not bad input."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is really close."""
    close = closest(name, candidates)
    return f"did you mean '{close}'?" if close else None


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` is most likely a typo of, or None when nothing is really close: a typo
    is a few edits away (one for a short name), not a shared suffix like `_param` (`bn_param` is
    not `mvn_param`)."""
    pool = list(candidates)
    close = [c for c in difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
             if _edits(_stem(name), _stem(c)) <= _allowed_edits(_stem(name)) or _extends(name, c)]
    if not close:  # a different case is always close
        close = [c for c in pool if c.lower() == name.lower()]
    return close[0] if close else None


def _stem(name: str) -> str:
    """A name without the suffix that many Caffe names share."""
    return name[:-len("_param")] if name.endswith("_param") and len(name) > len("_param") else name


def _extends(name: str, candidate: str) -> bool:
    """One name is the other with something added at the end (TRAINING, TRAIN)."""
    short, long = sorted((name.lower(), candidate.lower()), key=len)
    return len(short) >= 3 and long.startswith(short)


def _allowed_edits(stem: str) -> int:
    return 1 if len(stem) <= 5 else 2 if len(stem) <= 12 else 3


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap neighbours) from a to b, ignoring case."""
    a, b = a.lower(), b.lower()
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[len(b)]


MAX_ECHOED_NAME = 80  # characters of a quoted name shown in a message
MAX_ECHOED_LINE = 200  # characters of a source line shown under a message
ELLIPSIS = "\u2026"
# An opening quote follows no letter or digit (so the closing quote of one name does not open the next).
_QUOTED = re.compile(r"(?<!\w)'([^'\n]{%d,})'" % (MAX_ECHOED_NAME + 1))


def shorten_names(text: str) -> str:
    """`text` with each quoted name over MAX_ECHOED_NAME characters cut, so that a hostile 4 KB
    identifier is not echoed in full. File paths (in a folder that exists) are kept whole."""
    return _QUOTED.sub(lambda m: m[0] if _is_path(m[1]) else
                       f"'{m[1][:MAX_ECHOED_NAME - 1]}{ELLIPSIS}' ({len(m[1])} characters)", text)


def _is_path(text: str) -> bool:
    return len(text) <= 4096 and os.sep in text and os.path.isdir(os.path.dirname(text))


def _headline(diag: Diagnostic) -> str:
    where = f"{diag.span}: " if diag.span else ""
    return shorten_names(f"{where}{diag.severity}: {diag.message}")


class SourceLines:
    """Source text by path, read lazily; in-memory sources can be registered."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}

    def register(self, path: str, text: str) -> None:
        self._lines[path] = text.splitlines()

    def line(self, path: str, number: int) -> str | None:
        if path not in self._lines:
            self._lines[path] = _read_lines(path)
        lines = self._lines[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


SOURCES = SourceLines()
MAX_EXCERPT_FILE_BYTES = 64 * 1024 * 1024


def _read_lines(path: str) -> list[str] | None:
    """The lines of a regular file of a sane size, else None: an excerpt never blocks on a FIFO
    nor reads a huge file again."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_EXCERPT_FILE_BYTES:
            return None
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


_CONTROL_PICTURES = {code: 0x2400 + code for code in range(32)} | {0x7F: 0x2421}


def _excerpt(span: Span, sources: SourceLines) -> list[str]:
    text = sources.line(span.path, span.line)
    if text is None:
        return []
    # tabs as one space, other control characters as their Unicode pictures (a NUL as ␀):
    # one column each, so the caret stays aligned, and nothing reaches the terminal raw
    text = text.expandtabs(1).translate(_CONTROL_PICTURES)
    width = 1
    if span.end_line == span.line and span.end_col and span.end_col > span.col:
        width = span.end_col - span.col
    text, caret = _window(text, span.col - 1)
    width = max(1, min(width, len(text) - caret))
    return [f"    {text}", "    " + " " * caret + "^" + "~" * (width - 1)]


def _window(text: str, caret: int) -> tuple[str, int]:
    """At most MAX_ECHOED_LINE characters of `text` around column `caret` (0-based), an ellipsis
    marking each cut end, and the caret's column in what is shown."""
    if len(text) <= MAX_ECHOED_LINE:
        return text, caret
    start = min(max(0, caret - MAX_ECHOED_LINE // 4), len(text) - MAX_ECHOED_LINE)
    end = start + MAX_ECHOED_LINE
    head, tail = (ELLIPSIS if start > 0 else ""), (ELLIPSIS if end < len(text) else "")
    return head + text[start:end] + tail, caret - start + len(head)


def render_text(diagnostics: Iterable[Diagnostic], sources: SourceLines = SOURCES) -> str:
    """Compiler-style text: headline, source line with caret, hint, notes."""
    out: list[str] = []
    for diag in diagnostics:
        out.append(_headline(diag))
        if diag.span:
            out.extend(_excerpt(diag.span, sources))
        if diag.hint:
            out.append(shorten_names(f"  hint: {diag.hint}"))
        for note in diag.notes:
            where = f"{note.span}: " if note.span else ""
            out.append(shorten_names(f"{where}note: {note.message}"))
    return "\n".join(out) + ("\n" if out else "")


def _span_json(span: Span | None) -> dict | None:
    if span is None:
        return None
    return {"path": span.path, "line": span.line, "column": span.col,
            "end_line": span.end_line, "end_column": span.end_col}


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """Machine-readable diagnostics for tools and editors."""
    items = [
        {
            "severity": d.severity,
            "message": d.message,
            "location": _span_json(d.span),
            "hint": d.hint,
            "notes": [{"message": n.message, "location": _span_json(n.span)} for n in d.notes],
        }
        for d in diagnostics
    ]
    return json.dumps({"diagnostics": items}, indent=2) + "\n"


def merge_spread(groups: Sequence[Sequence[Diagnostic]], plural: str, describe: Callable[[list[int]], str],
                 span: Span | None = None,
                 key: Callable[[Diagnostic], Hashable] = lambda d: (d.span, d.severity)) -> list[Diagnostic]:
    """One diagnostic per problem of `groups` (what each repetition, use or state found): the first
    found, with a note naming where it holds, e.g. "in all 13 repetitions (i = 0…12)" or "in 1 of
    2 states (phase TEST)"; `describe` names the indices of the groups it holds in."""
    found: dict[Hashable, tuple[Diagnostic, list[int], set[str]]] = {}
    for index, group in enumerate(groups):
        for diag in group:
            _, indices, messages = found.setdefault(key(diag), (diag, [], set()))
            if not indices or indices[-1] != index:  # groups come in order: one look is enough
                indices.append(index)
            messages.add(diag.message)
    merged = []
    for diag, indices, messages in found.values():
        held = f"all {len(groups)}" if len(indices) == len(groups) else f"{len(indices)} of {len(groups)}"
        shown = f"; the message is for {describe(indices[:1])}" if len(messages) > 1 else ""
        note = Note(f"in {held} {plural} ({describe(indices)}){shown}", span)
        merged.append(diag.with_note(note))
    return merged


class DiagnosticList:
    """Collects diagnostics so that one run reports every problem (each once)."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple] = set()
        self.found_again: list[tuple] = []  # the key of each diagnostic added again (and dropped), in order

    @staticmethod
    def key(diag: Diagnostic) -> tuple:
        """What makes two diagnostics one: the same message at the same place."""
        return diag.span, diag.message, diag.severity

    def add(self, diag: Diagnostic) -> None:
        key = self.key(diag)
        if key in self._seen:
            self.found_again.append(key)
        else:
            self._seen.add(key)
            self.items.append(diag)

    def remove(self, key: tuple) -> None:
        """Drop the diagnostic whose key is `key` (merged into another); it stays seen."""
        self.items = [diag for diag in self.items if self.key(diag) != key]

    def annotate(self, key: tuple, note: Note) -> None:
        """Add `note` to the diagnostic whose key is `key`."""
        for index, diag in enumerate(self.items):
            if self.key(diag) == key:
                self.items[index] = diag.with_note(note)

    def error(self, span: Span | None, message: str, *, notes: Iterable[Note] = (),
              hint: str | None = None) -> None:
        self.add(Diagnostic(message, span, notes=tuple(notes), hint=hint))

    def warning(self, span: Span | None, message: str, *, notes: Iterable[Note] = (),
                hint: str | None = None) -> None:
        self.add(Diagnostic(message, span, "warning", tuple(notes), hint))

    MAX_CONTEXT_NOTES = 4

    def annotate_since(self, start: int, note: Note) -> None:
        """Add `note` (which module use was being expanded) to the diagnostics found since `start`;
        past a few levels, one closing note stands for the outer ones."""
        for index in range(start, len(self.items)):
            diag = self.items[index]
            context = sum(1 for n in diag.notes if n.message.startswith("in module "))
            if context > self.MAX_CONTEXT_NOTES:
                continue
            added = note if context < self.MAX_CONTEXT_NOTES else Note("in module uses further out (not listed)")
            self.items[index] = diag.with_note(added)

    def take_since(self, start: int) -> list[Diagnostic]:
        """Remove and return the diagnostics added since `start` (to be merged and added again, or of
        a step that is undone)."""
        taken = self.items[start:]
        del self.items[start:]
        self._seen.difference_update(self.key(d) for d in taken)
        return taken

    def extend(self, error: CaffeconfError) -> None:
        for diag in error.diagnostics:
            self.add(diag)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """In source order (diagnostics without a place last), as a reader goes through the file."""
        return sorted(self.items, key=lambda d: (d.span is None, d.span.path if d.span else "",
                                                 d.span.line if d.span else 0, d.span.col if d.span else 0))

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise CaffeconfError(self.items)
