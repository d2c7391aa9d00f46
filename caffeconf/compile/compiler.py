"""The pipeline for configs: load -> check -> resolve -> verify, giving the flat Net.

`build` returns the net and every diagnostic (warnings included);
`compile_file` is the strict form consumers use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..caffe import messages, prototxt
from ..caffe.dialect import Dialect, current, use
from ..caffe.facts import looks_like_solver, solver_value_problems
from ..caffe.netfile import SolverGiven
from .check import check_modules
from .header import adopt_config_proto
from ..errors import CaffeconfError, Diagnostic, DiagnosticList
from .fields import net_message, set_solver_fields, solver_message
from ..ir import Net
from .library import Library, load_library, unit_key
from .passes import after, findings, surface
from ..limits import DEFAULT_LIMITS, Limits
from .tree import Map
from .source import load_tree
from .resolve import Resolver
from .settings import NO_SETTINGS, Settings, with_solver_settings
from .syntax import Document, parse_document
from .verify import check_sharing, verify_net


def net_field_names() -> frozenset[str]:
    """The NetParameter fields a document may set at its top level."""
    return frozenset(f.name for f in net_message().fields) - {"layer", "layers"}


# A config's `solver:` trains the config itself, so it names no other net.
SOLVER_NET_FIELDS = frozenset({"net", "net_param", "train_net", "train_net_param", "test_net", "test_net_param"})


@dataclass(frozen=True)
class Build:
    net: Net | None  # None when errors stopped the pipeline
    diagnostics: tuple[Diagnostic, ...]
    solver: dict | None = None  # the checked `solver:` section, as plain SolverParameter data
    variants: tuple[str, ...] = ()  # the variants the config declares
    dialect: Dialect | None = None  # the caffe.proto its fields were checked against

    @property
    def ok(self) -> bool:
        return self.net is not None and not any(d.severity == "error" for d in self.diagnostics)


@dataclass(frozen=True)
class Overrides:
    """What the Python API may give a config besides its file: values for its document `params`
    (a located map, checked as a use's `with:`), and its text when it was read from no file."""

    params: Map | None = None
    text: str | None = None


def build(path: str | Path, limits: Limits = DEFAULT_LIMITS, variants: frozenset[str] = frozenset(),
          settings: Settings = NO_SETTINGS, overrides: Overrides = Overrides()) -> Build:
    """Compile a config; `variants` are the compile-time stages selected (see `variants:`),
    `settings` the command line's `--set` overrides, `overrides` the Python API's. It is checked
    in the dialect in force, or the one its (or an import's) `caffe_proto:` names."""
    with use(None):
        return dataclasses.replace(_build(path, limits, variants, settings, overrides), dialect=current())


def load_sources(path: str | Path, limits: Limits, diags: DiagnosticList,
                 text: str | None = None) -> tuple[Document, Library]:
    """The config at `path` (or `text`, named `path`) parsed, and the library of it and every file
    it imports (the language server reads modules from it too); raises CaffeconfError when the
    file does not parse."""
    def parse(tree, source: str):
        adopt_config_proto(tree, source, diags)
        return parse_document(tree, source, diags, net_field_names())

    tree = load_tree(path, limits, text)
    refuse_solver_file(tree, str(path))
    document = parse(tree, str(path))
    return document, load_library(document, parse, limits, diags)


def parse_config(path: str | Path, limits: Limits, diags: DiagnosticList,
                 text: str | None = None) -> tuple[Document, Library]:
    """`load_sources` with the modules checked; their errors go to `diags`."""
    document, library = load_sources(path, limits, diags, text)
    check_modules(library, unit_key(document.path), document.entries, diags)
    return document, library


def _build(path: str | Path, limits: Limits, variants: frozenset[str], settings: Settings,
           overrides: Overrides) -> Build:
    diags = DiagnosticList()
    try:
        document, library = parse_config(path, limits, diags, overrides.text)
        after("syntax", lambda: surface(document, library))
        params = overrides.params if overrides.params is not None else settings.params
        resolver = Resolver(document, library, diags, limits, variants, params)
        net = resolver.run()
        if net is None:
            return Build(None, tuple(diags.sorted()))
        after("expand", net.dump)
        solver = check_solver(with_solver_settings(document.solver, settings), resolver, diags)
        if not diags.has_errors:
            before = len(diags.items)
            verify_net(net, diags)
            check_sharing(net, diags)
            after("verify", lambda: findings(diags.items[before:]))
    except SolverGiven:
        raise
    except CaffeconfError as error:
        diags.extend(error)
        return Build(None, tuple(diags.sorted()))
    failed = diags.has_errors
    return Build(None if failed else net, tuple(diags.sorted()), None if failed else solver, tuple(document.variants))


def is_solver_tree(tree) -> bool:
    """A mapping without `caffeconf:` whose keys are more a SolverParameter's than a net's."""
    return isinstance(tree, Map) and "caffeconf" not in tree and looks_like_solver(set(tree.values))


def refuse_solver_file(tree, path: str) -> None:
    """A YAML/TOML file of SolverParameter fields (no `caffeconf:`, more solver than net names) is a
    solver, as `caffeconf train` reads it: raise SolverGiven with it checked, or its field errors."""
    if not is_solver_tree(tree):
        return
    solver = messages.SolverParameter()
    set_solver_fields(solver, tree, "", path)
    outline = prototxt.Outline([prototxt.TopField(key, span.line, span.col) for key, span in tree.keys.items()])
    raise SolverGiven(path, solver, outline)


def check_solver(node, resolver: Resolver, diags: DiagnosticList) -> dict | None:
    """A `solver:` section checked against SolverParameter (values may use the document's params)."""
    if node is None:
        return None
    if isinstance(node, Map):
        for key in SOLVER_NET_FIELDS & set(node.values):
            diags.error(node.keys[key], f"`solver.{key}`: a config's solver trains the config's own net",
                        hint="remove it; to train another net, give that net to `caffeconf train`")
    start = len(diags.items)
    data = resolver.document_message(node, solver_message(), "solver", SOLVER_NET_FIELDS)
    if len(diags.items) == start:  # a refused field's default would only add a follow-on error
        from ..caffe.serde import data_to_message

        for fields, message, hint in solver_value_problems(data_to_message(data, messages.SolverParameter())):
            written = [node.keys[field] for field in fields if isinstance(node, Map) and field in node.keys]
            diags.error(written[0] if written else node.span, message, hint=hint)
    return data


def compile_file(path: str | Path, limits: Limits = DEFAULT_LIMITS, variants: frozenset[str] = frozenset(),
                 settings: Settings = NO_SETTINGS) -> Net:
    """The flat net of a config; raises CaffeconfError with every error found."""
    result = build(path, limits, variants, settings)
    if not result.ok:
        raise CaffeconfError(result.diagnostics)
    return result.net
