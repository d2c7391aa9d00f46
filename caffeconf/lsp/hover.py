"""A position in an open config -> its hover text (markdown): a used module's doc, parameters and
ports; a `with:` key's declaration; a layer's inferred top shapes, parameters and MACs; a Caffe
field's description from caffe.proto; a layer type's description."""

from __future__ import annotations

import os

from ..caffe import descriptions
from ..compile.load import StateChoice, compile_config, load
from ..compile.schema import field_description
from ..compile.syntax import ModuleDecl, ParamDecl
from ..compile.tree import Map, Scalar
from ..errors import CaffeconfError
from ..inspect.measure import layer_costs
from ..inspect.shapes import format_shape, infer_shapes
from ..limits import Limits
from .documents import Config
from .places import Place, caffe_field, source_text

MAX_INSTANCES = 8  # instances of a module's layer listed in its hover


def hover_text(config: Config, place: Place, limits: Limits) -> str | None:
    inside = place.within_entry()
    if inside is None:
        return None
    entry, keys = inside
    if keys[:1] == ("use",):
        module = config.entry_module(place)
        return module_text(module) if module else None
    if keys[:1] == ("with",) and len(keys) == 2 and place.on_key:
        module = config.entry_module(place)
        decl = module.params.get(keys[1]) if module else None
        return f"**{decl.name}**: parameter of module `{module.name}`\n\n{param_line(decl)}" if decl else None
    if keys == ("name",):
        return layer_text(config.document.path, entry, limits)
    if keys == ("type",) and not place.on_key and isinstance(place.node, Scalar):
        text = descriptions.LAYER_TYPES.get(str(place.node.value))
        return f"**{place.node.value}**: {text}" if text else None
    return field_text(keys, "use" if "use" in entry else "layer")


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


def field_text(keys: tuple, kind: str = "layer") -> str | None:
    """The description of the Caffe field that `keys` (from a layer entry, or a module use when
    `kind` is "use") name, or of the format's own key."""
    if len(keys) == 1 and f"{kind}.{keys[0]}" in descriptions.FORMAT:
        return f"**{keys[0]}**: {descriptions.FORMAT[f'{kind}.{keys[0]}']}"
    if kind == "use":
        return None
    field = caffe_field(keys)
    return f"**{field.containing_type.name}.{field.name}**: {field_description(field)}" if field else None


def layer_text(path: str, entry: Map, limits: Limits) -> str | None:
    """Each flat layer this entry wrote: its top shapes, parameter count and MACs, in the deploy
    variant when the config has one (else the TEST phase, as `inspect` shows)."""
    try:
        variants = compile_config(path, limits).variants
        stages = ("deploy",) if "deploy" in variants else None
        net = load(path, StateChoice(stages=stages)).net
        costs = layer_costs(infer_shapes(net))
    except CaffeconfError:
        return "shapes unknown: the net has errors (see the problems list)"
    mine = [cost for cost in costs if cost.layer.origin and entry.span in
            (cost.layer.origin.span, *(use.span for use in cost.layer.origin.uses))]
    if not mine:
        return "not in the net in this phase" + (" (deploy variant)" if stages else "")
    lines = [f"`{cost.layer.name}` ({cost.layer.type}): " + ", ".join(
        f"{top} {format_shape(shape)}" for top, shape in zip(cost.layer.tops, cost.tops))
        + f"; params {_count(cost.params)}; MACs {_count(cost.macs)}" for cost in mine[:MAX_INSTANCES]]
    if len(mine) > MAX_INSTANCES:
        lines.append(f"… and {len(mine) - MAX_INSTANCES} more")
    if len(mine) > 1:
        lines.append(f"in all: {len(mine)} layers; params {_count(_total(c.params for c in mine))}; "
                     f"MACs {_count(_total(c.macs for c in mine))}")
    where = "deploy variant" if stages else "TEST phase"
    return f"In the {where}:\n\n" + "\n".join(f"- {line}" for line in lines)


def _total(values) -> int | None:
    values = list(values)
    return None if None in values else sum(values)


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
