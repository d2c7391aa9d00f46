"""Reading and writing Caffe nets and solvers: every shared model parses, text ↔ binary is
lossless, output text is Caffe's canonical format, and bad input gives exact located errors
(golden files in tests/errors_prototxt/: NAME.prototxt and the rendered NAME.expected;
set CAFFECONF_UPDATE_GOLDEN=1 to rewrite them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caffeconf.caffe import prototxt, upgrade
from caffeconf.errors import CaffeconfError, render_text
from caffeconf.caffe import caffe_pb2
from conftest import model_files

ERRORS_DIR = Path(__file__).parent / "errors_prototxt"


def _is_solver(path: Path) -> bool:
    return "solver" in path.name


@pytest.mark.parametrize("path", model_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_every_shared_prototxt_parses_as_its_kind(path):
    message = prototxt.read_net_or_solver(path)
    expected = caffe_pb2.SolverParameter if _is_solver(path) else caffe_pb2.NetParameter
    assert isinstance(message, expected)
    assert message.ListFields()


@pytest.mark.parametrize("path", model_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_text_binary_text_is_lossless(path, tmp_path):
    message = prototxt.read_net_or_solver(path)
    binary_file = tmp_path / "model.binaryproto"
    prototxt.write_message(message, binary_file, binary=True)
    from_binary = prototxt.read_net_or_solver(binary_file)
    assert type(from_binary) is type(message)
    assert from_binary == message
    assert prototxt.message_to_text(from_binary) == prototxt.message_to_text(message)
    text_file = tmp_path / "model.prototxt"
    prototxt.write_message(from_binary, text_file)
    assert prototxt.read_net_or_solver(text_file) == message


def test_canonical_text_is_what_caffe_writes():
    net = caffe_pb2.NetParameter(name="tiny", force_backward=True)
    layer = net.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
    layer.param.add(lr_mult=1.0, decay_mult=0.0)
    layer.convolution_param.num_output = 64
    layer.convolution_param.weight_filler.std = 0.01
    layer.include.add(phase=caffe_pb2.TEST)
    assert prototxt.net_to_text(net) == (
        'name: "tiny"\n'
        "force_backward: true\n"
        "layer {\n"
        '  name: "conv"\n'
        '  type: "Convolution"\n'
        '  bottom: "data"\n'
        '  top: "conv"\n'
        "  param {\n"
        "    lr_mult: 1\n"
        "    decay_mult: 0\n"
        "  }\n"
        "  include {\n"
        "    phase: TEST\n"
        "  }\n"
        "  convolution_param {\n"
        "    num_output: 64\n"
        "    weight_filler {\n"
        "      std: 0.01\n"
        "    }\n"
        "  }\n"
        "}\n")


@pytest.mark.parametrize("value, text", [
    (1.0, "1"), (0.1, "0.1"), (0.00390625, "0.00390625"), (1e-05, "1e-05"), (1e10, "1e+10"),
    (0.10000001, "0.100000009"), (float("inf"), "inf"), (float("-inf"), "-inf"),
])
def test_floats_print_like_protobuf_cpp(value, text):
    spec = caffe_pb2.ParamSpec(lr_mult=value)
    assert prototxt.message_to_text(spec) == f"lr_mult: {text}\n"


def test_strings_are_c_escaped_like_protobuf_cpp():
    net = caffe_pb2.NetParameter(name='caf\u00e9 "x"\n')
    assert prototxt.net_to_text(net) == 'name: "caf\\303\\251 \\"x\\"\\n"\n'
    assert prototxt.parse_net_text(prototxt.net_to_text(net), "t.prototxt") == net


def test_syntax_variants_caffe_accepts(tmp_path):
    text = ("name: 'quoted'\r\nlayer: {\r\n\tname: \"a\"  # comment\r\n"
            "  top: [\"x\", \"y\"]\r\n  param < lr_mult: 2 >\r\n}")
    net = prototxt.parse_net_text(text, str(tmp_path / "v.prototxt"))
    assert net.name == "quoted"
    assert list(net.layer[0].top) == ["x", "y"]
    assert net.layer[0].param[0].lr_mult == 2


# ---------------------------------------------------------------------------
# Errors


def _diagnose(path: Path) -> str:
    """What caffeconf says about a bad file, read and upgraded as `caffeconf upgrade` does."""
    try:
        message = prototxt.read_net_or_solver(path.name)
        if isinstance(message, caffe_pb2.SolverParameter):
            upgrade.upgrade_solver(message, path.name)
        else:
            upgrade.upgrade_net(message, path.name)
    except CaffeconfError as error:
        return render_text(error.diagnostics)
    raise AssertionError(f"{path.name} was accepted")


@pytest.mark.parametrize("path", sorted(ERRORS_DIR.glob("*.prototxt")), ids=lambda p: p.stem)
def test_error_golden(path, monkeypatch, golden):
    monkeypatch.chdir(ERRORS_DIR)
    rendered = _diagnose(path)
    golden(rendered, path.with_suffix(".expected"))


def _read_error(tmp_path, monkeypatch, data: bytes) -> str:
    monkeypatch.chdir(tmp_path)
    Path("bad.prototxt").write_bytes(data)
    with pytest.raises(CaffeconfError) as caught:
        prototxt.read_net("bad.prototxt")
    return render_text(caught.value.diagnostics)


def test_binary_garbage_is_located(tmp_path, monkeypatch):
    rendered = _read_error(tmp_path, monkeypatch, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert rendered == ("bad.prototxt:1:1: error: binary data (byte 0x89) that is not a valid "
                        "NetParameter\n"
                        "    \ufffdPNG\n"
                        "    ^\n")


def test_non_utf8_text_is_located(tmp_path, monkeypatch):
    rendered = _read_error(tmp_path, monkeypatch, b'name: "net"\nlayer {\n  name: "caf\xe9"\n}\n')
    assert rendered == ("bad.prototxt:3:13: error: not valid UTF-8 (byte 0xe9): "
                        "a prototxt must be UTF-8 text\n"
                        '      name: "caf\ufffd"\n'
                        "                ^\n")


@pytest.mark.parametrize("data", [b"", b"  \n\n"])
def test_empty_file_is_an_error(tmp_path, monkeypatch, data):
    rendered = _read_error(tmp_path, monkeypatch, data)
    assert rendered.startswith("bad.prototxt:1:1: error: empty file: no NetParameter in it\n")


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(CaffeconfError, match="cannot read .*missing.prototxt"):
        prototxt.read_net(tmp_path / "missing.prototxt")


def test_binary_net_and_solver_are_told_apart(tmp_path):
    solver = caffe_pb2.SolverParameter(net="train.prototxt", base_lr=0.01, type="Adam")
    net = caffe_pb2.NetParameter(name="n", layer=[caffe_pb2.LayerParameter(name="r")])
    prototxt.write_solver(solver, tmp_path / "solver.bin", binary=True)
    prototxt.write_net(net, tmp_path / "net.bin", binary=True)
    assert prototxt.read_net_or_solver(tmp_path / "solver.bin") == solver
    assert prototxt.read_net_or_solver(tmp_path / "net.bin") == net
    assert prototxt.read_net(tmp_path / "net.bin") == net


# ---------------------------------------------------------------------------
# Outline


def test_outline_finds_top_level_layers_with_names_in_every_format():
    text = ('name: "n"\ninput: "data"\n'
            'layers {\n  layer {\n    name: "v0"\n    type: "relu"\n  }\n}\n'
            'layers { name: "v1" type: RELU include { phase: TRAIN } }\n'
            '# layer { name: "commented" }\n'
            'layer: {\n  top: "x"  name: "v2" param { name: "shared" }\n}\n'
            'force_backward: true\n')
    fields = prototxt.outline_text(text).fields
    assert [(f.name, f.line, f.col, f.layer_name) for f in fields] == [
        ("name", 1, 1, None), ("input", 2, 1, None), ("layers", 3, 1, "v0"),
        ("layers", 9, 1, "v1"), ("layer", 11, 1, "v2"), ("force_backward", 14, 1, None)]
