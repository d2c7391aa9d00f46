"""Flat layers → modules: repeated blocks of a net recovered as modules with typed parameters.

segment → describe → group → module → entries → repeat:
- The layer list is cut where at most one blob is live (data-layer blobs such as `label`
  aside); in-place layers stay with the block they modify, and neighbours that share a name
  prefix (`fire2/...`) join.
- Blocks with the same types, wiring and field layout are copies of one module; each read from
  before a block is an input of its own until `bind_ports` joins the reads every copy makes of one
  blob into one port. Their names become either a qualified module (`inception_3a/1x1` → `1x1`),
  a `qualify: false` module on `${instance}`, or, for schemes like ResNet's `res2a_branch2a`, one
  whose names are templates on an `id` parameter. Field values that differ between copies become
  parameters (one per distinct pattern; see `params` for defaults and shapes).
- Modules, parameters and ports are named from structure (`names`).
- Consecutive uses whose names follow a sequence and whose other values agree become one
  `repeat`.
The caller checks that the result compiles back to the net, dropping modules that do not.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from os.path import commonprefix
from typing import Any, Callable

from ..caffe.facts import SOURCE_TYPES
from .config_text import yaml_item_lines
from .document import Imported, compact_fields, document, flat_entries, layer_entry, literal, module_declaration
from ..ir import Layer
from .names import block_word, first_type, instance_stem, module_names, port_names, role_names
from .params import ABSENT, SHAPE_FIELDS, Merge, Param, indexed, same, string_expression
from .units import UnitModule, Use, with_units

MAX_OCCURRENCES = 8  # of an id inside one name, when looking for its template
_SHAPE_KEYS = {key: fields[0] for fields in SHAPE_FIELDS for key in fields[1:]}


# ---------------------------------------------------------------------------
# Segments


def segments(layers: tuple[Layer, ...], sources: set[str]) -> list[range]:
    """The net cut into blocks: after each layer where at most one blob other than the data layers'
    tops (`sources`) is still to be read."""
    last_read = {blob: index for index, layer in enumerate(layers) for blob in layer.bottoms}
    live: set[str] = set()
    blocks, start = [], 0
    for index, layer in enumerate(layers):
        live -= {blob for blob in layer.bottoms if last_read[blob] == index}
        live |= {top for top in layer.tops if top not in sources and last_read.get(top, -1) > index}
        if len(live) <= 1:
            blocks.append(range(start, index + 1))
            start = index + 1
    return _merge_blocks(blocks, layers)


def _merge_blocks(blocks: list[range], layers: tuple[Layer, ...]) -> list[range]:
    merged: list[range] = []
    for block in blocks:
        members = [layers[i] for i in block]
        in_place = all(layer.tops and layer.is_in_place() for layer in members)
        before = _prefix([layers[i] for i in merged[-1]]) if merged else None
        # an in-place layer belongs to the block it modifies, unless that block is named P/... and it is not
        if merged and (in_place and before in (None, _prefix(members))
                       or before is not None and before == _prefix(members)):
            merged[-1] = range(merged[-1].start, block.stop)
        else:
            merged.append(block)
    return merged


def _prefix(members: list[Layer]) -> str | None:
    """The shared `P` of names written `P/...`, if every layer has it."""
    prefixes = {layer.name.split("/", 1)[0] if "/" in layer.name else None for layer in members}
    return prefixes.pop() if len(prefixes) == 1 else None


# ---------------------------------------------------------------------------
# One block, described


@dataclass
class Instance:
    span: range
    layers: list[Layer]
    fields: list[dict[str, Any]]  # per layer, compacted
    inputs: list[str]  # blobs from before the block: one per read (see `bind_ports`), in order
    blobs: list[str]  # blobs the block produces, in order of first production
    outputs: set[str]  # produced blobs read after the block
    wiring: tuple  # per layer: (type, bottom refs, top refs); a ref is ("in", k) or ("blob", k)
    optional: Optional | None = None  # a layer some copies of the module lack
    lacks_optional: bool = False  # this copy is one of them: its layer there stands in, never written

    @property
    def names(self) -> list[str]:
        """Every layer name: each layer's, then the name parameters of its units."""
        return [layer.name for layer in self.layers] + [name for layer in self.layers if isinstance(layer, Use)
                                                        for name in layer.names.values()]

    def key(self) -> tuple:
        return (self.wiring, tuple(_skeleton(f) for f in self.fields))


