"""`caffeconf schema [-o FILE]`: the JSON Schema that editors validate configs with."""

from __future__ import annotations

import sys

from ..files import write_atomic
from ..compile.schema import generate, render


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--output", default="-", metavar="FILE",
                        help="write the schema here (atomically) instead of to stdout")


def run(args) -> int:
    text = render(generate())
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
    return 0
