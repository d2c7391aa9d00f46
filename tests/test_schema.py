"""The JSON Schema for editors: fresh, in step with the format, accepting what the tool accepts
and rejecting the mistakes a schema can see (checked with the `jsonschema` package)."""

from __future__ import annotations

import json
import re
import textwrap
import jsonschema
import pytest
import yaml

from caffeconf.caffe import descriptions
from caffeconf.compile import schema
from caffeconf.caffe.facts import LAYER_TYPES
from caffeconf.cli import main
from caffeconf.compile.compiler import build
from caffeconf.compile.tree import Scalar, Seq
from caffeconf.compile.source import load_tree
from caffeconf.compile.repeat import REPEAT_KEYS
from caffeconf.compile.resolve import LAYER_SYNTAX_KEYS, USE_KEYS
from caffeconf.compile.sharing import SHARE_KEYS
from caffeconf.compile.syntax import DOCUMENT_KEYS, MODULE_KEYS, PARAM_KEYS, ModuleUse, written_keys

from conftest import ROOT

SCHEMA_FILE = ROOT / "schemas" / "caffeconf.schema.json"
MODELINE = "# yaml-language-server: $schema=../schemas/caffeconf.schema.json"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
# Every config in the repository that the tool compiles: the schema must accept each.
ACCEPTED = CONFIGS + sorted((ROOT / "tests" / "cases").glob("*/config.yaml")) + sorted((ROOT / "tests" / "draw").glob("*.yaml"))
# Negative cases of tests/errors whose mistake is visible without evaluating anything.
SCHEMA_VISIBLE_ERRORS = (
    "bad_param_type", "enum_without_values", "field_float_into_int", "field_list_into_scalar",
    "field_negative_uint", "field_string_into_int", "field_unknown_enum", "in_place_not_bool",
    "layer_type_is_module", "layer_without_name", "layer_without_type", "missing_version", "module_without_layers",
    "net_field_wrong_type", "non_mapping_document", "param_field_on_layer", "param_message_not_mapping",
    "qualify_not_bool", "reserved_param_instance", "rule_unknown_phase", "unknown_document_key",
    "unknown_field_in_param", "unknown_field_on_layer", "unknown_layer_type", "unknown_module_key",
    "unknown_param_key", "unknown_use_key", "use_without_name", "with_not_mapping", "wrong_version",
)


def plain(node):
    """A located tree as plain data, spans dropped."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [plain(item) for item in node.items]
    return {key: plain(value) for key, value in node.values.items()}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text()))


def leaf_errors(validator, data) -> list[tuple[list[str], str]]:
    """(path, messages) of each failure; the messages include those of every `anyOf` branch."""
    def messages(error) -> str:
        return "\n".join([error.message] + [messages(e) for e in error.context])

    return [([str(p) for p in error.absolute_path], messages(error)) for error in validator.iter_errors(data)]


# -- the file and the command ------------------------------------------------------------------

def test_committed_schema_is_fresh():
    assert SCHEMA_FILE.read_text() == schema.render(schema.generate()), (
        "schemas/caffeconf.schema.json is stale: run `caffeconf schema -o schemas/caffeconf.schema.json`")


def test_schema_is_valid_draft_07():
    document = json.loads(SCHEMA_FILE.read_text())
    assert document["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(document)


def test_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text()


def test_command_writes_the_schema_to_a_file(tmp_path, capsys):
    target = tmp_path / "out.schema.json"
    target.write_text("old")
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text() == SCHEMA_FILE.read_text()
    assert capsys.readouterr().out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["out.schema.json"]  # no temp file left behind


# -- in step with the format and with caffe.proto -------------------------------------------------

def test_layer_type_enum_lists_every_caffe_type():
    layer_type = schema.generate()["definitions"]["layer_type"]["anyOf"][0]
    assert set(layer_type["enum"]) == LAYER_TYPES
    assert len(layer_type["enumDescriptions"]) == len(layer_type["enum"])


def test_type_params_cover_every_layer_type_and_every_param_message():
    assert set(schema.TYPE_PARAMS) == LAYER_TYPES
    used = {name for params in schema.TYPE_PARAMS.values() for name in params}
    assert used == set(schema.type_specific_fields())
    assert set(descriptions.LAYER_TYPES) == LAYER_TYPES


def test_described_fields_exist():
    from caffeconf.caffe import caffe_pb2

    for key in descriptions.FIELDS:
        message, field = key.split(".")
        assert field in getattr(caffe_pb2, message).DESCRIPTOR.fields_by_name, key


def test_key_sets_agree_with_the_format():
    generated = schema.generate()
    definitions = generated["definitions"]
    own_document_keys = set(generated["properties"]) - {f.name for f in schema.net_fields()}
    assert own_document_keys | {"name"} == set(DOCUMENT_KEYS)
    assert set(definitions["module"]["properties"]) == set(MODULE_KEYS)
    assert set(definitions["module_use"]["properties"]) == set(USE_KEYS)
    assert set(USE_KEYS) == written_keys(ModuleUse) | {"doc"}  # what a use reads, and its `doc`
    assert set(schema.layer_syntax()) == set(LAYER_SYNTAX_KEYS)
    declaration = definitions["param"]["anyOf"][1]
    assert tuple(declaration["properties"]) == PARAM_KEYS
    assert set(definitions["repeat"]["anyOf"][0]["properties"]) == set(REPEAT_KEYS)
    assert set(definitions["share"]["anyOf"][0]["properties"]) == set(SHARE_KEYS)


def test_each_type_allows_its_own_params_and_the_common_fields_only():
    branches = schema.generate()["definitions"]["layer"]["allOf"]
    convolution = next(b for b in branches if b["if"]["properties"]["type"].get("const") == "Convolution")
    allowed = set(convolution["then"]["properties"])
    assert "convolution_param" in allowed and "pooling_param" not in allowed
    assert allowed == set(schema.layer_syntax()) | set(schema.common_fields()) | {"convolution_param"}
    assert convolution["then"]["additionalProperties"] is False


def test_every_anyof_branch_is_titled():
    """The language server's hover joins untitled branches into "||" noise (see schema.py)."""
    def branches(node):
        if isinstance(node, dict):
            yield from node.get("anyOf", ())
            for value in node.values():
                yield from branches(value)
        elif isinstance(node, list):
            for value in node:
                yield from branches(value)

    untitled = [b for b in branches(schema.generate()) if "title" not in b]
    assert untitled == []


