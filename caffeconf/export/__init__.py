"""Flat Net (filtered for one phase) + its learnable blobs as arrays -> an ONNX ModelProto with Caffe's numerics.

`graph` drives the export: every layer through the table in `layers` (Caffe type -> a function
writing ONNX nodes), weights as initializers, value names kept from Caffe's blob names; a layer
ONNX cannot express is refused, located, before anything is written. `ort` runs a ModelProto in
ONNX Runtime (the `run --engine onnxruntime` engine). Needs the `onnx` package (extra
`caffeconf[onnx]`); never imports torch.
"""
