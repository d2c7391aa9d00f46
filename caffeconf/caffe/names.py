"""Prototxt tokens -> every field, enum value and layer type name that the dialect's caffe.proto
lacks, each located.

protobuf's text parser stops at the first unknown name; a fork's net (SSD, SegNet, Faster
R-CNN) read without its caffe.proto usually has several, and the user wants the whole list at
once, each field a common fork defines named as such."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..errors import Diagnostic, Span, did_you_mean
from .facts import fork_field_hint, unknown_type_problem
from .upgrade import V0_LAYER_TYPES, V0_PADDING_TYPE

Token = tuple[str, str, int, int]  # (kind, text, line, col), as prototxt.tokens yields them


def unknown_names(found: Iterable[Token], source: str, root: Descriptor, check_types: bool = True) -> list[Diagnostic]:
    """Every name among the tokens of a `root` message's text that its schema does not know;
    with `check_types`, layer type strings too (unknown ones to a fork are warnings)."""
    scan = _NameScan(source, root, check_types)
    for kind, value, line, col in found:
        scan.token(kind, value, line, col)
    return scan.problems


@dataclass
class _Frame:
    message: Descriptor | None  # None inside an unknown field's block
    list_field: FieldDescriptor | None = None  # set inside `field: [ ... ]`


class _NameScan:
    """Walks prototxt tokens with a stack of message types, noting names the schema lacks."""

    def __init__(self, source: str, root: Descriptor, check_types: bool):
        self.source, self.check_types = source, check_types
        self.stack = [_Frame(root)]
        self.unknown_list = root.fields[0]  # stands for the field of a list under an unknown field
        self.field: FieldDescriptor | None = None  # the field whose value comes next
        self.after_colon = False
        self.problems: list[Diagnostic] = []
        self.named: FieldDescriptor | None = None  # a known field just named, before its `:` or `{`
        self.broken = False

    def token(self, kind: str, value: str, line: int, col: int) -> None:
        named, self.named = self.named, None
        if self.broken or named is not None and value != ":" and not (
                named.type == FieldDescriptor.TYPE_MESSAGE and value in ("{", "<")):
            self.broken = True  # protobuf's parser says where the text breaks; names past it would mislead
            return
        frame = self.stack[-1]
        in_list = frame.list_field is not None
        if kind == "word" and not self.after_colon and not in_list:
            self.field = self.named = self._field_named(frame.message, value, line, col)
        elif kind in ("word", "string") and (self.after_colon or in_list):
            self._check_value(frame.message, frame.list_field or self.field, kind, value, line, col)
        elif value in ("{", "<"):
            field = frame.list_field or self.field
            known = field is not None and field is not self.unknown_list and field.type == FieldDescriptor.TYPE_MESSAGE
            self.stack.append(_Frame(field.message_type if known else None))
        elif value == "[":
            self.stack.append(_Frame(frame.message, self.field or self.unknown_list))
        elif value in ("}", ">", "]") and len(self.stack) > 1:
            self.stack.pop()
        self.after_colon = value == ":"

    def _field_named(self, message: Descriptor | None, name: str, line: int, col: int) -> FieldDescriptor | None:
        if message is None:
            return None
        field = message.fields_by_name.get(name)
        if field is None:
            hint = fork_field_hint(message.name, name) or did_you_mean(name, message.fields_by_name)
            self._report(f"unknown field '{name}' in {message.full_name}", name, line, col, hint)
        return field

    def _check_value(self, message: Descriptor | None, field: FieldDescriptor | None, kind: str, value: str,
                     line: int, col: int) -> None:
        if field is None or field is self.unknown_list:
            return
        if field.type == FieldDescriptor.TYPE_ENUM and kind == "word":
            enum = field.enum_type
            if value not in enum.values_by_name and not value.lstrip("-").isdigit():
                names = [v.name for v in enum.values]
                self._report(f"'{value}' is not a value of {enum.full_name}", value, line, col,
                             did_you_mean(value, names))
        elif field.name == "type" and kind == "string" and message is not None and self.check_types:
            self._check_type_string(message, value, line, col)

    def _check_type_string(self, message: Descriptor, quoted: str, line: int, col: int) -> None:
        name = quoted[1:-1]
        if message.name == "LayerParameter":
            problem = unknown_type_problem(name)
            if problem:
                severity, text, hint = problem
                self._report(text, quoted, line, col, hint, severity)
        elif message.name == "V0LayerParameter" and name not in V0_LAYER_TYPES and name != V0_PADDING_TYPE:
            self._report(f"unknown V0 layer type '{name}'", quoted, line, col, did_you_mean(name, V0_LAYER_TYPES))

    def _report(self, message: str, word: str, line: int, col: int, hint: str | None,
                severity: str = "error") -> None:
        span = Span(self.source, line, col, line, col + len(word))
        self.problems.append(Diagnostic(message, span, severity, hint=hint))
