"""The depthwise, shuffle and interpolation forks' layers with the tiny fork's proto: ConvolutionDepthwise
(farmingyard's ShuffleNet/MobileNet forks), DepthwiseConvolution (yonghenglh6), ShuffleChannel
(farmingyard/ShuffleNet), Interp (hszhao/PSPNet) and PoolingParameter.ceil_mode (BVLC PR #3057).
Shapes and MACs, the runner against OpenCV where it reads the layer the fork's way and against the
fork's formulas where it does not, gradients, a training run, and validate/inspect of small nets."""

from __future__ import annotations

import numpy as np
import pytest

from caffeconf.errors import CaffeconfError
from caffeconf.inspect.measure import layer_costs
from caffeconf.inspect.shapes import infer_shapes
from caffeconf.ir import Layer, Net

pytestmark = pytest.mark.usefixtures("tiny_fork")

X_SHAPE = (2, 6, 7, 9)


def shapes_of(layer_type, fields, shape=X_SHAPE):
    """(tops, learnable blob shapes, MACs) of one layer fed an Input of `shape`."""
    net = Net("t", (Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": list(shape)}]}}),
                    Layer("l", layer_type, ("data",), ("l",), fields)))
    entry = infer_shapes(net).layers[-1]
    return entry.tops[0], entry.params, layer_costs(infer_shapes(net))[-1].macs


def refused(layer_type, fields, shape=X_SHAPE) -> str:
    with pytest.raises(CaffeconfError) as raised:
        shapes_of(layer_type, fields, shape)
    (problem,) = raised.value.diagnostics
    return problem.message


# ---------------------------------------------------------------- shapes and MACs

def conv(**param):
    return {"convolution_param": param}


def test_convolution_depthwise_keeps_the_channels_whatever_num_output_and_group_say():
    top, params, macs = shapes_of("ConvolutionDepthwise", conv(num_output=12, group=3, kernel_size=[3],
                                                               pad=[1], stride=[2]))
    assert (top, params) == ((2, 6, 4, 5), ((6, 1, 3, 3), (6,)))
    assert macs == 2 * 6 * 4 * 5 * 9


def test_convolution_depthwise_reads_h_and_w_only_together_and_the_first_two_values():
    assert shapes_of("ConvolutionDepthwise", conv(kernel_size=[3, 1], kernel_h=5, pad=[0], stride=[1],
                                                  bias_term=False))[:2] == ((2, 6, 5, 9), ((6, 1, 3, 1),))
    assert shapes_of("ConvolutionDepthwise", conv(kernel_h=3, kernel_w=2, pad_h=1, pad_w=0, stride=[2, 3],
                                                  dilation=[2]))[0] == (2, 6, 3, 3)


@pytest.mark.parametrize("fields,message", [
    (conv(kernel_size=[3], pad=[1]), "ConvolutionDepthwise has no default for convolution_param.stride: "
                                     "write stride (or stride_h and stride_w)"),
    (conv(kernel_size=[3], stride=[1]), "ConvolutionDepthwise has no default for convolution_param.pad: "
                                        "write pad (or pad_h and pad_w)"),
    (conv(pad=[0], stride=[1]), "ConvolutionDepthwise has no default for convolution_param.kernel_size: "
                                "write kernel_size (or kernel_h and kernel_w)"),
    (conv(kernel_size=[3], pad=[0], stride=[0]), "ConvolutionDepthwise needs a positive stride, got [0, 0]"),
    (conv(kernel_size=[9], pad=[0], stride=[1]), "kernel extent 9 is larger than the padded input 7"),
])
def test_convolution_depthwise_refuses_what_the_fork_cannot_set_up(fields, message):
    assert refused("ConvolutionDepthwise", fields) == f"layer 'l' (ConvolutionDepthwise): {message}"


def test_depthwise_convolution_is_caffes_grouped_convolution():
    top, params, macs = shapes_of("DepthwiseConvolution", conv(num_output=12, group=6, kernel_size=[3],
                                                               pad=[1], stride=[2]))
    assert (top, params, macs) == ((2, 12, 4, 5), ((12, 1, 3, 3), (12,)), 2 * 12 * 4 * 5 * 9)
    assert "must be multiples of group 4" in refused("DepthwiseConvolution", conv(num_output=12, group=4,
                                                                                  kernel_size=[3]))


