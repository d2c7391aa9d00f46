"""Flat layers → modules: repeated blocks of a net recovered as modules with typed parameters.

segment → describe → group → module → entries → repeat:
- The layer list is cut where at most one blob is live (data-layer blobs such as `label`
  aside); in-place layers stay with the block they modify, and neighbours that share a name
  prefix (`fire2/...`) join.
- Blocks with the same types, wiring and field layout are copies of one module. Their names
  become either a qualified module (`inception_3a/1x1` → `1x1`) or, for schemes like ResNet's
  `res2a_branch2a`, a `qualify: false` module whose names are templates on an `id` parameter.
  Field values that differ between copies become parameters (one per distinct pattern; the most
  common value is the default).
- Consecutive uses whose names follow a sequence and whose other values agree become one
  `repeat`.
The caller checks that the result compiles back to the net, dropping modules that do not.
"""

from __future__ import annotations

import itertools
import keyword
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from ..caffe.facts import SOURCE_TYPES
from .document import Imported, compact_fields, document, flat_entries, layer_entry, literal
from ..ir import Layer

# Names a parameter must not take: the expression language's own words.
RESERVED = frozenset({"i", "id", "instance", "true", "false", "null", "min", "max", "len", "abs", "int",
                      "float", "str", "round", "upper", "lower", "letter"} | set(keyword.kwlist))
MAX_OCCURRENCES = 8  # of an id inside one name, when looking for its template


# ---------------------------------------------------------------------------
# Segments


def segments(layers: tuple[Layer, ...]) -> list[range]:
    """The net cut into blocks: after each layer where at most one non-data blob is still to be read."""
    sources = {top for layer in layers if layer.type in SOURCE_TYPES for top in layer.tops}
    last_read = {blob: index for index, layer in enumerate(layers) for blob in layer.bottoms}
    live: set[str] = set()
    blocks, start = [], 0
    for index, layer in enumerate(layers):
        live -= {blob for blob in layer.bottoms if last_read[blob] == index}
        live |= {top for top in layer.tops if top not in sources and last_read.get(top, -1) > index}
        if len(live) <= 1:
            blocks.append(range(start, index + 1))
            start = index + 1
    if start < len(layers):
        blocks.append(range(start, len(layers)))
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
    inputs: list[str]  # blobs from before the block, in order of first read
    blobs: list[str]  # blobs the block produces, in order of first production
    outputs: set[str]  # produced blobs read after the block
    wiring: tuple  # per layer: (type, bottom refs, top refs); a ref is ("in", k) or ("blob", k)

    def key(self) -> tuple:
        return (self.wiring, len(self.inputs), tuple(_skeleton(f) for f in self.fields))


def describe(block: range, layers: tuple[Layer, ...], producer: list[list[int]]) -> Instance:
    """`producer[j][k]`: the index of the layer that wrote layer j's k-th bottom (-1: none)."""
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
                inputs += [] if blob in inputs else [blob]
                bottoms.append(("in", inputs.index(blob)))
        tops = []
        for top in layer.tops:
            if top in inputs and top in layer.bottoms:
                tops.append(("in", inputs.index(top)))
            else:
                blobs += [] if top in blobs else [top]
                tops.append(("blob", blobs.index(top)))
        wiring.append((layer.type, tuple(bottoms), tuple(tops)))
    outputs = {layers[j].bottoms[k] for j in range(block.stop, len(layers))
               for k, source in enumerate(producer[j]) if source in block}
    members = [layers[i] for i in block]
    return Instance(block, members, [compact_fields(dict(layer.fields)) for layer in members],
                    inputs, blobs, outputs, tuple(wiring))


def producers(layers: tuple[Layer, ...]) -> list[list[int]]:
    last: dict[str, int] = {}
    found = []
    for index, layer in enumerate(layers):
        found.append([last.get(blob, -1) for blob in layer.bottoms])
        last.update({top: index for top in layer.tops})
    return found


def _skeleton(value: Any) -> Any:
    """The layout of a field value: keys and message-list lengths, with scalars by kind."""
    if isinstance(value, dict):
        return tuple((key, _skeleton(item)) for key, item in value.items())
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            return ("messages", tuple(_skeleton(item) for item in value))
        return "values"
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


# ---------------------------------------------------------------------------
# Names: qualified (`P/inner`) or templates on an id


@dataclass
class Naming:
    qualified: bool
    instance_names: list[str]  # raw
    ids: list[str] | None  # raw ids, for templates
    layer_names: list[str]  # written (literal inner names, or templates)
    blob_names: list[str]  # written


