"""Static shape inference against hand-computed numbers, Caffe's errors, and the shared models."""

from __future__ import annotations

import pytest

from caffeconf.caffe import facts
from caffeconf.errors import CaffeconfError, Span, render_text
from caffeconf.ir import Layer, Net, Origin, Use
from caffeconf.inspect.shapes import SHAPE_RULES, format_shape, infer_shapes, over_blob_limit

from conftest import model_files


def source(shape, name="data"):
    return Layer(name, "Input", (), (name,), {"input_param": {"shape": [{"dim": list(shape)}]}})


def top_shapes(layers, inputs=None, batch=None):
    shapes = infer_shapes(Net("t", tuple(layers)), inputs, batch)
    return {top: shape for entry in shapes.layers for top, shape in zip(entry.layer.tops, entry.tops)}


def single(layer, *inputs):
    """The top shapes of `layer` fed by Input layers of the given shapes (bottoms b0, b1, ...)."""
    names = [f"b{i}" for i in range(len(inputs))]
    layer = Layer(layer.name, layer.type, tuple(names), layer.tops, layer.fields)
    shapes = infer_shapes(Net("t", (*(source(s, n) for s, n in zip(inputs, names)), layer)))
    return shapes.layers[-1].tops


def conv(**param):
    return Layer("c", "Convolution", (), ("c",), {"convolution_param": param})


def pool(**param):
    return Layer("p", "Pooling", (), ("p",), {"pooling_param": param})


def error_text(layer, *inputs):
    with pytest.raises(CaffeconfError) as caught:
        single(layer, *inputs)
    return render_text(caught.value.diagnostics)


# ---------------------------------------------------------------- convolution family

def test_convolution_pad_stride():
    # (224 + 2*3 - 7) // 2 + 1 = 112
    assert single(conv(num_output=64, kernel_size=[7], stride=[2], pad=[3]), (2, 3, 224, 224)) \
        == ((2, 64, 112, 112),)


def test_convolution_dilation_and_per_axis_fields():
    # extent 2*(3-1)+1 = 5: 10 - 5 + 1 = 6; width: kernel_w 1, stride_w 2: (9 - 1) // 2 + 1 = 5
    layer = conv(num_output=4, kernel_h=3, kernel_w=1, stride_h=1, stride_w=2, dilation=[2, 1])
    assert single(layer, (1, 2, 10, 9)) == ((1, 4, 6, 5),)


def test_convolution_groups_shape_the_weights():
    shapes = infer_shapes(Net("t", (source((1, 4, 5, 5)), Layer(
        "c", "Convolution", ("data",), ("c",),
        {"convolution_param": {"num_output": 6, "kernel_size": [3], "group": 2}}))))
    assert shapes.layers[-1].params == ((6, 2, 3, 3), (6,))


def test_convolution_n_d():
    assert single(conv(num_output=2, kernel_size=[3, 1, 2]), (1, 1, 5, 5, 5)) == ((1, 2, 3, 5, 4),)


def test_deconvolution():
    # 2 * (4 - 1) + 4 - 2 * 1 = 8; weights are C_in x num_output/group x kernel
    layer = Layer("d", "Deconvolution", (), ("d",),
                  {"convolution_param": {"num_output": 3, "kernel_size": [4], "stride": [2], "pad": [1],
                                         "bias_term": False}})
    shapes = infer_shapes(Net("t", (source((1, 5, 4, 4)), Layer(
        layer.name, layer.type, ("data",), layer.tops, layer.fields))))
    assert shapes.layers[-1].tops == ((1, 3, 8, 8),)
    assert shapes.layers[-1].params == ((5, 3, 4, 4),)


def test_im2col():
    layer = Layer("i", "Im2col", (), ("i",), {"convolution_param": {"kernel_size": [3], "stride": [2]}})
    assert single(layer, (1, 2, 7, 7)) == ((1, 18, 3, 3),)


def test_kernel_larger_than_padded_input():
    text = error_text(conv(num_output=1, kernel_size=[5], pad=[1]), (1, 1, 2, 2))
    assert text == ("error: layer 'c' (Convolution): kernel extent 5 is larger than the padded input 4\n")