def describe(block: range, layers: tuple[Layer, ...], producer: list[list[int]]) -> Instance:
    """`producer[j][k]`: the index of the layer that wrote layer j's k-th bottom (-1: none). Each read
    of a blob from before the block is an input of its own, so that blocks that differ only in which
    blobs they read (one blob twice, or two) are alike; `bind_ports` joins them for a module's copies."""
    inputs: list[str] = []
    blobs: list[str] = []
    wiring = []
    for index in block:
        layer = layers[index]
        bottoms = []
        for position, blob in enumerate(layer.bottoms):
            if producer[index][position] in block:
                bottoms.append(("blob", blobs.index(blob)))
            else:
                inputs.append(blob)
                bottoms.append(("in", len(inputs) - 1))
        tops = []
        for top in layer.tops:
            read = bottoms[layer.bottoms.index(top)] if top in layer.bottoms else None
            if read is not None and read[0] == "in":
                tops.append(read)  # in place on an input
            else:
                blobs += [] if top in blobs else [top]
                tops.append(("blob", blobs.index(top)))
        wiring.append((layer.type, tuple(bottoms), tuple(tops)))
    outputs = {layers[j].bottoms[k] for j in range(block.stop, len(layers))
               for k, source in enumerate(producer[j]) if source in block}
    members = [layers[i] for i in block]
    # a unit's fields are its parameters' values, written as they are (a list parameter stays a list)
    fields = [dict(layer.fields) if isinstance(layer, Use) else compact_fields(dict(layer.fields)) for layer in members]
    return Instance(block, members, fields, inputs, blobs, outputs, tuple(wiring))


def bind_ports(copies: list[Instance]) -> list[Instance]:
    """The copies with their reads joined into ports: two reads are one port where every copy reads
    one blob at both (a block reading `a` twice and one reading `a` and `b` share a module of two
    ports, the first bound to `[a, a]`)."""
    reads = list(zip(*[copy.inputs for copy in copies]))  # per read: the blob of each copy
    ports = list(dict.fromkeys(reads))
    port = [ports.index(blobs) for blobs in reads]

    def rebound(refs: tuple) -> tuple:
        return tuple(("in", port[k]) if kind == "in" else (kind, k) for kind, k in refs)

    return [dataclasses.replace(copy, inputs=[blobs[number] for blobs in ports],
                                wiring=tuple((kind, rebound(bottoms), rebound(tops)) for kind, bottoms, tops in copy.wiring))
            for number, copy in enumerate(copies)]


@dataclass(frozen=True)
class Optional:
    """A layer that reads one input and whose only reader, at `reader`'s bottom `position`, reads that
    input instead in the copies without it: a shortcut projection into a sum (ResNet's `branch1`), or
    an activation the first block of a stage goes without (its input is activated already). `role`
    names the bool parameter that says whether a copy has it."""

    layer: int
    reader: int
    position: int
    role: str


ACTIVATIONS = {"ReLU": "relu", "ELU": "elu", "Sigmoid": "sigmoid", "TanH": "tanh"}


def without_layer(copy: Instance, optional: Optional) -> Instance:
    """`copy` described as if its optional layer were not there and its reader read the layer's input."""
    layer, reader = copy.layers[optional.layer], copy.layers[optional.reader]
    bottoms = list(reader.bottoms)
    bottoms[optional.position] = layer.bottoms[0]
    local = tuple(dataclasses.replace(item, bottoms=tuple(bottoms)) if index == optional.reader else item
                  for index, item in enumerate(copy.layers) if index != optional.layer)
    return describe(range(len(local)), local, producers(local))


