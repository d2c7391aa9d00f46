"""TOML source -> located tree: the same `load.Scalar`/`Seq`/`Map` nodes a YAML config gives.

`tomllib` decides what the document means (syntax, values, duplicate keys) but
reports no positions, so `_Scanner` walks the text too and records where each
key path's key and value are written. A key path is a tuple of table keys and
array indexes, e.g. `("layers", 2, "convolution_param")`. The scan runs first:
it refuses nesting deeper than the limit before tomllib, which is slow on long
dotted keys, reads the text. A node whose place the scan did not record takes
its enclosing node's span (for a table, its header).

TOML differs from YAML in two ways a config notices:
- TOML has no null. Write the expression language's null, `"${null}"`, where a
  YAML config writes `null`, e.g. an unset default:
  `pad = {type = "int", default = "${null}"}`.
- Dates and times are TOML values with no Caffe counterpart: they are refused.

Column offsets of `${...}` errors inside a string assume the text starts one
column after the opening quote: exact for `"..."` and `'...'`, approximate in
multi-line strings and strings with escapes (as for YAML block scalars).
"""

from __future__ import annotations

import bisect
import datetime
import re
import sys
from typing import Any, Callable, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..errors import CaffeconfError, InternalError, Span
from ..limits import DEFAULT_LIMITS, Limits
from .tree import Map, Node, Scalar, Seq, opened_syntax_error

