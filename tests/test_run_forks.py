"""The runner on the depthwise, shuffle and interpolation forks' layers (tiny fork's proto): against
OpenCV's readNetFromCaffe where it reads the layer as the fork does, against the fork's CPU loops
written out in numpy where it does not (Interp's shrink_factor and cropping, DepthwiseConvolution),
gradients by gradcheck in float64, and a training run through all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.ir import Layer  # noqa: E402
from caffeconf.run.layers import LAYERS, LayerContext  # noqa: E402

from test_run_layers import close, feed_layer  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_fork")

X = np.random.default_rng(7).standard_normal((2, 6, 7, 9)).astype(np.float32)
INPUT = 'name: "t"\ninput: "data"\ninput_shape { dim: 2 dim: 6 dim: 7 dim: 9 }\n'


def layer_text(layer_type: str, param: str, bottom: str = "data", name: str = "l") -> str:
    return f'layer {{ name: "{name}" type: "{layer_type}" bottom: "{bottom}" top: "{name}" {param} }}\n'


# ---------------------------------------------------------------- against OpenCV

OPENCV_CASES = [
    ("ConvolutionDepthwise", "convolution_param { num_output: 6 kernel_size: 3 pad: 1 stride: 2 }"),
    ("ConvolutionDepthwise", "convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 pad: 1 stride: 1 "
                             "dilation: 2 bias_term: false }"),
    ("ShuffleChannel", "shuffle_channel_param { group: 2 }"),
    ("ShuffleChannel", "shuffle_channel_param { group: 3 }"),
    ("Pooling", "pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 ceil_mode: false }"),
    ("Pooling", "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 ceil_mode: false }"),
    ("Pooling", "pooling_param { pool: AVE kernel_size: 2 stride: 2 ceil_mode: true }"),
    ("Interp", "interp_param { zoom_factor: 3 }"),
    ("Interp", "interp_param { height: 13 width: 4 }"),
    ("Interp", "interp_param { height: 1 width: 5 }"),
    ("Interp", "interp_param { height: 7 width: 9 }"),
]


@pytest.mark.parametrize("layer_type,param", OPENCV_CASES, ids=[p for _, p in OPENCV_CASES])
def test_layer_matches_opencv(tmp_path, layer_type, param):
    pytest.importorskip("cv2")
    from test_run_oracle import run_both

    net = tmp_path / "net.prototxt"
    net.write_text(INPUT + layer_text(layer_type, param))
    ours, theirs = run_both(net, {"data": X}, tmp_path)
    assert ours["l"].shape == theirs["l"].shape
    assert float(np.abs(ours["l"] - theirs["l"]).max()) <= 1e-5


SHUFFLENET_UNIT = INPUT + "".join([
    layer_text("Convolution", "convolution_param { num_output: 12 kernel_size: 1 group: 3 }", name="reduce"),
    layer_text("ShuffleChannel", "shuffle_channel_param { group: 3 }", "reduce", "shuffle"),
    layer_text("ConvolutionDepthwise", "convolution_param { num_output: 12 kernel_size: 3 pad: 1 stride: 2 "
                                       "bias_term: false }", "shuffle", "dw"),
    layer_text("Pooling", "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 ceil_mode: false }",
               "data", "pool"),
    'layer { name: "cat" type: "Concat" bottom: "dw" bottom: "pool" top: "cat" }\n',
    layer_text("Interp", "interp_param { zoom_factor: 2 }", "cat", "up"),
])


def test_a_shufflenet_unit_matches_opencv(tmp_path):
    pytest.importorskip("cv2")
    from test_run_oracle import run_both

    net = tmp_path / "net.prototxt"
    net.write_text(SHUFFLENET_UNIT)
    ours, theirs = run_both(net, {"data": X}, tmp_path, extra_outputs=["shuffle", "dw", "pool"])
    for name, expected in theirs.items():
        assert ours[name].shape == expected.shape, name
        assert float(np.abs(ours[name] - expected).max()) <= 1e-5, name


# ---------------------------------------------------------------- against the fork's loops

def interp2(x: np.ndarray, height: int, width: int, pad_beg: int = 0, pad_end: int = 0) -> np.ndarray:
    """caffe_cpu_interp2 for InterpLayer, written out: float32 positions and weights."""
    f = np.float32
    h1, w1 = x.shape[2] + pad_beg + pad_end, x.shape[3] + pad_beg + pad_end
    crop = x[:, :, -pad_beg:-pad_beg + h1, -pad_beg:-pad_beg + w1]
    if (h1, w1) == (height, width):
        return crop.copy()
    rh = f(h1 - 1) / f(height - 1) if height > 1 else f(0)
    rw = f(w1 - 1) / f(width - 1) if width > 1 else f(0)
    out = np.zeros(x.shape[:2] + (height, width), np.float32)
    for i in range(height):
        hr = f(rh * f(i))
        h = int(hr)
        hp = 1 if h < h1 - 1 else 0
        hl = f(hr - f(h))
        for j in range(width):
            wr = f(rw * f(j))
            w = int(wr)
            wp = 1 if w < w1 - 1 else 0
            wl = f(wr - f(w))
            out[:, :, i, j] = ((1 - hl) * ((1 - wl) * crop[:, :, h, w] + wl * crop[:, :, h, w + wp]) +
                               hl * ((1 - wl) * crop[:, :, h + hp, w] + wl * crop[:, :, h + hp, w + wp]))
    return out


@pytest.mark.parametrize("param,size,crop", [
    ({"shrink_factor": 2}, (4, 5), (0, 0)),
    ({"shrink_factor": 2, "zoom_factor": 3}, (10, 13), (0, 0)),
    ({"zoom_factor": 2, "pad_beg": -1, "pad_end": -2}, (7, 11), (-1, -2)),
    ({"height": 5, "width": 6, "pad_beg": -1, "pad_end": -2}, (5, 6), (-1, -2)),  # the crop itself: a copy
])
def test_interp_is_the_forks_bilinear_interpolation(param, size, crop):
    (top,) = feed_layer("Interp", {"interp_param": param}, X)
    close(top, interp2(X, *size, *crop), 1e-6)


def test_shuffle_channel_moves_channel_i_times_c_over_g_plus_j_to_j_times_g_plus_i():
    (top,) = feed_layer("ShuffleChannel", {"shuffle_channel_param": {"group": 3}}, X)
    for i in range(3):
        for j in range(2):
            assert np.array_equal(top[:, j * 3 + i], X[:, i * 2 + j])


def test_depthwise_convolution_is_caffes_convolution_with_its_groups():
    """DepthwiseConvolutionLayer::Forward_cpu is BaseConvolutionLayer's: any group and num_output."""
    rng = np.random.default_rng(8)
    weight, bias = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    fields = {"convolution_param": {"num_output": 4, "group": 2, "kernel_size": [3], "stride": [2]}}
    (top,) = feed_layer("DepthwiseConvolution", fields, X, blobs=[weight, bias])
    expected = np.zeros((2, 4, 3, 4))
    for out in range(4):
        group = out // 2
        for i in range(3):
            for j in range(4):
                window = X[:, group * 3:group * 3 + 3, 2 * i:2 * i + 3, 2 * j:2 * j + 3].astype(np.float64)
                expected[:, out, i, j] = (window * weight[out]).sum(axis=(1, 2, 3)) + bias[out]
    close(top, expected)


