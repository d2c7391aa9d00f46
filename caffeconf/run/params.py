"""A layer's `*_param` message as plain data, with caffe.proto's defaults for absent fields.

The flat IR keeps only the fields that were written. Layers read through
`Params`, which answers absent fields from the protobuf descriptors of
`caffeconf.caffe.caffe_pb2`, so every default has one source: caffe.proto.
"""

from __future__ import annotations

from typing import Any, Mapping

from google.protobuf.descriptor import FieldDescriptor

from ..caffe import dialect, messages


_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


class Params:
    """Read-only view of one message: `p["field"]` gives the value or its default."""

    def __init__(self, descriptor: Any, values: Mapping[str, Any] | None):
        self._descriptor = descriptor
        self._values = values or {}

    @classmethod
    def of(cls, message_name: str, values: Mapping[str, Any] | None) -> "Params":
        """A view of `values` as the caffe.proto message called `message_name`."""
        return cls(messages.descriptor(message_name), values)

    def has(self, name: str) -> bool:
        """True when the field was written (proto2 `has_` semantics; lists: non-empty)."""
        self._field(name)
        return self._values.get(name) not in (None, [], ())

    def __getitem__(self, name: str) -> Any:
        field = self._field(name)
        if name in self._values:
            return self._wrap(field, self._values[name])
        if field.is_repeated:
            return []
        if field.message_type is not None:
            return Params(field.message_type, None)
        if field.enum_type is not None:
            return field.enum_type.values_by_number[field.default_value].name
        return field.default_value

    def _field(self, name: str) -> Any:
        field = self._descriptor.fields_by_name.get(name)
        if field is None and not messages.current_is_bvlc() and name not in self._values:
            # A fork older than a BVLC field (SegNet's PoolingParameter has no round_mode) behaves
            # as BVLC's default for it.
            field = _bvlc_field(self._descriptor.name, name)
        if field is None:
            raise KeyError(f"{self._descriptor.name} has no field '{name}'")
        return field

    @staticmethod
    def _wrap(field: Any, value: Any) -> Any:
        if field.message_type is None:
            if field.cpp_type in _FLOATS:  # as Caffe holds it: a config's `eps: 1` is 1.0 to every layer
                return [float(v) for v in value] if field.is_repeated else float(value)
            return list(value) if field.is_repeated and not isinstance(value, list) else value
        if field.is_repeated:
            return [Params(field.message_type, item) for item in value]
        return Params(field.message_type, value)

    def __repr__(self) -> str:
        return f"Params({self._descriptor.name}, {dict(self._values)!r})"


def _bvlc_field(message_name: str, name: str) -> Any:
    bvlc = dialect.bvlc()
    return bvlc.descriptor(message_name).fields_by_name.get(name) if bvlc.has_message(message_name) else None


def layer_params(fields: Mapping[str, Any], name: str) -> Params:
    """The layer's `name` sub-message (e.g. "convolution_param") with defaults, in the dialect in force."""
    field = messages.descriptor("LayerParameter").fields_by_name[name]
    return Params(field.message_type, fields.get(name))
