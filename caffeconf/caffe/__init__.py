"""Caffe's own schema and file formats: caffe.proto and its generated module, the table of Caffe
facts, prototxt/binary I/O, NetParameter <-> IR, and the V0/V1 upgrades.

Only this subpackage imports `caffe_pb2`. This __init__ imports nothing, so that
`python -m caffeconf.caffe.generate` still runs when caffe_pb2.py is missing or stale.
"""
