"""The located tree that YAML and TOML sources both parse into: every node keeps its Span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ..errors import Span


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