# ---------------------------------------------------------------- gradients

def op_of(layer_type, fields):
    layer = Layer("l", layer_type, ("x",), ("y",), fields)
    return LAYERS[layer_type](LayerContext(layer, "TRAIN", torch.Generator()))


def small(*shape, seed=9):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape)).requires_grad_()


@pytest.mark.parametrize("layer_type,fields,blobs", [
    ("ConvolutionDepthwise", {"convolution_param": {"kernel_size": [3], "pad": [1], "stride": [2]}},
     [(3, 1, 3, 3), (3,)]),
    ("ConvolutionDepthwise", {"convolution_param": {"kernel_h": 2, "kernel_w": 3, "pad": [0], "stride": [1],
                                                    "dilation": [2], "bias_term": False}}, [(3, 1, 2, 3)]),
    ("ShuffleChannel", {"shuffle_channel_param": {"group": 3}}, []),
    ("Interp", {"interp_param": {"zoom_factor": 2, "pad_beg": -1, "pad_end": -1}}, []),
    ("Interp", {"interp_param": {"height": 3, "width": 7}}, []),
    ("Interp", {"interp_param": {"shrink_factor": 2}}, []),
])
def test_backward_is_the_gradient_of_the_forward(layer_type, fields, blobs):
    op = op_of(layer_type, fields)
    inputs = [small(2, 3, 5, 6)] + [small(*shape, seed=10 + i) for i, shape in enumerate(blobs)]
    assert torch.autograd.gradcheck(lambda x, *b: op.forward([x], list(b))[0], inputs)


