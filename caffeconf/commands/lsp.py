"""`caffeconf lsp`: the language server, over stdio (what editors start) or `--tcp PORT`."""

from __future__ import annotations

from ..limits import add_limit_arguments, limits_from
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("--tcp", type=int, metavar="PORT", default=None,
                        help="listen on 127.0.0.1:PORT instead of stdio (for debugging the server)")
    add_limit_arguments(parser)


def run(args) -> int:
    with required_modules("lsp"):
        from ..lsp.server import serve
    serve(args.tcp, limits_from(args))
    return 0