def qualified_naming(copies: list[Instance]) -> Naming | None:
    prefixes = [copy.layers[0].name.split("/", 1)[0] + "/" for copy in copies]
    inner = []
    for prefix, copy in zip(prefixes, copies):
        names = [layer.name for layer in copy.layers] + copy.blobs
        if not all(name.startswith(prefix) and len(name) > len(prefix) for name in names):
            return None
        if any(spec.get("name") for f in copy.fields for spec in _param_specs(f)):
            return None  # explicit param names would be qualified per instance
        inner.append([name[len(prefix):] for name in names])
    if any(names != inner[0] for names in inner) or "/" not in copies[0].layers[0].name:
        return None
    count = len(copies[0].layers)
    written = [literal(name) for name in inner[0]]
    return Naming(True, [prefix[:-1] for prefix in prefixes], None, written[:count], written[count:])


def _param_specs(fields: dict[str, Any]) -> list[dict[str, Any]]:
    specs = fields.get("param", [])
    return [specs] if isinstance(specs, dict) else list(specs)


def templated_naming(copies: list[Instance]) -> Naming | None:
    firsts = [copy.layers[0].name for copy in copies]
    ids = _middles(firsts)
    if ids is None or len(set(ids)) != len(ids):
        return None
    slots = zip(*[[layer.name for layer in copy.layers] + copy.blobs for copy in copies])
    templates = [_template(list(names), ids) for names in slots]
    if None in templates:
        return None
    count = len(copies[0].layers)
    instance_names = [(sorted(copy.outputs, key=copy.blobs.index) or [copy.layers[-1].name])[0]
                      for copy in copies]
    return Naming(False, instance_names, ids, templates[:count], templates[count:])


def _middles(names: list[str]) -> list[str] | None:
    """What differs between `names` once their common prefix and suffix are taken off."""
    prefix = len(_common_prefix(names))
    suffix = len(_common_prefix([name[prefix:][::-1] for name in names]))
    middles = [name[prefix:len(name) - suffix] for name in names]
    return middles if all(middles) else None


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    size = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[:size]


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
# Parameters: what differs between copies


@dataclass
class Param:
    key: str  # the field it sets
    hint: str  # the layer it is in
    values: list[Any]  # per copy
    kind: str
    name: str = ""
    default: Any = None
    has_default: bool = False

    @property
    def placeholder(self) -> str:
        return f"\0{id(self)}\0"


@dataclass
class Merge:
    """Field values of all copies merged into one module body, collecting parameters."""

    params: list[Param] = field(default_factory=list)
    failed: bool = False

    def merge(self, values: list[Any], key: str, hint: str) -> Any:
        first = values[0]
        if all(_same(value, first) for value in values):
            return first
        if all(isinstance(value, dict) for value in values):
            return {k: self.merge([value[k] for value in values], k, hint) for k in first}
        if all(isinstance(value, list) for value in values) and any(isinstance(v, dict) for v in first):
            return [self.merge([value[i] for value in values], key, hint) for i in range(len(first))]
        return self.param(values, key, hint).placeholder

    def param(self, values: list[Any], key: str, hint: str) -> Param:
        for known in self.params:
            if all(_same(a, b) for a, b in zip(known.values, values)):
                return known
        kind = _kind(values)
        if kind is None:
            self.failed = True
        self.params.append(Param(key, hint, values, kind or "string"))
        return self.params[-1]

    def name_params(self) -> None:
        """The field's name where only one parameter sets that field, else the layer's (`n1x1` for
        the num_output of layer 1x1), else both."""
        keys = Counter(param.key for param in self.params)
        hints = Counter(param.hint for param in self.params)
        taken: set[str] = set()
        for param in self.params:
            if keys[param.key] == 1:
                wanted = param.key
            elif hints[param.hint] == 1 and param.hint:
                wanted = param.hint if param.hint[0].isalpha() else param.key[0] + param.hint
            else:
                wanted = f"{param.key}_{param.hint}"
            param.name = _identifier(wanted, taken)
            taken.add(param.name)

    def named(self, body: Any) -> Any:
        """`body` with each placeholder replaced by its parameter's `${name}`."""
        if isinstance(body, dict):
            return {key: self.named(item) for key, item in body.items()}
        if isinstance(body, list):
            return [self.named(item) for item in body]
        for param in self.params:
            if body == param.placeholder:
                return "${" + param.name + "}"
        return body


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _kind(values: list[Any]) -> str | None:
    if all(isinstance(v, list) for v in values):
        items = [item for v in values for item in v]
        inner = _kind(items) if items else "int"
        return f"list[{inner}]" if inner and not inner.startswith("list") else None
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "string"
    return None


def _identifier(wanted: str, taken: set[str]) -> str:
    first = re.sub(r"[^A-Za-z0-9]+", "_", wanted).strip("_") or "value"
    for candidate in [first] + [f"{first}_{n}" for n in range(2, 1000)]:
        if not candidate[0].isalpha():
            candidate = "p_" + candidate
        if candidate not in taken and candidate not in RESERVED:
            return candidate
    raise AssertionError("unreachable: a thousand names taken")


