"""`caffeconf lsp` driven over stdio by a real LSP client (lsp_client.py), as an editor drives it:
diagnostics exactly as `caffeconf validate` reports them, unsaved edits, imported files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caffeconf.commands.validate import file_diagnostics
from caffeconf.compile.load import one_command
from caffeconf.limits import DEFAULT_LIMITS

from lsp_client import LanguageServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SERVED = HERE / "server"
NET, BLOCKS, REPEATS = SERVED / "net.yaml", SERVED / "blocks.yaml", SERVED / "repeats.yaml"
USES = SERVED / "uses.yaml"
ERROR = 1
WARNING = 2


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("pygls", reason="the language server needs the lsp extra (pip install 'caffeconf[lsp]')")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    language_server = LanguageServer([sys.executable, "-m", "caffeconf", "lsp"], {}, cwd=ROOT, env=env)
    language_server.initialize(ROOT)
    yield language_server
    language_server.close()


def where(line: int, col: int, end_line: int, end_col: int) -> dict:
    """An LSP range from 1-based line:col positions, as `validate` prints them."""
    return {"start": {"line": line - 1, "character": col - 1}, "end": {"line": end_line - 1, "character": end_col - 1}}


def opened(server: LanguageServer, path: Path, text: str | None = None, language: str = "yaml") -> list[dict]:
    """Open `path` (as `text`, when given) and return the diagnostics published for it."""
    server.settle()
    server.published()  # what earlier steps published is no answer to this one
    server.open(path.as_uri(), path.read_text() if text is None else text, language)
    return server.diagnostics(path.as_uri())


def change(server: LanguageServer, path: Path, text: str, version: int = 2) -> None:
    server.notify("textDocument/didChange", {"textDocument": {"uri": path.as_uri(), "version": version},
                                             "contentChanges": [{"text": text}]})


def close(server: LanguageServer, path: Path) -> None:
    server.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})


def brief(diagnostics: list[dict]) -> list[tuple]:
    return [(d["range"], d["severity"], d["message"]) for d in diagnostics]


BAD_USE = NET.read_text().replace("with: {n: 8}", "with: {n: 0, padd: 2}")


def test_an_unsaved_mistake_is_reported_as_validate_words_it_with_notes_as_related_information(server):
    found = opened(server, NET, BAD_USE)
    assert brief(found) == [
        (where(7, 51, 7, 52), ERROR, "parameter 'n' of module 'conv_relu': must be >= 1, got 0"),
        (where(7, 54, 7, 58), ERROR, "module 'conv_relu' has no parameter 'padd'\nhint: did you mean 'pad'?")]
    assert found[0]["relatedInformation"] == [
        {"location": {"uri": BLOCKS.as_uri(), "range": where(6, 7, 6, 8)}, "message": "'n' declared here as int"}]
    assert all(d["source"] == "caffeconf" for d in found)
    assert edited(server, NET, NET.read_text(), 2) == {NET.as_uri(): []}
    close(server, NET)


def edited(server: LanguageServer, path: Path, text: str, version: int) -> dict[str, list[dict]]:
    """Change `path` to `text`, and return what the check after it published, by URI."""
    server.settle()
    server.published()
    change(server, path, text, version)
    first = server.diagnostics(path.as_uri())
    server.settle()
    return {path.as_uri(): first, **server.published()}


def test_an_error_inside_an_imported_module_shows_in_that_file_and_editing_it_rechecks_the_importer(server):
    assert opened(server, NET) == []
    assert opened(server, BLOCKS) == []
    broken = BLOCKS.read_text().replace("bottom: conv,", "bottom: cnv,")
    published = edited(server, BLOCKS, broken, 2)
    assert set(published) == {BLOCKS.as_uri(), NET.as_uri()}
    # blocks.yaml alone has no use of conv_relu: the error comes from net.yaml's use, noted there
    shown = published[BLOCKS.as_uri()]
    assert brief(shown) == [(where(12, 42, 12, 45), ERROR, "unknown blob 'cnv': no layer before this one produces it\n"
                                                           "hint: did you mean 'conv'?")]
    assert shown[0]["relatedInformation"] == [{"location": {"uri": NET.as_uri(), "range": where(7, 5, 7, 54)},
                                               "message": "in module conv_relu, used as stem"}]
    assert published[NET.as_uri()] == []
    assert edited(server, BLOCKS, BLOCKS.read_text(), 3) == {BLOCKS.as_uri(): [], NET.as_uri(): []}
    published = edited(server, BLOCKS, BLOCKS.read_text().replace("{type: int, default: 1}", "int"), 4)
    assert brief(published[NET.as_uri()]) == [
        (where(7, 5, 7, 54), ERROR, "missing required parameter 'pad' (int) of module 'conv_relu'")]
    # closed with its edit unsaved, blocks.yaml is read from disk again by the config importing it
    close(server, BLOCKS)
    server.settle()
    assert server.published() == {BLOCKS.as_uri(): [], NET.as_uri(): []}
    close(server, NET)


def test_a_change_on_disk_to_a_file_an_open_config_imports_checks_it_again(server, tmp_path):
    (tmp_path / "blocks.yaml").write_text(BLOCKS.read_text())
    net = tmp_path / "net.yaml"
    net.write_text(NET.read_text())
    assert opened(server, net) == []
    (tmp_path / "blocks.yaml").write_text(BLOCKS.read_text().replace("n: {type: int", "m: {type: int"))
    server.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "blocks.yaml").as_uri(),
                                                                   "type": 2}]})
    assert [d["message"] for d in server.diagnostics(net.as_uri())] == [
        "module 'conv_relu' has no parameter 'n'\nhint: its parameters: m, pad"]
    close(server, net)


def test_a_document_that_does_not_parse_gets_its_parse_error(server):
    broken = SERVED / "unparsed.yaml"
    found = opened(server, broken, "caffeconf: 1\nlayers: [\n")
    assert brief(found) == [(where(3, 1, 3, 2), ERROR, "invalid YAML: did not find expected node content")]
    close(server, broken)
    assert server.diagnostics(broken.as_uri()) == []


def test_toml_and_prototxt_buffers_are_checked_too(server):
    toml = SERVED / "net.toml"
    text = 'caffeconf = 1\n\n[[layers]]\nname = "data"\ntype = "Input"\ninput_param = {shape = {dim = [1, 3]}}\n\n' \
           '[[layers]]\nname = "relu"\ntype = "ReLU"\nbottom = "dta"\n'
    assert brief(opened(server, toml, text, "toml")) == [
        (where(11, 10, 11, 15), ERROR, "unknown blob 'dta': no layer before this one produces it\n"
                                     "hint: did you mean 'data'?")]
    close(server, toml)
    prototxt = SERVED / "net.prototxt"
    text = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n' \
           'layer { name: "relu" type: "ReLU" bottom: "dta" top: "relu" }\n'
    assert brief(opened(server, prototxt, text, "prototxt")) == [
        (where(2, 1, 2, 2), ERROR, "layer 'relu' reads blob 'dta' that no earlier layer produces")]
    close(server, prototxt)


CASES = sorted((ROOT / "tests" / "errors").glob("*.yaml")) + sorted((ROOT / "tests" / "errors_prototxt").glob("*.prototxt")) \
    + sorted((ROOT / "tests" / "warnings").glob("*.yaml")) + [ROOT / "tests" / "toml" / "unknown_field.toml"]
CASES.remove(ROOT / "tests" / "errors" / "not_utf8.yaml")  # an editor sends only UTF-8 text


def test_columns_after_characters_beyond_the_bmp_count_in_utf16_code_units(server, tmp_path):
    emoji = tmp_path / "emoji.yaml"
    emoji.write_text('caffeconf: 1\nname: "\U0001F600 net"\nlayers:\n  - {name: "\U0001F600", type: Input, '
                     'input_param: {shape: {dim: [1]}}}\n  - {name: "\U0001F600\U0001F600", type: ReLU, bottom: dta}\n')
    # validate's column 38 is in code points; the two emoji before it take two UTF-16 units each
    with one_command():
        assert [(d.span.line, d.span.col) for d in file_diagnostics(str(emoji), DEFAULT_LIMITS)] == [(5, 38)]
    assert brief(opened(server, emoji)) == [(where(5, 40, 5, 43), ERROR, "unknown blob 'dta': no layer before this "
                                                                         "one produces it")]
    close(server, emoji)


def test_the_server_listens_on_tcp_when_asked(tmp_path):
    pytest.importorskip("pygls", reason="the language server needs the lsp extra (pip install 'caffeconf[lsp]')")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "caffeconf", "lsp", "--tcp", str(port)], cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.DEVNULL)
    try:
        connection = _connect(port)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"processId": None, "rootUri": None, "capabilities": {}}}).encode()
        connection.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = _read_message(connection.makefile("rb"))
        connection.close()
    finally:
        process.kill()
        process.wait()
    capabilities = reply["result"]["capabilities"]
    assert reply["result"]["serverInfo"]["name"] == "caffeconf"
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert capabilities["completionProvider"]["triggerCharacters"] == [" ", ":", "{", ","]


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _read_message(stream) -> dict:
    length = None
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(stream.read(length))


# Without `caffeconf:` (or the schema modeline) a YAML file is not taken for a config.
NOT_CONFIGS = ("empty_document.yaml", "missing_version.yaml", "non_mapping_document.yaml")


def test_yaml_that_is_no_config_gets_no_diagnostics_until_it_says_it_is_one(server):
    other = SERVED / "workflow.yaml"
    server.open(other.as_uri(), "on: push\njobs: {}\n")
    server.settle()
    assert other.as_uri() not in server.published()
    published = edited(server, other, "caffeconf: 1\njobs: {}\n", 2)
    assert brief(published[other.as_uri()]) == [
        (where(2, 1, 2, 5), ERROR, "unknown key 'jobs' in the document\nhint: allowed keys: caffeconf, caffe_proto, "
                                   "name, separator, variants, params, imports, modules, layers, solver, "
                                   "debug_info, force_backward, input, input_dim, input_shape, state")]
    assert edited(server, other, "on: push\njobs: {}\n", 3) == {other.as_uri(): []}  # no longer one: cleared
    close(server, other)
    notes = SERVED / "notes.txt"  # a file of another kind an editor hands over: not read as a prototxt
    server.open(notes.as_uri(), "layer { bottom: nowhere }\n", "plaintext")
    server.open("untitled:Untitled-1", "caffeconf: 1\nlayers: 3\n", "yaml")
    for name in NOT_CONFIGS:
        server.open((ROOT / "tests" / "errors" / name).as_uri(), (ROOT / "tests" / "errors" / name).read_text())
        close(server, ROOT / "tests" / "errors" / name)
    server.settle()
    assert not any(server.published().values())
    assert server.request("textDocument/hover", {"textDocument": {"uri": notes.as_uri()},
                                                 "position": {"line": 0, "character": 2}}) is None
    close(server, notes)


def test_every_error_and_warning_case_gets_what_validate_reports_at_the_same_places(server, monkeypatch):
    monkeypatch.chdir(ROOT)  # where the server runs (the workspace root), as imports are checked from there
    for case in CASES:
        if case.name in NOT_CONFIGS:
            continue
        with one_command():
            expected = sorted((Path(d.span.path).resolve().as_uri() if d.span else case.as_uri(),
                               (d.span.line - 1, d.span.col - 1) if d.span else (0, 0), d.severity, d.message)
                              for d in file_diagnostics(str(case), DEFAULT_LIMITS))
        server.settle()
        server.published()
        server.open(case.as_uri(), case.read_text(), {".yaml": "yaml", ".toml": "toml"}.get(case.suffix, "prototxt"))
        server.settle()
        found = sorted((uri, (d["range"]["start"]["line"], d["range"]["start"]["character"]),
                        {ERROR: "error", WARNING: "warning"}[d["severity"]], headline(d["message"]))
                       for uri, diagnostics in server.published().items() for d in diagnostics)
        close(server, case)
        assert found == expected, case
    assert len(CASES) > 100


def headline(message: str) -> str:
    """The message without the hint and notes the server adds as further lines."""
    return message.split("\nhint: ")[0].split("\nnote: ")[0]


def at(path: Path, line: int, needle: str, offset: int = 0) -> dict:
    """The LSP position of `needle` (plus `offset` characters) on 1-based `line` of `path`."""
    text = path.read_text().splitlines()[line - 1]
    assert needle in text, (needle, text)
    return {"line": line - 1, "character": text.index(needle) + offset}


def hover(server: LanguageServer, path: Path, position: dict) -> str | None:
    found = server.request("textDocument/hover", {"textDocument": {"uri": path.as_uri()}, "position": position})
    if found is None:
        return None
    assert found["contents"]["kind"] == "markdown"
    return found["contents"]["value"]


@pytest.fixture
def net_open(server):
    server.open(NET.as_uri(), NET.read_text())
    server.diagnostics(NET.as_uri())
    yield
    close(server, NET)


def test_hover_on_a_use_shows_the_module_its_parameters_and_ports(server, net_open):
    assert hover(server, NET, at(NET, 7, "blocks.conv_relu", 3)) == (
        "**module conv_relu** (blocks.yaml:3)\n\nA 3x3 convolution and its ReLU.\n\nParameters:\n"
        "- `n`: int, required, min 1 — output channels\n- `pad`: int, default 1\n\ninputs: `x` · outputs: `out`")


def test_hover_on_a_with_key_shows_the_parameter_declaration(server, net_open):
    assert hover(server, NET, at(NET, 7, "{n: 8}", 1)) == (
        "**n**: parameter of module `conv_relu`\n\n`n`: int, required, min 1 — output channels")


def test_hover_on_a_layer_name_shows_its_inferred_shapes_parameters_and_macs(server, net_open):
    assert hover(server, NET, at(NET, 8, "pool,", 1)) == (
        "In the TEST phase:\n\n- `pool` (Pooling): pool 1x8x4x4; params 0; MACs 0")
    assert hover(server, NET, at(NET, 7, "stem")) == (
        "In the TEST phase:\n\n"
        "- `stem/conv` (Convolution): stem/conv 1x8x8x8; params 224; MACs 13,824\n"
        "- `stem/relu` (ReLU): stem/out 1x8x8x8; params 0; MACs 0\n"
        "- in all: 2 layers; params 224; MACs 13,824")


def test_hover_on_a_caffe_field_or_type_shows_its_caffe_proto_description(server, net_open):
    assert hover(server, NET, at(NET, 8, "kernel_size", 2)) == \
        "**PoolingParameter.kernel_size**: Window size (square). (uint32)"
    assert hover(server, NET, at(NET, 8, "Pooling")) == \
        "**Pooling**: Max, average or stochastic pooling over spatial windows."
    assert hover(server, NET, at(NET, 8, "bottom")) == \
        "**bottom**: Input blobs; omitted, the previous layer's single top."
    assert hover(server, NET, at(NET, 1, "caffeconf")) is None


def test_hover_on_a_templated_name_or_blob_shows_what_each_instance_wrote(server):
    opened(server, REPEATS)
    name = hover(server, REPEATS, at(REPEATS, 4, "${i}", 2))
    top = hover(server, REPEATS, at(REPEATS, 4, '"r${i}', 3))
    close(server, REPEATS)
    assert name.endswith("In each instance:\n\n- `relu0`: relu0\n- `relu1`: relu1")
    assert top.endswith("In each instance:\n\n- `relu0`: r0\n- `relu1`: r1")


def test_hover_on_an_expression_in_a_use_shows_its_value_in_each_instance_of_the_use(server):
    opened(server, USES)
    given = hover(server, USES, at(USES, 6, "${4", 2))
    port = hover(server, USES, at(USES, 6, '"out${i}', 3))
    on_key = hover(server, USES, at(USES, 6, "{n:", 1))
    close(server, USES)
    assert given == ("**n**: parameter of module `conv_relu`\n\n`n`: int, required, min 1 — output channels\n\n"
                     "In each instance:\n\n- `c0`: 4\n- `c1`: 8")
    assert port == "In each instance:\n\n- `c0`: out0\n- `c1`: out1"
    assert on_key == "**n**: parameter of module `conv_relu`\n\n`n`: int, required, min 1 — output channels"


def test_hover_on_an_expression_in_a_use_says_what_failed_in_each_instance(server):
    opened(server, USES, USES.read_text().replace("(i + 1)", "(i - 1) // i"))
    given = hover(server, USES, at(USES, 6, "${4", 2))
    close(server, USES)
    assert given.endswith("In each instance:\n\n- `c0`: error: division by zero\n- `c1`: 0")  # out of range, which its diagnostic says


def test_hover_in_a_module_file_shows_its_instances_in_the_open_configs_importing_it(server, net_open):
    opened(server, BLOCKS)
    expression = hover(server, BLOCKS, at(BLOCKS, 11, "${n}", 2))
    layer = hover(server, BLOCKS, at(BLOCKS, 11, "conv,"))
    close(server, BLOCKS)
    assert expression == ("**ConvolutionParameter.num_output**: Number of output channels (filters). (uint32)\n\n"
                          "In each instance:\n\n- `stem/conv`: 8")
    assert layer == ("In the TEST phase of net.yaml:\n\n"
                     "- `stem/conv` (Convolution): stem/conv 1x8x8x8; params 224; MACs 13,824")


def test_hover_reads_the_unsaved_buffer(server, net_open):
    assert edited(server, NET, NET.read_text().replace("kernel_size: 2, stride: 2", "kernel_size: 4, stride: 4"), 2) \
        == {NET.as_uri(): []}
    assert hover(server, NET, at(NET, 8, "pool,", 1)) == (
        "In the TEST phase:\n\n- `pool` (Pooling): pool 1x8x2x2; params 0; MACs 0")


def definition(server: LanguageServer, path: Path, position: dict) -> dict | None:
    return server.request("textDocument/definition", {"textDocument": {"uri": path.as_uri()}, "position": position})


def test_definition_of_a_use_is_its_module_in_the_imported_file_and_of_a_with_key_its_declaration(server, net_open):
    assert definition(server, NET, at(NET, 7, "conv_relu")) == {"uri": BLOCKS.as_uri(), "range": where(3, 3, 3, 12)}
    assert definition(server, NET, at(NET, 7, "{n: 8}", 1)) == {"uri": BLOCKS.as_uri(), "range": where(6, 7, 6, 8)}


def test_definition_of_a_bottom_is_the_layer_producing_it_and_of_an_import_its_file(server, net_open):
    # stem/out is written by the ReLU inside the module, in blocks.yaml
    assert definition(server, NET, at(NET, 8, "stem/out")) == {"uri": BLOCKS.as_uri(), "range": where(12, 9, 12, 57)}
    assert definition(server, NET, at(NET, 4, "blocks.yaml")) == {"uri": BLOCKS.as_uri(), "range": where(1, 1, 1, 2)}
    assert definition(server, NET, at(NET, 8, "Pooling")) is None
    # inside a module, the producer is found in the net of the open config that uses it
    opened(server, BLOCKS)
    found = definition(server, BLOCKS, at(BLOCKS, 12, "conv,"))
    close(server, BLOCKS)
    assert found == {"uri": BLOCKS.as_uri(), "range": where(11, 9, 11, 112)}


def complete(server: LanguageServer, typed: str) -> list[dict]:
    """The completion items at the `|` in `typed`, the text of net.yaml as typed so far."""
    text, position = cursor(typed)
    change(server, NET, text)
    return server.request("textDocument/completion", {"textDocument": {"uri": NET.as_uri()}, "position": position})


def cursor(text: str) -> tuple[str, dict]:
    before = text[:text.index("|")]
    lines = before.split("\n")
    return text.replace("|", "", 1), {"line": len(lines) - 1, "character": len(lines[-1])}


def labels(items: list[dict]) -> list[str]:
    return [item["label"] for item in items]


def test_completion_offers_modules_after_use_and_the_modules_parameters_inside_with(server, net_open):
    net = NET.read_text()
    assert labels(complete(server, net.replace("{use: blocks.conv_relu,", "{use: bl|,"))) == ["blocks.conv_relu"]
    items = complete(server, net.replace("with: {n: 8}", "with: {n: 8, p|}"))
    assert [(item["label"], item["detail"]) for item in items] == [
        ("n", "`n`: int, required, min 1 — output channels"), ("pad", "`pad`: int, default 1")]
    assert labels(complete(server, net.replace("with: {n: 8}", "with: {n: 8}, |"))) == [
        "use", "name", "with", "bottom", "top", "include", "exclude", "repeat", "when", "share", "doc"]


def test_a_position_past_the_last_line_is_read_as_the_end_of_the_document(server, net_open):
    text = NET.read_text() + "  - {name: x, type: "
    change(server, NET, text)
    end = server.request("textDocument/completion", {"textDocument": {"uri": NET.as_uri()},
                                                      "position": {"line": 8, "character": 20}})
    past = [server.request(method, {"textDocument": {"uri": NET.as_uri()}, "position": {"line": 40, "character": 3},
                                    **extra})
            for method, extra in (("textDocument/completion", {}), ("textDocument/hover", {}),
                                  ("textDocument/definition", {}),
                                  ("textDocument/references", {"context": {"includeDeclaration": True}}))]
    assert "Convolution" in labels(end) and past == [end, None, None, []]


def test_completion_offers_caffe_fields_of_the_layer_and_its_messages_and_enum_values(server, net_open):
    net = NET.read_text()
    assert labels(complete(server, net.replace("pool: MAX", "pool: |"))) == ["MAX", "AVE", "STOCHASTIC"]
    fields = labels(complete(server, net.replace("stride: 2}}", "stride: 2, gl|}}")))
    assert fields[:3] == ["pool", "pad", "pad_h"] and "global_pooling" in fields and "num_output" not in fields
    fields = labels(complete(server, net + "  - name: conv2\n    convolution_param:\n      ker|"))
    assert "kernel_size" in fields and "dilation" in fields and "pool" not in fields
    layer = labels(complete(server, net + "  - {name: x, |}"))
    assert layer[:7] == ["name", "type", "bottom", "top", "in_place", "repeat", "when"]
    assert "convolution_param" in layer and "use" not in layer
    typed = labels(complete(server, net + "  - {name: x, type: Convolution, |}"))
    assert [label for label in typed if label.endswith("_param")] == ["convolution_param"]
    assert "loss_param" in labels(complete(server, net + "  - {name: x, type: SoftmaxWithLoss, |}"))
    types_ = labels(complete(server, net + "  - {name: x, type: |}"))
    assert "Convolution" in types_ and "Pooling" in types_


def test_completion_inside_a_flow_mapping_or_list_not_closed_yet_offers_what_block_style_would(server, net_open):
    net = NET.read_text()
    items = complete(server, net.replace("with: {n: 8}}", "with: {n: 8, |"))
    assert [(item["label"], item["detail"]) for item in items] == [
        ("n", "`n`: int, required, min 1 — output channels"), ("pad", "`pad`: int, default 1")]
    assert labels(complete(server, net.replace("with: {n: 8}}", "with: {|"))) == ["n", "pad"]
    pooling = "pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}"
    fields = labels(complete(server, net.replace(pooling, "pooling_param: {pool: MAX, |")))
    assert fields[:3] == ["pool", "pad", "pad_h"] and "global_pooling" in fields
    assert labels(complete(server, net.replace(pooling, "pooling_param: {pool: |"))) == ["MAX", "AVE", "STOCHASTIC"]
    assert labels(complete(server, net.replace(f"bottom: stem/out, {pooling}", "bottom: [data, |"))) == [
        "data", "stem/out"]
    assert labels(complete(server, net.replace(f"bottom: stem/out, {pooling}", "bottom: |"))) == ["data", "stem/out"]
    assert "Convolution" in labels(complete(server, net + "  - {name: x, type: |"))


def test_completion_in_a_document_broken_elsewhere_reads_the_last_text_that_parsed(server, net_open):
    broken = NET.read_text().replace("dim: [1, 3, 8, 8]}}}", "dim: [1, 3, 8, 8}}}")  # an unclosed `[` above
    assert labels(complete(server, broken + "  - name: x\n    bottom: |")) == ["data", "stem/out", "pool"]
    assert labels(complete(server, broken + "  - {name: x, type: Concat, bottom: [pool, |]}")) == [
        "data", "stem/out", "pool"]
    assert labels(complete(server, broken.replace("with: {n: 8}}", "with: {|}}"))) == ["n", "pad"]
    assert labels(complete(server, broken.replace("use: blocks.conv_relu,", "use: |,"))) == ["blocks.conv_relu"]


def test_completion_offers_the_blobs_written_before_the_layer_in_its_scope(server):
    opened(server, NET)
    assert labels(complete(server, NET.read_text() + "  - {name: x, type: Concat, bottom: [pool, |]}")) == [
        "data", "stem/out", "pool"]
    close(server, NET)
    opened(server, BLOCKS)
    text, position = cursor(BLOCKS.read_text().replace("bottom: conv,", "bottom: |,"))
    change(server, BLOCKS, text)
    items = server.request("textDocument/completion", {"textDocument": {"uri": BLOCKS.as_uri()}, "position": position})
    close(server, BLOCKS)
    assert labels(items) == ["x", "conv"]  # the module's input, then the layer before


def test_completion_inside_an_expression_offers_the_parameters_in_scope_and_the_functions(server):
    opened(server, BLOCKS)
    text, position = cursor(BLOCKS.read_text().replace('"${pad}"', '"${p|"'))
    change(server, BLOCKS, text)
    items = server.request("textDocument/completion", {"textDocument": {"uri": BLOCKS.as_uri()}, "position": position})
    close(server, BLOCKS)
    assert labels(items) == ["n", "pad", "instance", "abs", "float", "int", "len", "letter", "lower", "max", "min",
                             "round", "str", "upper"]


def test_toml_configs_get_hover_and_completion_too(server):
    toml = SERVED / "typed.toml"
    text = ('caffeconf = 1\n\n[[layers]]\nname = "data"\ntype = "Input"\ninput_param = {shape = {dim = [1, 3, 4, 4]}}\n'
            '\n[[layers]]\nname = "pool"\ntype = "Pooling"\npooling_param = {pool = "MAX", kernel_size = 2, stride = 2}\n')
    opened(server, toml, text, "toml")
    hovered = [server.request("textDocument/hover", {"textDocument": {"uri": toml.as_uri()},
                                                     "position": {"line": line, "character": character}})
               for line, character in ((8, 8), (10, 33))]
    assert [found["contents"]["value"] for found in hovered] == [
        "In the TEST phase:\n\n- `pool` (Pooling): pool 1x3x2x2; params 0; MACs 0",
        "**PoolingParameter.kernel_size**: Window size (square). (uint32)"]
    text, position = cursor(text + "bottom = |\n")
    change(server, toml, text)
    assert labels(server.request("textDocument/completion", {"textDocument": {"uri": toml.as_uri()},
                                                             "position": position})) == ["data"]
    close(server, toml)


def test_completed_values_are_inserted_as_the_format_reads_them_back(server):
    toml_head = 'caffeconf = 1\n\n[[layers]]\nname = "001"\ntype = "Input"\ninput_param = {shape = {dim = [1, 3, 4, 4]}}\n'
    yaml_head = "caffeconf: 1\nlayers:\n- {name: '001', type: Input, input_param: {shape: {dim: [1, 3, 4, 4]}}}\n"
    cases = {"toml type": toml_head + '\n[[layers]]\nname = "p"\ntype = |\n',
             "toml bottom": toml_head + '\n[[layers]]\nname = "p"\nbottom = |\n',
             "toml pool": toml_head + '\n[[layers]]\nname = "p"\ntype = "Pooling"\npooling_param = {pool = |}\n',
             "yaml bottom": yaml_head + "- {name: p, bottom: |}\n",
             "yaml pool": yaml_head + "- {name: p, type: Pooling, pooling_param: {pool: |}}\n"}
    inserted = {}
    for case, written in cases.items():
        path = SERVED / ("typed." + case.split()[0])
        text, position = cursor(written)
        opened(server, path, text, case.split()[0])
        items = server.request("textDocument/completion",
                               {"textDocument": {"uri": path.as_uri()}, "position": position})
        close(server, path)
        inserted[case] = {item["label"]: item.get("insertText") for item in items}
    assert inserted["toml type"]["AbsVal"] == '"AbsVal"'
    assert inserted["toml bottom"] == {"001": '"001"'}
    assert inserted["toml pool"] == {"MAX": '"MAX"', "AVE": '"AVE"', "STOCHASTIC": '"STOCHASTIC"'}
    assert inserted["yaml bottom"] == {"001": '"001"'}  # plain 001 would read back as the number 1
    assert inserted["yaml pool"] == {"MAX": "MAX", "AVE": "AVE", "STOCHASTIC": "STOCHASTIC"}


def test_a_prototxt_gets_hover_on_fields_types_and_layers_and_definition_of_bottoms(server):
    prototxt = SERVED / "net.prototxt"
    assert opened(server, prototxt, language="prototxt") == []
    texts = [hover(server, prototxt, at(prototxt, line, needle, 1)) for line, needle in (
        (13, "kernel_size"), (10, "Convolution"), (9, '"conv"'), (6, "input_param"))]
    found = definition(server, prototxt, at(prototxt, 11, '"data"', 1))
    close(server, prototxt)
    assert texts == ["**ConvolutionParameter.kernel_size**: Filter size: one value for all spatial axes, or one per "
                     "axis. (uint32, repeated: a list or one value)",
                     "**Convolution**: 2-D (or N-D) convolution with learned filters.",
                     "In the TEST phase:\n\n- `conv` (Convolution): conv 1x4x6x6; params 112; MACs 3,888",
                     "**LayerParameter.input_param**: LayerParameter.input_param (InputParameter)"]
    assert found == {"uri": prototxt.as_uri(), "range": where(2, 1, 2, 2)}
    server.open(prototxt.as_uri(), prototxt.read_text(), "prototxt")
    symbols = server.request("textDocument/documentSymbol", {"textDocument": {"uri": prototxt.as_uri()}})
    close(server, prototxt)
    assert [(s["name"], s["range"]) for s in symbols] == [("data", where(2, 1, 2, 6)), ("conv", where(8, 1, 8, 6))]


def test_a_prototxt_gets_completion_of_fields_layer_types_and_enum_values(server):
    prototxt = SERVED / "net.prototxt"
    opened(server, prototxt, language="prototxt")
    found = {}
    for name, typed in (("fields", "layer {\n  pooling_param { ker|"), ("types", "layer {\n  type: |"),
                        ("enum", "layer {\n  pooling_param { pool: |")):
        text, position = cursor(prototxt.read_text() + typed)
        change(server, prototxt, text)
        found[name] = server.request("textDocument/completion", {"textDocument": {"uri": prototxt.as_uri()},
                                                                 "position": position})
    close(server, prototxt)
    assert labels(found["fields"])[:4] == ["pool", "pad", "pad_h", "pad_w"] and "num_output" not in labels(found["fields"])
    assert {"label": "Pooling", "insertText": '"Pooling"'}.items() <= next(
        item for item in found["types"] if item["label"] == "Pooling").items()
    assert labels(found["enum"]) == ["MAX", "AVE", "STOCHASTIC"]


def test_references_of_a_module_are_its_uses_in_every_open_config(server):
    other = SERVED / "second.yaml"
    second = NET.read_text().replace("name: stem,", "name: stem2,").replace("stem/out", "stem2/out")
    opened(server, NET)
    opened(server, other, second)
    opened(server, BLOCKS)
    found = server.request("textDocument/references", {"textDocument": {"uri": BLOCKS.as_uri()},
                                                       "position": at(BLOCKS, 3, "conv_relu"),
                                                       "context": {"includeDeclaration": True}})
    from_use = server.request("textDocument/references", {"textDocument": {"uri": NET.as_uri()},
                                                          "position": at(NET, 7, "conv_relu"),
                                                          "context": {"includeDeclaration": False}})
    for path in (NET, other, BLOCKS):
        close(server, path)
    uses = [{"uri": NET.as_uri(), "range": where(7, 11, 7, 27)}, {"uri": other.as_uri(), "range": where(7, 11, 7, 27)}]
    assert found == uses + [{"uri": BLOCKS.as_uri(), "range": where(3, 3, 3, 12)}]
    assert from_use == uses


def test_a_share_key_leads_to_the_other_uses_sharing_under_it(server):
    siamese = ROOT / "configs" / "siamese.yaml"
    opened(server, siamese)
    target = definition(server, siamese, at(siamese, 44, "share", 1))
    found = server.request("textDocument/references", {"textDocument": {"uri": siamese.as_uri()},
                                                       "position": at(siamese, 43, "lenet"),
                                                       "context": {"includeDeclaration": True}})
    close(server, siamese)
    left, right = where(43, 5, 43, 99), where(44, 5, 44, 83)
    assert target == {"uri": siamese.as_uri(), "range": left}
    assert found == [{"uri": siamese.as_uri(), "range": left}, {"uri": siamese.as_uri(), "range": right}]


def test_the_outline_lists_modules_with_their_layers_and_the_top_level_layers(server):
    server.open(BLOCKS.as_uri(), BLOCKS.read_text())
    symbols = server.request("textDocument/documentSymbol", {"textDocument": {"uri": BLOCKS.as_uri()}})
    close(server, BLOCKS)
    assert [(s["name"], s["detail"], [(c["name"], c["detail"]) for c in s["children"]]) for s in symbols] == [
        ("conv_relu", "module", [("conv", "Convolution"), ("relu", "ReLU")])]
    assert symbols[0]["selectionRange"] == where(3, 3, 3, 12)
    assert symbols[0]["children"][1]["range"] == where(12, 9, 12, 57)
    server.open(NET.as_uri(), NET.read_text())
    symbols = server.request("textDocument/documentSymbol", {"textDocument": {"uri": NET.as_uri()}})
    close(server, NET)
    assert [(s["name"], s["detail"]) for s in symbols] == [
        ("data", "Input"), ("stem", "use blocks.conv_relu"), ("pool", "Pooling")]


def test_a_did_you_mean_hint_is_a_quick_fix(server):
    text = NET.read_text().replace("with: {n: 8}", "with: {n: 8, padd: 2}")
    found = opened(server, NET, text)
    actions = server.request("textDocument/codeAction", {
        "textDocument": {"uri": NET.as_uri()}, "range": found[0]["range"], "context": {"diagnostics": found}})
    close(server, NET)
    assert [(a["title"], a["kind"], a["edit"]) for a in actions] == [
        ("Change 'padd' to 'pad'", "quickfix", {"changes": {NET.as_uri(): [{"range": where(7, 54, 7, 58),
                                                                             "newText": "pad"}]}})]


def test_without_pygls_the_command_says_what_to_install():
    program = "import sys; sys.modules['pygls'] = None; from caffeconf.cli import main; sys.exit(main(['lsp']))"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("error: caffeconf lsp needs pygls for the language server (no module named 'pygls'): "
                           "pip install 'caffeconf[lsp]' (see README)\n")


def test_a_debounce_out_of_range_is_refused_at_its_flag():
    done = subprocess.run([sys.executable, "-m", "caffeconf", "lsp", "--debounce", "-1"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2
    assert done.stderr.endswith("caffeconf lsp: error: argument --debounce: must be from 0 to 10000, got -1\n")


def test_with_no_debounce_each_change_is_checked():
    pytest.importorskip("pygls", reason="the language server needs the lsp extra (pip install 'caffeconf[lsp]')")
    eager = LanguageServer([sys.executable, "-m", "caffeconf", "lsp", "--debounce", "0"], {}, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    eager.initialize(ROOT)
    try:
        assert opened(eager, NET) == []
        change(eager, NET, BAD_USE)
        assert [d["message"].split("\n")[0] for d in eager.diagnostics(NET.as_uri())] == [
            "parameter 'n' of module 'conv_relu': must be >= 1, got 0", "module 'conv_relu' has no parameter 'padd'"]
    finally:
        eager.close()