def test_shuffle_channel_makes_a_four_axis_top_and_checks_the_group():
    assert shapes_of("ShuffleChannel", {"shuffle_channel_param": {"group": 3}}, (2, 6)) == ((2, 6, 1, 1), (), 0)
    assert refused("ShuffleChannel", {"shuffle_channel_param": {"group": 4}}) == (
        "layer 'l' (ShuffleChannel): shuffle_channel_param.group 4 does not divide the 6 channels")
    assert refused("ShuffleChannel", {"shuffle_channel_param": {"group": 0}}).endswith(
        "shuffle_channel_param.group must be greater than 0, got 0")


@pytest.mark.parametrize("param,size", [
    ({"zoom_factor": 3}, (19, 25)),
    ({"shrink_factor": 2}, (4, 5)),
    ({"shrink_factor": 2, "zoom_factor": 3}, (10, 13)),
    ({"height": 13, "width": 4}, (13, 4)),
    ({"height": 13, "width": 4, "zoom_factor": 2}, (13, 17)),  # a factor alone goes first...
    ({"height": 13, "width": 4, "zoom_factor": 2, "shrink_factor": 2}, (13, 4)),  # ...both after height/width
    ({"zoom_factor": 2, "pad_beg": -1, "pad_end": -2}, (7, 11)),  # the input cropped to 4x6 first
])
def test_interp_output_size_is_the_forks(param, size):
    assert shapes_of("Interp", {"interp_param": param}) == ((2, 6, *size), (), 0)


@pytest.mark.parametrize("param,message", [
    ({"height": 13}, "interp_param needs zoom_factor, shrink_factor, or height and width"),
    ({"zoom_factor": 0}, "interp_param.zoom_factor must be at least 1, got 0"),
    ({"zoom_factor": 2, "pad_beg": 1}, "interp_param.pad_beg and pad_end must be 0 or negative "
                                       "(the fork only crops), got 1 and 0"),
    ({"zoom_factor": 2, "pad_end": -7}, "the input cropped by interp_param.pad_beg/pad_end is empty (7x9)"),
])
def test_interp_refuses_what_the_fork_checks(param, message):
    assert refused("Interp", {"interp_param": param}) == f"layer 'l' (Interp): {message}"


@pytest.mark.parametrize("ceil_mode,size", [({}, (4, 5)), ({"ceil_mode": True}, (4, 5)),
                                            ({"ceil_mode": False}, (3, 4))])
def test_pooling_ceil_mode_false_rounds_down(ceil_mode, size):
    pool = {"pool": "MAX", "kernel_size": 2, "stride": 2, **ceil_mode}
    assert shapes_of("Pooling", {"pooling_param": pool})[0] == (2, 6, *size)


@pytest.mark.parametrize("kernel,stride,pad,ceil,floor", [
    (3, 2, 1, 4, 3),
    # ceil((6 + 4 - 3) / 3) + 1 = 4 windows, the last starting at 9 - 2 = 7, past the input: dropped.
    (3, 3, 2, 3, 3),
])
def test_pooling_with_padding_rounds_then_drops_a_last_window_in_the_padding(kernel, stride, pad, ceil, floor):
    pool = {"pool": "AVE", "kernel_size": kernel, "stride": stride, "pad": pad}
    assert shapes_of("Pooling", {"pooling_param": pool}, (1, 1, 6, 6))[0] == (1, 1, ceil, ceil)
    assert shapes_of("Pooling", {"pooling_param": {**pool, "ceil_mode": False}}, (1, 1, 6, 6))[0] == (1, 1, floor, floor)



# ---------------------------------------------------------------- validate and inspect

def layer_text(layer_type: str, param: str, bottom: str, name: str) -> str:
    return f'layer {{ name: "{name}" type: "{layer_type}" bottom: "{bottom}" top: "{name}" {param} }}\n'


SHUFFLENET_LIKE = 'name: "shufflenet"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n' + "".join([
    layer_text("Convolution", "convolution_param { num_output: 24 kernel_size: 3 stride: 2 pad: 1 }", "data", "conv1"),
    layer_text("Pooling", "pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 ceil_mode: false }",
               "conv1", "pool1"),
    layer_text("Convolution", "convolution_param { num_output: 12 kernel_size: 1 group: 3 }", "pool1", "reduce"),
    layer_text("ShuffleChannel", "shuffle_channel_param { group: 3 }", "reduce", "shuffle"),
    layer_text("ConvolutionDepthwise", "convolution_param { num_output: 12 kernel_size: 3 stride: 1 pad: 1 }",
               "shuffle", "dw"),
    layer_text("DepthwiseConvolution", "convolution_param { num_output: 12 group: 12 kernel_size: 3 pad: 1 }",
               "dw", "dw2"),
])

