"""Located config values -> plain Caffe field data, checked against caffe.proto's descriptors.

This is where a YAML value meets the Caffe field it lands in: unknown fields
(with "did you mean"), wrong types, out-of-range integers and unknown enum
names are reported at the value's location. The result is the plain data the
flat IR holds (see `caffeconf.ir`).
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable, Sequence

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..errors import CaffeconfError, DiagnosticList, did_you_mean
from .tree import Map, Node, Scalar, Sentinel, Seq
from ..caffe import messages
from ..caffe.facts import INT_RANGES, MAX_BLOB_AXES, fork_field_hint


def layer_message() -> Descriptor:
    """LayerParameter in the dialect in force (as are `net_message` and `solver_message`)."""
    return messages.descriptor("LayerParameter")


def net_message() -> Descriptor:
    return messages.descriptor("NetParameter")


def solver_message() -> Descriptor:
    return messages.descriptor("SolverParameter")


Evaluate = Callable[[Scalar], Any]


def type_name(field: FieldDescriptor) -> str:
    """The field's type as caffe.proto writes it (for messages: the message name)."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return field.message_type.name
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return f"enum {field.enum_type.name}"
    return {
        FieldDescriptor.CPPTYPE_FLOAT: "float", FieldDescriptor.CPPTYPE_DOUBLE: "double",
        FieldDescriptor.CPPTYPE_BOOL: "bool", FieldDescriptor.CPPTYPE_STRING: "string",
    }.get(field.cpp_type) or INT_RANGES[field.cpp_type][2]


def describe(value: Any) -> str:
    kind = {bool: "bool", int: "int", float: "float", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)
    if kind == "bool":
        return f"bool {str(value).lower()}"
    return f"{kind} {value!r}" if kind in ("int", "float", "string") else kind


def check_scalar(field: FieldDescriptor, value: Any) -> tuple[Any, str | None]:
    """(converted value, None) when `value` fits the field, else (None, problem)."""
    cpp = field.cpp_type
    if cpp in INT_RANGES:
        low, high, name = INT_RANGES[cpp]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return None, f"expects an integer ({name}), got float {value!r} (write {int(value)})"
            return None, f"expects an integer ({name}), got {describe(value)}"
        if not low <= value <= high:
            return None, f"value {value} is out of range for {name}"
        return value, None
    if cpp in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"expects a number ({type_name(field)}), got {describe(value)}"
        if isinstance(value, int) and abs(value) > sys.float_info.max:
            return None, f"value {value} is out of range for {type_name(field)}"
        return value, None
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            return None, f"expects true or false, got {describe(value)}"
        return value, None
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        names = field.enum_type.values_by_name
        if not isinstance(value, str) or value not in names:
            hint = did_you_mean(str(value), names) if isinstance(value, str) else None
            hint = f" ({hint})" if hint else ""
            return None, (f"expects one of {', '.join(names)} ({field.enum_type.name}), "
                          f"got {describe(value)}{hint}")
        return value, None
    if not isinstance(value, str):
        return None, f"expects a string, got {describe(value)}"
    return (value.encode("utf-8") if field.type == FieldDescriptor.TYPE_BYTES else value), None


