"""Caffe's message types by name, in the dialect in force (see `caffe.dialect`).

Everything reaches the schema through here: `messages.NetParameter` is the current dialect's
NetParameter class (BVLC's generated `caffe_pb2` unless a fork's caffe.proto is in use), and
`descriptor(name)` its descriptor. Names are looked up on each access, never bound at import."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from .dialect import current

_NAMES = frozenset({"BlobProto", "BlobProtoVector", "BlobShape", "Datum", "LayerParameter", "NetParameter",
                    "NetState", "NetStateRule", "ParamSpec", "SolverParameter", "SolverState",
                    "V0LayerParameter", "V1LayerParameter", "FillerParameter"})


def __getattr__(name: str) -> type[Message]:
    if name in _NAMES:
        return current().message_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def descriptor(message_name: str) -> Descriptor:
    """The descriptor of a Caffe message type, e.g. "ConvolutionParameter", in the current dialect."""
    return current().descriptor(message_name)


def current_is_bvlc() -> bool:
    return current().is_bvlc


def dialect_name() -> str:
    """How diagnostics name the dialect in force: "BVLC's caffe.proto" or the fork's proto path."""
    dialect = current()
    return "BVLC's caffe.proto" if dialect.is_bvlc else str(dialect.proto_path)
