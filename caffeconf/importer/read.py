"""Caffe prototxt (V0, V1 or V2) → a flat caffeconf document that compiles back to the upgraded net.

read → check names → upgrade → document: each layer becomes one entry with its bottoms and
tops left implicit where the format's shortcuts give them back (an omitted `top` is the layer's
name, an omitted `bottom` the previous entry's single top, `in_place: true`). Floats are written
as the shortest decimal that reads back as the same float32; a literal `${` is escaped.
`caffeconf.factor` turns the flat layers into modules.
"""

from __future__ import annotations

import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..caffe import prototxt, serde, upgrade
from ..caffe.facts import LAYER_TYPES, SOURCE_TYPES
from ..compile.compiler import build
from .config_text import to_toml, to_yaml
from ..errors import SOURCES, CaffeconfError, Diagnostic, DiagnosticList, InternalError, Span, did_you_mean
from ..ir import Layer, Net
from ..caffe import caffe_pb2
from ..compile.verify import verify_net

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Imported:
    """A read net: the upgraded message (what the config must compile to) and its layers.

    Layer names, bottoms and tops are raw; the values in `fields` are already written as
    config text would hold them (escaped strings, shortest floats)."""

    message: caffe_pb2.NetParameter
    layers: tuple[Layer, ...]
    net_fields: dict[str, Any]


def read_net(path: str | Path) -> Imported:
    """The net at `path`, upgraded; every unknown field, enum value and layer type is reported."""
    source = str(path)
    data = prototxt.read_bytes(path)
    if prototxt.looks_like_text(data):
        text = data.decode("utf-8")
        _refuse_solver(text, source)
        problems = unknown_names(text, source)
        if problems:
            SOURCES.register(source, text)
            raise CaffeconfError(problems)
    original = prototxt.read_net_or_solver(path)
    if isinstance(original, caffe_pb2.SolverParameter):
        raise CaffeconfError.at(Span(source, 1, 1), "this is a solver (SolverParameter), not a net: "
                                "import takes a NetParameter")
    message = upgrade.upgrade_net(original, source=source)
    _check_types(message, source)
    data_of_net = message_data(message)
    data_of_net.pop("layer", None)
    data_of_net.pop("name", None)
    return Imported(message, tuple(_layer(layer) for layer in message.layer), data_of_net)


def _refuse_solver(text: str, source: str) -> None:
    names = {field.name for field in prototxt.outline_text(text).fields}
    net_names = set(caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name)
    solver_names = set(caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name)
    if len(names & solver_names - net_names) > len(names & net_names - solver_names):
        raise CaffeconfError.at(Span(source, 1, 1), "this is a solver (SolverParameter), not a net: "
                                "import takes a NetParameter")


def _check_types(message: caffe_pb2.NetParameter, source: str) -> None:
    """Layer types of a binary net (text ones were checked with their positions)."""
    problems = [Diagnostic(f"unknown layer type '{layer.type}' (layer '{layer.name}')", Span(source, 1, 1),
                           hint=did_you_mean(layer.type, LAYER_TYPES))
                for layer in message.layer if layer.type not in LAYER_TYPES]
    unnamed = [index for index, layer in enumerate(message.layer) if not layer.name]
    problems += [Diagnostic(f"layer {index} has no name: a caffeconf layer needs one", Span(source, 1, 1))
                 for index in unnamed]
    if problems:
        raise CaffeconfError(problems)


def _layer(message: caffe_pb2.LayerParameter) -> Layer:
    fields = message_data(message)
    for key in ("name", "type", "bottom", "top"):
        fields.pop(key, None)
    return Layer(message.name, message.type, tuple(message.bottom), tuple(message.top), fields)


# ---------------------------------------------------------------------------
# Unknown names, all of them, with their positions


def unknown_names(text: str, source: str) -> list[Diagnostic]:
    """Every field, enum value and layer type in prototxt `text` that BVLC Caffe does not know.

    protobuf's parser stops at the first unknown field; a fork's net (SSD, SegNet, Faster
    R-CNN) usually has several, and the user wants the whole list at once."""
    scan = _NameScan(source)
    for kind, value, line, col in prototxt.tokens(text):
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
        self.stack = [_Frame(caffe_pb2.NetParameter.DESCRIPTOR)]
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
        if message is caffe_pb2.LayerParameter.DESCRIPTOR and name not in LAYER_TYPES:
            self._report(f"unknown layer type '{name}'", quoted, line, col, did_you_mean(name, LAYER_TYPES))
        elif message is caffe_pb2.V0LayerParameter.DESCRIPTOR and name not in upgrade.V0_LAYER_TYPES:
            self._report(f"unknown V0 layer type '{name}'", quoted, line, col,
                         did_you_mean(name, upgrade.V0_LAYER_TYPES))

    def _report(self, message: str, word: str, line: int, col: int, hint: str | None) -> None:
        span = Span(self.source, line, col, line, col + len(word))
        self.problems.append(Diagnostic(message, span, hint=hint))