KeyPath = tuple[Union[str, int], ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOMLLIB_PLACE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")
_BLANK = " \t"
_VALUE_STOPS = ",]}#\r\n"


def parse_toml(text: str, path: str, limits: Limits = DEFAULT_LIMITS) -> Node:
    """One TOML document as a located tree; CaffeconfError for invalid or refused input."""
    scanner = _Scanner(text, path, limits)
    try:
        scanner.scan()  # first, to refuse deep nesting: tomllib reads long dotted keys in quadratic time
    except _Malformed as malformed:
        _decode(text, path)  # says what is wrong, and where
        raise InternalError(f"tomllib reads {path} but the position scan does not: {malformed}") from None
    return _build(_decode(text, path), (), scanner, scanner.root_span)


def key_path_text(key_path: KeyPath) -> str:
    """`modules.inception.layers[2].convolution_param`; keys that are not bare are quoted."""
    text = "".join(f"[{part}]" if isinstance(part, int) else "." + (part if _BARE_KEY.fullmatch(part) else _quote(part))
                   for part in key_path)
    return text.removeprefix(".")


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decode(text: str, path: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(error, text, path) from None
    except RecursionError:  # only with a nesting limit raised far above the default
        raise CaffeconfError.at(Span(path, 1, 1), "invalid TOML: nested too deeply to read") from None
    except ValueError:  # tomllib's only other refusal: Python's limit on the digits of an integer
        raise CaffeconfError.at(Span(path, 1, 1), f"invalid TOML: an integer of more than "
                                f"{sys.get_int_max_str_digits()} digits (no Caffe field holds one)") from None


def _syntax_error(error: Exception, text: str, path: str) -> CaffeconfError:
    """tomllib's "Message (at line L, column C)" as a located, lower-case diagnostic; an unclosed
    bracket or string is reported at its opening, with a note where tomllib gave up."""
    message = str(error)
    place = _TOMLLIB_PLACE.search(message)
    message = message[:place.start()] if place else message
    message = f"invalid TOML: {message[:1].lower()}{message[1:]}"
    lines = text.split("\n")
    if place and place.group(1):
        line, col = int(place.group(1)), int(place.group(2))
    elif place:  # at end of document
        line, col = len(lines), len(lines[-1]) + 1
    else:
        return CaffeconfError.at(Span(path, 1, 1), message)
    opener = _open_at(text, sum(len(earlier) + 1 for earlier in lines[:line - 1]) + col - 1)
    if opener is None or (opener[0] in "[{" and not message.startswith("invalid TOML: unclosed")):
        return CaffeconfError.at(Span(path, line, col), message)
    opened_line = text.count("\n", 0, opener[1]) + 1
    opened_col = opener[1] - (text.rfind("\n", 0, opener[1]) + 1) + 1
    opened = {"[": "array", "{": "inline table"}.get(opener[0], "string")
    return opened_syntax_error(message, opened, Span(path, opened_line, opened_col), Span(path, line, col), text)


def _open_at(text: str, end: int) -> tuple[str, int] | None:
    """The innermost bracket or string still open at index `end` of `text`, as (its opening
    bracket or quote, its index), or None; comments are skipped."""
    stack: list[tuple[str, int]] = []
    index = 0
    while index < end:
        char = text[index]
        if char == "#":  # to the line's end
            index = text.find("\n", index)
            index = len(text) if index < 0 else index
            continue
        if char in "\"'":
            quote = char * 3 if text.startswith(char * 3, index) else char
            close = _string_close(text, index + len(quote), quote)
            if close is None or close >= end:
                return quote, index
            index = close + len(quote)
            continue
        if char in "[{":
            stack.append((char, index))
        elif char in "]}" and stack:
            stack.pop()
        index += 1
    return stack[-1] if stack else None


def _string_close(text: str, index: int, quote: str) -> int | None:
    """Index of the quote closing a string body starting at `index`; None when a one-line string
    meets a line end (or the text ends) first."""
    while index < len(text):
        if text.startswith(quote, index):
            return index
        if text[index] == "\n" and len(quote) == 1:
            return None
        index += 2 if quote[0] == '"' and text[index] == "\\" else 1
    return None


def _build(value: Any, key_path: KeyPath, scanner: "_Scanner", enclosing: Span) -> Node:
    span = scanner.values.get(key_path, enclosing)
    if isinstance(value, dict):
        children = {key: _build(child, key_path + (key,), scanner, span) for key, child in value.items()}
        keys = {key: scanner.keys.get(key_path + (key,), span) for key in value}
        return Map(children, keys, span)
    if isinstance(value, list):
        return Seq(tuple(_build(item, key_path + (index,), scanner, span) for index, item in enumerate(value)),
                   span)
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date too
        raise CaffeconfError.at(span, f"{key_path_text(key_path)}: TOML dates and times have no Caffe "
                                      "equivalent", hint="write it as a string")
    return Scalar(value, span, quoted=isinstance(value, str))


class _Malformed(Exception):
    """The text is not TOML the scan understands; tomllib then reports the error."""


class _Scanner:
    """Records the span of every key and value in valid TOML text, by key path.

    Positions are string indexes; `_span` turns them into 1-based line:col.
    Nesting deeper than the limit is refused here, where it is first met.
    """

    def __init__(self, text: str, path: str, limits: Limits):
        self.text, self.path, self.limits = text, path, limits
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
        self.keys: dict[KeyPath, Span] = {}
        self.values: dict[KeyPath, Span] = {}
        self.array_tables: dict[KeyPath, int] = {}  # [[header]] path -> index of its last element
        self.root_span = Span(path, 1, 1)
        self.at = 0

    # -- positions

    def _span(self, start: int, end: int) -> Span:
        line, col = self._line_col(start)
        end_line, end_col = self._line_col(end)
        return Span(self.path, line, col, end_line, end_col)

    def _line_col(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, index)
        return line, index - self.line_starts[line - 1] + 1

    def _record(self, table: dict[KeyPath, Span], key_path: KeyPath, span: Span, replace: bool = False) -> None:
        self._check_depth(key_path, span)
        if replace or key_path not in table:
            table[key_path] = span

    def _check_depth(self, key_path: KeyPath, span: Span) -> None:
        if len(key_path) > self.limits.max_tree_depth:
            raise CaffeconfError.at(span, f"nesting deeper than {self.limits.max_tree_depth} levels "
                                          f"at {key_path_text(key_path)}")

    def _char(self) -> str:
        """The character at the scan position; "" at the end of the text."""
        return self.text[self.at:self.at + 1]

    def _expect(self, token: str) -> None:
        if not self.text.startswith(token, self.at):
            raise _Malformed(f"expected {token!r} at {self._span(self.at, self.at)}")
        self.at += len(token)

    def _skip(self, newlines: bool) -> None:
        """Past blanks and comments, and line ends too when `newlines`."""
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char in _BLANK or (newlines and char in "\r\n"):
                self.at += 1
            elif char == "#":
                end = text.find("\n", self.at)
                self.at = len(text) if end < 0 else end
            else:
                return

    # -- statements

    def scan(self) -> None:
        self._skip(newlines=True)
        if self.at < len(self.text):
            self.root_span = self._span(self.at, len(self.text))
        table: KeyPath = ()
        while self.at < len(self.text):
            if self._char() == "[":
                table = self._header()
            else:
                self._key_value(table)
            self._skip(newlines=True)

    def _header(self) -> KeyPath:
        """A `[table]` or `[[array.of.tables]]` header; the key path of the table it opens."""
        start = self.at
        is_array = self.text.startswith("[[", start)
        self._expect("[[" if is_array else "[")
        self._skip(newlines=False)
        segments = self._dotted_key()
        self._skip(newlines=False)
        self._expect("]]" if is_array else "]")
        span = self._span(start, self.at)
        table = self._walk_header(segments[:-1], span)
        name, key_span = segments[-1]
        table += (name,)
        self._record(self.keys, table, key_span, replace=not is_array)
        self._record(self.values, table, span, replace=not is_array)
        if not is_array:
            return table
        index = self.array_tables.get(table, -1) + 1
        self.array_tables[table] = index
        self._record(self.values, table + (index,), span)
        return table + (index,)

    def _walk_header(self, segments: list[tuple[str, Span]], header: Span) -> KeyPath:
        """The key path of a header's leading keys: each array of tables stands for its last element."""
        table: KeyPath = ()
        for name, key_span in segments:
            table += (name,)
            self._record(self.keys, table, key_span)
            self._record(self.values, table, header)
            if table in self.array_tables:
                table += (self.array_tables[table],)
        return table

    def _key_value(self, table: KeyPath) -> None:
        """`a.b.c = value`, inside `table`: the leading keys make tables implicitly."""
        segments = self._dotted_key(table)
        key_path = table
        for name, key_span in segments:
            key_path += (name,)
            self._record(self.keys, key_path, key_span)
            self._record(self.values, key_path, key_span)  # an implicit table is where its key is
        self._skip(newlines=False)
        self._expect("=")
        self._skip(newlines=False)
        self._value(key_path)

    def _dotted_key(self, table: KeyPath = ()) -> list[tuple[str, Span]]:
        """The parts of a key written in `table`, refused as soon as they nest too deeply."""
        segments = [self._simple_key()]
        self._skip(newlines=False)
        while self._char() == ".":
            self.at += 1
            self._skip(newlines=False)
            segments.append(self._simple_key())
            self._check_depth(table + tuple(name for name, _ in segments), segments[-1][1])
            self._skip(newlines=False)
        return segments

    def _simple_key(self) -> tuple[str, Span]:
        start = self.at
        if self._char() and self._char() in "\"'":
            self.at = self._string_end(start)
            name = self._quoted_key(self.text[start:self.at])
        else:
            match = _BARE_KEY.match(self.text, start)
            if match is None:
                raise _Malformed(f"expected a key at {self._span(start, start)}")
            self.at = match.end()
            name = match.group()
        return name, self._span(start, self.at)

    @staticmethod
    def _quoted_key(source: str) -> str:
        """A quoted key's name, its escapes decoded by tomllib."""
        try:
            return tomllib.loads("key = " + source)["key"]
        except tomllib.TOMLDecodeError as error:
            raise _Malformed(str(error)) from None

    # -- values

    def _value(self, key_path: KeyPath) -> None:
        start, char = self.at, self._char()
        if char == "{":
            self._check_depth(key_path, self._span(start, start + 1))  # before descending into it
            self._items("{", "}", lambda index: self._key_value(key_path))
        elif char == "[":
            self._check_depth(key_path, self._span(start, start + 1))
            self._items("[", "]", lambda index: self._value(key_path + (index,)))
        elif char in ("\"", "'"):
            self.at = self._string_end(start)
        else:
            self.at = self._bare_value_end(start)
        self._record(self.values, key_path, self._span(start, self.at), replace=True)

    def _items(self, opening: str, closing: str, item: Callable[[int], None]) -> None:
        """An inline table's key/value pairs or an array's values, comma-separated: `item(index)` each."""
        self._expect(opening)
        self._skip(newlines=True)
        index = 0
        while self._char() != closing:
            item(index)
            index += 1
            self._skip(newlines=True)
            if self._char() == ",":
                self.at += 1
                self._skip(newlines=True)
        self._expect(closing)

    def _bare_value_end(self, start: int) -> int:
        """End of a number, boolean or date: up to a separator, trailing blanks dropped
        (a date and time may be separated by a space)."""
        end = start
        while end < len(self.text) and self.text[end] not in _VALUE_STOPS:
            end += 1
        while end > start and self.text[end - 1] in _BLANK:
            end -= 1
        if end == start:
            raise _Malformed(f"expected a value at {self._span(start, start)}")
        return end

    def _string_end(self, start: int) -> int:
        """Index just past the string starting at `start`, of any of TOML's four kinds."""
        quote = self.text[start]
        if self.text.startswith(quote * 3, start):
            close = self._closing_quote(start + 3, quote * 3)
            end = close + 3
            while end < len(self.text) and self.text[end] == quote and end - close < 5:
                end += 1  # up to two quotes just before the closing three belong to the text
            return end
        return self._closing_quote(start + 1, quote) + 1

    def _closing_quote(self, index: int, delimiter: str) -> int:
        """Index of the `delimiter` that ends a string body starting at `index`."""
        escapes = delimiter[0] == '"'
        while not self.text.startswith(delimiter, index):
            if index >= len(self.text):
                raise _Malformed(f"unterminated string at {self._span(index, index)}")
            index += 2 if escapes and self.text[index] == "\\" else 1
        return index
