"""One layer entry, in a scope -> its type, written or implied bottoms and tops, and its flat
blob names: the checks of a single entry, shared by layers and module uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..caffe.facts import unknown_type_problem
from ..errors import did_you_mean
from ..ir import Use
from .library import Library
from .rules import RuleSet
from .syntax import Entry, LayerEntry, ModuleDecl
from .values import FAILED, Env, Evaluator


@dataclass
class Scope:
    """Names visible while expanding one module instance (or the top level)."""

    values: dict[str, Any]  # parameter values for `${...}`: the environment of this scope's entries
    prefix: str  # qualifies layer and blob names ("" at top level)
    separator: str
    uses: tuple[Use, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> flat blob the caller chose
    blobs: dict[str, str] = field(default_factory=dict)  # scope name -> flat blob name
    chain: tuple[int, ...] = ()  # ids of the modules being expanded, outermost first
    unit: str = ""  # the file whose names are visible here (see library.Library)
    module: ModuleDecl | None = None
    unbound: frozenset[str] = frozenset()  # inputs the use bound to null
    layer_tops: dict[str, list[str]] = field(default_factory=dict)  # layer name -> its tops, for hints
    rules: tuple[RuleSet, ...] = ()  # include/exclude of the enclosing uses, outermost first
    share: Any = None  # the innermost sharing.Share around this scope
    # Names whose producer failed (its errors already reported): reading one is no new mistake.
    # An entry ending in the separator stands for every output of an instance of an unknown module.
    poisoned: set[str] = field(default_factory=set)
    # Patterns of the names an entry would produce whose instances could not be decided (its `repeat`
    # or `when:` failed).
    poisoned_patterns: list[re.Pattern] = field(default_factory=list)

    def qualify(self, name: str) -> str:
        return f"{self.prefix}{self.separator}{name}" if self.prefix else str(name)

    def blob_for_top(self, name: str) -> str:
        """The flat blob a top named `name` writes, registering it in the scope."""
        flat = self.blobs.get(name) or self.outputs.get(name) or self.qualify(name)
        self.blobs[name] = flat
        return flat

    def poison(self, names: list[str]) -> list[str] | None:
        """Declare the names a failed entry would have produced; they are what the next entry
        chains on (silently), or None when the entry's tops are unknown."""
        self.poisoned.update(names)
        return list(names) or None

    def poison_matching(self, patterns: list[str]) -> None:
        self.poisoned_patterns.extend(re.compile(pattern) for pattern in patterns)

    def is_poisoned(self, name: str) -> bool:
        return name in self.poisoned or any(name.startswith(p) for p in self.poisoned
                                              if self.separator and p.endswith(self.separator)) \
            or any(pattern.fullmatch(name) for pattern in self.poisoned_patterns)


def layer_type(evaluator: Evaluator, entry: LayerEntry, scope: Scope, library: Library) -> str | None:
    node = entry.type
    if node is None:
        evaluator.diags.error(entry.span, "a layer needs a `type` (or `use:` for a module)")
        return None
    written = evaluator.text(node, "`type`", scope.values)
    problem = unknown_type_problem(written) if written is not None else None
    if problem:
        severity, message, hint = problem
        if library.lookup(written, scope.unit):
            hint = f"'{written}' is a module: write `use: {written}`"
        if severity == "warning":
            evaluator.diags.warning(node.span, message, hint=hint)
        else:
            evaluator.diags.error(node.span, message, hint=hint)
            return None
    return written


def bottoms(evaluator: Evaluator, entry: Entry, prev: list[str] | None, is_source: bool, what: str,
            env: Env) -> list[str] | None:
    """Written bottoms, else none for a data layer, else the previous entry's single top
    (`prev` is None at the start of a scope, FAILED after an entry that could not be built)."""
    if entry.bottom is not None:
        return evaluator.names(entry.bottom, "`bottom`", env)
    if is_source:
        return []
    if prev is FAILED:
        return None  # the previous entry's errors are reported; this one can't be checked
    if prev is None or len(prev) != 1:
        detail = "nothing comes before it" if prev is None else f"the previous one has {len(prev)} tops"
        evaluator.diags.error(entry.span, f"this {what} names no `bottom` and {detail}",
                              hint="write `bottom:` explicitly")
        return None
    return [str(name) for name in prev]  # written nowhere here: no span of their own


def tops(evaluator: Evaluator, entry: LayerEntry, name: str | None, written_bottoms: list[str] | None,
         env: Env) -> list[str] | None:
    in_place = entry.in_place
    if in_place is not None:
        flag = evaluator.attempt(in_place, env)
        if not isinstance(flag, bool):
            if flag is not FAILED:  # a failed value has its own error: its one mistake
                evaluator.diags.error(in_place.span, "`in_place` must be true or false")
            return None
        if flag:
            if entry.top is not None:
                evaluator.diags.error(entry.node.keys["top"], "a layer with `in_place: true` takes its tops from "
                                      "its bottoms; remove `top`")
            return None if written_bottoms is None else list(written_bottoms)
    if entry.top is not None:
        return evaluator.names(entry.top, "`top`", env)
    return None if name is None else [name]


def flat_blob(evaluator: Evaluator, name: str, scope: Scope, entry: Entry) -> str:
    """The flat blob a bottom named `name` reads in this scope."""
    flat = scope.blobs.get(name)
    if flat is not None:
        return flat
    if scope.is_poisoned(name):
        return scope.qualify(name)  # its producer's errors are reported; reading it is no new mistake
    if name in scope.unbound:
        evaluator.diags.error(getattr(name, "span", entry.span), f"input '{name}' is bound to null by this use "
                              f"of module '{scope.module.name}', so no layer can read it",
                              hint="leave this layer out with `when:` when the input is null")
    else:
        evaluator.diags.error(getattr(name, "span", entry.span),
                              f"unknown blob '{name}': no layer before this one produces it",
                              hint=did_you_mean(name, scope.blobs))
    return scope.qualify(name)
