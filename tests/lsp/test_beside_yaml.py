"""`caffeconf lsp` beside yaml-language-server, as an editor runs them: one client, both servers,
the same documents opened in each. Each server's diagnostics carry its own source, both answer
completion and hover (the client merges them), and with the setting docs/editors.md recommends
(`yaml.validate: false` where caffeconf lsp runs) a mistake is reported once, by caffeconf.

Needs node, yaml-language-server (`npm ci` in tests/lsp) and the lsp extra; skipped without them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from lsp_client import SERVER, LanguageServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MISTAKES = HERE / "cases" / "mistakes.yaml"
# the small net of test_server.py, with the schema's modeline, as a buffer in cases/
NET = HERE / "cases" / "beside.yaml"
NET_TEXT = "# yaml-language-server: $schema=../../../schemas/caffeconf.schema.json\n" + \
    (HERE / "server" / "net.yaml").read_text().replace("blocks: blocks.yaml", "blocks: ../server/blocks.yaml")
# What docs/editors.md recommends beside caffeconf lsp: the schema's completion and hover, and
# caffeconf's diagnostics alone (they say everything the schema can, in validate's words).
RECOMMENDED = {"yaml": {"validate": False, "completion": True, "hover": True}}
EDITOR_DEFAULT = {"yaml": {"validate": True, "completion": True, "hover": True}}


@pytest.fixture(scope="module")
def editor():
    """(caffeconf lsp, yaml-language-server), both started and initialised by this one client."""
    pytest.importorskip("pygls", reason="caffeconf lsp needs the lsp extra (pip install 'caffeconf[lsp]')")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: yaml-language-server cannot run")
    if not SERVER.exists():
        pytest.skip("yaml-language-server is not installed: run `(cd tests/lsp && npm ci)` (scripts/dev.sh does)")
    ours = LanguageServer([sys.executable, "-m", "caffeconf", "lsp"], {}, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    yaml = LanguageServer([node, str(SERVER), "--stdio"], EDITOR_DEFAULT)
    capabilities = {}
    for name, server in (("caffeconf", ours), ("yaml", yaml)):
        capabilities[name] = server.initialize(ROOT)
    yield ours, yaml, capabilities
    ours.close()
    yaml.close()


def configure(yaml: LanguageServer, settings: dict) -> None:
    yaml.settings = settings
    yaml.notify("workspace/didChangeConfiguration", {"settings": settings})
    yaml.settle()


def opened_in_both(editor, path: Path, text: str | None = None) -> tuple[list[dict], list[dict]]:
    """Open `path` in both servers, as an editor does; the diagnostics each published for it."""
    ours, yaml, _ = editor
    for server in (ours, yaml):
        server.settle()
        server.published()
        server.open(path.as_uri(), path.read_text() if text is None else text)
    return ours.diagnostics(path.as_uri()), yaml.diagnostics(path.as_uri(), timeout=30)


def closed_in_both(editor, path: Path) -> None:
    for server in editor[:2]:
        server.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})
        server.settle()
        server.published()


def test_both_servers_start_in_one_client_and_advertise_completion_and_hover(editor):
    _, _, capabilities = editor
    for name in ("caffeconf", "yaml"):
        assert capabilities[name]["completionProvider"], name
        assert capabilities[name]["hoverProvider"], name


def test_each_servers_diagnostics_carry_its_own_source(editor):
    ours, yaml, _ = editor
    configure(yaml, EDITOR_DEFAULT)
    mine, theirs = opened_in_both(editor, MISTAKES)
    closed_in_both(editor, MISTAKES)
    assert mine and theirs
    assert {d["source"] for d in mine} == {"caffeconf"}
    assert all(d["source"].startswith("yaml-schema") for d in theirs)
    # with the editor's default settings the schema's findings are also ours: each line twice
    assert {d["range"]["start"]["line"] for d in theirs} <= {d["range"]["start"]["line"] for d in mine}


def test_with_the_recommended_setting_a_mistake_is_reported_once(editor):
    ours, yaml, _ = editor
    configure(yaml, RECOMMENDED)
    mine, theirs = opened_in_both(editor, MISTAKES)
    broken_mine, broken_theirs = opened_in_both(editor, MISTAKES, MISTAKES.read_text() + "  - {name: x, bottom: [\n")
    closed_in_both(editor, MISTAKES)
    configure(yaml, EDITOR_DEFAULT)
    assert theirs == [] and broken_theirs == []
    assert [d["message"].split("\n")[0] for d in mine] == [
        "unknown field 'kernal_size' in convolution_param (ConvolutionParameter has no such field)",
        "pooling_param.pool expects one of MAX, AVE, STOCHASTIC (PoolMethod), got string 'MAXX' (did you mean 'MAX'?)",
        "parameter 'n' of module 'conv': expects int, got mapping",
        "`with` must map parameter names to values",
        "unknown layer type 'ReLu'"]
    assert [d["message"] for d in broken_mine] == ["invalid YAML: did not find expected node content"]


def test_completion_and_hover_come_from_both_and_merge_without_conflict(editor):
    ours, yaml, _ = editor
    configure(yaml, RECOMMENDED)
    text = NET_TEXT.replace("{use: blocks.conv_relu,", "{use: ,").replace("type: Pooling", "type: Po")
    opened_in_both(editor, NET, text)
    line = text.splitlines().index(next(line for line in text.splitlines() if "{use: ," in line))
    at_use = {"line": line, "character": text.splitlines()[line].index("{use: ") + len("{use: ")}
    pool = next(n for n, line in enumerate(text.splitlines()) if "type: Po" in line)
    at_type = {"line": pool, "character": text.splitlines()[pool].index("type: Po") + len("type: Po")}
    merged = {}
    for name, server in (("caffeconf", ours), ("yaml", yaml)):
        merged[name] = [[item["label"] for item in _items(server.request("textDocument/completion", {
            "textDocument": {"uri": NET.as_uri()}, "position": position}))] for position in (at_use, at_type)]
    hovers = [server.request("textDocument/hover", {"textDocument": {"uri": NET.as_uri()},
                                                    "position": {"line": 1, "character": 2}}) for server in editor[:2]]
    closed_in_both(editor, NET)
    # module names only caffeconf knows; layer types both offer (the client shows the union)
    assert merged["caffeconf"][0] == ["blocks.conv_relu"]
    assert "Pooling" in merged["caffeconf"][1] and "Pooling" in merged["yaml"][1]
    assert hovers[0] is None  # `caffeconf: 1` is the schema's to describe, not ours
    assert "The format version this config is written in" in hovers[1]["contents"]["value"]


def _items(result) -> list[dict]:
    return result["items"] if isinstance(result, dict) else result or []
