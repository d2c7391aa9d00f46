"""The runner: executes a flat Caffe net with PyTorch, with Caffe's numerics.

The only package (with the `run` and `time` commands) that imports torch.
`CaffeNet` is the interpreter; `layers.LAYERS` the table of layer types;
`weights` reads and writes .caffemodel files; `fillers` initializes blobs.
"""
