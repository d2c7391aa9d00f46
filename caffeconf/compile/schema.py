"""The caffeconf format + caffe.proto's descriptors -> a JSON Schema (draft-07) for editors.

Editors (through the YAML language server) use it to flag unknown fields and
wrong types and to offer completion before anything runs. It mirrors what
`caffeconf validate` accepts, as far as a schema can: values that are
`${...}` expressions are accepted wherever a number, bool, enum or list is
expected, since only the resolver can evaluate them.

Each layer's schema is chosen with `if`/`then` on its `type`, so an error
names one layer kind instead of listing every alternative of a large `oneOf`.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ..caffe import descriptions
from ..caffe.facts import FORK_LAYER_TYPES, INT_RANGES, layer_types
from .compiler import SOLVER_NET_FIELDS
from .fields import layer_message, net_message, solver_message, type_name
from .resolve import LAYER_SYNTAX_KEYS
from .syntax import FORMAT_VERSION, INSTANCE, PARAM_KINDS

Schema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"
EXPRESSION = r"^\$\{.*\}$"  # a whole-value `${...}`: its result keeps its type
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
PARAM_TYPE = (r"^\s*(?:list\s*\[\s*(?:{kinds})\s*\]|(?:{kinds}))\s*$"
              .format(kinds="|".join(PARAM_KINDS)))

_DATA = ("transform_param",)
_LOSS = ("loss_param",)
# The `*_param` messages each layer type reads (BVLC's src/caffe/layers/*.cpp).
TYPE_PARAMS: dict[str, tuple[str, ...]] = {
    "AbsVal": (), "Accuracy": ("accuracy_param",), "ArgMax": ("argmax_param",), "BNLL": (),
    "BatchNorm": ("batch_norm_param",), "BatchReindex": (), "Bias": ("bias_param",),
    "Clip": ("clip_param",), "Concat": ("concat_param",),
    "ContrastiveLoss": ("contrastive_loss_param",) + _LOSS, "Convolution": ("convolution_param",),
    "Crop": ("crop_param",), "Data": ("data_param",) + _DATA, "Deconvolution": ("convolution_param",),
    "Dropout": ("dropout_param",), "DummyData": ("dummy_data_param",), "ELU": ("elu_param",),
    "Eltwise": ("eltwise_param",), "Embed": ("embed_param",), "EuclideanLoss": _LOSS,
    "Exp": ("exp_param",), "Filter": (), "Flatten": ("flatten_param",), "HDF5Data": ("hdf5_data_param",),
    "HDF5Output": ("hdf5_output_param",), "HingeLoss": ("hinge_loss_param",) + _LOSS,
    "Im2col": ("convolution_param",), "ImageData": ("image_data_param",) + _DATA,
    "InfogainLoss": ("infogain_loss_param",) + _LOSS, "InnerProduct": ("inner_product_param",),
    "Input": ("input_param",), "LRN": ("lrn_param",), "LSTM": ("recurrent_param",), "LSTMUnit": (),
    "Log": ("log_param",), "MVN": ("mvn_param",), "MemoryData": ("memory_data_param",) + _DATA,
    "MultinomialLogisticLoss": _LOSS, "PReLU": ("prelu_param",), "Parameter": ("parameter_param",),
    "Pooling": ("pooling_param",), "Power": ("power_param",), "Python": ("python_param",),
    "RNN": ("recurrent_param",), "ReLU": ("relu_param",), "Reduction": ("reduction_param",),
    "Reshape": ("reshape_param",), "SPP": ("spp_param",), "Scale": ("scale_param",),
    "Sigmoid": ("sigmoid_param",), "SigmoidCrossEntropyLoss": _LOSS, "Silence": (),
    "Slice": ("slice_param",), "Softmax": ("softmax_param",),
    "SoftmaxWithLoss": ("softmax_param",) + _LOSS, "Split": (), "Swish": ("swish_param",),
    "TanH": ("tanh_param",), "Threshold": ("threshold_param",), "Tile": ("tile_param",),
    "WindowData": ("window_data_param",) + _DATA,
}

def ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


# Alternatives are `anyOf` rather than `if`/`else`: the language server offers enum values
# for completion from `anyOf` branches only, and reports the errors of the closest branch.
# Each branch has its own title (and no description, so hover shows the field's): with
# identical branches the server's hover takes every one for matched and joins them with "||".

def one_or_many(item: Schema) -> Schema:
    """A list of `item`, or one `item` standing for a one-element list."""
    alternatives = item["anyOf"] if list(item) == ["anyOf"] else [item]
    listed = {"title": "list", "type": "array", "items": item}
    return {"anyOf": [listed, *alternatives]}


def typed(schema: Schema, nullable: bool = True) -> Schema:
    """`schema`, or a whole-value `${...}` (or null: the field is left unset)."""
    accepted = {"title": "${...} expression" + (" or null" if nullable else ""),
                "type": ["string", "null"] if nullable else "string", "pattern": EXPRESSION}
    return {"anyOf": [schema, accepted]}


def described(text: str, schema: Schema) -> Schema:
    """`schema` with a description; a `$ref` goes under `allOf`, where draft-07 honours siblings."""
    if "$ref" in schema:
        return {"description": text, "allOf": [schema]}
    return {"description": text, **schema}


# -- caffe.proto fields ---------------------------------------------------------------------------

def scalar_schema(field: FieldDescriptor) -> Schema:
    """One value of a non-message field, as `caffeconf.fields.check_scalar` accepts it."""
    cpp = field.cpp_type
    name = type_name(field)
    if cpp in INT_RANGES:
        low, high, _ = INT_RANGES[cpp]
        return typed({"title": name, "type": "integer", "minimum": low, "maximum": high})
    if cpp in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return typed({"title": name, "type": "number"})
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return typed({"title": name, "type": "boolean"})
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return typed({"title": name, "enum": [value.name for value in field.enum_type.values]})
    return {"title": name, "type": ["string", "null"]}


def field_schema(field: FieldDescriptor) -> Schema:
    """A field's value: repeated fields take a list or one item; null leaves a field unset."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        # null leaves the message unset
        message = {"title": field.message_type.name, "if": {"type": "null"}, "else": ref(field.message_type.name)}
        body = one_or_many(message) if field.is_repeated else message
    elif field.is_repeated:
        body = one_or_many(scalar_schema(field))  # its items accept `${...}`, so the whole does too
    else:
        body = scalar_schema(field)
    return described(field_description(field), body)


