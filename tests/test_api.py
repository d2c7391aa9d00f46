"""The public Python API (`caffeconf`): its doctests run from the repository root, and each
entry point is checked against what the commands do."""

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import caffeconf
import caffeconf.api.net
import caffeconf.api.tools
import caffeconf.netspec
from caffeconf import CaffeconfError, diff, import_net, load, measure, shapes, validate
from caffeconf.caffe import caffe_pb2
from conftest import MODELS

ROOT = Path(__file__).resolve().parent.parent
# The doctests use the public names as `from caffeconf import *` gives them.
PUBLIC = {name: getattr(caffeconf, name) for name in caffeconf.__all__ if name not in ("Model", "train")}


@pytest.mark.parametrize("module", [caffeconf, caffeconf.api.net, caffeconf.api.tools, caffeconf.netspec],
                         ids=lambda m: m.__name__)
def test_api_doctests(module, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs=PUBLIC)
    assert result.attempted >= 3 and result.failed == 0


def test_model_doctests(monkeypatch):
    pytest.importorskip("torch")
    import numpy as np

    import caffeconf.api.model
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(caffeconf.api.model, optionflags=doctest.ELLIPSIS, extraglobs={**PUBLIC, "np": np})
    assert result.attempted >= 3 and result.failed == 0


def test_importing_caffeconf_and_loading_a_net_never_imports_torch():
    code = ("import sys, caffeconf; net = caffeconf.load('configs/googlenet.yaml'); caffeconf.measure(net, batch=1); "
            "caffeconf.validate(net); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout == "False\n", done.stderr


REFERENCE = MODELS / "bvlc_googlenet/train_val.prototxt"


def test_googlenet_config_equals_reference_prototxt():
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} absent")
    config = load(ROOT / "configs/googlenet.yaml")
    assert diff(config, REFERENCE) == []
    assert diff(config, ROOT / "configs/lenet.yaml") != []


def test_to_prototxt_is_what_compile_writes(tmp_path):
    from caffeconf.cli import main
    out = tmp_path / "cli.prototxt"
    assert main(["compile", str(ROOT / "configs/googlenet.yaml"), "--stage", "deploy", "-o", str(out)]) == 0
    net = load(ROOT / "configs/googlenet.yaml", stage="deploy")
    assert net.to_prototxt() == out.read_text()
    net.save(tmp_path / "api.prototxt")
    assert (tmp_path / "api.prototxt").read_text() == out.read_text()
    net.save(tmp_path / "api.pb", binary=True)
    assert load(tmp_path / "api.pb") == net


