"""inspect: golden table, JSON and CSV; hand-computed MACs and memory; every shared model and config."""

from __future__ import annotations

import json

import pytest

from caffeconf.cli import main
from caffeconf.ir import Layer, Net
from caffeconf.caffe.facts import LAYER_TYPES
from caffeconf.inspect.measure import MAC_RULES, ZERO_MAC_TYPES, estimate_memory, layer_costs, net_totals
from caffeconf.inspect.shapes import infer_shapes
from conftest import ROOT, model_files

TOWER = "tests/draw/tower.yaml"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def inspect(capsys, *args) -> tuple[int, str]:
    code = main(["inspect", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_golden_table_per_module_use(capsys):
    code, out = inspect(capsys, TOWER, "--depth", "1")
    assert code == 0
    assert out == """\
layer  type     output   params    MACs  activations
-----  -------  -------  ------  ------  -----------
data   Input    1x4x8x8       0       0      1.0 KiB
left   tower    1x4x4x4     148   9,216      2.2 KiB
right  tower    1x4x4x4       0   9,216      2.2 KiB
sum    Eltwise  1x4x4x4       0       0        256 B
-----  -------  -------  ------  ------  -----------
total                       148  18,432      5.8 KiB

memory estimate (fp32; ? where shapes are unknown: give --input):
  weights                592 B
  weight gradients       592 B
  solver history         592 B
  activations          6.8 KiB
  training peak        9.7 KiB
  inference peak       4.4 KiB
"""


def test_json_numbers_are_hand_computed(capsys):
    code, out = inspect(capsys, TOWER, "--format", "json", "--solver", "Adam")
    assert code == 0
    document = json.loads(out)
    conv = document["rows"][1]
    # 4 outputs x 8 x 8 positions x 4 channels x 3 x 3 kernel
    assert conv == {"name": "left/unit/conv", "type": "Convolution", "outputs": [[1, 4, 8, 8]],
                    "params": 4 * 4 * 9 + 4, "macs": 4 * 64 * 4 * 9, "activation_bytes": 1024}
    assert document["rows"][4]["params"] == 0  # shares the left tower's weights
    assert document["memory_bytes"] == {
        "weights": 592, "weight_gradients": 592, "solver_history": 2 * 592,
        # data 1 KiB; per tower conv 1 KiB, relu 1 KiB, pool 256 B + its int64 argmax 512 B; sum 256 B
        "activations": 1024 + 2 * (1024 + 1024 + 256 + 512) + 256,
        # backward of right/relu: forward memory of the layers before it plus three gradients
        "training_peak": 592 * 4 + (6912 - 256 - 768) + (256 + 1024 + 1024),
        # during the right conv: data, the left pool and the conv's output, plus the conv's working
        # memory (its reordered input and weights, shared or not)
        "inference_peak": 592 + (1024 + 256 + 1024) + (1024 + 592),
    }


def test_csv(capsys):
    code, out = inspect(capsys, TOWER, "--format", "csv", "--depth", "2")
    assert code == 0
    assert out.splitlines()[:3] == [
        "name,type,outputs,params,macs,activation_bytes",
        "data,Input,1x4x8x8,0,0,1024",
        "left/left/unit,unit,1x4x8x8,148,9216,2048",
    ]


def test_in_place_and_views_take_no_memory():
    net = Net("t", (
        Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [2, 3]}]}}),
        Layer("relu", "ReLU", ("data",), ("data",)),
        Layer("flat", "Reshape", ("data",), ("flat",), {"reshape_param": {"shape": {"dim": [6]}}}),
        Layer("sig", "Sigmoid", ("flat",), ("sig",)),
    ))
    costs = layer_costs(infer_shapes(net))
    assert [c.activation_bytes for c in costs] == [24, 0, 0, 24]
    memory = estimate_memory(costs)
    assert memory.inference_peak == 48
    # Nothing trainable, and no gradient flows into an input: training holds the forward blobs only.
    assert memory.training_peak == 48


def test_every_caffe_type_has_a_mac_count_but_python_layers():
    assert not ZERO_MAC_TYPES & MAC_RULES.keys()
    ssd = {"Normalize", "Permute", "PriorBox", "DetectionOutput"}
    mobile_and_pspnet = {"ConvolutionDepthwise", "DepthwiseConvolution", "ShuffleChannel", "Interp"}
    segnet_rcnn = {"BN", "Upsample", "DenseImageData", "ROIPooling", "SmoothL1Loss"}
    assert ZERO_MAC_TYPES | MAC_RULES.keys() == LAYER_TYPES - {"Python"} | ssd | mobile_and_pspnet | segnet_rcnn


