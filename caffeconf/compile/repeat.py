"""`repeat:` -> the scopes of an entry's repetitions, and the names an entry would produce
when its repetitions (or its `when:`) cannot be decided."""

from __future__ import annotations

import dataclasses
import re

from ..limits import Limits
from .entries import Scope
from .fields import describe
from .syntax import Entry, ModuleUse, check_keys
from .tree import Map, Node
from .values import FAILED, Evaluator

REPEAT_KEYS = ("count", "var")


def index_ranges(indices: list[int]) -> str:
    """Ascending indices as runs: [0, 1, 2, 5] -> "0…2, 5"."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}\u2026{run[-1]}" for run in runs)


def poison_undecided(evaluator: Evaluator, entry: Entry, scope: Scope) -> None:
    """An entry whose `repeat` or `when:` failed: every name it could produce is poisoned, each
    `${...}` matching anything, so that its readers stay silent."""
    names = evaluator.name_patterns
    if entry.top is not None:
        scope.poison_matching(names(entry.top, scope.values))
    elif isinstance(entry, ModuleUse):
        instances = names(entry.name, scope.values)
        scope.poison_matching([f"{instance}{re.escape(scope.separator)}.*" for instance in instances])
    else:
        scope.poison_matching(names(entry.name, scope.values))


def iterations(evaluator: Evaluator, limits: Limits, entry: Entry, scope: Scope) -> tuple[list[Scope], str] | None:
    """One scope per `repeat` index and the index's name (`var`, default `i`); None when the
    repeat is refused."""
    count_node, var = _repeat_form(evaluator, entry.repeat, scope)
    if count_node is None:
        return None
    count = _repeat_count(evaluator, limits, count_node, scope)
    if count is None:
        return None
    if var in scope.values:
        evaluator.diags.error(count_node.span, f"the repeat index '{var}' would hide a parameter or an outer "
                          "repeat index of that name",
                          hint="choose another name with `repeat: {count: ..., var: NAME}`")
        return None
    return [dataclasses.replace(scope, values={**scope.values, var: index}) for index in range(count)], var


def _repeat_form(evaluator: Evaluator, node: Node, scope: Scope) -> tuple[Node | None, str]:
    """`repeat: N` or `repeat: {count: N, var: NAME}` -> (the count's node, the index name)."""
    if not isinstance(node, Map):
        return node, "i"
    known_keys = check_keys(node, REPEAT_KEYS, "`repeat`", evaluator.diags)
    count_node = node.get("count")
    if count_node is None:
        if known_keys:  # else the misspelt key is the mistake
            evaluator.diags.error(node.span, "`repeat` needs a `count`")
        return None, "i"
    if node.get("var") is None:
        return count_node, "i"
    var = evaluator.text(node.get("var"), "`repeat.var`", scope.values)
    if var is None:
        return None, "i"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        evaluator.diags.error(node.get("var").span, f"`repeat.var` must be an identifier, got '{var}'")
        return None, "i"
    return count_node, var


def _repeat_count(evaluator: Evaluator, limits: Limits, count_node: Node, scope: Scope) -> int | None:
    count = evaluator.attempt(count_node, scope.values)
    if count is FAILED:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        evaluator.diags.error(count_node.span, f"`repeat` count must be a non-negative integer, got {describe(count)}")
        return None
    if count > limits.max_repeat:
        evaluator.diags.error(count_node.span, f"`repeat` count {count} is over the limit of {limits.max_repeat}",
                              hint="raise it with --max-repeat if this is intended")
        return None
    return count
