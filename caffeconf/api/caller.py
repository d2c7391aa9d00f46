"""The Python line that called into caffeconf -> a `Span`, so that errors from the API and the
builder point at the user's code as errors from a config point at its YAML."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

from ..errors import Span

PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep


def caller_span() -> Span:
    """Where the innermost frame outside the caffeconf package is (1-based line and column)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(PACKAGE):
        frame = frame.f_back
    line, col = frame.f_lineno, 1
    positions = _positions(frame)
    if positions is not None and positions[0] == line and positions[2] is not None:
        col = positions[2] + 1
    return Span(frame.f_code.co_filename, line, col)


def _positions(frame) -> tuple | None:
    """(line, end line, column, end column) of the instruction running in `frame` (Python 3.11+)."""
    if not hasattr(frame.f_code, "co_positions"):
        return None
    return next(itertools.islice(frame.f_code.co_positions(), frame.f_lasti // 2, None), None)
