"""Located tree -> surface declarations: the document, its modules, their typed parameters, and
their entries (`LayerEntry`, `ModuleUse`), each made once per declaration.

An entry holds the nodes of its keys as written: their values can only be checked once `${...}`
is evaluated per instance, which the resolver does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import cache, cached_property
from typing import Any, Union

from ..errors import CaffeconfError, DiagnosticList, Span, did_you_mean
from .tree import Map, Node, Scalar, Seq

FORMAT_VERSION = 1
PARAM_KINDS = ("int", "float", "bool", "string", "enum")
DOCUMENT_KEYS = ("caffeconf", "caffe_proto", "name", "separator", "variants", "params", "imports", "modules", "layers", "solver")
MODULE_KEYS = ("doc", "params", "inputs", "outputs", "layers", "qualify", "global_params")
PARAM_KEYS = ("type", "default", "min", "max", "values", "min_len", "max_len", "doc")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INSTANCE = "instance"  # the builtin parameter holding a use's instance name


@dataclass(frozen=True)
class ParamDecl:
    """A typed module parameter; no default means it is required."""

    name: str
    kind: str  # one of PARAM_KINDS
    is_list: bool
    span: Span
    default: Node | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    min_len: int | None = None
    max_len: int | None = None
    doc: str = ""

    @property
    def type_text(self) -> str:
        return f"list[{self.kind}]" if self.is_list else self.kind


@dataclass(frozen=True)
class Port:
    """A module input or output: a blob name in the module's scope (it may use `${...}`)."""

    name: str
    span: Span
    node: Scalar


@dataclass(frozen=True)
class _Written:
    """What any entry may write: its name, blobs, `repeat` and `when`; `node` is the whole entry."""

    node: Map
    name: Node | None
    bottom: Node | None
    top: Node | None
    repeat: Node | None
    when: Node | None

    @property
    def span(self) -> Span:
        return self.node.span


@dataclass(frozen=True)
class LayerEntry(_Written):
    """A Caffe layer as written (`node` holds its Caffe fields too)."""

    type: Node | None
    in_place: Node | None


@dataclass(frozen=True)
class ModuleUse(_Written):
    """A `use:` of a module as written (`with:` is `arguments`)."""

    use: Node
    arguments: Node | None
    include: Node | None
    exclude: Node | None
    share: Node | None


Entry = Union[LayerEntry, ModuleUse]


@cache
def _written_keys(kind: type) -> dict[str, str]:
    """Field of an entry kind -> the key it is written under."""
    return {f.name: "with" if f.name == "arguments" else f.name for f in fields(kind) if f.name != "node"}


def written_keys(kind: type) -> frozenset[str]:
    """The keys an entry of this kind reads for itself (a layer's other keys are its Caffe fields)."""
    return frozenset(_written_keys(kind).values())


def parse_entry(node: Map) -> Entry:
    """The entry a layer mapping declares: a module use when it has `use:`, else a layer."""
    kind = ModuleUse if "use" in node else LayerEntry
    return kind(node, **{name: node.get(key) for name, key in _written_keys(kind).items()})


class _Declares:
    """A module or the document: `layers` are its mappings as written (tools point into them),
    `entries` what they declare, made once."""

    layers: tuple[Map, ...]

    @cached_property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(map(parse_entry, self.layers))


@dataclass(frozen=True)
class ModuleDecl(_Declares):
    name: str
    span: Span
    path: str
    params: dict[str, ParamDecl]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    layers: tuple[Map, ...]
    qualify: bool = True
    doc: str = ""
    global_params: frozenset[str] = frozenset()  # `param` names left unqualified inside the module
    refused_params: frozenset[str] = frozenset()  # declared but refused: reported once, at the declaration


@dataclass(frozen=True)
class Document(_Declares):
    path: str
    span: Span
    name: Node | None
    separator: str
    params: dict[str, ParamDecl]
    modules: dict[str, ModuleDecl]
    imports: Node | None
    layers: tuple[Map, ...]
    net_fields: dict[str, Node]  # other NetParameter fields (force_backward, state, ...)
    variants: dict[str, Span] = field(default_factory=dict)  # stages decided at compile time (`compile --stage NAME`)
    solver: Node | None = None  # SolverParameter fields for training this net (`caffeconf train`)
    refused_params: frozenset[str] = frozenset()  # declared but refused: reported once, at the declaration


