"""An imported net -> a Python script that builds it with `caffeconf.netspec`, one call per layer
(`caffeconf import --python`), as pycaffe's NetSpec users write nets."""

from __future__ import annotations

from typing import Any

from ..compile.fields import param_message_of
from ..ir import Layer
from .document import Imported, compact_fields


MAX_LINE = 110


def to_python(imported: Imported, source_name: str) -> str:
    """The script: `n = cs.Net(...)`, a line per layer, and `net = n.to_net()`; run, it prints the prototxt."""
    net_fields = "".join(f", {key}={_value(value)}" for key, value in compact_fields(imported.net_fields).items())
    lines = [f'"""Imported from {source_name} by `caffeconf import --python`."""', "",
             "from caffeconf import netspec as cs", "",
             f"n = cs.Net({imported.message.name!r}{net_fields})"]
    lines += [_layer_line(layer) for layer in imported.layers]
    lines += ["net = n.to_net()", "", 'if __name__ == "__main__":', "    import sys", "",
              "    sys.stdout.write(net.to_prototxt())", ""]
    return "\n".join(lines)


def _layer_line(layer: Layer) -> str:
    """`n[top] = cs.Type(n[bottom], ..., fields)`: the layer's name is its first top's unless given,
    and a layer whose tops are its bottoms is `in_place=True`."""
    tops, bottoms = list(layer.tops), list(layer.bottoms)
    arguments = [f"n[{bottom!r}]" for bottom in bottoms]
    in_place = bool(tops) and tops == bottoms
    if in_place:
        arguments.append("in_place=True")
    elif len(tops) != 1:
        arguments.append(f"ntop={len(tops)}")
    if tops and not in_place and layer.name != tops[0]:
        arguments.append(f"name={layer.name!r}")
    arguments += [f"{key}={_value(value)}" for key, value in _keywords(layer).items()]
    targets = [layer.name] if in_place or not tops else tops
    head = f"{', '.join(f'n[{target!r}]' for target in targets)} = cs.{layer.type}("
    if len(head) + sum(len(a) + 2 for a in arguments) <= MAX_LINE:
        return head + ", ".join(arguments) + ")"
    return head + (",\n" + " " * len(head)).join(arguments) + ")"  # one argument a line, aligned


def _keywords(layer: Layer) -> dict[str, Any]:
    """The layer's fields, its own *_param's spread out as keywords (`num_output=64`) as NetSpec takes them."""
    fields = compact_fields(dict(layer.fields))
    own = param_message_of(layer.type)
    inner = fields.get(own)
    if isinstance(inner, dict) and inner:
        fields = {**{key: value for key, value in fields.items() if key != own}, **inner}
    return {key: _dims(value) if key == "shape" else value for key, value in fields.items()}


def _dims(shape: Any) -> Any:
    """`shape={'dim': [1, 3]}` as `shape=[1, 3]`, which netspec takes for a BlobShape (several: a list of lists)."""
    if isinstance(shape, dict) and set(shape) == {"dim"}:
        return shape["dim"] if isinstance(shape["dim"], list) else [shape["dim"]]
    if isinstance(shape, list) and shape and all(isinstance(s, dict) and set(s) == {"dim"} for s in shape):
        return [_dims(s) for s in shape]
    return shape


def _unescaped(value: Any) -> Any:
    """Imported values are config text, `${` written `$${`; Python values are never templates."""
    if isinstance(value, dict):
        return {key: _unescaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unescaped(item) for item in value]
    return value.replace("$${", "${") if isinstance(value, str) else value


def _value(value: Any) -> str:
    return repr(_unescaped(value))