def field_description(field: FieldDescriptor) -> str:
    owner = field.containing_type.name
    text = descriptions.FIELDS.get(f"{owner}.{field.name}")
    if text is None and field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        text = descriptions.MESSAGES.get(field.message_type.name)
    kind = type_name(field) + (", repeated: a list or one value" if field.is_repeated else "")
    if field.has_default_value and field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE:
        kind += f"; default {_default_text(field)}"
    return f"{text} ({kind})" if text else f"{owner}.{field.name} ({kind})"


def _default_text(field: FieldDescriptor) -> str:
    value = field.default_value
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def message_schema(descriptor: Descriptor, skip: frozenset[str] = frozenset()) -> Schema:
    text = descriptions.MESSAGES.get(descriptor.name)
    return {"type": "object", **({"description": text} if text is not None else {}),
            "properties": {f.name: field_schema(f) for f in descriptor.fields if f.name not in skip},
            "additionalProperties": False}


def reachable_messages(fields: list[FieldDescriptor]) -> list[Descriptor]:
    """Every message type that `fields` use, transitively, in first-seen order."""
    seen: dict[str, Descriptor] = {}
    pending = list(fields)
    while pending:
        message = pending.pop(0).message_type
        if message is not None and message.name not in seen:
            seen[message.name] = message
            pending.extend(message.fields)
    return list(seen.values())


# -- layers ---------------------------------------------------------------------------------------

_LAYER_ONLY = frozenset(LAYER_SYNTAX_KEYS)


def common_fields() -> tuple[str, ...]:
    """The LayerParameter fields of every type (the dialect's LayerParameter decides)."""
    return tuple(f.name for f in layer_message().fields
                 if f.name not in _LAYER_ONLY and not f.name.endswith("_param"))


def type_specific_fields() -> tuple[str, ...]:
    return tuple(f.name for f in layer_message().fields if f.name.endswith("_param"))


def layer_syntax() -> dict[str, Schema]:
    """The keys every layer has, whatever its type, in the order people write them."""
    blobs = one_or_many({"title": "blob name", "type": "string", "minLength": 1})
    return {
        "name": {"description": descriptions.FORMAT["layer.name"], "type": "string", "minLength": 1},
        "type": described(descriptions.FORMAT["layer.type"], ref("layer_type")),
        "bottom": described(descriptions.FORMAT["layer.bottom"], blobs),
        "top": described(descriptions.FORMAT["layer.top"], blobs),
        "in_place": described(descriptions.FORMAT["layer.in_place"], typed({"title": "bool", "type": "boolean"}, nullable=False)),
        "repeat": described(descriptions.FORMAT["layer.repeat"], ref("repeat")),
        "when": described(descriptions.FORMAT["layer.when"], ref("when")),
    }


