"""Open buffers -> the diagnostics `caffeconf validate` reports for each open net, by the file
each one is in, and which open nets an edit to any file concerns.

Every open document is checked as `validate` checks a file on disk, with the unsaved buffers read
instead of the disk. Each check records the files it read, so that an edit to an imported file
re-checks the open files that import it, and an error inside an imported file is shown there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Iterator

from ..commands.validate import file_diagnostics
from ..compile.library import NET_SUFFIXES
from ..compile.load import one_command
from ..compile.source import is_config, load_tree
from ..errors import CaffeconfError, Diagnostic, Span
from ..files import reading_buffers
from ..limits import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class Check:
    """One open net's check: what it reported, by absolute path, and every file it read."""

    by_file: dict[str, tuple[Diagnostic, ...]]
    reads: frozenset[str]


class Checks:
    """The open buffers (absolute path -> text) and the latest check of each."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.buffers: dict[str, str] = {}
        self.results: dict[str, Check] = {}
        self.parsed: dict[str, str] = {}  # the last text of each open config that parsed (for completion)

    def open(self, path: str, text: str) -> None:
        self.buffers[path] = text

    def close(self, path: str) -> set[str]:
        """Forget the buffer and its check; returns the files that check had findings for."""
        self.buffers.pop(path, None)
        self.parsed.pop(path, None)
        return self.forget(path)

    def forget(self, path: str) -> set[str]:
        """Forget the check of `path` (closed, or no longer a config); returns the files it had
        findings for."""
        check = self.results.pop(path, None)
        return set(check.by_file) if check else set()

    def concerned(self, path: str) -> list[str]:
        """The open nets to check again after `path` changed: itself, and those that read it."""
        return [root for root, text in self.buffers.items() if is_net(root, text)
                and (root == path or path in self.results.get(root, _NONE).reads)]

    def importers(self, path: str) -> tuple[str, ...]:
        """The open nets, other than `path` itself, whose latest check read `path`."""
        return tuple(root for root, check in self.results.items() if root != path and path in check.reads)

    def check(self, path: str) -> set[str]:
        """Check the open net `path` again; returns the files whose diagnostics may have changed."""
        before = set(self.results[path].by_file) if path in self.results else set()
        with self.reading() as reads:
            try:
                found = file_diagnostics(path, self.limits)
            except Exception as error:  # a bug of ours: said in the editor, as the CLI says it, not silence
                found = (Diagnostic(f"caffeconf: internal error: {type(error).__name__}: {error}; please report "
                                    "it with the file that caused it"),)
            if is_config(path) and _parses(path, self.limits):
                self.parsed[path] = self.buffers[path]
        by_file: dict[str, list[Diagnostic]] = {path: []}
        for diag in found:
            located = _absolute(diag)
            by_file.setdefault(located.span.path if located.span else path, []).append(located)
        self.results[path] = Check({name: tuple(diags) for name, diags in by_file.items()}, frozenset(reads))
        return before | set(by_file)

    @contextlib.contextmanager
    def reading(self, instead: dict[str, str] | None = None) -> Iterator[set[str]]:
        """A fresh command that reads the open buffers (and the texts `instead`, by path) in
        place of the disk; yields the files read."""
        encoded = {name: text.encode("utf-8") for name, text in {**self.buffers, **(instead or {})}.items()}
        with reading_buffers(encoded) as reads, one_command(fresh=True):
            yield reads

    def diagnostics(self, path: str) -> list[Diagnostic]:
        """What to show in file `path`: the union of every open net's findings there, each once."""
        return list(dict.fromkeys(diag for check in self.results.values() for diag in check.by_file.get(path, ())))


def _parses(path: str, limits: Limits) -> bool:
    """Whether the config at `path` parses (as the check just read it: the tree is cached)."""
    try:
        load_tree(path, limits)
    except CaffeconfError:
        return False
    return True


_NONE = Check({}, frozenset())
# A config says what it is in its first lines: its format version, or the schema modeline.
_CONFIG_MARK = re.compile(r"^caffeconf\s*[:=]|caffeconf\.schema\.json", re.MULTILINE)


def is_net(path: str, text: str) -> bool:
    """Whether an open document is checked: every prototxt, and the YAML and TOML files that are
    caffeconf configs, so that other YAML in the editor (CI workflows...) gets no diagnostics
    from us (a file that only an open config imports is still checked through it)."""
    return is_prototxt(path) or is_config(path) and _CONFIG_MARK.search(text) is not None


def is_prototxt(path: str) -> bool:
    """A Caffe text net by its suffix (any other file an editor hands over is none of ours)."""
    return path.lower().endswith(NET_SUFFIXES)


def _absolute(diag: Diagnostic) -> Diagnostic:
    """`diag` with every span's path absolute and normalised (`nets/../blocks.yaml` is one file)."""
    notes = tuple(dataclasses.replace(note, span=_absolute_span(note.span)) for note in diag.notes)
    return dataclasses.replace(diag, span=_absolute_span(diag.span), notes=notes)


def _absolute_span(span: Span | None) -> Span | None:
    return dataclasses.replace(span, path=os.path.abspath(span.path)) if span else None
