"""caffe.proto against BVLC Caffe: the generated module is fresh, every field and
enum value that ../shared/CAFFE_FACTS.md lists matches our descriptors, the
defaults match the reference, and the real model files parse (or, for fork-only
fields, fail to parse) exactly as they would with BVLC's own caffe.proto."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor

from caffeconf.caffe import caffe_pb2, generate
from conftest import MODELS, SHARED, model_files

FACTS_FILE = SHARED / "CAFFE_FACTS.md"
SCALAR_TYPES = {
    "string": FieldDescriptor.TYPE_STRING,
    "bool": FieldDescriptor.TYPE_BOOL,
    "float": FieldDescriptor.TYPE_FLOAT,
    "int32": FieldDescriptor.TYPE_INT32,
    "int64": FieldDescriptor.TYPE_INT64,
    "uint32": FieldDescriptor.TYPE_UINT32,
}
# Every message and enum the facts file's section (d) must describe.
MESSAGES_IN_FACTS = {
    "NetParameter", "LayerParameter", "NetStateRule", "NetState", "ParamSpec", "BlobShape",
    "V1LayerParameter", "V0LayerParameter", "SolverParameter", "TransformationParameter",
    "InputParameter", "PythonParameter",
}
ENUMS_IN_FACTS = {"Phase", "ParamSpec.DimCheckMode", "V1LayerParameter.DimCheckMode", "V1LayerParameter.LayerType"}


# --- (a) the committed module is what protoc makes of caffe.proto ----------------------------

def test_committed_module_is_fresh():
    assert generate.staleness() is None


def test_check_flag_reports_a_stale_module(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "caffe_pb2.py"
    stale.write_bytes(generate.MODULE_FILE.read_bytes() + b"# edited by hand\n")
    monkeypatch.setattr(generate, "MODULE_FILE", stale)
    assert generate.main(["--check"]) == 1
    assert "caffe_pb2.py is stale (committed gencode 7." in capsys.readouterr().err


def test_check_flag_passes_a_fresh_module():
    assert generate.main(["--check"]) == 0


# --- (b) field names, numbers, labels, types and enum values from CAFFE_FACTS.md (d) ----------

@dataclass(frozen=True)
class FieldFact:
    message: str
    name: str
    number: int
    repeated: bool
    type_text: str | None  # the 3-column tables' type cell, e.g. "Phase, default TEST"


@dataclass(frozen=True)
class EnumFact:
    enum: str  # "Phase" or "Message.Enum"
    name: str
    number: int


def section_d(text: str) -> str:
    start = text.index("## (d)")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def split_blocks(section: str) -> list[tuple[str, str]]:
    """(heading, body) per `**Heading**` paragraph; text before the first heading has heading ''."""
    parts = re.split(r"^\*\*(.+?)\*\*.*$", section, flags=re.MULTILINE)
    blocks = [("", parts[0])]
    blocks += [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]
    return blocks


def tables(body: str) -> list[list[list[str]]]:
    """Markdown tables in body: each a list of rows (header first, separator dropped) of cells."""
    found, current = [], []
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def numbered_cells(table: list[list[str]]) -> list[tuple[int, str, str | None]]:
    """(number, name cell, type cell or None) for each `# | name` column pair of a table."""
    header, rows = table[0], table[1:]
    pairs = [i for i, cell in enumerate(header) if cell == "#"]
    has_type_column = header == ["#", "field", "type"]
    out = []
    for row in rows:
        for i in pairs:
            if row[i]:
                out.append((int(row[i]), row[i + 1], row[2] if has_type_column else None))
    return out


def field_facts(message: str, body: str) -> list[FieldFact]:
    facts = []
    for table in tables(body):
        for number, cell, type_text in numbered_cells(table):
            named = re.match(r"`?(\w+)(\*?)", cell)
            if named:  # "(not used)" rows name nothing
                facts.append(FieldFact(message, named[1], number, bool(named[2]), type_text))
    for name, star, number in re.findall(r"`(\w+)(\*?)` \(\w+\) = (\d+)", body):
        facts.append(FieldFact(message, name, int(number), bool(star), None))
    return facts


def enum_facts(enum: str, body: str) -> list[EnumFact]:
    return [EnumFact(enum, re.match(r"\w+", cell)[0], number)
            for table in tables(body) for number, cell, _ in numbered_cells(table)]


def summary_table_facts(body: str) -> tuple[list[FieldFact], list[EnumFact]]:
    """The `enum | values` and `message | fields` tables: `NAME=number` lists."""
    fields, enums = [], []
    for table in tables(body):
        kind = table[0][0]
        for owner, listing in (row[:2] for row in table[1:]):
            owner = owner.strip("`")
            for name, star, number in re.findall(r"(\w+)(\*?)=(\d+)", listing):
                if kind == "enum":
                    enums.append(EnumFact(owner, name, int(number)))
                elif kind == "message":
                    fields.append(FieldFact(owner, name, int(number), bool(star), None))
    return fields, enums


def read_facts() -> tuple[list[FieldFact], list[EnumFact]]:
    if not FACTS_FILE.is_file():
        pytest.skip("../shared/CAFFE_FACTS.md is absent (it sits beside the project's own CI checkout only)")
    fields, enums = [], []
    for heading, body in split_blocks(section_d(FACTS_FILE.read_text(encoding="utf-8"))):
        name = heading.split()[0] if heading else ""
        if name.endswith(".LayerType"):
            enums += enum_facts(name, body)
            continue
        if name:
            fields += field_facts(name, body)
        more_fields, more_enums = summary_table_facts(body)
        fields += more_fields
        enums += more_enums
    return fields, enums


@pytest.fixture(scope="module")
def facts() -> tuple[list[FieldFact], list[EnumFact]]:
    return read_facts()


def descriptor_of(message: str):
    return caffe_pb2.DESCRIPTOR.message_types_by_name[message]


def enum_descriptor_of(enum: str):
    if "." in enum:
        outer, inner = enum.split(".")
        return descriptor_of(outer).enum_types_by_name[inner]
    return caffe_pb2.DESCRIPTOR.enum_types_by_name[enum]


def type_mismatch(field: FieldDescriptor, type_text: str) -> str | None:
    """Why the field disagrees with a type cell like "int64, packed" or "Phase, default TEST"."""
    words = [word.strip() for word in type_text.split(",")]
    kind = words[0].split()[0]
    if kind in SCALAR_TYPES:
        type_matches = field.type == SCALAR_TYPES[kind]
    else:
        type_matches = (field.message_type or field.enum_type or field).name == kind
    if not type_matches:
        return f"type is not {kind}"
    if "packed" in words and not field.is_packed:
        return "not packed"
    default = next((word[len("default "):] for word in words if word.startswith("default ")), None)
    if default is not None and field.default_value != parse_default(field, default):
        return f"default {field.default_value!r} is not {default}"
    return None


def parse_default(field: FieldDescriptor, text: str):
    if field.enum_type is not None:
        return field.enum_type.values_by_name[text].number
    if field.type == FieldDescriptor.TYPE_BOOL:
        return text == "true"
    if field.type == FieldDescriptor.TYPE_FLOAT:
        return pytest.approx(float(text))
    return int(text)


def field_mismatches(fact: FieldFact) -> list[str]:
    where = f"{fact.message}.{fact.name} = {fact.number}"
    field = descriptor_of(fact.message).fields_by_name.get(fact.name)
    if field is None:
        return [f"{where}: no such field"]
    problems = []
    if field.number != fact.number:
        problems.append(f"{where}: ours is number {field.number}")
    if field.is_repeated != fact.repeated:
        problems.append(f"{where}: repeated is {field.is_repeated}")
    if fact.type_text and (why := type_mismatch(field, fact.type_text)):
        problems.append(f"{where}: {why}")
    return problems


def test_facts_cover_every_listed_message_and_enum(facts):
    fields, enums = facts
    assert {fact.message for fact in fields} == MESSAGES_IN_FACTS
    assert {fact.enum for fact in enums} == ENUMS_IN_FACTS
    assert len([f for f in fields if f.message == "LayerParameter"]) == 11 + 49
    assert len([e for e in enums if e.enum == "V1LayerParameter.LayerType"]) == 40


def test_every_listed_field_matches_our_descriptors(facts):
    fields, _ = facts
    problems = [problem for fact in fields for problem in field_mismatches(fact)]
    assert problems == []


def test_every_listed_enum_value_matches_our_descriptors(facts):
    _, enums = facts
    wrong = [fact for fact in enums
             if enum_descriptor_of(fact.enum).values_by_name.get(fact.name) is None
             or enum_descriptor_of(fact.enum).values_by_name[fact.name].number != fact.number]
    assert wrong == []


def test_layer_parameter_has_no_param_message_beyond_the_listed_ones(facts):
    fields, _ = facts
    listed = {fact.name for fact in fields if fact.message == "LayerParameter"}
    ours = {field.name for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields}
    assert ours == listed


# --- (c) defaults, labels and wire format checked against the reference ------------------------

pb2 = caffe_pb2
DEFAULTS = [
    (pb2.ParamSpec, "lr_mult", 1.0), (pb2.ParamSpec, "decay_mult", 1.0),
    (pb2.ConvolutionParameter, "bias_term", True), (pb2.ConvolutionParameter, "group", 1),
    (pb2.ConvolutionParameter, "axis", 1), (pb2.ConvolutionParameter, "engine", pb2.ConvolutionParameter.DEFAULT),
    (pb2.PoolingParameter, "pool", pb2.PoolingParameter.MAX), (pb2.PoolingParameter, "stride", 1),
    (pb2.PoolingParameter, "round_mode", pb2.PoolingParameter.CEIL),
    (pb2.LRNParameter, "local_size", 5), (pb2.LRNParameter, "alpha", 1.0), (pb2.LRNParameter, "beta", 0.75),
    (pb2.LRNParameter, "k", 1.0), (pb2.LRNParameter, "norm_region", pb2.LRNParameter.ACROSS_CHANNELS),
    (pb2.BatchNormParameter, "moving_average_fraction", 0.999), (pb2.BatchNormParameter, "eps", 1e-5),
    (pb2.NetState, "phase", pb2.TEST), (pb2.NetState, "level", 0),
    (pb2.SolverParameter, "type", "SGD"), (pb2.SolverParameter, "solver_mode", pb2.SolverParameter.GPU),
    (pb2.SolverParameter, "solver_type", pb2.SolverParameter.SGD),
    (pb2.SolverParameter, "snapshot_format", pb2.SolverParameter.BINARYPROTO),
    (pb2.SolverParameter, "regularization_type", "L2"), (pb2.SolverParameter, "random_seed", -1),
    (pb2.SolverParameter, "clip_gradients", -1.0), (pb2.SolverParameter, "delta", 1e-8),
    (pb2.SolverParameter, "momentum2", 0.999), (pb2.SolverParameter, "rms_decay", 0.99),
    (pb2.SolverParameter, "test_initialization", True), (pb2.SolverParameter, "average_loss", 1),
    (pb2.SolverParameter, "iter_size", 1), (pb2.SolverParameter, "layer_wise_reduce", True),
    (pb2.SolverParameter, "snapshot_after_train", True),
    (pb2.DataParameter, "backend", pb2.DataParameter.LEVELDB), (pb2.DataParameter, "prefetch", 4),
    (pb2.FillerParameter, "type", "constant"), (pb2.FillerParameter, "std", 1.0),
    (pb2.FillerParameter, "sparse", -1), (pb2.FillerParameter, "variance_norm", pb2.FillerParameter.FAN_IN),
    (pb2.TransformationParameter, "scale", 1.0), (pb2.EltwiseParameter, "operation", pb2.EltwiseParameter.SUM),
    (pb2.EltwiseParameter, "stable_prod_grad", True), (pb2.DropoutParameter, "dropout_ratio", 0.5),
    (pb2.ConcatParameter, "axis", 1), (pb2.InnerProductParameter, "bias_term", True),
    (pb2.ReshapeParameter, "num_axes", -1), (pb2.FlattenParameter, "end_axis", -1),
    (pb2.CropParameter, "axis", 2), (pb2.SwishParameter, "beta", 1.0), (pb2.ELUParameter, "alpha", 1.0),
    (pb2.LossParameter, "normalization", pb2.LossParameter.VALID), (pb2.InfogainLossParameter, "axis", 1),
    (pb2.ImageDataParameter, "batch_size", 1), (pb2.ImageDataParameter, "is_color", True),
    (pb2.WindowDataParameter, "crop_mode", "warp"), (pb2.WindowDataParameter, "fg_fraction", 0.25),
    (pb2.ScaleParameter, "bias_term", False), (pb2.MVNParameter, "eps", 1e-9),
    (pb2.HingeLossParameter, "norm", pb2.HingeLossParameter.L1),
    (pb2.ReductionParameter, "operation", pb2.ReductionParameter.SUM),
    (pb2.V0LayerParameter, "biasterm", True), (pb2.V0LayerParameter, "det_crop_mode", "warp"),
]


@pytest.mark.parametrize(("message", "field", "expected"), DEFAULTS,
                         ids=[f"{m.DESCRIPTOR.name}.{f}" for m, f, _ in DEFAULTS])
def test_unset_field_reads_as_the_reference_default(message, field, expected):
    value = getattr(message(), field)
    assert value == (pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected)


def test_clip_bounds_are_required_as_in_the_reference():
    # Python's text parser accepts the gap (Caffe's C++ one does not); the message still knows.
    net = text_format.Parse('layer { type: "Clip" clip_param { min: 0 } }', caffe_pb2.NetParameter())
    assert net.FindInitializationErrors() == ["layer[0].clip_param.max"]


def test_blob_dims_and_data_use_the_packed_wire_encoding():
    shape = caffe_pb2.BlobShape(dim=[1, 3])
    assert shape.SerializeToString() == b"\x0a\x02\x01\x03"  # field 1, length-delimited, 2 bytes
    blob = caffe_pb2.BlobProto(data=[1.0])
    assert blob.SerializeToString() == b"\x2a\x04\x00\x00\x80\x3f"  # field 5, one packed float


# --- (c) the shared model files parse as they would with BVLC's caffe.proto ---------------------

def bvlc_failures() -> set[str]:
    """Files the models README marks as failing to parse with BVLC's caffe.proto (fork fields)."""
    readme = (MODELS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+\.prototxt) \|.*\| FAIL\b", readme, flags=re.MULTILINE)
    return set(rows)


def parse_model(path: Path):
    message = caffe_pb2.SolverParameter() if "solver" in path.name else caffe_pb2.NetParameter()
    return text_format.Parse(path.read_text(encoding="utf-8"), message)


def test_readme_names_the_fork_only_files(models):
    assert "densenet-121/DenseNet_121.prototxt" in bvlc_failures()
    assert "mobilenet-ssd/solver.prototxt" in bvlc_failures()


@pytest.mark.parametrize("path", model_files(), ids=lambda p: str(p.relative_to(MODELS)))
def test_shared_model_parses_exactly_when_bvlc_would(path):
    if str(path.relative_to(MODELS)) in bvlc_failures():
        with pytest.raises(text_format.ParseError):
            parse_model(path)
    else:
        assert parse_model(path).ByteSize() > 0
