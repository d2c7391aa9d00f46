"""A position in an open prototxt -> what is there (a field name or a value, inside which
blocks; hover.py describes it), and a bottom's producing layer.

Read with caffe/prototxt's own tokenizer, so that a buffer being typed needs not parse."""

from __future__ import annotations

from dataclasses import dataclass

from ..caffe.prototxt import tokens
from ..compile.load import LoadOptions, load
from ..errors import CaffeconfError, Span
from ..limits import Limits
from .documents import written_by


@dataclass(frozen=True)
class ProtoPlace:
    blocks: tuple[str, ...]  # the fields of the blocks around the cursor, outermost first
    top: tuple[int, int] | None  # where the outermost of them (a `layer {`) is written
    word: str  # the field name, word or string (unquoted) under the cursor; "" between tokens
    field: str  # the field that word is, or whose value it is
    is_value: bool


def proto_place(text: str, line: int, col: int) -> ProtoPlace:
    """What is at 1-based (line, col) of prototxt `text`: the word or string there, else (between
    tokens) an empty word: a value when a `:` comes just before, a field name otherwise."""
    stack: list[tuple[str, str, tuple[int, int]]] = []  # ("block" | "list", field, where its name is)
    pending, pending_at, after_colon = "", (1, 1), False

    def here(word: str, field: str, is_value: bool) -> ProtoPlace:
        blocks = tuple(name for what, name, _ in stack if what == "block")
        return ProtoPlace(blocks, stack[0][2] if stack else None, word, field, is_value)

    for kind, value, at_line, at_col in tokens(text):
        in_list = bool(stack) and stack[-1][0] == "list"
        is_name = kind == "word" and not after_colon and not in_list
        if (at_line, at_col) > (line, col):
            return here("", pending if after_colon or in_list else "", after_colon or in_list)
        if at_line == line and col <= at_col + len(value) and kind in ("word", "string"):
            return here(value.strip("\"'") if kind == "string" else value, value if is_name else pending, not is_name)
        if is_name:
            pending, pending_at = value, (at_line, at_col)
        elif kind == "punct" and value in "{<[":
            stack.append(("list" if value == "[" else "block", stack[-1][1] if in_list else pending, pending_at))
        elif kind == "punct" and value in "}>]" and stack:
            stack.pop()
        after_colon = value == ":"
    return here("", pending if after_colon else "", after_colon)


def proto_definition(path: str, place: ProtoPlace, limits: Limits) -> Span | None:
    """A layer's `bottom:` -> the last layer before it with that blob among its tops."""
    if not (place.blocks == ("layer",) and place.field == "bottom" and place.is_value and place.top):
        return None
    try:
        layers = load(path, options=LoadOptions(limits)).net.layers
    except CaffeconfError:
        return None
    at = next((i for i, layer in enumerate(layers) if written_by(layer, Span(path, *place.top))), None)
    found = next((layer for layer in reversed(layers[:at]) if place.word in layer.tops), None) if at else None
    return found.origin.span if found and found.origin else None