def test_strided_kernel_overhanging_input_gives_one_output():
    # Caffe: (2 - 3) / 2 + 1 truncates toward zero to 1, so Net::Init accepts it
    assert single(conv(num_output=1, kernel_size=[3], stride=[2]), (1, 1, 2, 2)) == ((1, 1, 1, 1),)


# ---------------------------------------------------------------- pooling

def test_pooling_rounds_up():
    # ceil((112 - 3) / 2) + 1 = 56 (GoogLeNet's pool1); floor would give 55
    assert single(pool(pool="MAX", kernel_size=3, stride=2), (1, 64, 112, 112)) == ((1, 64, 56, 56),)


def test_pooling_clips_a_window_starting_in_the_padding():
    # ceil((5 + 2 - 2) / 2) + 1 = 4, but window 4 would start at 6 >= 5 + 1: clipped to 3
    assert single(pool(pool="AVE", kernel_size=2, stride=2, pad=1), (1, 1, 5, 5)) == ((1, 1, 3, 3),)
    # without the clip condition: ceil((6 + 2 - 3) / 2) + 1 = 4, window 3 starts at 6 < 6 + 1: kept
    assert single(pool(pool="AVE", kernel_size=3, stride=2, pad=1), (1, 1, 6, 6)) == ((1, 1, 4, 4),)


def test_global_pooling():
    assert single(pool(pool="AVE", global_pooling=True), (2, 8, 7, 5)) == ((2, 8, 1, 1),)


def test_pooling_pad_must_be_smaller_than_kernel():
    text = error_text(pool(pool="MAX", kernel_size=2, pad=2), (1, 1, 8, 8))
    assert "pad [2, 2] must be smaller than kernel [2, 2]" in text


def test_spp():
    layer = Layer("s", "SPP", (), ("s",), {"spp_param": {"pyramid_height": 3}})
    assert single(layer, (2, 8, 13, 13)) == ((2, 8 * (1 + 4 + 16)),)
    flat = Layer("s", "SPP", (), ("s",), {"spp_param": {"pyramid_height": 1}})
    assert single(flat, (2, 8, 13, 13)) == ((2, 8, 1, 1),)


# ---------------------------------------------------------------- dense and plumbing

def test_inner_product_axis():
    layer = Layer("f", "InnerProduct", (), ("f",), {"inner_product_param": {"num_output": 7, "axis": 2}})
    shapes = infer_shapes(Net("t", (source((2, 3, 4, 5)), Layer(
        "f", "InnerProduct", ("data",), ("f",), layer.fields))))
    assert shapes.layers[-1].tops == ((2, 3, 7),)
    assert shapes.layers[-1].params == ((7, 20), (7,))


def test_concat_axis_and_mismatch():
    layer = Layer("cat", "Concat", (), ("cat",), {})
    assert single(layer, (1, 2, 4, 4), (1, 5, 4, 4)) == ((1, 7, 4, 4),)
    on_h = Layer("cat", "Concat", (), ("cat",), {"concat_param": {"axis": -2}})
    assert single(on_h, (1, 2, 4, 4), (1, 2, 3, 4)) == ((1, 2, 7, 4),)
    assert error_text(layer, (1, 2, 4, 4), (1, 5, 3, 4)) == (
        "error: layer 'cat' (Concat): Concat inputs must agree on every axis but 1: "
        "1x2x4x4, 1x5x3x4\n")


def test_slice_points_and_even_split():
    points = Layer("s", "Slice", (), ("a", "b", "c"), {"slice_param": {"slice_point": [1, 3]}})
    assert single(points, (2, 6, 3)) == ((2, 1, 3), (2, 2, 3), (2, 3, 3))
    even = Layer("s", "Slice", (), ("a", "b"), {"slice_param": {"slice_dim": 2}})
    assert single(even, (2, 6, 4)) == ((2, 6, 2), (2, 6, 2))


