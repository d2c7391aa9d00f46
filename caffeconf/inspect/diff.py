"""Semantic differences between two flat nets: (Net, Net) -> [Difference].

Fields are compared as Caffe reads them: a field written with its default
equals an absent one, an empty sub-message equals none, and floats compare
at float32 precision (what a prototxt holds). Learned `blobs` (in a binary
net) compare as their count, shapes and a hash of their values, never value
by value. Layers pair up by name (the
k-th layer of a name with the k-th), then unpaired layers of the same type
and fields pair up as renamed. Blob names do not matter, wiring does: when
a paired layer's top is renamed, its readers that follow the new name are
not reported as rewired.
"""

from __future__ import annotations

import array
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from google.protobuf.descriptor import FieldDescriptor

from ..caffe import messages
from ..caffe.facts import shortest_float32
from ..ir import Layer, Net
from .shapes import format_shape

# Fields whose mere presence changes what Caffe does, even at their default value.
PRESENCE_MATTERS = frozenset({
    ("ArgMaxParameter", "axis"), ("ConcatParameter", "concat_dim"), ("SliceParameter", "slice_dim"),
    ("NetStateRule", "phase"), ("BatchNormParameter", "use_global_stats"), ("LossParameter", "normalize"),
    *((message, f"{field}_{axis}") for message in ("ConvolutionParameter", "PoolingParameter")
      for field in ("kernel", "pad", "stride") for axis in "hw"),
})

# Repeated fields whose one-value form equals leaving them out (Caffe's kDefaultStride etc.).
REPEATED_DEFAULTS = {
    ("ConvolutionParameter", "stride"): [1], ("ConvolutionParameter", "dilation"): [1],
    ("ConvolutionParameter", "pad"): [0],
}


@dataclass(frozen=True)
class Difference:
    kind: str  # added, removed, renamed, changed, rewired, blob-renamed, net, solver
    layer: str  # the layer as named in A (B for added), or "" for net fields
    path: str = ""  # the field path for "changed", "bottom"/"top" for "rewired"
    a: Any = None
    b: Any = None

    def describe(self) -> str:
        if self.kind in ("added", "removed"):
            return f"{self.kind}: layer {self.layer} ({self.a})"
        if self.kind == "renamed":
            return f"renamed: layer {self.layer} -> {self.b}"
        if self.kind == "blob-renamed":
            return f"renamed: blob {self.a} -> {self.b}"
        change = f"{self.path}: {_show(self.a, self.b)} -> {_show(self.b, self.a)}"
        if self.kind == "solver":
            return f"changed: solver: {change}"
        where = "net" if self.kind == "net" else f"layer {self.layer}"
        return f"{self.kind}: {where}: {change}"

    def as_json(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "path": self.path,
                "a": _plain(self.a), "b": _plain(self.b)}


def _show(value: Any, other: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, Blobs):
        same_shapes = isinstance(other, Blobs) and other.shapes == value.shapes
        return f"{value} sha256 {value.sha256[:12]}" if same_shapes else str(value)
    return json.dumps(value)


def _plain(value: Any) -> Any:
    return value.as_json() if isinstance(value, Blobs) else value


# ---------------------------------------------------------------- learned blobs

@dataclass(frozen=True)
class Blobs:
    """A layer's learned blobs as diff compares them: count, shapes and a digest of every value."""

    shapes: tuple[tuple[int, ...], ...]
    sha256: str

    def __str__(self) -> str:
        count = f"{len(self.shapes)} blob{'' if len(self.shapes) == 1 else 's'}"
        return f"{count} ({', '.join(map(format_shape, self.shapes))})"

    def as_json(self) -> dict:
        return {"count": len(self.shapes), "shapes": [list(shape) for shape in self.shapes], "sha256": self.sha256}


def summarize_blobs(blobs: list[Mapping[str, Any]]) -> Blobs:
    digest = hashlib.sha256()
    for blob in blobs:
        for key, code in (("data", "f"), ("diff", "f"), ("double_data", "d"), ("double_diff", "d")):
            values = array.array(code, blob.get(key, ())).tobytes()  # the bytes a caffemodel holds
            digest.update(f"{key}:{len(values)}:".encode() + values)
        digest.update(b";")
    return Blobs(tuple(_blob_shape(blob) for blob in blobs), digest.hexdigest())


def _blob_shape(blob: Mapping[str, Any]) -> tuple[int, ...]:
    """As Caffe's Blob::FromProto: any legacy num/channels/height/width makes the shape 4-D."""
    legacy = ("num", "channels", "height", "width")
    if any(key in blob for key in legacy):
        return tuple(blob.get(key, 0) for key in legacy)
    return tuple(blob.get("shape", {}).get("dim", ()))


# ---------------------------------------------------------------- normalization

def normalize(fields: Mapping[str, Any], message) -> dict[str, Any]:
    """`fields` as Caffe reads them: defaults and empty sub-messages dropped, floats at float32."""
    out = {}
    for key, value in fields.items():
        field = message.fields_by_name.get(key)
        value = value if field is None else _normal_value(value, field)
        if field is not None and _is_default(value, field, message):
            continue
        out[key] = value
    return out


def _normal_value(value: Any, field: FieldDescriptor) -> Any:
    if field.is_repeated and isinstance(value, (list, tuple)):
        return [_normal_scalar(item, field) for item in value]
    return _normal_scalar(value, field)


def _normal_scalar(value: Any, field: FieldDescriptor) -> Any:
    if field.message_type is not None and isinstance(value, Mapping):
        return normalize(value, field.message_type)
    if field.type == FieldDescriptor.TYPE_FLOAT and isinstance(value, (int, float)):
        return shortest_float32(value)
    return value


