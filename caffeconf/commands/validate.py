"""`caffeconf validate FILE...`: report every problem, compiler style or as JSON."""

from __future__ import annotations

import sys

from ..compile.load import LoadOptions, compile_config, load
from ..compile.source import is_config
from ..compile.verify import shape_diagnostics
from ..errors import CaffeconfError, render_json, render_text
from ..limits import add_limit_arguments, limits_from


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="NET", help="configs (.yaml, .toml) or Caffe prototxt")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or JSON of the diagnostics")
    add_limit_arguments(parser)


def _diagnostics(path: str, limits) -> tuple:
    if is_config(path):
        result = compile_config(path, limits)
        return result.diagnostics + (shape_diagnostics(result.net) if result.ok else ())
    try:
        loaded = load(path, options=LoadOptions(limits, verify=True))
    except CaffeconfError as error:
        return error.diagnostics
    return loaded.diagnostics + (shape_diagnostics(loaded.net) if loaded.ok else ())


def run(args) -> int:
    diagnostics = [d for path in args.files for d in _diagnostics(path, limits_from(args))]
    if args.format == "json":
        sys.stdout.write(render_json(diagnostics))
    elif diagnostics:
        sys.stderr.write(render_text(diagnostics))
    return 1 if any(d.severity == "error" for d in diagnostics) else 0