def test_flatten():
    assert single(Layer("f", "Flatten", (), ("f",), {}), (2, 3, 4, 5)) == ((2, 60),)
    partial = Layer("f", "Flatten", (), ("f",), {"flatten_param": {"axis": 1, "end_axis": 2}})
    assert single(partial, (2, 3, 4, 5)) == ((2, 12, 5),)


def test_reshape_copies_zero_and_infers_minus_one():
    layer = Layer("r", "Reshape", (), ("r",), {"reshape_param": {"shape": {"dim": [0, -1]}}})
    assert single(layer, (2, 3, 4, 5)) == ((2, 60),)
    middle = Layer("r", "Reshape", (), ("r",),
                   {"reshape_param": {"shape": {"dim": [3, -1]}, "axis": 1, "num_axes": 1}})
    assert single(middle, (2, 12, 4)) == ((2, 3, 4, 4),)
    # axis -1 means after the last axis: appends a dim
    append = Layer("r", "Reshape", (), ("r",), {"reshape_param": {"shape": {"dim": [1]}, "axis": -1,
                                                                  "num_axes": 0}})
    assert single(append, (2, 3)) == ((2, 3, 1),)
    bad = Layer("r", "Reshape", (), ("r",), {"reshape_param": {"shape": {"dim": [7, -1]}}})
    assert "do not divide by 7" in error_text(bad, (2, 3, 4))


def test_crop():
    layer = Layer("crop", "Crop", (), ("crop",), {"crop_param": {"axis": 2, "offset": [2]}})
    assert single(layer, (1, 3, 10, 12), (1, 5, 6, 6)) == ((1, 3, 6, 6),)
    too_far = Layer("crop", "Crop", (), ("crop",), {"crop_param": {"axis": 2, "offset": [5, 0]}})
    assert "crop of axis 2 is out of bounds: size 6 at offset 5 in 10" in \
        error_text(too_far, (1, 3, 10, 12), (1, 5, 6, 6))


def test_eltwise_mismatch():
    layer = Layer("sum", "Eltwise", (), ("sum",), {})
    assert error_text(layer, (1, 2, 3), (1, 2, 4)) == (
        "error: layer 'sum' (Eltwise): Eltwise inputs differ in shape: 1x2x3, 1x2x4\n")


def test_scale_one_and_two_bottoms():
    shapes = infer_shapes(Net("t", (source((2, 3, 4)), Layer(
        "s", "Scale", ("data",), ("data",), {"scale_param": {"bias_term": True}}))))
    assert shapes.layers[-1].params == ((3,), (3,))
    two = Layer("s", "Scale", (), ("s",), {"scale_param": {"axis": 0}})
    assert single(two, (2, 3, 4), (2, 3)) == ((2, 3, 4),)
    assert "second bottom 3 does not match input 2x4x4 from axis 1" in error_text(
        Layer("s", "Scale", (), ("s",), {}), (2, 4, 4), (3,))


def test_losses_accuracy_argmax_reduction():
    assert single(Layer("l", "SoftmaxWithLoss", (), ("l", "prob"), {}), (4, 10), (4,)) == ((), (4, 10))
    assert single(Layer("a", "Accuracy", (), ("a", "per_class"), {}), (4, 10), (4,)) == ((), (10,))
    assert "3 labels for 4 predictions" in error_text(
        Layer("l", "SoftmaxWithLoss", (), ("l",), {}), (4, 10), (3,))
    assert single(Layer("m", "ArgMax", (), ("m",), {"argmax_param": {"out_max_val": True, "top_k": 3}}),
                  (4, 10)) == ((4, 2, 3),)
    assert single(Layer("m", "ArgMax", (), ("m",), {"argmax_param": {"axis": 1}}),
                  (4, 10, 5)) == ((4, 1, 5),)
    assert single(Layer("r", "Reduction", (), ("r",), {"reduction_param": {"axis": 1}}),
                  (4, 10, 5)) == ((4,),)