class FieldChecker:
    """Converts located values for a message descriptor, reporting into `diags`."""

    def __init__(self, evaluate: Evaluate, diags: DiagnosticList):
        self.evaluate, self.diags = evaluate, diags

    def message(self, node: Node, descriptor: Descriptor, path: str,
                skip: frozenset[str] = frozenset(), layer_type: str | None = None) -> dict[str, Any]:
        if not isinstance(node, Map):
            self.diags.error(node.span, f"{path} expects a mapping of {descriptor.name} fields, "
                             f"got {describe(self._value(node))}")
            return {}
        data: dict[str, Any] = {}
        for key, child in node.values.items():
            if key in skip:
                continue
            field = descriptor.fields_by_name.get(key)
            if field is None:
                self._unknown(key, node, descriptor, path, layer_type)
                continue
            value = self.field(child, field, f"{path}.{key}" if path else key)
            if value is not _MISSING:
                data[key] = value
        if node.values and not data and path and all(_is_null(child) for child in node.values.values()):
            return _MISSING  # every entry was null: leave the whole message unset
        return data

    def field(self, node: Node, field: FieldDescriptor, path: str) -> Any:
        if field.is_repeated:
            items = self._items(node)
            if items is None:
                return _MISSING
            if field.full_name.endswith("BlobShape.dim") and len(items) > MAX_BLOB_AXES:
                # refused before the items are checked: 10,000 shapes of 99,999 dims would never finish
                self.diags.error(node.span, f"{path} has {len(items)} dims: a Caffe blob has at most "
                                 f"{MAX_BLOB_AXES} axes (kMaxBlobAxes)")
                return _MISSING
            return [v for v in (self._single(item, field, path) for item in items) if v is not _MISSING]
        return self._single(node, field, path)

    def _items(self, node: Node) -> Sequence[Node] | None:
        if isinstance(node, Seq):
            return node.items
        if isinstance(node, Scalar):
            value = self._value(node)
            if value is _MISSING or value is None:
                return None
            if isinstance(value, list):  # a `${...}` that produced a list
                return [Scalar(v, node.span, evaluated=True) for v in value]
        return [node]

    def _single(self, node: Node, field: FieldDescriptor, path: str) -> Any:
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if isinstance(node, Scalar) and self._value(node) is None:
                return _MISSING  # null: the message is left unset
            return self.message(node, field.message_type, path)
        if not isinstance(node, Scalar):
            self.diags.error(node.span, f"{path} expects a single {type_name(field)} value, "
                             f"got a {'list' if isinstance(node, Seq) else 'mapping'}")
            return _MISSING
        value = self._value(node)
        if value is _MISSING or value is None:
            return _MISSING  # null: the field is left unset
        converted, problem = check_scalar(field, value)
        if problem:
            self.diags.error(node.span, f"{path} {problem}")
            return _MISSING
        return converted

    def _value(self, node: Node) -> Any:
        if not isinstance(node, Scalar) or node.value is None:
            return None
        try:
            return self.evaluate(node)
        except CaffeconfError as error:
            self.diags.extend(error)
            return _MISSING

    def _unknown(self, key: str, node: Map, descriptor: Descriptor, path: str, layer_type: str | None) -> None:
        where = f" in {path}" if path else ""
        hint = fork_field_hint(descriptor.name, key) or did_you_mean(key, descriptor.fields_by_name)
        if hint is None and descriptor.name == "LayerParameter":
            hint = _hint_nested(key, layer_type)
        self.diags.error(node.keys[key], f"unknown field '{key}'{where} ({descriptor.name} has no such field)",
                         hint=hint)


def _is_null(node: Node) -> bool:
    """True for a scalar that is null or a `${...}` (whose value, when it was left out, was null)."""
    return isinstance(node, Scalar) and (node.value is None or (isinstance(node.value, str) and "${" in node.value))


_MISSING = Sentinel("missing")


def param_message_of(layer_type: str | None) -> str | None:
    """The *_param field named after a layer type (InnerProduct -> inner_product_param)."""
    if not layer_type:
        return None
    snake = "convolution" if layer_type == "Deconvolution" else re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", layer_type).lower()
    for name in (f"{snake}_param", f"{layer_type.lower()}_param"):  # ReLU -> relu_param
        if name in layer_message().fields_by_name:
            return name
    return None


def _hint_nested(key: str, layer_type: str | None) -> str | None:
    """For a type-specific field written on the layer itself, name the *_param it belongs in."""
    owners = [f.name for f in layer_message().fields
              if f.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and f.name.endswith("_param")
              and key in f.message_type.fields_by_name]
    own = param_message_of(layer_type)
    if own in owners:
        owners = [own]
    if owners:
        return f"'{key}' belongs inside {' or '.join(owners[:3])}"
    return None


def set_solver_fields(solver, fields: Node, field_path: str, source: str) -> None:
    """Set the located SolverParameter `fields` on the message `solver`, each checked where it is
    written (raising CaffeconfError with every problem); a field given replaces what `solver` had."""
    from ..caffe.serde import data_to_message

    diags = DiagnosticList()
    data = FieldChecker(lambda scalar: scalar.value, diags).message(fields, solver_message(), field_path)
    diags.raise_if_errors()
    for name in data:
        solver.ClearField(name)
    data_to_message(data, solver, source)
