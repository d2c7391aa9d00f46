"""`--set NAME=VALUE` flags -> located overrides: a config's document parameters by name, and
solver fields as `solver.FIELD`.

The flags form one source named `--set`, one line per flag as written, so a problem with a value
is reported at its flag and column like a problem in a file. Each value is YAML (a scalar, or a
flow list such as `[1, 2]`), parsed in place and checked like the file's own values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..errors import SOURCES, CaffeconfError, Span
from ..limits import DEFAULT_LIMITS, Limits
from .tree import Map, Node
from .yaml_tree import parse_yaml

SETTINGS_SOURCE = "--set"
SOLVER_PREFIX = "solver."
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Settings:
    """The overrides of one command; `flags` as given (what a compiled config is cached under)."""

    flags: tuple[str, ...] = ()
    params: Map | None = None  # for the document's `params:`, as a use's `with:`
    solver: Map | None = None  # SolverParameter fields, as a `solver:` section

    def __bool__(self) -> bool:
        return bool(self.flags)


NO_SETTINGS = Settings()


def parse_settings(flags: Sequence[str], limits: Limits = DEFAULT_LIMITS) -> Settings:
    """Located overrides from the flags' text; raises CaffeconfError at the first bad flag."""
    if not flags:
        return NO_SETTINGS
    if any("\n" in flag or "\r" in flag for flag in flags):
        raise CaffeconfError.at(None, "a --set value must be on one line")
    SOURCES.register(SETTINGS_SOURCE, "\n".join(flags))
    groups: dict[bool, tuple[dict[str, Node], dict[str, Span]]] = {False: ({}, {}), True: ({}, {})}
    for line, flag in enumerate(flags, start=1):
        name, equals, value = flag.partition("=")
        key_span = Span(SETTINGS_SOURCE, line, 1, line, len(name) + 1)
        is_solver = name.startswith(SOLVER_PREFIX)
        key = name[len(SOLVER_PREFIX):] if is_solver else name
        if not equals or not _NAME.fullmatch(key):
            raise CaffeconfError.at(key_span, f"bad --set '{flag}': expected NAME=VALUE, NAME a parameter "
                                    "of the config or solver.FIELD")
        if not value.strip():
            raise CaffeconfError.at(Span(SETTINGS_SOURCE, line, len(name) + 2),
                                    f"--set {name}= needs a value (null to leave it unset)")
        # Padding puts the value at its own line and column of the `--set` source.
        node = parse_yaml("\n" * (line - 1) + " " * (len(name) + 1) + value, SETTINGS_SOURCE, limits)
        values, keys = groups[is_solver]
        values.pop(key, None)  # a later flag for the same name wins, as on most command lines
        values[key], keys[key] = node, key_span
    return Settings(tuple(flags), _as_map(*groups[False]), _as_map(*groups[True]))


def _as_map(values: dict[str, Node], keys: dict[str, Span]) -> Map | None:
    return Map(values, keys, next(iter(keys.values()))) if values else None


def with_solver_settings(section: Node | None, settings: Settings) -> Node | None:
    """A config's `solver:` section with the `solver.FIELD` overrides in place (or added)."""
    if settings.solver is None or not isinstance(section, (Map, type(None))):
        return section
    if section is None:
        return settings.solver
    values, keys = dict(section.values), dict(section.keys)
    for key, node in settings.solver.values.items():
        values.pop(key, None)
        values[key], keys[key] = node, settings.solver.keys[key]
    return Map(values, keys, section.span)