def _is_default(value: Any, field: FieldDescriptor, message) -> bool:
    if field.is_repeated:
        return value == [] or value == REPEATED_DEFAULTS.get((message.name, field.name))
    if field.message_type is not None:
        return value == {}
    if (message.name, field.name) in PRESENCE_MATTERS:
        return False
    default = field.default_value
    if field.enum_type is not None:
        default = field.enum_type.values_by_number[default].name
    if field.type == FieldDescriptor.TYPE_FLOAT:
        default = shortest_float32(default)  # as the value it is compared with (delta's 1e-8 is stored as a float32)
    return value == default


def normal_layer_fields(layer: Layer) -> dict[str, Any]:
    """The layer's fields as compared; its blobs summarized (normalizing millions of floats one by
    one would be slow, and printing them useless)."""
    fields = dict(layer.fields)
    blobs = fields.pop("blobs", [])
    normal = normalize(fields, messages.descriptor("LayerParameter"))
    if blobs:
        normal["blobs"] = summarize_blobs(blobs)
    return normal


# ---------------------------------------------------------------- pairing layers

def _keyed(net: Net) -> dict[tuple[str, int], Layer]:
    """Layers keyed by (name, occurrence): train and test layers often share a name."""
    seen: dict[str, int] = {}
    keyed = {}
    for layer in net.layers:
        seen[layer.name] = seen.get(layer.name, 0) + 1
        keyed[(layer.name, seen[layer.name])] = layer
    return keyed


def _label(key: tuple[str, int], keyed: Mapping[tuple[str, int], Layer]) -> str:
    name, occurrence = key
    return name if (name, 2) not in keyed else f"{name}#{occurrence}"


def _pair(a: Net, b: Net):
    """(pairs of (key_a, key_b)), unpaired keys of A, unpaired keys of B."""
    keyed_a, keyed_b = _keyed(a), _keyed(b)
    pairs = [(k, k) for k in keyed_a if k in keyed_b]
    removed = [k for k in keyed_a if k not in keyed_b]
    added = [k for k in keyed_b if k not in keyed_a]
    for key_a in list(removed):
        signature = _signature(keyed_a[key_a])
        match = next((k for k in added if _signature(keyed_b[k]) == signature), None)
        if match is not None:
            pairs.append((key_a, match))
            removed.remove(key_a)
            added.remove(match)
    return keyed_a, keyed_b, pairs, removed, added


def _signature(layer: Layer) -> str:
    return json.dumps([layer.type, normal_layer_fields(layer)], sort_keys=True, default=_plain)


# ---------------------------------------------------------------- comparing

def diff_nets(a: Net, b: Net) -> list[Difference]:
    keyed_a, keyed_b, pairs, removed, added = _pair(a, b)
    blob_names = _blob_renames(keyed_a, keyed_b, pairs)
    found = list(_net_fields(a, b))
    found += [Difference("blob-renamed", "", "", old, new) for old, new in blob_names.items()]
    for key_a, key_b in pairs:
        found += _layer_differences(keyed_a[key_a], keyed_b[key_b], _label(key_a, keyed_a), blob_names)
    found += [Difference("removed", _label(k, keyed_a), "", keyed_a[k].type) for k in removed]
    found += [Difference("added", _label(k, keyed_b), "", keyed_b[k].type) for k in added]
    return found


def diff_solvers(a, b) -> list[Difference]:
    """Two SolverParameters' differing fields, compared as Caffe reads them (defaults dropped,
    floats at float32); a net written in either compares as its fields."""
    from ..caffe.serde import message_to_data

    message = messages.descriptor("SolverParameter")
    fields_a, fields_b = normalize(message_to_data(a), message), normalize(message_to_data(b), message)
    return [Difference("solver", "", path, old, new) for path, old, new in field_changes(fields_a, fields_b)]


def _net_fields(a: Net, b: Net) -> Iterator[Difference]:
    message = messages.descriptor("NetParameter")
    fields_a, fields_b = normalize(a.fields, message), normalize(b.fields, message)
    if a.name != b.name:
        yield Difference("net", "", "name", a.name, b.name)
    for path, old, new in field_changes(fields_a, fields_b):
        yield Difference("net", "", path, old, new)


def _blob_renames(keyed_a, keyed_b, pairs) -> dict[str, str]:
    """Old blob name -> new, from the tops of paired layers (the first pairing wins)."""
    renames: dict[str, str] = {}
    for key_a, key_b in pairs:
        for old, new in zip(keyed_a[key_a].tops, keyed_b[key_b].tops):
            if old != new:
                renames.setdefault(old, new)
    return renames


def _layer_differences(a: Layer, b: Layer, label: str, blob_names: Mapping[str, str]) -> list[Difference]:
    found = []
    if a.name != b.name:
        found.append(Difference("renamed", label, "", None, b.name))
    if a.type != b.type:
        found.append(Difference("changed", label, "type", a.type, b.type))
    for role, old, new in (("bottom", a.bottoms, b.bottoms), ("top", a.tops, b.tops)):
        followed = [blob_names.get(name, name) for name in old]
        if followed != list(new):
            found.append(Difference("rewired", label, role, list(old), list(new)))
    for path, old, new in field_changes(normal_layer_fields(a), normal_layer_fields(b)):
        found.append(Difference("changed", label, path, old, new))
    return found


def field_changes(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, value in A, value in B) for every leaf that differs; None means absent."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [k for k in b if k not in a]:
            yield from field_changes(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            yield from field_changes(x, y, f"{path}[{index}]")
    elif a != b:
        yield path, a, b
