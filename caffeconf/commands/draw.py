"""`caffeconf draw NET -o out.svg|png|dot|html`: modules as nested boxes, collapsed, or flat."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..inspect.draw import DOT_TIMEOUT_S, RANKDIRS, render_with_dot, to_dot
from ..errors import CaffeconfError
from ..files import check_writable, write_atomic
from ..inspect.shapes import infer_shapes
from ..inspect.view import to_html
from .net_options import add_input_arguments, add_state_arguments, load_for_state, parse_inputs

FORMATS = (".svg", ".png", ".pdf", ".dot", ".html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml/.toml) or a Caffe prototxt")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="where to write: .svg, .png, .pdf (need Graphviz's dot), .dot, or .html "
                             "(an explorable page that lays itself out; needs nothing installed); "
                             "- for stdout")
    parser.add_argument("--format", choices=[suffix[1:] for suffix in FORMATS], default=None,
                        help="the output format (default: -o's suffix; dot for -o -)")
    grouping = parser.add_mutually_exclusive_group()
    grouping.add_argument("--depth", type=int, metavar="K",
                          help="one box per module use at depth K (default: nested clusters)")
    grouping.add_argument("--flat", action="store_true", help="layers only, no module boxes")
    parser.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="direction of flow (default TB)")
    parser.add_argument("--dot-timeout", type=float, default=DOT_TIMEOUT_S, metavar="SECONDS",
                        help=f"stop Graphviz's dot after this long (default {DOT_TIMEOUT_S:g})")
    add_state_arguments(parser)
    add_input_arguments(parser)


def run(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-"
    suffix = f".{args.format}" if args.format else (".dot" if to_stdout else Path(args.output).suffix.lower())
    if suffix not in FORMATS:
        raise CaffeconfError.at(None, f"cannot draw to '{args.output}': the name must end in "
                                      + ", ".join(FORMATS), hint="or give --format")
    if not args.dot_timeout > 0:
        raise CaffeconfError.at(None, f"--dot-timeout must be positive, got {args.dot_timeout:g}")
    if args.depth is not None and args.depth < 1:
        raise CaffeconfError.at(None, f"--depth must be 1 or more, got {args.depth}")
    if suffix == ".html" and (args.depth is not None or args.flat):
        raise CaffeconfError.at(None, "the .html page opens and closes modules itself: drop --depth/--flat")
    if not to_stdout:
        check_writable(args.output, inputs=(args.net,))
    net = load_for_state(args).net
    shapes = infer_shapes(net, parse_inputs(args.input), args.batch)
    if suffix == ".html":
        drawing = to_html(net, shapes, args.rankdir)
    else:
        dot_text = to_dot(net, shapes, depth=args.depth, flat=args.flat, rankdir=args.rankdir)
        drawing = dot_text if suffix == ".dot" else render_with_dot(dot_text, suffix[1:], args.dot_timeout)
    if to_stdout:
        sys.stdout.buffer.write(drawing.encode("utf-8") if isinstance(drawing, str) else drawing)
        sys.stdout.flush()
    else:
        write_atomic(args.output, drawing)
    return 0