def optional_layers(copy: Instance) -> list[Optional]:
    """The layers of `copy` that could be optional: one input read, one top that one later layer reads
    and nothing after the block does; that layer an Eltwise (a projection) or the layer an activation."""
    found = []
    for index, (_, bottoms, tops) in enumerate(copy.wiring):
        if len(bottoms) != 1 or bottoms[0][0] != "in" or len(tops) != 1 or tops[0][0] != "blob" \
                or copy.blobs[tops[0][1]] in copy.outputs:
            continue
        readers = [(later, position) for later, (_, refs, _) in enumerate(copy.wiring)
                   for position, ref in enumerate(refs) if ref == tops[0]]
        writers = [other for other, (_, _, written) in enumerate(copy.wiring) if tops[0] in written]
        if len(readers) != 1 or writers != [index] or readers[0][0] < index:
            continue
        if first_type(copy.layers[readers[0][0]]) == "Eltwise":
            found.append(Optional(index, *readers[0], "projection"))
        elif first_type(copy.layers[index]) in ACTIVATIONS:
            found.append(Optional(index, *readers[0], ACTIVATIONS[first_type(copy.layers[index])]))
    return found


def with_stand_in(short: Instance, full: Instance, optional: Optional) -> Instance | None:
    """`short`, a copy without the optional layer, shaped like `full`: a stand-in for the layer (its
    names guessed from `full`'s by the part of the names that differs) and `full`'s wiring."""
    common = 1 if optional.layer == 0 else 0  # a layer both have, to tell the names' differing words
    parts = _differing_words(full.layers[common].name, short.layers[0].name)
    if parts is None:
        return None

    def guessed(text: str) -> str:
        return text.replace(parts[0], parts[1], 1)

    reader = short.layers[optional.reader - 1]  # the reader comes after the layer, one place earlier here
    layer = full.layers[optional.layer]
    names = {"names": {key: guessed(name) for key, name in layer.names.items()}} if isinstance(layer, Use) else {}
    stand_in = dataclasses.replace(layer, name=guessed(layer.name), bottoms=(reader.bottoms[optional.position],),
                                   tops=tuple(guessed(top) for top in layer.tops), **names)
    layers = short.layers[:optional.layer] + [stand_in] + short.layers[optional.layer:]
    inputs = [layers[index].bottoms[position] for index, (_, refs, _) in enumerate(full.wiring)
              for position, ref in enumerate(refs) if ref[0] == "in"]
    blob = full.wiring[optional.layer][2][0][1]
    blobs = short.blobs[:blob] + [stand_in.tops[0]] + short.blobs[blob:]
    return Instance(short.span, layers, short.fields[:optional.layer] + [full.fields[optional.layer]]
                    + short.fields[optional.layer:], inputs, blobs, short.outputs, full.wiring, optional, True)


def _differing_words(first: str, second: str) -> tuple[str, str] | None:
    """The run of words (between `_/-.`) in which two names differ, less the letters they start with
    alike: `2a`, `2b` for `res2a_branch2a` and `res2b_branch2a` (so `bn2a_branch1` gives `bn2b_branch1`)."""
    words = [re.split(r"([_/.-])", name) for name in (first, second)]
    if len(words[0]) != len(words[1]) or first == second:
        return None
    differ = [index for index, (a, b) in enumerate(zip(*words)) if a != b]
    runs = ["".join(split[differ[0]:differ[-1] + 1]) for split in words]
    lead = len(re.match(r"[A-Za-z]*", commonprefix(runs)).group())
    return runs[0][lead:], runs[1][lead:]


def join_optional(groups: dict[tuple, list[Instance]]) -> dict[tuple, list[Instance]]:
    """Groups where one kind of block is another without one optional layer, joined into the longer
    one (the copies without it get a stand-in), where one naming fits them all."""
    joined = dict(groups)
    for key, copies in groups.items():
        for optional in optional_layers(copies[0]):
            short_key = without_layer(copies[0], optional).key()
            if short_key == key or short_key not in joined or key not in joined:
                continue
            full = [dataclasses.replace(copy, optional=optional) for copy in copies]
            shorts = [with_stand_in(copy, copies[0], optional) for copy in joined[short_key]]
            if None in shorts:
                continue
            merged = sorted(full + shorts, key=lambda copy: copy.span.start)
            naming = _naming_for(merged)
            if naming is not None and string_expression(naming.blob_names[full[0].wiring[optional.layer][2][0][1]]):
                joined[key] = merged
                del joined[short_key]
                break
    return joined


