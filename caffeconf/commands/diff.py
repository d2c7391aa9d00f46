"""`caffeconf diff A B`: the semantic differences between two nets (or two solvers). Exit status as diff(1):
0 when they are equal, 1 when they differ, 2 when a net cannot be read."""

from __future__ import annotations

import argparse
import json
import sys

from ..caffe.netfile import SolverGiven
from ..inspect.diff import diff_nets, diff_solvers
from ..ir import Net
from ..errors import CaffeconfError, render_json, render_text
from ..compile.load import LoadOptions, load
from ..compile.settings import NO_SETTINGS
from ..compile.source import is_config
from .net_options import add_settings_argument, settings_from

EPILOG = "exit status: 0 if the nets are equal, 1 if they differ, 2 if a net cannot be read"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("a", metavar="NET_A", help="a config (.yaml/.toml) or a Caffe prototxt or binary net "
                        "(.caffemodel), or a solver prototxt")
    parser.add_argument("b", metavar="NET_B", help="the net (or solver) to compare it with")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or JSON of the differences")
    add_settings_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)  # for each config of the two; a prototxt has no parameters
        differences = _differences(_read(args.a, settings), _read(args.b, settings), args.b)
    except CaffeconfError as error:
        _report(error, args.format)
        return 2
    if args.format == "json":
        document = {"equal": not differences, "differences": [d.as_json() for d in differences]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write("".join(d.describe() + "\n" for d in differences))
    return 1 if differences else 0


def _read(path: str, settings):
    """The net at `path` (a config with the `--set` settings), or the solver when the file holds one."""
    try:
        return load(path, options=LoadOptions(settings=settings if is_config(path) else NO_SETTINGS)).net
    except SolverGiven as given:
        return given.solver


def _differences(a, b, path_b: str) -> list:
    if isinstance(a, Net) != isinstance(b, Net):
        kinds = ("a net", "a solver") if isinstance(a, Net) else ("a solver", "a net")
        raise CaffeconfError.at(None, f"cannot compare {kinds[0]} with {kinds[1]} ({path_b})",
                                hint="give two nets or two solvers")
    return diff_nets(a, b) if isinstance(a, Net) else diff_solvers(a, b)


def _report(error: CaffeconfError, output_format: str) -> None:
    """As the CLI renders errors, but here exit status 1 means "different"."""
    if output_format == "json":
        sys.stdout.write(render_json(error.diagnostics))
    else:
        sys.stderr.write(render_text(error.diagnostics))
