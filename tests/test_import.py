"""`caffeconf import`: every shared net round-trips exactly (flat and with --modules); the factored
GoogLeNet, ResNet-50 and SqueezeNet are short and modular; fork files list every unknown name.
Set CAFFECONF_UPDATE_GOLDEN=1 to rewrite the golden import."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from caffeconf.caffe import prototxt, serde, upgrade
from caffeconf.cli import main
from caffeconf.compile.compiler import compile_file
from caffeconf.errors import CaffeconfError, render_text
from caffeconf.importer.names import instance_stem, module_names
from caffeconf.importer.params import Merge, Param
from caffeconf.importer.read import import_config, read_net
from caffeconf.caffe import caffe_pb2

from conftest import FORK_FILES, MODELS, ROOT, model_files, require_models

GOLDEN = ROOT / "tests" / "import"


def _relative(path: Path) -> str:
    return path.relative_to(MODELS).as_posix()


def _is_solver(path: Path) -> bool:
    return isinstance(prototxt.read_net_or_solver(path), caffe_pb2.SolverParameter)


def _nets() -> list:
    cases = []
    for path in model_files():
        name = _relative(path)
        if _is_solver(path):
            continue  # solvers are not nets
        cases.append(pytest.param(path, id=name))
    return cases


def upgraded(path: Path) -> caffe_pb2.NetParameter:
    return upgrade.upgrade_net(prototxt.read_net(path), source=str(path))


def compiled(text: str, tmp_path: Path, suffix: str = ".yaml") -> caffe_pb2.NetParameter:
    out = tmp_path / f"net{suffix}"
    out.write_text(text)
    return serde.net_to_proto(compile_file(out))


@pytest.mark.parametrize("path", _nets())
def test_flat_import_round_trips(path, tmp_path):
    result = import_config(path)
    assert compiled(result.text, tmp_path) == upgraded(path)


@pytest.mark.parametrize("path", _nets())
def test_modules_import_round_trips(path, tmp_path):
    result = import_config(path, modules=True)
    assert compiled(result.text, tmp_path) == upgraded(path)


def test_toml_import_round_trips(tmp_path):
    path = require_models() / "bvlc_googlenet" / "train_val.prototxt"
    for modules in (False, True):
        result = import_config(path, modules=modules, as_toml=True)
        assert compiled(result.text, tmp_path, ".toml") == upgraded(path)


def test_golden_lenet(tmp_path, golden):
    path = require_models() / "lenet" / "lenet_train_test.prototxt"
    text = import_config(path).text
    golden(text, GOLDEN / "lenet_train_test.yaml")


def test_command_writes_atomically_and_reports_lines(tmp_path, capsys):
    path = require_models() / "squeezenet-v1.1" / "deploy.prototxt"
    out = tmp_path / "net.yaml"
    assert main(["import", str(path), "-o", str(out), "--modules"]) == 0
    err = capsys.readouterr().err
    lines = len(out.read_text().splitlines())
    assert f"{lines} config lines for 553 prototxt lines: {553 - lines} saved" in err
    assert [p.name for p in tmp_path.iterdir()] == ["net.yaml"]  # no temp file left behind


def test_command_writes_stdout_and_toml(capsys):
    path = require_models() / "lenet" / "lenet.prototxt"
    assert main(["import", str(path), "-o", "-", "--toml"]) == 0
    assert 'name = "LeNet"' in capsys.readouterr().out


# ---------------------------------------------------------------------------
# Tricky values


TRICKY = r'''
name: "${x} net"
force_backward: true
state { phase: TEST stage: "true" stage: "1e-5" stage: "null" stage: "0x10" stage: "~" stage: "a: b" }
layer { name: "data" type: "Input" top: "data" top: "yes" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "scale: 1" type: "Power" bottom: "data" top: "${p}"
        power_param { power: 0.0001 scale: 1e-5 shift: -0.1 } }
layer { name: "null" type: "ReLU" bottom: "${p}" top: "${p}" relu_param { negative_slope: 0.3 } }
layer { name: "silence" type: "Silence" bottom: "yes" }
layer { name: "1e3" type: "Dropout" bottom: "${p}" top: "x" dropout_param { dropout_ratio: 0.7 } }
layer { name: "py" type: "Python" bottom: "x" top: "y" python_param { param_str: "{'a': \"b\"}\n\t" } }
'''


def test_tricky_strings_and_floats_round_trip(tmp_path):
    source = tmp_path / "tricky.prototxt"
    source.write_text(TRICKY)
    text = import_config(source).text
    assert "power: 0.0001" in text and "scale: 1e-05" in text and "negative_slope: 0.3" in text
    assert '"$${x} net"' in text and '"true"' in text and '"1e-5"' in text and '"~"' in text
    assert compiled(text, tmp_path) == upgraded(source)
    assert compiled(import_config(source, as_toml=True).text, tmp_path, ".toml") == upgraded(source)


def test_v1_blobs_round_trip(tmp_path):
    source = tmp_path / "blobs.prototxt"
    source.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 1 input_dim: 1\n'
                      'layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip"\n'
                      '  blobs { num: 1 channels: 1 height: 1 width: 2 data: 0.1 data: -2.5 }\n'
                      '  inner_product_param { num_output: 1 bias_term: false } }\n')
    text = import_config(source).text
    assert "data: [0.1, -2.5]" in text
    assert compiled(text, tmp_path) == upgraded(source)


def test_v0_padding_layer_is_folded_like_caffe(tmp_path):
    source = tmp_path / "v0.prototxt"
    source.write_text('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
                      'layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }\n'
                      'layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 }\n'
                      '  bottom: "pad1" top: "conv1" }\n')
    text = import_config(source).text
    assert "pad1" not in text and "pad: 2" in text
    assert compiled(text, tmp_path) == upgraded(source)


# ---------------------------------------------------------------------------
# Refusals


FORK = '''name: "ssd-like"
layer { name: "data" type: "AnnotatedData" top: "data"
  transform_param { resize_param { height: 300 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 } }
layer { name: "perm" type: "Permute" bottom: "conv" top: "perm" permute_param { order: 0 } }
layer { name: "pool" type: "Pooling" bottom: "perm" top: "pool" pooling_param { pool: MAX ceil_mode: false } }
layers { name: "up" type: UPSAMPLE bottom: "pool" top: "up" }
'''


@pytest.mark.parametrize("text, headline", [
    ('layer { name: "p" pooling_param pool: MAX } }\n', '1:33: expected "{".'),
    ('layer { name: "c" convolution_param { num_output 3 } }\n', '1:50: expected ":".'),
])
def test_a_missing_brace_or_colon_is_reported_where_it_is_missing_not_as_an_unknown_name(tmp_path, text, headline):
    source = tmp_path / "net.prototxt"
    source.write_text(text)
    with pytest.raises(CaffeconfError) as caught:
        read_net(source)
    assert [f"{d.span.line}:{d.span.col}: {d.message}" for d in caught.value.diagnostics] == [headline]


def test_fork_net_lists_every_unknown_name(tmp_path):
    source = tmp_path / "fork.prototxt"
    source.write_text(FORK)
    with pytest.raises(CaffeconfError) as caught:
        read_net(source)
    headlines = [f"{d.span.line}:{d.span.col}: {d.message}" for d in caught.value.diagnostics]
    assert headlines == [
        "2:28: unknown layer type 'AnnotatedData'",
        "3:21: unknown field 'resize_param' in caffe.TransformationParameter",
        "5:28: unknown layer type 'Permute'",
        "5:65: unknown field 'permute_param' in caffe.LayerParameter",
        "6:91: unknown field 'ceil_mode' in caffe.PoolingParameter",
        "7:27: 'UPSAMPLE' is not a value of caffe.V1LayerParameter.LayerType",
    ]
    assert f"{source}:2:28: error: unknown layer type 'AnnotatedData'" in render_text(caught.value.diagnostics)


@pytest.mark.parametrize("name", sorted(FORK_FILES))
def test_fork_files_list_unknown_names(name):
    path = require_models() / name
    if not path.exists():
        pytest.skip(f"{name} is not in this copy of ../shared/models")
    with pytest.raises(CaffeconfError) as caught:
        read_net(path)
    assert all(d.span.path == str(path) and d.span.line > 0 for d in caught.value.diagnostics)
    assert any(f"'{FORK_FILES[name]}'" in d.message for d in caught.value.diagnostics)


def test_solver_is_refused(capsys):
    path = require_models() / "lenet" / "lenet_solver.prototxt"
    assert main(["import", str(path)]) == 1
    assert "this is a solver (SolverParameter), not a net" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Recovered modules


def _uses(config: dict) -> dict[str, int]:
    """How many times each module is instantiated by the top-level layers (repeats counted)."""
    counts: dict[str, int] = {}
    for entry in config["layers"]:
        if "use" in entry:
            counts[entry["use"]] = counts.get(entry["use"], 0) + entry.get("repeat", 1)
    return counts


def _factored(name: str) -> tuple[dict, int, int]:
    path = require_models() / name
    result = import_config(path, modules=True)
    return yaml.safe_load(result.text), result.config_lines, result.prototxt_lines


@pytest.mark.parametrize("name", ["bvlc_googlenet/deploy.prototxt", "resnet/ResNet-50-deploy.prototxt",
                                  "squeezenet-v1.1/deploy.prototxt", "squeezenet-v1.1/train_val.prototxt"])
def test_factored_configs_are_five_times_shorter(name):
    _, config_lines, prototxt_lines = _factored(name)
    assert config_lines * 5 <= prototxt_lines


def test_googlenet_is_one_inception_module_of_conv_relu_units_used_nine_times():
    config, _, _ = _factored("bvlc_googlenet/deploy.prototxt")
    assert list(config["modules"]) == ["conv_relu", "inception"]
    assert _uses(config) == {"conv_relu": 3, "inception": 9}
    inception = config["modules"]["inception"]
    assert list(inception["params"]) == ["n1x1", "n3x3_reduce", "n3x3", "n5x5_reduce", "n5x5", "pool_proj"]
    assert inception["layers"][0] == {"use": "conv_relu", "name": "1x1", "with": {"channels": "${n1x1}"}}
    assert config["modules"]["conv_relu"]["params"]["std"] == {"type": "float", "default": 0.03}  # 28 of 57 convolutions
    first = next(entry for entry in config["layers"] if entry.get("use") == "inception")
    assert first == {"use": "inception", "name": "inception_3a",
                     "with": {"n1x1": 64, "n3x3_reduce": 96, "n3x3": 128, "n5x5_reduce": 16, "n5x5": 32,
                              "pool_proj": 32}}


def test_resnet_is_bottlenecks_in_repeated_stages():
    config, _, _ = _factored("resnet/ResNet-50-deploy.prototxt")
    # one bottleneck: the first block of each stage projects its shortcut, the others add their input
    assert _uses(config) == {"conv_bn_relu": 1, "bottleneck": 16}
    bottleneck = config["modules"]["bottleneck"]
    assert bottleneck["qualify"] is False and bottleneck["outputs"] == ["res${id}"]
    assert bottleneck["params"] == {"id": {"type": "string"}, "reduce": {"type": "int", "default": 256},
                                    "stride": {"type": "int", "default": 1},
                                    "channels": {"type": "int", "default": 1024},
                                    "projection": {"type": "bool", "default": False}}
    assert bottleneck["layers"][0] == {"use": "conv_bn_relu", "name": "res${id}_branch1", "when": "${projection}",
                                       "with": {"channels": "${channels}", "stride": "${stride}", "relu": False}}
    assert bottleneck["layers"][4]["bottom"] == ["${'res' + id + '_branch1' if projection else 'x'}",
                                                 "res${id}_branch2c"]
    # convolution + BatchNorm + Scale with or without its ReLU: one unit, the ReLU `when: ${relu}`
    assert bottleneck["layers"][3] == {"use": "conv_bn_relu", "name": "res${id}_branch2c",
                                       "with": {"channels": "${channels}", "relu": False}}
    repeats = [entry for entry in config["layers"] if "repeat" in entry]
    assert repeats == [
        {"use": "bottleneck", "name": "res3${letter(i)}", "repeat": 4,
         "with": {"id": "3${letter(i)}", "reduce": 128, "stride": "${2 if i == 0 else 1}", "channels": 512,
                  "projection": "${i == 0}"}},
        {"use": "bottleneck", "name": "res4${letter(i)}", "repeat": 6,
         "with": {"id": "4${letter(i)}", "stride": "${2 if i == 0 else 1}", "projection": "${i == 0}"}}]
    # stages 2 and 5 fit on one line a block, but their repeats would not: 3 lines, not 4 or 5


@pytest.mark.parametrize("name, expected", [("bvlc_googlenet/deploy.prototxt", "googlenet_modules.yaml"),
                                            ("resnet/ResNet-50-deploy.prototxt", "resnet50_modules.yaml")])
def test_golden_factored(name, expected, golden):
    golden(import_config(require_models() / name, modules=True).text, GOLDEN / expected)


# Lines of `import --modules` before nested modules (units, per-index repeats): never more than these.
LINES_BEFORE_UNITS = {
    "bvlc_googlenet/deploy.prototxt": 138, "bvlc_googlenet/train_val.prototxt": 203,
    "bvlc_googlenet-v1/train_val.prototxt": 196, "bvlc_reference_caffenet/deploy.prototxt": 28,
    "bvlc_reference_caffenet/train_val.prototxt": 102, "bvlc_reference_caffenet-v1/train_val.prototxt": 102,
    "cifar10/cifar10_full_sigmoid_train_test_bn.prototxt": 68, "cifar10/cifar10_quick.prototxt": 26,
    "hdf5_classification/nonlinear_train_val.prototxt": 26, "lenet/lenet.prototxt": 35,
    "lenet/lenet_train_test.prototxt": 48, "lenet-v0/lenet.prototxt": 35, "lenet-v0/lenet_test.prototxt": 37,
    "lenet-v0/lenet_train.prototxt": 40, "lenet-v1/lenet.prototxt": 35, "lenet-v1/lenet_train_test.prototxt": 48,
    "mnist_autoencoder/mnist_autoencoder.prototxt": 86, "resnet/ResNet-50-deploy.prototxt": 95,
    "siamese/mnist_siamese.prototxt": 19, "siamese/mnist_siamese_train_test.prototxt": 86,
    "siamese-v1/mnist_siamese_train_test.prototxt": 86, "squeezenet-v1.1/deploy.prototxt": 35,
    "squeezenet-v1.1/train_val.prototxt": 57,
}


@pytest.mark.parametrize("name", sorted(LINES_BEFORE_UNITS))
def test_factored_config_is_not_longer_than_before(name):
    path = require_models() / name
    if not path.exists():
        pytest.skip(f"{name} is not in this copy of ../shared/models")
    assert import_config(path, modules=True).config_lines <= LINES_BEFORE_UNITS[name]


# ---------------------------------------------------------------------------
# Constructed cases, one per rule


def _conv(name: str, bottom: str, channels: int, extra: str = "") -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"\n'
            f'  param {{ lr_mult: 1 decay_mult: 1 }} convolution_param {{ num_output: {channels} kernel_size: 3 '
            f'bias_term: false weight_filler {{ type: "xavier" std: 0.01 }} {extra}}} }}\n'
            f'layer {{ name: "{name}_bn" type: "BatchNorm" bottom: "{name}" top: "{name}"'
            f' batch_norm_param {{ use_global_stats: true eps: 0.001 }} }}\n'
            f'layer {{ name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}" }}\n')


def _block(name: str, bottom: str, channels: int, extra: str = "") -> str:
    return (_conv(f"{name}_a", bottom, channels) + _conv(f"{name}_b", bottom, channels, extra)
            + f'layer {{ name: "{name}_out" type: "Concat" bottom: "{name}_a" bottom: "{name}_b" top: "{name}_out" }}\n')


INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def _constructed(tmp_path, text: str) -> tuple[dict, str]:
    source = tmp_path / "net.prototxt"
    source.write_text(INPUT + text)
    result = import_config(source, modules=True)
    assert compiled(result.text, tmp_path) == upgraded(source)
    return yaml.safe_load(result.text), result.text


def test_convolution_batchnorm_relu_is_a_unit_named_on_its_instance(tmp_path):
    blocks, bottom = "", "data"
    for index, channels in enumerate([8, 8, 16, 16, 16, 16], start=1):
        blocks += _block(f"mix{index}", bottom, channels)
        bottom = f"mix{index}_out"
    config, _ = _constructed(tmp_path, blocks)
    unit = config["modules"]["conv_bn_relu"]
    assert unit["qualify"] is False and unit["outputs"] == ["${instance}"]
    assert [layer["name"] for layer in unit["layers"]] == ["${instance}", "${instance}_bn", "${instance}_relu"]
    assert {"use": "conv_bn_relu", "name": "mix2_b", "bottom": "mix1_out", "with": {"channels": 8}} in config["layers"]


def test_a_field_some_copies_lack_is_a_parameter(tmp_path):
    text = "".join(_conv(f"c{n}", f"c{n - 1}" if n else "data", 8) for n in range(4)) \
        + _conv("c4", "c3", 8, "bias_filler { type: \"constant\" } ") + _conv("c5", "c4", 8, "pad: 1 ")
    config, _ = _constructed(tmp_path, text)
    params = config["modules"]["conv_bn_relu"]["params"]
    assert params["pad"] == {"type": "int", "default": None}
    assert params["bias_filler"] == {"type": "bool", "default": False}
    body = config["modules"]["conv_bn_relu"]["layers"][0]["convolution_param"]
    assert body["bias_filler"] == {"type": "${'constant' if bias_filler else null}"}


def _conv_shaped(name: str, bottom: str, shape: str) -> str:
    """A convolution + BatchNorm + ReLU unit whose kernel and pad are written as `shape`."""
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"\n'
            f'  convolution_param {{ num_output: 8 bias_term: false {shape} }} }}\n'
            f'layer {{ name: "{name}_bn" type: "BatchNorm" bottom: "{name}" top: "{name}" }}\n'
            f'layer {{ name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}" }}\n')


def _toml_round_trips(tmp_path) -> None:
    """The constructed net at tmp_path/net.prototxt, imported with modules as TOML, compiles back to it."""
    source = tmp_path / "net.prototxt"
    assert compiled(import_config(source, modules=True, as_toml=True).text, tmp_path, ".toml") == upgraded(source)


def test_square_and_height_width_kernels_are_one_list_parameter(tmp_path):
    shapes = ["kernel_size: 3 pad: 1", "kernel_h: 1 kernel_w: 7 pad_h: 0 pad_w: 3", "kernel_size: 1",
              "kernel_h: 7 kernel_w: 1 pad_h: 3 pad_w: 0", "kernel_size: 3 pad: 1"] * 2
    text = "".join(_conv_shaped(f"c{n}", f"c{n - 1}" if n else "data", shape) for n, shape in enumerate(shapes))
    config, _ = _constructed(tmp_path, text)
    unit = config["modules"]["conv_bn_relu"]
    assert unit["params"] == {"kernel": {"type": "list[int]", "default": [3]},  # 4 of 10
                              "pad": {"type": "list[int]", "default": [1]}}
    assert unit["layers"][0]["convolution_param"] == {
        "num_output": 8, "bias_term": False,
        "kernel_size": "${kernel if len(kernel) == 1 else null}",
        "kernel_h": "${kernel[0] if len(kernel) == 2 else null}",
        "kernel_w": "${kernel[1] if len(kernel) == 2 else null}",
        "pad": "${pad if len(pad) == 1 else null}",
        "pad_h": "${pad[0] if len(pad) == 2 else null}", "pad_w": "${pad[1] if len(pad) == 2 else null}"}
    assert config["layers"][1] == {  # `[]`: no pad field at all
        "use": "conv_bn_relu", "name": "c${i}", "repeat": 10,
        "with": {"pad": "${[[1], [0, 3], [], [3, 0], [1], [1], [0, 3], [], [3, 0], [1]][i]}",
                 "kernel": "${[[3], [1, 7], [1], [7, 1], [3], [3], [1, 7], [1], [7, 1], [3]][i]}"}}
    _toml_round_trips(tmp_path)


def _residual_block(name: str, bottom: str, shortcut: str) -> str:
    return (f'layer {{ name: "{name}/conv" type: "Convolution" bottom: "{bottom}" top: "{name}/conv"'
            f' convolution_param {{ num_output: 3 kernel_size: 1 weight_filler {{ type: "xavier" }} }} }}\n'
            f'layer {{ name: "{name}/relu" type: "ReLU" bottom: "{name}/conv" top: "{name}/conv" }}\n'
            f'layer {{ name: "{name}/conv2" type: "Convolution" bottom: "{name}/conv" top: "{name}/conv2"'
            f' convolution_param {{ num_output: 3 kernel_size: 3 pad: 1 weight_filler {{ type: "xavier" }} }} }}\n'
            f'layer {{ name: "{name}/sum" type: "Eltwise" bottom: "{name}/conv2" bottom: "{shortcut}" top: "{name}/sum" }}\n')


def test_blocks_that_differ_only_in_the_blobs_they_read_share_one_module(tmp_path):
    # b1, b3, b5 add their own input; b2, b4, b6 add the data instead
    text, bottom = "", "data"
    for n in range(1, 7):
        text += _residual_block(f"b{n}", bottom, bottom if n % 2 else "data")
        bottom = f"b{n}/sum"
    config, _ = _constructed(tmp_path, text)
    residual = config["modules"]["residual"]  # an Eltwise sum closing the block, named for it (`b` says nothing)
    assert residual["inputs"] == ["x", "y"] and residual["outputs"] == ["sum"]
    assert residual["layers"][0]["bottom"] == "x" and residual["layers"][3]["bottom"] == ["conv2", "y"]
    assert config["layers"][1:] == [
        {"use": "residual", "name": "b1", "bottom": ["data", "data"]},
        {"use": "residual", "name": "b2", "bottom": ["b1/sum", "data"]},
        {"use": "residual", "name": "b3", "bottom": ["b2/sum", "b2/sum"]},
        {"use": "residual", "name": "b4", "bottom": ["b3/sum", "data"]},
        {"use": "residual", "name": "b5", "bottom": ["b4/sum", "b4/sum"]},
        {"use": "residual", "name": "b6", "bottom": ["b5/sum", "data"]}]


def test_an_input_every_copy_binds_to_one_data_top_is_a_port_named_after_it(tmp_path):
    text, bottom = 'layer { name: "labels" type: "Input" top: "label" input_param { shape { dim: 1 } } }\n', "data"
    for n in range(1, 7):
        text += (f'layer {{ name: "s{n}/fc" type: "InnerProduct" bottom: "{bottom}" top: "s{n}/fc"'
                 f' inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }} }}\n'
                 f'layer {{ name: "s{n}/relu" type: "ReLU" bottom: "s{n}/fc" top: "s{n}/fc" }}\n'
                 f'layer {{ name: "s{n}/loss" type: "SoftmaxWithLoss" bottom: "s{n}/fc" bottom: "label" top: "s{n}/loss"'
                 f' loss_weight: 0.3 }}\n')
        bottom = f"s{n}/fc"
    config, _ = _constructed(tmp_path, text)
    (module,) = config["modules"].values()
    assert module["inputs"] == ["x", "label"]
    assert module["layers"][2]["bottom"] == ["fc", "label"]
    assert {"use": "s", "name": "s2", "bottom": ["s1/fc", "label"]} in config["layers"]


def test_units_that_lack_their_last_layer_share_the_unit_with_a_bool_switch(tmp_path):
    text = ""
    for n in range(9):
        unit = _conv(f"c{n}", f"c{n - 1}" if n else "data", 8)
        text += unit[:unit.rindex("layer {")] if n % 3 == 2 else unit  # c2, c5, c8: no ReLU
    config, _ = _constructed(tmp_path, text)
    assert list(config["modules"]) == ["conv_bn_relu"]
    unit = config["modules"]["conv_bn_relu"]
    assert unit["params"] == {"relu": {"type": "bool", "default": True}}
    assert unit["layers"][-1] == {"name": "${instance}_relu", "type": "ReLU", "in_place": True, "when": "${relu}"}
    assert config["layers"][1:] == [
        {"use": "conv_bn_relu", "name": "c${i}", "repeat": 7,
         "with": {"relu": "${[true, true, false, true, true, false, true][i]}"}},
        {"use": "conv_bn_relu", "name": "c${i + 7}", "repeat": 2, "with": {"relu": "${[true, false][i]}"}}]
    _toml_round_trips(tmp_path)


def test_module_names_come_from_the_instances_and_what_the_block_is():
    assert instance_stem(["res2a", "res3a", "res4a"]) == "res"  # no number cut in the middle
    assert instance_stem(["inception_resnet_v2_a1", "inception_resnet_v2_a2"]) == "inception_resnet_v2_a"
    assert instance_stem(["inception_3a", "inception_4b"]) == "inception"
    # an abbreviation gives way to what the block is; a name two modules want tells the projecting one apart
    assert module_names([("res", "bottleneck", True), ("res", "bottleneck", False), ("fire", None, False),
                         ("xception", "residual", True), ("xception", "residual", False), ("", None, False)],
                        {"conv_bn_relu"}) == ["bottleneck_projection", "bottleneck", "fire", "xception_projection",
                                              "xception", "block"]
    assert module_names([("conv_bn_relu", None, False)], {"conv_bn_relu"}) == ["conv_bn_relu_2"]  # a unit's name


@pytest.mark.parametrize("values, default", [
    ([1, 1, 1, 2, 3, 4, 5], {"default": 1}),  # more than any other value, and a third of the copies
    ([1, 1, 2, 3, 4, 5, 6], {}),  # two of seven: a chance default no person would write
    ([1, 1, 2, 2, 3], {}),  # no value more than any other
    ([None, 1, 1, 2], {"default": None}),  # a field some copies leave out: its value only if most have it
    ([None, 1, 1, 1], {"default": 1}),
])
def test_a_default_is_the_value_more_copies_share_than_any_other(values, default):
    param = Param("num_output", "conv", values, "int")
    merge = Merge(params=[param])
    merge.choose_defaults()
    assert param.declaration() == {"type": "int", **default}


def test_the_one_varying_width_among_fixed_ones_is_named_after_its_layer(tmp_path):
    def conv(name: str, bottom: str, channels: int) -> str:
        return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"'
                f' convolution_param {{ num_output: {channels} kernel_size: 1 weight_filler {{ type: "xavier" }} }} }}\n'
                f'layer {{ name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}" }}\n')
    text, bottom = "", "data"
    for n, width in enumerate([4, 8, 8, 12], start=1):
        text += (conv(f"m{n}/1x1", bottom, 8) + conv(f"m{n}/3x3", bottom, 16) + conv(f"m{n}/pool_proj", bottom, width)
                 + f'layer {{ name: "m{n}/output" type: "Concat" bottom: "m{n}/1x1" bottom: "m{n}/3x3"'
                   f' bottom: "m{n}/pool_proj" top: "m{n}/output" }}\n')
        bottom = f"m{n}/output"
    config, _ = _constructed(tmp_path, text)
    block = config["modules"]["m"]
    assert block["params"] == {"pool_proj": {"type": "int", "default": 8}}  # not `channels`: 1x1 and 3x3 have theirs
    assert block["layers"][2] == {"use": "conv_relu", "name": "pool_proj", "bottom": "x",
                                  "with": {"channels": "${pool_proj}"}}


def test_blocks_with_and_without_a_shortcut_projection_are_one_module(tmp_path):
    text, bottom = "", "data"
    for n in range(1, 7):
        projects = n in (1, 4)
        if projects:
            text += (f'layer {{ name: "b{n}/proj" type: "Convolution" bottom: "{bottom}" top: "b{n}/proj"'
                     f' convolution_param {{ num_output: 3 kernel_size: 1 }} }}\n')
        text += _residual_block(f"b{n}", bottom, f"b{n}/proj" if projects else bottom)
        bottom = f"b{n}/sum"
    config, _ = _constructed(tmp_path, text)
    (name,) = [name for name, module in config["modules"].items() if "projection" in module.get("params", {})]
    block = config["modules"][name]
    assert block["params"]["projection"] == {"type": "bool", "default": False}
    assert block["layers"][0]["name"] == "proj" and block["layers"][0]["when"] == "${projection}"
    assert block["layers"][-1]["bottom"] == ["conv2", "${'proj' if projection else 'x'}"]
    assert [entry for entry in config["layers"] if entry.get("use") == name] == [
        {"use": name, "name": "b${i + 1}", "repeat": 6,
         "with": {"projection": "${[true, false, false, true, false, false][i]}"}}]
    _toml_round_trips(tmp_path)


def test_a_first_block_without_its_leading_activation_shares_the_module(tmp_path):
    text, bottom = "", "data"
    for n in range(1, 6):
        act = bottom if n == 1 else f"b{n}/relu"  # b1 reads the data as it is
        if n > 1:
            text += f'layer {{ name: "b{n}/relu" type: "ReLU" bottom: "{bottom}" top: "b{n}/relu" }}\n'
        text += (f'layer {{ name: "b{n}/conv" type: "Convolution" bottom: "{act}" top: "b{n}/conv"'
                 f' convolution_param {{ num_output: 3 kernel_size: 3 pad: 1 }} }}\n'
                 f'layer {{ name: "b{n}/conv2" type: "Convolution" bottom: "b{n}/conv" top: "b{n}/conv2"'
                 f' convolution_param {{ num_output: 3 kernel_size: 1 weight_filler {{ type: "gaussian" std: 0.01 }}'
                 f' bias_filler {{ type: "constant" value: 0.2 }} }} }}\n'
                 f'layer {{ name: "b{n}/sum" type: "Eltwise" bottom: "{bottom}" bottom: "b{n}/conv2" top: "b{n}/sum" }}\n')
        bottom = f"b{n}/sum"
    config, _ = _constructed(tmp_path, text)
    (block,) = config["modules"].values()  # b1 too: flat, it would take more lines than its switch
    assert block["params"] == {"relu": {"type": "bool", "default": True}}
    assert block["layers"][0] == {"name": "relu", "type": "ReLU", "when": "${relu}"}  # reads x, the one input
    assert block["layers"][1]["bottom"] == "${'relu' if relu else 'x'}"
    assert config["layers"][1]["with"] == {"relu": "${false if i == 0 else true}"}
