"""A position in a config -> the path of keys and nodes leading to it in the located tree, and
what that path means there: a layer entry, its `use:`, a `with:` key, a Caffe field."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..compile.fields import layer_message
from ..compile.tree import Map, Node, Scalar, Seq
from ..errors import SOURCES, Span


@dataclass(frozen=True)
class Place:
    keys: tuple[str | int, ...]  # from the root to the node under the cursor
    nodes: tuple[Node, ...]  # the root, then the node at each key
    on_key: bool  # the cursor is on the last key itself, not on its value

    @property
    def node(self) -> Node:
        return self.nodes[-1]

    def entry(self) -> tuple[int, Map] | None:
        """(index in `keys` just past it, the map) of the innermost layer entry around the cursor:
        an item of a `layers:` list, the document's or a module's."""
        for at in range(len(self.keys) - 1, 0, -1):
            if self.keys[at - 1] == "layers" and isinstance(self.keys[at], int) and isinstance(self.nodes[at + 1], Map):
                return at + 1, self.nodes[at + 1]
        return None

    def within_entry(self) -> tuple[Map, tuple[str | int, ...]] | None:
        """The innermost layer entry and the keys from it to the cursor."""
        found = self.entry()
        return (found[1], self.keys[found[0]:]) if found else None


def contains(span: Span, line: int, col: int, length: int = 1) -> bool:
    """Whether 1-based (line, col) is within `span` or just after its end (where a cursor ends a
    word); a span without an end covers `length` characters."""
    end = (span.end_line, span.end_col) if span.end_line is not None and span.end_col is not None \
        else (span.line, span.col + length)
    return (span.line, span.col) <= (line, col) <= end


def covers(node: Node, line: int, col: int) -> bool:
    """Whether the node holds (line, col): its span does, or one of its keys or values does (a
    TOML table's span is its header alone, its keys follow)."""
    if contains(node.span, line, col):
        return True
    if isinstance(node, Map):
        return any(contains(node.keys[key], line, col, len(key)) or covers(child, line, col)
                   for key, child in node.values.items())
    return isinstance(node, Seq) and any(covers(item, line, col) for item in node.items)


def place_at(root: Node, line: int, col: int) -> Place:
    keys: list[str | int] = []
    nodes: list[Node] = [root]
    node = root
    while True:
        if isinstance(node, Map):
            step = next(((key, child) for key, child in node.values.items()
                         if contains(node.keys[key], line, col, len(key)) or covers(child, line, col)), None)
            if step is None:
                break
            keys.append(step[0])
            nodes.append(step[1])
            if contains(node.keys[step[0]], line, col, len(step[0])):
                return Place(tuple(keys), tuple(nodes), True)
        elif isinstance(node, Seq):
            index = next((i for i, item in enumerate(node.items) if covers(item, line, col)), None)
            if index is None:
                break
            keys.append(index)
            nodes.append(node.items[index])
        else:
            break
        node = nodes[-1]
    return Place(tuple(keys), tuple(nodes), False)


def source_text(node: Node) -> str:
    """How a node is written, when it is on one line; else its value or its kind."""
    span = node.span
    line = SOURCES.line(span.path, span.line) if span.end_line == span.line and span.end_col else None
    if line is not None:
        return line[span.col - 1:span.end_col - 1]
    if isinstance(node, Scalar):
        return str(node.value)
    return "a list" if isinstance(node, Seq) else "a mapping"


def caffe_field(keys: tuple, start: Descriptor | None = None) -> FieldDescriptor | None:
    """The field of `start` (LayerParameter: `keys` are from a layer entry), or field of a
    field's message, that `keys` name (list indices skipped)."""
    message, field = start or layer_message(), None
    for key in keys:
        if isinstance(key, int):
            continue
        if message is None or key not in message.fields_by_name:
            return None
        field = message.fields_by_name[key]
        message = field.message_type if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE else None
    return field


def caffe_message(keys: tuple, start: Descriptor | None = None) -> Descriptor | None:
    """The message whose fields go in the map that `keys` (from a layer entry, or from the
    message `start`) lead to."""
    if not [key for key in keys if not isinstance(key, int)]:
        return start or layer_message()
    field = caffe_field(keys, start)
    return field.message_type if field is not None else None