def test_batch_norm_prelu_embed_params():
    net = Net("t", (
        source((2, 3, 4, 4)),
        Layer("bn", "BatchNorm", ("data",), ("data",), {}),
        Layer("pr", "PReLU", ("data",), ("data",), {}),
        Layer("e", "Embed", ("data",), ("e",), {"embed_param": {"num_output": 5, "input_dim": 9}}),
    ))
    params = [entry.params for entry in infer_shapes(net).layers[1:]]
    assert params == [((3,), (3,), (1,)), ((3,),), ((9, 5), (5,))]
    assert infer_shapes(net).blob("e") == (2, 3, 4, 4, 5)


def test_lstm_shapes_and_weights():
    layer = Layer("lstm", "LSTM", (), ("h",), {"recurrent_param": {"num_output": 8}})
    shapes = infer_shapes(Net("t", (source((5, 2, 3), "x"), source((5, 2), "cont"), Layer(
        "lstm", "LSTM", ("x", "cont"), ("h",), layer.fields))))
    assert shapes.layers[-1].tops == ((5, 2, 8),)
    assert shapes.layers[-1].params == ((32, 3), (32,), (32, 8))


# ---------------------------------------------------------------- sources, unknowns and overrides

def test_dummy_data_legacy_dims():
    layer = Layer("d", "DummyData", (), ("a", "b"),
                  {"dummy_data_param": {"num": [2], "channels": [3, 1], "height": [4], "width": [5]}})
    assert infer_shapes(Net("t", (layer,))).layers[0].tops == ((2, 3, 4, 5), (2, 1, 4, 5))


def test_data_layer_channels_unknown_and_propagated():
    data = Layer("d", "Data", (), ("data", "label"),
                 {"data_param": {"batch_size": 8}, "transform_param": {"crop_size": 5}})
    net = Net("t", (data, Layer("c", "Convolution", ("data",), ("c",),
                                {"convolution_param": {"num_output": 4, "kernel_size": [3]}})))
    shapes = infer_shapes(net)
    assert shapes.layers[0].tops == ((8, None, 5, 5), (8,))
    assert shapes.layers[1].tops == ((8, 4, 3, 3),)
    assert shapes.layers[1].params is None  # weights need the channels
    given = infer_shapes(net, {"data": (8, 3, 5, 5)}, batch=2)
    assert given.layers[1].tops == ((2, 4, 3, 3),)
    assert given.layers[1].params == ((4, 3, 3, 3), (4,))


def test_unknown_input_name_is_an_error():
    with pytest.raises(CaffeconfError) as caught:
        infer_shapes(Net("t", (source((1, 2)),)), {"date": (1, 2)})
    assert render_text(caught.value.diagnostics) == (
        "error: no input blob named 'date' (inputs: data)\n  hint: did you mean 'data'?\n")


def test_format_shape():
    assert [format_shape(s) for s in [(1, None, 3), (), None]] == ["1x?x3", "scalar", "?"]


def test_error_points_at_the_layer_with_its_module_chain(tmp_path):
    config = tmp_path / "net.yaml"
    config.write_text("layers:\n  - name: cat\n")
    span = Span(str(config), 2, 5)
    origin = Origin(span, (Use("tower", "t1", Span(str(config), 9, 3)),
                           Use("branch", "b2", Span(str(config), 20, 7))))
    net = Net("t", (source((1, 2, 4, 4), "a"), source((1, 2, 5, 4), "b"),
                    Layer("cat", "Concat", ("a", "b"), ("cat",), {}, origin)))
    with pytest.raises(CaffeconfError) as caught:
        infer_shapes(net)
    assert render_text(caught.value.diagnostics) == (
        f"{config}:2:5: error: layer 'cat' (Concat): Concat inputs must agree on every axis but 1: "
        "1x2x4x4, 1x2x5x4\n"
        "      - name: cat\n"
        "        ^\n"
        f"{config}:20:7: note: in module branch, used as b2\n"
        f"{config}:9:3: note: in module tower, used as t1\n")


