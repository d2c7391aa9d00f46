"""Values that take a detour through templates or YAML's corners keep their meaning."""

from __future__ import annotations

from caffeconf.compile.compiler import build
from caffeconf.errors import render_text


def compile_text(tmp_path, text: str):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    result = build(path)
    assert result.ok, render_text(result.diagnostics)
    return result.net


def test_escaped_template_inside_a_list_value_stays_literal(tmp_path):
    net = compile_text(tmp_path, """caffeconf: 1
modules:
  m:
    params:
      tags: {type: "list[string]", default: ["$${x}", plain]}
    inputs: [x]
    layers:
      - {name: r, type: ReLU, exclude: {stage: "${tags}"}}
layers:
  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}
  - {use: m, name: u}
""")
    assert net.layer("u/r").fields["exclude"] == [{"stage": ["${x}", "plain"]}]


def test_yaml_infinities_and_nan_are_floats(tmp_path):
    net = compile_text(tmp_path, """caffeconf: 1
layers:
  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}
  - {name: clip, type: Clip, clip_param: {min: -.inf, max: .inf}}
""")
    assert net.layer("clip").fields["clip_param"] == {"min": float("-inf"), "max": float("inf")}
