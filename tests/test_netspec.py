"""Building nets from Python (`caffeconf.netspec`): the same net a config gives, checked as a
config is, with errors at the Python line that made them."""

import runpy
import sys
from pathlib import Path

import pytest

from caffeconf import CaffeconfError, diff, load, render_text, shapes
from caffeconf import netspec as cs
from conftest import MODELS

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = runpy.run_path(str(ROOT / "configs/googlenet.py"))["googlenet"]  # with the config's modules
PLAIN_GOOGLENET = runpy.run_path(str(ROOT / "configs/googlenet_netspec.py"))["googlenet"]  # Python alone
LIB = cs.modules(ROOT / "configs/googlenet.yaml")


def here() -> int:
    """The line number of the caller: where the line an error should name is."""
    return sys._getframe(1).f_lineno


BUILDERS = pytest.mark.parametrize("googlenet", [GOOGLENET, PLAIN_GOOGLENET], ids=["modules", "plain"])


@BUILDERS
@pytest.mark.parametrize("deploy", [False, True], ids=["train_val", "deploy"])
def test_googlenet_in_python_is_the_configs_googlenet_byte_for_byte(googlenet, deploy):
    config = load(ROOT / "configs/googlenet.yaml", stage="deploy" if deploy else None)
    built = googlenet(deploy=deploy).to_net()
    assert built.to_prototxt() == config.to_prototxt()
    assert built == config and diff(built, config) == []


@BUILDERS
@pytest.mark.parametrize("variant", ["train_val", "deploy"])
def test_googlenet_in_python_equals_the_reference_prototxt(googlenet, variant):
    reference = MODELS / f"bvlc_googlenet/{variant}.prototxt"
    if not reference.exists():
        pytest.skip(f"{reference} absent")
    assert diff(googlenet(deploy=variant == "deploy").to_net(), reference) == []


def test_layers_take_pycaffe_keywords_and_name_their_tops():
    n = cs.Net("small", force_backward=True)
    n.data, n.label = cs.DummyData(ntop=2, shape=[[2, 3, 8, 8], [2]], data_filler=[{"type": "gaussian"}] * 2)
    n.conv1 = cs.Convolution(n.data, num_output=4, kernel_size=3, param=[{"lr_mult": 1}, {"lr_mult": 2}],
                             weight_filler={"type": "xavier"})
    n.relu1 = cs.ReLU(n.conv1, in_place=True)
    n.loss = cs.SoftmaxWithLoss(cs.InnerProduct(n.relu1, num_output=10), n.label, loss_weight=2,
                                loss_param={"normalize": False})
    net = n.to_net()
    assert [(l.name, l.type, l.bottoms, l.tops) for l in net.layers] == [
        ("data", "DummyData", (), ("data", "label")),
        ("conv1", "Convolution", ("data",), ("conv1",)),
        ("relu1", "ReLU", ("conv1",), ("conv1",)),
        ("InnerProduct1", "InnerProduct", ("conv1",), ("InnerProduct1",)),
        ("loss", "SoftmaxWithLoss", ("InnerProduct1", "label"), ("loss",))]
    assert net.layers[4].fields == {"loss_weight": [2], "loss_param": {"normalize": False}}
    assert net.layers[1].fields["param"] == [{"lr_mult": 1}, {"lr_mult": 2}]
    assert net.flat.fields == {"force_backward": True}
    assert shapes(net).blob("InnerProduct1") == (2, 10)
    assert n.relu1.name == "conv1" and n["conv1"].name == "conv1"


def test_a_misspelt_field_is_refused_at_the_call_with_did_you_mean():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    with pytest.raises(CaffeconfError) as raised:
        n.conv = cs.Convolution(n.data, num_output=4, kernel_sise=3)
    line = here() - 1
    assert render_text(raised.value.diagnostics) == (
        f"{__file__}:{line}:18: error: unknown field 'kernel_sise' in convolution_param "
        "(ConvolutionParameter has no such field)\n"
        "            n.conv = cs.Convolution(n.data, num_output=4, kernel_sise=3)\n"
        "                     ^\n"
        "  hint: did you mean 'kernel_size'?\n")


