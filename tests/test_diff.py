"""Semantic diff: defaults, renames, rewiring, field paths, exit codes, real nets."""

from __future__ import annotations

import json
import re

import pytest

from caffeconf.cli import main
from caffeconf.caffe.facts import shortest_float32
from caffeconf.inspect.diff import diff_nets
from caffeconf.ir import Layer, Net

from conftest import ROOT, require_models


def conv(name, bottom, top, **param):
    return Layer(name, "Convolution", (bottom,), (top,), {"convolution_param": param})


def describe(a, b):
    return [d.describe() for d in diff_nets(Net("n", tuple(a)), Net("n", tuple(b)))]


def test_defaults_and_float32_precision_are_equal():
    a = [conv("c", "x", "c", num_output=3, kernel_size=[3], bias_term=True, stride=[]),
         Layer("s", "Power", ("c",), ("c",), {"power_param": {"scale": 0.1}})]
    b = [conv("c", "x", "c", num_output=3, kernel_size=[3]),
         Layer("s", "Power", ("c",), ("c",), {"power_param": {"scale": 0.10000000149011612}})]
    assert describe(a, b) == []


def test_presence_of_an_include_phase_matters():
    a = [Layer("d", "Data", (), ("d",), {"include": [{"phase": "TRAIN"}]})]
    b = [Layer("d", "Data", (), ("d",), {"include": [{}]})]
    assert describe(a, b) == ['changed: layer d: include[0].phase: "TRAIN" -> (absent)']


def test_changed_fields_with_paths():
    a = [conv("c", "x", "c", num_output=3, kernel_size=[3], weight_filler={"type": "xavier"})]
    b = [conv("c", "x", "c", num_output=4, kernel_size=[5], weight_filler={"type": "gaussian", "std": 0.5})]
    assert describe(a, b) == [
        "changed: layer c: convolution_param.num_output: 3 -> 4",
        "changed: layer c: convolution_param.kernel_size[0]: 3 -> 5",
        'changed: layer c: convolution_param.weight_filler.type: "xavier" -> "gaussian"',
        "changed: layer c: convolution_param.weight_filler.std: (absent) -> 0.5",
    ]


def test_renamed_layer_and_blob_do_not_rewire_readers():
    a = [conv("c1", "x", "c1", num_output=3, kernel_size=[1]), Layer("r", "ReLU", ("c1",), ("c1",))]
    b = [conv("conv_1", "x", "conv_1", num_output=3, kernel_size=[1]),
         Layer("r", "ReLU", ("conv_1",), ("conv_1",))]
    assert describe(a, b) == ["renamed: blob c1 -> conv_1", "renamed: layer c1 -> conv_1"]


def test_rewired_added_removed():
    a = [conv("c1", "x", "c1", num_output=3, kernel_size=[1]), conv("c2", "x", "c2", num_output=3, kernel_size=[1]),
         Layer("drop", "Dropout", ("c2",), ("c2",))]
    b = [conv("c1", "x", "c1", num_output=3, kernel_size=[1]), conv("c2", "c1", "c2", num_output=3, kernel_size=[1]),
         Layer("bn", "BatchNorm", ("c2",), ("c2",))]
    assert describe(a, b) == [
        'rewired: layer c2: bottom: ["x"] -> ["c1"]',
        "removed: layer drop (Dropout)",
        "added: layer bn (BatchNorm)",
    ]


def test_layers_sharing_a_name_pair_in_order():
    a = [Layer("d", "Data", (), ("d",), {"include": [{"phase": "TRAIN"}]}),
         Layer("d", "Data", (), ("d",), {"include": [{"phase": "TEST"}]})]
    b = [a[0], Layer("d", "Data", (), ("d",), {"include": [{"phase": "TEST"}], "data_param": {"batch_size": 5}})]
    assert describe(a, b) == ["changed: layer d#2: data_param: (absent) -> {\"batch_size\": 5}"]


def test_float32_shortest_form():
    assert [shortest_float32(v) for v in (0.1, 0.10000000149011612, 1e-4, 0.0039215684)] == \
        [0.1, 0.1, 1e-4, 0.0039215684]


# ---------------------------------------------------------------- the command

PROTOTXT = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
"""

YAML = """caffeconf: 1
name: tiny
layers:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 2, 5, 5]}}}
  - {name: conv, type: Convolution, convolution_param: {num_output: 4, kernel_size: 3, stride: 1}}
  - {name: relu, type: ReLU, in_place: true}
