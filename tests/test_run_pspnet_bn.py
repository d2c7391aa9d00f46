"""PSPNet's BN (hszhao/PSPNet bn_layer.cpp), the other fork layer named BN: a dialect whose
BNParameter has momentum/eps/frozen gets its blobs (slope, bias, moving mean and variance), its
formula in TEST and TRAIN (the moving statistics updated by momentum), its setup's lr_mult 0 and
its shapes; numpy formulas written from the fork's forward."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.caffe import dialect  # noqa: E402
from caffeconf.caffe.facts import fixed_blobs, learnable_blobs  # noqa: E402
from caffeconf.errors import CaffeconfError  # noqa: E402
from caffeconf.inspect.shapes import infer_shapes  # noqa: E402
from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.layers import LAYERS, LayerContext  # noqa: E402
from caffeconf.train.solvers import learnable_params  # noqa: E402

from test_run_layers import close, feed_layer  # noqa: E402

# PSPNet's BNParameter, field names and numbers as its caffe.proto writes them.
PSPNET_BN = """
message BNParameter {
  optional FillerParameter slope_filler = 1;
  optional FillerParameter bias_filler = 2;
  optional float momentum = 3 [default = 0.9];
  optional float eps = 4 [default = 1e-5];
  optional bool frozen = 5 [default = false];
}
"""


@pytest.fixture(autouse=True)
def pspnet_dialect(tmp_path, monkeypatch):
    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path / "cache"))
    text = dialect.BVLC_PROTO.read_text().replace(
        "message LayerParameter {\n", "message LayerParameter {\n  optional BNParameter bn_param = 220;\n", 1)
    path = tmp_path / "caffe.proto"
    path.write_text(text + PSPNET_BN)
    with dialect.use(dialect.load_dialect(path)) as active:
        yield active


X = np.random.default_rng(11).standard_normal((2, 3, 4, 5)).astype(np.float32) * 2 + 1
SLOPE, BIAS = np.array([0.5, 2.0, -1.0]), np.array([0.25, 0.0, 1.5])
MEAN, VARIANCE = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])
BLOBS = [v.reshape(1, 3, 1, 1) for v in (SLOPE, BIAS, MEAN, VARIANCE)]


def per_channel(v):
    return np.asarray(v)[None, :, None, None]


def test_pspnets_bn_has_slope_bias_and_moving_statistics_with_their_learning_rates_fixed():
    assert learnable_blobs("BN", {}, 1) == ("slope", "bias", "mean", "variance")
    assert fixed_blobs("BN", {}) == {2, 3}
    assert fixed_blobs("BN", {"bn_param": {"frozen": True}}) == {0, 1, 2, 3}


@pytest.mark.parametrize("phase,fields", [("TEST", {}), ("TRAIN", {"bn_param": {"frozen": True}})])
def test_stored_statistics_in_test_or_when_frozen(phase, fields):
    (top,) = feed_layer("BN", {"bn_param": {"eps": 1e-3, **fields.get("bn_param", {})}}, X, phase=phase, blobs=BLOBS)
    close(top, per_channel(SLOPE) * (X - per_channel(MEAN)) / np.sqrt(per_channel(VARIANCE) + 1e-3) + per_channel(BIAS))


def test_batch_statistics_in_train_move_the_stored_ones_by_momentum():
    layer = Layer("l", "BN", ("x",), ("y",), {"bn_param": {"momentum": 0.8}})
    model = CaffeNet(Net("t", (Layer("x", "Input", (), ("x",), {"input_param": {"shape": [{"dim": [2, 3, 4, 5]}]}}),
                               layer)), phase="TRAIN")
    feed = {"x": torch.from_numpy(X)}
    with torch.no_grad():
        model(feed)
        for target, value in zip(model.layer_blobs[1], BLOBS):
            target.copy_(torch.from_numpy(value.astype(np.float32)))
        top = model(feed, keep_all=True)["y"].numpy()
    x = X.astype(np.float64)
    mean = x.mean(axis=(0, 2, 3))
    variance = ((x - per_channel(mean)) ** 2).mean(axis=(0, 2, 3))
    close(top, per_channel(SLOPE) * (x - per_channel(mean)) / np.sqrt(per_channel(variance) + 1e-5) + per_channel(BIAS))
    stored_mean, stored_variance = (b.detach().numpy().reshape(-1) for b in model.layer_blobs[1][2:])
    close(stored_mean, 0.2 * mean + 0.8 * MEAN)
    close(stored_variance, 0.2 * variance + 0.8 * VARIANCE)
    rates = [p.lr_mult for p in learnable_params(model)]
    assert rates == [1.0, 1.0, 0.0, 0.0]


def test_backward_is_the_derivative_of_the_batch_formula():
    op = LAYERS["BN"](LayerContext(Layer("l", "BN", ("x",), ("y",), {}), "TRAIN", torch.Generator()))
    x = torch.from_numpy(X).double().requires_grad_()
    blobs = [torch.from_numpy(b).double().requires_grad_(i < 2) for i, b in enumerate(BLOBS)]
    assert torch.autograd.gradcheck(lambda x, s, b: op.forward([x], [s, b, blobs[2].clone(), blobs[3].clone()])[0],
                                    (x, blobs[0], blobs[1]))


def test_blobs_start_from_the_fillers_the_stored_variance_at_one_when_frozen():
    net = Net("t", (Layer("x", "Input", (), ("x",), {"input_param": {"shape": [{"dim": [1, 2, 3, 3]}]}}),
                    Layer("l", "BN", ("x",), ("y",), {"bn_param": {"frozen": True, "slope_filler": {"value": 1.0}}})))
    model = CaffeNet(net, phase="TEST")
    with torch.no_grad():
        model({"x": torch.zeros(1, 2, 3, 3)})
    assert [b.detach().reshape(-1).tolist() for b in model.layer_blobs[1]] == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]


def test_shapes_count_four_blobs_per_channel_and_refuse_a_second_top():
    net = Net("t", (Layer("x", "Input", (), ("x",), {"input_param": {"shape": [{"dim": [1, 8, 3, 3]}]}}),
                    Layer("l", "BN", ("x",), ("y",), {})))
    shapes = infer_shapes(net)
    assert shapes.blob("y") == (1, 8, 3, 3)
    assert shapes.layers[-1].params == ((1, 8, 1, 1),) * 4
    with pytest.raises(CaffeconfError, match=re.escape("layer 'l' (BN): BN (PSPNet's) makes exactly 1 top, got 2")):
        LAYERS["BN"](LayerContext(Layer("l", "BN", ("x",), ("y", "z"), {}), "TEST", torch.Generator()))


def test_inspect_counts_the_moving_statistics_as_parameters_but_not_trainable():
    from caffeconf.inspect.measure import layer_costs

    net = Net("t", (Layer("x", "Input", (), ("x",), {"input_param": {"shape": [{"dim": [1, 8, 3, 3]}]}}),
                    Layer("l", "BN", ("x",), ("y",), {})))
    cost = layer_costs(infer_shapes(net))[-1]
    assert (cost.params, cost.trainable) == (32, 16)
