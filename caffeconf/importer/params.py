"""The field values of a module's copies → one module body, with typed parameters where they differ.

A value that differs between copies becomes a parameter (values that differ alike share one); a
scalar field that some copies lack becomes a nullable parameter (null leaves it out); a message that
some copies lack and the others agree on is switched on by a bool parameter named after the field.
A kernel, pad or stride written square (`kernel_size: 3`) in some copies and as height and width
(`kernel_h: 1`, `kernel_w: 7`) in others is one list parameter: `[3]`, `[1, 7]`, or `[]` for neither.
"""

from __future__ import annotations

import itertools
import keyword
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Names a parameter must not take: the expression language's own words.
RESERVED = frozenset({"i", "id", "instance", "true", "false", "null", "min", "max", "len", "abs", "int",
                      "float", "str", "round", "upper", "lower", "letter"} | set(keyword.kwlist))
# Parameter names by the role of the Caffe field they set.
ROLES = {"num_output": "channels", "kernel_size": "kernel", "negative_slope": "slope", "dropout_ratio": "ratio"}
ABSENT = object()  # a field a copy does not set
# Caffe's square field and its height/width pair, for the shapes a copy may write either way.
SHAPE_FIELDS = (("kernel_size", "kernel_h", "kernel_w"), ("pad", "pad_h", "pad_w"), ("stride", "stride_h", "stride_w"))
# A parameter's type by the Python types of its values, the narrowest first.
_KINDS = (("bool", {bool}), ("int", {int}), ("float", {int, float}), ("string", {str}))
_EXPRESSION_TEXT = re.compile(r"[A-Za-z0-9_ ./+-]*")  # strings a `${'...'}` may hold as they are


@dataclass
class Param:
    key: str  # the field (or inner parameter) it sets
    hint: str  # the layer it is in
    values: list[Any]  # per copy; None where the copy leaves the field out
    kind: str
    name: str = ""
    default: Any = None
    has_default: bool = False
    layers: set[int] = field(default_factory=set)  # the module's layers it is used in

    @property
    def placeholder(self) -> str:
        return f"\0{id(self)}\0"

    def declaration(self) -> dict[str, Any]:
        return {"type": self.kind, **({"default": self.default} if self.has_default else {})}


@dataclass(frozen=True)
class Switched:
    """A value written only where a bool parameter is true."""

    param: Param
    value: Any


@dataclass(frozen=True)
class Shaped:
    """One of a shape's fields, read from a list parameter: the square field (`axis` None) takes a
    one-element list, the height (0) and width (1) fields a two-element one."""

    param: Param
    axis: int | None

    def expression(self) -> str:
        name = self.param.name
        if self.axis is None:
            return "${" + name + " if len(" + name + ") == 1 else null}"
        return "${" + f"{name}[{self.axis}] if len({name}) == 2 else null" + "}"