def producers(layers: tuple[Layer, ...]) -> list[list[int]]:
    last: dict[str, int] = {}
    found = []
    for index, layer in enumerate(layers):
        found.append([last.get(blob, -1) for blob in layer.bottoms])
        last.update({top: index for top in layer.tops})
    return found


def _skeleton(value: Any) -> Any:
    """The layout of a field value: keys and message-list lengths, with scalars by kind; a shape's
    height and width count as its square field (one list parameter covers both forms)."""
    if isinstance(value, dict):
        return frozenset((_SHAPE_KEYS.get(key, key), _skeleton(item)) for key, item in value.items())
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            return ("messages", tuple(_skeleton(item) for item in value))
        return "values"
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


# ---------------------------------------------------------------------------
# Names: qualified (`P/inner`), `${instance}` followed by the same text in every copy, or templates on an id


@dataclass
class Naming:
    qualified: bool
    instance_names: list[str]  # raw
    ids: list[str] | None  # raw ids, for templates
    layer_names: list[str]  # written (literal inner names, or templates): each layer's, then its units' names
    blob_names: list[str]  # written


def _naming(qualified: bool, instance_names: list[str], ids: list[str] | None, written: list[str],
            copy: Instance) -> Naming:
    count = len(copy.names)
    return Naming(qualified, instance_names, ids, written[:count], written[count:])


def qualified_naming(copies: list[Instance]) -> Naming | None:
    prefixes = [copy.layers[0].name.split("/", 1)[0] + "/" for copy in copies]
    inner = []
    for prefix, copy in zip(prefixes, copies):
        names = copy.names + copy.blobs
        if not all(name.startswith(prefix) and len(name) > len(prefix) for name in names):
            return None
        if any(spec.get("name") for f in copy.fields for spec in _param_specs(f)):
            return None  # explicit param names would be qualified per instance
        inner.append([name[len(prefix):] for name in names])
    if any(names != inner[0] for names in inner) or "/" not in copies[0].layers[0].name:
        return None
    return _naming(True, [prefix[:-1] for prefix in prefixes], None, [literal(name) for name in inner[0]], copies[0])


_SEPARATORS = "_/-."


def prefixed_naming(copies: list[Instance]) -> Naming | None:
    """Names that all start with the instance's name and a separator (`inception_a1` + `_1x1`), the rest
    alike in every copy: a `qualify: false` module on `${instance}`."""
    rests = []
    instance_names = []
    for copy in copies:
        names = copy.names + copy.blobs
        common = commonprefix(names)
        cut = max(common.rfind(separator) for separator in _SEPARATORS)
        if cut <= 0 or any(len(name) > cut and name[cut] not in _SEPARATORS for name in names):
            return None
        instance_names.append(common[:cut])
        rests.append([name[cut:] for name in names])
    if any(rest != rests[0] for rest in rests) or len(set(instance_names)) != len(instance_names):
        return None
    return _naming(False, instance_names, None, ["${instance}" + literal(rest) for rest in rests[0]], copies[0])


def _param_specs(fields: dict[str, Any]) -> list[dict[str, Any]]:
    specs = fields.get("param", [])
    return [specs] if isinstance(specs, dict) else list(specs)


def templated_naming(copies: list[Instance]) -> Naming | None:
    firsts = [copy.layers[0].name for copy in copies]
    ids = _middles(firsts)
    if ids is None or len(set(ids)) != len(ids):
        return None
    slots = zip(*[copy.names + copy.blobs for copy in copies])
    templates = [_template(list(names), ids) for names in slots]
    if None in templates:
        return None
    instance_names = [(sorted(copy.outputs, key=copy.blobs.index) or [copy.layers[-1].name])[0]
                      for copy in copies]
    return _naming(False, instance_names, ids, templates, copies[0])


def _middles(names: list[str]) -> list[str] | None:
    """What differs between `names` once their common prefix and suffix are taken off."""
    prefix = len(commonprefix(names))
    suffix = len(commonprefix([name[prefix:][::-1] for name in names]))
    middles = [name[prefix:len(name) - suffix] for name in names]
    return middles if all(middles) else None


