"""Fillers, .caffemodel reading and writing, weight sharing, and the interpreter's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.errors import CaffeconfError, SourceLines, Span, render_text  # noqa: E402
from caffeconf.ir import Layer, Net, Origin  # noqa: E402
from caffeconf.caffe import caffe_pb2  # noqa: E402
from caffeconf.run.fillers import fill  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.params import Params  # noqa: E402
from caffeconf.caffe.weights import read_caffemodel, write_caffemodel  # noqa: E402


def filler(**values):
    return Params.of("FillerParameter", values)


def draw(shape, seed=0, **values):
    return fill(shape, filler(**values), torch.Generator().manual_seed(seed)).numpy()


# ------------------------------------------------------------------ fillers

def test_default_filler_is_constant_zero():
    assert not draw((3, 4)).any()


def test_constant_uniform_gaussian():
    assert (draw((5,), type="constant", value=2.5) == 2.5).all()
    values = draw((200, 50), type="uniform", min=-2.0, max=3.0)
    assert values.min() >= -2 and values.max() <= 3 and abs(values.mean() - 0.5) < 0.1
    values = draw((200, 50), type="gaussian", mean=1.0, std=0.5)
    assert abs(values.mean() - 1.0) < 0.02 and abs(values.std() - 0.5) < 0.02


def test_sparse_gaussian_keeps_sparse_over_outputs():
    values = draw((40, 500), type="gaussian", sparse=10)
    assert abs((values != 0).mean() - 10 / 40) < 0.02


def test_positive_unitball_rows_sum_to_one():
    values = draw((6, 3, 2, 2), type="positive_unitball")
    assert (values >= 0).all()
    np.testing.assert_allclose(values.reshape(6, -1).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape,norm,fan", [
    ((64, 3, 3, 3), "FAN_IN", 27), ((8, 64, 3, 3), "FAN_OUT", 8 * 9), ((64, 3, 3, 3), "AVERAGE", (27 + 576) / 2)])
def test_xavier_and_msra_scale_with_the_variance_norm(shape, norm, fan):
    xavier = draw(shape, type="xavier", variance_norm=norm)
    limit = math.sqrt(3 / fan)
    assert 0.9 * limit < np.abs(xavier).max() <= limit + 1e-6
    msra = draw(shape, type="msra", variance_norm=norm)
    assert abs(msra.std() / math.sqrt(2 / fan) - 1) < 0.05


def test_bilinear_filler_values():
    values = draw((2, 1, 4, 4), type="bilinear")
    ramp = np.array([0.25, 0.75, 0.75, 0.25])  # f = 2, c = 0.75: 1 - |x/f - c|
    np.testing.assert_allclose(values[1, 0], np.outer(ramp, ramp), rtol=1e-6)


def test_fillers_are_seeded():
    assert (draw((10,), seed=3, type="gaussian") == draw((10,), seed=3, type="gaussian")).all()
    assert not (draw((10,), seed=3, type="gaussian") == draw((10,), seed=4, type="gaussian")).all()


# --------------------------------------------------------- hand-made nets

SPAN = Span("net.yaml", 7, 3)


def input_layer(name, shape):
    return Layer(name, "Input", (), (name,), {"input_param": {"shape": [{"dim": list(shape)}]}})


def ip(name, bottom, outputs, **fields):
    return Layer(name, "InnerProduct", (bottom,), (name,),
                 {"inner_product_param": {"num_output": outputs,
                                          "weight_filler": {"type": "gaussian"}}, **fields},
                 Origin(SPAN))


def make_net(*layers):
    return Net("t", (input_layer("data", (2, 3)),) + layers)


def run(model, x):
    with torch.no_grad():
        return model({"data": torch.from_numpy(x)})


X = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_caffemodel_round_trip(tmp_path):
    net = make_net(ip("fc", "data", 4))
    model = CaffeNet(net, seed=5)
    expected = run(model, X)["fc"]
    write_caffemodel(tmp_path / "w.caffemodel", net, model.blob_arrays())
    stored = read_caffemodel(tmp_path / "w.caffemodel")
    assert [b.shape for b in stored["fc"]] == [(4, 3), (4,)]
    reloaded = CaffeNet(net, seed=99, weights=stored)
    assert torch.equal(run(reloaded, X)["fc"], expected)


def test_legacy_blob_dimensions_are_accepted(tmp_path):
    message = caffe_pb2.NetParameter()
    layer = message.layer.add(name="fc", type="InnerProduct")
    weight = layer.blobs.add(num=1, channels=1, height=4, width=3)
    weight.data.extend(np.ones(12).tolist())
    bias = layer.blobs.add(num=1, channels=1, height=1, width=4)
    bias.data.extend([0.5] * 4)
    (tmp_path / "w.caffemodel").write_bytes(message.SerializeToString())
    model = CaffeNet(make_net(ip("fc", "data", 4)), weights=read_caffemodel(tmp_path / "w.caffemodel"))
    np.testing.assert_allclose(run(model, X)["fc"].numpy(), X.sum(axis=1, keepdims=True) + 0.5 + np.zeros((2, 4)))


def test_v1_caffemodel_is_read_by_layer_name(tmp_path):
    message = caffe_pb2.NetParameter()
    layer = message.layers.add(name="fc", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    for shape in [(4, 3), (4,)]:
        blob = layer.blobs.add()
        blob.shape.dim.extend(shape)
        blob.data.extend([1.0] * int(np.prod(shape)))
    (tmp_path / "w.caffemodel").write_bytes(message.SerializeToString())
    assert [b.shape for b in read_caffemodel(tmp_path / "w.caffemodel")["fc"]] == [(4, 3), (4,)]


def test_shape_mismatch_names_layer_and_shapes(tmp_path):
    write_caffemodel(tmp_path / "w.caffemodel", make_net(ip("fc", "data", 5)),
                     {"fc": [np.zeros((5, 3), np.float32), np.zeros(5, np.float32)]})
    model = CaffeNet(make_net(ip("fc", "data", 4)), weights=read_caffemodel(tmp_path / "w.caffemodel"))
    with pytest.raises(CaffeconfError) as caught:
        run(model, X)
    assert render_text(caught.value.diagnostics).splitlines()[0] == (
        "net.yaml:7:3: error: layer 'fc' (InnerProduct): blob 0 in the weights file has shape (5, 3), "
        "but the layer needs (4, 3)")


def test_blob_count_mismatch(tmp_path):
    model = CaffeNet(make_net(ip("fc", "data", 4)), weights={"fc": read_caffemodel_blobs(tmp_path)})
    with pytest.raises(CaffeconfError, match="the weights file has 1 blobs for it, but it has 2"):
        run(model, X)


def read_caffemodel_blobs(tmp_path):
    write_caffemodel(tmp_path / "w.caffemodel", make_net(), {"data": [np.zeros((4, 3), np.float32)]})
    return read_caffemodel(tmp_path / "w.caffemodel")["data"]


def test_shared_param_names_share_one_tensor():
    shared = [{"name": "w"}, {"name": "b"}]
    net = Net("t", (input_layer("data", (2, 3)), input_layer("other", (2, 3)),
                    ip("a", "data", 4, param=shared), ip("b", "other", 4, param=shared)))
    model = CaffeNet(net, seed=1)
    with torch.no_grad():
        out = model({"data": torch.from_numpy(X), "other": torch.from_numpy(X)})
    assert model.layer_blobs[2][0] is model.layer_blobs[3][0]
    assert torch.equal(out["a"], out["b"])
    assert len(list(model.parameters())) == 2


def test_shared_param_shape_mismatch():
    net = make_net(ip("a", "data", 4, param=[{"name": "w"}]), ip("b", "a", 4, param=[{"name": "w"}]))
    with pytest.raises(CaffeconfError, match=r"shared param 'w' has shape \(4, 3\) here but \(4, 4\)"):
        run(CaffeNet(net), X)


def test_caffemodel_is_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "w.caffemodel"
    target.write_bytes(b"old")
    import caffeconf.caffe.weights as weights

    def failing(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(weights, "caffemodel_bytes", failing)
    with pytest.raises(RuntimeError):
        weights.write_caffemodel(target, make_net(), {})
    assert target.read_bytes() == b"old"


def test_not_a_caffemodel(tmp_path):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(b"\xff\xff\xff")
    with pytest.raises(CaffeconfError, match="not a binary NetParameter") as caught:
        read_caffemodel(path)
    assert caught.value.diagnostics[0].span is None  # its binary first line is never shown


@pytest.mark.parametrize("content, what", [(b"", "is empty"), (b"\x08\x01", "holds no layer"),
                                           (b"\x98\x06\x07\x98\x06\x07", "holds no layer")])
def test_an_empty_or_junk_weights_file_is_refused_naming_it(tmp_path, content, what):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(content)  # the junk is protobuf's unknown fields, so it parses
    with pytest.raises(CaffeconfError) as caught:
        read_caffemodel(path)
    assert caught.value.diagnostics[0].message == f"{path}: the weights file {what}: not a .caffemodel"
    assert caught.value.diagnostics[0].hint == "leave out --weights to start from the fillers"


def test_a_weights_file_of_a_net_without_learned_blobs_is_read(tmp_path):
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, make_net(), {})
    assert read_caffemodel(path) == {}


# ----------------------------------------------------- interpreter checks

def test_unsupported_types_are_all_rejected_before_running():
    net = make_net(Layer("up", "Upsample", ("data",), ("up",), {}, Origin(SPAN)),
                   Layer("act", "Relu", ("up",), ("act",), {}, Origin(Span("net.yaml", 9, 3))))
    with pytest.raises(CaffeconfError) as caught:
        CaffeNet(net)
    assert render_text(caught.value.diagnostics, sources=SourceLines()) == (
        "net.yaml:7:3: error: layer 'up': unsupported layer type 'Upsample' "
        "(caffeconf run has no implementation for it)\n"
        "  hint: 'Upsample' is a layer type of the SegNet/ENet forks (alexgkendall/caffe-segnet, "
        "TimoSaemann/caffe-enet-cudnn); pass --proto FILE with its caffe.proto\n"
        "net.yaml:9:3: error: layer 'act': unsupported layer type 'Relu' "
        "(caffeconf run has no implementation for it)\n"
        "  hint: did you mean 'ReLU'?\n")


def test_unknown_bottom():
    with pytest.raises(CaffeconfError, match="unknown bottom blob 'dta'"):
        CaffeNet(make_net(ip("fc", "dta", 4)))


def test_missing_input_names_the_blob():
    model = CaffeNet(make_net(ip("fc", "data", 4)))
    with pytest.raises(CaffeconfError, match="no input given for its top 'data'"):
        model({})


def test_runtime_shape_errors_name_the_layer():
    net = make_net(Layer("sum", "Eltwise", ("data", "fc"), ("sum",), {}, Origin(SPAN)), ip("fc", "data", 4))
    with pytest.raises(CaffeconfError, match="unknown bottom blob 'fc'"):
        CaffeNet(net)
    net = make_net(ip("fc", "data", 4), Layer("sum", "Eltwise", ("data", "fc"), ("sum",), {}, Origin(SPAN)))
    with pytest.raises(CaffeconfError, match=r"net.yaml:7:3: error: layer 'sum' \(Eltwise\): bottoms must have equal shapes"):
        run(CaffeNet(net), X)


# --------------------------------------------------------------- memory

def test_in_place_layers_overwrite_and_dead_blobs_are_freed():
    relu = Layer("relu", "ReLU", ("fc",), ("fc",), {})
    model = CaffeNet(make_net(ip("fc", "data", 4), relu, ip("out", "fc", 2)))
    seen = {}
    original = model.run_layer

    def spy(step, bottoms, in_place=False):
        tops = original(step, bottoms, in_place)
        seen[step.layer.name] = (in_place, [b.data_ptr() for b in bottoms], [t.data_ptr() for t in tops])
        return tops

    model.run_layer = spy
    run(model, X)
    in_place, bottom_ptrs, top_ptrs = seen["relu"]
    assert in_place and bottom_ptrs == top_ptrs
    assert model.steps[3].dead_after == ("fc",)


def test_in_place_never_corrupts_a_blob_still_in_use():
    # A split blob feeds an in-place ReLU and, later, a second consumer that must see the original.
    net = make_net(ip("fc", "data", 4),
                   Layer("split", "Split", ("fc",), ("fc_a", "fc_b"), {}),
                   Layer("relu", "ReLU", ("fc_a",), ("fc_a",), {}),
                   Layer("sum", "Eltwise", ("fc_a", "fc_b"), ("sum",), {}))
    model = CaffeNet(net, seed=2)
    with torch.no_grad():
        blobs = model({"data": torch.from_numpy(X)}, keep_all=True)
        fc = blobs["fc"]
    np.testing.assert_allclose(run(model, X)["sum"].numpy(), (torch.relu(fc) + fc).numpy(), rtol=1e-6)
    inputs = torch.from_numpy(X.copy())
    relu_first = CaffeNet(Net("t", (input_layer("data", (2, 3)), Layer("r", "ReLU", ("data",), ("data",), {}))))
    with torch.no_grad():
        relu_first({"data": inputs})
    assert torch.equal(inputs, torch.from_numpy(X)), "a caller's input was overwritten"


# -------------------------------------------------------------- folding

def conv_chain(in_place: bool, extra_reader: bool):
    def top(name):
        return "conv" if in_place else name
    layers = [Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [2, 3, 6, 6]}]}}),
              Layer("conv", "Convolution", ("data",), ("conv",),
                    {"convolution_param": {"num_output": 4, "kernel_size": [3], "bias_term": False,
                                           "weight_filler": {"type": "gaussian"}}}),
              Layer("bn", "BatchNorm", ("conv",), (top("bn"),), {}),
              Layer("scale", "Scale", (top("bn"),), (top("scale"),), {"scale_param": {"bias_term": True}}),
              Layer("relu", "ReLU", (top("scale"),), (top("scale"),), {})]
    if extra_reader:
        layers.append(Layer("other", "Power", ("conv",), ("other",), {}))
    return Net("t", tuple(layers))


@pytest.mark.parametrize("in_place,extra_reader,folds", [(True, False, 1), (False, False, 1), (False, True, 0)])
def test_batch_norm_and_scale_fold_into_the_convolution(in_place, extra_reader, folds):
    model = CaffeNet(conv_chain(in_place, extra_reader), seed=4)
    x = {"data": torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model(x)
        for position, stats in enumerate([torch.randn(4, generator=generator), torch.rand(4, generator=generator) + 0.5,
                                          torch.tensor([3.0])]):
            model.layer_blobs[2][position].copy_(stats)
        model.layer_blobs[3][0].copy_(torch.rand(4, generator=generator) + 0.5)
        model.layer_blobs[3][1].copy_(torch.randn(4, generator=generator))
        expected = model(x)
        assert model.fold_for_inference() == folds
        folded = model(x)
    assert folded.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(folded[name], expected[name], rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # folding applies without autograd only: Scale still gets its gradient
        unfolded = model(x)
        sum(value.sum() for value in unfolded.values()).backward()
    assert model.layer_blobs[3][0].grad is not None
    for name in expected:
        torch.testing.assert_close(unfolded[name].detach(), expected[name], rtol=1e-6, atol=1e-6)
