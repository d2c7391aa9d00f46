"""`--set NAME=VALUE`: a config's parameters and solver fields from the command line, checked like
the file's own values and located at the flag."""

from __future__ import annotations

import pytest

from caffeconf.cli import main
from caffeconf.compile.load import LoadOptions
from caffeconf.compile.settings import parse_settings
from caffeconf.errors import CaffeconfError, render_text
from caffeconf.compile.solver import read_solver_file

CONFIG = """caffeconf: 1
name: tiny
params:
  width: {type: int, default: 8, min: 1}
  kernel: {type: "list[int]", default: [3, 3]}
  engine: {type: enum, values: [CAFFE, CUDNN], default: CAFFE}
layers:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 3, 8, 8]}}}
  - name: conv
    type: Convolution
    bottom: data
    top: conv
    convolution_param: {num_output: "${width}", kernel_h: "${kernel[0]}", kernel_w: "${kernel[1]}", engine: "${engine}"}
solver:
  base_lr: 0.01
  max_iter: 10
  lr_policy: fixed
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    return path


def compiled(capsys, *argv) -> str:
    assert main(["compile", *map(str, argv)]) == 0
    return capsys.readouterr().out


def errors(capsys, *argv) -> str:
    assert main([*map(str, argv)]) == 1
    return capsys.readouterr().err


def test_set_equals_editing_the_defaults(config, capsys, tmp_path):
    edited = tmp_path / "edited.yaml"
    edited.write_text(CONFIG.replace("default: 8", "default: 5").replace("[3, 3]", "[1, 7]")
                      .replace("default: CAFFE", "default: CUDNN"))
    given = compiled(capsys, config, "--set", "width=5", "--set", "kernel=[1, 7]", "--set", "engine=CUDNN")
    assert given == compiled(capsys, edited)
    assert given != compiled(capsys, config)


def test_later_flag_for_a_name_wins(config, capsys):
    assert compiled(capsys, config, "--set", "width=2", "--set", "width=5") == \
        compiled(capsys, config, "--set", "width=5")


def test_value_of_the_wrong_type_is_located_at_its_flag_and_reported_once(config, capsys):
    text = errors(capsys, "validate", config, "--set", "kernel=[1, 7]", "--set", "width=wide")
    assert text == (
        "--set:2:7: error: parameter 'width' of the document: expects int, got string 'wide'\n"
        "    width=wide\n"
        "          ^~~~\n"
        f"{config}:4:3: note: 'width' declared here as int\n")


def test_range_and_list_items_are_checked_as_the_file_s_own(config, capsys):
    assert errors(capsys, "compile", config, "--set", "width=0").startswith(
        "--set:1:7: error: parameter 'width' of the document: must be >= 1, got 0\n")
    assert errors(capsys, "compile", config, "--set", "kernel=[3, x]").startswith(
        "--set:1:12: error: parameter 'kernel' of the document: item 1: expects int, got string 'x'\n")
    assert errors(capsys, "compile", config, "--set", "engine=CUDA").startswith(
        "--set:1:8: error: parameter 'engine' of the document: expects one of CAFFE, CUDNN, got string 'CUDA'")


def test_unknown_parameter_gets_did_you_mean_and_no_follow_on_errors(config, capsys):
    assert errors(capsys, "inspect", config, "--set", "widht=3") == (
        "--set:1:1: error: the document has no parameter 'widht'\n"
        "    widht=3\n"
        "    ^~~~~\n"
        "  hint: did you mean 'width'?\n")


def test_solver_fields_are_checked_against_solver_parameter(config, capsys):
    assert errors(capsys, "validate", config, "--set", "solver.base_lr=fast") == (
        "--set:1:16: error: solver.base_lr expects a number (float), got string 'fast'\n"
        "    solver.base_lr=fast\n"
        "                   ^~~~\n")
    assert errors(capsys, "validate", config, "--set", "solver.max_itr=3").startswith(
        "--set:1:1: error: unknown field 'max_itr' in solver (SolverParameter has no such field)\n")


@pytest.mark.parametrize("flag, message", [
    ("=3", "--set:1:1: error: bad --set '=3': expected NAME=VALUE, NAME a parameter of the config or solver.FIELD"),
    ("width", "--set:1:1: error: bad --set 'width': expected NAME=VALUE, NAME a parameter of the config or "
              "solver.FIELD"),
    ("solver.=1", "--set:1:1: error: bad --set 'solver.=1': expected NAME=VALUE, NAME a parameter of the config "
                  "or solver.FIELD"),
    ("width= ", "--set:1:7: error: --set width= needs a value (null to leave it unset)"),
])
def test_malformed_flags(config, capsys, flag, message):
    assert errors(capsys, "compile", config, "--set", flag).splitlines()[0] == message


def test_parameters_of_a_prototxt_are_refused(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }\n')
    assert errors(capsys, "inspect", net, "--set", "width=3").splitlines()[0] == \
        f"--set:1:1: error: --set width: {net} is not a config (only a config has parameters)"


def test_diff_applies_the_settings_to_each_config(config, capsys, tmp_path):
    edited = tmp_path / "edited.yaml"
    edited.write_text(CONFIG.replace("default: 8", "default: 5"))
    assert main(["diff", str(config), str(edited)]) == 1
    assert main(["diff", str(config), str(edited), "--set", "width=5"]) == 0
    capsys.readouterr()


def test_solver_fields_override_a_config_s_section_and_a_solver_file(config, tmp_path):
    how = LoadOptions(settings=parse_settings(["solver.max_iter=3", "solver.lr_policy=step", "solver.stepsize=2"]))
    solver = read_solver_file(str(config), how)
    assert (solver.max_iter, solver.lr_policy, solver.stepsize, solver.base_lr) == (3, "step", 2, pytest.approx(0.01))
    prototxt = tmp_path / "solver.prototxt"
    prototxt.write_text('net: "tiny.yaml"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 100\ntest_iter: 1\ntest_iter: 2\n')
    how = LoadOptions(settings=parse_settings(["solver.max_iter=7", "solver.test_iter=[5]"]))
    solver = read_solver_file(str(prototxt), how)
    assert (solver.max_iter, list(solver.test_iter), solver.base_lr) == (7, [5], pytest.approx(0.1))
    with pytest.raises(CaffeconfError) as error:
        read_solver_file(str(prototxt), LoadOptions(settings=parse_settings(["solver.max_iter=many"])))
    assert render_text(error.value.diagnostics).startswith(
        "--set:1:17: error: solver.max_iter expects an integer (int32), got string 'many'")


def test_train_uses_the_settings(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(
        "caffeconf: 1\nparams:\n  width: {type: int, default: 8}\nlayers:\n"
        "  - {name: data, type: DummyData, top: [data, label], dummy_data_param: {shape: [{dim: [2, 3]}, {dim: [2]}],"
        " data_filler: [{type: gaussian}, {type: constant}]}}\n"
        "  - {name: ip, type: InnerProduct, bottom: data, top: ip, inner_product_param: {num_output: '${width}',"
        " weight_filler: {type: xavier}}}\n"
        "  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}\n"
        "solver: {base_lr: 0.01, lr_policy: fixed, max_iter: 10, snapshot_prefix: long}\n")
    assert main(["train", "tiny.yaml", "-q", "--set", "width=3", "--set", "solver.max_iter=2",
                 "--set", "solver.snapshot_prefix=short"]) == 0
    from caffeconf.caffe.weights import read_caffemodel

    weights = read_caffemodel("short_iter_2.caffemodel")
    assert weights["ip"][0].shape == (3, 3)
    assert not (tmp_path / "long_iter_10.caffemodel").exists()
    capsys.readouterr()