def _template(names: list[str], ids: list[str]) -> str | None:
    """A template on `${id}` that gives each name from its id (replacing as many places as fit)."""
    first, first_id = names[0], ids[0]
    places = [m.start() for m in re.finditer(re.escape(first_id), first)][:MAX_OCCURRENCES]
    for size in range(len(places), -1, -1):
        for chosen in itertools.combinations(places, size):
            pieces = _split(first, chosen, len(first_id))
            if all(name == id_.join(pieces) for name, id_ in zip(names, ids)):
                return "${id}".join(literal(piece) for piece in pieces)
    return None


def _split(text: str, places: tuple[int, ...], width: int) -> list[str]:
    pieces, start = [], 0
    for place in places:
        if place < start:
            return [text + "\0"]  # overlapping places: never matches
        pieces.append(text[start:place])
        start = place + width
    return pieces + [text[start:]]


# ---------------------------------------------------------------------------
# Modules


@dataclass
class Module:
    name: str
    copies: list[Instance]
    naming: Naming
    body: list[dict[str, Any]]  # merged fields per layer (a unit's: its `with` values)
    params: list[Param]
    inputs: list[str]  # port names
    outputs: list[int]  # blob indexes that are outputs
    switch: Param | None = None  # whether a copy has the optional layer (`Instance.optional`)

    def declaration(self) -> dict[str, Any]:
        params = {"id": {"type": "string"}} if self.naming.ids else {}
        params.update({param.name: param.declaration() for param in self.params})
        return module_declaration(len(self.copies), self.naming.qualified, params, self.inputs,
                                  [self.naming.blob_names[k] for k in self.outputs], self.layer_entries())

    def layer_entries(self) -> list[dict[str, Any]]:
        entries = []
        prev = [self.inputs[0]] if len(self.inputs) == 1 else None
        unit_names = iter(self.naming.layer_names[len(self.body):])
        optional = self.copies[0].optional if self.switch else None
        for index, (member, (layer_type, bottom_refs, top_refs), name, fields) in enumerate(zip(
                self.copies[0].layers, self.copies[0].wiring, self.naming.layer_names, self.body)):
            bottoms, tops = [self.ref(r) for r in bottom_refs], [self.ref(r) for r in top_refs]
            if optional and index == optional.reader:
                bottoms[optional.position] = self.switched_bottom(optional)
            if isinstance(member, Use):
                given = member.unit.with_values(fields, {key: next(unit_names) for key in member.names}, name)
                entries.append(use_entry(member.type, name, bottoms, given, prev))
            else:
                entries.append(layer_entry(name, layer_type, bottoms, tops, fields, prev))
            if optional and index == optional.layer:
                entries[-1]["when"] = "${" + self.switch.name + "}"
            prev = tops
        return entries

    def switched_bottom(self, optional: Optional) -> str:
        """What the optional layer's reader reads: the layer's top where a copy has it, else its input."""
        wiring = self.copies[0].wiring[optional.layer]
        top = string_expression(self.naming.blob_names[wiring[2][0][1]])
        port = self.inputs[wiring[1][0][1]]
        return "${" + f"{top} if {self.switch.name} else '{port}'" + "}"

    def ref(self, ref: tuple[str, int]) -> str:
        kind, index = ref
        return self.inputs[index] if kind == "in" else self.naming.blob_names[index]

    def use(self, copy_index: int, prev: list[str] | None) -> tuple[dict[str, Any], list[str]]:
        """The use entry for one copy, and the caller's names for its outputs."""
        copy = self.copies[copy_index]
        given = {"id": literal(self.naming.ids[copy_index])} if self.naming.ids else {}
        for param in self.params:
            value = param.values[copy_index]
            if not (param.has_default and same(value, param.default)):
                given[param.name] = value
        entry = use_entry(self.name, literal(self.naming.instance_names[copy_index]),
                          [literal(blob) for blob in copy.inputs], given, prev)
        return entry, [literal(copy.blobs[k]) for k in self.outputs]

    def lines_saved(self) -> int:
        """Roughly: the copies' layers, less the module (a header, its params, its layers) and its uses."""
        body = len(self.body)
        return len(self.copies) * body - (6 + len(self.params) + body + len(self.copies))


