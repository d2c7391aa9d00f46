"""Flat layers → the small units every block is made of: a layer followed by the in-place layers
that modify its output (convolution + BatchNorm + Scale + ReLU, convolution + ReLU), found wherever
one kind recurs. Each occurrence becomes a `Use` of a `qualify: false` unit module whose layer names
are templates on `instance` (`${instance}_bn`), so the blocks above can be factored over uses.
Asked to, a kind may also take the occurrences that lack its last layer (convolution + BatchNorm +
Scale beside the same with a ReLU; an Eltwise alone beside Eltwise + ReLU): that layer is then
written `when: "${relu}"` on a bool parameter named after it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..caffe.facts import SOURCE_TYPES
from ..ir import Layer
from .document import compact_fields, layer_entry, literal, module_declaration
from .params import Merge, identifier, plain_ports, same

# Short words for layer types in module names; a Scale right after a BatchNorm is part of `bn`.
_TYPE_WORDS = {"Convolution": "conv", "Deconvolution": "deconv", "InnerProduct": "fc", "BatchNorm": "bn",
               "Eltwise": "add", "Pooling": "pool", "Concat": "concat", "Dropout": "dropout"}
MIN_COPIES = 2


@dataclass(frozen=True)
class NamePattern:
    """A layer name made from the unit's instance name: prefix + instance[cut:] + suffix."""

    prefix: str
    cut: int
    suffix: str

    def template(self) -> str:
        place = "${instance}" if self.cut == 0 else f"${{instance[{self.cut}:]}}"
        return literal(self.prefix) + place + literal(self.suffix)

    def applied(self, written_instance: str) -> str | None:
        """The name for an instance written as `written_instance`, if it can be told from the text."""
        if "${" in written_instance[:self.cut]:
            return None  # the cut would fall inside a template
        return literal(self.prefix) + written_instance[self.cut:] + literal(self.suffix)


def name_pattern(instance: str, name: str) -> NamePattern | None:
    for cut in range(len(instance)):
        place = name.find(instance[cut:])
        if place >= 0:
            return NamePattern(name[:place], cut, name[place + len(instance) - cut:])
    return None


def _within_folder(instance: str, name: str) -> tuple[str, str]:
    """Both names without the `P/` they share: inside a module that qualifies names, a unit's
    instance is written without it (`1x1`, whose ReLU is `relu_1x1`)."""
    folder = instance.rsplit("/", 1)[0] + "/" if "/" in instance else ""
    return (instance[len(folder):], name[len(folder):]) if name.startswith(folder) else (instance, name)


@dataclass
class UnitModule:
    name: str
    types: tuple[str, ...]
    inputs: list[str]
    body: list[dict[str, Any]]  # merged fields per layer
    layer_names: list[str]  # templates on instance, or `${param}`
    params: dict[str, dict[str, Any]]  # declarations, value and name parameters
    name_params: dict[str, NamePattern] = field(default_factory=dict)
    switch: str | None = None  # the bool parameter that says whether the last layer is there

    def declaration(self, uses: int) -> dict[str, Any]:
        entries, bottoms, tops = [], list(self.inputs), ["${instance}"]
        for layer_type, name, fields in zip(self.types, self.layer_names, self.body):
            entries.append(layer_entry(name, layer_type, bottoms, tops, fields, bottoms))
            bottoms = tops
        if self.switch:
            entries[-1]["when"] = "${" + self.switch + "}"
        return module_declaration(uses, False, self.params, self.inputs, tops, entries)

    def with_values(self, values: dict[str, Any], names: dict[str, str], written_instance: str) -> dict[str, Any]:
        """What a use must say in `with`: values other than the defaults, names other than the patterns."""
        given = {key: value for key, value in values.items()
                 if not ("default" in self.params[key] and same(value, self.params[key]["default"]))}
        return given | {key: written for key, written in names.items()
                        if self.name_params[key].applied(written_instance) != written}


@dataclass(frozen=True)
class Use(Layer):
    """One occurrence of a unit, standing in for its layers: the first layer's name, bottoms and tops;
    `fields` the unit's parameter values, `names` its name parameters' raw values."""

    unit: UnitModule | None = field(default=None, compare=False, hash=False)
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    size: int = 1  # the layers it stands for

    def is_in_place(self) -> bool:
        return False


def chains(layers: tuple[Layer, ...]) -> list[range]:
    """Runs of a layer whose only top is its name, then the in-place layers on that top."""
    found, index = [], 0
    while index < len(layers):
        anchor, stop = layers[index], index + 1
        if _is_anchor(anchor):
            while stop < len(layers) and layers[stop].bottoms == anchor.tops and layers[stop].tops == anchor.tops:
                stop += 1
        if stop - index >= 2:
            found.append(range(index, stop))
        index = stop
    return found


