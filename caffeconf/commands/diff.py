"""`caffeconf diff A B`: the semantic differences between two nets; exit 1 when they differ."""

from __future__ import annotations

import argparse
import json
import sys

from ..diff import diff_nets
from ..nets import load_net


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="a config (.yaml/.toml) or a Caffe prototxt")
    parser.add_argument("b", help="the net to compare it with")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    differences = diff_nets(load_net(args.a), load_net(args.b))
    if args.format == "json":
        document = {"equal": not differences, "differences": [d.as_json() for d in differences]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write("".join(d.describe() + "\n" for d in differences))
    return 1 if differences else 0