def test_a_failed_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import os
    target = tmp_path / "net.prototxt"
    target.write_text("old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(CaffeconfError):
        load(ROOT / "configs/lenet.yaml").save(target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["net.prototxt"]


def test_params_override_the_documents_own_and_are_checked_as_they_are():
    net = load(ROOT / "configs/lenet.yaml", params={"train_source": "my_lmdb"})
    assert net.layers[0].fields["data_param"]["source"] == "my_lmdb"
    assert load(ROOT / "configs/lenet.yaml").layers[0].fields["data_param"]["source"] == "examples/mnist/mnist_train_lmdb"
    with pytest.raises(CaffeconfError) as raised:
        load(ROOT / "configs/lenet.yaml", params={"train_sorce": "x", "test_source": 3})  # line of this call
    line = sys._getframe().f_lineno - 1
    found = [(d.span.path, d.span.line, d.message, d.hint) for d in raised.value.diagnostics]
    assert found == [
        (__file__, line, "the document has no parameter 'train_sorce'", "did you mean 'train_source'?"),
        (__file__, line, "parameter 'test_source' of the document: expects string, got int 3", None)]


def test_params_are_values_never_expressions():
    net = load(ROOT / "configs/lenet.yaml", params={"train_source": "${1 + 1}"})
    assert net.layers[0].fields["data_param"]["source"] == "${1 + 1}"


def test_text_and_messages_load_like_files():
    text = (ROOT / "configs/googlenet.yaml").read_text()
    assert load(text) == load(ROOT / "configs/googlenet.yaml")
    prototxt = load(ROOT / "configs/googlenet.yaml").to_prototxt()
    assert load(prototxt) == load(ROOT / "configs/googlenet.yaml")
    with pytest.raises(CaffeconfError) as raised:
        load("caffeconf: 1\nlayers:\n  - {name: data, type: Input, input_param: {shap: {dim: [1]}}}\n")
    assert str(raised.value) == ("<string>.yaml:3:45: error: unknown field 'shap' in input_param "
                                 "(InputParameter has no such field)")


def test_a_netparameter_from_another_caffe_pb2_loads():
    """As pycaffe's NetSpec would give it: the same schema in another protobuf pool and class."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb))
    foreign_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe.NetParameter"))
    ours = load(ROOT / "configs/googlenet.yaml", stage="deploy")
    foreign = foreign_class.FromString(ours.to_proto().SerializeToString())
    assert type(foreign) is not caffe_pb2.NetParameter
    assert load(foreign) == ours and diff(foreign, ours) == []
    assert len(load(ours.to_proto(), phase="TEST").layers) == len(ours.layers)


def test_state_prunes_as_the_commands_do():
    whole = load(ROOT / "configs/lenet.yaml")
    train, test = load(whole, phase="TRAIN"), load(ROOT / "configs/lenet.yaml", phase="TEST")
    assert [layer.name for layer in train.layers if layer.type == "Data"] == ["mnist"]
    assert "accuracy" not in [layer.name for layer in train.layers]
    assert "accuracy" in [layer.name for layer in test.layers]
    assert train.layers[0].fields["data_param"]["source"].endswith("train_lmdb")


def test_validate_returns_what_the_command_reports(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("caffeconf: 1\nlayers:\n  - {name: data, type: Input, input_param: {shape: {dim: [1, 3, 8, 8]}}}\n"
                   "  - {name: fc, type: InnerProduct, inner_product_param: {num_ouput: 4}}\n")
    found = validate(bad)
    assert [(d.span.line, d.message, d.hint) for d in found] == [
        (4, "unknown field 'num_ouput' in inner_product_param (InnerProductParameter has no such field)",
         "did you mean 'num_output'?")]
    assert validate(ROOT / "configs/lenet.yaml") == []


def test_shapes_and_measure_agree_with_inspect(capsys):
    from caffeconf.cli import main
    net = load(ROOT / "configs/googlenet.yaml", stage="deploy")
    assert shapes(net, {"data": [2, 3, 224, 224]}).blob("prob") == (2, 1000)
    cost = measure(net, batch=1)
    assert main(["inspect", str(ROOT / "configs/googlenet.yaml"), "--stage", "deploy", "--batch", "1",
                 "--format", "json"]) == 0
    import json
    document = json.loads(capsys.readouterr().out)
    assert document["totals"]["params"] == cost.params and document["totals"]["macs"] == cost.macs
    with pytest.raises(CaffeconfError):
        shapes(net, {"data": [1, 3, 2, 2]})


def test_import_net_compiles_back_to_the_net(tmp_path):
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} absent")
    text = import_net(REFERENCE)
    assert "modules:" in text and load(text) == load(REFERENCE)
    assert "[modules." in import_net(REFERENCE, toml=True)


def test_model_runs_with_caffes_numerics_and_saves_its_weights(tmp_path):
    pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    from caffeconf import Model
    net = load(ROOT / "tests/cases/qualified_names/expected.prototxt")
    model = Model(net, device="cpu", seed=3)
    image = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ours = model({"data": image})
    assert set(model.blobs) >= {"data", *model.outputs}
    model.save_caffemodel(tmp_path / "w.caffemodel")
    net.save(tmp_path / "net.prototxt")
    again = Model(net, tmp_path / "w.caffemodel", device="cpu", seed=99)({"data": image})
    opencv = cv2.dnn.readNetFromCaffe(str(tmp_path / "net.prototxt"), str(tmp_path / "w.caffemodel"))
    opencv.setInput(image)
    for name, value in ours.items():
        assert np.array_equal(value.detach().numpy(), again[name].detach().numpy())
        np.testing.assert_allclose(opencv.forward(name), value.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_the_python_docs_examples_run(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs/python.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 20 and result.failed == 0


TRAINED = """caffeconf: 1
name: tiny
layers:
  - {name: data, type: DummyData, top: [data, label],
     dummy_data_param: {shape: [{dim: [4, 3]}, {dim: [4]}], data_filler: [{type: gaussian}, {type: constant}]}}
  - {name: ip, type: InnerProduct, bottom: data, inner_product_param: {num_output: 2, weight_filler: {type: xavier}}}
  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label]}
solver:
  base_lr: 0.1
  lr_policy: fixed
  max_iter: 3
  snapshot_prefix: PREFIX
"""


def test_train_trains_a_config_with_its_solver_section_and_the_model_reads_the_snapshot(tmp_path):
    pytest.importorskip("torch")
    from caffeconf import Model, train
    config = tmp_path / "tiny.yaml"
    config.write_text(TRAINED.replace("PREFIX", str(tmp_path / "tiny")))
    assert train(config, quiet=True, device="cpu") == 0
    weights = tmp_path / "tiny_iter_3.caffemodel"
    assert weights.is_file() and (tmp_path / "tiny_iter_3.solverstate").is_file()
    model = Model(config, weights, device="cpu", phase="TRAIN")
    from caffeconf.caffe.weights import read_caffemodel
    import numpy as np
    stored = read_caffemodel(weights)["ip"][0]
    assert np.array_equal(model.blob_arrays()["ip"][0], stored.data.reshape(2, 3))
    assert not np.array_equal(Model(config, device="cpu", phase="TRAIN").blob_arrays()["ip"][0], stored.data.reshape(2, 3))
    with pytest.raises(CaffeconfError):
        train(tmp_path / "missing.yaml")


def test_params_for_a_net_that_is_not_a_config_are_refused():
    with pytest.raises(CaffeconfError) as raised:
        load(ROOT / "tests/cases/qualified_names/expected.prototxt", params={"x": 1})
    (found,) = raised.value.diagnostics
    assert (found.span.path, found.message) == (
        __file__, "`params` gives values for a config's `params:`, and this net is not a config")


def test_train_is_callable_even_after_the_trainers_modules_are_imported():
    import caffeconf.train.lr_policy  # noqa: F401  makes the package the attribute caffeconf.train
    assert callable(caffeconf.train) and caffeconf.train is sys.modules["caffeconf.train"]
    from caffeconf import train
    with pytest.raises(CaffeconfError):
        train(ROOT / "no-such.yaml")
