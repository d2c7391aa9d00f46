"""`caffeconf validate FILE...`: report every problem, compiler style or as JSON."""

from __future__ import annotations

import sys

from ..compile.load import LoadOptions, compile_config, load
from ..compile.settings import NO_SETTINGS
from ..compile.source import is_config
from ..errors import CaffeconfError, render_json, render_text
from ..limits import add_limit_arguments, limits_from
from .net_options import add_settings_argument, settings_from


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="NET", help="configs (.yaml, .toml) or Caffe prototxt")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or JSON of the diagnostics")
    add_settings_argument(parser)
    add_limit_arguments(parser)


def shape_diagnostics(net) -> tuple:
    """Shape mismatches in each state the net runs in, wherever the input shapes are known (from
    the net, or read from its data layers' sources, which a note then names)."""
    import dataclasses

    from ..errors import DiagnosticList, Note
    from ..compile.rules import filter_net
    from ..inspect.shapes import infer_shapes
    from ..inspect.sources import read_source_shapes, source_inputs
    from ..compile.verify import run_states

    found: dict = {}
    for state, _ in run_states(net, DiagnosticList()):
        filtered = filter_net(net, phase=state.phase, stages=state.stages, level=state.level)
        read = read_source_shapes(filtered)
        try:
            infer_shapes(filtered, source_inputs(read))
        except CaffeconfError as error:
            notes = tuple(Note(f"shapes read: {r.describe()}") for r in read)
            found.update(dict.fromkeys(dataclasses.replace(d, notes=d.notes + notes) for d in error.diagnostics))
    return tuple(found)


def file_diagnostics(path: str, limits, settings=NO_SETTINGS) -> tuple:
    """Everything `validate` reports for one net file: a config's or prototxt's errors and
    warnings, then the shape mismatches of a net that compiled."""
    if is_config(path):
        result = compile_config(path, limits, settings=settings)
        return result.diagnostics + (shape_diagnostics(result.net) if result.ok else ())
    try:
        loaded = load(path, options=LoadOptions(limits, verify=True, settings=settings))
    except CaffeconfError as error:
        return error.diagnostics
    return loaded.diagnostics + (shape_diagnostics(loaded.net) if loaded.ok else ())


def run(args) -> int:
    limits = limits_from(args)
    settings = settings_from(args, limits)
    diagnostics = [d for path in args.files for d in file_diagnostics(path, limits, settings)]
    if args.format == "json":
        sys.stdout.write(render_json(diagnostics))
    elif diagnostics:
        sys.stderr.write(render_text(diagnostics))
    return 1 if any(d.severity == "error" for d in diagnostics) else 0
