"""Located nodes + an environment -> plain values: `${...}` templates filled in from the
environment each caller passes (a scope's parameters, a share's names), never from shared state.

Failures are reported to the DiagnosticList and come back as `FAILED`, so that one run reports
every problem."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ..errors import CaffeconfError, DiagnosticList, Span
from .expr import compile_template
from .fields import FieldChecker, describe
from .tree import Map, Node, Scalar, Sentinel, Seq

Env = Mapping[str, Any]
FAILED = Sentinel("failed")


class BlobName(str):
    """A blob name that remembers where it was written, for errors about it."""

    span: Span

    def __new__(cls, name: str, span: Span) -> "BlobName":
        named = super().__new__(cls, name)
        named.span = span
        return named


class Evaluator:
    def __init__(self, diags: DiagnosticList):
        self.diags = diags
        self._templates: dict[int, Any] = {}  # each template compiled once, however often used

    def evaluate(self, node: Scalar, env: Env) -> Any:
        """A scalar's value in `env` (`${...}` filled in)."""
        if node.evaluated or not isinstance(node.value, str) or "${" not in node.value:
            return node.value
        key = id(node)
        if key not in self._templates:
            self._templates[key] = compile_template(node.value, _text_start(node))
        return self._templates[key].evaluate(env)

    def value(self, node: Node, env: Env) -> Any:
        """Plain data for any node, scalars evaluated; raises CaffeconfError."""
        if isinstance(node, Scalar):
            return self.evaluate(node, env)
        if isinstance(node, Seq):
            return [self.value(item, env) for item in node.items]
        return {key: self.value(child, env) for key, child in node.values.items()}

    def attempt(self, node: Node, env: Env) -> Any:
        """`value`, with a failure reported and returned as FAILED."""
        try:
            return self.value(node, env)
        except CaffeconfError as error:
            self.diags.extend(error)
            return FAILED

    def fields(self, env: Env) -> FieldChecker:
        """A checker of Caffe message fields whose values are evaluated in `env`."""
        return FieldChecker(lambda node: self.evaluate(node, env), self.diags)

    def text(self, node: Node | None, what: str, env: Env) -> str | None:
        if node is None:
            return None
        value = self.attempt(node, env)
        if value is FAILED:
            return None
        if not isinstance(value, str) or not value:
            self.diags.error(node.span, f"{what} must be a non-empty string, got {describe(value)}")
            return None
        return value

    def names(self, node: Node, what: str, env: Env, allow_null: bool = False) -> list[str] | None:
        """A blob-name list (a single name is a one-element list); each name remembers its span.

        With `allow_null`, a null item leaves a module input unbound.
        """
        written = node.items if isinstance(node, Seq) else (node,)
        names: list = []
        for item in written:
            value = self.attempt(item, env)
            if value is FAILED:
                return None
            for name in (value if isinstance(value, list) and not isinstance(node, Seq) else [value]):
                if name is None and allow_null:
                    names.append(None)
                elif isinstance(name, str) and name:
                    names.append(BlobName(name, item.span))
                else:
                    self.diags.error(item.span, f"{what} must be blob names, got {describe(name)}")
                    return None
        return names

    def quiet_names(self, node: Node | None, env: Env) -> list[str]:
        """The blob names `node` gives (a list, one name, or a map's values), reporting nothing:
        for naming what a failed entry would have produced, whose errors are reported elsewhere."""
        written = () if node is None else node.values.values() if isinstance(node, Map) else \
            node.items if isinstance(node, Seq) else (node,)
        names = []
        for item in written:
            try:
                value = self.value(item, env)
            except CaffeconfError:
                continue
            names.extend(name for name in (value if isinstance(value, list) else [value]) if isinstance(name, str))
        return names

    def name_patterns(self, node: Node | None, env: Env) -> list[str]:
        """Regular expressions for the names `node` gives, reporting nothing: its values where they
        can be told, else its text with each `${...}` matching anything (the repeat index of a
        repeat that failed is unbound)."""
        written = () if node is None else node.items if isinstance(node, Seq) else (node,)
        patterns = []
        for item in written:
            try:
                value = self.value(item, env)
            except CaffeconfError:
                template = _quiet_template(item)
                patterns += [template.pattern()] if template is not None else []
                continue
            patterns.extend(re.escape(name) for name in (value if isinstance(value, list) else [value])
                            if isinstance(name, str))
        return patterns


def names_read(nodes: Iterable[Node | None]) -> set[str]:
    """Every name the `${...}` expressions under `nodes` read, in all branches."""
    read: set[str] = set()
    for node in nodes:
        if isinstance(node, (Map, Seq)):
            read |= names_read(node.values.values() if isinstance(node, Map) else node.items)
        elif (template := _quiet_template(node)) is not None:
            read |= template.names
    return read


def _quiet_template(node: Node):
    """The template of a scalar's text, or None (not text, or not a template that compiles)."""
    if not isinstance(node, Scalar) or not isinstance(node.value, str):
        return None
    try:
        return compile_template(node.value, node.span)
    except CaffeconfError:
        return None


def _text_start(node: Scalar) -> Span:
    """Where the scalar's text starts: one column in for a quoted scalar."""
    span = node.span
    return Span(span.path, span.line, span.col + 1, span.end_line, span.end_col) if node.quoted else span
