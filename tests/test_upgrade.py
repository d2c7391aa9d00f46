"""V0/V1 → V2 net upgrade and solver upgrade, against Caffe's upgrade_proto.cpp: each legacy
file in ../shared/models upgrades to the V2 file of the same model (every real upstream
difference between the two commits named below), the upgraded nets load in OpenCV's Caffe
importer, and `caffeconf upgrade` works end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import pytest

from caffeconf.caffe import prototxt, serde, upgrade
from caffeconf.cli import main
from caffeconf.errors import CaffeconfError
from caffeconf.caffe import caffe_pb2
from caffeconf.compile.rules import filter_net
from conftest import model_files, require_models

# ---------------------------------------------------------------------------
# Legacy files vs the V2 file of the same model (BVLC commits 2e33058 / 11a4c16 vs 9b89154)


def _upgraded(relative: str) -> caffe_pb2.NetParameter:
    path = require_models() / relative
    return upgrade.upgrade_net(prototxt.read_net(path), str(path))


def test_lenet_deploy_v0_and_v1_upgrade_to_v2():
    expected = _upgraded("lenet/lenet.prototxt")
    # Upstream difference: the V2 file writes its Input layer by hand and names it "data";
    # Caffe's upgrade always names the layer it makes from net-level inputs "input".
    expected.layer[0].name = "input"
    assert _upgraded("lenet-v0/lenet.prototxt") == expected
    assert _upgraded("lenet-v1/lenet.prototxt") == expected


def test_lenet_v0_train_upgrades_to_the_train_phase_of_v2():
    v2_train = filter_net(serde.net_from_proto(_upgraded("lenet/lenet_train_test.prototxt")),
                          phase="TRAIN")
    data = v2_train.layers[0].fields["data_param"]
    # Upstream differences: the V0 example read a LevelDB (the default backend) under another
    # path; V2 reads LMDB. V0's loss layer had no top (Caffe named it); V2 names it "loss".
    data.update(source="mnist-train-leveldb")
    del data["backend"]
    loss = v2_train.layers[-1]
    layers = (*v2_train.layers[:-1], dataclasses.replace(loss, tops=()))
    expected = serde.net_to_proto(dataclasses.replace(v2_train, layers=layers))
    assert _upgraded("lenet-v0/lenet_train.prototxt") == expected


def test_lenet_v1_train_test_upgrades_to_v2():
    assert _upgraded("lenet-v1/lenet_train_test.prototxt") == _upgraded(
        "lenet/lenet_train_test.prototxt")


def test_caffenet_v1_upgrades_to_v2():
    assert _upgraded("bvlc_reference_caffenet-v1/train_val.prototxt") == _upgraded(
        "bvlc_reference_caffenet/train_val.prototxt")


def test_googlenet_v1_upgrades_to_v2():
    old = _upgraded("bvlc_googlenet-v1/train_val.prototxt")
    # Upstream differences: (1) V1 gave its xavier weight fillers a `std`, which the xavier
    # filler ignores; V2 dropped them. (2) V1 named the second auxiliary loss's top
    # "loss2/loss1" (a copy-paste slip); V2 renamed it "loss2/loss2".
    for layer in old.layer:
        for param in (layer.convolution_param, layer.inner_product_param):
            if param.weight_filler.type == "xavier":
                param.weight_filler.ClearField("std")
    loss2 = next(layer for layer in old.layer if layer.name == "loss2/loss")
    assert list(loss2.top) == ["loss2/loss1"]
    loss2.top[0] = "loss2/loss2"
    assert old == _upgraded("bvlc_googlenet/train_val.prototxt")


def test_siamese_v1_upgrades_to_v2():
    upgraded = _upgraded("siamese-v1/mnist_siamese_train_test.prototxt")
    assert upgraded == _upgraded("siamese/mnist_siamese_train_test.prototxt")
    # V1 `param: "conv1_w"` and `blobs_lr` became ParamSpecs; data_param.scale moved.
    conv1 = next(layer for layer in upgraded.layer if layer.name == "conv1")
    assert [(p.name, p.lr_mult) for p in conv1.param] == [("conv1_w", 1), ("conv1_b", 2)]
    assert upgraded.layer[0].transform_param.scale == pytest.approx(0.00390625)
    assert not upgraded.layer[0].data_param.HasField("scale")


@pytest.mark.parametrize("path", [p for p in model_files() if "solver" not in p.name],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_upgrade_is_idempotent(path):
    once = upgrade.upgrade_net(prototxt.read_net(path))
    assert upgrade.net_version(once) == "V2"
    twice, report = upgrade.upgrade_net_with_report(once)
    assert twice == once and report.steps == []


def test_net_version():
    v0 = prototxt.parse_net_text('layers { layer { name: "a" type: "relu" } }', "v0.prototxt")
    v1 = prototxt.parse_net_text('layers { name: "a" type: RELU }', "v1.prototxt")
    v2 = prototxt.parse_net_text('layer { name: "a" type: "ReLU" }', "v2.prototxt")
    assert [upgrade.net_version(n) for n in (v0, v1, v2)] == ["V0", "V1", "V2"]


# ---------------------------------------------------------------------------
# The steps, one by one


def _upgrade_text(text: str) -> tuple[str, upgrade.UpgradeReport]:
    net, report = upgrade.upgrade_net_with_report(prototxt.parse_net_text(text, "t.prototxt"))
    return prototxt.net_to_text(net), report


def test_v0_padding_layer_folds_into_its_consumer():
    text, report = _upgrade_text(
        'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
        'layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }\n'
        'layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2\n'
        '  biasterm: false blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }\n'
        '  bottom: "pad1" top: "conv1" }\n'
        'layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 pad: 1 }\n'
        '  bottom: "conv1" top: "pool1" }\n')
    assert report.steps == ["V0 → V1 (1 padding layers folded)", "V1 → V2 (2 layers)",
                            "net-level input → Input layer"]
    assert text == (
        'layer {\n  name: "input"\n  type: "Input"\n  top: "data"\n  input_param {\n'
        '    shape {\n      dim: 1\n      dim: 3\n      dim: 8\n      dim: 8\n    }\n  }\n}\n'
        'layer {\n  name: "conv1"\n  type: "Convolution"\n  bottom: "data"\n  top: "conv1"\n'
        '  param {\n    lr_mult: 1\n    decay_mult: 1\n  }\n'
        '  param {\n    lr_mult: 2\n    decay_mult: 0\n  }\n'
        '  convolution_param {\n    num_output: 4\n    bias_term: false\n    pad: 2\n'
        '    kernel_size: 3\n    stride: 2\n  }\n}\n'
        'layer {\n  name: "pool1"\n  type: "Pooling"\n  bottom: "conv1"\n  top: "pool1"\n'
        '  pooling_param {\n    pool: AVE\n    kernel_size: 2\n    pad: 1\n  }\n}\n')


def test_v0_data_layer_fields_move_to_their_params():
    text, _ = _upgrade_text(
        'layers { layer { name: "d" type: "data" source: "db" batchsize: 32 scale: 0.5\n'
        '  meanfile: "m.binaryproto" cropsize: 227 mirror: true rand_skip: 7 }\n'
        '  top: "data" top: "label" }\n')
    assert text == (
        'layer {\n  name: "d"\n  type: "Data"\n  top: "data"\n  top: "label"\n'
        '  transform_param {\n    scale: 0.5\n    mirror: true\n    crop_size: 227\n'
        '    mean_file: "m.binaryproto"\n  }\n'
        '  data_param {\n    source: "db"\n    batch_size: 32\n    rand_skip: 7\n  }\n}\n')


def test_v0_field_foreign_to_its_type_is_dropped_with_a_warning():
    text, report = _upgrade_text(
        'input: "x"\nlayers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" }\n')
    assert text == 'layer {\n  name: "r"\n  type: "ReLU"\n  bottom: "x"\n  top: "x"\n}\n'
    assert [w.message for w in report.warnings] == [
        "V0 field 'num_output' does not apply to layer 'r' of type 'relu'; Caffe drops it"]



def test_validate_reports_what_the_upgrade_drops_with_its_place(tmp_path, capsys):
    net = tmp_path / "v0.prototxt"
    net.write_text('name: "v0"\ninput: "x"\ninput_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n'
                   'layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" }\n')
    assert main(["validate", str(net)]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:4:1: warning: V0 field 'num_output' does not apply to layer 'r' of type 'relu'; Caffe drops it")

def test_v0_reading_an_unknown_blob_is_an_error():
    net = prototxt.parse_net_text(
        'layers { layer { name: "r" type: "relu" } bottom: "nowhere" top: "x" }', "t.prototxt")
    with pytest.raises(CaffeconfError, match="reads blob 'nowhere', which no earlier layer"):
        upgrade.upgrade_net(net)


def test_v1_param_specs_share_modes_and_rules():
    text, _ = _upgrade_text(
        'layers { name: "ip" type: INNER_PRODUCT bottom: "x" top: "y"\n'
        '  param: "w" param: "b" blob_share_mode: PERMISSIVE blobs_lr: 1 blobs_lr: 2\n'
        '  weight_decay: 1 include { phase: TEST } loss_weight: 0.5\n'
        '  inner_product_param { num_output: 2 } }\n')
    assert text == (
        'layer {\n  name: "ip"\n  type: "InnerProduct"\n  bottom: "x"\n  top: "y"\n'
        '  loss_weight: 0.5\n'
        '  param {\n    name: "w"\n    share_mode: PERMISSIVE\n    lr_mult: 1\n'
        '    decay_mult: 1\n  }\n'
        '  param {\n    name: "b"\n    lr_mult: 2\n  }\n'
        '  include {\n    phase: TEST\n  }\n'
        '  inner_product_param {\n    num_output: 2\n  }\n}\n')


def test_v1_data_transformation_fields_move_to_transform_param():
    text, report = _upgrade_text(
        'layers { name: "d" type: IMAGE_DATA top: "data" top: "label"\n'
        '  image_data_param { source: "list.txt" mean_file: "m" crop_size: 10 mirror: true } }\n')
    assert report.steps[0] == "data transformation fields → transform_param"
    assert text == (
        'layer {\n  name: "d"\n  type: "ImageData"\n  top: "data"\n  top: "label"\n'
        '  transform_param {\n    mirror: true\n    crop_size: 10\n    mean_file: "m"\n  }\n'
        '  image_data_param {\n    source: "list.txt"\n  }\n}\n')


def test_input_shape_becomes_an_input_layer_in_front():
    text, _ = _upgrade_text(
        'input: "a" input_shape { dim: 1 dim: 2 } input: "b" input_shape { dim: 3 }\n'
        'layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }\n')
    assert text.startswith(
        'layer {\n  name: "input"\n  type: "Input"\n  top: "a"\n  top: "b"\n  input_param {\n'
        '    shape {\n      dim: 1\n      dim: 2\n    }\n    shape {\n      dim: 3\n    }\n'
        '  }\n}\nlayer {\n  name: "c"\n')


def test_inputs_without_shapes_are_dropped():
    text, report = _upgrade_text('input: "data"\nlayer { name: "r" type: "ReLU" }\n')
    assert text == 'layer {\n  name: "r"\n  type: "ReLU"\n}\n'
    assert report.steps == ["shapeless inputs dropped"]


def test_batch_norm_with_three_param_specs_is_frozen():
    text, _ = _upgrade_text(
        'layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 }\n'
        '  param { lr_mult: 1 name: "keep" } }\n'
        'layer { name: "bn2" type: "BatchNorm" param { lr_mult: 1 } }\n')
    net = prototxt.parse_net_text(text, "out.prototxt")
    assert [(p.name, p.lr_mult, p.decay_mult) for p in net.layer[0].param] == [
        ("", 0, 0), ("", 0, 0), ("keep", 0, 0)]
    assert net.layer[1].param[0].lr_mult == 1 and not net.layer[1].param[0].HasField("decay_mult")


def test_every_legacy_field_has_a_rule():
    v1_fields = set(caffe_pb2.V1LayerParameter.DESCRIPTOR.fields_by_name)
    copied = v1_fields - set(upgrade.V1_CONVERTED_FIELDS)
    assert all(name.endswith("_param") for name in copied)
    assert copied <= set(caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name)
    v0_fields = set(caffe_pb2.V0LayerParameter.DESCRIPTOR.fields_by_name)
    assert v0_fields == (set(upgrade.V0_FIELD_MOVES) | set(upgrade.V0_COPIED_FIELDS)
                         | set(upgrade.V0_DROPPED_FIELDS))
    assert set(upgrade.V1_LAYER_TYPES) == set(caffe_pb2.V1LayerParameter.LayerType.keys())
    assert set(upgrade.V0_LAYER_TYPES.values()) <= set(upgrade.V1_LAYER_TYPES)
    assert set(upgrade.SOLVER_TYPES) == set(caffe_pb2.SolverParameter.SolverType.keys())


# ---------------------------------------------------------------------------
# Solvers


def test_solver_type_enum_becomes_type_string():
    solver = caffe_pb2.SolverParameter(base_lr=0.1, solver_type=caffe_pb2.SolverParameter.NESTEROV)
    upgraded, report = upgrade.upgrade_solver_with_report(solver)
    assert upgraded.type == "Nesterov" and not upgraded.HasField("solver_type")
    assert report.steps == ['solver_type NESTEROV → type "Nesterov"']


def test_solver_inline_nets_are_upgraded():
    solver = prototxt.parse_text(
        'net_param { name: "n" layers { name: "r" type: RELU } }\n'
        'test_net_param { layers { name: "t" type: TANH } }\n', "s.prototxt",
        caffe_pb2.SolverParameter())
    upgraded, report = upgrade.upgrade_solver_with_report(solver)
    assert upgraded.net_param.layer[0].type == "ReLU" and not upgraded.net_param.layers
    assert upgraded.test_net_param[0].layer[0].type == "TanH"
    assert report.steps == ["net_param: V1 → V2 (1 layers)", "test_net_param[0]: V1 → V2 (1 layers)"]


# ---------------------------------------------------------------------------
# OpenCV accepts what we write


def _loads_in_opencv(path: Path) -> int:
    return len(cv2.dnn.readNetFromCaffe(str(path)).getLayerNames())


@pytest.mark.parametrize("path", [p for p in model_files() if "deploy" in p.name
                                  or p.name in ("lenet.prototxt", "mnist_siamese.prototxt",
                                                "cifar10_quick.prototxt")],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_v2_deploy_nets_load_in_opencv(path):
    assert _loads_in_opencv(path) > 0


@pytest.mark.parametrize("path", [p for p in model_files() if "solver" not in p.name],
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_upgraded_output_loads_in_opencv(path, tmp_path, capsys):
    out = tmp_path / "upgraded.prototxt"
    assert main(["upgrade", str(path), "-o", str(out)]) == 0
    net = serde.net_from_proto(prototxt.read_net(out))
    if any("include" in layer.fields for layer in net.layers):
        # OpenCV builds one net, not Caffe's per-phase nets: give it the TRAIN phase.
        out = tmp_path / "train.prototxt"
        prototxt.write_net(serde.net_to_proto(filter_net(net, phase="TRAIN")), out)
    assert _loads_in_opencv(out) > 0


# ---------------------------------------------------------------------------
# caffeconf upgrade


def test_cli_upgrades_a_v1_net_to_a_file(tmp_path, capsys):
    source = require_models() / "lenet-v1" / "lenet.prototxt"
    out = tmp_path / "lenet.prototxt"
    assert main(["upgrade", str(source), "-o", str(out)]) == 0
    assert prototxt.read_net(out) == _upgraded("lenet-v1/lenet.prototxt")
    assert out.read_text() == prototxt.net_to_text(_upgraded("lenet-v1/lenet.prototxt"))
    assert capsys.readouterr().err == (
        f"{source}: V1 net: V1 → V2 (8 layers); net-level input → Input layer\n")


def test_cli_writes_stdout_and_binary(tmp_path, capsys):
    source = require_models() / "lenet-v0" / "lenet.prototxt"
    assert main(["upgrade", str(source)]) == 0
    captured = capsys.readouterr()
    assert captured.out == prototxt.net_to_text(_upgraded("lenet-v0/lenet.prototxt"))
    assert captured.err == f"{source}: V0 net: V0 → V1; V1 → V2 (8 layers); net-level input → Input layer\n"
    out = tmp_path / "lenet.caffemodel"
    assert main(["upgrade", str(source), "-o", str(out), "--binary"]) == 0
    assert out.read_bytes() == _upgraded("lenet-v0/lenet.prototxt").SerializeToString()
    assert main(["upgrade", str(source), "--binary"]) == 1
    assert "--binary needs an output file" in capsys.readouterr().err


def test_cli_upgrades_a_solver(tmp_path, capsys):
    source = tmp_path / "solver.prototxt"
    source.write_text('net: "train.prototxt"\nbase_lr: 0.01\nsolver_type: ADAGRAD\n')
    assert main(["upgrade", str(source), "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out == 'base_lr: 0.01\nnet: "train.prototxt"\ntype: "AdaGrad"\n'  # field order
    assert captured.err == f'{source}: solver: solver_type ADAGRAD → type "AdaGrad"\n'


def test_cli_current_net_is_rewritten_and_said_to_be_current(capsys):
    source = require_models() / "lenet" / "lenet.prototxt"
    assert main(["upgrade", str(source)]) == 0
    assert capsys.readouterr().err == f"{source}: V2 net: already in the current format\n"


def test_cli_bad_input_leaves_existing_output_untouched(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.prototxt").write_text('layers { name: "a" type: RELU\n  blobs_lr: x }\n')
    Path("out.prototxt").write_text("precious\n")
    assert main(["upgrade", "bad.prototxt", "-o", "out.prototxt"]) == 1
    assert Path("out.prototxt").read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.prototxt", "out.prototxt"]
    assert capsys.readouterr().err == (
        "bad.prototxt:2:13: error: couldn't parse float: x\n"
        "      blobs_lr: x }\n"
        "                ^\n")


def test_upgrade_with_warnings_writes_the_net_and_exits_1_as_caffe_does(tmp_path, capsys):
    from caffeconf.cli import main

    source, target = tmp_path / "old.prototxt", tmp_path / "new.prototxt"
    source.write_text('input: "x"\nlayers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" }\n')
    assert main(["upgrade", str(source), "-o", str(target)]) == 1
    assert 'type: "ReLU"' in target.read_text()
    assert "Caffe drops it" in capsys.readouterr().err