# ---------------------------------------------------------------------------
# Modules


@dataclass
class Module:
    name: str
    copies: list[Instance]
    naming: Naming
    body: list[dict[str, Any]]  # merged fields per layer
    params: list[Param]
    inputs: list[str]  # port names
    outputs: list[int]  # blob indexes that are outputs

    def declaration(self) -> dict[str, Any]:
        decl: dict[str, Any] = {"doc": f"Recovered by `caffeconf import --modules`: used {len(self.copies)} times."}
        if not self.naming.qualified:
            decl["qualify"] = False
        params = ({"id": {"type": "string"}} if self.naming.ids else {})
        for param in self.params:
            params[param.name] = {"type": param.kind, **({"default": param.default} if param.has_default else {})}
        if params:
            decl["params"] = params
        decl["inputs"] = self.inputs
        decl["outputs"] = [self.naming.blob_names[k] for k in self.outputs]
        decl["layers"] = self.layer_entries()
        return decl

    def layer_entries(self) -> list[dict[str, Any]]:
        entries = []
        prev = [self.inputs[0]] if len(self.inputs) == 1 else None
        for (layer_type, bottom_refs, top_refs), name, fields in zip(self.copies[0].wiring, self.naming.layer_names,
                                                                     self.body):
            bottoms, tops = [self.ref(r) for r in bottom_refs], [self.ref(r) for r in top_refs]
            entries.append(layer_entry(name, layer_type, bottoms, tops, fields, prev))
            prev = tops
        return entries

    def ref(self, ref: tuple[str, int]) -> str:
        kind, index = ref
        return self.inputs[index] if kind == "in" else self.naming.blob_names[index]

    def use(self, copy_index: int, prev: list[str] | None) -> tuple[dict[str, Any], list[str]]:
        """The use entry for one copy, and the caller's names for its outputs."""
        copy = self.copies[copy_index]
        entry: dict[str, Any] = {"use": self.name, "name": literal(self.naming.instance_names[copy_index])}
        inputs = [literal(blob) for blob in copy.inputs]
        if inputs and not (len(inputs) == 1 and prev == inputs):
            entry["bottom"] = inputs[0] if len(inputs) == 1 else inputs
        given = {"id": literal(self.naming.ids[copy_index])} if self.naming.ids else {}
        for param in self.params:
            value = param.values[copy_index]
            if not (param.has_default and _same(value, param.default)):
                given[param.name] = value
        if given:
            entry["with"] = given
        return entry, [literal(copy.blobs[k]) for k in self.outputs]

    def lines_saved(self) -> int:
        """Roughly: the copies' layers, less the module (a header, its params, its layers) and its uses."""
        body = len(self.body)
        return len(self.copies) * body - (6 + len(self.params) + body + len(self.copies))


def build_module(name: str, copies: list[Instance], naming: Naming) -> Module | None:
    merge = Merge()
    body = []
    for index in range(len(copies[0].layers)):
        hint = naming.layer_names[index]
        if not naming.qualified:  # res${id}_branch2a -> branch2a
            hint = hint.replace("${id}", "").rsplit("_", 1)[-1]
        body.append(merge.merge([copy.fields[index] for copy in copies], "value", hint))
    if merge.failed:
        return None
    merge.name_params()
    body = [merge.named(fields) for fields in body]
    for param in merge.params:
        _choose_default(param)
    taken = set(naming.layer_names) | set(naming.blob_names)
    ports = _port_names(len(copies[0].inputs), taken)
    outputs = sorted({copy.blobs.index(blob) for copy in copies for blob in copy.outputs})
    return Module(name, copies, naming, body, merge.params, ports, outputs)


def _choose_default(param: Param) -> None:
    counts = Counter(repr(value) for value in param.values)
    text, count = counts.most_common(1)[0]
    if count >= 2 and count * 2 > len(param.values):
        param.default = next(value for value in param.values if repr(value) == text)
        param.has_default = True


def _port_names(count: int, taken: set[str]) -> list[str]:
    base = "x"
    while base in taken or any(name.startswith(base) and name[len(base):].isdigit() for name in taken):
        base += "_"
    return [base] if count == 1 else [f"{base}{n}" for n in range(1, count + 1)]


# ---------------------------------------------------------------------------
# The plan: which blocks become which modules


