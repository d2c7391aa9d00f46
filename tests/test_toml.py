"""TOML configs: the same nets as their YAML twins, spans on the right keys and values, located errors."""

from __future__ import annotations

import math
import sys
import time

import pytest

from caffeconf.caffe import serde
from caffeconf.compile.compiler import build, compile_file
from caffeconf.errors import CaffeconfError, SOURCES, render_text
from caffeconf.limits import Limits
from caffeconf.compile.tree import Map, Scalar, Seq
from caffeconf.compile.source import load_tree
from caffeconf.compile.toml_tree import parse_toml

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TOML = ROOT / "tests" / "toml"

TWINS = [
    (TOML / "lenet.toml", ROOT / "configs" / "lenet.yaml"),
    (TOML / "caffenet.toml", ROOT / "configs" / "caffenet.yaml"),
    (TOML / "inception.toml", TOML / "inception.yaml"),
]


@pytest.mark.parametrize("toml_path,yaml_path", TWINS, ids=[t.stem for t, _ in TWINS])
def test_toml_config_compiles_to_the_yaml_net(toml_path, yaml_path):
    ours, theirs = serde.net_to_proto(compile_file(toml_path)), serde.net_to_proto(compile_file(yaml_path))
    assert len(theirs.layer) > 1
    assert ours == theirs


# -- spans


