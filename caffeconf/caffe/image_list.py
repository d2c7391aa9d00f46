"""Caffe's image lists (ImageData's `source`, convert_imageset's LISTFILE): `path label` lines,
the last space separating the two, so that paths may hold spaces."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import CaffeconfError, Span
from ..files import read_bounded

MAX_LIST_BYTES = 1 << 30


def read_image_list(path: str | Path) -> list[tuple[str, int]]:
    """The (path, label) entries of a list file; OSError when it cannot be read, CaffeconfError
    for a line that is not `path label`."""
    return parse_list(decode_lines(read_bounded(path, MAX_LIST_BYTES), str(path)), str(path))


def decode_lines(data: bytes, source: str) -> list[str]:
    """The lines of a UTF-8 text file, an undecodable one refused at its line."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CaffeconfError.at(Span(source, line, 1), "not UTF-8 text (file names in a list must be UTF-8)") from None


def parse_list(lines: Iterable[str], source: str) -> list[tuple[str, int]]:
    """Caffe's image-list lines `path label`: the last space separates them, so paths may hold spaces."""
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, _, label = line.rstrip().rpartition(" ")
        if not name or not label.lstrip("-").isdigit():
            raise CaffeconfError.at(None, f"{source}:{number}: expected 'path label', got '{line}'")
        entries.append((name, int(label)))
    return entries
