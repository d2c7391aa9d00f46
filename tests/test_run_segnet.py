"""SegNet's and ENet's BN and Upsample, and MAX pooling's mask top that Upsample reads: numpy formulas
written from the forks' bn_layer.cpp and upsample_layer.cpp (OpenCV runs neither), the forks'
backward, OpenCV for the mask, and a training step of a small SegNet-like net."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.compile.load import load  # noqa: E402
from caffeconf.compile.rules import filter_net  # noqa: E402
from caffeconf.errors import CaffeconfError  # noqa: E402
from caffeconf.ir import Layer  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.layers import LAYERS, LayerContext  # noqa: E402
from caffeconf.train.solvers import learnable_params, make_solver  # noqa: E402

from test_run_layers import close, feed_layer  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_fork")

X = np.random.default_rng(7).standard_normal((2, 3, 5, 4)).astype(np.float32) + 0.5
SCALE, SHIFT = np.array([0.5, 2.0, -1.0]), np.array([0.25, 0.0, 1.5])
BLOBS = [SCALE.reshape(1, 3, 1, 1), SHIFT.reshape(1, 3, 1, 1)]
FILLERS = {"scale_filler": {"type": "constant", "value": 2.0}, "shift_filler": {"type": "constant", "value": 0.5}}


def op_of(layer_type, fields, bottoms=("x",), tops=("y",), phase="TRAIN"):
    return LAYERS[layer_type](LayerContext(Layer("l", layer_type, bottoms, tops, fields), phase, torch.Generator()))


def fork_batch_statistics(x):
    """bn_layer.cpp LEARN: E(x) and E(x^2) - E(x)^2 per channel over num, height and width."""
    x = x.astype(np.float64)
    mean = x.mean(axis=(0, 2, 3))
    return mean, (x ** 2).mean(axis=(0, 2, 3)) - mean ** 2


# ---------------------------------------------------------------- BN

@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
def test_bn_learn_normalizes_with_the_batch_statistics_in_either_phase(phase):
    top, mean, variance = feed_layer("BN", {"bn_param": FILLERS}, X, tops=3, phase=phase, blobs=BLOBS)
    m, v = fork_batch_statistics(X)
    expected = (X - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-9)
    close(top, expected * SCALE[None, :, None, None] + SHIFT[None, :, None, None], 2e-5)
    assert mean.shape == variance.shape == (1, 3, 1, 1)
    close(mean, m)
    close(variance, v)  # before the 1e-9 is added


def test_bn_inference_is_scale_and_shift_only():
    (top,) = feed_layer("BN", {"bn_param": {"bn_mode": "INFERENCE"}}, X, blobs=BLOBS)
    close(top, X * SCALE[None, :, None, None] + SHIFT[None, :, None, None])


def test_bn_blobs_are_one_by_c_by_one_by_one_from_its_fillers_and_its_top_is_four_axes(tmp_path):
    model = CaffeNet(filter_net(_one_layer(tmp_path, "BN", "bn_param { scale_filler { type: 'constant' value: 2 } }",
                                           "2 dim: 3"), phase="TEST"))
    with torch.no_grad():
        out = model({"x": torch.ones(2, 3)}, keep_all=True)
    scale, shift = model.layer_blobs[1]
    assert tuple(scale.shape) == tuple(shift.shape) == (1, 3, 1, 1)
    # An absent shift_filler is the FillerParameter default, constant 0, as in the fork.
    assert scale.detach().unique().tolist() == [2.0] and shift.detach().unique().tolist() == [0.0]
    assert tuple(out["l"].shape) == (2, 3, 1, 1)


@pytest.mark.parametrize("fields,tops,message", [
    ({"bn_param": {"bn_mode": "INFERENCE"}}, 2, "BN with bn_mode INFERENCE makes at most 1 top(s), got 2"),
    ({}, 4, "BN with bn_mode LEARN makes at most 3 top(s), got 4"),
])
def test_bn_top_counts_follow_the_forks(fields, tops, message):
    with pytest.raises(CaffeconfError, match=re.escape(f"layer 'l' (BN): {message}")):
        op_of("BN", fields, tops=tuple(f"t{i}" for i in range(tops)))


@pytest.mark.parametrize("mode", ["LEARN", "INFERENCE"])
def test_bn_backward_is_the_forks(mode):
    """Backward_cpu: LEARN dx = (g - mean(g) - x_norm mean(g x_norm)) / sqrt(var + eps) with g = scale dy,
    the means over N, H, W, dscale = sum(dy x_norm), dshift = sum(dy); INFERENCE dx = scale dy,
    dscale = sum(dy x), dshift = sum(dy)."""
    op = op_of("BN", {"bn_param": {"bn_mode": mode}})
    x = torch.from_numpy(X.astype(np.float64)).requires_grad_()
    scale = torch.tensor(SCALE.reshape(1, 3, 1, 1), requires_grad=True)
    shift = torch.tensor(SHIFT.reshape(1, 3, 1, 1), requires_grad=True)
    dy = np.random.default_rng(8).standard_normal(X.shape)
    op.forward([x], [scale, shift])[0].backward(torch.from_numpy(dy))
    xs, gain = X.astype(np.float64), SCALE[None, :, None, None]
    if mode == "LEARN":
        m, v = fork_batch_statistics(X)
        std = np.sqrt(v + 1e-9)[None, :, None, None]
        normalized = (xs - m[None, :, None, None]) / std
        g = gain * dy
        expected = (g - g.mean(axis=(0, 2, 3), keepdims=True)
                    - normalized * (g * normalized).mean(axis=(0, 2, 3), keepdims=True)) / std
    else:
        normalized, expected = xs, gain * dy
    close(x.grad.numpy(), expected)
    close(scale.grad.numpy().ravel(), (dy * normalized).sum(axis=(0, 2, 3)))
    close(shift.grad.numpy().ravel(), dy.sum(axis=(0, 2, 3)))


def test_bn_learn_gradcheck():
    op = op_of("BN", {})
    x = torch.from_numpy(X[:, :, :3, :3].astype(np.float64)).requires_grad_()
    blobs = [torch.tensor(b.reshape(1, 3, 1, 1), requires_grad=True) for b in (SCALE, SHIFT)]
    assert torch.autograd.gradcheck(lambda x, s, b: op.forward([x], [s, b])[0], (x, *blobs))


# ---------------------------------------------------------------- MAX pooling's mask

def test_max_pooling_mask_is_the_flat_index_in_the_input_plane_first_maximum_winning():
    x = np.array([[[[1, 5, 5, 0], [5, 2, 0, 7], [3, 3, 3, 3]]]], dtype=np.float32)
    top, mask = feed_layer("Pooling", {"pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}}, x, tops=2)
    close(top, [[5, 7], [3, 3]])
    close(mask, [[1, 7], [8, 10]])  # ties: the first in the window, row by row; ceil adds the last row


def test_max_pooling_mask_with_a_pad_past_half_the_kernel_counts_in_the_unpadded_plane():
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(np.float32)
    top, mask = feed_layer("Pooling", {"pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 3, "pad": 2}},
                           x, tops=2)
    for channel in range(2):
        for i in range(top.shape[2]):
            for j in range(top.shape[3]):
                window = x[0, channel, max(0, 3 * i - 2):3 * i + 1, max(0, 3 * j - 2):3 * j + 1]
                row, column = np.unravel_index(np.argmax(window), window.shape)
                assert top[0, channel, i, j] == window.max()
                assert mask[0, channel, i, j] == (max(0, 3 * i - 2) + row) * 6 + max(0, 3 * j - 2) + column


def test_only_max_pooling_has_a_mask_top():
    with pytest.raises(CaffeconfError, match=r"AVE pooling makes at most 1 top\(s\)"):
        op_of("Pooling", {"pooling_param": {"pool": "AVE", "kernel_size": 2}}, tops=("p", "mask"))


MASK_POOLING = ["kernel_size: 2 stride: 2", "kernel_size: 3 stride: 2 pad: 1", "kernel_size: 3 stride: 3 pad: 2"]


@pytest.mark.parametrize("param", MASK_POOLING)
def test_max_pooling_mask_matches_opencv(tmp_path, param):
    pytest.importorskip("cv2")
    from test_run_oracle import check_layer

    layer = f'layer {{ name: "p" type: "Pooling" bottom: "x" top: "p" top: "mask" pooling_param {{ pool: MAX {param} }} }}'
    ours = check_layer(tmp_path, layer, {"x": (2, 3, 7, 6)})
    assert set(ours) == {"p", "mask"}


# ---------------------------------------------------------------- Upsample

def fork_upsample(x, mask, height, width):
    """upsample_layer.cpp Forward_cpu: zeros, then top[mask[i]] = x[i] per plane, in order of i."""
    top = np.zeros(x.shape[:2] + (height * width,), dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, place in enumerate(mask[n, c].ravel().astype(int)):
                top[n, c, place] = x[n, c].ravel()[i]
    return top.reshape(x.shape[:2] + (height, width))


POOLED = np.random.default_rng(3).standard_normal((2, 2, 3, 2)).astype(np.float32)
MASK = np.stack([np.random.default_rng(4 + k).permutation(6 * 4)[:6] for k in range(4)]).reshape(2, 2, 3, 2)


@pytest.mark.parametrize("param,size", [
    ({}, (6, 4)),
    ({"scale": 3}, (9, 6)),
    ({"scale_h": 2, "scale_w": 3}, (6, 6)),
    ({"pad_out_h": True}, (5, 4)),
    ({"pad_out_w": True, "scale_h": 3, "scale_w": 2}, (9, 3)),
    ({"scale": 2, "upsample_h": 7, "upsample_w": 5}, (7, 5)),
    ({"upsample_h": 7}, (6, 4)),  # upsample_h alone is ignored: the scale decides
])
def test_upsample_puts_values_where_the_mask_says_at_the_forks_size(param, size):
    mask = np.minimum(MASK, size[0] * size[1] - 1)
    (top,) = feed_layer("Upsample", {"upsample_param": param}, POOLED, mask)
    assert top.shape == (2, 2) + size
    close(top, fork_upsample(POOLED, mask, *size))


def test_upsample_where_two_values_share_a_place_the_later_wins_and_both_get_its_gradient():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[[[5.0, 5.0], [0.0, 5.9]]]], dtype=torch.float64)  # 5.9: C++'s int cast gives 5
    (top,) = op_of("Upsample", {}, bottoms=("x", "mask")).forward([x, mask], [])
    close(top.detach().numpy().ravel()[[0, 5]], [3.0, 4.0])
    assert top.detach().numpy().ravel()[[1, 2, 3, 4, 6, 7]].tolist() == [0.0] * 6
    dy = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    top.backward(dy)
    close(x.grad.numpy(), [[[[5.0, 5.0], [0.0, 5.0]]]])  # Backward_cpu: dx[i] = dy[mask[i]]


def test_upsample_gradcheck_for_a_pooling_mask():
    x = torch.from_numpy(POOLED.astype(np.float64)).requires_grad_()
    op = op_of("Upsample", {}, bottoms=("x", "mask"))
    mask = torch.from_numpy(MASK.astype(np.float64))
    assert torch.autograd.gradcheck(lambda x: op.forward([x, mask], [])[0], (x,))


@pytest.mark.parametrize("param,message", [
    ({"scale": 1}, "the upsample scales must be greater than 1, got 1 and 1"),
    ({"scale": 3, "pad_out_w": True}, "upsample_param.pad_out_w needs a scale of 2 along it, got 3"),
    ({"scale": 2, "scale_h": 2, "scale_w": 2}, "upsample_param needs upsample_h and upsample_w, else scale, or"),
    ({"scale_h": 2}, "upsample_param needs upsample_h and upsample_w"),
    ({"upsample_h": 1, "upsample_w": 4}, "upsample_h and upsample_w must be greater than 1"),
])
def test_upsample_setup_errors_are_the_forks_checks(param, message):
    with pytest.raises(CaffeconfError, match=message):
        op_of("Upsample", {"upsample_param": param}, bottoms=("x", "mask"))


def test_a_mask_index_past_the_top_is_an_error_naming_the_layer():
    with pytest.raises(CaffeconfError, match="layer 'l' .Upsample.: a mask index lies outside the 6x4 top"):
        feed_layer("Upsample", {}, POOLED, np.full(POOLED.shape, 24.0))


# ---------------------------------------------------------------- a SegNet-like net trains

SEGNET_LIKE = '''name: "segnet_like"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "conv1_bn" type: "BN" bottom: "conv1" top: "conv1"
        bn_param { scale_filler { type: "constant" value: 1 } shift_filler { type: "constant" value: 0.001 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" top: "pool1_mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "upsample1" type: "Upsample" bottom: "pool1" bottom: "pool1_mask" top: "upsample1"
        upsample_param { scale: 2 } }
layer { name: "conv1_D" type: "Convolution" bottom: "upsample1" top: "conv1_D"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "conv1_D_bn" type: "BN" bottom: "conv1_D" top: "conv1_D"
        bn_param { scale_filler { type: "constant" value: 1 } shift_filler { type: "constant" value: 0.001 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv1_D" bottom: "label" top: "loss" }
'''


def load_text(text, folder):
    path = folder / "net.prototxt"
    path.write_text(text)
    return load(path).net


def _one_layer(folder, layer_type, param, dims):
    return load_text(f'name: "t" layer {{ name: "x" type: "Input" top: "x" input_param {{ shape {{ dim: {dims} }} }} }}\n'
                     f'layer {{ name: "l" type: "{layer_type}" bottom: "x" top: "l" {param} }}', folder)


def train_steps(net, inputs, steps=15, rate=0.05):
    """Losses of `steps` plain SGD iterations on one batch; every learnable blob must get a gradient."""
    from caffeconf.caffe import caffe_pb2

    model = CaffeNet(filter_net(net, phase="TRAIN"), phase="TRAIN", seed=3)
    model(inputs)
    params = learnable_params(model)
    solver = make_solver(caffe_pb2.SolverParameter(base_lr=rate, type="SGD", momentum=0.9), params)
    losses = []
    for iteration in range(steps):
        model.zero_grad(set_to_none=True)
        loss = model.loss(model(inputs))
        loss.backward()
        if iteration == 0:
            assert all(p.tensor.grad is not None and float(p.tensor.grad.abs().sum()) > 0 for p in params)
        solver.apply_update(rate, iteration)
        losses.append(float(loss.detach()))
    return losses


def test_a_segnet_like_net_trains(tmp_path):
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(2, 3, 8, 8, generator=generator)
    label = (data[:, :1] > 0).float() + (data[:, 1:2] > 0.5).float()  # 3 classes, learnable from the data
    losses = train_steps(load_text(SEGNET_LIKE, tmp_path), {"data": data, "label": label})
    assert losses[-1] < 0.6 * losses[0], losses