def check_keys(node: Map, allowed: tuple[str, ...], what: str, diags: DiagnosticList) -> bool:
    """Report each key of `node` not in `allowed`; True when there was none."""
    unknown = [key for key in node.values if key not in allowed]
    for key in unknown:
        diags.error(node.keys[key], f"unknown key '{key}' in {what}",
                    hint=did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}")
    return not unknown


def _text(node: Node | None, what: str, diags: DiagnosticList) -> str | None:
    if node is None:
        return None
    if isinstance(node, Scalar) and isinstance(node.value, str):
        return node.value
    diags.error(node.span, f"{what} must be a string")
    return None


def _layers(node: Node | None, what: str, diags: DiagnosticList) -> tuple[Map, ...]:
    if node is None:
        return ()
    if not isinstance(node, Seq):
        diags.error(node.span, f"{what} must be a list of layers")
        return ()
    for item in node.items:
        if not isinstance(item, Map):
            diags.error(item.span, "a layer must be a mapping (a Caffe layer or a `use:` of a module)")
    return tuple(item for item in node.items if isinstance(item, Map))


def _ports(node: Node | None, what: str, diags: DiagnosticList) -> tuple[Port, ...]:
    if node is None:
        return ()
    items = node.items if isinstance(node, Seq) else (node,)
    ports, seen = [], set()
    for item in items:
        if not (isinstance(item, Scalar) and isinstance(item.value, str) and item.value):
            diags.error(item.span, f"{what} must be blob names")
        elif item.value in seen:
            diags.error(item.span, f"{what} names '{item.value}' twice")
        else:
            seen.add(item.value)
            ports.append(Port(item.value, item.span, item))
    return tuple(ports)


def _number(node: Node | None, what: str, diags: DiagnosticList, integer: bool = False) -> Any:
    if node is None:
        return None
    value = node.value if isinstance(node, Scalar) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        diags.error(node.span, f"{what} must be {'an integer' if integer else 'a number'}")
        return None
    return value


def parse_param(name: str, key_span: Span, node: Node, diags: DiagnosticList) -> ParamDecl | None:
    """`n: int` or `n: {type: int, default: 3, min: 1, ...}`."""
    if not NAME.match(name):
        diags.error(key_span, f"parameter name '{name}' is not an identifier")
        return None
    if name == INSTANCE:
        diags.error(key_span, f"'{INSTANCE}' is reserved: it is always the instance name of the module use")
        return None
    if isinstance(node, Scalar):
        node = Map({"type": node}, {"type": node.span}, node.span)
    if not isinstance(node, Map):
        diags.error(node.span, f"parameter '{name}' must be a type name or a mapping with `type:`")
        return None
    check_keys(node, PARAM_KEYS, f"parameter '{name}'", diags)
    type_node = node.get("type")
    type_text = _text(type_node, "`type`", diags) if type_node else None
    if type_text is None:
        diags.error(node.span if type_node is None else type_node.span, f"parameter '{name}' needs a `type`",
                    hint=f"one of {', '.join(PARAM_KINDS)}, or list[...] of them")
        return None
    match = re.fullmatch(r"\s*list\s*\[\s*(\w+)\s*\]\s*|\s*(\w+)\s*", type_text)
    kind = match and (match.group(1) or match.group(2))
    if kind not in PARAM_KINDS:
        diags.error(type_node.span, f"unknown parameter type '{type_text}'",
                    hint=did_you_mean(type_text, PARAM_KINDS) or
                    f"one of {', '.join(PARAM_KINDS)}, or list[...] of them")
        return None
    _refuse_misplaced(name, node, kind, bool(match.group(1)), diags)
    values = _enum_values(name, node, diags) if kind == "enum" else ()
    if values is None:
        return None
    return ParamDecl(
        name=name, kind=kind, is_list=bool(match.group(1)), span=key_span, default=node.get("default"),
        minimum=_number(node.get("min"), "`min`", diags) if kind in ("int", "float") else None,
        maximum=_number(node.get("max"), "`max`", diags) if kind in ("int", "float") else None,
        values=values, min_len=_number(node.get("min_len"), "`min_len`", diags, integer=True),
        max_len=_number(node.get("max_len"), "`max_len`", diags, integer=True),
        doc=_text(node.get("doc"), "`doc`", diags) or "",
    )


def _enum_values(name: str, node: Map, diags: DiagnosticList) -> tuple[str, ...] | None:
    values_node = node.get("values")
    if not isinstance(values_node, Seq) or not values_node.items or not all(
            isinstance(v, Scalar) and isinstance(v.value, str) for v in values_node.items):
        diags.error((values_node or node).span, f"enum parameter '{name}' needs `values:`, a list of names")
        return None
    return tuple(v.value for v in values_node.items)


