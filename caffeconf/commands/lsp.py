"""`caffeconf lsp`: the language server, over stdio (what editors start) or `--tcp PORT`."""

from __future__ import annotations

import argparse

from ..limits import add_limit_arguments, limits_from
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("--tcp", type=int, metavar="PORT", default=None,
                        help="listen on 127.0.0.1:PORT instead of stdio (for debugging the server)")
    parser.add_argument("--debounce", type=debounce_ms, metavar="MS", default=None,
                        help="wait MS milliseconds for typing to pause before checking a changed "
                             "document (default 50; 0 checks after every change)")
    add_limit_arguments(parser)


MAX_DEBOUNCE_MS = 10_000


def debounce_ms(text: str) -> int:
    """A --debounce value: whole milliseconds from 0 to MAX_DEBOUNCE_MS."""
    value = int(text)
    if not 0 <= value <= MAX_DEBOUNCE_MS:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_DEBOUNCE_MS}, got {value}")
    return value


def run(args) -> int:
    with required_modules("lsp"):
        from ..lsp.server import serve
    serve(args.tcp, limits_from(args), args.debounce)
    return 0
