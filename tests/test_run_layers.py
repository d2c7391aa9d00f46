"""Layers OpenCV cannot check (or checks differently), against numpy formulas written from Caffe's
documented semantics, independently of the runner's PyTorch code."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402

RNG = np.random.default_rng(0)


def feed_layer(layer_type, fields, *inputs, tops=1, phase="TEST", blobs=None):
    """Run one layer fed by Input layers; `blobs` replaces its learnable blobs. Returns the tops."""
    names = [f"b{i}" for i in range(len(inputs))]
    sources = [Layer(n, "Input", (), (n,), {"input_param": {"shape": [{"dim": list(x.shape)}]}})
               for n, x in zip(names, inputs)]
    top_names = tuple(f"t{i}" for i in range(tops))
    model = CaffeNet(Net("t", (*sources, Layer("l", layer_type, tuple(names), top_names, dict(fields)))),
                     phase=phase)
    feed = {n: torch.from_numpy(np.asarray(x, dtype=np.float32)) for n, x in zip(names, inputs)}
    with torch.no_grad():
        if blobs is not None:
            model(feed)
            for target, value in zip(model.layer_blobs[len(sources)], blobs):
                target.copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
        out = model(feed, keep_all=True)
    return [out[t].detach().numpy() for t in top_names]


def close(actual, expected, tolerance=1e-5):
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=np.float64).reshape(np.shape(actual)),
                               rtol=tolerance, atol=tolerance)


def normal(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- neurons

X = normal(2, 3, 4, 5)


@pytest.mark.parametrize("layer_type,fields,formula", [
    ("Power", {"power_param": {"power": 2.0, "scale": 0.5, "shift": 3.0}}, lambda x: (3 + 0.5 * x) ** 2),
    ("Exp", {}, np.exp),
    ("Exp", {"exp_param": {"base": 10.0, "scale": 0.5, "shift": 0.25}}, lambda x: 10 ** (0.25 + 0.5 * x)),
    ("Log", {"log_param": {"shift": 5.0}}, lambda x: np.log(5 + x)),
    ("Log", {"log_param": {"base": 2.0, "scale": 2.0, "shift": 6.0}}, lambda x: np.log2(6 + 2 * x)),
    ("BNLL", {}, lambda x: np.log1p(np.exp(x))),
    ("Threshold", {"threshold_param": {"threshold": 0.3}}, lambda x: (x > 0.3).astype(float)),
    ("Clip", {"clip_param": {"min": -0.5, "max": 0.25}}, lambda x: np.clip(x, -0.5, 0.25)),
    ("Swish", {"swish_param": {"beta": 1.5}}, lambda x: x / (1 + np.exp(-1.5 * x))),
    ("ELU", {}, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("ReLU", {"relu_param": {"negative_slope": 0.2}}, lambda x: np.where(x > 0, x, 0.2 * x)),
    ("AbsVal", {}, np.abs),
])
def test_neuron_formulas(layer_type, fields, formula):
    (y,) = feed_layer(layer_type, fields, X)
    close(y, formula(X.astype(np.float64)))


def test_lrn_across_channels_uses_k():
    x = normal(1, 7, 3, 3)
    (y,) = feed_layer("LRN", {"lrn_param": {"local_size": 3, "alpha": 0.6, "beta": 0.5, "k": 2.0}}, x)
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = squares[:, :-2] + squares[:, 1:-1] + squares[:, 2:]
    close(y, x / (2.0 + 0.6 / 3 * window) ** 0.5)


def test_prelu_channel_shared_and_per_channel():
    (shared,) = feed_layer("PReLU", {"prelu_param": {"channel_shared": True}}, X, blobs=[np.array(0.3)])
    close(shared, np.where(X > 0, X, 0.3 * X))
    slopes = np.array([0.1, 0.2, 0.3])
    (per_channel,) = feed_layer("PReLU", {}, X, blobs=[slopes])
    close(per_channel, np.where(X > 0, X, slopes[None, :, None, None] * X))


def test_prelu_default_filler_is_quarter():
    (y,) = feed_layer("PReLU", {}, X)
    close(y, np.where(X > 0, X, 0.25 * X))


def test_dropout_scales_kept_units_at_train_time():
    x = np.ones((4, 50), dtype=np.float32)
    (y,) = feed_layer("Dropout", {"dropout_param": {"dropout_ratio": 0.2}}, x, phase="TRAIN")
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.8)}
    assert 0.6 < (y > 0).mean() < 0.95
    (same,) = feed_layer("Dropout", {"dropout_param": {"dropout_ratio": 0.2}}, x)
    close(same, x)


# ---------------------------------------------------------- normalization

@pytest.mark.parametrize("factor", [0.0, 1.0, 4.0])
def test_batch_norm_divides_statistics_by_the_scale_factor(factor):
    x = normal(2, 3, 2, 2)
    mean, var = np.array([0.4, -1.0, 2.0]), np.array([1.0, 4.0, 0.25])
    (y,) = feed_layer("BatchNorm", {"batch_norm_param": {"eps": 1e-3}}, x, blobs=[mean, var, [factor]])
    scale = 0.0 if factor == 0 else 1.0 / factor
    expected = (x - (mean * scale)[None, :, None, None]) / np.sqrt((var * scale)[None, :, None, None] + 1e-3)
    close(y, expected)


def test_batch_norm_training_uses_batch_statistics_and_accumulates():
    x = normal(4, 2, 3, 3)
    names, fields = ["b0"], {"batch_norm_param": {"moving_average_fraction": 0.5}}
    model = CaffeNet(Net("t", (Layer("b0", "Input", (), ("b0",), {"input_param": {"shape": [{"dim": list(x.shape)}]}}),
                               Layer("bn", "BatchNorm", ("b0",), ("y",), fields))), phase="TRAIN")
    with torch.no_grad():
        y = model({names[0]: torch.from_numpy(x)})["y"].numpy()
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    close(y, (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5), 1e-4)
    stored_mean, stored_var, stored_factor = (b.detach().numpy() for b in model.layer_blobs[1])
    m = x.size / x.shape[1]
    close(stored_factor, [1.0])  # 0 * 0.5 + 1
    close(stored_mean, mean)
    close(stored_var, var * m / (m - 1), 1e-4)


@pytest.mark.parametrize("across,normalize", [(False, True), (True, True), (False, False)])
def test_mvn(across, normalize):
    x = normal(2, 3, 4, 4)
    axes = (1, 2, 3) if across else (2, 3)
    (y,) = feed_layer("MVN", {"mvn_param": {"across_channels": across, "normalize_variance": normalize}}, x)
    centred = x - x.mean(axis=axes, keepdims=True)
    expected = centred / (centred.std(axis=axes, keepdims=True) + 1e-9) if normalize else centred
    close(y, expected, 1e-4)


# ------------------------------------------------------------ scale, bias

def test_scale_with_second_bottom_and_bias():
    x, factor = normal(2, 3, 4), normal(3)
    (y,) = feed_layer("Scale", {"scale_param": {"bias_term": True}}, x, factor, blobs=[[1.0, 2.0, 3.0]])
    close(y, x * factor[None, :, None] + np.array([1.0, 2.0, 3.0])[None, :, None])


def test_scale_scalar_and_trailing_axes():
    x = normal(2, 3, 4)
    (scalar,) = feed_layer("Scale", {"scale_param": {"num_axes": 0}}, x, blobs=[np.array(2.5)])
    close(scalar, 2.5 * x)
    factor = normal(3, 4)
    (trailing,) = feed_layer("Scale", {"scale_param": {"axis": 1, "num_axes": -1}}, x, blobs=[factor])
    close(trailing, x * factor[None])


def test_bias_one_and_two_bottoms():
    x, shift = normal(2, 3, 4), normal(3, 4)
    (one,) = feed_layer("Bias", {"bias_param": {"num_axes": 2}}, x, blobs=[shift])
    close(one, x + shift[None])
    (two,) = feed_layer("Bias", {}, x, shift)
    close(two, x + shift[None])


# ------------------------------------------------------------- reshaping

@pytest.mark.parametrize("fields,shape", [
    ({"shape": {"dim": [0, -1]}}, (2, 60)),
    ({"shape": {"dim": [-1, 5]}, "axis": 1}, (2, 12, 5)),
    ({"shape": {"dim": [12]}, "axis": 1, "num_axes": 2}, (2, 12, 5)),
    ({"shape": {"dim": [1]}, "axis": -1, "num_axes": 0}, (2, 3, 4, 5, 1)),
    ({"shape": {"dim": [0, 0, 0, 0]}}, (2, 3, 4, 5)),
])
def test_reshape_follows_caffe_axis_rules(fields, shape):
    x = normal(2, 3, 4, 5)
    (y,) = feed_layer("Reshape", {"reshape_param": fields}, x)
    assert y.shape == shape
    close(y.reshape(-1), x.reshape(-1))


@pytest.mark.parametrize("operation,formula", [
    ("SUM", lambda v: v.sum(-1)), ("ASUM", lambda v: np.abs(v).sum(-1)),
    ("SUMSQ", lambda v: (v * v).sum(-1)), ("MEAN", lambda v: v.mean(-1))])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_reduction(operation, formula, axis):
    x = normal(2, 3, 4)
    (y,) = feed_layer("Reduction", {"reduction_param": {"operation": operation, "axis": axis, "coeff": 0.5}}, x)
    kept = x.shape[: axis % 3]
    close(y, 0.5 * formula(x.reshape(kept + (-1,))), 1e-4)


def test_argmax_layouts():
    x = normal(2, 6, 1, 1)
    (indices,) = feed_layer("ArgMax", {"argmax_param": {"top_k": 2}}, x)
    order = np.argsort(-x.reshape(2, 6), axis=1)[:, :2]
    assert indices.shape == (2, 1, 2)
    close(indices[:, 0], order)
    (both,) = feed_layer("ArgMax", {"argmax_param": {"out_max_val": True}}, x)
    assert both.shape == (2, 2, 1)
    close(both[:, 1, 0], x.reshape(2, 6).max(axis=1))
    (along,) = feed_layer("ArgMax", {"argmax_param": {"axis": 1}}, x)
    close(along, x.argmax(axis=1)[:, None])


def test_tile_embed_filter_reindex_parameter_silence():
    x = normal(2, 3)
    (tiled,) = feed_layer("Tile", {"tile_param": {"axis": 1, "tiles": 3}}, x)
    close(tiled, np.tile(x, (1, 3)))
    table = normal(5, 4)
    (embedded,) = feed_layer("Embed", {"embed_param": {"num_output": 4, "input_dim": 5, "bias_term": False}},
                             np.array([[1, 4], [0, 1]]), blobs=[table])
    close(embedded, table[np.array([[1, 4], [0, 1]])])
    data = normal(4, 3)
    (kept,) = feed_layer("Filter", {}, data, np.array([1, 0, 0, 2]))
    close(kept, data[[0, 3]])
    (reordered,) = feed_layer("BatchReindex", {}, data, np.array([3, 3, 0]))
    close(reordered, data[[3, 3, 0]])
    assert feed_layer("Silence", {}, data, tops=0) == []
    (parameter,) = feed_layer("Parameter", {"parameter_param": {"shape": {"dim": [2, 2]}}}, blobs=[[[1, 2], [3, 4]]])
    close(parameter, [[1, 2], [3, 4]])


def test_slice_even_and_legacy_dim():
    x = normal(2, 6, 2)
    first, second, third = feed_layer("Slice", {"slice_param": {"slice_dim": 1}}, x, tops=3)
    close(second, x[:, 2:4])
    a, b = feed_layer("Slice", {"slice_param": {"axis": -1, "slice_point": [1]}}, x, tops=2)
    close(b, x[:, :, 1:])


# ------------------------------------------------------- pooling families

def caffe_pool(x, kernel, stride, pad, method):
    """Caffe's pooling written out with its window rules (ceil rounding, clipping, AVE divisor)."""
    n, c, h, w = x.shape
    out = [max(0, math.ceil((size + 2 * p - k) / s)) + 1 for size, k, s, p in zip((h, w), kernel, stride, pad)]
    out = [o - 1 if p and (o - 1) * s >= size + p else o for o, size, s, p in zip(out, (h, w), stride, pad)]
    y = np.zeros((n, c, *out))
    for i in range(out[0]):
        for j in range(out[1]):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            size = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)]
            y[:, :, i, j] = window.max(axis=(2, 3)) if method == "MAX" else window.sum(axis=(2, 3)) / size
    return y


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("size", [(7, 7), (9, 11), (13, 6)])
def test_spp_levels(method, size):
    x = normal(1, 2, *size)
    (y,) = feed_layer("SPP", {"spp_param": {"pyramid_height": 3, "pool": method}}, x)
    levels = []
    for level in range(3):
        bins = 2 ** level
        kernel = [math.ceil(s / bins) for s in size]
        pad = [(k * bins - s + 1) // 2 for k, s in zip(kernel, size)]
        levels.append(caffe_pool(x, kernel, kernel, pad, method).reshape(1, -1))
    close(y, np.concatenate(levels, axis=1))


def test_pooling_with_pad_beyond_half_kernel():
    x = normal(1, 2, 7, 6)
    for method in ("MAX", "AVE"):
        (y,) = feed_layer("Pooling", {"pooling_param": {"pool": method, "kernel_size": 3, "stride": 2, "pad": 2}}, x)
        close(y, caffe_pool(x, (3, 3), (2, 2), (2, 2), method))


def test_pooling_floor_round_mode():
    x = normal(1, 1, 8, 8)
    (y,) = feed_layer("Pooling", {"pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2,
                                                    "round_mode": "FLOOR"}}, x)
    assert y.shape == (1, 1, 3, 3)


