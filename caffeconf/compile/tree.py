"""The located tree that YAML and TOML sources both parse into: every node keeps its Span (and the
`Sentinel` markers later stages pass where there is no value)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ..errors import CaffeconfError, Note, Span


@dataclass(frozen=True, eq=False)
class Scalar:
    value: Any  # str, int, float, bool or None
    span: Span
    quoted: bool = False
    evaluated: bool = False  # a value computed from a template: never a template itself


@dataclass(frozen=True, eq=False)
class Seq:
    items: tuple["Node", ...]
    span: Span


@dataclass(frozen=True, eq=False)
class Map:
    values: dict[str, "Node"]
    keys: dict[str, Span]  # where each key is written
    span: Span

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values


Node = Union[Scalar, Seq, Map]


class Sentinel:
    """A value that stands for no value (failed, missing, unknown): compared by identity, shown by name."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def opened_syntax_error(problem: str, opened: str, opener: Span, gave_up: Span, text: str) -> CaffeconfError:
    """A YAML or TOML syntax error inside a bracket or string (`opened` names which): where the parser
    gave up past the line the opening is on, or at its end, the opening is left unclosed and is the
    place of the error; within the line it is a missing separator, reported where the parser stopped."""
    lines = text.split("\n")
    rest = lines[gave_up.line - 1][gave_up.col - 1:] if gave_up.line <= len(lines) else ""
    if gave_up.line > opener.line or not rest.strip():
        said = problem[:-len(f": unclosed {opened}")] if problem.endswith(f": unclosed {opened}") else problem
        return CaffeconfError.at(opener, f"{said}: this {opened} is not closed",
                                 notes=[Note("the parser gave up here", gave_up)])
    return CaffeconfError.at(gave_up, problem, notes=[Note(f"in the {opened} that starts here", opener)])