def test_every_bad_layer_is_reported():
    net = Net("t", (source((1, 1, 2, 2)),
                    Layer("c1", "Convolution", ("data",), ("c1",),
                          {"convolution_param": {"num_output": 1, "kernel_size": [3]}}),
                    Layer("c2", "Convolution", ("data",), ("c2",),
                          {"convolution_param": {"num_output": 1, "kernel_size": [4]}})))
    with pytest.raises(CaffeconfError) as caught:
        infer_shapes(net)
    assert [d.message.split(":")[0] for d in caught.value.diagnostics] == \
        ["layer 'c1' (Convolution)", "layer 'c2' (Convolution)"]


def test_bottom_and_top_counts_are_caffes():
    """Layer::CheckBlobCounts: exact, least and most counts; losses make their missing tops; a
    convolution one top per bottom; a recurrent layer's counts grow with expose_hidden."""
    assert "takes at least 2 bottom blobs, but 1 is given" in error_text(Layer("e", "Eltwise", (), ("e",), {}), (2, 3))
    assert "takes 1 bottom blob, but 2 are given" in error_text(Layer("r", "ReLU", (), ("r",), {}), (2,), (2,))
    assert "makes 2 top blobs, but 1 is named" in error_text(
        Layer("d", "ImageData", (), ("d",), {"image_data_param": {"batch_size": 2}}))
    assert "makes at most 2 top blobs, but 3 are named" in error_text(
        Layer("l", "SoftmaxWithLoss", (), ("l", "p", "q"), {}), (4, 10), (4,))
    assert single(Layer("l", "SoftmaxWithLoss", (), (), {}), (4, 10), (4,)) == ()
    assert "makes one top per bottom, but it has 2 bottom(s) and 1 top(s)" in error_text(
        conv(num_output=1, kernel_size=[1]), (1, 1, 2, 2), (1, 1, 2, 2))
    lstm = Layer("l", "LSTM", (), ("h",), {"recurrent_param": {"num_output": 2, "expose_hidden": True}})
    assert "takes at least 4 bottom blobs, but 2 are given" in error_text(lstm, (3, 2, 5), (3, 2))


def test_count_table_names_only_real_types():
    assert set(facts.BLOB_COUNTS) <= facts.LAYER_TYPES | set(facts.FORK_LAYER_TYPES)


def test_rule_table_covers_the_runner_layer_set():
    runner = {
        "Input", "DummyData", "Convolution", "Deconvolution", "Pooling", "InnerProduct", "ReLU", "PReLU",
        "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold", "Clip", "Swish",
        "LRN", "BatchNorm", "Scale", "Bias", "Eltwise", "Concat", "Slice", "Split", "Flatten", "Reshape",
        "Crop", "Softmax", "Dropout", "MVN", "Reduction", "ArgMax", "Tile", "Embed", "Silence",
        "Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "ContrastiveLoss",
        "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss", "SPP", "Im2col", "Filter",
        "BatchReindex", "Parameter", "RNN", "LSTM", "Data",
    }
    assert runner <= set(SHAPE_RULES)


# ---------------------------------------------------------------- SSD's layers (the tiny fork's proto)

def test_permute_puts_the_unnamed_axes_last(tiny_fork):
    assert single(Layer("p", "Permute", (), ("p",), {"permute_param": {"order": [0, 2, 3, 1]}}),
                  (2, 3, 4, 5)) == ((2, 4, 5, 3),)
    assert single(Layer("p", "Permute", (), ("p",), {"permute_param": {"order": [2]}}),
                  (2, 3, 4, 5)) == ((4, 2, 3, 5),)
    twice = Layer("p", "Permute", (), ("p",), {"permute_param": {"order": [1, 1]}})
    assert "permute_param.order [1, 1] names an axis twice" in error_text(twice, (2, 3, 4, 5))


def test_normalize_keeps_the_shape_and_owns_a_scale(tiny_fork):
    def scale(**param):
        layer = Layer("n", "Normalize", ("data",), ("n",), {"norm_param": param})
        return infer_shapes(Net("t", (source((2, 8, 3, 3)), layer))).layers[-1]

    assert scale().tops == ((2, 8, 3, 3),) and scale().params == ((),)
    assert scale(channel_shared=False).params == ((8,),)


