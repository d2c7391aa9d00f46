"""What caffeconf knows of Caffe's layer types (BVLC master's registry)."""

from __future__ import annotations

# Every type string BVLC Caffe registers (src/caffe/layers/*.cpp, layer_factory.cpp).
LAYER_TYPES = frozenset("""
AbsVal Accuracy ArgMax BNLL BatchNorm BatchReindex Bias Clip Concat ContrastiveLoss Convolution Crop
Data Deconvolution Dropout DummyData ELU Eltwise Embed EuclideanLoss Exp Filter Flatten HDF5Data
HDF5Output HingeLoss Im2col ImageData InfogainLoss InnerProduct Input LRN LSTM LSTMUnit Log MVN
MemoryData MultinomialLogisticLoss PReLU Parameter Pooling Power Python RNN ReLU Reduction Reshape SPP
Scale Sigmoid SigmoidCrossEntropyLoss Silence Slice Softmax SoftmaxWithLoss Split Swish TanH Threshold
Tile WindowData
""".split())

# Types that take no bottom blob: an omitted `bottom` means none rather than the previous top.
SOURCE_TYPES = frozenset({"Data", "DummyData", "HDF5Data", "ImageData", "Input", "MemoryData",
                          "WindowData", "Parameter"})
