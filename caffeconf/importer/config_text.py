"""Config documents as text: plain data (dicts in key order, lists, scalars) → YAML or TOML.

The input is already a caffeconf document: strings are written exactly as given (a
literal `${` must already be escaped as `$${`). The YAML is read back with YAML 1.2
scalar rules and the TOML with tomllib, so a string that either would take for another
type (`true`, `1e-5`, `null`, `0x10`, `~`) is quoted. Small mappings and lists are
written in flow style on one line; larger ones as blocks.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import yaml

WIDTH = 120

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*")
# What YAML 1.2 (caffeconf's loader) reads as something other than a string.
_YAML12_NON_STRING = re.compile(
    r"(?:true|True|TRUE|false|False|FALSE|null|Null|NULL|~"
    r"|[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))")
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff]")
_BARE_TOML_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_NULL = "${null}"


# ---------------------------------------------------------------------------
# YAML


def to_yaml(document: dict[str, Any], header: str = "") -> str:
    """The document as YAML text, `header` (comment lines) first."""
    out = header.splitlines()
    _yaml_block(document, 0, out)
    return "\n".join(out) + "\n"


def _yaml_block(value: dict[str, Any] | list[Any], indent: int, out: list[str]) -> None:
    """A mapping's or a list's lines, written as a block at `indent`."""
    if isinstance(value, dict):
        for key, item in value.items():
            _yaml_value(" " * indent + f"{yaml_scalar(key)}:", item, indent, out)
    else:
        for item in value:
            _yaml_item(item, indent, out)


def _yaml_value(head: str, value: Any, indent: int, out: list[str]) -> None:
    flow = yaml_flow(value)
    if not isinstance(value, (dict, list)) or not value or len(head) + 1 + len(flow) <= WIDTH:
        out.append(f"{head} {flow}")
    else:
        out.append(head)
        _yaml_block(value, indent + 2, out)


def yaml_item_lines(item: Any) -> int:
    """How many lines a top-level list item takes in the YAML (for choosing between layouts)."""
    out: list[str] = []
    _yaml_item(item, 2, out)
    return len(out)


def _yaml_item(item: Any, indent: int, out: list[str]) -> None:
    prefix = " " * indent + "- "
    flow = yaml_flow(item)
    if not isinstance(item, (dict, list)) or not item or len(prefix) + len(flow) <= WIDTH:
        out.append(prefix + flow)
        return
    start = len(out)
    _yaml_block(item, indent + 2, out)
    out[start] = prefix + out[start][indent + 2:]


def yaml_flow(value: Any) -> str:
    """One-line YAML for any value."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_scalar(k)}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    return yaml_scalar(value)


def yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return _number_text(value, ".nan", ".inf")
    return value if _plain_ok(value) else _quoted(value)


@functools.lru_cache(maxsize=1 << 16)  # the same names and words recur thousands of times in a big net
def _plain_ok(text: str) -> bool:
    """Whether `text` reads back as this same string when written plain, in YAML 1.1 and 1.2."""
    if not _PLAIN.fullmatch(text) or _YAML12_NON_STRING.fullmatch(text):
        return False
    return yaml.safe_load(text) == text  # YAML 1.1 readers (yes, on, 1_000, 0b1) agree too


def _quoted(text: str) -> str:
    """A double-quoted string valid in YAML and TOML (JSON escapes, line breaks escaped)."""
    escaped = json.dumps(text, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)


def _number_text(value: bool | int | float, nan: str, inf: str) -> str:
    """A bool or number as YAML or TOML writes it, given how that format spells NaN and infinity."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return inf if value > 0 else "-" + inf
    if value.is_integer() and abs(value) < 1e15 and repr(value) != "-0.0":
        return str(int(value))  # Caffe's own files write `lr_mult: 1`; ints are fine in float fields
    return repr(value)


# ---------------------------------------------------------------------------
# TOML


def to_toml(document: dict[str, Any], header: str = "") -> str:
    """The document as TOML: top-level values, then `[modules.NAME]` tables, then `[[layers]]`."""
    out = header.splitlines()
    out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items() if k not in ("modules", "layers")]
    for name, module in document.get("modules", {}).items():
        out += ["", f"[modules.{toml_key(name)}]"]
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in module.items() if k != "layers"]
        _toml_tables(f"modules.{toml_key(name)}.layers", module.get("layers", []), out)
    _toml_tables("layers", document.get("layers", []), out)
    return "\n".join(out) + "\n"


def _toml_tables(path: str, entries: list[dict[str, Any]], out: list[str]) -> None:
    for entry in entries:
        out += ["", f"[[{path}]]"]
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items()]


def toml_key(key: str) -> str:
    return key if _BARE_TOML_KEY.fullmatch(key) else _quoted(key)


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if value is None:
        return _quoted(_TOML_NULL)
    if isinstance(value, (int, float)):
        return _number_text(value, "nan", "inf")
    return _quoted(value)