def test_interp_backward_is_the_forks_adjoint():
    """caffe_cpu_interp2_backward: each output's gradient added to its four sources with its weights."""
    op = op_of("Interp", {"interp_param": {"height": 4, "width": 11}})
    x = small(1, 2, 3, 5)
    top = op.forward([x], [])[0]
    dy = np.random.default_rng(11).standard_normal(top.shape)
    top.backward(torch.from_numpy(dy))
    expected = np.zeros(x.shape)
    for index in np.ndindex(x.shape):  # the adjoint's column: the forward of a unit input
        unit = np.zeros(x.shape, np.float32)
        unit[index] = 1
        expected[index] = (interp2(unit, 4, 11) * dy).sum()
    close(x.grad.numpy(), expected, 1e-6)


# ---------------------------------------------------------------- training

TRAINED = """caffeconf: 1
caffe_proto: PROTO
layers:
  - {name: data, type: DummyData, top: [data, target], dummy_data_param: {
      shape: [{dim: [2, 6, 8, 8]}, {dim: [2, 12, 8, 8]}], data_filler: [{type: gaussian}, {type: gaussian}]}}
  - {name: reduce, type: Convolution, bottom: data,
     convolution_param: {num_output: 12, kernel_size: 1, group: 3, weight_filler: {type: xavier}}}
  - {name: shuffle, type: ShuffleChannel, bottom: reduce, shuffle_channel_param: {group: 3}}
  - {name: dw, type: ConvolutionDepthwise, bottom: shuffle,
     convolution_param: {kernel_size: 3, pad: 1, stride: 2, weight_filler: {type: xavier}}}
  - {name: pool, type: Pooling, bottom: dw, pooling_param: {pool: MAX, kernel_size: 2, stride: 2, ceil_mode: false}}
  - {name: up, type: Interp, bottom: pool, interp_param: {height: 8, width: 8}}
  - {name: loss, type: EuclideanLoss, bottom: [up, target]}
solver:
  base_lr: 0.1
  lr_policy: fixed
  max_iter: 2
  snapshot_prefix: PREFIX
"""


def test_a_net_of_the_forks_layers_trains(tmp_path, fork_proto):
    from caffeconf import Model, train
    from caffeconf.caffe.weights import read_caffemodel

    config = tmp_path / "net.yaml"
    config.write_text(TRAINED.replace("PROTO", str(fork_proto)).replace("PREFIX", str(tmp_path / "net")))
    assert train(config, quiet=True, device="cpu") == 0
    trained = read_caffemodel(tmp_path / "net_iter_2.caffemodel")
    initial = Model(config, device="cpu", phase="TRAIN").blob_arrays()
    # The first layer's weights moved: the gradient came back through Interp, pooling, the
    # depthwise convolution and the shuffle.
    for name in ("reduce", "dw"):
        for before, after in zip(initial[name], trained[name]):
            assert after.data.size == before.size and not np.allclose(after.data.reshape(before.shape), before)
