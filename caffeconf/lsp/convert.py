"""caffeconf's spans and diagnostics -> LSP ranges and diagnostics (and LSP positions back).

Spans are 1-based in code points; LSP positions are 0-based in UTF-16 code units (the encoding
every client supports), so columns are converted on the line's own text.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.uris import from_fs_path

from ..errors import SOURCES, Diagnostic, Span, shorten_names

SEVERITIES = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
SOURCE = "caffeconf"


def utf16_column(text: str, col: int) -> int:
    """The LSP character of 1-based code point column `col` in the line `text`."""
    head = text[:col - 1]
    return len(head.encode("utf-16-le")) // 2 + max(0, col - 1 - len(head))


def code_point_column(text: str, character: int) -> int:
    """The 1-based code point column of LSP character `character` in the line `text`."""
    units = 0
    for index, char in enumerate(text):
        if units >= character:
            return index + 1
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text) + 1 + max(0, character - units)


def _position(path: str, line: int, col: int) -> types.Position:
    return types.Position(line - 1, utf16_column(SOURCES.line(path, line) or "", col))


def span_range(span: Span | None) -> types.Range:
    """What `validate` underlines: the span when it ends on its own line, else the one character
    its caret marks (a whole layer is not highlighted); no span: the start of the file."""
    if span is None:
        return types.Range(types.Position(0, 0), types.Position(0, 0))
    one_line = span.end_line == span.line and span.end_col is not None and span.end_col > span.col
    end_col = span.end_col if one_line else span.col + 1
    return types.Range(_position(span.path, span.line, span.col), _position(span.path, span.line, end_col))


def whole_range(span: Span) -> types.Range:
    """All that a span covers, over several lines too (an outline's entry)."""
    if span.end_line is None or span.end_col is None:
        return span_range(span)
    return types.Range(_position(span.path, span.line, span.col), _position(span.path, span.end_line, span.end_col))


def lsp_diagnostic(diag: Diagnostic) -> types.Diagnostic:
    """`validate`'s headline message, with its hint and its place-less notes as further lines; the
    notes that have a place become related information."""
    lines = [diag.message] + ([f"hint: {diag.hint}"] if diag.hint else [])
    lines += [f"note: {note.message}" for note in diag.notes if note.span is None]
    related = [types.DiagnosticRelatedInformation(types.Location(from_fs_path(note.span.path), span_range(note.span)),
                                                  shorten_names(note.message))
               for note in diag.notes if note.span is not None]
    return types.Diagnostic(span_range(diag.span), shorten_names("\n".join(lines)), SEVERITIES[diag.severity],
                            source=SOURCE, related_information=related or None)