def _refuse_misplaced(name: str, node: Map, kind: str, is_list: bool, diags: DiagnosticList) -> None:
    """Bounds and values only mean something for some kinds: say so rather than ignore them."""
    misplaced = {
        "min": kind not in ("int", "float"), "max": kind not in ("int", "float"),
        "min_len": not is_list, "max_len": not is_list, "values": kind != "enum",
    }
    for key, wrong in misplaced.items():
        if wrong and key in node:
            diags.error(node.keys[key], f"`{key}` does not apply to parameter '{name}' of type "
                        f"{'list[' + kind + ']' if is_list else kind}")


def parse_params(node: Node | None, diags: DiagnosticList) -> dict[str, ParamDecl]:
    if node is None:
        return {}
    if not isinstance(node, Map):
        diags.error(node.span, "`params` must map parameter names to their types")
        return {}
    return {name: decl for name, value in node.values.items()
            if (decl := parse_param(name, node.keys[name], value, diags))}


def _refused(node: Node | None, accepted: dict[str, ParamDecl]) -> frozenset[str]:
    return frozenset(node.values) - set(accepted) if isinstance(node, Map) else frozenset()


def parse_module(name: str, key_span: Span, node: Node, path: str, diags: DiagnosticList) -> ModuleDecl | None:
    if not isinstance(node, Map):
        diags.error(node.span, f"module '{name}' must be a mapping (params, inputs, outputs, layers)")
        return None
    check_keys(node, MODULE_KEYS, f"module '{name}'", diags)
    qualify = node.get("qualify")
    if qualify is not None and not (isinstance(qualify, Scalar) and isinstance(qualify.value, bool)):
        diags.error(qualify.span, "`qualify` must be true or false")
    if node.get("layers") is None:
        diags.error(key_span, f"module '{name}' has no `layers`")
    params = parse_params(node.get("params"), diags)
    return ModuleDecl(
        name=name, span=key_span, path=path, params=params, refused_params=_refused(node.get("params"), params),
        inputs=_ports(node.get("inputs"), "`inputs`", diags),
        outputs=_ports(node.get("outputs"), "`outputs`", diags),
        layers=_layers(node.get("layers"), f"module '{name}' `layers`", diags),
        qualify=not (isinstance(qualify, Scalar) and qualify.value is False),
        doc=_text(node.get("doc"), "`doc`", diags) or "",
        global_params=frozenset(p.name for p in _ports(node.get("global_params"), "`global_params`", diags)),
    )


def parse_document(root: Node, path: str, diags: DiagnosticList, net_field_names: frozenset[str]) -> Document:
    """The surface document; structural problems go to `diags`."""
    if not isinstance(root, Map):
        raise CaffeconfError.at(root.span, "a caffeconf document must be a mapping")
    allowed = DOCUMENT_KEYS + tuple(sorted(net_field_names - set(DOCUMENT_KEYS)))
    check_keys(root, allowed, "the document", diags)
    version = root.get("caffeconf")
    if version is None:
        diags.error(root.span, "missing format version: add `caffeconf: 1` at the top")
    elif not (isinstance(version, Scalar) and type(version.value) is int):  # true and 1.0 equal 1 in Python
        diags.error(version.span, f"the format version must be the integer {FORMAT_VERSION}")
    elif version.value != FORMAT_VERSION:
        diags.error(version.span, f"unsupported format version {version.value}; "
                    f"this caffeconf reads version {FORMAT_VERSION}")
    modules: dict[str, ModuleDecl] = {}
    modules_node = root.get("modules")
    if isinstance(modules_node, Map):
        modules = {name: module for name, node in modules_node.values.items()
                   if (module := parse_module(name, modules_node.keys[name], node, path, diags))}
    elif modules_node is not None:
        diags.error(modules_node.span, "`modules` must map module names to modules")
    separator = _text(root.get("separator"), "`separator`", diags) or "/"
    params = parse_params(root.get("params"), diags)
    return Document(
        path=path, span=root.span, name=root.get("name"), separator=separator,
        params=params, refused_params=_refused(root.get("params"), params), modules=modules, imports=root.get("imports"),
        layers=_layers(root.get("layers"), "`layers`", diags),
        net_fields={k: v for k, v in root.values.items() if k in net_field_names and k != "name"},
        variants={p.name: p.span for p in _ports(root.get("variants"), "`variants`", diags)},
        solver=root.get("solver"),
    )
