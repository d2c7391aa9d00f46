"""Protobuf ↔ flat IR: every shared net survives proto → Net → proto unchanged, layers read
from a prototxt know their line, and plain data converts exactly, with errors naming paths."""

from __future__ import annotations

import pytest

from caffeconf.caffe import prototxt, serde, upgrade
from caffeconf.errors import Span
from caffeconf.ir import Layer, Net, Origin
from caffeconf.caffe import caffe_pb2
from conftest import model_files, require_models

NETS = [p for p in model_files() if "solver" not in p.name]


@pytest.mark.parametrize("path", NETS, ids=lambda p: p.parent.name + "/" + p.name)
def test_proto_net_proto_round_trip(path):
    message = upgrade.upgrade_net(prototxt.read_net(path))
    net = serde.net_from_proto(message, str(path))
    assert serde.net_to_proto(net) == message
    assert len(net.layers) == len(message.layer)


def test_layers_carry_their_source_line():
    path = require_models() / "lenet" / "lenet_train_test.prototxt"
    net = serde.net_from_proto(prototxt.read_net(path), str(path))
    lines = [f.line for f in prototxt.outline_file(path).fields if f.name == "layer"]
    assert [layer.origin.span for layer in net.layers] == [Span(str(path), line, 1)
                                                           for line in lines]
    assert net.layers[0].origin.span.line == 2  # `layer {` right after `name: "LeNet"`


def test_upgraded_v0_layers_point_at_their_blocks_and_the_input_layer_at_input():
    path = require_models() / "lenet-v0" / "lenet.prototxt"
    net = serde.net_from_proto(upgrade.upgrade_net(prototxt.read_net(path)), str(path))
    outline = prototxt.outline_file(path)
    assert net.layers[0].name == "input"
    assert net.layers[0].origin.span.line == outline.named("input")[0].line
    blocks = outline.named("layers")
    assert [layer.origin.span.line for layer in net.layers[1:]] == [b.line for b in blocks]


def test_padding_layers_dropped_by_the_upgrade_do_not_shift_origins(tmp_path):
    path = tmp_path / "padded.prototxt"
    path.write_text(
        'input: "data"\n'
        'layers {\n  layer { name: "pad1" type: "padding" pad: 1 }\n'
        '  bottom: "data" top: "pad1"\n}\n'
        'layers {\n  layer { name: "conv1" type: "conv" num_output: 2 kernelsize: 3 }\n'
        '  bottom: "pad1" top: "conv1"\n}\n')
    net = serde.net_from_proto(upgrade.upgrade_net(prototxt.read_net(path)), str(path))
    assert [(layer.name, layer.origin) for layer in net.layers] == [
        ("conv1", Origin(Span(str(path), 6, 1)))]


def test_no_source_means_no_origin():
    net = serde.net_from_proto(caffe_pb2.NetParameter(layer=[caffe_pb2.LayerParameter(name="a")]))
    assert net.layers[0].origin is None


def test_net_from_proto_refuses_legacy_layers():
    with pytest.raises(ValueError, match="upgrade_net first"):
        serde.net_from_proto(caffe_pb2.NetParameter(layers=[caffe_pb2.V1LayerParameter()]))


def test_fields_are_plain_data():
    message = prototxt.parse_net_text(
        'name: "n"\nforce_backward: true\nstate { phase: TRAIN }\n'
        'layer { name: "c" type: "Convolution" bottom: "x" top: "y"\n'
        '  param { lr_mult: 0.1 } include { phase: TEST stage: "s" }\n'
        '  convolution_param { num_output: 8 kernel_size: 3 kernel_size: 5 }\n'
        '  transform_param { } }\n', "plain.prototxt")
    net = serde.net_from_proto(message)
    assert net.name == "n"
    assert net.fields == {"force_backward": True, "state": {"phase": "TRAIN"}}
    layer = net.layers[0]
    assert (layer.name, layer.type, layer.bottoms, layer.tops) == ("c", "Convolution", ("x",), ("y",))
    assert layer.fields == {
        "param": [{"lr_mult": 0.10000000149011612}],  # the float32 value, as protobuf gives it
        "include": [{"phase": "TEST", "stage": ["s"]}],
        "transform_param": {},  # set but empty: kept, so the round trip is exact
        "convolution_param": {"num_output": 8, "kernel_size": [3, 5]},
    }
    assert serde.net_to_proto(net) == message


def test_net_to_proto_from_a_built_net():
    net = Net("built", (Layer("r", "ReLU", ("x",), ("x",), {"relu_param": {"negative_slope": 0.5}}),))
    assert prototxt.net_to_text(serde.net_to_proto(net)) == (
        'name: "built"\nlayer {\n  name: "r"\n  type: "ReLU"\n  bottom: "x"\n  top: "x"\n'
        "  relu_param {\n    negative_slope: 0.5\n  }\n}\n")


@pytest.mark.parametrize("data, error, text", [
    ({"convolution_param": {"num_ouput": 3}}, ValueError,
     "convolution_param.num_ouput: unknown field of caffe.ConvolutionParameter "
     "(did you mean 'num_output'?)"),
    ({"convolution_param": {"kernel_size": 3}}, TypeError,
     "convolution_param.kernel_size: expected a list for repeated field, got int"),
    ({"convolution_param": {"kernel_size": [3, "5"]}}, TypeError,
     "convolution_param.kernel_size[1]: expected an integer, got str '5'"),
    ({"convolution_param": {"num_output": True}}, TypeError,
     "convolution_param.num_output: expected an integer, got bool True"),
    ({"convolution_param": {"bias_term": 1}}, TypeError,
     "convolution_param.bias_term: expected a boolean, got int 1"),
    ({"convolution_param": {"num_output": -1}}, ValueError,
     "convolution_param.num_output: Value out of range: -1"),
    ({"pooling_param": {"pool": "MAXX"}}, ValueError,
     "pooling_param.pool: 'MAXX' is not a value of caffe.PoolingParameter.PoolMethod "
     "(one of MAX, AVE, STOCHASTIC); did you mean 'MAX'?"),
    ({"pooling_param": {"pool": 0}}, TypeError,
     "pooling_param.pool: expected a value name of caffe.PoolingParameter.PoolMethod, got int 0"),
    ({"param": [{"lr_mult": 1}, 2]}, TypeError,
     "param[1]: expected a mapping for caffe.ParamSpec, got int"),
    ({"include": [{"phase": "TRAIN", "stagee": []}]}, ValueError,
     "include[0].stagee: unknown field of caffe.NetStateRule (did you mean 'stage'?)"),
])
def test_data_to_message_names_the_bad_field(data, error, text):
    with pytest.raises(error) as caught:
        serde.data_to_message(data, caffe_pb2.LayerParameter())
    assert str(caught.value) == text


def test_data_round_trip_keeps_every_kind_of_value():
    data = {"name": "d", "type": "Data", "top": ["a"], "loss_weight": [1.0, 0.5],
            "propagate_down": [True, False], "phase": "TEST",
            "blobs": [{"shape": {"dim": [2, 3]}, "data": [0.25, -1.5]}],
            "param": [{"share_mode": "PERMISSIVE"}],
            "data_param": {"source": "db", "backend": "LMDB", "batch_size": 4}}
    message = serde.data_to_message(data, caffe_pb2.LayerParameter())
    assert serde.message_to_data(message) == data