def place_of(path, snippet: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based line and column of the `occurrence`th `snippet` in the file."""
    text = path.read_text()
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(snippet, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def start(node_span) -> tuple[int, int]:
    return node_span.line, node_span.col


def layer(tree: Map, name: str) -> Map:
    return next(entry for entry in tree.values["layers"].items if entry.values["name"].value == name)


def test_key_in_an_array_of_tables_points_at_the_key():
    path = TOML / "lenet.toml"
    conv1 = layer(load_tree(path), "conv1")
    assert start(conv1.keys["bottom"]) == place_of(path, 'bottom = "data"')
    assert start(conv1.values["bottom"].span) == place_of(path, '"data"\nparam')
    assert start(conv1.span) == place_of(path, "[[layers]]", occurrence=2)


def test_table_header_under_an_array_of_tables_belongs_to_its_last_element():
    path = TOML / "lenet.toml"
    conv1 = layer(load_tree(path), "conv1")
    assert start(conv1.keys["convolution_param"]) == place_of(path, "convolution_param]")
    assert start(conv1.values["convolution_param"].span) == place_of(path, "[layers.convolution_param]")
    assert start(conv1.values["convolution_param"].values["num_output"].span) == place_of(path, "20")


def test_value_in_an_inline_table():
    path = TOML / "lenet.toml"
    train = layer(load_tree(path), "train_data").values["with"]
    batch = train.values["batch_size"]
    assert (batch.value, start(batch.span)) == (64, place_of(path, "64"))
    assert (batch.span.end_line, batch.span.end_col) == (batch.span.line, batch.span.col + 2)
    assert start(train.keys["source"]) == place_of(path, 'source = "${train_source}"')


def test_multi_line_array_items():
    path = TOML / "inception.toml"
    widths = layer(load_tree(path), "inception_b").values["with"].values["widths"]
    assert [item.value for item in widths.items] == [16, 24, 8]
    assert [start(item.span) for item in widths.items] == [
        place_of(path, "16,\n"), place_of(path, "24,  #"), place_of(path, "8,\n]")]
    assert start(widths.span) == place_of(path, "[\n  16")
    closing_line = place_of(path, "8,\n]")[0] + 1
    assert (widths.span.end_line, widths.span.end_col) == (closing_line, 2)  # just past the ']'


def test_dotted_keys_locate_each_part():
    path = TOML / "lenet.toml"
    ip2 = layer(load_tree(path), "ip2")
    params = ip2.values["inner_product_param"]
    assert start(ip2.keys["inner_product_param"]) == place_of(path, "inner_product_param.num_output")
    assert start(params.keys["num_output"]) == place_of(path, "num_output = 10")
    assert start(ip2.values["param"].items[1].span) == place_of(path, "{lr_mult = 2},  #")


def test_strings_are_quoted_scalars():
    tree = load_tree(TOML / "lenet.toml")
    assert isinstance(tree.values["name"], Scalar) and tree.values["name"].quoted
    assert not tree.values["caffeconf"].quoted


def source_text(text: str, span) -> str:
    lines = text.split("\n")
    first, last = span.line - 1, span.end_line - 1
    if first == last:
        return lines[first][span.col - 1:span.end_col - 1]
    return "\n".join([lines[first][span.col - 1:], *lines[first + 1:last], lines[last][:span.end_col - 1]])


def assert_spans_hold_their_source(text: str, node) -> None:
    """Each scalar's span reads back as its value, each key's span as its key."""
    if isinstance(node, Scalar):
        read = tomllib.loads("v = " + source_text(text, node.span))["v"]
        assert read == node.value or (math.isnan(read) and math.isnan(node.value)), node
    elif isinstance(node, Seq):
        for item in node.items:
            assert_spans_hold_their_source(text, item)
    else:
        for key, child in node.values.items():
            assert tomllib.loads(source_text(text, node.keys[key]) + " = 0") == {key: 0}
            assert_spans_hold_their_source(text, child)


TRICKY = '''\
# every kind of string, escapes, comments and odd spacing
"quoted key" = 'literal \\ no escape'
esc = "tab\\t \\"quote\\" \\u00e9"  # comment with = and [brackets]
multi = """
one "two" \\
   three""\"""
raw = \'\'\'a 'b' c\'\'\'\'
site . "x.y" . z = [ 1,2 , # a comment
   -3.5e2, +inf, nan,
   [ "nested", 'array' ], { in = { line = true } } ,
]
[ table . sub ]
n = 0x1F
[[ many ]]
k = 1
[many.deep]
k = 2
[[many]]
k = 3
'''


@pytest.mark.parametrize("name", ["lenet.toml", "caffenet.toml", "inception.toml", "tricky"])
def test_every_span_holds_its_source(name):
    text = TRICKY if name == "tricky" else (TOML / name).read_text()
    assert_spans_hold_their_source(text, parse_toml(text, name))


def test_crlf_line_ends():
    tree = parse_toml("a = 1\r\n[t]\r\nb = 'x'\r\n", "crlf.toml")
    assert start(tree.values["t"].values["b"].span) == (3, 5)


# -- errors


def rendered_error(path) -> str:
    result = build(path)
    assert not result.ok
    return render_text(result.diagnostics)


def test_unknown_field_is_rendered_at_its_key_with_its_path():
    assert rendered_error(TOML / "unknown_field.toml") == (
        f"{TOML / 'unknown_field.toml'}:17:37: error: unknown field 'sdt' in convolution_param.weight_filler "
        "(FillerParameter has no such field)\n"
        '    weight_filler = {type = "gaussian", sdt = 0.01}\n'
        "                                        ^~~\n"
        "  hint: did you mean 'std'?\n")


def test_syntax_error_is_located(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('caffeconf = 1\n[[layers]\nname = "x"\n')
    assert rendered_error(path) == (
        f"{path}:2:9: error: invalid TOML: expected ']]' at the end of an array declaration\n"
        "    [[layers]\n"
        "            ^\n")


def test_syntax_error_at_the_end_is_located_there():
    text = 'caffeconf = 1\nlayers = [\n  1,\n'
    with pytest.raises(CaffeconfError) as caught:
        parse_toml(text, "cut.toml")
    assert str(caught.value) == "cut.toml:4:1: error: invalid TOML: invalid value"


def test_duplicate_key_is_located(tmp_path):
    path = tmp_path / "twice.toml"
    path.write_text('caffeconf = 1\n[[layers]]\nname = "a"\nname = "b"\n')
    assert rendered_error(path).startswith(f"{path}:4:") and "cannot overwrite a value" in rendered_error(path)


def test_datetimes_are_refused_with_their_key_path(tmp_path):
    path = tmp_path / "dated.toml"
    path.write_text('caffeconf = 1\n[[layers]]\nname = "a"\nwritten = 2024-01-02 03:04:05Z\n')
    assert rendered_error(path) == (
        f"{path}:4:11: error: layers[0].written: TOML dates and times have no Caffe equivalent\n"
        "    written = 2024-01-02 03:04:05Z\n"
        "              ^~~~~~~~~~~~~~~~~~~~\n"
        "  hint: write it as a string\n")


def test_nesting_limit_names_the_key_path():
    text = "[[layers]]\nshape = [[[1]]]\n"
    SOURCES.register("deep.toml", text)
    with pytest.raises(CaffeconfError) as caught:
        parse_toml(text, "deep.toml", Limits(max_tree_depth=4))
    assert render_text(caught.value.diagnostics) == (
        "deep.toml:2:11: error: nesting deeper than 4 levels at layers[0].shape[0][0]\n"
        "    shape = [[[1]]]\n"
        "              ^\n")
    assert parse_toml(text, "deep.toml", Limits(max_tree_depth=6))  # the 1 is six levels down


@pytest.mark.parametrize("text", ["a" + ".a" * 200_000 + " = 1\n", "x = " + "[" * 200_000, "[" + "t." * 200_000 + "t]"],
                         ids=["dotted-key", "arrays", "header"])
def test_deep_nesting_is_refused_at_once(text):
    began = time.monotonic()
    with pytest.raises(CaffeconfError, match="nesting deeper than 64 levels"):
        parse_toml(text, "hostile.toml")
    assert time.monotonic() - began < 2