def prior_box(**param):
    return Layer("pb", "PriorBox", (), ("pb",), {"prior_box_param": param})


def test_prior_box_counts_ratios_flips_and_max_sizes(tiny_fork):
    # ratios 1, 2, 1/2, 3, 1/3 (the repeated 2 is dropped) per min_size, plus one per max_size: 6
    layer = prior_box(min_size=[105.0], max_size=[150.0], aspect_ratio=[2.0, 3.0, 2.0])
    assert single(layer, (1, 8, 10, 10), (1, 3, 300, 300)) == ((1, 2, 10 * 10 * 6 * 4),)
    no_flip = prior_box(min_size=[30.0, 60.0], aspect_ratio=[2.0], flip=False)
    assert single(no_flip, (1, 8, 3, 5), (1, 3, 300, 300)) == ((1, 2, 3 * 5 * 4 * 4),)


@pytest.mark.parametrize("param, message", [
    ({}, "prior_box_param needs min_size, each positive"),
    ({"min_size": [30.0], "max_size": [20.0]}, "prior_box_param.max_size must be greater than its min_size"),
    ({"min_size": [30.0], "variance": [0.1, 0.2]}, "prior_box_param.variance needs 1 or 4 positive values"),
    ({"min_size": [30.0], "step": 8.0, "step_h": 8.0}, "give either prior_box_param.step or step_h/step_w"),
])
def test_prior_box_refuses_what_the_fork_checks(tiny_fork, param, message):
    assert message in error_text(prior_box(**param), (1, 8, 3, 3), (1, 3, 30, 30))


def detection_output(**param):
    return Layer("d", "DetectionOutput", (), ("d",), {"detection_output_param": {"num_classes": 3, **param}})


def test_detection_output_declares_one_row_and_checks_the_prior_count(tiny_fork):
    # 10 priors: 40 location values, 30 scores, priors blob (1, 2, 40)
    assert single(detection_output(), (2, 40), (2, 30), (1, 2, 40)) == ((1, 1, 1, 7),)
    assert single(detection_output(share_location=False), (2, 120), (2, 30), (1, 2, 40)) == ((1, 1, 1, 7),)
    assert "confidences 2x33 need 30 channels (10 priors x 3)" in \
        error_text(detection_output(), (2, 40), (2, 33), (1, 2, 40))


# ---------------------------------------------------------------- the shared models

NETS = [p for p in model_files() if "solver" not in p.name]


def _load(path, phase="TRAIN"):
    from caffeconf.compile.load import load
    from caffeconf.compile.rules import filter_net

    return filter_net(load(path).net, phase=phase)


