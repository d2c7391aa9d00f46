"""A position in an open config, as typed so far -> what may go there: module names after
`use:`, the module's parameters inside `with:` (type and default), Caffe fields of a layer or
of one of its messages, the format's own keys, layer types and enum values; in a prototxt, the
fields of the message around the cursor, layer types and enum values.

What is being typed rarely parses: a key without its colon is completed by reading the buffer
with a placeholder value after the cursor (`kern` as `kern: 0`), so the tree says where it is."""

from __future__ import annotations

import difflib
import re
from typing import Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from lsprotocol import types

from ..caffe import descriptions
from ..caffe.facts import layer_types
from ..compile.library import unit_key
from ..compile.expr import FUNCTIONS
from ..compile.fields import net_message
from ..compile.resolve import USE_KEYS
from ..compile.syntax import INSTANCE
from ..compile.schema import TYPE_PARAMS, field_description, type_specific_fields
from .checks import Checks
from .documents import Config, read_config
from .hover import param_line
from ..compile.tree import Map, Scalar, Seq
from ..importer.config_text import toml_value, yaml_scalar
from .places import Place, caffe_field, caffe_message
from .prototxt import proto_place

Item = types.CompletionItem
Kind = types.CompletionItemKind
_TYPED = re.compile(r"[\w.]*$")  # the part of a name typed before the cursor
# By syntax, how a key meets its value: `key: ` or `key = ` just before the cursor (a value is
# being typed), `key: [a, ` (an item of a list value), and the placeholder value for a bare key.
_YAML = (re.compile(r"([\w.]+)\s*:\s*$"), re.compile(r"([\w.]+)\s*:\s*\[[^\[\]{}:]*$"), ": 0")
_TOML = (re.compile(r"([\w.]+)\s*=\s*$"), re.compile(r"([\w.]+)\s*=\s*\[[^\[\]{}=]*$"), " = 0")
PLACEHOLDER = "_"
_IN_EXPRESSION = re.compile(r"\$\{[^}]*$")  # inside a `${...}` not closed before the cursor


def completions(checks: Checks, path: str, line: int, col: int) -> list[Item]:
    """The items for 1-based (line, code point column) in the open buffer `path`: read as it is,
    else with the flow mappings and lists open before the cursor closed at it, else as the last
    text of it that parsed with the cursor's line (so closed) in its place."""
    text = checks.buffers[path]
    for reading, at_line in _readings(text, checks.parsed.get(path), line, col):
        found = _complete(checks, path, reading, at_line, col)
        if found is not None:
            return found
    return []


def _readings(text: str, parsed: str | None, line: int, col: int) -> Iterator[tuple[str, int]]:
    """(a text to read, the cursor's line in it), the most faithful first."""
    lines = text.split("\n")
    typed = (lines[line - 1] if line <= len(lines) else "")[:col - 1]
    closed = typed + _closers("\n".join(lines[:line - 1] + [typed]))
    yield text, line
    if closed != typed:
        yield "\n".join(lines[:line - 1] + [closed] + lines[line:]), line
    if parsed is not None and parsed != text:
        before, typed_before, after = _lines_around(parsed.split("\n"), lines, line - 1)
        for before in (before + typed_before, before) if typed_before else (before,):
            yield "\n".join(before + [typed + _closers("\n".join(before + [typed]))] + after), len(before) + 1


def _closers(text: str) -> str:
    """What closes the flow mappings and lists left open in `text` (quotes and comments skipped)."""
    stack: list[str] = []
    for line in text.split("\n"):
        quote = None
        for at, char in enumerate(line):
            if quote:
                quote = None if char == quote else quote
            elif char in "\"'" and (at == 0 or line[at - 1] in " \t[{,:="):
                quote = char
            elif char == "#" and (at == 0 or line[at - 1] in " \t"):
                break
            elif char in "{[":
                stack.append("}" if char == "{" else "]")
            elif char in "}]" and stack and stack[-1] == char:
                stack.pop()
    return "".join(reversed(stack))


def _lines_around(parsed: list[str], lines: list[str], index: int) -> tuple[list[str], list[str], list[str]]:
    """The lines of the last text that parsed before and after the one that line `index` of
    `lines` is (or is typed among), and the lines typed since before it in the same change."""
    for tag, start, end, new_start, new_end in difflib.SequenceMatcher(None, parsed, lines, autojunk=False).get_opcodes():
        if new_start <= index < new_end:
            if tag == "equal":
                start += index - new_start
                return parsed[:start], [], parsed[start + 1:]
            return parsed[:start], lines[new_start:index], parsed[end:]
    return parsed, [], []


