"""Protobuf ↔ flat IR: `messages.NetParameter` (V2) → `ir.Net` and back, losslessly.

Also the generic converters between any message and plain data (sub-messages as dicts,
repeated fields as lists, enums as value names, only fields that are set), which the
compiler and the schema tools share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from . import prototxt
from ..errors import Span, did_you_mean
from ..ir import Layer, Net, Origin
from . import messages

# LayerParameter fields that are Layer attributes rather than entries of Layer.fields.
LAYER_ATTRIBUTES = ("name", "type", "bottom", "top")


def net_from_proto(message: messages.NetParameter, source: str | None = None,
                   outline: prototxt.Outline | None = None) -> Net:
    """The flat net of a current (V2) NetParameter. With `source` (the prototxt it was read
    from), each layer's origin is the line where its `layer {` block starts; `outline` is that
    file's outline when the caller has read it already."""
    if len(message.layers):
        raise ValueError("net_from_proto needs a V2 net: run caffeconf.upgrade.upgrade_net first")
    data = message_to_data(message)
    layers = data.pop("layer", [])
    if outline is None and source and Path(source).is_file():
        outline = prototxt.outline_file(source)
    origins = _layer_origins(message, source, outline)
    net_fields = {key: value for key, value in data.items() if key != "name"}
    return Net(name=message.name,
               layers=tuple(_layer_from_data(entry, origin)
                            for entry, origin in zip(layers, origins)),
               fields=net_fields)


def _layer_from_data(data: dict[str, Any], origin: Origin | None) -> Layer:
    return Layer(name=data.pop("name", ""), type=data.pop("type", ""),
                 bottoms=tuple(data.pop("bottom", ())), tops=tuple(data.pop("top", ())),
                 fields=data, origin=origin)


def net_to_proto(net: Net) -> messages.NetParameter:
    """The NetParameter of a flat net; `net_from_proto(net_to_proto(n))` gives `n` back."""
    message = messages.NetParameter()
    if net.name:
        message.name = net.name
    for key in ("name", "layer", "layers"):
        if key in net.fields:
            raise ValueError(f"Net.fields must not hold '{key}': it is set from the Net itself")
    data_to_message(net.fields, message)
    for index, layer in enumerate(net.layers):
        _layer_to_proto(layer, message.layer.add(), f"layer[{index}]")
    return message


def _layer_to_proto(layer: Layer, out: messages.LayerParameter, path: str) -> None:
    for key in LAYER_ATTRIBUTES:
        if key in layer.fields:
            raise ValueError(f"{path}: Layer.fields must not hold '{key}': it is a Layer attribute")
    if layer.name:
        out.name = layer.name
    if layer.type:
        out.type = layer.type
    out.bottom.extend(layer.bottoms)
    out.top.extend(layer.tops)
    data_to_message(layer.fields, out, path)


# ---------------------------------------------------------------------------
# Origins of layers read from a prototxt


def _layer_origins(message: messages.NetParameter, source: str | None,
                   outline: prototxt.Outline | None) -> list[Origin | None]:
    """Each layer's origin, matched in order by name to the source's top-level layer blocks
    (an upgrade may drop blocks, e.g. V0 padding layers, or add the Input layer)."""
    if outline is None:
        return [None] * len(message.layer)
    blocks = [f for f in outline.fields if f.name in ("layer", "layers")]
    inputs = outline.named("input")
    origins: list[Origin | None] = []
    next_block = 0
    for layer in message.layer:
        match = next((i for i in range(next_block, len(blocks))
                      if blocks[i].layer_name == layer.name), None)
        if match is not None:
            origins.append(Origin(Span(source, blocks[match].line, blocks[match].col)))
            next_block = match + 1
        elif layer.type == "Input" and inputs:  # made from net-level `input:` by the upgrade
            origins.append(Origin(Span(source, inputs[0].line, inputs[0].col)))
        else:
            origins.append(None)
    return origins


# ---------------------------------------------------------------------------
# Messages <-> plain data


def message_to_data(message: Message) -> dict[str, Any]:
    """Every set field of `message` as plain data; `data_to_message` inverts it exactly."""
    return {descriptor.name: ([_value_to_data(descriptor, item) for item in value] if descriptor.is_repeated
                              else _value_to_data(descriptor, value))
            for descriptor, value in message.ListFields()}


def _value_to_data(descriptor: FieldDescriptor, value) -> Any:
    if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_data(value)
    if descriptor.type == FieldDescriptor.TYPE_ENUM:
        return descriptor.enum_type.values_by_number[value].name
    return value


def data_to_message(data: Mapping[str, Any], message: Message, path: str = "") -> Message:
    """Set the fields in `data` on `message` (merging) and return it.

    Raises ValueError (unknown field or enum value, out-of-range number) or TypeError
    (wrong kind of value), naming the field path, e.g. `layer[3].convolution_param.pad[0]`."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{path or 'message'}: expected a mapping for "
                        f"{message.DESCRIPTOR.full_name}, got {type(data).__name__}")
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        descriptor = fields.get(key)
        if descriptor is None:
            hint = did_you_mean(str(key), fields)
            raise ValueError(f"{where}: unknown field of {message.DESCRIPTOR.full_name}"
                             + (f" ({hint})" if hint else ""))
        if descriptor.is_repeated:
            _set_repeated(message, descriptor, value, where)
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            data_to_message(value, getattr(message, key), where)
            getattr(message, key).SetInParent()  # so that an empty mapping still sets it
        else:
            _assign(message, descriptor, _scalar(descriptor, value, where), where)
    return message


def _set_repeated(message: Message, descriptor: FieldDescriptor, values, where: str) -> None:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{where}: expected a list for repeated field, got {type(values).__name__}")
    container = getattr(message, descriptor.name)
    for index, value in enumerate(values):
        item_path = f"{where}[{index}]"
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            data_to_message(value, container.add(), item_path)
        else:
            item = _scalar(descriptor, value, item_path)
            try:
                container.append(item)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{item_path}: {error}") from None


def _assign(message: Message, descriptor: FieldDescriptor, value, where: str) -> None:
    try:
        setattr(message, descriptor.name, value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from None


# Each scalar field type -> the Python values it takes and how an error names them.
_SCALAR_VALUES = {
    **dict.fromkeys((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
                     FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
                     FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
                     FieldDescriptor.TYPE_SFIXED64), (int, "an integer")),
    **dict.fromkeys((FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE), ((int, float), "a number")),
    FieldDescriptor.TYPE_BOOL: (bool, "a boolean"),
    FieldDescriptor.TYPE_STRING: (str, "a string"),
}


def _scalar(descriptor: FieldDescriptor, value, where: str):
    """`value` checked against the field's type (bools are not numbers here), enums by name."""
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum_number(descriptor, value, where)
    expected, word = _SCALAR_VALUES.get(kind, (bytes, "bytes"))
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise TypeError(f"{where}: expected {word}, got {type(value).__name__} {value!r}")
    return value


def _enum_number(descriptor: FieldDescriptor, value, where: str) -> int:
    enum = descriptor.enum_type
    if not isinstance(value, str):
        raise TypeError(f"{where}: expected a value name of {enum.full_name}, "
                        f"got {type(value).__name__} {value!r}")
    if value not in enum.values_by_name:
        names = [v.name for v in enum.values]
        hint = did_you_mean(value, names)
        raise ValueError(f"{where}: '{value}' is not a value of {enum.full_name} "
                         f"(one of {', '.join(names)})" + (f"; {hint}" if hint else ""))
    return enum.values_by_name[value].number