def with_units(layers: tuple[Layer, ...], optional_last: bool = False) -> tuple[list[Layer], list[UnitModule]]:
    """The layers with each recurring unit replaced by a `Use`, and the unit modules, in order of first use.
    `optional_last`: a kind also takes the occurrences that lack its last layer."""
    kinds: dict[tuple, list[range]] = {}
    found = chains(layers)
    for run in found + (_lone_anchors(layers, found) if optional_last else []):
        kinds.setdefault(tuple(layers[i].type for i in run) + (len(layers[run.start].bottoms),), []).append(run)
    if optional_last:
        for kind in sorted(kinds, key=len, reverse=True):
            shorter = kind[:-2] + kind[-1:]
            if kind in kinds and shorter in kinds and len(kinds[kind]) >= MIN_COPIES:
                kinds[kind] = sorted(kinds[kind] + kinds.pop(shorter), key=lambda run: run.start)
    taken: set[str] = set()
    replaced: dict[int, Use] = {}
    units: list[UnitModule] = []
    for kind, runs in kinds.items():
        built = _unit(runs, layers, kind[:-1], taken) if len(runs) >= MIN_COPIES and len(kind) > 2 else None
        if built is None:
            continue
        unit, uses = built
        taken.add(unit.name)
        units.append(unit)
        replaced.update({run.start: use for run, use in zip(runs, uses)})
    items, index = [], 0
    while index < len(layers):
        use = replaced.get(index)
        items.append(use or layers[index])
        index += use.size if use else 1
    first = {id(item.unit): position for position, item in reversed(list(enumerate(items))) if isinstance(item, Use)}
    return items, sorted(units, key=lambda unit: first[id(unit)])


def _is_anchor(layer: Layer) -> bool:
    return layer.type not in SOURCE_TYPES and bool(layer.bottoms) and layer.tops == (layer.name,) \
        and not layer.is_in_place()


def _lone_anchors(layers: tuple[Layer, ...], found: list[range]) -> list[range]:
    """Layers that could start a unit but have no in-place layers after them."""
    covered = {index for run in found for index in run}
    return [range(index, index + 1) for index, layer in enumerate(layers)
            if index not in covered and _is_anchor(layer)]


def _unit(runs: list[range], layers: tuple[Layer, ...], types: tuple[str, ...],
          taken: set[str]) -> tuple[UnitModule, list[Use]] | None:
    """The unit of `types` for `runs`, some of which may lack the last layer."""
    members = [[layers[i] for i in run] for run in runs]
    merge = Merge()
    body = [merge.merge([compact_fields(dict(copy[k].fields)) for copy in members], "value", _word(types, k) or "layer")
            for k in range(len(types) - 1)]
    present = [len(copy) == len(types) for copy in members]
    last = [compact_fields(dict(copy[-1].fields)) for copy, here in zip(members, present) if here]
    switch = identifier(_word(types, len(types) - 1), set()) if not all(present) else None
    switches = {switch} if switch else set()
    if switch is None:
        body.append(merge.merge(last, "value", _word(types, len(types) - 1) or "layer"))
    elif all(same(fields, last[0]) for fields in last):
        body.append(last[0])  # only the layers that have it: its fields must agree
    else:
        return None
    if merge.failed:
        return None
    instances = [copy[0].name for copy in members]
    layer_names, name_params = ["${instance}"], {}
    for k in range(1, len(types)):
        having = [(instance, copy) for instance, copy in zip(instances, members) if len(copy) > k]
        patterns = [name_pattern(*_within_folder(instance, copy[k].name)) for instance, copy in having]
        common, _ = Counter(patterns).most_common(1)[0]
        if common is None:
            return None
        if all(common.applied(literal(instance)) == literal(copy[k].name) for instance, copy in having):
            layer_names.append(common.template())
            continue
        word = _word(types, k) or types[k].lower()
        key = identifier(f"{word}_name" if word == switch else word, set(name_params) | switches)
        name_params[key] = common
        layer_names.append("${" + key + "}")
    merge.name_params(set(name_params) | switches)
    merge.choose_defaults()
    params = {param.name: param.declaration() for param in merge.params}
    params.update({key: {"type": "string", "default": pattern.template()} for key, pattern in name_params.items()})
    if switch:
        params[switch] = {"type": "bool", "default": present.count(True) * 2 >= len(present)}
    unit = UnitModule(identifier(_unit_name(types), taken), types, plain_ports(len(members[0][0].bottoms), set()),
                      [merge.named(fields) for fields in body], layer_names, params, name_params, switch)
    uses = []
    for index, copy in enumerate(members):
        values = {param.name: param.values[index] for param in merge.params} | ({switch: present[index]} if switch else {})
        names = {key: copy[k].name for k, written in enumerate(layer_names) for key in name_params
                 if written == "${" + key + "}" and k < len(copy)}
        uses.append(Use(copy[0].name, unit.name, copy[0].bottoms, copy[0].tops, values, unit=unit, names=names,
                        size=len(copy)))
    return unit, uses


def _word(types: tuple[str, ...], index: int) -> str:
    """The word for the layer at `index` in a unit's name (`Scale` after `BatchNorm`: none)."""
    if types[index] == "Scale" and index and types[index - 1] == "BatchNorm":
        return ""
    return _TYPE_WORDS.get(types[index], types[index].lower())


def _unit_name(types: tuple[str, ...]) -> str:
    return "_".join(word for word in (_word(types, k) for k in range(len(types))) if word)