def find_modules(layers: tuple[Layer, ...]) -> list[Module]:
    """Modules worth having (they save lines), each with its copies, in order of first copy."""
    producer = producers(layers)
    groups: dict[tuple, list[Instance]] = {}
    for block in segments(layers):
        if len(block) >= 2:
            copy = describe(block, layers, producer)
            groups.setdefault(copy.key(), []).append(copy)
    modules: list[Module] = []
    taken: set[str] = set()
    for copies in groups.values():
        for subset, naming in _namings(copies):
            module = build_module(_module_name(naming, taken), subset, naming)
            if module is not None and module.lines_saved() > 0:
                taken.add(module.name)
                modules.append(module)
    return sorted(modules, key=lambda module: module.copies[0].span.start)


def _namings(copies: list[Instance]) -> list[tuple[list[Instance], Naming]]:
    """Copies with a naming that fits them all; else groups of copies that qualify alike."""
    if len(copies) < 2:
        return []
    for choose in (qualified_naming, templated_naming):
        naming = choose(copies)
        if naming is not None:
            return [(copies, naming)]
    alike: dict[tuple, list[Instance]] = {}
    for copy in copies:
        inner = tuple(name.split("/", 1)[-1] for name in [layer.name for layer in copy.layers] + copy.blobs)
        alike.setdefault(inner, []).append(copy)
    found = []
    for subset in alike.values():
        naming = qualified_naming(subset) if len(subset) >= 2 else None
        if naming is not None:
            found.append((subset, naming))
    return found


def _module_name(naming: Naming, taken: set[str]) -> str:
    stem = re.match(r"[A-Za-z_]*", _common_prefix(naming.instance_names)).group().strip("_").lower() or "block"
    stem = re.sub(r"[^a-z0-9_]", "_", stem)
    return next(name for name in [stem] + [f"{stem}_{n}" for n in range(2, 10000)] if name not in taken)


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
            entry = flat_entries([layers[position]], prev)[0]
            out.append(entry)
            prev = [literal(top) for top in layers[position].tops]
            position += 1
    return out


# ---------------------------------------------------------------------------
# Repeats


def with_repeats(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of chained uses of one module whose names follow a sequence, as one `repeat` entry."""
    out: list[dict[str, Any]] = []
    start = 0
    while start < len(entries):
        stop, merged = start + 1, None
        for end in range(start + 2, len(entries) + 1):
            candidate = _repeat(entries[start:end])
            if candidate is None:
                break
            stop, merged = end, candidate
        out.append(merged or entries[start])
        start = stop
    return out


def _repeat(run: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not all("use" in e and "bottom" not in e and "top" not in e and e["use"] == run[0]["use"] for e in run):
        return None
    name = _sequence([e["name"] for e in run])
    keys = list(dict.fromkeys(key for e in run for key in e.get("with", {})))
    given = {}
    for key in keys:
        values = [e.get("with", {}).get(key, _ABSENT) for e in run]
        if all(_same(value, values[0]) for value in values) and values[0] is not _ABSENT:
            given[key] = values[0]
        elif all(isinstance(value, str) for value in values):
            given[key] = _sequence(values)
        else:
            return None
    if name is None or None in given.values():
        return None
    entry = {"use": run[0]["use"], "name": name, "repeat": len(run)}
    return {**entry, "with": given} if given else entry


_ABSENT = object()


def _sequence(texts: list[str]) -> str | None:
    """A template on the repeat index `i` for `texts` (fire2, fire3 -> fire${i + 2}; 2b, 2c -> 2${letter(i + 1)})."""
    common = _common_prefix(texts)
    for prefix in (common.rstrip("0123456789"), common):  # whole numbers in the varying part, if that works
        middles = [text[len(prefix):] for text in texts]
        suffix = _common_prefix([m[::-1] for m in middles])[::-1].lstrip("0123456789")
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


def factored_document(imported: Imported, render: Callable[[dict], str],
                      compiles_back: Callable[[str], bool]) -> tuple[str | None, list[str]]:
    """The modular config text, or None (with a note) when no modules could be kept.

    Every candidate is checked by compiling: a module whose config does not give back the net
    exactly is left flat and reported, so the result is always exact."""
    modules = find_modules(imported.layers)
    if not modules:
        return None, []
    for chosen, repeats in ((modules, True), (modules, False)):
        text = _text(imported, chosen, repeats, render)
        if compiles_back(text):
            return text, []
    kept = [m for m in modules if compiles_back(_text(imported, [m], False, render))]
    dropped = [m.name for m in modules if m not in kept]
    notes = [f"module {name} was left flat: it did not compile back to the same layers" for name in dropped]
    if kept and compiles_back(text := _text(imported, kept, False, render)):
        return text, notes
    return None, notes


def _text(imported: Imported, modules: list[Module], repeats: bool, render: Callable[[dict], str]) -> str:
    top = entries(imported.layers, modules)
    declared = {module.name: module.declaration() for module in modules}
    return render(document(imported, with_repeats(top) if repeats else top, declared))