@pytest.mark.parametrize("path", NETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_model_shapes(path):
    shapes = infer_shapes(_load(path))
    assert shapes.layers


@pytest.mark.parametrize("name, output, params", [
    ("bvlc_googlenet/deploy.prototxt", (10, 1000), 6_998_552),
    ("bvlc_reference_caffenet/deploy.prototxt", (10, 1000), 60_965_224),
    ("lenet/lenet.prototxt", (64, 10), 431_080),
])
def test_known_deploy_nets(models, name, output, params):
    from caffeconf.inspect.measure import layer_costs, net_totals

    shapes = infer_shapes(_load(models / name))
    assert shapes.layers[-1].tops[0] == output
    assert net_totals(layer_costs(shapes))[0] == params


def test_mobilenet_ssd_has_every_shape_with_its_proto(models):
    from caffeconf.caffe import dialect

    with dialect.use(dialect.load_dialect(models.parent / "dialects" / "ssd" / "caffe.proto")):
        shapes = infer_shapes(_load(models / "mobilenet-ssd" / "MobileNetSSD_deploy.prototxt", "TEST"))
    assert all(shape is not None and None not in shape for entry in shapes.layers for shape in entry.tops)
    # 1917 priors (19x19x3 + 10x10x6 + 5x5x6 + 3x3x6 + 2x2x6 + 1x1x6), 21 classes
    assert shapes.blob("mbox_priorbox") == (1, 2, 1917 * 4)
    assert shapes.blob("mbox_conf_flatten") == (1, 1917 * 21)
    assert shapes.blob("detection_out") == (1, 1, 1, 7)


def test_net_level_inputs_take_their_declared_shape():
    net = Net("t", (Layer("f", "Flatten", ("data",), ("f",)),), {"input": ["data"], "input_dim": [2, 3, 4, 5]})
    assert infer_shapes(net).layers[0].tops == ((2, 60),)
    assert infer_shapes(net, {"data": (1, 2, 2, 2)}, batch=3).layers[0].tops == ((3, 8),)
    undeclared = Net("t", net.layers, {"input": ["data"]})
    assert infer_shapes(undeclared).layers[0].tops == (None,)


def test_recurrent_exposed_states_are_not_mistaken_for_x_static():
    from caffeconf.ir import Layer, Net
    from caffeconf.inspect.shapes import infer_shapes

    def source(name, dims):
        return Layer(name, "Input", (), (name,), {"input_param": {"shape": [{"dim": dims}]}})

    lstm = Layer("lstm", "LSTM", ("x", "cont", "h0", "c0"), ("h", "hT", "cT"),
                 {"recurrent_param": {"num_output": 5, "expose_hidden": True}})
    net = Net("n", (source("x", [3, 2, 4]), source("cont", [3, 2]), source("h0", [1, 2, 5]),
                    source("c0", [1, 2, 5]), lstm))
    entry = infer_shapes(net).layers[-1]
    assert entry.tops == ((3, 2, 5), (1, 2, 5), (1, 2, 5))
    assert entry.params == ((20, 4), (20,), (20, 5))  # W_xc, b_c, W_hc: no x_static weight


def test_convolution_pad_h_alone_pads_height_only():
    from caffeconf.ir import Layer, Net
    from caffeconf.inspect.shapes import infer_shapes

    data = Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [1, 1, 5, 5]}]}})
    conv = Layer("conv", "Convolution", ("data",), ("conv",),
                 {"convolution_param": {"num_output": 2, "kernel_size": [3], "pad_h": 1}})
    assert infer_shapes(Net("n", (data, conv))).layers[-1].tops == ((1, 2, 5, 3),)


def test_pooling_kernel_larger_than_input_is_one_output():
    # ceil((1 - 2) / 2) + 1 = 1: Caffe accepts the tiny declared input (reshaped at run time)
    assert single(pool(pool="MAX", kernel_size=2, stride=2), (1, 8, 1, 1)) == ((1, 8, 1, 1),)


def test_pooling_non_positive_size_is_refused():
    # ceil((1 - 4) / 1) + 1 = -2
    text = error_text(pool(pool="MAX", kernel_size=4), (1, 8, 1, 1))
    assert text.endswith("kernel 4 is larger than the padded input 1\n")


@pytest.mark.parametrize("shape, over", [
    ((2**31 - 1,), False), ((2**31,), True), ((46341, 46341), True), ((46340, 46340), False),
    ((0, 2**40, 2**40), False),  # as Blob::Reshape: once the count is 0 nothing is checked
    ((2**40, 2**40, 0), True), ((None, 2**31), True), ((None, 3, 224, 224), False),
])
def test_blob_limit_is_caffes_int_max_checked_axis_by_axis(shape, over):
    assert over_blob_limit(shape) is over


def test_pooling_round_mode_floor_rounds_down():
    pool = {"pool": "MAX", "kernel_size": 3, "stride": 2, "pad": 1}
    assert single(Layer("p", "Pooling", (), ("p",), {"pooling_param": pool}), (1, 1, 6, 6)) == ((1, 1, 4, 4),)
    floor = {**pool, "round_mode": "FLOOR"}
    assert single(Layer("p", "Pooling", (), ("p",), {"pooling_param": floor}), (1, 1, 6, 6)) == ((1, 1, 3, 3),)
