"""A solver (Caffe prototxt, text or binary; a YAML or TOML file of the same fields; or a config's
`solver:` section) -> a current SolverParameter, with snapshot_prefix defaulted as Caffe does and
the nets it names.

Paths in a solver (`net`, `train_net`, `test_net`, `snapshot_prefix`) are used as written, so a
relative path is relative to the current directory: Caffe opens them with plain fopen/open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fields import set_solver_fields
from .load import LoadOptions
from .settings import SETTINGS_SOURCE, with_solver_settings
from ..errors import CaffeconfError, Span
from ..ir import Net
from ..caffe import messages


@dataclass(frozen=True)
class NetChoice:
    """One net the solver trains or tests: a file (or a net written inside the solver) and the
    NetState to filter it with."""

    path: str
    phase: str
    stages: tuple[str, ...] = ()
    level: int = 0
    inline: Net | None = None  # from net_param / train_net_param / test_net_param


def read_solver_file(path: str, how: LoadOptions = LoadOptions()) -> messages.SolverParameter:
    """The solver in `path`, upgraded (old solver_type), with the `solver.FIELD` settings of `how`
    (a config applies them itself), snapshot_prefix filled in."""
    from ..caffe import prototxt, upgrade
    from .source import is_config

    if is_config(path):
        solver = _solver_from_tree(path, how)
    else:
        solver = upgrade.upgrade_solver(prototxt.read_solver(path), source=path)
        if how.settings.solver is not None:
            set_solver_fields(solver, how.settings.solver, "solver", SETTINGS_SOURCE)
    _default_snapshot_prefix(solver, path)
    check_solver_values(solver, path, how)
    return solver


def check_solver_values(solver: messages.SolverParameter, path: str, how: LoadOptions = LoadOptions()) -> None:
    """Refuse, where each is written, the values Caffe's solver refuses (facts.solver_value_problems),
    before a net is built or the log is touched."""
    from ..caffe.facts import solver_value_problems
    from ..errors import DiagnosticList

    problems = solver_value_problems(solver)
    where = _field_spans(path, how) if problems else None  # the file is read again only to place an error
    diags = DiagnosticList()
    for fields, message, hint in problems:
        span = next((found for field in fields if (found := where(field)) is not None), None)
        diags.error(span or Span(path, 1, 1), message, hint=hint)  # a missing field: the file itself
    if diags.items:
        raise CaffeconfError(diags.sorted())


def _field_spans(path: str, how: LoadOptions):
    """field name -> the span where it is written: a `--set solver.FIELD`, else a YAML/TOML solver of
    plain fields or a text solver prototxt (a config's section is checked as it compiles); None where
    it is not (a binary solver, a default value)."""
    from .source import is_config, load_tree
    from .tree import Map
    from ..caffe.upgrade import Locator

    given = how.settings.solver.keys if how.settings.solver is not None else {}
    tree = load_tree(path, how.limits) if is_config(path) else None
    written = (tree.keys if isinstance(tree, Map) else {}).get if tree is not None else Locator.of(path).field
    return lambda field: given.get(field) or written(field)


def config_solver(path: str, how: LoadOptions = LoadOptions()) -> messages.SolverParameter | None:
    """A config's own `solver:` section (its net is the config), or None when it has none."""
    from .load import compile_config
    from ..caffe.serde import data_to_message

    result = compile_config(path, how.limits, settings=how.settings)
    if not result.ok:
        raise CaffeconfError(result.diagnostics)
    if result.solver is None:
        return None
    solver = data_to_message(result.solver, messages.SolverParameter(), path)
    solver.net = path
    _default_snapshot_prefix(solver, path)
    return solver


def _solver_from_tree(path: str, how: LoadOptions) -> messages.SolverParameter:
    """A YAML/TOML solver file: a caffeconf config's `solver:` section, or a plain mapping of
    SolverParameter fields, each checked where it is written."""
    from .tree import Map
    from .source import load_tree

    tree = load_tree(path, how.limits)
    if isinstance(tree, Map) and "caffeconf" in tree:
        solver = config_solver(path, how)
        if solver is None:
            raise CaffeconfError.at(tree.span, "this config has no `solver:` section")
        return solver
    solver = messages.SolverParameter()
    set_solver_fields(solver, with_solver_settings(tree, how.settings), "", path)
    return solver


def _default_snapshot_prefix(solver: messages.SolverParameter, path: str) -> None:
    """Caffe's UpgradeSnapshotPrefixProperty: no prefix -> the solver file's path without its
    extension; a directory -> that directory plus the solver file's stem."""
    if not solver.HasField("snapshot_prefix"):
        solver.snapshot_prefix = str(Path(path).with_suffix(""))
    elif Path(solver.snapshot_prefix).is_dir():
        solver.snapshot_prefix = str(Path(solver.snapshot_prefix) / Path(path).stem)


def train_net(solver: messages.SolverParameter, override: str | None, source: str = "") -> NetChoice:
    """The training net: the command line's NET, else (as Caffe looks for them) train_net_param,
    train_net, net_param or net, in train_state."""
    state = solver.train_state
    fields = ("train_net_param", "train_net", "net_param", "net")
    path, inline = (override, None) if override else _first_net(solver, fields, source)
    if path is None:
        raise CaffeconfError.at(None, "no net to train: give NET or set `net` in the solver")
    return NetChoice(path, "TRAIN", tuple(state.stage), state.level, inline)


def _net_source(solver, field: str, value, source: str) -> tuple[str, Net | None]:
    """(path, None) for a file name; (a label, the upgraded net) for a net written in the solver."""
    if isinstance(value, str):
        return value, None
    from ..caffe import serde, upgrade

    label = f"{source or 'solver'}:{field}"
    return label, serde.net_from_proto(upgrade.upgrade_net(value, source=label), source=label)


def test_nets(solver: messages.SolverParameter, override: str | None, source: str = "") -> list[NetChoice]:
    """Caffe's test nets: each test_net_param, then each `test_net` file, else the general net
    (NET, net_param or net) once per `test_iter`; each filtered with TEST phase and its `test_state`."""
    sources = [_net_source(solver, "test_net_param", net, source) for net in solver.test_net_param]
    sources += [(path, None) for path in solver.test_net]
    if not sources:
        general = (override, None) if override else _first_net(solver, ("net_param", "net"), source)
        sources = [general] * len(solver.test_iter) if general[0] else []
    if len(sources) != len(solver.test_iter):
        raise CaffeconfError.at(None, f"the solver has {len(sources)} test nets but {len(solver.test_iter)} "
                                      "test_iter values: give one test_iter per test net")
    if solver.test_state and len(solver.test_state) != len(sources):
        raise CaffeconfError.at(None, f"{len(solver.test_state)} test_state entries for {len(sources)} test nets")
    states = solver.test_state or [messages.NetState()] * len(sources)
    return [NetChoice(path, "TEST", tuple(state.stage), state.level, inline)
            for (path, inline), state in zip(sources, states)]


def _first_net(solver, fields: tuple[str, ...], source: str) -> tuple[str | None, Net | None]:
    """The first of `fields` the solver sets, as `_net_source` gives it; (None, None) for none."""
    for field in fields:
        if solver.HasField(field):
            return _net_source(solver, field, getattr(solver, field), source)
    return None, None