_UNKNOWN_LIST = caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name["layer"]  # a list under an unknown field


# ---------------------------------------------------------------------------
# Messages as config data


def message_data(message: Message) -> dict[str, Any]:
    """Every set field as config data: enums by name, float32 values as their shortest decimal,
    strings with `${` escaped."""
    return {field.name: ([_value(field, item) for item in value] if field.is_repeated else _value(field, value))
            for field, value in message.ListFields()}


def _value(field: FieldDescriptor, value: Any) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return message_data(value)
    if kind == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if kind == FieldDescriptor.TYPE_FLOAT:
        return shortest_float32(value)
    if kind == FieldDescriptor.TYPE_STRING:
        return literal(value)
    return value


def shortest_float32(value: float) -> float:
    """The float with the fewest significant digits that rounds to the same float32 (0.0001,
    not 9.999999747378752e-05)."""
    if value != value or value in (float("inf"), float("-inf")):
        return value
    target = _as_float32(value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if _as_float32(candidate) == target:
            return candidate
    return value


def _as_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def literal(text: str) -> str:
    """`text` as a config string that means itself: `${` escaped as `$${`."""
    return text.replace("${", "$${")


# ---------------------------------------------------------------------------
# Entries


def layer_entry(name: str, layer_type: str, bottoms: list[str], tops: list[str], fields: dict[str, Any],
                prev: list[str] | None) -> dict[str, Any]:
    """A layer as a config entry, given its written names and the previous entry's tops (None at
    the start of the layer list): implicit bottom, top and in-place where the format allows."""
    entry: dict[str, Any] = {"name": name, "type": layer_type}
    is_source = layer_type in SOURCE_TYPES
    implicit_bottom = bottoms == [] if is_source else (prev is not None and len(prev) == 1 and bottoms == prev)
    if not implicit_bottom:
        entry["bottom"] = _one_or_list(bottoms)
    if tops and tops == bottoms:
        entry["in_place"] = True
    elif tops != [name]:
        entry["top"] = _one_or_list(tops)
    entry.update(compact_fields(fields))
    return entry


def _one_or_list(names: list[str]) -> Any:
    return names[0] if len(names) == 1 else list(names)


def compact_fields(value: Any) -> Any:
    """One-element lists written as their item (`kernel_size: 3`, `include: {phase: TEST}`), as
    people write them; the config format reads a single value as a one-element list."""
    if isinstance(value, dict):
        return {key: compact_fields(item) for key, item in value.items()}
    if isinstance(value, list):
        if len(value) == 1 and not isinstance(value[0], list):
            return compact_fields(value[0])
        return [compact_fields(item) for item in value]
    return value


def flat_entries(layers: tuple[Layer, ...] | list[Layer], prev: list[str] | None = None) -> list[dict[str, Any]]:
    """Top-level entries for `layers`, chained from `prev`."""
    entries = []
    for layer in layers:
        bottoms, tops = [literal(b) for b in layer.bottoms], [literal(t) for t in layer.tops]
        entries.append(layer_entry(literal(layer.name), layer.type, bottoms, tops, dict(layer.fields), prev))
        prev = tops
    return entries


def document(imported: Imported, layers: list[dict[str, Any]],
             modules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole config: format version, net name and net-level fields, modules, layers."""
    doc: dict[str, Any] = {"caffeconf": FORMAT_VERSION}
    if imported.message.name:
        doc["name"] = literal(imported.message.name)
    doc.update(compact_fields(imported.net_fields))
    if modules:
        doc["modules"] = modules
    doc["layers"] = layers
    return doc


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
        from .factor import factored_document

        text, dropped = factored_document(imported, lambda doc: render(doc, header),
                                          lambda candidate: compiles_to(candidate, as_toml, imported.message))
        warnings += dropped
    if text is None:
        text = render(document(imported, flat_entries(imported.layers)), header)
        if not refused and not compiles_to(text, as_toml, imported.message):
            raise InternalError(f"the flat import of {path} does not compile back to the same net")
    data = prototxt.read_bytes(path)
    # a binary net is measured by the text Caffe would write for it
    source_text = data.decode("utf-8") if prototxt.looks_like_text(data) else prototxt.net_to_text(imported.message)
    prototxt_lines = len(source_text.splitlines())
    notes = ("no repeated blocks found: the config is flat",) if modules and "\nmodules:" not in text \
        and "\n[modules." not in text and not refused else ()
    return ImportResult(text, prototxt_lines, tuple(warnings), notes)


def compiles_to(text: str, as_toml: bool, message: caffe_pb2.NetParameter) -> bool:
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
