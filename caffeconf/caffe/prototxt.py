"""Caffe files on disk ↔ protobuf messages: prototxt text or binary → `NetParameter` /
`SolverParameter`, and back (text in protobuf's canonical format, as Caffe writes it).

Reading detects text vs binary, never upgrades (see `caffeconf.upgrade`), and turns every
malformed input into a located `CaffeconfError`: `path:line:col: error: ...`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from google.protobuf import text_encoding, text_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from .. import errors
from ..errors import CaffeconfError, Span, did_you_mean
from ..files import read_bounded, write_atomic
from . import messages
from .facts import as_float32, fork_field_hint, looks_like_solver

# ---------------------------------------------------------------------------
# Reading


def read_net(path: str | Path) -> messages.NetParameter:
    """The NetParameter in `path` (text or binary, detected), exactly as written: not upgraded."""
    return decode(read_bytes(path), str(path), messages.NetParameter())


def read_solver(path: str | Path) -> messages.SolverParameter:
    """The SolverParameter in `path` (text or binary, detected), not upgraded."""
    return decode(read_bytes(path), str(path), messages.SolverParameter())


def parse_net_text(text: str, path: str) -> messages.NetParameter:
    """Parse prototxt `text`; errors are located in `path` (which need not exist on disk)."""
    return parse_text(text, path, messages.NetParameter())


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes; an unreadable file is a CaffeconfError naming it."""
    try:
        return read_bounded(path)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read {path}: {error.strerror or error}") from None


def decode(data: bytes, source: str, message: Message) -> Message:
    """Text or binary `data` from `source` parsed into `message`."""
    if not data.strip():
        raise CaffeconfError.at(Span(source, 1, 1), f"empty file: no {message.DESCRIPTOR.name} in it")
    if looks_like_text(data):
        return parse_text(data.decode("utf-8"), source, message)
    if parse_binary(data, message):
        return message
    raise _not_text_error(data, source, message)


def read_net_or_solver(path: str | Path) -> messages.NetParameter | messages.SolverParameter:
    """A NetParameter or a SolverParameter, whichever `path` holds (not upgraded)."""
    source, data = str(path), read_bytes(path)
    outline = outline_text(data.decode("utf-8")) if looks_like_text(data) else None
    return decode(data, source, empty_message_for(data, outline))


def empty_message_for(data: bytes, outline: "Outline | None") -> Message:
    """An empty NetParameter or SolverParameter, whichever `data` (with its outline, when text) holds."""
    if outline is not None:
        solver = looks_like_solver({f.name for f in outline.fields})
        return messages.SolverParameter() if solver else messages.NetParameter()
    return _binary_kind(data)


def _binary_kind(data: bytes) -> Message:
    """Wire format does not name its type: a clean net with layers is a net, else a clean
    solver is a solver; anything else is reported as a bad net."""
    net = messages.NetParameter()
    if parse_binary(data, net) and (net.layer or net.layers):
        return messages.NetParameter()
    if parse_binary(data, messages.SolverParameter()):
        return messages.SolverParameter()
    return messages.NetParameter()