def use_entry(module: str, name: str, bottoms: list[str], given: dict[str, Any],
              prev: list[str] | None) -> dict[str, Any]:
    """A use of `module` written as `name` reading `bottoms`, after an entry whose tops are `prev`
    (no `top`: a recovered module's outputs are its own names, a unit's its instance name)."""
    entry: dict[str, Any] = {"use": module, "name": name}
    if bottoms and not (len(bottoms) == 1 and prev == bottoms):
        entry["bottom"] = bottoms[0] if len(bottoms) == 1 else bottoms
    return {**entry, "with": given} if given else entry


def _hint(written: str) -> str:
    """The part of a written layer name that tells its role (`res${id}_branch2a` -> branch2a)."""
    if "${id}" in written:
        return written.replace("${id}", "").rsplit("_", 1)[-1]
    return written.replace("${instance}", "").strip(_SEPARATORS)


def build_module(copies: list[Instance], naming: Naming, sources: set[str]) -> Module | None:
    """The module for `copies` (named later, by `find_modules`); `sources`: the data layers' tops."""
    copies = bind_ports(copies)
    optional = copies[0].optional
    merge = Merge()
    body: list[Any] = [None] * len(copies[0].layers)
    having = [not copy.lacks_optional for copy in copies]
    # the optional layer last, so that its parameters can be ones the other layers already have
    for index in sorted(range(len(body)), key=lambda index: optional is not None and index == optional.layer):
        merge.layer = index
        values, hint = [copy.fields[index] for copy in copies], _hint(naming.layer_names[index])
        body[index] = merge.merge_some(values, having, "value", hint) if optional and index == optional.layer \
            else merge.merge(values, "value", hint)
    switch = Param(optional.role, "", having, "bool") if optional else None
    merge.params += [switch] if switch else []
    if merge.failed:
        return None
    merge.name_params(roles=role_names(merge.params, copies[0].layers, copies[0].wiring))
    body = [merge.named(fields) for fields in body]
    merge.choose_defaults()
    taken = set(naming.layer_names) | set(naming.blob_names)
    ports = port_names([copy.inputs for copy in copies], sources, taken)
    outputs = sorted({copy.blobs.index(blob) for copy in copies for blob in copy.outputs})
    return Module("", copies, naming, body, merge.params, ports, outputs, switch)


# ---------------------------------------------------------------------------
# The plan: which blocks become which modules


def find_modules(layers: tuple[Layer, ...], taken: set[str], optional: bool = False) -> list[Module]:
    """Modules worth having (they save lines), each with its copies, in order of first copy, named
    apart from each other and from `taken` (the units' names); `optional`: a kind of block that is
    another without one optional layer joins it (`join_optional`)."""
    producer = producers(layers)
    sources = {top for layer in layers if layer.type in SOURCE_TYPES for top in layer.tops}
    groups: dict[tuple, list[Instance]] = {}
    for block in segments(layers, sources):
        if len(block) >= 2:
            copy = describe(block, layers, producer)
            groups.setdefault(copy.key(), []).append(copy)
    if optional:
        groups = join_optional(groups)
    modules: list[Module] = []
    for copies in groups.values():
        for subset, naming in _namings(copies):
            module = build_module(subset, naming, sources)
            if module is not None and module.lines_saved() > 0:
                modules.append(module)
    modules.sort(key=lambda module: module.copies[0].span.start)
    wanted = [(instance_stem(module.naming.instance_names), *block_word(module.copies[0].layers,
                                                                        module.copies[0].wiring)) for module in modules]
    for module, name in zip(modules, module_names(wanted, set(taken))):
        module.name = name
    return modules


