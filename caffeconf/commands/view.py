"""`caffeconf view NET`: write the explorable HTML view of a net and open it in the default browser."""

from __future__ import annotations

import argparse
import sys
import tempfile
import webbrowser
from pathlib import Path

from ..files import check_writable, write_atomic
from ..inspect.draw import RANKDIRS
from ..inspect.shapes import infer_shapes
from ..inspect.view import to_html
from .net_options import add_input_arguments, add_state_arguments, load_for_state, parse_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml/.toml) or a Caffe prototxt")
    parser.add_argument("-o", "--output", metavar="FILE.html",
                        help="where to write the page (default: a new file in a fresh temporary folder)")
    parser.add_argument("--no-browser", action="store_true", help="only write the page and print its path")
    parser.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="direction of flow (default TB)")
    add_state_arguments(parser)
    add_input_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_writable(args.output, inputs=(args.net,))
    net = load_for_state(args).net
    page = to_html(net, infer_shapes(net, parse_inputs(args.input), args.batch), args.rankdir)
    # A fresh folder of our own: nobody else can have put a file (or a link) at that name.
    path = Path(args.output or Path(tempfile.mkdtemp(prefix="caffeconf-view-")) / f"{Path(args.net).stem}.html")
    write_atomic(path, page)
    if args.no_browser or not webbrowser.open(path.resolve().as_uri()):
        print(path)
    else:
        print(f"opened {path} in the browser", file=sys.stderr)
    return 0
