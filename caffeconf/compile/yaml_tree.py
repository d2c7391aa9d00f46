"""YAML text -> located tree (via `yaml.compose`), every node with its Span.

YAML is read with a safe loader and YAML 1.2 scalar rules (only true/false are
booleans; `1e-5` is a float); tags other than the standard ones are refused,
duplicate keys are errors, `<<` merge keys are honoured, and alias expansion is
bounded so a "billion laughs" document fails at once.
"""

from __future__ import annotations

import re
import sys
from typing import Iterator

import yaml

from ..errors import CaffeconfError, Note, Span
from ..limits import DEFAULT_LIMITS, Limits
from .tree import Map, Node, Scalar, Seq, opened_syntax_error


_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"


class _Loader(_BASE):  # type: ignore[misc,valid-type]
    """Safe loader with YAML 1.2 core-schema booleans, ints and floats."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_TAG + "bool", _TAG + "int", _TAG + "float")]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_Loader.add_implicit_resolver(_TAG + "bool", _BOOL, list("tTfF"))
_Loader.add_implicit_resolver(_TAG + "int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+0123456789."))


def _to_int(text: str) -> int:
    digits = len(text.lstrip("+-"))
    if digits > sys.get_int_max_str_digits():  # Python's own refusal names its internals
        raise ValueError(f"an integer of {digits} digits is too long (no Caffe field holds one)")
    return int(text, 0) if re.match(r"^[-+]?0[xo]", text) else int(text)


def _to_float(text: str) -> float:
    return float(re.sub(r"\.(inf|nan)$", r"\1", text.lower()))  # YAML's .inf/.nan


# tag -> (what its text must look like, how it becomes a value), as YAML 1.2's core schema reads it
_SCALAR_FORMS = {
    "str": (None, str),
    "null": (_NULL, lambda text: None),
    "bool": (_BOOL, lambda text: text.lower() == "true"),
    "int": (_INT, _to_int),
    "float": (_FLOAT, _to_float),
}


def _span(path: str, node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class _TreeBuilder:
    """Turns composed YAML nodes into the located tree, counting nodes as aliases expand."""

    def __init__(self, path: str, limits: Limits):
        self.path, self.limits = path, limits

    def check_size(self, root: yaml.Node) -> None:
        """Refuse a document whose aliases would expand past the limit, before building anything."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: yaml.Node, depth: int) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active or depth > self.limits.max_tree_depth:
                raise CaffeconfError.at(_span(self.path, node), f"nesting deeper than {self.limits.max_tree_depth} "
                                        "levels (a recursive alias?)")
            active.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else (
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
            total = 1 + sum(size(child, depth + 1) for child in children)
            active.discard(key)
            if total > self.limits.max_nodes:
                raise CaffeconfError.at(_span(self.path, node),
                                        f"document expands to more than {self.limits.max_nodes} nodes "
                                        "(through YAML aliases?); refusing it",
                                        hint="raise the limit with --max-nodes if this is intended")
            sizes[key] = total
            return total

        size(root, 0)

    def build(self, node: yaml.Node, depth: int = 0) -> Node:
        """The located tree (sizes and depth were already checked by `check_size`)."""
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, "seq")
            return Seq(tuple(self.build(item, depth + 1) for item in node.value), _span(self.path, node))
        self._check_tag(node, "map")
        return self._mapping(node, depth)

    def _check_tag(self, node: yaml.Node, kind: str) -> None:
        if node.tag != _TAG + kind:
            raise CaffeconfError.at(_span(self.path, node), _refused_tag(node.tag))

    def _scalar(self, node: yaml.ScalarNode) -> Scalar:
        kind = node.tag[len(_TAG):] if node.tag.startswith(_TAG) else None
        span = _span(self.path, node)
        if kind not in _SCALAR_FORMS:
            raise CaffeconfError.at(span, _refused_tag(node.tag))
        pattern, convert = _SCALAR_FORMS[kind]
        text = node.value
        if pattern is not None and not pattern.match(text):
            raise CaffeconfError.at(span, f"'{text[:40]}' is not a valid !!{kind}")
        try:
            value = convert(text)
        except ValueError as error:  # e.g. an integer past Python's digit limit
            raise CaffeconfError.at(span, f"'{text[:40]}' cannot be read as !!{kind}: {error}") from None
        return Scalar(value, span, quoted=node.style in ("'", '"'))

    def _mapping(self, node: yaml.MappingNode, depth: int) -> Map:
        values: dict[str, Node] = {}
        keys: dict[str, Span] = {}
        for key_node, value_node in self._merged_pairs(node):
            key = self.build(key_node, depth + 1)
            if not isinstance(key, Scalar) or isinstance(key.value, (list, dict)) or key.value is None:
                raise CaffeconfError.at(key.span, "a mapping key must be a plain name")
            name = str(key.value).lower() if isinstance(key.value, bool) else str(key.value)
            if name in keys:
                raise CaffeconfError.at(key.span, f"duplicate key '{name}'",
                                        notes=[Note("first written here", keys[name])])
            keys[name] = key.span
            values[name] = self.build(value_node, depth + 1)
        return Map(values, keys, _span(self.path, node))

    def _merged_pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """Pairs with `<<` merges applied: explicit keys win over merged ones, as in YAML 1.1."""
        explicit = [(k, v) for k, v in node.value if k.tag != _TAG + "merge"]
        written = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag != _TAG + "merge":
                continue
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise CaffeconfError.at(_span(self.path, source), "'<<' merges only mappings")
                for pair in self._merged_pairs(source):
                    if not isinstance(pair[0], yaml.ScalarNode):
                        raise CaffeconfError.at(_span(self.path, pair[0]), "a mapping key must be a plain name")
                    if pair[0].value not in written:
                        written.add(pair[0].value)
                        merged.append(pair)
        yield from explicit
        yield from merged


def _refused_tag(tag: str) -> str:
    written = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
    return f"tag '{written}' is not allowed (only plain YAML data is)"


# Contexts that open at a bracket or quote: an error inside one may be the opening left unclosed.
_OPENED = {"while parsing a flow mapping": "flow mapping", "while parsing a flow sequence": "flow sequence",
           "while scanning a quoted scalar": "quoted string"}


def _syntax_error(error: yaml.MarkedYAMLError, text: str, path: str) -> CaffeconfError:
    lines = text.split("\n")

    def at(mark) -> Span:  # libyaml's end of input is the line after a last line without its newline
        if mark is None:
            return Span(path, 1, 1)
        if mark.line >= len(lines):
            return Span(path, len(lines), len(lines[-1]) + 1)
        return Span(path, mark.line + 1, mark.column + 1)

    problem = f"invalid YAML: {error.problem or error.context or 'invalid YAML'}"
    opened = _OPENED.get(error.context or "")
    if opened is None or error.context_mark is None or error.problem_mark is None:
        return CaffeconfError.at(at(error.problem_mark or error.context_mark), problem)
    return opened_syntax_error(problem, opened, at(error.context_mark), at(error.problem_mark), text)


def parse_yaml(text: str, path: str, limits: Limits = DEFAULT_LIMITS) -> Node:
    """One YAML document as a located tree."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, text, path) from None
    except yaml.YAMLError as error:
        raise CaffeconfError.at(Span(path, 1, 1), f"invalid YAML: {error}") from None
    if root is None:
        raise CaffeconfError.at(Span(path, 1, 1), "the document is empty")
    builder = _TreeBuilder(path, limits)
    builder.check_size(root)
    return builder.build(root)
