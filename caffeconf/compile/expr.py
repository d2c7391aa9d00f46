"""`${expr}` templates in config strings: text → Template → value.

The language is a small, typed subset of Python expressions, parsed with
`ast.parse(mode="eval")` and interpreted by walking an allow-list of node
types (nothing is ever compiled or `eval`ed):

- literals: int, float, str, True/False (also `true`/`false`), None (also
  `null`), and lists `[a, b]`;
- names, looked up in the scope only (no builtins);
- unary `-x +x not x`; binary `+ - * / // % **`; comparisons, chained, with
  `in`/`not in`; `and`/`or` (short-circuit, returning an operand as Python
  does); `a if c else b`; subscripts and slices of lists and strings;
- calls to the functions in `FUNCTIONS`.

Types are strict: bools are not numbers (`true + 1` is an error), `+` joins
two strs or two lists, `*` repeats a str or list by an int.  `/` always gives
a float; `//` and `%` follow Python (floor division, sign of the divisor).

A string that is exactly one `${...}` evaluates to the value itself, typed;
text mixed with `${...}` evaluates to a str in which ints print as digits,
bools as `true`/`false`, floats as Python's shortest round-trip repr
(`2.0`, `1e-05`), strs as they are.  `$${` is a literal `${`.

Limits keep hostile configs from hanging or exhausting memory: expression
length, node count and nesting depth, int size in bits, and str/list size.
"""

from __future__ import annotations

import ast
import re
import math
import operator
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from ..errors import CaffeconfError, Span, did_you_mean
from .tree import Sentinel

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 500
MAX_DEPTH = 100
MAX_INT_BITS = 4096
MAX_SEQUENCE_SIZE = 100_000  # str length; for lists, elements plus the length of strs inside
MAX_NUMERIC_STR_CHARS = 1300  # enough for any int within MAX_INT_BITS
NAME_ALIASES = {"true": True, "false": False, "null": None}


class _Refused(Exception):
    """An evaluation error not yet located; the node being evaluated locates it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


# ---------------------------------------------------------------------------
# Value checks shared by operators and functions


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: object) -> object:
    if _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise _Refused(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _sequence_size(value: object, budget: int = MAX_SEQUENCE_SIZE + 1) -> int:
    """The size a str or list counts against the limit; stops counting past `budget`."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list):
        return 1
    total = len(value)
    for item in value:
        if total > budget:
            break
        if isinstance(item, (str, list)):
            total += _sequence_size(item, budget - total)
    return total


def _check_size(size: int) -> None:
    if size > MAX_SEQUENCE_SIZE:
        raise _Refused(f"result is too large (more than {MAX_SEQUENCE_SIZE} characters or list elements)")


