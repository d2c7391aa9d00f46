"""Flat Net (+ .caffemodel weights) -> outputs: executes a Caffe net with PyTorch, with Caffe's numerics.

The only package (with train/) that imports torch. `CaffeNet` is the interpreter; `layers.LAYERS`
the table of layer types; `fillers` initializes blobs (caffe.weights reads and writes .caffemodel).
"""
