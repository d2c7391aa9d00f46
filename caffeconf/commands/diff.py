"""`caffeconf diff A B`: the semantic differences between two nets. Exit status as diff(1):
0 when they are equal, 1 when they differ, 2 when a net cannot be read."""

from __future__ import annotations

import argparse
import json
import sys

from ..inspect.diff import diff_nets
from ..errors import CaffeconfError, render_json, render_text
from ..compile.load import LoadOptions, load
from ..compile.settings import NO_SETTINGS
from ..compile.source import is_config
from .net_options import add_settings_argument, settings_from

EPILOG = "exit status: 0 if the nets are equal, 1 if they differ, 2 if a net cannot be read"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("a", metavar="NET_A", help="a config (.yaml/.toml) or a Caffe prototxt or binary net (.caffemodel)")
    parser.add_argument("b", metavar="NET_B", help="the net to compare it with")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default) or JSON of the differences")
    add_settings_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)  # for each config of the two; a prototxt has no parameters
        a, b = (load(path, options=LoadOptions(settings=settings if is_config(path) else NO_SETTINGS)).net
                for path in (args.a, args.b))
        differences = diff_nets(a, b)
    except CaffeconfError as error:
        _report(error, args.format)
        return 2
    if args.format == "json":
        document = {"equal": not differences, "differences": [d.as_json() for d in differences]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write("".join(d.describe() + "\n" for d in differences))
    return 1 if differences else 0


def _report(error: CaffeconfError, output_format: str) -> None:
    """As the CLI renders errors, but here exit status 1 means "different"."""
    if output_format == "json":
        sys.stdout.write(render_json(error.diagnostics))
    else:
        sys.stderr.write(render_text(error.diagnostics))