def format_value(value: object) -> str:
    """How a value prints inside text (and what `str()` returns)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _is_int(value):
        return str(_check_int(value))
    if isinstance(value, float):
        return repr(value)
    raise _Refused(f"cannot format a value of type '{_type_name(value)}' as text",
                   hint="only int, float, bool and str values become text; "
                        "a string that is exactly '${...}' keeps the value as it is")


# ---------------------------------------------------------------------------
# Operators


def _add(a: object, b: object) -> object:
    if _is_number(a) and _is_number(b):
        return a + b
    if type(a) is type(b) and isinstance(a, (str, list)):
        _check_size(_sequence_size(a) + _sequence_size(b))
        return a + b
    raise _Refused(f"cannot add '{_type_name(a)}' and '{_type_name(b)}'")


def _multiply(a: object, b: object) -> object:
    if _is_number(a) and _is_number(b):
        return a * b
    sequence, count = (a, b) if _is_int(b) else (b, a)
    if isinstance(sequence, (str, list)) and _is_int(count):
        _check_size(max(count, 0) * _sequence_size(sequence))
        return sequence * count
    raise _Refused(f"cannot multiply '{_type_name(a)}' and '{_type_name(b)}'")


def _numeric(verb: str, function: Callable, zero_message: str | None = None) -> Callable:
    def apply(a: object, b: object) -> object:
        if not (_is_number(a) and _is_number(b)):
            raise _Refused(f"cannot {verb} '{_type_name(a)}' and '{_type_name(b)}'")
        if zero_message and b == 0:
            raise _Refused(zero_message)
        return function(a, b)
    return apply


def _power(a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)):
        raise _Refused(f"cannot exponentiate '{_type_name(a)}' and '{_type_name(b)}'")
    if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > MAX_INT_BITS:
        raise _Refused(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    try:
        result = a ** b
    except ZeroDivisionError:
        raise _Refused("zero cannot be raised to a negative power") from None
    if isinstance(result, complex):
        raise _Refused("result of '**' is not a real number")
    return result


BINARY_OPERATORS: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", _add),
    ast.Sub: ("-", _numeric("subtract", operator.sub)),
    ast.Mult: ("*", _multiply),
    ast.Div: ("/", _numeric("divide", operator.truediv, "division by zero")),
    ast.FloorDiv: ("//", _numeric("floor-divide", operator.floordiv, "division by zero")),
    ast.Mod: ("%", _numeric("take the modulo of", operator.mod, "modulo by zero")),
    ast.Pow: ("**", _power),
}


def _numeric_unary(refusal: str, function: Callable) -> Callable:
    def apply(value: object) -> object:
        if not _is_number(value):
            raise _Refused(f"{refusal} '{_type_name(value)}'")
        return function(value)
    return apply


UNARY_OPERATORS: dict[type, Callable] = {
    ast.USub: _numeric_unary("cannot negate", operator.neg),
    ast.UAdd: _numeric_unary("cannot apply unary '+' to", operator.pos), ast.Not: operator.not_,
}


def _ordering(symbol: str, function: Callable) -> Callable:
    def compare(a: object, b: object) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return function(a, b)
        raise _Refused(f"cannot compare '{_type_name(a)}' and '{_type_name(b)}' with '{symbol}'")
    return compare


def _contains(item: object, container: object) -> bool:
    if isinstance(container, list):
        return item in container
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    if isinstance(container, str):
        raise _Refused(f"'in' a str needs a str on the left, not '{_type_name(item)}'")
    raise _Refused(f"cannot test membership in '{_type_name(container)}'")


COMPARISONS: dict[type, Callable] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
    ast.Lt: _ordering("<", operator.lt), ast.LtE: _ordering("<=", operator.le),
    ast.Gt: _ordering(">", operator.gt), ast.GtE: _ordering(">=", operator.ge),
    ast.In: _contains, ast.NotIn: lambda item, container: not _contains(item, container),
}


# ---------------------------------------------------------------------------
# Functions: pure, on scalars and flat values


def _one_type(name: str, value: object, accepts: Callable[[object], bool], wanted: str) -> None:
    if not accepts(value):
        raise _Refused(f"{name}() needs {wanted}, not '{_type_name(value)}'")


def _extreme(name: str, pick: Callable) -> Callable:
    def apply(*args: object) -> object:
        items = args[0] if len(args) == 1 else list(args)
        _one_type(name, items, lambda v: isinstance(v, list), "a list or several arguments")
        if not items:
            raise _Refused(f"{name}() of an empty list")
        if not (all(map(_is_number, items)) or all(isinstance(v, str) for v in items)):
            kinds = ", ".join(sorted({_type_name(v) for v in items}))
            raise _Refused(f"{name}() needs all numbers or all strs, got {kinds}")
        return pick(items)
    return apply


def _len(value: object) -> int:
    _one_type("len", value, lambda v: isinstance(v, (str, list)), "a str or a list")
    return len(value)


def _abs(value: object) -> object:
    _one_type("abs", value, _is_number, "a number")
    return abs(value)


def _numeric_text(name: str, value: str) -> str:
    if len(value) > MAX_NUMERIC_STR_CHARS:
        raise _Refused(f"{name}() of a str longer than {MAX_NUMERIC_STR_CHARS} characters")
    return value


def _int(value: object) -> int:
    _one_type("int", value, lambda v: isinstance(v, (int, float, str)), "a number, bool or str")
    try:
        return _check_int(int(_numeric_text("int", value) if isinstance(value, str) else value))
    except (ValueError, OverflowError):
        raise _Refused(f"cannot convert {value!r} to int") from None


def _float(value: object) -> float:
    _one_type("float", value, lambda v: isinstance(v, (int, float, str)), "a number, bool or str")
    try:
        return float(_numeric_text("float", value) if isinstance(value, str) else value)
    except ValueError:
        raise _Refused(f"cannot convert {value!r} to float") from None
    except OverflowError:
        raise _Refused("int is too large to convert to float") from None


def _round(value: object, digits: object = None) -> object:
    _one_type("round", value, _is_number, "a number")
    if digits is not None:
        _one_type("round", digits, _is_int, "an int number of digits")
    try:
        return round(value) if digits is None else round(value, digits)
    except (ValueError, OverflowError):
        raise _Refused(f"cannot round {value!r}") from None


def _str_method(name: str, method: Callable[[str], str]) -> Callable:
    def apply(value: object) -> str:
        _one_type(name, value, lambda v: isinstance(v, str), "a str")
        return method(value)
    return apply


def _letter(index: object) -> str:
    """Spreadsheet-style column letters: 0 → a, 25 → z, 26 → aa (ResNet's res2a, res2b)."""
    _one_type("letter", index, _is_int, "an int")
    if index < 0:
        raise _Refused(f"letter() needs a non-negative int, got {index}")
    letters, number = "", index + 1  # bijective base 26: digits 1..26
    while number:
        number, digit = divmod(number - 1, 26)
        letters = chr(ord("a") + digit) + letters
    return letters


# name -> (function, fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable, int, int | None]] = {
    "abs": (_abs, 1, 1),
    "float": (_float, 1, 1),
    "int": (_int, 1, 1),
    "len": (_len, 1, 1),
    "letter": (_letter, 1, 1),
    "lower": (_str_method("lower", str.lower), 1, 1),
    "max": (_extreme("max", max), 1, None),
    "min": (_extreme("min", min), 1, None),
    "round": (_round, 1, 2),
    "str": (format_value, 1, 1),
    "upper": (_str_method("upper", str.upper), 1, 1),
}