def _namings(copies: list[Instance]) -> list[tuple[list[Instance], Naming]]:
    """Copies with a naming that fits them all; else groups of copies named alike (the same inner names,
    or the same names but for their numbers), each with a naming that fits it, covering the most copies."""
    if len(copies) < 2:
        return []
    naming = _naming_for(copies)
    if naming is not None:
        return [(copies, naming)]
    best: list[tuple[list[Instance], Naming]] = []
    for alike in (_inner_names, _names_but_numbers):
        groups: dict[tuple, list[Instance]] = {}
        for copy in copies:
            groups.setdefault(alike(copy), []).append(copy)
        found = [(subset, naming) for subset in groups.values() if len(subset) >= 2
                 for naming in [_naming_for(subset)] if naming is not None]
        if sum(len(subset) for subset, _ in found) > sum(len(subset) for subset, _ in best):
            best = found
    return best


def _naming_for(copies: list[Instance]) -> Naming | None:
    return next((naming for choose in (qualified_naming, prefixed_naming, templated_naming)
                 for naming in [choose(copies)] if naming is not None), None)


def _inner_names(copy: Instance) -> tuple:
    return tuple(name.split("/", 1)[-1] for name in copy.names + copy.blobs)


def _names_but_numbers(copy: Instance) -> tuple:
    return tuple(re.sub(r"[0-9]+", "#", name) for name in copy.names + copy.blobs)


def entries(layers: tuple[Layer, ...], modules: list[Module]) -> list[dict[str, Any]]:
    """Top-level entries: a use for each module copy, flat layers elsewhere."""
    starts = {copy.span.start: (module, index) for module in modules for index, copy in enumerate(module.copies)}
    out: list[dict[str, Any]] = []
    prev: list[str] | None = None
    position = 0
    while position < len(layers):
        if position in starts:
            module, index = starts[position]
            entry, prev = module.use(index, prev)
            out.append(entry)
            position = module.copies[index].span.stop
        else:
            item = layers[position]
            if isinstance(item, Use):
                name, names = literal(item.name), {key: literal(written) for key, written in item.names.items()}
                out.append(use_entry(item.type, name, [literal(b) for b in item.bottoms],
                                     item.unit.with_values(dict(item.fields), names, name), prev))
            else:
                out.append(flat_entries([item], prev)[0])
            prev = [literal(top) for top in item.tops]
            position += 1
    return out


# ---------------------------------------------------------------------------
# Repeats