@dataclass
class Merge:
    """Field values of all copies merged into one module body, collecting parameters."""

    params: list[Param] = field(default_factory=list)
    failed: bool = False
    layer: int = 0  # the layer being merged, recorded in the parameters it uses
    set_in: dict[str, dict[int, str]] = field(default_factory=dict)  # per field: each layer's first value

    def merge(self, values: list[Any], key: str, hint: str) -> Any:
        first = values[0]
        self._note(first)
        if all(same(value, first) for value in values):
            return first
        if all(isinstance(value, dict) for value in values):
            return self._merge_messages(values, hint)
        if all(isinstance(value, list) and len(value) == len(first) for value in values) and _holds_message(first):
            return [self.merge([value[i] for value in values], key, hint) for i in range(len(first))]
        return self.param(values, key, hint).placeholder

    def _merge_present(self, values: list[Any], key: str, hint: str) -> Any:
        if all(value is not ABSENT for value in values):
            return self.merge(values, key, hint)
        present = [value for value in values if value is not ABSENT]
        if not any(_holds_message(value) for value in present):
            return self.param([None if value is ABSENT else value for value in values], key, hint).placeholder
        if all(same(value, present[0]) for value in present):
            return self._switched(present[0], self.param([value is not ABSENT for value in values], key, hint))
        self.failed = True
        return None

    def merge_some(self, values: list[Any], having: list[bool], key: str, hint: str) -> Any:
        """`values` merged over the copies `having` the layer (the others lack it): a parameter that
        another layer already has for those copies is that one; a new one gives the copies without
        the layer its most common value (it is never written for them)."""
        inner = Merge(layer=self.layer)
        body = inner.merge([value for value, here in zip(values, having) if here], key, hint)
        self.failed |= inner.failed
        for field_key, layers in inner.set_in.items():
            self.set_in.setdefault(field_key, {}).update(layers)
        found: dict[int, Param] = {}
        for param in inner.params:
            known = next((known for known in self.params
                          if all(same(a, b) for a, b in zip([v for v, here in zip(known.values, having) if here],
                                                            param.values))), None)
            if known is None:
                filler = Counter(repr(value) for value in param.values).most_common(1)[0][0]
                common = next(value for value in param.values if repr(value) == filler)
                present = iter(param.values)
                known = Param(param.key, param.hint, [next(present) if here else common for here in having],
                              param.kind)
                self.params.append(known)
            known.layers.add(self.layer)
            found[id(param)] = known
        return _reparameterized(body, found)

    def _note(self, fields: Any) -> None:
        """Record the fields a layer sets (as its first copy has them), for naming parameters."""
        if isinstance(fields, dict):
            for key, item in fields.items():
                self.set_in.setdefault(key, {})[self.layer] = repr(item)
                self._note(item)

    def _merge_messages(self, values: list[dict[str, Any]], hint: str) -> dict[str, Any]:
        keys = list(dict.fromkeys(k for value in values for k in value))
        forms = {fields: found for fields in SHAPE_FIELDS for found in [_shape_forms(values, fields)] if found}
        merged: dict[str, Any] = {}
        for fields in _shape_order(keys, forms):
            if fields in forms:  # a shape written both ways: its three fields read one list parameter
                param = self.param(forms[fields], fields[0], hint)
                merged.update({fields[0]: Shaped(param, None), fields[1]: Shaped(param, 0), fields[2]: Shaped(param, 1)})
            else:
                merged[fields[0]] = self._merge_present([value.get(fields[0], ABSENT) for value in values],
                                                        fields[0], hint)
        return merged

    def _switched(self, value: Any, switch: Param) -> Any:
        if isinstance(value, dict):
            return {key: self._switched(item, switch) for key, item in value.items()}
        if isinstance(value, list) and any(isinstance(item, dict) for item in value):
            return [self._switched(item, switch) for item in value]
        if isinstance(value, str) and not _EXPRESSION_TEXT.fullmatch(value):
            self.failed = True
        return Switched(switch, value)

    def param(self, values: list[Any], key: str, hint: str) -> Param:
        found = next((known for known in self.params if all(same(a, b) for a, b in zip(known.values, values))), None)
        if found is None:
            kind = _kind([value for value in values if value is not None])
            if kind is None:
                self.failed = True
            found = Param(key, hint, values, kind or "string")
            self.params.append(found)
        found.layers.add(self.layer)
        return found

    def name_params(self, taken: set[str] | None = None, roles: dict[int, str] | None = None) -> None:
        """By `roles[id(param)]` where the block gives one; else by the field's role where only one
        parameter sets that field, unless it sets it in one layer while others set it to values of
        their own; else by the layer for a width (`n1x1` for the channels of layer 1x1, `pool_proj`);
        else by both (`pad_pool`)."""
        keys = Counter(param.key for param in self.params)
        hints = Counter(param.hint for param in self.params)
        roles = roles or {}
        taken = set(taken or ()) | set(roles.values())
        for param in self.params:
            role = ROLES.get(param.key, param.key)
            if id(param) in roles:
                param.name = roles[id(param)]
                continue
            others = {value for layer, value in self.set_in.get(param.key, {}).items() if layer not in param.layers}
            one_of_several = len(param.layers) == 1 and len(others) > 1
            if keys[param.key] == 1 and not (one_of_several and param.hint):
                wanted = role
            elif hints[param.hint] == 1 and param.hint and (keys[param.key] > 1 or role == "channels"):
                initial = "n" if role == "channels" else role[0]
                wanted = param.hint if param.hint[0].isalpha() else initial + param.hint
            else:
                wanted = f"{role}_{param.hint}"
            param.name = identifier(wanted, taken)
            taken.add(param.name)

    def named(self, body: Any) -> Any:
        """`body` with each placeholder replaced by its parameter's `${name}`."""
        if isinstance(body, dict):
            return {key: self.named(item) for key, item in body.items()}
        if isinstance(body, list):
            return [self.named(item) for item in body]
        if isinstance(body, Shaped):
            return body.expression()
        if isinstance(body, Switched):
            return "${" + _expression_literal(body.value) + " if " + body.param.name + " else null}"
        for param in self.params:
            if body == param.placeholder:
                return "${" + param.name + "}"
        return body

    def choose_defaults(self) -> None:
        for param in self.params:
            _choose_default(param)


def _reparameterized(body: Any, found: dict[int, Param]) -> Any:
    """`body` with each parameter `p` (placeholder, switch or shape) replaced by `found[id(p)]`."""
    if isinstance(body, dict):
        return {key: _reparameterized(item, found) for key, item in body.items()}
    if isinstance(body, list):
        return [_reparameterized(item, found) for item in body]
    if isinstance(body, Switched):
        return Switched(found[id(body.param)], body.value)
    if isinstance(body, Shaped):
        return Shaped(found[id(body.param)], body.axis)
    placeholders = {f"\0{key}\0": param for key, param in found.items()}
    return placeholders[body].placeholder if isinstance(body, str) and body in placeholders else body