def test_errors_name_the_python_line():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    cases = [
        (lambda: cs.Convolutoin(n.data), "unknown layer type 'Convolutoin'", "did you mean 'Convolution'?"),
        (lambda: cs.Pooling(n.data, pool="MAXX"), "pooling_param.pool expects one of MAX, AVE, STOCHASTIC "
         "(PoolMethod), got string 'MAXX' (did you mean 'MAX'?)", None),
        (lambda: cs.InnerProduct(n.data, num_output=-1), "inner_product_param.num_output value -1 is out of "
         "range for uint32", None),
        (lambda: LIB.inception(n.data, name="i", n1x2=1), "module 'inception' has no parameter 'n1x2'",
         "did you mean 'n1x1'?"),
        (lambda: LIB.incepton(n.data, name="i"), f"{ROOT / 'configs/googlenet.yaml'} has no module 'incepton'",
         "did you mean 'inception'?"),
        (lambda: n.dtaa, "the net has no blob 'dtaa'", "did you mean 'data'?"),
    ]
    for make, message, hint in cases:
        line = make.__code__.co_firstlineno
        with pytest.raises(CaffeconfError) as raised:
            make()
        (found,) = raised.value.diagnostics
        assert (found.span.path, found.span.line, found.message, found.hint) == (__file__, line, message, hint)


def test_a_module_parameter_is_checked_against_its_type_at_the_use():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    line = here() + 1
    make = lambda: LIB.conv(n.data, name="c", num_output="64", kernel=1)  # noqa: E731
    (found,) = _diagnostics(make)
    assert (found.span.path, found.span.line, found.message) == (
        __file__, line, "parameter 'num_output' of module 'conv': expects int, got string '64'")
    assert found.notes[0].span.path.endswith("googlenet.yaml")


def test_an_unknown_blob_by_name_is_refused_at_the_layer_call():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    line, relu = here(), cs.ReLU("dta")
    (found,) = _diagnostics(lambda: n.__setattr__("relu", relu))
    assert (found.span.line, found.message, found.hint) == (
        line, "unknown blob 'dta': no layer before this one produces it", "did you mean 'data'?")


def test_a_type_specific_field_of_a_type_without_its_own_param_names_where_it_belongs():
    n = cs.Net("x")
    n.data, n.label = cs.DummyData(ntop=2, shape=[[2, 3], [2]])
    (found,) = _diagnostics(lambda: cs.SoftmaxWithLoss(n.data, n.label, normalize=False))
    assert (found.message, found.hint) == ("unknown field 'normalize' (LayerParameter has no such field)",
                                           "'normalize' belongs inside loss_param")


def _diagnostics(make):
    with pytest.raises(CaffeconfError) as raised:
        make()
    return raised.value.diagnostics


def test_a_failed_step_is_undone_and_the_net_goes_on():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    with pytest.raises(CaffeconfError):
        LIB.conv(n.data, name="c", num_output=0, kernel=1)  # num_output has min: 1
    out = LIB.conv(n.data, name="c", num_output=4, kernel=1)
    assert [l.name for l in n.to_net().layers] == ["data", "c", "relu_c"] and out.name == "c"


def test_modules_read_the_variant_chosen():
    deploy = cs.modules(ROOT / "configs/googlenet.yaml", stage="deploy")
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 8, 8])
    deploy.conv(n.data, name="c", num_output=4, kernel=1)
    LIB.conv(n.data, name="d", num_output=4, kernel=1)
    fillers = [l.fields["convolution_param"]["weight_filler"] for l in n.to_net().layers if l.type == "Convolution"]
    assert fillers == [{"type": "xavier", "std": 0.03}, {"type": "xavier"}]
    with pytest.raises(CaffeconfError) as raised:
        cs.modules(ROOT / "configs/googlenet.yaml", stage="deplyo")
    assert raised.value.diagnostics[0].hint == "did you mean 'deploy'?"