# ---------------------------------------------------------------------------
# Compile time: the allow-list walk


_NOT_ALLOWED = {
    ast.Attribute: "attribute access is not allowed",
    ast.Tuple: "tuples are not allowed; use a list [...]",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "unpacking with '*' is not allowed",
}
_OPERATOR_SYMBOLS = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.MatMult: "@", ast.Invert: "~", ast.Is: "is", ast.IsNot: "is not",
}
_CONSTANT_TYPES = (int, float, str, bool, type(None))


def _check_operator(op: ast.AST, allowed: Mapping) -> str | None:
    if type(op) in allowed:
        return None
    return f"operator '{_OPERATOR_SYMBOLS.get(type(op), type(op).__name__)}' is not allowed"


def _check_call(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return None  # the walk visits it and refuses the attribute access
    if not isinstance(node.func, ast.Name):
        return "only the allowed functions can be called, by name"
    name = node.func.id
    if name not in FUNCTIONS:
        return f"calling '{name}' is not allowed; allowed functions: {', '.join(FUNCTIONS)}"
    if node.keywords:
        return f"{name}() takes no keyword arguments"
    _, fewest, most = FUNCTIONS[name]
    given = len(node.args)
    if given < fewest or (most is not None and given > most):
        wanted = (f"at least {fewest}" if most is None else
                  f"{fewest}" if fewest == most else f"{fewest} to {most}")
        plural = "" if wanted.endswith("1") else "s"
        return f"{name}() takes {wanted} argument{plural} ({given} given)"
    return None


def _check_node(node: ast.AST) -> str | None:
    """Why `node` is refused, or None when the allow-list accepts it."""
    if isinstance(node, ast.Slice):  # the parser puts it only inside a subscript
        return None
    if type(node) not in _EVALUATORS:
        return _NOT_ALLOWED.get(type(node), f"'{type(node).__name__}' expressions are not allowed")
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        return f"{type(node.value).__name__} literals are not allowed"
    if isinstance(node, ast.BinOp):
        return _check_operator(node.op, BINARY_OPERATORS)
    if isinstance(node, ast.UnaryOp):
        return _check_operator(node.op, UNARY_OPERATORS)
    if isinstance(node, ast.Compare):
        return next(filter(None, (_check_operator(op, COMPARISONS) for op in node.ops)), None)
    if isinstance(node, ast.Call):
        return _check_call(node)
    return None


def _walk(tree: ast.expr, expression: "_Expression") -> frozenset[str]:
    """Checks every node against the allow-list and the size limits; returns the names read."""
    names, count, pending = set(), 0, [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        count += 1
        if count > MAX_NODES:
            raise expression.error(tree, f"expression is too complex (more than {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise expression.error(node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        problem = _check_node(node)
        if problem:
            raise expression.error(node, problem)
        if isinstance(node, ast.Name) and node.id not in NAME_ALIASES:
            names.add(node.id)
        children = ast.iter_child_nodes(node)
        if isinstance(node, ast.Call):  # a function name is not a parameter name
            children = node.args if isinstance(node.func, ast.Name) else [node.func]
        # reversed: the stack then reports the leftmost problem first
        pending.extend((child, depth + 1) for child in reversed(list(children)) if isinstance(child, ast.expr))
    return frozenset(names)


# ---------------------------------------------------------------------------
# Evaluation: one function per node type


# The value of a parameter whose declaration was refused (and reported): an expression that reads
# it fails with no error of its own, since its one mistake is the declaration.
UNKNOWN = Sentinel("unknown")


UNDEFINED_NAME = re.compile(r"undefined name '(\w+)'")  # the message, read back by what merges its errors


def _eval_name(scope: Mapping[str, object], evaluate: Callable, node: ast.Name) -> object:
    if node.id in NAME_ALIASES:
        return NAME_ALIASES[node.id]
    if node.id not in scope:
        raise _Refused(f"undefined name '{node.id}'", hint=did_you_mean(node.id, scope))
    if scope[node.id] is UNKNOWN:
        raise CaffeconfError([])
    return scope[node.id]


def _eval_list(scope, evaluate, node: ast.List) -> list:
    items = [evaluate(item) for item in node.elts]
    _check_size(_sequence_size(items))
    return items


def _eval_binary(scope, evaluate, node: ast.BinOp) -> object:
    symbol, apply = BINARY_OPERATORS[type(node.op)]
    left, right = evaluate(node.left), evaluate(node.right)
    try:
        return _check_int(apply(left, right))
    except OverflowError:
        raise _Refused(f"result of '{symbol}' is too large") from None


def _eval_bool(scope, evaluate, node: ast.BoolOp) -> object:
    stop_when = isinstance(node.op, ast.Or)  # `or` stops at a truthy value, `and` at a falsy one
    for operand in node.values:
        value = evaluate(operand)
        if bool(value) == stop_when:
            return value
    return value


def _eval_compare(scope, evaluate, node: ast.Compare) -> bool:
    left = evaluate(node.left)
    for op, operand in zip(node.ops, node.comparators):
        right = evaluate(operand)
        if not COMPARISONS[type(op)](left, right):
            return False
        left = right
    return True


def _slice_bound(evaluate: Callable, node: ast.expr | None) -> int | None:
    value = None if node is None else evaluate(node)
    if value is not None and not _is_int(value):
        raise _Refused(f"slice bounds must be ints, not '{_type_name(value)}'")
    return value


def _eval_subscript(scope, evaluate, node: ast.Subscript) -> object:
    container = evaluate(node.value)
    if not isinstance(container, (str, list)):
        raise _Refused(f"cannot index '{_type_name(container)}'")
    if isinstance(node.slice, ast.Slice):
        bounds = [_slice_bound(evaluate, part) for part in (node.slice.lower, node.slice.upper, node.slice.step)]
        if bounds[2] == 0:
            raise _Refused("slice step cannot be zero")
        return container[slice(*bounds)]
    index = evaluate(node.slice)
    if not _is_int(index):
        raise _Refused(f"indices must be ints, not '{_type_name(index)}'")
    if not -len(container) <= index < len(container):
        raise _Refused(f"index {index} is out of range for a {_type_name(container)} of length {len(container)}")
    return container[index]


def _eval_call(scope, evaluate, node: ast.Call) -> object:
    function = FUNCTIONS[node.func.id][0]
    return _check_int(function(*(evaluate(arg) for arg in node.args)))


_EVALUATORS: dict[type, Callable] = {
    ast.Constant: lambda scope, evaluate, node: node.value,
    ast.Name: _eval_name,
    ast.List: _eval_list,
    ast.UnaryOp: lambda scope, evaluate, node: UNARY_OPERATORS[type(node.op)](evaluate(node.operand)),
    ast.BinOp: _eval_binary,
    ast.BoolOp: _eval_bool,
    ast.Compare: _eval_compare,
    ast.IfExp: lambda scope, evaluate, node: evaluate(node.body) if evaluate(node.test) else evaluate(node.orelse),
    ast.Subscript: _eval_subscript,
    ast.Call: _eval_call,
}


# ---------------------------------------------------------------------------
# Templates


@dataclass(frozen=True, eq=False)
class _Expression:
    """One `${...}`: its parsed tree and where it sits in the source."""

    span: Span  # the whole `${...}` when it is on the scalar's first line, else the scalar
    column: int | None  # source column of the expression's first character, when known
    first_line: str  # the expression's first line (ast offsets are in UTF-8 bytes)
    tree: ast.expr | None = None
    names: frozenset[str] = frozenset()

    def locate(self, node: ast.AST) -> Span:
        if self.column is None or getattr(node, "lineno", None) != 1:
            return self.span
        start = self.column + self._chars(node.col_offset)
        end = self.column + self._chars(node.end_col_offset) if node.end_lineno == 1 else None
        return Span(self.span.path, self.span.line, start, self.span.line, end)

    def _chars(self, byte_offset: int) -> int:
        return len(self.first_line.encode("utf-8")[:byte_offset].decode("utf-8", "replace"))

    def error(self, node: ast.AST, message: str, hint: str | None = None) -> CaffeconfError:
        return CaffeconfError.at(self.locate(node), message, hint=hint)

    def evaluate(self, scope: Mapping[str, object]) -> object:
        def evaluate_node(node: ast.AST) -> object:
            try:
                return _EVALUATORS[type(node)](scope, evaluate_node, node)
            except _Refused as refused:
                raise self.error(node, refused.message, refused.hint) from None
        return evaluate_node(self.tree)


class Template:
    """A string with `${...}` parts; `evaluate` fills them in from a scope."""

    def __init__(self, source: str, pieces: tuple[str | _Expression, ...]):
        self.source = source
        self._pieces = pieces
        # every name the expressions read, in all branches: for unused/undefined parameter checks
        self.names = frozenset().union(*(piece.names for piece in pieces if isinstance(piece, _Expression)))

    def evaluate(self, scope: Mapping[str, object]) -> object:
        """The value itself for exactly `${expr}`; otherwise the text with each value formatted."""
        if len(self._pieces) == 1 and isinstance(self._pieces[0], _Expression):
            return self._pieces[0].evaluate(scope)
        parts, size = [], 0
        for piece in self._pieces:
            part = piece if isinstance(piece, str) else _format_piece(piece, scope)
            size += len(part)
            if size > MAX_SEQUENCE_SIZE:  # "${p}${p}" nested in uses would double past any bound
                where = piece if isinstance(piece, _Expression) else \
                    next(last for last in reversed(self._pieces) if isinstance(last, _Expression))
                raise CaffeconfError.at(where.span, f"text is too long (more than {MAX_SEQUENCE_SIZE} characters)")
            parts.append(part)
        return "".join(parts)

    def pattern(self) -> str:
        """A regular expression for every text the template can give, each `${...}` matching anything."""
        return "".join(".*" if isinstance(piece, _Expression) else re.escape(piece) for piece in self._pieces)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _format_piece(expression: _Expression, scope: Mapping[str, object]) -> str:
    try:
        return format_value(expression.evaluate(scope))
    except _Refused as refused:
        raise CaffeconfError.at(expression.span, refused.message, hint=refused.hint) from None


def _closing_brace(text: str, start: int) -> tuple[int | None, str | None]:
    """Index of the `}` closing a `${` whose expression starts at `start`, or None and
    the quote of a string left open (braces inside string literals do not count)."""
    depth, quote, index = 0, None, start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index, None
            depth -= 1
        index += 1
    return None, quote


def _locate_dollar(text: str, offset: int, length: int, span: Span) -> Span | None:
    """Where `text[offset:offset+length]` sits in the source; None past the first line,
    whose source columns are unknown (YAML may fold, indent or unescape them)."""
    if "\n" in text[:offset]:
        return None
    start = span.col + offset
    if "\n" in text[offset:offset + length]:
        return Span(span.path, span.line, start)
    return Span(span.path, span.line, start, span.line, start + length)


def _compile_expression(text: str, dollar: int, span: Span) -> tuple[_Expression, int]:
    """The `${...}` starting at `text[dollar]`, and the index just past its `}`."""
    end, open_quote = _closing_brace(text, dollar + 2)
    if end is None:
        why = f" (a string opened with {open_quote} is not closed)" if open_quote else ""
        raise CaffeconfError.at(_locate_dollar(text, dollar, 2, span) or span,
                                f"unterminated '${{': no matching '}}'{why}")
    located = _locate_dollar(text, dollar, end + 1 - dollar, span)
    raw = text[dollar + 2:end]
    source = raw.lstrip()
    leading = raw[:len(raw) - len(source)]
    column = located.col + 2 + len(leading) if located and "\n" not in leading else None
    placed = _Expression(located or span, column, source.split("\n", 1)[0])
    if not source.strip():
        raise CaffeconfError.at(placed.span, "empty expression in '${}'")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise CaffeconfError.at(placed.span, f"expression is too long ({len(source)} characters; "
                                             f"the limit is {MAX_EXPRESSION_CHARS})")
    tree = _parse(source, placed)
    return replace(placed, tree=tree, names=_walk(tree, placed)), end + 1


_TRAILING_OPERATOR = re.compile(r"(\*\*|//|==|!=|<=|>=|[-+*/%<>,]|\b(?:and|or|not|in|if|else))\s*$")


def _syntax_error(source: str, error: SyntaxError, placed: _Expression) -> CaffeconfError:
    """Python's generic 'invalid syntax' made specific where the cause is plain (a dangling operator),
    at that operator, else at the token Python stopped at; at the whole `${...}` when the columns are unknown."""
    trailing = _TRAILING_OPERATOR.search(source) if error.msg == "invalid syntax" else None
    message = f"'{trailing.group(1)}' at the end needs something after it" if trailing else error.msg
    start = end = None
    if trailing:
        start, end = trailing.start(1), trailing.end(1)
    elif (error.offset or 0) >= 1:
        start = error.offset - 1
        end = error.end_offset - 1 if (error.end_offset or 0) > error.offset else start + 1
    span = placed.span
    if start is not None and placed.column is not None and "\n" not in source:
        span = Span(span.path, span.line, placed.column + start, span.line, placed.column + end)
    return CaffeconfError.at(span, f"invalid expression: {message}")


def _parse(source: str, placed: _Expression) -> ast.expr:
    try:
        return ast.parse(source, mode="eval").body
    except SyntaxError as error:
        raise _syntax_error(source, error, placed) from None
    except (ValueError, RecursionError, MemoryError):
        raise CaffeconfError.at(placed.span, "invalid expression: too deeply nested or malformed") from None


def compile_template(text: str, span: Span) -> Template | None:
    """The template for `text`, or None when it has no `${` (then it is plain text).

    Raises CaffeconfError for malformed or refused expressions, located in the source.
    """
    if "${" not in text:
        return None
    pieces: list[str | _Expression] = []
    literal, index = [], 0
    while (dollar := text.find("$", index)) >= 0:
        literal.append(text[index:dollar])
        if text.startswith("$${", dollar):
            literal.append("${")
            index = dollar + 3
        elif text.startswith("${", dollar):
            expression, index = _compile_expression(text, dollar, span)
            pieces += ["".join(literal), expression]
            literal = []
        else:
            literal.append("$")
            index = dollar + 1
    pieces.append("".join(literal) + text[index:])
    return Template(text, tuple(piece for piece in pieces if piece != ""))


def evaluate_text(text: str, scope: Mapping[str, object], span: Span) -> object:
    """`text` with its `${...}` evaluated; text without `${` comes back unchanged."""
    template = compile_template(text, span)
    return text if template is None else template.evaluate(scope)
