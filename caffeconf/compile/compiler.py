"""The pipeline for configs: load -> check -> resolve -> verify, giving the flat Net.

`build` returns the net and every diagnostic (warnings included);
`compile_file` is the strict form consumers use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..caffe.dialect import Dialect, current, use
from .check import check_modules
from .header import adopt_config_proto
from ..errors import CaffeconfError, Diagnostic, DiagnosticList
from .fields import net_message, solver_message
from ..ir import Net
from .library import Library, load_library, unit_key
from ..limits import DEFAULT_LIMITS, Limits
from .tree import Map
from .source import load_tree
from .resolve import Resolver
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
          overrides: Overrides = Overrides()) -> Build:
    """Compile a config; `variants` are the compile-time stages selected (see `variants:`). It is
    checked in the dialect in force, or the one its (or an import's) `caffe_proto:` names."""
    with use(None):
        result = _build(path, limits, variants, overrides)
        return dataclasses.replace(result, dialect=current())


def _build(path: str | Path, limits: Limits, variants: frozenset[str], overrides: Overrides) -> Build:
    diags = DiagnosticList()
    try:
        document, library = parse_config(path, limits, diags, overrides.text)
        resolver = Resolver(document, library, diags, limits, variants, overrides.params)
        net = resolver.run()
        solver = check_solver(document, resolver, diags)
        if not diags.has_errors:
            verify_net(net, diags)
            check_sharing(net, diags)
    except CaffeconfError as error:
        diags.extend(error)
        return Build(None, tuple(diags.sorted()))
    failed = diags.has_errors
    return Build(None if failed else net, tuple(diags.sorted()), None if failed else solver, document.variants)


def parse_config(path: str | Path, limits: Limits, diags: DiagnosticList,
                 text: str | None = None) -> tuple[Document, Library]:
    """A config's document and the modules visible from it (its imports read), checked; the
    errors go to `diags`."""
    def parse(tree, source: str):
        adopt_config_proto(tree, source, diags)
        return parse_document(tree, source, diags, net_field_names())

    document = parse(load_tree(path, limits, text), str(path))
    library = load_library(document, parse, limits, diags)
    check_modules(library, unit_key(document.path), document.layers, diags)
    return document, library


def check_solver(document, resolver: Resolver, diags: DiagnosticList) -> dict | None:
    """The `solver:` section checked against SolverParameter (values may use the document's params)."""
    node = document.solver
    if node is None:
        return None
    if isinstance(node, Map):
        for key in SOLVER_NET_FIELDS & set(node.values):
            diags.error(node.keys[key], f"`solver.{key}`: a config's solver trains the config's own net",
                        hint="remove it; to train another net, give that net to `caffeconf train`")
    return resolver.document_message(node, solver_message(), "solver", SOLVER_NET_FIELDS)


def compile_file(path: str | Path, limits: Limits = DEFAULT_LIMITS, variants: frozenset[str] = frozenset()) -> Net:
    """The flat net of a config; raises CaffeconfError with every error found."""
    result = build(path, limits, variants)
    if not result.ok:
        raise CaffeconfError(result.diagnostics)
    return result.net
