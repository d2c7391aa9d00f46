"""Caffe prototxt (V0, V1 or V2) → a flat caffeconf document that compiles back to the upgraded net.

read → check names → upgrade → document: each layer becomes one entry with its bottoms and
tops left implicit where the format's shortcuts give them back (an omitted `top` is the layer's
name, an omitted `bottom` the previous entry's single top, `in_place: true`). Floats are written
as the shortest decimal that reads back as the same float32; a literal `${` is escaped.
`factor` turns the flat layers into modules.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..caffe import messages, prototxt, serde, upgrade
from ..caffe.facts import LAYER_TYPES, looks_like_solver
from ..caffe.netfile import net_file_from_bytes
from ..compile.compiler import build
from ..compile.verify import verify_net
from ..errors import SOURCES, CaffeconfError, Diagnostic, DiagnosticList, InternalError, Span, did_you_mean
from ..ir import Layer, Net
from .config_text import to_toml, to_yaml
from .document import Imported, document, flat_entries, message_data
from .factor import factored_document

def read_net(path: str | Path) -> Imported:
    """The net at `path`, upgraded; every unknown field, enum value and layer type is reported.
    The file is read once and its text tokenized once."""
    source = str(path)
    data = prototxt.read_bytes(path)
    outline, text_lines = None, None
    if prototxt.looks_like_text(data):
        text = data.decode("utf-8")
        found = list(prototxt.tokens(text))
        outline, text_lines = prototxt.outline_tokens(found), len(text.splitlines())
        _refuse_solver({field.name for field in outline.fields}, source)
        problems = unknown_names(found, source)
        if problems:
            SOURCES.register(source, text)
            raise CaffeconfError(problems)
    elif isinstance(prototxt.empty_message_for(data, None), messages.SolverParameter):
        raise CaffeconfError.at(Span(source, 1, 1), _SOLVER_REFUSED)
    message = net_file_from_bytes(data, source, outline).message
    _check_types(message, source)
    data_of_net = message_data(message)
    data_of_net.pop("layer", None)
    data_of_net.pop("name", None)
    # a binary net is measured by the text Caffe would write for it
    lines = text_lines if text_lines is not None else len(prototxt.net_to_text(message).splitlines())
    return Imported(message, tuple(_layer(layer) for layer in message.layer), data_of_net, lines)


_SOLVER_REFUSED = "this is a solver (SolverParameter), not a net: import takes a NetParameter"


def _refuse_solver(names: set[str], source: str) -> None:
    if looks_like_solver(names):
        raise CaffeconfError.at(Span(source, 1, 1), _SOLVER_REFUSED)


def _check_types(message: messages.NetParameter, source: str) -> None:
    """Layer types of a binary net (text ones were checked with their positions)."""
    problems = [Diagnostic(f"unknown layer type '{layer.type}' (layer '{layer.name}')", Span(source, 1, 1),
                           hint=did_you_mean(layer.type, LAYER_TYPES))
                for layer in message.layer if layer.type not in LAYER_TYPES]
    unnamed = [index for index, layer in enumerate(message.layer) if not layer.name]
    problems += [Diagnostic(f"layer {index} has no name: a caffeconf layer needs one", Span(source, 1, 1))
                 for index in unnamed]
    if problems:
        raise CaffeconfError(problems)


def _layer(message: messages.LayerParameter) -> Layer:
    fields = message_data(message)
    for key in ("name", "type", "bottom", "top"):
        fields.pop(key, None)
    return Layer(message.name, message.type, tuple(message.bottom), tuple(message.top), fields)


# ---------------------------------------------------------------------------
# Unknown names, all of them, with their positions


def unknown_names(found: Iterable[tuple[str, str, int, int]], source: str) -> list[Diagnostic]:
    """Every field, enum value and layer type among a prototxt's tokens that BVLC Caffe does not know.

    protobuf's parser stops at the first unknown field; a fork's net (SSD, SegNet, Faster
    R-CNN) usually has several, and the user wants the whole list at once."""
    scan = _NameScan(source)
    for kind, value, line, col in found:
        scan.token(kind, value, line, col)
    return scan.problems


@dataclass
class _Frame:
    message: Descriptor | None  # None inside an unknown field's block
    list_field: FieldDescriptor | None = None  # set inside `field: [ ... ]`


class _NameScan:
    """Walks prototxt tokens with a stack of message types, noting names caffe.proto lacks."""

    def __init__(self, source: str):
        self.source = source
        self.stack = [_Frame(messages.NetParameter.DESCRIPTOR)]
        self.field: FieldDescriptor | None = None  # the field whose value comes next
        self.after_colon = False
        self.problems: list[Diagnostic] = []

    def token(self, kind: str, value: str, line: int, col: int) -> None:
        frame = self.stack[-1]
        in_list = frame.list_field is not None
        if kind == "word" and not self.after_colon and not in_list:
            self.field = self._field_named(frame.message, value, line, col)
        elif kind in ("word", "string") and (self.after_colon or in_list):
            self._check_value(frame.message, frame.list_field or self.field, kind, value, line, col)
        elif value in ("{", "<"):
            field = frame.list_field or self.field
            known = field is not None and field.type == FieldDescriptor.TYPE_MESSAGE
            self.stack.append(_Frame(field.message_type if known else None))
        elif value == "[":
            self.stack.append(_Frame(frame.message, self.field or _UNKNOWN_LIST))
        elif value in ("}", ">", "]") and len(self.stack) > 1:
            self.stack.pop()
        self.after_colon = value == ":"

    def _field_named(self, message: Descriptor | None, name: str, line: int, col: int) -> FieldDescriptor | None:
        if message is None:
            return None
        field = message.fields_by_name.get(name)
        if field is None:
            self._report(f"unknown field '{name}' in {message.full_name}", name, line, col,
                         did_you_mean(name, message.fields_by_name))
        return field

    def _check_value(self, message: Descriptor | None, field: FieldDescriptor | None, kind: str, value: str,
                     line: int, col: int) -> None:
        if field is None or field is _UNKNOWN_LIST:
            return
        if field.type == FieldDescriptor.TYPE_ENUM and kind == "word":
            enum = field.enum_type
            if value not in enum.values_by_name and not value.lstrip("-").isdigit():
                names = [v.name for v in enum.values]
                self._report(f"'{value}' is not a value of {enum.full_name}", value, line, col,
                             did_you_mean(value, names))
        elif field.name == "type" and kind == "string" and message is not None:
            self._check_type_string(message, value, line, col)

    def _check_type_string(self, message: Descriptor, quoted: str, line: int, col: int) -> None:
        name = quoted[1:-1]
        if message is messages.LayerParameter.DESCRIPTOR and name not in LAYER_TYPES:
            self._report(f"unknown layer type '{name}'", quoted, line, col, did_you_mean(name, LAYER_TYPES))
        elif (message is messages.V0LayerParameter.DESCRIPTOR and name not in upgrade.V0_LAYER_TYPES
              and name != upgrade.V0_PADDING_TYPE):
            self._report(f"unknown V0 layer type '{name}'", quoted, line, col,
                         did_you_mean(name, upgrade.V0_LAYER_TYPES))

    def _report(self, message: str, word: str, line: int, col: int, hint: str | None) -> None:
        span = Span(self.source, line, col, line, col + len(word))
        self.problems.append(Diagnostic(message, span, hint=hint))


_UNKNOWN_LIST = messages.NetParameter.DESCRIPTOR.fields_by_name["layer"]  # a list under an unknown field


# ---------------------------------------------------------------------------
# The whole import, checked


@dataclass(frozen=True)
class ImportResult:
    text: str
    prototxt_lines: int
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def config_lines(self) -> int:
        return len(self.text.splitlines())

    def summary(self) -> str:
        saved = self.prototxt_lines - self.config_lines
        ratio = self.prototxt_lines / max(self.config_lines, 1)
        return (f"{self.config_lines} config lines for {self.prototxt_lines} prototxt lines: "
                f"{saved} saved ({ratio:.1f}x shorter)")


def import_config(path: str | Path, modules: bool = False, as_toml: bool = False) -> ImportResult:
    """The config text for the net at `path`, checked to compile back to the upgraded net.

    A net that caffeconf's own checks refuse (they are stricter than Caffe in places) cannot
    be compiled to check it: it is imported flat, unchecked, with the problems as warnings."""
    imported = read_net(path)
    render = to_toml if as_toml else to_yaml
    header = f"# Imported from {Path(path).name} by `caffeconf import`.\n"
    refused = verify_problems(serde.net_from_proto(imported.message))
    warnings = [f"caffeconf's checks refuse the net itself, so the import is flat and unchecked: {problem}"
                for problem in refused]
    text = None
    if modules and not refused:
        text, dropped = factored_document(imported, lambda doc: render(doc, header),
                                          lambda candidate: compiles_to(candidate, as_toml, imported.message))
        warnings += dropped
    if text is None:
        text = render(document(imported, flat_entries(imported.layers)), header)
        if not refused and not compiles_to(text, as_toml, imported.message):
            raise InternalError(f"the flat import of {path} does not compile back to the same net")
    prototxt_lines = imported.source_lines
    notes = ("no repeated blocks found: the config is flat",) if modules and "\nmodules:" not in text \
        and "\n[modules." not in text and not refused else ()
    return ImportResult(text, prototxt_lines, tuple(warnings), notes)


def compiles_to(text: str, as_toml: bool, message: messages.NetParameter) -> bool:
    """Whether config `text` compiles, without errors, to exactly `message`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("net.toml" if as_toml else "net.yaml")
        path.write_text(text, encoding="utf-8")
        result = build(path)
    return result.ok and serde.net_to_proto(result.net) == message


def verify_problems(net: Net) -> list[str]:
    """What `caffeconf compile`'s per-state verifier says of `net`, each message once."""
    diags = DiagnosticList()
    verify_net(net, diags)
    return sorted({d.message for d in diags.items if d.severity == "error"})