def test_an_error_inside_a_module_points_into_the_config_and_notes_the_python_use(tmp_path):
    config = tmp_path / "blocks.yaml"
    config.write_text("caffeconf: 1\nmodules:\n  block:\n    params: {n: int}\n    inputs: [x]\n    outputs: [y]\n"
                      "    layers:\n      - {name: y, type: InnerProduct, inner_product_param: {num_output: \"${n - 5}\"}}\n")
    blocks = cs.modules(config)
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3])
    line = here() + 1
    (found,) = _diagnostics(lambda: blocks.block(n.data, name="b", n=2))
    assert (found.span.path, found.span.line) == (str(config), 8)
    assert found.message == "inner_product_param.num_output value -3 is out of range for uint32"
    assert [(note.message, note.span.path, note.span.line) for note in found.notes] == [
        ("in module block, used as b", __file__, line)]


CASES = sorted((ROOT / "tests/cases").glob("*/expected.prototxt"))
SHARED_NETS = sorted(p for p in MODELS.glob("*/*.prototxt") if "solver" not in p.name and "mobilenet-ssd" not in str(p)) \
    if MODELS.is_dir() else []


@pytest.mark.parametrize("prototxt", CASES + SHARED_NETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_import_python_writes_a_script_that_builds_the_same_net(prototxt, tmp_path):
    from caffeconf.cli import main
    script = tmp_path / "net.py"
    assert main(["import", str(prototxt), "-o", str(script)]) == 0
    assert script.read_text().startswith(f'"""Imported from {prototxt.name} by `caffeconf import --python`."""')
    assert runpy.run_path(str(script))["net"] == load(prototxt)


def test_import_python_takes_no_modules(capsys):
    from caffeconf.cli import main
    assert main(["import", str(CASES[0]), "--python", "--modules"]) != 0
    assert "--python writes a flat script for BVLC's caffe.proto: it takes no --modules" in capsys.readouterr().err


def test_syntax_keys_are_refused_with_the_python_way():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3])
    (found,) = _diagnostics(lambda: cs.ReLU(n.data, top="r"))
    assert found.message == ("`top=` is not how a layer call says it: assign the layer's output to the net "
                             "(n.name = ...), and give ntop= for several tops")
    (found,) = _diagnostics(lambda: cs.Net("y", layer=[]))
    assert found.message.startswith("`layer=` is not a field here")
    (found,) = _diagnostics(lambda: cs.Net("y", force_bakward=True))
    assert (found.message, found.hint) == ("unknown field 'force_bakward' (NetParameter has no such field)",
                                           "did you mean 'force_backward'?")


def test_every_tool_takes_a_netspec_net():
    n = cs.Net("x")
    n.data = cs.Input(shape=[1, 3, 4, 4])
    n.fc = cs.InnerProduct(n.data, num_output=2)
    assert shapes(n).blob("fc") == (1, 2) and load(n) == n.to_net() and diff(n, n.to_net()) == []


def test_import_python_keeps_a_literal_dollar_brace_in_layer_and_net_fields(tmp_path):
    from caffeconf.cli import main
    prototxt = tmp_path / "dollars.prototxt"
    prototxt.write_text('name: "n $${a}"\nlayer { name: "in" type: "Input" top: "data" '
                        'input_param { shape { dim: 1 dim: 2 } } }\n'
                        'layer { name: "d" type: "Data" top: "$${b}" data_param { source: "$${c}" batch_size: 1 } }\n')
    script = tmp_path / "net.py"
    assert main(["import", str(prototxt), "-o", str(script)]) == 0
    net = runpy.run_path(str(script))["net"]
    assert (net.name, net.layers[1].tops, net.layers[1].fields["data_param"]["source"]) \
        == ("n $${a}", ("$${b}",), "$${c}")
    assert net == load(prototxt)
