"""A net file (prototxt text or binary NetParameter, V0/V1/V2) -> upgraded message and flat Net.

One read of the bytes and one pass of our tokenizer: the outline made from that pass places
the upgrade's errors and every layer's origin, so nothing opens the file again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..ir import Net
from ..errors import CaffeconfError, Diagnostic, Span
from . import messages, prototxt, serde, upgrade
from .facts import looks_like_solver
from .names import unknown_names


class SolverGiven(CaffeconfError):
    """A net was asked for, but the file holds a solver: the error a command that reads nets
    reports; `validate` and `diff`, which take solvers too, use `solver` (upgraded) instead."""

    def __init__(self, source: str, solver: messages.SolverParameter, outline: prototxt.Outline):
        first = outline.fields[0]  # a solver has fields: that is how it was recognised
        super().__init__([Diagnostic(f"{source} holds a solver (SolverParameter), not a net",
                                     Span(source, first.line, first.col),
                                     hint="give the net it names in `net:`, or train it with `caffeconf train`")])
        self.source, self.solver, self.outline = source, solver, outline


@dataclass(frozen=True)
class NetFile:
    source: str
    message: messages.NetParameter  # upgraded to V2
    outline: prototxt.Outline | None  # None for a binary file
    report: upgrade.UpgradeReport

    def net(self) -> Net:
        # a binary file has no outline, and no positions to look for in it
        return serde.net_from_proto(self.message, self.source if self.outline else None, self.outline)


def read_net_file(path: str | Path) -> NetFile:
    data = prototxt.read_bytes(path)
    outline = prototxt.outline_text(data.decode("utf-8")) if prototxt.looks_like_text(data) else None
    if outline is not None and looks_like_solver({f.name for f in outline.fields}):
        solver = prototxt.decode(data, str(path), messages.SolverParameter())
        raise SolverGiven(str(path), upgrade.upgrade_solver(solver, source=str(path)), outline)
    return net_file_from_bytes(data, str(path), outline)


def net_file_from_bytes(data: bytes, source: str, outline: prototxt.Outline | None) -> NetFile:
    """The net in `data` read from `source`, with the outline of its text (None when binary)."""
    try:
        original = prototxt.decode(data, source, messages.NetParameter())
    except CaffeconfError:
        if outline is not None:  # report every unknown name, not only protobuf's first
            problems = unknown_names(prototxt.tokens(data.decode("utf-8")), source,
                                     messages.descriptor("NetParameter"), check_types=False)
            if problems:
                raise CaffeconfError(problems) from None
        raise
    message, report = upgrade.upgrade_net_with_report(original, where=upgrade.Locator(source, outline))
    return NetFile(source, message, outline, report)