def _complete(checks: Checks, path: str, text: str, line: int, col: int) -> list[Item] | None:
    """The items at (line, col) when `path` reads as `text`; None when it does not parse there."""
    before = (text.split("\n")[line - 1] if line <= text.count("\n") + 1 else "")[:col - 1]
    if _IN_EXPRESSION.search(before):
        return _in_expression(checks, path, text, (line, col))
    typed = _TYPED.search(before).group(0)
    key_before, list_of_key, placeholder_value = _TOML if path.lower().endswith(".toml") else _YAML
    value_of = key_before.search(before[:len(before) - len(typed)]) or list_of_key.search(before)
    if value_of:
        return _value_of(checks, path, text, (line, col), (line, value_of.start(1) + 1), bool(typed))
    found = _items_at(checks, path, text, (line, col - len(typed)), _keys)
    if found is None:  # a key without its value does not parse: read `kern` as `kern: 0`
        patched = _insert(text, line, col, ("" if typed else PLACEHOLDER) + placeholder_value)
        found = _items_at(checks, path, patched, (line, col - len(typed)), _keys)
    return found


def _in_expression(checks: Checks, path: str, text: str, cursor: tuple[int, int]) -> list[Item] | None:
    for closing in ("", "}", '}"', "}'"):  # what an editor may not have closed yet
        found = _items_at(checks, path, _insert(text, *cursor, closing), cursor, _expression, on_key=False)
        if found is not None:
            return found
    return None


def _value_of(checks: Checks, path: str, text: str, cursor: tuple[int, int], key_at: tuple[int, int],
              typed: bool) -> list[Item] | None:
    """The values for the key at `key_at`; TOML has no empty value, so `key = ` is read as
    `key = 0` when it does not parse."""
    found = _items_at(checks, path, text, key_at, _values)
    if found is None and not typed:
        found = _items_at(checks, path, _insert(text, *cursor, "0"), key_at, _values)
    written = toml_value if path.lower().endswith(".toml") else yaml_scalar
    for item in found or ():  # a name inserted as the format reads it back: `"AbsVal"` in TOML, `"001"` in YAML
        item.insert_text = item.label if item.kind == Kind.Value else written(item.label)
    return found


def _insert(text: str, line: int, col: int, extra: str) -> str:
    lines = text.split("\n")
    lines[line - 1] = lines[line - 1][:col - 1] + extra + lines[line - 1][col - 1:]
    return "\n".join(lines)


def _items_at(checks: Checks, path: str, text: str, at: tuple[int, int], items_for,
              on_key: bool = True) -> list[Item] | None:
    """`items_for(config, place)` for the key at `at` (or, not `on_key`, whatever is there) when
    `path` reads as `text` (in the dialect the config names); None when `text` does not parse or
    no key is there."""
    with checks.reading({path: text}):
        config = read_config(path, checks.limits)
        place = config.place(*at) if config else None
        return items_for(config, place) if place is not None and (place.on_key or not on_key) else None


def _keys(config: Config, place: Place) -> list[Item]:
    """The keys that may go in the map holding the key at `place`."""
    inside = place.within_entry()
    if inside is None:
        return []
    entry, keys = inside
    parent = keys[:-1]
    if "use" in entry and parent == ():
        return [Item(key, kind=Kind.Keyword, documentation=descriptions.FORMAT.get(f"use.{key}")) for key in USE_KEYS]
    if "use" in entry and parent == ("with",):
        module = config.entry_module(place)
        return [Item(name, kind=Kind.Variable, detail=param_line(decl), documentation=decl.doc or None)
                for name, decl in (module.params.items() if module else ())]
    message = caffe_message(parent)
    if message is None:
        return []
    own = [Item(key[len("layer."):], kind=Kind.Keyword, documentation=text)
           for key, text in descriptions.FORMAT.items() if key.startswith("layer.")] if parent == () else []
    own_names = {item.label for item in own}
    if parent == ():  # a layer of a known type takes only the `*_param` messages that type reads
        written = entry.get("type")
        reads = TYPE_PARAMS.get(written.value) if isinstance(written, Scalar) and isinstance(written.value, str) else None
        own_names |= set(type_specific_fields()) - set(reads) if reads is not None else set()
    return own + [item for item in _fields(message) if item.label not in own_names]


