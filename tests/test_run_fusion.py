"""Inference fusions: a convolution absorbs its affine chain, a residual Eltwise SUM and a ReLU;
the fused forward equals the layer-by-layer one, and blobs other layers still read are left alone."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402

GAUSSIAN = {"type": "gaussian", "std": 0.3}


def conv(name, bottom, top=None, outputs=4, bias=True):
    return Layer(name, "Convolution", (bottom,), (top or name,),
                 {"convolution_param": {"num_output": outputs, "kernel_size": [3], "pad": [1], "bias_term": bias,
                                        "weight_filler": GAUSSIAN, "bias_filler": GAUSSIAN}})


def residual_net(*, coeff=(), relu_slope=0.0, later_reader=None, channels_last=False):
    layers = [Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [2, 4, 5, 5]}]}}),
              conv("shortcut", "data"),
              conv("branch", "data", bias=False),
              Layer("bn", "BatchNorm", ("branch",), ("branch",), {}),
              Layer("scale", "Scale", ("branch",), ("branch",), {"scale_param": {"bias_term": True}}),
              Layer("sum", "Eltwise", ("shortcut", "branch"), ("sum",),
                    {"eltwise_param": {"operation": "SUM", "coeff": list(coeff)}}),
              Layer("relu", "ReLU", ("sum",), ("sum",), {"relu_param": {"negative_slope": relu_slope}})]
    if later_reader:
        layers.append(Layer("later", "Power", (later_reader,), ("later",), {}))
    return Net("t", tuple(layers))


def folded_and_plain(net, channels_last=False):
    model = CaffeNet(net, seed=3)
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model({"data": x})
        for blob in model.layer_blobs[3]:  # BatchNorm statistics: mean, variance, factor
            blob.copy_(torch.rand(blob.shape, generator=generator) + 0.5)
        model.layer_blobs[4][0].copy_(torch.rand(4, generator=generator) + 0.5)
        model.layer_blobs[4][1].copy_(torch.randn(4, generator=generator))
        expected = model({"data": x.clone()})
        folds = model.fold_for_inference()
        fused = model({"data": x})
    return model, folds, expected, fused


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_residual_sum_and_relu_fuse_into_the_convolution(channels_last):
    model, folds, expected, fused = folded_and_plain(residual_net(), channels_last)
    fold = model.folds[2]
    assert (fold.residual, fold.relu, fold.tops) == ("shortcut", True, ("sum",))
    assert folds == 1  # the shortcut convolution has nothing to absorb
    assert fused.keys() == expected.keys() == {"sum"}
    torch.testing.assert_close(fused["sum"], expected["sum"], rtol=1e-5, atol=1e-5)
    assert (fused["sum"] >= 0).all()


@pytest.mark.parametrize("variant,residual,relu", [
    ({"coeff": (1.0, 2.0)}, None, False),  # weighted sums stay Eltwise layers
    ({"relu_slope": 0.1}, "shortcut", False),  # a leaky ReLU stays a layer
    ({"later_reader": "branch"}, None, False),  # the branch output is read again: no fusion past it
])
def test_fusion_stops_where_the_layers_differ(variant, residual, relu):
    model, _, expected, fused = folded_and_plain(residual_net(**variant))
    fold = model.folds.get(2)
    assert (fold.residual, fold.relu) == (residual, relu) if fold else residual is None
    for name in expected:
        torch.testing.assert_close(fused[name], expected[name], rtol=1e-5, atol=1e-5)


def test_a_plain_convolution_and_relu_fuse():
    net = Net("t", (Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [1, 4, 5, 5]}]}}),
                    conv("c", "data"), Layer("r", "ReLU", ("c",), ("c",), {})))
    model = CaffeNet(net, seed=0)
    x, other_batch = {"data": torch.randn(1, 4, 5, 5)}, {"data": torch.randn(3, 4, 7, 7)}
    with torch.no_grad():
        expected, expected_other = model(x)["c"], model(other_batch)["c"]
        assert model.fold_for_inference() == 1
        fused = model(x)["c"]
        fused_other = model(other_batch)["c"]  # the weights are prepared again for this shape
    torch.testing.assert_close(fused, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fused_other, expected_other, rtol=1e-6, atol=1e-6)
