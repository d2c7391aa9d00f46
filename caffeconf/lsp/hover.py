"""A position in an open config -> its hover text (markdown): a used module's doc, parameters and
ports; a `with:` key's declaration; a layer's inferred top shapes, parameters and MACs; a Caffe
field's description from caffe.proto, with the value of its `${...}` in each instance; a layer
type's description. A module's layers are looked for in the nets of the open configs importing it."""

from __future__ import annotations

import os

from google.protobuf.descriptor import Descriptor

from ..caffe import descriptions
from ..caffe.dialect import use
from ..compile.compiler import parse_config
from ..compile.load import StateChoice, compile_config, load
from ..compile.resolve import Resolver
from ..compile.fields import net_message
from ..compile.schema import field_description
from ..compile.source import is_config
from ..compile.syntax import ModuleDecl, ParamDecl
from ..compile.tree import Map, Scalar, Seq
from ..errors import CaffeconfError, DiagnosticList, Span
from ..commands.inspect import format_count
from ..inspect.measure import layer_costs, net_totals
from ..inspect.shapes import format_shape, infer_shapes
from ..limits import Limits
from .documents import Config, file_place, written_by
from .places import Place, caffe_field, source_text
from .prototxt import ProtoPlace

MAX_INSTANCES = 8  # instances of a module's layer listed in its hover


def hover_text(config: Config, place: Place, limits: Limits, importers: tuple[str, ...] = ()) -> str | None:
    """The hover at `place`; `importers` are the open configs that import this file, whose nets
    hold the instances of its modules."""
    roots = [config.document.path, *importers]
    inside = place.within_entry()
    if inside is None:
        return None
    entry, keys = inside
    if keys[:1] == ("use",):
        module = config.entry_module(place)
        return module_text(module) if module else None
    if keys[:1] == ("with",) and len(keys) >= 2:
        module = config.entry_module(place)
        decl = module.params.get(keys[1]) if module else None
        declared = f"**{decl.name}**: parameter of module `{module.name}`\n\n{param_line(decl)}" if decl else None
        if not _is_template(place):
            return declared if place.on_key and len(keys) == 2 else None
        return "\n\n".join(filter(None, (declared, use_values(roots, entry, keys, limits))))
    if "use" in entry and _is_template(place) and keys[0] in ("bottom", "top"):
        return use_values(roots, entry, keys, limits)
    if _is_template(place) and caffe_field(keys) is not None:
        return f"{field_text(keys)}\n\n{expression_values(roots, entry, keys, limits)}"
    if keys == ("name",):
        return layer_text(roots, entry.span, limits)
    if keys == ("type",) and not place.on_key and isinstance(place.node, Scalar):
        return type_text(str(place.node.value))
    return field_text(keys, "use" if "use" in entry else "layer")


def proto_hover_text(path: str, place: ProtoPlace, limits: Limits) -> str | None:
    """The hover at `place` in the prototxt `path`: a field's description, a layer type's, a
    layer's shapes and costs (on its name)."""
    if not place.is_value:
        return field_text((*place.blocks, place.word), start=net_message())
    if place.blocks == ("layer",) and place.field == "type":
        return type_text(place.word)
    if place.blocks == ("layer",) and place.field == "name" and place.top:
        return layer_text([path], Span(path, *place.top), limits)
    return None


def type_text(name: str) -> str | None:
    text = descriptions.LAYER_TYPES.get(name)
    return f"**{name}**: {text}" if text else None


def _is_template(place: Place) -> bool:
    node = place.node
    return not place.on_key and isinstance(node, Scalar) and isinstance(node.value, str) and "${" in node.value


def expression_values(roots: list[str], entry: Map, keys: tuple, limits: Limits) -> str:
    """What a field written with `${...}` came to in each flat layer the entry wrote, in the nets
    of `roots` (the file itself, then the open configs importing it)."""
    lines = []
    for root in roots:
        result = compile_config(root, limits)
        for layer in result.net.layers if result.ok else ():
            if written_by(layer, entry.span):
                lines.append(f"- `{layer.name}`: {_plain(_written_value(layer, keys))}")
    return _each_instance(lines) or "values unknown: no net that compiles uses it"


def _each_instance(lines: list[str]) -> str | None:
    """`- instance: value` lines under a heading, the first MAX_INSTANCES of them."""
    shown = lines[:MAX_INSTANCES] + ([f"… and {len(lines) - MAX_INSTANCES} more"] if len(lines) > MAX_INSTANCES else [])
    return "In each instance:\n\n" + "\n".join(shown) if lines else None


def use_values(roots: list[str], entry: Map, keys: tuple, limits: Limits) -> str:
    """What the scalar at `keys` in the module use `entry` (a `with:` value, a port...) came to
    in each instance of the use, in the nets of `roots`, as the resolver evaluated it there."""
    lines = []
    for root in roots:
        diags = DiagnosticList()
        try:
            with use(None):  # in the dialect the config names, as a check reads it
                document, library = parse_config(root, limits, diags)
                recorder = _UseRecorder(document, library, diags, limits)
                recorder.watch(entry.span, keys)
                recorder.run()
        except CaffeconfError:
            continue  # a file that does not parse has no instances
        lines += recorder.seen
    return _each_instance(lines) or "values unknown: no open config uses it"


