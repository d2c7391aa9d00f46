"""Caffe's message types by name, for the packages outside caffe/ that build or inspect messages.

Everything outside this subpackage reaches the schema through here, so that the schema has one
source (today the generated caffe_pb2)."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from . import caffe_pb2

BlobProto = caffe_pb2.BlobProto
BlobShape = caffe_pb2.BlobShape
Datum = caffe_pb2.Datum
LayerParameter = caffe_pb2.LayerParameter
NetParameter = caffe_pb2.NetParameter
NetState = caffe_pb2.NetState
ParamSpec = caffe_pb2.ParamSpec
SolverParameter = caffe_pb2.SolverParameter
SolverState = caffe_pb2.SolverState
V0LayerParameter = caffe_pb2.V0LayerParameter
V1LayerParameter = caffe_pb2.V1LayerParameter


def descriptor(message_name: str) -> Descriptor:
    """The descriptor of a Caffe message type, e.g. "ConvolutionParameter"."""
    return getattr(caffe_pb2, message_name).DESCRIPTOR