def test_im2col_matches_loops():
    x = normal(1, 2, 5, 4)
    (y,) = feed_layer("Im2col", {"convolution_param": {"kernel_size": [3], "pad": [1], "stride": [2]}}, x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((1, 2 * 9, 3, 2))
    for c in range(2):
        for ki in range(3):
            for kj in range(3):
                expected[0, c * 9 + ki * 3 + kj] = padded[0, c, ki:ki + 5:2, kj:kj + 4:2]
    close(y, expected)


# ------------------------------------------------------------------ losses

def softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SCORES = normal(4, 5, 3)
LABELS = np.array([[0, 1, 4], [2, 2, 3], [4, 0, 0], [1, 3, 2]], dtype=np.float32)


@pytest.mark.parametrize("loss_param,normalizer", [
    ({}, 12 - 3), ({"normalization": "FULL"}, 12), ({"normalization": "BATCH_SIZE"}, 4),
    ({"normalization": "NONE"}, 1), ({"normalize": False}, 4)])
def test_softmax_with_loss_normalization_and_ignore_label(loss_param, normalizer):
    fields = {"loss_param": {"ignore_label": 2, **loss_param}}
    loss, prob = feed_layer("SoftmaxWithLoss", fields, SCORES, LABELS, tops=2)
    p = softmax(SCORES.astype(np.float64))
    labels = LABELS.astype(int)
    picked = np.take_along_axis(p, labels[:, None, :], axis=1)[:, 0]
    total = -np.log(picked)[labels != 2].sum()
    close(loss, total / normalizer, 1e-4)
    close(prob, p)


def test_accuracy_top_k_and_ignore():
    top1, per_class = feed_layer("Accuracy", {"accuracy_param": {"ignore_label": 2}}, SCORES, LABELS, tops=2)
    labels = LABELS.astype(int)
    valid = labels != 2
    predicted = SCORES.argmax(axis=1)
    close(top1, (predicted == labels)[valid].mean())
    for cls in range(5):
        seen = valid & (labels == cls)
        close(per_class[cls], (predicted == labels)[seen].mean() if seen.any() else 0.0)
    (top3,) = feed_layer("Accuracy", {"accuracy_param": {"top_k": 3}}, SCORES, LABELS)
    rank = (SCORES >= np.take_along_axis(SCORES, labels[:, None], axis=1)).sum(axis=1) - 1
    close(top3, (rank < 3).mean())


def test_euclidean_sigmoid_cross_entropy_multinomial():
    a, b = normal(3, 4), normal(3, 4)
    (euclid,) = feed_layer("EuclideanLoss", {}, a, b)
    close(euclid, ((a - b) ** 2).sum() / 3 / 2, 1e-4)
    target = (RNG.random((3, 4)) > 0.5).astype(np.float32)
    (sce,) = feed_layer("SigmoidCrossEntropyLoss", {}, a, target)
    p = 1 / (1 + np.exp(-a.astype(np.float64)))
    close(sce, -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum() / 3, 1e-4)
    prob = softmax(normal(3, 4))
    label = np.array([0, 3, 1], dtype=np.float32)
    (mlog,) = feed_layer("MultinomialLogisticLoss", {}, prob, label)
    close(mlog, -np.log(prob[np.arange(3), label.astype(int)]).sum() / 3, 1e-4)


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_loss(legacy):
    a, b = normal(4, 3, 1, 1), normal(4, 3, 1, 1)
    similar = np.array([1, 0, 1, 0], dtype=np.float32)
    (loss,) = feed_layer("ContrastiveLoss", {"contrastive_loss_param": {"margin": 2.0, "legacy_version": legacy}},
                         a, b, similar)
    d2 = ((a - b) ** 2).reshape(4, -1).sum(axis=1)
    far = np.maximum(2.0 - d2, 0) if legacy else np.maximum(2.0 - np.sqrt(d2), 0) ** 2
    close(loss, np.where(similar > 0, d2, far).sum() / 4 / 2, 1e-4)


@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_hinge_loss(norm):
    x, label = normal(3, 5), np.array([4, 0, 2], dtype=np.float32)
    (loss,) = feed_layer("HingeLoss", {"hinge_loss_param": {"norm": norm}}, x, label)
    sign = np.ones_like(x)
    sign[np.arange(3), label.astype(int)] = -1
    margins = np.maximum(0, 1 + sign * x)
    close(loss, (margins if norm == "L1" else margins ** 2).sum() / 3, 1e-4)


def test_infogain_loss_with_matrix_bottom():
    x, label = normal(3, 4), np.array([1, 0, 3], dtype=np.float32)
    matrix = RNG.random((4, 4)).astype(np.float32)
    (loss,) = feed_layer("InfogainLoss", {}, x, label, matrix)
    p = softmax(x.astype(np.float64))
    expected = -sum((matrix[int(l)] * np.log(p[i])).sum() for i, l in enumerate(label)) / 3
    close(loss, expected, 1e-4)


def test_dummy_data_fillers_and_shapes():
    (constant, gaussian) = feed_layer("DummyData", {"dummy_data_param": {
        "shape": [{"dim": [2, 3]}, {"dim": [4]}],
        "data_filler": [{"type": "constant", "value": 1.5}, {"type": "gaussian", "std": 0.1}]}}, tops=2)
    close(constant, np.full((2, 3), 1.5))
    assert gaussian.shape == (4,) and np.abs(gaussian).max() < 1
    (legacy,) = feed_layer("DummyData", {"dummy_data_param": {"num": [2], "channels": [3], "height": [1], "width": [2]}})
    assert legacy.shape == (2, 3, 1, 2) and not legacy.any()


def test_layer_table_matches_the_shape_rules():
    from caffeconf.run.layers import LAYERS
    from caffeconf.inspect.shapes import SHAPE_RULES

    assert set(LAYERS) <= set(SHAPE_RULES)
    # Types with shapes the runner cannot execute: HDF5 writing, SegNet's image and label reader.
    assert set(SHAPE_RULES) - set(LAYERS) == {"HDF5Output", "DenseImageData"}


def test_command_modules_do_not_import_torch_until_run():
    import subprocess
    import sys

    code = ("import sys, argparse, caffeconf.commands.run as r, caffeconf.commands.time as t; "
            "r.add_arguments(argparse.ArgumentParser()); t.add_arguments(argparse.ArgumentParser()); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