def _values(config: Config, place: Place) -> list[Item]:
    """The values that may follow the key at `place`."""
    inside = place.within_entry()
    if inside is None:
        return []
    entry, keys = inside
    if keys == ("use",):
        return [Item(name, kind=Kind.Module, documentation=(module.doc or None) if module else None)
                for name in config.library.visible(unit_key(config.document.path))
                for module in [config.module(name)]]
    if keys[:1] == ("bottom",):
        return [Item(name, kind=Kind.Variable, detail="blob") for name in _blobs(config, place)]
    if keys == ("type",) and "use" not in entry:
        return _layer_types()
    return _field_values(caffe_field(keys))


def _layer_types(quoted: bool = False) -> list[Item]:
    return [Item(name, kind=Kind.Class, documentation=descriptions.LAYER_TYPES.get(name),
                 insert_text=f'"{name}"' if quoted else None) for name in sorted(layer_types())]


def _field_values(field: FieldDescriptor | None) -> list[Item]:
    """An enum field's value names, or a bool's."""
    if field is not None and field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return [Item(value.name, kind=Kind.EnumMember) for value in field.enum_type.values]
    if field is not None and field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return [Item(name, kind=Kind.Value) for name in ("true", "false")]
    return []


def _fields(message: Descriptor | None) -> list[Item]:
    return [Item(field.name, kind=Kind.Field, detail=field_description(field)) for field in message.fields] \
        if message else []


def proto_completions(text: str, line: int, col: int) -> list[Item]:
    """In a prototxt: the fields of the message around the cursor, layer types after `type:`
    (quoted, where no quote is typed yet), enum and bool values."""
    place = proto_place(text, line, col)
    if not place.is_value:
        return _fields(caffe_message(place.blocks, net_message()))
    if place.blocks == ("layer",) and place.field == "type":
        return _layer_types(quoted=not place.word)
    return _field_values(caffe_field((*place.blocks, place.field), net_message()))


def _blobs(config: Config, place: Place) -> list[str]:
    """The blob names visible to the entry at `place`: its module's inputs, and the tops of the
    entries before it in its list (as written; names with `${...}` left out)."""
    after, _ = place.entry()
    earlier = place.nodes[after - 1].items[:place.keys[after - 1]]
    module = config.document.modules.get(place.keys[1]) if place.keys[0] == "modules" else None
    names = [port.name for port in module.inputs] if module else []
    for entry in earlier:
        names += _tops(config, entry) if isinstance(entry, Map) else []
    return list(dict.fromkeys(name for name in names if "${" not in name))


def _tops(config: Config, entry: Map) -> list[str]:
    """The blobs an entry writes: its `top`s; else a use's outputs under its instance name, a
    layer's own name (none for one written in place)."""
    written = _names(entry.get("top"))
    name, use = entry.get("name"), entry.get("use")
    if written or not isinstance(name, Scalar):
        return written
    if isinstance(use, Scalar):
        module = config.module(str(use.value))
        return [f"{name.value}{config.document.separator}{port.name}" for port in module.outputs] if module else []
    in_place = entry.get("in_place")
    return [] if isinstance(in_place, Scalar) and in_place.value is True else [str(name.value)]


def _names(node) -> list[str]:
    """Names written as one string, a list of them, or a mapping to them (by output name)."""
    items = node.items if isinstance(node, Seq) else tuple(node.values.values()) if isinstance(node, Map) else (node,)
    return [str(item.value) for item in items if isinstance(item, Scalar) and isinstance(item.value, str)]


def _expression(config: Config, place: Place) -> list[Item]:
    """Inside `${...}`: the parameters in scope (the module's and `instance`, else the document's),
    the declared variants, the entry's repeat index, then the functions an expression may call."""
    module = config.document.modules.get(place.keys[1]) if place.keys[:1] == ("modules",) else None
    names = [*module.params, INSTANCE] if module else list(config.document.params)
    names += config.document.variants
    found = place.entry()
    repeat = found[1].get("repeat") if found else None
    if repeat is not None:
        var = repeat.get("var") if isinstance(repeat, Map) else None
        names.append(str(var.value) if isinstance(var, Scalar) else "i")
    items = [Item(name, kind=Kind.Variable) for name in dict.fromkeys(names)]
    return items + [Item(name, kind=Kind.Function, detail=f"{name}(...)") for name in FUNCTIONS]