def layer_type_schema() -> Schema:
    names = sorted(layer_types())
    return typed({"title": "layer type", "enum": names,
                  "enumDescriptions": [descriptions.LAYER_TYPES.get(n) or f"A layer type of {FORK_LAYER_TYPES[n]}."
                                       for n in names]}, nullable=False)


def layer_properties(params: tuple[str, ...]) -> dict[str, Schema]:
    """Syntax keys, the common LayerParameter fields, then `params`, all as references."""
    keys = tuple(layer_syntax()) + common_fields() + params
    return {key: ref(f"layer.{key}") for key in keys}


def layer_field_definitions() -> dict[str, Schema]:
    return {**{f"layer.{key}": schema for key, schema in layer_syntax().items()},
            **{f"layer.{f.name}": field_schema(f) for f in layer_message().fields if f.name not in _LAYER_ONLY}}


def type_branch(layer_type: str) -> Schema:
    """The schema that applies when `type` is `layer_type`: its fields and no others."""
    return {
        "if": {"required": ["type"], "properties": {"type": {"const": layer_type}}},
        "then": {"properties": layer_properties(TYPE_PARAMS[layer_type]), "additionalProperties": False},
    }


def generic_branch() -> Schema:
    """No literal known `type` (absent, `${...}` or misspelt): any LayerParameter field."""
    properties = layer_properties(type_specific_fields())
    properties["use"] = ref("use.use")  # offered while the entry could still become a module use
    return {
        "if": {"required": ["type"], "properties": {"type": {"enum": sorted(TYPE_PARAMS)}}},
        "else": {"properties": properties, "additionalProperties": False},
    }


def layer_schema() -> Schema:
    return {
        "type": "object",
        "description": descriptions.FORMAT["layer"],
        "required": ["name", "type"],
        "allOf": [type_branch(t) for t in sorted(TYPE_PARAMS)] + [generic_branch()],
    }


# -- the caffeconf format -------------------------------------------------------------------------

def format_described(key: str, schema: Schema) -> Schema:
    return described(descriptions.FORMAT[key], schema)


def parameter_value() -> Schema:
    """A parameter value: anything but a mapping (parameters are scalars or lists of them)."""
    scalar = {"type": ["number", "boolean", "string", "null"]}
    return {"description": descriptions.FORMAT["with.value"],
            "type": ["number", "boolean", "string", "null", "array"], "items": scalar}


def parameter_declaration() -> Schema:
    kind = {"title": "parameter type", "type": "string", "pattern": PARAM_TYPE,
            "examples": list(PARAM_KINDS) + [f"list[{k}]" for k in PARAM_KINDS]}
    properties = {
        "type": format_described("param.type", kind),
        "default": format_described("param.default", {}),
        "min": format_described("param.min", {"type": "number"}),
        "max": format_described("param.max", {"type": "number"}),
        "values": format_described("param.values", {"type": "array", "minItems": 1, "items": {"type": "string"}}),
        "min_len": format_described("param.min_len", {"type": "integer", "minimum": 0}),
        "max_len": format_described("param.max_len", {"type": "integer", "minimum": 0}),
        "doc": format_described("param.doc", {"type": "string"}),
    }
    declaration = {
        "title": "parameter declaration", "type": "object", "required": ["type"], "properties": properties, "additionalProperties": False,
        # an enum names its values
        "if": {"required": ["type"], "properties": {"type": {"pattern": r"\benum\b"}}},
        "then": {"required": ["values"]},
    }
    return format_described("param", {"anyOf": [kind, declaration]})


def parameters() -> Schema:
    return {"type": "object",
            "propertyNames": {"pattern": IDENTIFIER, "not": {"const": INSTANCE}},
            "additionalProperties": ref("param")}


def ports(key: str) -> Schema:
    return format_described(key, one_or_many({"title": "name", "type": "string", "minLength": 1}))


def repeat_schema() -> Schema:
    count = typed({"title": "count", "type": "integer", "minimum": 0}, nullable=False)
    counted = {"title": "count and index variable", "type": "object", "required": ["count"], "properties": {
        "count": format_described("repeat.count", count),
        "var": format_described("repeat.var", typed({"title": "identifier", "type": "string",
                                                      "pattern": IDENTIFIER}, nullable=False)),
    }, "additionalProperties": False}
    return {"anyOf": [counted, *count["anyOf"]]}


def share_schema() -> Schema:
    key = {"title": "share key", "type": "string", "minLength": 1}
    named = {"title": "share key and name template", "type": "object", "required": ["key"], "properties": {
        "key": format_described("share.key", key),
        "name": format_described("share.name", {"type": "string", "minLength": 1}),
    }, "additionalProperties": False}
    return {"anyOf": [named, key]}


