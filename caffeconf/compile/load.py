"""Any net file -> `Loaded`: the one front door that every command, the runner, the trainer and
the tools use.

A config (YAML/TOML) compiles through the pipeline; a Caffe prototxt or binary NetParameter
(V0/V1/V2) is read once and upgraded. The NetState asked for (else the net's own `state`, else
the command's default phase) both filters the net, as Caffe's FilterNet does, and is the phase
it runs in. Within `one_command()` a config compiles once however many consumers load it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ..caffe import serde, upgrade
from ..caffe.dialect import Dialect, adopt, use
from ..caffe.facts import unknown_type_problem
from ..caffe import prototxt
from ..caffe.netfile import NetFile, net_file_from_bytes, read_net_file
from ..errors import SOURCES, CaffeconfError, Diagnostic, DiagnosticList, Span
from ..ir import Net
from ..limits import DEFAULT_LIMITS, Limits
from .compiler import Build, Overrides, build
from .rules import NetState, filter_net
from .settings import NO_SETTINGS, Settings
from .source import is_config
from .verify import check_sharing, verify_net


@dataclass(frozen=True)
class StateChoice:
    """The NetState a command asks for; None leaves each part to the net's own `state`."""

    phase: str | None = None
    stages: tuple[str, ...] | None = None
    level: int | None = None
    default_phase: str = "TEST"  # caffe.proto's default; `caffe time` and training build TRAIN

    @classmethod
    def of(cls, phase: str | None, stages: Sequence[str] | None, level: int | None,
           default_phase: str = "TEST") -> "StateChoice":
        return cls(phase, tuple(stages) if stages is not None else None, level, default_phase)


@dataclass(frozen=True)
class LoadOptions:
    limits: Limits = DEFAULT_LIMITS
    verify: bool = False  # also check a prototxt as Caffe would refuse it (configs always are)
    settings: Settings = NO_SETTINGS  # `--set` overrides for a config
    overrides: Overrides = Overrides()  # a config's parameter values and text, from the Python API
    content: bytes | None = None  # a prototxt or binary net held in memory, which `path` only names


@dataclass(frozen=True)
class Loaded:
    net: Net  # filtered for `state` when one was chosen, else every layer with its rules
    state: NetState | None
    diagnostics: tuple[Diagnostic, ...]  # warnings, and with `verify` a prototxt's errors
    source: str
    whole: Net  # every layer, rules kept
    solver: dict | None = None  # a config's checked `solver:` section

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


_compiled: dict | None = None  # set inside one_command()


@contextlib.contextmanager
def one_command(dialect: Dialect | None = None, fresh: bool = False) -> Iterator[None]:
    """Compile each config at most once while the block runs (one command's lifetime), in
    `dialect` (None: the one in force) or the one a loaded config names in its header. `fresh`
    starts anew inside a running command (each check of the language server reads new text)."""
    global _compiled
    outer, _compiled = _compiled, {} if _compiled is None or fresh else _compiled
    try:
        with use(dialect):
            yield
    finally:
        _compiled = outer


def load(path: str | Path, state: StateChoice | None = None, options: LoadOptions = LoadOptions()) -> Loaded:
    """The net at `path`, for `state` when given; raises CaffeconfError when a config has errors."""
    variants = frozenset(state.stages or ()) if state else frozenset()
    if is_config(path):
        result = compile_config(path, options.limits, variants, options.settings, options.overrides)
        if not result.ok:
            raise CaffeconfError(result.diagnostics)
        whole, diagnostics, solver = legacy_inputs_as_layer(result.net, str(path)), result.diagnostics, result.solver
    else:
        if options.settings.params is not None:
            name = next(iter(options.settings.params.keys))
            raise CaffeconfError.at(options.settings.params.keys[name], f"--set {name}: {path} is not a config "
                                    "(only a config has parameters)")
        net_file, solver = _net_file(path, options.content), None
        whole = net_file.net()  # what Caffe's upgrade logs and goes past comes first: a cause, never a consequence
        diagnostics = tuple(net_file.report.warnings) + (prototxt_diagnostics(whole) if options.verify else ())
    net, chosen = (whole, None) if state is None else for_state(whole, state)
    return Loaded(net, chosen, diagnostics, str(path), whole, solver)


def for_state(whole: Net, state: StateChoice) -> tuple[Net, NetState]:
    """The net as Caffe builds it for `state` (each part unset taken from the net's own `state`)."""
    chosen = NetState.of_net(whole, state.phase, state.level, state.stages, state.default_phase)
    return filter_net(whole, phase=chosen.phase, stages=chosen.stages, level=chosen.level), chosen


def _net_file(path: str | Path, content: bytes | None) -> NetFile:
    if content is None:
        return read_net_file(path)
    text = content.decode("utf-8") if prototxt.looks_like_text(content) else None
    if text is not None:
        SOURCES.register(str(path), text)
    return net_file_from_bytes(content, str(path), prototxt.outline_text(text) if text is not None else None)


def compile_config(path: str | Path, limits: Limits = DEFAULT_LIMITS,
                   variants: frozenset[str] = frozenset(), settings: Settings = NO_SETTINGS,
                   overrides: Overrides = Overrides()) -> Build:
    """`build`, once per (file, limits, variants, settings) inside `one_command()` (always, given
    the Python API's overrides)."""
    if _compiled is None:
        return build(path, limits, variants, settings, overrides)
    key = (str(Path(path).resolve()), limits, variants, settings.flags) if overrides == Overrides() else None
    result = _compiled.get(key) or build(path, limits, variants, settings, overrides)
    if key is not None:
        _compiled[key] = result
    if result.ok:  # the rest of the command reads and writes the net in its dialect
        adopt(result.dialect)
    return result


def prototxt_diagnostics(net: Net) -> tuple[Diagnostic, ...]:
    """What Caffe would refuse in a prototxt: unknown types, unproduced bottoms, clashing tops and
    shared blobs."""
    diags = DiagnosticList()
    for layer in net.layers:
        problem = unknown_type_problem(layer.type)
        if problem:
            severity, message, hint = problem
            report = diags.warning if severity == "warning" else diags.error
            why = " (BVLC Caffe has no such type)" if severity == "error" else ""
            report(layer.origin.span if layer.origin else None, f"layer '{layer.name}': {message}{why}", hint=hint)
    verify_net(net, diags)
    check_sharing(net, diags)
    return tuple(diags.sorted())


def legacy_inputs_as_layer(net: Net, source: str) -> Net:
    """A config's net-level `input` + `input_shape`/`input_dim` as the one Input layer named "input"
    at the front, by the same upgrade step a prototxt goes through (shapeless inputs dropped)."""
    if not net.fields.get("input"):
        return net
    message = serde.net_to_proto(dataclasses.replace(net, layers=()))
    upgraded, _ = upgrade.upgrade_net_with_report(message, where=upgrade.Locator(fixed=Span(source, 1, 1)))
    inputs = serde.net_from_proto(upgraded)
    return dataclasses.replace(net, layers=inputs.layers + tuple(net.layers), fields=inputs.fields)
