"""Caffe's protobuf schema (caffe.proto) and its generated module, caffe_pb2.

Import `caffeconf.proto.caffe_pb2` directly: this package imports nothing, so
`python -m caffeconf.proto.generate` still runs when caffe_pb2.py is missing or stale.
"""