def with_repeats(entries: list[dict[str, Any]],
                 defaults: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of chained uses of one module whose names follow a sequence, as one `repeat` entry; values
    that differ along the run are a sequence too (`res${i + 2}`) or a list indexed by `i`.
    `defaults(module)`: its parameters' defaults, for the uses that leave one out."""
    out: list[dict[str, Any]] = []
    start = 0
    while start < len(entries):
        stop, merged, saved = start + 1, None, 0
        for end in range(start + 2, len(entries) + 1):
            candidate = _repeat(entries[start:end], defaults)
            if candidate is None:
                break
            lines = sum(yaml_item_lines(entry) for entry in entries[start:end]) - yaml_item_lines(candidate)
            if lines >= saved:  # the longest run that saves the most lines
                stop, merged, saved = end, candidate, lines
        out.append(merged or entries[start])
        start = stop
    return out


def _repeat(run: list[dict[str, Any]], defaults: Callable[[str], dict[str, Any]]) -> dict[str, Any] | None:
    first = run[0]
    if not all("use" in e and "top" not in e and e["use"] == first["use"] for e in run) \
            or any("bottom" in e for e in run[1:]):
        return None  # the copies of a repeat chain: only the first reads a blob of its own
    name = _sequence([e["name"] for e in run])
    if name is None:
        return None
    known = defaults(first["use"])
    given = {}
    for key in dict.fromkeys(key for e in run for key in e.get("with", {})):
        values = [e.get("with", {}).get(key, known.get(key, ABSENT)) for e in run]
        if any(value is ABSENT for value in values):
            return None
        if all(same(value, values[0]) for value in values):
            given[key] = values[0]
            continue
        sequence = _sequence(values) if all(isinstance(value, str) for value in values) else None
        given[key] = sequence or indexed(values)
        if given[key] is None:
            return None
    entry = {"use": first["use"], "name": name, **({"bottom": first["bottom"]} if "bottom" in first else {}),
             "repeat": len(run)}
    return {**entry, "with": given} if given else entry


def _sequence(texts: list[str]) -> str | None:
    """A template on the repeat index `i` for `texts` (fire2, fire3 -> fire${i + 2}; 2b, 2c -> 2${letter(i + 1)})."""
    common = commonprefix(texts)
    for prefix in (common.rstrip("0123456789"), common):  # whole numbers in the varying part, if that works
        middles = [text[len(prefix):] for text in texts]
        suffix = commonprefix([m[::-1] for m in middles])[::-1].lstrip("0123456789")
        expression = _counting([m[:len(m) - len(suffix)] for m in middles])
        if expression is not None and not {"$", "{", "}"} & set(prefix + suffix):
            return f"{prefix}${{{expression}}}{suffix}"
    return None


def _counting(middles: list[str]) -> str | None:
    if all(m.isdigit() and str(int(m)) == m for m in middles):
        first = int(middles[0])
        if [int(m) for m in middles] == list(range(first, first + len(middles))):
            return f"i + {first}" if first else "i"
    if all(len(m) == 1 and "a" <= m <= "z" for m in middles):
        first = ord(middles[0]) - ord("a")
        if [ord(m) - ord("a") for m in middles] == list(range(first, first + len(middles))):
            return f"letter(i + {first})" if first else "letter(i)"
    return None


# ---------------------------------------------------------------------------
# The factored document, checked


# The documents tried: (over units, units may lack their last layer, blocks may lack an optional layer)
CANDIDATES = ((True, False, False), (True, True, False), (True, True, True), (False, False, False))


def factored_document(imported: Imported, render: Callable[[dict], str],
                      compiles_back: Callable[[str], bool]) -> tuple[str | None, list[str]]:
    """The modular config text, or None (with a note) when no modules could be kept.

    Blocks are factored over units, over units that may lack their last layer (with and without
    blocks that may lack an optional layer), and over plain layers; the shortest document wins, the
    flat one (None) included. Every candidate is checked by compiling: a module whose config does not
    give back the net exactly is left flat and reported, so the result is always exact."""
    flat = render(document(imported, flat_entries(imported.layers)))
    best: tuple[str | None, list[str]] = (None, [])
    for over_units, optional_last, optional_layer in CANDIDATES:
        items, units = with_units(imported.layers, optional_last) if over_units else (list(imported.layers), [])
        plan = Plan(imported, tuple(items), units,
                    find_modules(tuple(items), {unit.name for unit in units}, optional_layer))
        if _lines(plan.text(plan.modules, True, render)) >= _lines(best[0] or flat):
            continue  # the shortest it could be is not shorter: not worth compiling
        text, notes = _checked(plan, render, compiles_back)
        if text is not None and _lines(text) < _lines(best[0] or flat):
            best = (text, notes)
    return best


@dataclass
class Plan:
    imported: Imported
    items: tuple[Layer, ...]  # layers, and uses of units in place of theirs
    units: list[UnitModule]
    modules: list[Module]

    def text(self, modules: list[Module], repeats: bool, render: Callable[[dict], str]) -> str:
        top = entries(self.items, modules)
        counts = Counter(item.type for item in self.items if isinstance(item, Use))
        declared = {unit.name: unit.declaration(counts[unit.name]) for unit in self.units}
        declared.update({module.name: module.declaration() for module in modules})
        defaults = {name: {key: spec["default"] for key, spec in decl.get("params", {}).items() if "default" in spec}
                    for name, decl in declared.items()}
        return render(document(self.imported, with_repeats(top, defaults.__getitem__) if repeats else top, declared))


def _checked(plan: Plan, render: Callable[[dict], str],
             compiles_back: Callable[[str], bool]) -> tuple[str | None, list[str]]:
    modules = plan.modules
    if not modules and not plan.units:
        return None, []
    for repeats in (True, False):
        text = plan.text(modules, repeats, render)
        if compiles_back(text):
            return text, []
    kept = [m for m in modules if compiles_back(plan.text([m], False, render))]
    notes = [f"module {m.name} was left flat: it did not compile back to the same layers"
             for m in modules if m not in kept]
    if compiles_back(text := plan.text(kept, False, render)):
        return text, notes
    return None, notes


def _lines(text: str) -> int:
    return text.count("\n")