def module_schema() -> Schema:
    properties = {
        "doc": format_described("module.doc", {"type": "string"}),
        "params": format_described("module.params", ref("params")),
        "inputs": ports("module.inputs"),
        "outputs": ports("module.outputs"),
        "layers": format_described("module.layers", ref("layers")),
        "qualify": format_described("module.qualify", {"type": "boolean"}),
        "global_params": ports("module.global_params"),
    }
    return {"type": "object", "description": descriptions.FORMAT["module"], "required": ["layers"],
            "properties": properties, "additionalProperties": False}


def module_use_schema() -> Schema:
    blob = {"title": "blob name", "type": "string", "minLength": 1}
    by_port = {"title": "blob names by port", "type": "object", "additionalProperties": blob}
    blobs = {"anyOf": [by_port, *one_or_many(blob)["anyOf"]]}
    rules = layer_field_definitions()
    properties = {
        "use": ref("use.use"),
        "name": format_described("use.name", {"type": "string", "minLength": 1}),
        "with": format_described("use.with", {"type": "object", "propertyNames": {"pattern": IDENTIFIER},
                                              "additionalProperties": parameter_value()}),
        "bottom": format_described("use.bottom", blobs),
        "top": format_described("use.top", blobs),
        "include": format_described("use.include", _without_description(rules["layer.include"])),
        "exclude": format_described("use.exclude", _without_description(rules["layer.exclude"])),
        "repeat": format_described("use.repeat", ref("repeat")),
        "when": format_described("use.when", ref("when")),
        "share": format_described("use.share", ref("share")),
        "doc": format_described("use.doc", {"type": "string"}),
    }
    return {"type": "object", "description": descriptions.FORMAT["use"],
            "required": ["use", "name"],
            "properties": properties, "additionalProperties": False}


def _without_description(schema: Schema) -> Schema:
    return {key: value for key, value in schema.items() if key != "description"}


def document_schema() -> dict[str, Schema]:
    own = {
        "caffeconf": format_described("document.caffeconf", {"const": FORMAT_VERSION}),
        "caffe_proto": format_described("document.caffe_proto", {"type": "string", "minLength": 1}),
        "name": format_described("document.name", {"type": "string"}),
        "separator": format_described("document.separator", {"type": "string", "minLength": 1}),
        "variants": ports("document.variants"),
        "params": format_described("document.params", ref("params")),
        "imports": format_described("document.imports", {
            "type": "object", "propertyNames": {"pattern": IDENTIFIER},
            "additionalProperties": {"type": "string", "minLength": 1}}),
        "modules": format_described("document.modules", {"type": "object", "additionalProperties": ref("module")}),
        "layers": format_described("document.layers", ref("layers")),
        "solver": format_described("document.solver", message_schema(solver_message(), skip=SOLVER_NET_FIELDS)),
    }
    return {**own, **{f.name: field_schema(f) for f in net_fields() if f.name not in own}}


def net_fields() -> list[FieldDescriptor]:
    """NetParameter's fields a document may set (its layers come from `layers:`)."""
    return [f for f in net_message().fields if f.name not in ("layer", "layers")]


def generate() -> Schema:
    """The whole schema as plain data (stable order, so the rendered file diffs cleanly)."""
    definitions: dict[str, Schema] = {
        "params": parameters(),
        "param": parameter_declaration(),
        "module": module_schema(),
        "layers": {"type": "array", "items": ref("layer_or_use")},
        "layer_or_use": {
            "type": "object",
            # an entry with `use:` is a module use; anything else (an empty one too) a layer
            "if": {"type": "object", "required": ["use"]}, "then": ref("module_use"), "else": ref("layer"),
        },
        "module_use": module_use_schema(),
        "use.use": format_described("use.use", {"type": "string", "minLength": 1}),
        "repeat": repeat_schema(),
        "when": typed({"title": "bool", "type": "boolean"}, nullable=False),
        "share": share_schema(),
        "layer": layer_schema(),
        "layer_type": layer_type_schema(),
        **layer_field_definitions(),
    }
    solver_fields = [f for f in solver_message().fields if f.name not in SOLVER_NET_FIELDS]
    for descriptor in reachable_messages(list(layer_message().fields) + net_fields() + solver_fields):
        definitions[descriptor.name] = message_schema(descriptor)
    return {
        "$schema": DRAFT,
        "$comment": "Generated by `caffeconf schema` from the caffeconf format and caffe.proto; do not edit.",
        "description": descriptions.FORMAT["document"],
        "type": "object",
        "required": ["caffeconf"],
        "properties": document_schema(),
        "additionalProperties": False,
        "definitions": definitions,
    }


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"