"""


def test_command_equal_and_different(tmp_path, capsys):
    (tmp_path / "a.prototxt").write_text(PROTOTXT)
    (tmp_path / "b.yaml").write_text(YAML)
    (tmp_path / "c.prototxt").write_text(PROTOTXT.replace("num_output: 4", "num_output: 8"))
    assert main(["diff", str(tmp_path / "a.prototxt"), str(tmp_path / "b.yaml")]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", str(tmp_path / "b.yaml"), str(tmp_path / "c.prototxt")]) == 1
    assert capsys.readouterr().out == "changed: layer conv: convolution_param.num_output: 4 -> 8\n"
    assert main(["diff", "--format", "json", str(tmp_path / "a.prototxt"), str(tmp_path / "c.prototxt")]) == 1
    assert json.loads(capsys.readouterr().out) == {"equal": False, "differences": [
        {"kind": "changed", "layer": "conv", "path": "convolution_param.num_output", "a": 4, "b": 8}]}


def test_bad_input_is_a_located_error(tmp_path, capsys):
    (tmp_path / "a.prototxt").write_text(PROTOTXT)
    (tmp_path / "bad.prototxt").write_text("layer { name: \n")
    assert main(["diff", str(tmp_path / "a.prototxt"), str(tmp_path / "bad.prototxt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"{tmp_path / 'bad.prototxt'}:2:1: error: ")
    assert main(["diff", str(tmp_path / "a.prototxt"), str(tmp_path / "absent.prototxt")]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {tmp_path / 'absent.prototxt'}: ")


SOLVER = 'net: "a.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\n'


def test_two_solvers_compare_as_solvers(tmp_path, capsys):
    (tmp_path / "a.prototxt").write_text(PROTOTXT)
    (tmp_path / "s1.prototxt").write_text(SOLVER)
    (tmp_path / "s2.prototxt").write_text(SOLVER + "momentum: 0\ndelta: 1e-8\n")  # defaults: no difference
    (tmp_path / "s3.prototxt").write_text(SOLVER.replace("max_iter: 10", "max_iter: 12") + 'type: "Adam"\n')
    solvers = [str(tmp_path / name) for name in ("s1.prototxt", "s2.prototxt", "s3.prototxt")]
    assert main(["diff", solvers[0], solvers[1]]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", solvers[0], solvers[2]]) == 1
    assert capsys.readouterr().out == 'changed: solver: max_iter: 10 -> 12\nchanged: solver: type: (absent) -> "Adam"\n'
    assert main(["diff", solvers[0], str(tmp_path / "a.prototxt")]) == 2
    assert capsys.readouterr().err == (f"error: cannot compare a solver with a net ({tmp_path / 'a.prototxt'})\n"
                                       "  hint: give two nets or two solvers\n")


def test_help_states_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    assert "exit status: 0 if the nets are equal, 1 if they differ, 2 if a net cannot be read" in \
        " ".join(capsys.readouterr().out.split())


def write_binary_net(path, *blobs):
    """A one-convolution binary NetParameter whose layer holds `blobs` ((shape, values) pairs)."""
    from caffeconf.caffe import caffe_pb2

    net = caffe_pb2.NetParameter(name="n")
    layer = net.layer.add(name="conv", type="Convolution", bottom=["x"], top=["c"])
    layer.convolution_param.num_output = 2
    for shape, values in blobs:
        blob = layer.blobs.add()
        blob.shape.dim.extend(shape)
        blob.data.extend(values)
    path.write_bytes(net.SerializeToString())
    return str(path)


def test_blobs_compare_by_count_shapes_and_hash(tmp_path, capsys):
    weights = ([2, 1, 2, 2], [0.25] * 8), ([2], [0.5, -1.5])
    a = write_binary_net(tmp_path / "a.caffemodel", *weights)
    same = write_binary_net(tmp_path / "same.caffemodel", *weights)
    bare = write_binary_net(tmp_path / "bare.caffemodel")
    nudged = write_binary_net(tmp_path / "nudged.caffemodel", weights[0], ([2], [0.5, -1.25]))
    assert main(["diff", a, same]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", a, bare]) == 1
    assert capsys.readouterr().out == "changed: layer conv: blobs: 2 blobs (2x1x2x2, 2) -> (absent)\n"
    assert main(["diff", a, nudged]) == 1
    line = capsys.readouterr().out
    assert re.fullmatch(r"changed: layer conv: blobs: 2 blobs \(2x1x2x2, 2\) sha256 (\w{12}) -> "
                        r"2 blobs \(2x1x2x2, 2\) sha256 (\w{12})\n", line)
    assert len(set(re.findall(r"sha256 (\w+)", line))) == 2
    assert main(["diff", "--format", "json", bare, nudged]) == 1
    (change,) = json.loads(capsys.readouterr().out)["differences"]
    assert change["a"] is None and change["b"]["count"] == 2 and change["b"]["shapes"] == [[2, 1, 2, 2], [2]]
    assert re.fullmatch(r"[0-9a-f]{64}", change["b"]["sha256"])


def test_legacy_blob_dimensions_are_four_axes():
    legacy = Layer("c", "Convolution", ("x",), ("c",), {"blobs": [
        {"num": 1, "channels": 1, "height": 2, "width": 3, "data": [0.0] * 6}]})
    shaped = Layer("c", "Convolution", ("x",), ("c",), {"blobs": [{"shape": {"dim": [6]}, "data": [0.0] * 6}]})
    assert describe([legacy], [shaped]) == ["changed: layer c: blobs: 1 blob (1x1x2x3) -> 1 blob (6)"]


@pytest.mark.parametrize("config, prototxt", [
    ("lenet.yaml", "lenet/lenet_train_test.prototxt"),
    ("googlenet.yaml", "bvlc_googlenet/train_val.prototxt"),
    ("caffenet.yaml", "bvlc_reference_caffenet/train_val.prototxt"),
])
def test_configs_equal_the_prototxt_they_replace(config, prototxt, capsys):
    models = require_models()
    if not (ROOT / "configs" / config).exists():
        pytest.skip(f"configs/{config} is not written yet")
    assert main(["diff", str(ROOT / "configs" / config), str(models / prototxt)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("v2, older", [
    ("lenet/lenet_train_test.prototxt", "lenet-v1/lenet_train_test.prototxt"),
    ("bvlc_reference_caffenet/train_val.prototxt", "bvlc_reference_caffenet-v1/train_val.prototxt"),
    ("siamese/mnist_siamese_train_test.prototxt", "siamese-v1/mnist_siamese_train_test.prototxt"),
])
def test_upgraded_nets_equal_their_v2_form(v2, older, capsys):
    models = require_models()
    assert main(["diff", str(models / v2), str(models / older)]) == 0, capsys.readouterr().out


def test_upgraded_v0_deploy_net_names_its_input_layer_input(capsys):
    models = require_models()
    assert main(["diff", str(models / "lenet/lenet.prototxt"), str(models / "lenet-v0/lenet.prototxt")]) == 1
    assert capsys.readouterr().out == "renamed: layer data -> input\n"
