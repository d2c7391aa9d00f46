"""A module's (or the document's) parameter declarations + a use's `with:` -> checked values:
the given ones evaluated in the caller's environment, then the defaults, in declaration order
(a default may refer to earlier parameters)."""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import Diagnostic, DiagnosticList, Note, Span, closest, did_you_mean
from .fields import describe
from .expr import UNDEFINED_NAME
from .syntax import ParamDecl
from .tree import Map, Node, Seq
from .values import FAILED, Env, Evaluator


class ParamMisses:
    """Unknown `with:` keys, as reported at each use: one key given by several uses of a module
    that declares a name close to it is one mistake, the declaration's (a misspelt parameter
    name), so at the end their errors become one, there."""

    def __init__(self, diags: DiagnosticList):
        self.diags = diags
        self.found: dict[tuple[int, str], tuple[dict[str, ParamDecl], str, dict[Span, tuple]]] = {}

    def add(self, decls: dict[str, ParamDecl], key: str, span: Span, owner: str, reported: tuple) -> None:
        self.found.setdefault((id(decls), key), (decls, owner, {}))[2].setdefault(span, reported)

    def report(self) -> None:
        for (_, key), (decls, owner, uses) in self.found.items():
            declared = closest(key, decls)
            if declared is None or len(uses) < 2:
                continue
            for reported in uses.values():
                self.diags.remove(reported)
            self.diags.error(decls[declared].span, f"parameter '{declared}' of {owner} is given as '{key}' by "
                             f"{len(uses)} uses", hint=f"did you mean '{key}'?",
                             notes=[Note(f"'{key}' given here (the first of {len(uses)})", next(iter(uses)))])


def merge_misspelt_variants(diags: DiagnosticList, variants: dict[str, Span], read: Callable[[], set[str]]) -> None:
    """One undefined name read by several expressions, close to a declared variant that none reads
    (`read()`: the names any expression reads), is one mistake: the declaration's (a misspelt
    variant), so their errors become one, there."""
    readings: dict[str, list[Diagnostic]] = {}
    for diag in diags.items:
        if diag.severity == "error" and (undefined := UNDEFINED_NAME.fullmatch(diag.message)):
            readings.setdefault(undefined.group(1), []).append(diag)
    for name, found in readings.items():
        declared = closest(name, variants)
        if declared is None or len(found) < 2 or declared in read():
            continue
        for diag in found:
            diags.remove(diags.key(diag))
        first = min((diag.span for diag in found), key=lambda span: (span.line, span.col))
        diags.error(variants[declared], f"variant '{declared}' is read as '{name}' by {len(found)} expressions",
                    hint=f"did you mean '{name}'?",
                    notes=[Note(f"'{name}' read here (the first of {len(found)})", first)])


def bind_params(evaluator: Evaluator, decls: dict[str, ParamDecl], with_node: Node | None, env: Env,
                use_span: Span, owner: str, builtins: dict[str, Any] | None = None,
                misses: ParamMisses | None = None) -> dict[str, Any] | None:
    """Checked parameter values, or None after reporting what is wrong (each unknown key also to
    `misses`, when given)."""
    diags = evaluator.diags
    if with_node is not None and not isinstance(with_node, Map):
        diags.error(with_node.span, "`with` must map parameter names to values")
        return None
    given: dict[str, Any] = dict(builtins or {})
    ok = True
    for key, node in (with_node.values.items() if with_node is not None else ()):
        decl = decls.get(key)
        if decl is None:
            ok = False
            hint = did_you_mean(key, decls) or (f"its parameters: {', '.join(decls)}" if decls else
                                                "it takes no parameters")
            diag = Diagnostic(f"{owner} has no parameter '{key}'", with_node.keys[key], hint=hint)
            diags.add(diag)
            if misses is not None:
                misses.add(decls, key, diag.span, owner, diags.key(diag))
            continue
        value = evaluator.attempt(node, env)
        if value is FAILED or not _check_param(evaluator, decl, value, node, owner):
            ok = False
        else:
            given[key] = value
    return _with_defaults(evaluator, decls, given, use_span, owner) if ok else None


def _with_defaults(evaluator: Evaluator, decls: dict[str, ParamDecl], given: dict[str, Any], use_span: Span,
                   owner: str) -> dict[str, Any] | None:
    values = dict(given)  # the environment the defaults see grows as they are bound
    ok = True
    for decl in decls.values():
        if decl.name in values:
            continue
        if decl.default is None:
            ok = False
            evaluator.diags.error(use_span, f"missing required parameter '{decl.name}' ({decl.type_text}) of {owner}",
                                  notes=[Note(f"'{decl.name}' declared here", decl.span)])
            continue
        value = evaluator.attempt(decl.default, values)
        if value is FAILED or not _check_param(evaluator, decl, value, decl.default, owner):
            ok = False
        else:
            values[decl.name] = value
    return values if ok else None


def _check_param(evaluator: Evaluator, decl: ParamDecl, value: Any, node: Node, owner: str) -> bool:
    problem = param_problem(decl, value)
    if problem is None:
        return True
    span = node.span
    item = re.match(r"item (\d+): ", problem)
    if item and isinstance(node, Seq) and int(item.group(1)) < len(node.items):
        span = node.items[int(item.group(1))].span
    evaluator.diags.error(span, f"parameter '{decl.name}' of {owner}: {problem}",
                          notes=[Note(f"'{decl.name}' declared here as {decl.type_text}", decl.span)])
    return False


def param_problem(decl: ParamDecl, value: Any) -> str | None:
    """Why `value` does not fit the declaration, or None. Null fits every type (docs/format.md:
    `default: null` makes any parameter optional), a list as well as a scalar."""
    if not decl.is_list or value is None:
        return _item_problem(decl, value)
    if not isinstance(value, list):
        return f"expects a list of {decl.kind}, got {describe(value)}"
    if decl.min_len is not None and len(value) < decl.min_len:
        return f"needs at least {decl.min_len} items, got {len(value)}"
    if decl.max_len is not None and len(value) > decl.max_len:
        return f"takes at most {decl.max_len} items, got {len(value)}"
    for index, item in enumerate(value):
        problem = _item_problem(decl, item)
        if problem:
            return f"item {index}: {problem}"
    return None


def _item_problem(decl: ParamDecl, value: Any) -> str | None:
    if value is None:
        return None  # null leaves the Caffe fields that use the parameter unset
    kind = decl.kind
    fits = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "enum": isinstance(value, str) and value in decl.values,
    }[kind]
    if not fits:
        if kind == "enum":
            hint = did_you_mean(str(value), decl.values) if isinstance(value, str) else None
            return (f"expects one of {', '.join(decl.values)}, got {describe(value)}"
                    + (f" ({hint})" if hint else ""))
        return f"expects {kind}, got {describe(value)}"
    if decl.minimum is not None and value < decl.minimum:
        return f"must be >= {decl.minimum}, got {value}"
    if decl.maximum is not None and value > decl.maximum:
        return f"must be <= {decl.maximum}, got {value}"
    return None