PSPNET_LIKE = 'name: "pspnet"\ninput: "data"\ninput_shape { dim: 1 dim: 8 dim: 12 dim: 12 }\n' + "".join(
    layer_text("Pooling", f"pooling_param {{ pool: AVE kernel_size: {12 // bins} stride: {12 // bins} }}",
               "data", f"pool{bins}") +
    layer_text("Convolution", "convolution_param { num_output: 2 kernel_size: 1 }", f"pool{bins}", f"conv{bins}") +
    layer_text("Interp", "interp_param { height: 12 width: 12 }", f"conv{bins}", f"up{bins}")
    for bins in (1, 2, 3, 6)) + (
    'layer { name: "cat" type: "Concat" bottom: "data" bottom: "up1" bottom: "up2" bottom: "up3" bottom: "up6" '
    'top: "cat" }\n' + layer_text("Interp", "interp_param { zoom_factor: 8 }", "cat", "score"))


def test_a_shufflenet_like_net_validates_and_inspects(tmp_path, fork_proto, capsys):
    from caffeconf.cli import main

    net = tmp_path / "net.prototxt"
    net.write_text(SHUFFLENET_LIKE)
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 0
    capsys.readouterr()
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:9]}
    assert rows["pool1"][1] == "1x24x8x8"  # 16x16 floored (ceil: 9x9)
    assert rows["dw"][1:4] == ["1x12x8x8", "120", "6,912"]  # 12 kernels of 3x3 and a bias each
    assert rows["dw2"][1:4] == ["1x12x8x8", "120", "6,912"]


def test_a_pspnet_like_net_validates_and_inspects(tmp_path, fork_proto, capsys):
    from caffeconf.cli import main

    net = tmp_path / "net.prototxt"
    net.write_text(PSPNET_LIKE)
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 0
    capsys.readouterr()
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    out = capsys.readouterr().out
    assert "?" not in out.split("memory estimate")[0]
    assert [line.split()[2] for line in out.splitlines() if line.startswith(("up", "cat", "score"))] == [
        "1x2x12x12"] * 4 + ["1x16x12x12", "1x16x89x89"]


def test_validate_locates_what_the_fork_refuses_in_every_layer(tmp_path, fork_proto, capsys):
    from caffeconf.cli import main

    net = tmp_path / "net.prototxt"
    lines = PSPNET_LIKE.splitlines()
    lines[5] = lines[5].replace("height: 12 width: 12", "height: 12")  # up1
    lines[11] = lines[11].replace("height: 12 width: 12", "zoom_factor: 2 pad_beg: 1")  # up3
    net.write_text("\n".join(lines) + "\n")
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert errors == [
        f"{net}:6:1: error: layer 'up1' (Interp): interp_param needs zoom_factor, shrink_factor, or height and width",
        f"{net}:12:1: error: layer 'up3' (Interp): interp_param.pad_beg and pad_end must be 0 or negative "
        "(the fork only crops), got 1 and 0",
    ]


def test_validate_locates_a_depthwise_convolution_without_stride(tmp_path, fork_proto, capsys):
    from caffeconf.cli import main

    net = tmp_path / "net.prototxt"
    net.write_text(SHUFFLENET_LIKE.replace("stride: 1 pad: 1 }", "pad: 1 }"))
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert errors == [f"{net}:8:1: error: layer 'dw' (ConvolutionDepthwise): ConvolutionDepthwise has no default "
                      "for convolution_param.stride: write stride (or stride_h and stride_w)"]


def test_net_level_inputs_stay_in_a_dialect_from_before_the_input_layer(tmp_path, capsys):
    """PSPNet's caffe.proto has no input_param: its Caffe keeps `input:` as it is, and so does the upgrade."""
    from caffeconf.caffe import dialect
    from caffeconf.cli import main

    proto = tmp_path / "old" / "caffe.proto"
    proto.parent.mkdir()
    proto.write_text(dialect.BVLC_PROTO.read_text().replace("  optional InputParameter input_param = 143;\n", ""))
    net = tmp_path / "net.prototxt"
    net.write_text('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n' +
                   layer_text("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", "data", "conv"))
    assert main(["validate", "--proto", str(proto), str(net)]) == 0
    assert main(["inspect", "--proto", str(proto), str(net)]) == 0
    assert "conv   Convolution  1x4x6x6" in capsys.readouterr().out
