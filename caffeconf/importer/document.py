"""Caffe messages and flat layers -> config document data: the entries, values and whole
document that both the flat import and the factoring into modules write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..caffe import messages
from ..caffe.facts import SOURCE_TYPES, shortest_float32
from ..ir import Layer

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Imported:
    """A read net: the upgraded message (what the config must compile to) and its layers.

    Layer names, bottoms and tops are raw; the values in `fields` are already written as
    config text would hold them (escaped strings, shortest floats)."""

    message: messages.NetParameter
    layers: tuple[Layer, ...]
    net_fields: dict[str, Any]
    source_lines: int  # of the prototxt text (a binary net: of the text Caffe would write)


# ---------------------------------------------------------------------------
# Messages as config data


def message_data(message: Message, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every set field but those in `skip` as config data: enums by name, float32 values as their
    shortest decimal, strings with `${` escaped."""
    return {field.name: ([_value(field, item) for item in value] if field.is_repeated else _value(field, value))
            for field, value in message.ListFields() if field.name not in skip}


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


def module_declaration(uses: int, qualified: bool, params: dict[str, Any], inputs: list[str], outputs: list[str],
                       layers: list[dict[str, Any]]) -> dict[str, Any]:
    """A recovered module as `modules:` declares it; `uses`: how many times the config uses it."""
    decl: dict[str, Any] = {"doc": f"Recovered by `caffeconf import --modules`: used {uses} times."}
    if not qualified:
        decl["qualify"] = False
    if params:
        decl["params"] = params
    return {**decl, "inputs": inputs, "outputs": outputs, "layers": layers}


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
