"""The schema in a real editor engine: yaml-language-server (the server behind VS Code's YAML
extension and Neovim's yamlls) driven over stdio LSP, with no settings but each file's modeline.

Needs node and `npm ci` in tests/lsp (scripts/dev.sh does it); skips only where node is absent.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from caffeconf.caffe.facts import LAYER_TYPES
from caffeconf.compile.compiler import build

from lsp_client import SERVER, LanguageServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MISTAKES = HERE / "cases" / "mistakes.yaml"
MODELINE = "# yaml-language-server: $schema=../../../schemas/caffeconf.schema.json\n"
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")
SECONDS_PER_TEST = 10


@pytest.fixture(scope="module")
def server():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the language-server tests need node and `npm ci` in tests/lsp")
    assert SERVER.exists(), "yaml-language-server is not installed: run `(cd tests/lsp && npm ci)`"
    # The settings a fresh editor has: schemas come from the modelines only.
    language_server = LanguageServer([node, str(SERVER), "--stdio"],
                                     {"yaml": {"validate": True, "completion": True, "hover": True}})
    language_server.initialize(ROOT)
    yield language_server
    language_server.close()


@pytest.fixture(autouse=True)
def quick():
    start = time.monotonic()
    yield
    assert time.monotonic() - start < SECONDS_PER_TEST


def open_text(server: LanguageServer, name: str, text: str) -> str:
    """Opens `text` as a document in tests/lsp/cases (so its relative modeline finds the schema)."""
    uri = (HERE / "cases" / name).as_uri()
    server.open(uri, text)
    return uri


def cursor(text: str) -> tuple[str, dict]:
    """The text without its `|` marker, and the LSP position of the marker."""
    before = text[:text.index("|")]
    lines = before.split("\n")
    return text.replace("|", "", 1), {"line": len(lines) - 1, "character": len(lines[-1])}


def labels(result) -> list[str]:
    items = result["items"] if isinstance(result, dict) else result
    return [item["label"] for item in items]


def expected_mistakes() -> dict[int, str]:
    """0-based line -> the message text its `# expect:` comment names."""
    lines = MISTAKES.read_text().splitlines()
    return {number: match.group(1).strip() for number, line in enumerate(lines)
            if (match := EXPECT.search(line)) and not line.startswith("#")}


# -- diagnostics ----------------------------------------------------------------------------------

def open_file(server: LanguageServer, path: Path) -> str:
    server.open(path.as_uri(), path.read_text())
    return path.as_uri()


@pytest.fixture(scope="module")
def mistake_diagnostics(server) -> list[dict]:
    return server.diagnostics(open_file(server, MISTAKES))


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_configs_are_clean_in_the_editor(server, path):
    uri = open_file(server, path)
    assert server.diagnostics(uri) == []
    # and the modeline did bring the schema: hover knows the format's own keys
    line = path.read_text().splitlines().index("caffeconf: 1")
    hover = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": line, "character": 2}})
    assert "The format version this config is written in" in hover["contents"]["value"]


def test_known_mistakes_are_flagged_on_their_lines(mistake_diagnostics):
    diagnostics = mistake_diagnostics
    found = {d["range"]["start"]["line"]: d["message"] for d in diagnostics}
    assert len(diagnostics) == len(found), "one diagnostic per line"
    expected = expected_mistakes()
    assert sorted(found) == sorted(expected)
    for line, text in expected.items():
        assert found[line].startswith(text), (line + 1, found[line])


def test_unknown_field_is_underlined_where_it_is_written(mistake_diagnostics):
    [unknown] = [d for d in mistake_diagnostics if "kernal_size" in d["message"]]
    line = MISTAKES.read_text().splitlines()[unknown["range"]["start"]["line"]]
    assert line[unknown["range"]["start"]["character"]:].startswith("kernal_size")
    assert unknown["severity"] == 1  # error


def test_the_tool_flags_the_same_lines():
    """The editor's squiggles and `caffeconf validate` point at the same lines of the same file."""
    result = build(MISTAKES)
    tool_lines = {d.span.line - 1 for d in result.diagnostics if d.severity == "error"}
    assert tool_lines == set(expected_mistakes())


def test_expressions_are_accepted_where_numbers_enums_and_bools_go(server):
    text = MODELINE + """caffeconf: 1
params: {k: {type: int, default: 3}, method: {type: string, default: MAX}}
layers:
  - {name: data, type: Input, input_param: {shape: {dim: [1, 3, 8, 8]}}}
  - {name: pool, type: Pooling, pooling_param: {pool: "${method}", kernel_size: "${k}", stride: null}}
  - {name: relu, type: ReLU, in_place: "${k > 1}", relu_param: {negative_slope: "${0.1 * k}"}}
"""
    assert server.diagnostics(open_text(server, "expressions.yaml", text)) == []


# -- completion and hover -------------------------------------------------------------------------

def test_completion_after_type_offers_the_caffe_layer_types(server):
    text, position = cursor(MODELINE + "caffeconf: 1\nlayers:\n  - name: conv1\n    type: |\n")
    uri = open_text(server, "complete_type.yaml", text)
    result = server.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position})
    assert set(labels(result)) == LAYER_TYPES
    items = result["items"] if isinstance(result, dict) else result
    convolution = next(item for item in items if item["label"] == "Convolution")
    assert "convolution with learned filters" in str(convolution.get("documentation"))


def test_completion_inside_convolution_param_offers_its_fields(server):
    text, position = cursor(MODELINE + "caffeconf: 1\nlayers:\n  - name: conv1\n    type: Convolution\n"
                            "    convolution_param:\n      bias_term: false\n      |\n")
    uri = open_text(server, "complete_param.yaml", text)
    offered = labels(server.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position}))
    assert {"kernel_size", "num_output", "stride", "pad", "weight_filler"} <= set(offered)
    assert "bias_term" not in offered  # already written
    assert "pool" not in offered  # a PoolingParameter field


def test_completion_of_an_enum_value(server):
    text, position = cursor(MODELINE + "caffeconf: 1\nlayers:\n  - name: pool1\n    type: Pooling\n"
                            "    pooling_param:\n      pool: |\n")
    uri = open_text(server, "complete_enum.yaml", text)
    offered = labels(server.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": position}))
    assert {"MAX", "AVE", "STOCHASTIC"} <= set(offered)


def test_hover_shows_the_field_description(server):
    text = MODELINE + ("caffeconf: 1\nlayers:\n  - name: conv1\n    type: Convolution\n"
                       "    convolution_param: {num_output: 8, kernel_size: 3}\n")
    uri = open_text(server, "hover.yaml", text)
    line = text.splitlines().index("    convolution_param: {num_output: 8, kernel_size: 3}")
    position = {"line": line, "character": text.splitlines()[line].index("kernel_size") + 2}
    hover = server.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": position})
    shown = hover["contents"]["value"]
    assert "Filter size: one value for all spatial axes, or one per axis." in shown
    assert "||" not in shown