def string_expression(written: str) -> str | None:
    """A written name as an expression giving it (`res${id}_branch1` -> `'res' + id + '_branch1'`), if
    its text can be quoted in one."""
    pieces = re.split(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", written)
    texts, names = pieces[0::2], pieces[1::2]
    if any("$" in text or not _EXPRESSION_TEXT.fullmatch(text) for text in texts):
        return None
    terms = [term for text, name in itertools.zip_longest(texts, names)
             for term in ([f"'{text}'"] if text else []) + ([name] if name else [])]
    return " + ".join(terms) or "''"


def _shape_forms(values: list[dict[str, Any]], fields: tuple[str, str, str]) -> list[list[Any]] | None:
    """Each copy's shape as `[n]` (square), `[h, w]` or `[]` (neither), when some copies write it
    square and others as a pair; None otherwise, or where a copy mixes forms or writes a list
    (`kernel_size: [1, 7]` is not `kernel_h`/`kernel_w` in the net)."""
    square, height, width = fields
    forms = []
    for value in values:
        pair = [value[key] for key in (height, width) if key in value]
        if square in value:
            forms.append([value[square]] if not pair and isinstance(value[square], int) else None)
        else:
            forms.append(pair if len(pair) != 1 and all(isinstance(item, int) for item in pair) else None)
    if None in forms or not {1, 2} <= {len(form) for form in forms}:
        return None
    return forms


def _shape_order(keys: list[str], shaped: dict[tuple[str, str, str], Any]) -> list[tuple[str, ...]]:
    """The keys to merge, in order: a shape written both ways once, as its three fields, where the
    first of them was; every other key alone."""
    return list(dict.fromkeys(next((fields for fields in shaped if key in fields), (key,)) for key in keys))


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _holds_message(value: Any) -> bool:
    return isinstance(value, dict) or isinstance(value, list) and any(isinstance(item, dict) for item in value)


def indexed(values: list[Any]) -> str | None:
    """The values along a repeat as an expression of its index, if each can be written in one:
    `${i == 0}` or `${2 if i == 0 else 1}` where only the first differs (a stage's first block),
    else `${[a, b, c][i]}`."""
    if not all(_writable(value) for value in values):
        return None
    first, rest = values[0], values[1:]
    if len(values) > 2 and all(same(value, rest[0]) for value in rest):
        if first is True and rest[0] is False:
            return "${i == 0}"
        return "${" + f"{_expression_literal(first)} if i == 0 else {_expression_literal(rest[0])}" + "}"
    return "${[" + ", ".join(_expression_literal(value) for value in values) + "][i]}"


def _writable(value: Any) -> bool:
    if isinstance(value, list):
        return all(_writable(item) for item in value)
    return isinstance(value, (int, float)) or value is None or isinstance(value, str) \
        and bool(_EXPRESSION_TEXT.fullmatch(value))


def _expression_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(_expression_literal(item) for item in value) + "]"
    return repr(value)


def _kind(values: list[Any]) -> str | None:
    if not values:
        return None
    if all(isinstance(v, list) for v in values):
        items = [item for v in values for item in v]
        inner = _kind(items) if items else "int"
        return f"list[{inner}]" if inner and not inner.startswith("list") else None
    types = {type(v) for v in values}
    return next((kind for kind, allowed in _KINDS if types <= allowed), None)


def _choose_default(param: Param) -> None:
    """The value more copies share than any other, if a third of them do (fewer would be a chance
    default no person would write): each copy with the default leaves it out of its `with`. A field
    some copies leave out: the value most copies share, else null (the only default such a
    parameter can have)."""
    counts = Counter(repr(value) for value in param.values).most_common(2)
    (text, count), runner_up = counts[0], (counts[1][1] if len(counts) > 1 else 0)
    most = count * 2 > len(param.values) if None in param.values else count > runner_up \
        and count * 3 >= len(param.values)
    if count >= 2 and most:
        param.default = next(value for value in param.values if repr(value) == text)
        param.has_default = True
    elif None in param.values:
        param.default, param.has_default = None, True  # null is the only default a field left out can have


def plain_ports(count: int, taken: set[str]) -> list[str]:
    """Names for `count` inputs that have no role of their own: `x`, `x` and `y`, or `x1`...`xn`."""
    if count == 2 and not {"x", "y"} & taken:
        return ["x", "y"]
    base = "x"
    while base in taken or any(name.startswith(base) and name[len(base):].isdigit() for name in taken):
        base += "_"
    return [base] if count == 1 else [f"{base}{n}" for n in range(1, count + 1)]


def identifier(wanted: str, taken: set[str]) -> str:
    first = re.sub(r"[^A-Za-z0-9]+", "_", wanted).strip("_") or "value"
    for candidate in [first] + [f"{first}_{n}" for n in range(2, 1000)]:
        if not candidate[0].isalpha():
            candidate = "p_" + candidate
        if candidate not in taken and candidate not in RESERVED:
            return candidate
    raise AssertionError("unreachable: a thousand names taken")