def looks_like_text(data: bytes) -> bool:
    """UTF-8 with no control characters other than whitespace: binary protobuf always has some."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _CONTROL.search(text) is None


def parse_binary(data: bytes, message: Message) -> bool:
    """Fill `message` from wire-format `data`; False when it is not a clean `message`."""
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        message.Clear()
        return False
    size = message.ByteSize()
    message.DiscardUnknownFields()
    if message.ByteSize() != size:  # unknown field numbers: garbage, or some other message
        message.Clear()
        return False
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _not_text_error(data: bytes, source: str, message: Message) -> CaffeconfError:
    """Why `data` is neither prototxt nor binary, located at the first offending byte."""
    control = _CONTROL_BYTE.search(data)
    invalid = _first_invalid_utf8(data)
    text = data.decode("utf-8", errors="replace")
    # Show the line with binary bytes made visible rather than raw in a terminal.
    errors.SOURCES.register(source, _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text))
    # Not text, so there is a control byte or an invalid one: the first of them is reported.
    offset = min(control.start() if control else len(data), len(data) if invalid is None else invalid)
    place = Span.after(source, data[:offset].decode("utf-8", errors="replace"))
    if control is None:
        problem = f"not valid UTF-8 (byte 0x{data[offset]:02x}): a prototxt must be UTF-8 text"
    else:
        problem = f"binary data (byte 0x{data[offset]:02x}) that is not a valid {message.DESCRIPTOR.name}"
    return CaffeconfError.at(place, problem)


_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _first_invalid_utf8(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return None


# ---------------------------------------------------------------------------
# Text parsing with located errors


def parse_text(text: str, source: str, message: Message) -> Message:
    """Parse prototxt `text` into `message` as Caffe's ReadProtoFromTextFile does; errors are
    located in `source`, whose lines they quote from `text`."""
    errors.SOURCES.register(source, text)
    _check_escapes(text, source)
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise _located(error, text, source, message) from None
    return message


# The escapes protobuf's C++ tokenizer takes in a string; Python's parser passes others through.
_ESCAPE = re.compile(r"""\\(x[0-9a-fA-F]|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\?'"0-7])|\\.?""")


def _check_escapes(text: str, source: str) -> None:
    """Refuse a string escape that Caffe's parser (protobuf C++) refuses, where it is written."""
    for kind, value, line, col in tokens(text) if "\\" in text else ():
        for escape in _ESCAPE.finditer(value) if kind == "string" else ():
            if escape.group(1) is None:
                at = col + escape.start()
                raise CaffeconfError.at(Span(source, line, at, line, at + len(escape.group())),
                                        f"invalid escape '{escape.group()}' in a string: Caffe's parser refuses it",
                                        hint="write a backslash as \\\\")


def _located(error: text_format.ParseError, text: str, source: str,
             message: Message) -> CaffeconfError:
    """A protobuf ParseError as our diagnostic: the right place, the message's own names."""
    detail = _detail(error, text)
    unclosed = outline_text(text).unclosed
    if detail in ('Expected "}".', 'Expected ">".') and unclosed:
        name, line, col = unclosed[-1]
        return CaffeconfError.at(Span(source, line, col, line, col + 1),
                                 f"block '{name}' is never closed: the file ends first")
    line, col = error.GetLine() or 1, error.GetColumn() or 1
    for pattern, explain in _EXPLAINERS:
        match = pattern.search(detail)
        if match:
            return explain(match, message.DESCRIPTOR.file.pool, Span(source, line, col))
    return CaffeconfError.at(Span(source, line, col), detail[:1].lower() + detail[1:])


def _unknown_field(match: re.Match, pool, at: Span) -> CaffeconfError:
    type_name, name = match.groups()
    candidates = pool.FindMessageTypeByName(type_name).fields_by_name
    hint = fork_field_hint(type_name.rpartition(".")[2], name) or did_you_mean(name, candidates)
    return CaffeconfError.at(_widen(at, name), f"unknown field '{name}' in {type_name}", hint=hint)


def _unknown_enum_value(match: re.Match, pool, at: Span) -> CaffeconfError:
    type_name, value = match.groups()
    values = [v.name for v in pool.FindEnumTypeByName(type_name).values]
    return CaffeconfError.at(
        _widen(at, value), f"'{value}' is not a value of {type_name} (one of {', '.join(values)})",
        hint=did_you_mean(value, values))


def _repeated_scalar(match: re.Match, pool, at: Span) -> CaffeconfError:
    type_name, name = match.groups()
    return CaffeconfError.at(at, f"'{name}' is set twice, but {type_name}.{name} is not repeated")


def _unmatched_close(match: re.Match, pool, at: Span) -> CaffeconfError:
    return CaffeconfError.at(at, f"'{match.group(1)}' closes a block that was never opened")


def _widen(at: Span, word: str) -> Span:
    return Span(at.path, at.line, at.col, at.line, at.col + len(word))


# protobuf's own wording (python text_format) -> our diagnostic
_EXPLAINERS = (
    (re.compile(r'Message type "([\w.]+)" has no field named "([^"]+)"\.'), _unknown_field),
    (re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.$'), _unknown_enum_value),
    (re.compile(r'Message type "([\w.]+)" should not have multiple "(\w+)" fields\.'),
     _repeated_scalar),
    (re.compile(r"^Expected identifier or number, got ([}>])\.$"), _unmatched_close),
)


def _detail(error: text_format.ParseError, text: str) -> str:
    """The ParseError's message without its "line:col : 'source line': " prefix."""
    detail = re.sub(r"^\d+(:\d+)? : ", "", str(error))
    line = error.GetLine()
    lines = text.split("\n")
    if line and line <= len(lines):
        detail = detail.removeprefix(f"'{lines[line - 1]}': ")
    return detail


# ---------------------------------------------------------------------------
# Outline: where top-level fields start, read with a small tokenizer


@dataclass(frozen=True)
class TopField:
    """One top-level field of a prototxt, e.g. a `layer {` block or an `input:` line."""

    name: str
    line: int
    col: int
    layer_name: str | None = None  # `name:` inside the block (V0: inside its nested `layer`)


@dataclass
class Outline:
    fields: list[TopField] = field(default_factory=list)
    unclosed: list[tuple[str, int, int]] = field(default_factory=list)  # (name, line, col) at EOF

    def named(self, name: str) -> list[TopField]:
        return [f for f in self.fields if f.name == name]


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"? | '(?:[^'\\\n]|\\.)*'?)
  | (?P<word>[\w.+-]+) | (?P<punct>.)
""", re.VERBOSE)


def tokens(text: str) -> Iterator[tuple[str, str, int, int]]:
    """(kind, text, line, col) for each meaningful token."""
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            yield kind, match.group(), line, match.start() - line_start + 1


def outline_text(text: str) -> Outline:
    """The outline of prototxt `text` (see `outline_tokens`)."""
    return outline_tokens(tokens(text))


def outline_tokens(found: Iterable[tuple[str, str, int, int]]) -> Outline:
    """Top-level fields with their positions, and the blocks still open at the end.

    A word is a field name unless it follows `:` or sits directly in a `[...]` list
    (then it is a value, like `true` or `MAX`)."""
    outline = Outline()
    stack: list[tuple[str, str, int, int]] = []  # ("block" | "list", field name, line, col)
    pending = "?"  # the field name a following `{` or `[` belongs to
    after_colon = False
    for kind, value, line, col in found:
        in_list = bool(stack) and stack[-1][0] == "list"
        if kind == "word" and not after_colon and not in_list:
            pending = value
            if not stack:
                outline.fields.append(TopField(value, line, col))
        elif kind == "string" and after_colon and pending == "name":
            _note_layer_name(outline, [entry[1] for entry in stack], value[1:-1])
        elif kind == "punct" and value in "{<[":
            name = stack[-1][1] if in_list else pending
            stack.append(("list" if value == "[" else "block", name, line, col))
        elif kind == "punct" and value in "}>]" and stack:
            stack.pop()
        after_colon = value == ":"
    outline.unclosed = [(name, line, col) for what, name, line, col in stack if what == "block"]
    return outline


def _note_layer_name(outline: Outline, inside: list[str], name: str) -> None:
    """Record the first `name: "..."` directly inside a top-level layer block or its V0 `layer`."""
    if inside in (["layer"], ["layers"], ["layers", "layer"]) and outline.fields:
        last = outline.fields[-1]
        if last.layer_name is None:
            outline.fields[-1] = TopField(last.name, last.line, last.col, name)


def outline_file(path: str | Path) -> Outline | None:
    """The outline of a text prototxt at `path`; None when unreadable or binary."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return outline_text(data.decode("utf-8")) if looks_like_text(data) else None


# ---------------------------------------------------------------------------
# Writing


def write_message(message: Message, path: str | Path, binary: bool = False) -> None:
    """Write atomically, as protobuf wire format or as Caffe's canonical text."""
    write_atomic(path, message.SerializeToString() if binary else message_to_text(message))


def message_to_text(message: Message) -> str:
    """Canonical text, byte for byte what Caffe's WriteProtoToTextFile writes."""
    out: list[str] = []
    _print_message(message, 0, out)
    return "".join(out)


# Nets and solvers are written alike.
write_net = write_solver = write_message
net_to_text = message_to_text


def _print_message(message: Message, depth: int, out: list[str]) -> None:
    indent = "  " * depth
    for descriptor, value in message.ListFields():  # ordered by field number, as C++ prints
        for item in (value if descriptor.is_repeated else [value]):
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                out.append(f"{indent}{descriptor.name} {{\n")
                _print_message(item, depth + 1, out)
                out.append(f"{indent}}}\n")
            else:
                out.append(f"{indent}{descriptor.name}: {_scalar_text(descriptor, item)}\n")


def _scalar_text(descriptor: FieldDescriptor, value) -> str:
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_ENUM:
        enum_value = descriptor.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else str(value)
    if kind == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if kind in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return f'"{text_encoding.CEscape(raw, as_utf8=False)}"'
    if kind == FieldDescriptor.TYPE_FLOAT:
        return shortest_float(value, 6, 9, as_float32)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return shortest_float(value, 15, 17, float)
    return str(value)


def shortest_float(value: float, digits: int, max_digits: int, width) -> str:
    """Like protobuf C++'s SimpleFtoa/SimpleDtoa: %g with FLT_DIG/DBL_DIG digits, or more
    when that does not read back as the same value; inf/nan spelled as C++ prints them."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    short = f"{value:.{digits}g}"
    return short if width(float(short)) == width(value) else f"{value:.{max_digits}g}"
