"""`imports:`: modules from other YAML/TOML files under a namespace, and prototxt files as modules."""

from __future__ import annotations

from pathlib import Path

from caffeconf.compile.compiler import build
from caffeconf.errors import render_text
from caffeconf.limits import Limits

from conftest import ROOT

IMPORTS = ROOT / "tests" / "imports"


def compile_ok(path: Path):
    result = build(path)
    assert result.ok, render_text(result.diagnostics)
    return result.net


def errors_of(path: Path) -> str:
    result = build(path)
    assert not result.ok
    return render_text(result.diagnostics)


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def test_namespaced_modules_and_prototxt_module_inline():
    net = compile_ok(IMPORTS / "net.yaml")
    assert net.dump() == (
        "data (Input) [] -> ['data']\n"
        "stem/conv (Convolution) ['data'] -> ['stem/conv']\n"
        "stem/relu/y (ReLU) ['stem/conv'] -> ['stem/out']\n"
        "classifier/pool (Pooling) ['stem/out'] -> ['classifier/pool']\n"
        "classifier/fc (InnerProduct) ['classifier/pool'] -> ['classifier/fc']\n"
        "classifier/prob (Softmax) ['classifier/fc'] -> ['classifier/prob']\n"
    )


def test_imported_layers_remember_their_files():
    net = compile_ok(IMPORTS / "net.yaml")
    relu, fc = net.layer("stem/relu/y"), net.layer("classifier/fc")
    assert (Path(relu.origin.span.path).name, relu.origin.span.line) == ("activations.yaml", 7)
    assert [use.module for use in relu.origin.uses] == ["conv_relu", "relu"]
    assert (Path(fc.origin.span.path).name, fc.origin.span.line) == ("head.prototxt", 4)


def test_import_cycle_shows_the_chain(tmp_path):
    write(tmp_path, {
        "a.yaml": "caffeconf: 1\nimports: {b: b.yaml}\nlayers: []\n",
        "b.yaml": "caffeconf: 1\nimports: {a: a.yaml}\n",
    })
    text = errors_of(tmp_path / "a.yaml")
    assert f"{tmp_path}/b.yaml:2:14: error: import cycle: a.yaml -> b.yaml -> a.yaml" in text


def test_missing_import_is_located(tmp_path):
    write(tmp_path, {"a.yaml": "caffeconf: 1\nimports:\n  b: nothere.yaml\nlayers: []\n"})
    text = errors_of(tmp_path / "a.yaml")
    assert f"cannot read {tmp_path / 'nothere.yaml'}: No such file or directory" in text
    assert f"{tmp_path}/a.yaml:3:6: error: cannot import 'nothere.yaml'" in text


def test_unknown_namespaced_module_suggests_the_right_one(tmp_path):
    write(tmp_path, {
        "blocks.yaml": "caffeconf: 1\nmodules:\n  relu:\n    inputs: [x]\n    layers: [{name: y, type: ReLU}]\n",
        "a.yaml": "caffeconf: 1\nimports: {blocks: blocks.yaml}\nlayers:\n"
                  "  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}\n"
                  "  - {use: blocks.rleu, name: r}\n",
    })
    text = errors_of(tmp_path / "a.yaml")
    assert f"{tmp_path}/a.yaml:5:11: error: unknown module 'blocks.rleu'" in text
    assert "hint: did you mean 'blocks.relu'?" in text


def test_module_cycle_across_files(tmp_path):
    write(tmp_path, {
        "a.yaml": "caffeconf: 1\nimports: {b: b.yaml}\nmodules:\n"
                  "  m:\n    inputs: [x]\n    layers: [{use: b.n, name: inner}]\nlayers: []\n",
        "b.yaml": "caffeconf: 1\nimports: {a: a.yaml}\nmodules:\n"
                  "  n:\n    inputs: [x]\n    layers: [{use: a.m, name: inner}]\n",
    })
    text = errors_of(tmp_path / "a.yaml")
    assert "error: import cycle: a.yaml -> b.yaml -> a.yaml" in text
    assert "uses itself" not in text  # the import cycle is refused first, so b.yaml never sees a.m


def test_a_nested_import_may_go_up_while_it_stays_in_the_root_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, {
        "relu.yaml": "caffeconf: 1\nmodules:\n  relu:\n    inputs: [x]\n    layers: [{name: y, type: ReLU}]\n",
        "sub/blocks.yaml": "caffeconf: 1\nimports: {act: ../relu.yaml}\nmodules:\n"
                           "  both:\n    inputs: [x]\n    layers: [{use: act.relu, name: r}]\n",
        "a.yaml": "caffeconf: 1\nimports: {blocks: sub/blocks.yaml}\nlayers:\n"
                  "  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}\n"
                  "  - {use: blocks.both, name: b}\n",
    })
    assert [layer.name for layer in compile_ok(tmp_path / "a.yaml").layers] == ["data", "b/r/y"]


def test_an_absolute_import_works_only_when_allowed(tmp_path):
    blocks = tmp_path / "elsewhere" / "blocks.yaml"
    blocks.parent.mkdir()
    blocks.write_text("caffeconf: 1\nmodules:\n  relu:\n    inputs: [x]\n    layers: [{name: y, type: ReLU}]\n")
    (tmp_path / "net").mkdir()
    write(tmp_path, {"net/a.yaml": f"caffeconf: 1\nimports: {{b: {blocks}}}\nlayers:\n"
                                   "  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}\n"
                                   "  - {use: b.relu, name: r}\n"})
    assert f"a.yaml:2:14: error: import '{blocks}' is an absolute path" in errors_of(tmp_path / "net" / "a.yaml")
    allowed = build(tmp_path / "net" / "a.yaml", Limits(allow_absolute_imports=True))
    assert allowed.ok and [layer.name for layer in allowed.net.layers] == ["data", "r/y"]
