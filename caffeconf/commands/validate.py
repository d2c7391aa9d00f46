"""`caffeconf validate FILE...`: report every problem, compiler style or as JSON."""

from __future__ import annotations

import dataclasses
import sys

from ..compile.load import LoadOptions, compile_config, load
from ..compile.settings import NO_SETTINGS
from ..compile.source import is_config
from ..caffe.netfile import SolverGiven
from ..compile.verify import shape_diagnostics
from ..errors import CaffeconfError, Note, Span, render_json, render_text
from ..limits import add_limit_arguments, limits_from
from .net_options import add_settings_argument, settings_from


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="NET", help="configs (.yaml, .toml) or Caffe prototxt")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or JSON of the diagnostics")
    add_settings_argument(parser)
    add_limit_arguments(parser)


def file_diagnostics(path: str, limits, settings=NO_SETTINGS, solver_ok: bool = True) -> tuple:
    """Everything `validate` reports for the net (or, when `solver_ok`, the solver) at `path`:
    errors and warnings, then the shape mismatches of a net that compiled."""
    try:
        if is_config(path):
            return _config_diagnostics(path, limits, settings)
        loaded = load(path, options=LoadOptions(limits, verify=True, settings=settings))
    except SolverGiven as given:
        return solver_diagnostics(given, limits) if solver_ok else given.diagnostics
    except CaffeconfError as error:
        return error.diagnostics
    return _net_diagnostics(loaded.diagnostics, loaded.net)


def _config_diagnostics(path: str, limits, settings) -> tuple:
    """A config's problems as compiled plain, then those only a declared variant's entries show
    (a mistake in a `when: ${deploy}` entry is one too), each once."""
    result = compile_config(path, limits, settings=settings)
    found = dict.fromkeys(result.diagnostics + (shape_diagnostics(result.net) if result.ok else ()))
    for variant in result.variants if not any(d.severity == "error" for d in found) else ():
        chosen = compile_config(path, limits, frozenset({variant}), settings)
        found.update(dict.fromkeys(chosen.diagnostics + (shape_diagnostics(chosen.net) if chosen.ok else ())))
    return tuple(found)


def _net_diagnostics(found: tuple, net) -> tuple:
    return found + (shape_diagnostics(net) if not any(d.severity == "error" for d in found) else ())


def solver_diagnostics(given: SolverGiven, limits) -> tuple:
    """A solver's problems (its fields were checked as it was read), then those of each net it
    names: a file (relative to the current directory, as Caffe opens it) or a net written in it.
    An error with no place of its own is placed at the field that names the net."""
    from ..compile.solver import check_solver_values, test_nets, train_net

    source, solver = given.source, given.solver
    try:
        check_solver_values(solver, source)
        train_net(solver, None, source)  # for what Caffe refuses: no net, a test_iter per test net
        test_nets(solver, None, source)
    except CaffeconfError as error:
        return _placed(error.diagnostics, Span(source, 1, 1))
    found: tuple = ()
    for field in dict.fromkeys(f.name for f in given.outline.fields if f.name in NET_FIELDS):
        written = given.outline.named(field)[0]
        value, where = getattr(solver, field), Span(source, written.line, written.col)
        for net in (list(value) if field.startswith("test_") else [value]):  # test nets are repeated fields
            from_net = file_diagnostics(net, limits, solver_ok=False) if isinstance(net, str) else \
                _inline(net, source, field)
            found += _placed(from_net, where, Note(f"in the net the solver's `{field}` names", where))
    return tuple(dict.fromkeys(found))


# SolverParameter fields that name or hold a net, as Caffe reads them.
NET_FIELDS = ("net", "net_param", "train_net", "train_net_param", "test_net", "test_net_param")


def _inline(net, source: str, field: str) -> tuple:
    from ..caffe import serde, upgrade
    from ..compile.load import prototxt_diagnostics

    label = f"{source}:{field}"
    try:
        flat = serde.net_from_proto(upgrade.upgrade_net(net, source=label), source=label)
    except CaffeconfError as error:
        return error.diagnostics
    return _net_diagnostics(prototxt_diagnostics(flat), flat)


def _placed(diagnostics: tuple, where: Span, note: Note | None = None) -> tuple:
    """Each diagnostic placed at `where` when it has no place, else with `note` saying how it was reached."""
    return tuple(d.with_note(note) if d.span and note else
                 d if d.span else dataclasses.replace(d, span=where) for d in diagnostics)


def run(args) -> int:
    limits = limits_from(args)
    settings = settings_from(args, limits)
    diagnostics = [d for path in args.files for d in file_diagnostics(path, limits, settings)]
    if args.format == "json":
        sys.stdout.write(render_json(diagnostics))
    elif diagnostics:
        sys.stderr.write(render_text(diagnostics))
    return 1 if any(d.severity == "error" for d in diagnostics) else 0