class _UseRecorder(Resolver):
    """The resolver, noting what one scalar of one module use comes to in each of its instances
    (evaluated in the caller's scope, as the resolver binds the use)."""

    def watch(self, span: Span, keys: tuple) -> None:
        self.watched, self.keys, self.seen = file_place(span), keys, []

    def instantiate(self, module, instance, entry, scope, prev):
        node = _node_at(entry.node, self.keys) if file_place(entry.span) == self.watched else None
        if node is not None:
            try:
                value = _plain(self.evaluator.value(node, scope.values))
            except CaffeconfError as error:
                value = f"error: {error.diagnostics[0].message}"
            self.seen.append(f"- `{scope.qualify(instance)}`: {value}")
        return super().instantiate(module, instance, entry, scope, prev)


def _node_at(node, keys: tuple):
    for key in keys:
        node = node.items[key] if isinstance(node, Seq) and isinstance(key, int) and key < len(node.items) else \
            node.get(key) if isinstance(node, Map) and isinstance(key, str) else None
    return node


def _written_value(layer, keys: tuple):
    """The flat layer's value of the field at `keys`: its name, blobs (qualified) or a Caffe field."""
    return _field_value({**layer.fields, "name": layer.name, "top": list(layer.tops), "bottom": list(layer.bottoms)},
                        keys)


def _field_value(value, keys: tuple):
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else \
            value[key] if isinstance(value, list) and isinstance(key, int) and key < len(value) else None
    return value


def _plain(value) -> str:
    """A value as written in a config (lists of one repeated value shown as that value)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return "true" if value is True else "false" if value is False else "unset" if value is None else str(value)


def module_text(module: ModuleDecl) -> str:
    lines = [f"**module {module.name}** ({os.path.basename(module.path)}:{module.span.line})"]
    if module.doc:
        lines += ["", module.doc]
    if module.params:
        lines += ["", "Parameters:"] + [f"- {param_line(decl)}" for decl in module.params.values()]
    ports = [f"{what}: " + ", ".join(f"`{port.name}`" for port in ports)
             for what, ports in (("inputs", module.inputs), ("outputs", module.outputs)) if ports]
    if ports:
        lines += ["", " · ".join(ports)]
    return "\n".join(lines)


def param_line(decl: ParamDecl) -> str:
    """`n`: int, required, min 1 — output channels."""
    parts = [f"`{decl.name}`: {decl.type_text}", f"default {source_text(decl.default)}" if decl.default else "required"]
    parts += [f"{what} {value:g}" for what, value in (("min", decl.minimum), ("max", decl.maximum)) if value is not None]
    parts += [f"one of {', '.join(decl.values)}"] if decl.values else []
    parts += [f"{what} {value}" for what, value in (("min_len", decl.min_len), ("max_len", decl.max_len))
              if value is not None]
    return ", ".join(parts) + (f" — {decl.doc}" if decl.doc else "")


def field_text(keys: tuple, kind: str = "layer", start: Descriptor | None = None) -> str | None:
    """The description of the Caffe field that `keys` (from a layer entry, a module use when
    `kind` is "use", or the message `start`) name, or of the format's own key."""
    if start is None and len(keys) == 1 and f"{kind}.{keys[0]}" in descriptions.FORMAT:
        return f"**{keys[0]}**: {descriptions.FORMAT[f'{kind}.{keys[0]}']}"
    if kind == "use":
        return None
    field = caffe_field(keys, start)
    return f"**{field.containing_type.name}.{field.name}**: {field_description(field)}" if field else None


def layer_text(roots: list[str], span: Span, limits: Limits) -> str:
    """Each flat layer the entry at `span` wrote, in the net of each file in `roots` (the file
    itself, then the open configs importing it): top shapes, parameter count and MACs, in the
    deploy variant when the config has one (else the TEST phase, as `inspect` shows)."""
    sections = [section for root in roots if (section := _layer_section(root, roots[0], span, limits))]
    return "\n\n".join(sections) or "not in the net in this phase (nor in the open configs importing it)"


def _layer_section(root: str, own: str, span: Span, limits: Limits) -> str | None:
    of = "" if root == own else f" of {os.path.basename(root)}"
    try:
        variants = compile_config(root, limits).variants if is_config(root) else ()
        stages = ("deploy",) if "deploy" in variants else None
        costs = layer_costs(infer_shapes(load(root, StateChoice(stages=stages)).net))
    except CaffeconfError:
        return f"shapes unknown{of}: the net has errors (see the problems list)"
    mine = [cost for cost in costs if written_by(cost.layer, span, uses=True)]
    if not mine:
        return None
    lines = [f"`{cost.layer.name}` ({cost.layer.type}): " + ", ".join(
        f"{top} {format_shape(shape)}" for top, shape in zip(cost.layer.tops, cost.tops))
        + f"; params {format_count(cost.params)}; MACs {format_count(cost.macs)}" for cost in mine[:MAX_INSTANCES]]
    if len(mine) > MAX_INSTANCES:
        lines.append(f"… and {len(mine) - MAX_INSTANCES} more")
    if len(mine) > 1:
        params, macs, _ = net_totals(mine)
        lines.append(f"in all: {len(mine)} layers; params {format_count(params)}; MACs {format_count(macs)}")
    where = "deploy variant" if stages else "TEST phase"
    return f"In the {where}{of}:\n\n" + "\n".join(f"- {line}" for line in lines)