def test_python_layer_macs_are_unknown_and_element_wise_ones_zero():
    net = Net("t", (
        Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [2, 3]}]}}),
        Layer("relu", "ReLU", ("data",), ("relu",)),
        Layer("py", "Python", ("relu",), ("py",), {"python_param": {"module": "m", "layer": "L"}}),
    ))
    costs = layer_costs(infer_shapes(net))
    assert [c.macs for c in costs] == [0, 0, None]
    assert net_totals(costs)[1] is None


def test_unknown_shapes_show_question_marks(capsys):
    code, out = inspect(capsys, "configs/lenet.yaml", "--phase", "TEST")
    assert code == 0
    assert "100x?x?x?, 100" in out
    assert "  training peak              ?" in out


def test_inputs_and_batch(capsys):
    code, out = inspect(capsys, "configs/lenet.yaml", "--phase", "TRAIN", "--input", "data=1,1,28,28",
                        "--batch", "64", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["totals"]["params"] == 431_080
    assert document["totals"]["macs"] == 64 * (20 * 24 * 24 * 25 + 50 * 8 * 8 * 20 * 25 + 800 * 500 + 500 * 10)


def test_bad_input_spec(capsys):
    code, out = inspect(capsys, TOWER, "--input", "data=1,x")
    assert code == 1
    assert out == "error: bad --input 'data=1,x': expected BLOB=D1,D2,... with non-negative integer dims\n"


def test_shape_error_is_located(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / TOWER).read_text().replace("kernel_size: 3, pad: 1", "kernel_size: 11"))
    code, out = inspect(capsys, bad)
    assert code == 1
    assert out.startswith(f"{bad}:12:9: error: layer 'left/unit/conv' (Convolution): "
                          "kernel extent 11 is larger than the padded input 8\n")
    assert f"{bad}:21:9: note: in module unit, used as left/unit\n" in out
    assert "note: in module tower, used as left\n" in out


@pytest.mark.parametrize("path", [p for p in model_files() if "solver" not in p.name],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_model(capsys, path):
    code, out = inspect(capsys, path, "--phase", "TRAIN", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["rows"]


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config(capsys, config):
    code, out = inspect(capsys, config, "--phase", "TEST", "--depth", "1")
    assert code == 0, out


def test_layers_outside_modules_sharing_a_name_keep_a_row_each_at_any_depth(tmp_path, capsys):
    net = tmp_path / "dup.prototxt"
    net.write_text('name: "dup"\n'
                   'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
                   'layer { name: "act" type: "ReLU" bottom: "data" top: "a" }\n'
                   'layer { name: "act" type: "Sigmoid" bottom: "a" top: "b" }\n')
    assert main(["inspect", str(net), "--depth", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(row["name"], row["type"]) for row in rows] == [("data", "Input"), ("act", "ReLU"), ("act", "Sigmoid")]


FORK_TYPE_NET = ('name: "t"\nlayer { name: "data" type: "Input" top: "data" '
                 'input_param { shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }\n'
                 'layer { name: "f" type: "%s" bottom: "data" top: "y" }\n')


@pytest.mark.parametrize("layer_type", ["BN", "PriorBox", "Normalize", "Permute", "DenseImageData"])
def test_inspect_shows_a_fork_type_under_a_proto_without_its_fields_as_unknown(layer_type, tmp_path, capsys):
    from caffeconf.cli import main
    net = tmp_path / "net.prototxt"
    net.write_text(FORK_TYPE_NET % layer_type)
    assert main(["inspect", str(net), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(row["name"], row["outputs"]) for row in rows] == [("data", [[1, 4, 6, 6]]), ("f", [None])]


def test_run_refuses_a_fork_type_whose_fields_its_proto_lacks_at_the_layer(tmp_path, capsys):
    pytest.importorskip("torch")
    from caffeconf.caffe import dialect
    from caffeconf.cli import main
    other = tmp_path / "other.proto"  # a fork's proto without SegNet's bn_param
    other.write_text(dialect.BVLC_PROTO.read_text() + "\n// another fork\n")
    net = tmp_path / "net.prototxt"
    net.write_text(FORK_TYPE_NET % "BN")
    assert main(["run", "--proto", str(other), str(net), "--random-weights"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:3:1: error: layer 'f' (BN): {other} has no `bn_param`, which this layer type reads")