# -- what it accepts ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_configs_begin_with_the_modeline(path):
    assert path.read_text().splitlines()[0] == MODELINE


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_accepts_every_config_the_tool_compiles(validator, path):
    assert build(path).ok, "not a valid config: the schema has nothing to agree with"
    assert leaf_errors(validator, plain(load_tree(path))) == []
    assert leaf_errors(validator, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("name", SCHEMA_VISIBLE_ERRORS)
def test_schema_rejects_the_visible_mistakes_of_the_error_suite(validator, name):
    path = ROOT / "tests" / "errors" / f"{name}.yaml"
    assert not build(path).ok
    assert leaf_errors(validator, plain(load_tree(path))) != []


def document(layers: str, modules: str = "") -> str:
    """A small config: an Input layer, then `layers` (YAML list items), with optional `modules`."""
    text = "caffeconf: 1\n"
    if modules:
        text += "modules:\n" + textwrap.indent(textwrap.dedent(modules), "  ")
    text += "layers:\n  - {name: data, type: Input, input_param: {shape: {dim: [1, 3, 8, 8]}}}\n"
    return text + textwrap.indent(textwrap.dedent(layers), "  ")


CONV_MODULE = """\
conv:
  params: {n: {type: int, min: 1}, k: {type: "list[int]", default: [3]}}
  inputs: [x]
  layers:
    - {name: c, type: Convolution, convolution_param: {num_output: "${n}", kernel_size: "${k}"}}
"""

# (id, config text, expected (path, message fragment) of the schema's one error, or None: accepted).
# The tool agrees on each, except where the schema is stricter on purpose (STRICTER_THAN_THE_TOOL).
CASES = [
    ("expressions_where_numbers_enums_and_lists_go",
     document("""\
     - {name: pool, type: Pooling, pooling_param: {pool: "${'MAX'}", kernel_size: "${1 + 1}", stride: 2}}
     - {name: relu, type: ReLU, in_place: "${True}"}
     """), None),
    ("null_leaves_fields_unset",
     document("- {name: conv, type: Convolution, convolution_param: {num_output: 4, kernel_size: 3, pad: null,"
              " weight_filler: null}}\n"), None),
    ("repeated_field_as_single_value_or_list",
     document("- {name: conv, type: Convolution, convolution_param: {num_output: 4, kernel_size: [3, 3], stride: 1}}\n"),
     None),
    ("module_use_with_values",
     document("- {use: conv, name: c1, bottom: data, with: {n: 8, k: [3, 3]}, share: weights}\n", CONV_MODULE),
     None),
    ("repeat_with_an_unknown_key",
     document("- {use: conv, name: c1, bottom: data, repeat: {count: 2, step: 1}, with: {n: 8}}\n", CONV_MODULE),
     (["layers", "1", "repeat"], "'step' was unexpected")),
    ("unknown_field_in_convolution_param",
     document("- {name: conv, type: Convolution, convolution_param: {num_output: 4, kernal_size: 3}}\n"),
     (["layers", "1", "convolution_param"], "'kernal_size' was unexpected")),
    ("unknown_pool_method",
     document("- {name: pool, type: Pooling, pooling_param: {pool: MAXX, kernel_size: 2}}\n"),
     (["layers", "1", "pooling_param", "pool"], "'MAXX' is not one of ['MAX', 'AVE', 'STOCHASTIC']")),
    ("param_of_another_layer_type",
     document("- {name: conv, type: Convolution, pooling_param: {pool: MAX}, convolution_param: {num_output: 4}}\n"),
     (["layers", "1"], "'pooling_param' was unexpected")),
    ("with_value_is_a_mapping",
     document("- {use: conv, name: c1, with: {n: {value: 8}}}\n", CONV_MODULE),
     (["layers", "1", "with", "n"], "is not of type")),
    ("with_is_not_a_mapping",
     document("- {use: conv, name: c1, with: 5}\n", CONV_MODULE),
     (["layers", "1", "with"], "5 is not of type 'object'")),
    ("integer_field_given_a_float",
     document("- {name: conv, type: Convolution, convolution_param: {num_output: 4.5, kernel_size: 3}}\n"),
     (["layers", "1", "convolution_param", "num_output"], "4.5 is not of type 'integer'")),
    ("text_around_an_expression_is_a_string",
     document("- {name: conv, type: Convolution, convolution_param: {num_output: 'n${4}', kernel_size: 3}}\n"),
     (["layers", "1", "convolution_param", "num_output"], "does not match")),
]


# Caffe ignores a `*_param` that its layer type does not read; the editor flags it as a likely slip.
STRICTER_THAN_THE_TOOL = {"param_of_another_layer_type"}


@pytest.mark.parametrize("name, text, expected", CASES, ids=[c[0] for c in CASES])
def test_schema_and_tool_agree_on_small_configs(validator, tmp_path, name, text, expected):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    errors = leaf_errors(validator, plain(load_tree(path)))
    assert build(path).ok == (expected is None or name in STRICTER_THAN_THE_TOOL)
    if expected is None:
        assert errors == []
    else:
        [(where, messages)] = errors
        assert where == expected[0]
        assert expected[1] in messages


# -- `caffeconf validate --format json`, the editor-facing form of the tool's own checks ------------

def test_validate_json_locates_each_diagnostic(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(document("- {name: pool, type: Pooling, pooling_param: {pool: MAXX, kernel_size: 2}}\n"))
    assert main(["validate", "--format", "json", str(path)]) == 1
    [diagnostic] = json.loads(capsys.readouterr().out)["diagnostics"]
    assert diagnostic["severity"] == "error"
    assert diagnostic["message"].startswith("pooling_param.pool expects one of MAX, AVE, STOCHASTIC")
    assert diagnostic["location"]["line"] == 4
    assert diagnostic["location"]["column"] == len("  - {name: pool, type: Pooling, pooling_param: {pool: ") + 1


def test_validate_json_is_empty_for_a_clean_config(capsys):
    assert main(["validate", "--format", "json", str(ROOT / "configs" / "lenet.yaml")]) == 0
    assert json.loads(capsys.readouterr().out) == {"diagnostics": []}


# -- the pre-commit hook ---------------------------------------------------------------------------

def test_pre_commit_hook_validates_configs_only():
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "caffeconf-validate"
    assert hook["entry"] == "caffeconf validate"
    files = re.compile(hook["files"])
    assert all(files.search(str(path.relative_to(ROOT))) for path in CONFIGS)
    assert not files.search(".github/workflows/ci.yml")
    assert not files.search(".pre-commit-hooks.yaml")
    # pre-commit runs the entry with the staged files as arguments
    assert main([*hook["entry"].split()[1:], *map(str, CONFIGS)]) == 0
