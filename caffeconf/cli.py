"""Command line: `caffeconf COMMAND ...`. Thin by design: `main(argv) -> int`.

Each command lives in `caffeconf.commands.<module>` with `add_arguments(parser)`
and `run(args) -> int`; only the chosen command's module is imported, so
`validate` and `compile` never pay for (or import) torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from . import __version__
from .caffe.dialect import load_dialect
from .compile.load import one_command
from .errors import CaffeconfError, render_json, render_text

INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE

# name -> (module under caffeconf.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check configs and report every problem with its location"),
    "compile": ("compile", "compile a config to a flat Caffe NetParameter"),
    "upgrade": ("upgrade", "upgrade a V0/V1 net or an old solver to the current format"),
    "schema": ("schema", "print the JSON Schema for configs"),
    "lsp": ("lsp", "a language server for editors: validate's diagnostics as you type, hover, definitions"),
    "run": ("run", "run a net forward with PyTorch"),
    "time": ("time", "time forward and backward per layer, like `caffe time`"),
    "inspect": ("inspect", "shapes, parameters, MACs and memory per layer or module"),
    "draw": ("draw", "draw a net (modules as boxes, or flat)"),
    "view": ("view", "open a net's explorable drawing in the browser"),
    "diff": ("diff", "semantic differences between two nets (exit 0 equal, 1 different, 2 trouble)"),
    "export": ("export", "write a net and its weights as an ONNX model with Caffe's numerics"),
    "import": ("import_net", "turn a prototxt into a caffeconf config"),
    "train": ("train", "train a net with a Caffe solver"),
    "test": ("test", "score a trained model over a test set, like `caffe test`"),
    "convert-imageset": ("convert_imageset", "build an LMDB of Datum records from an image list"),
}


def _available() -> dict[str, tuple[str, str]]:
    here = os.path.join(os.path.dirname(__file__), "commands")
    return {name: entry for name, entry in COMMANDS.items()
            if os.path.exists(os.path.join(here, entry[0] + ".py"))}


class CommandParser(argparse.ArgumentParser):
    """One command's parser. A command whose module sets `INTERMIXED = True` takes its positionals
    anywhere among its options (`run NET --weights W a.jpg --batch 1 b.jpg`) and reports leftover
    arguments with its own usage rather than the top level's."""

    intermixed = False
    _parsing_intermixed = False

    def parse_known_args(self, args=None, namespace=None):
        # parse_known_intermixed_args calls parse_known_args itself: only the outer call switches.
        if not self.intermixed or self._parsing_intermixed:
            return super().parse_known_args(args, namespace)
        self._parsing_intermixed = True
        try:
            namespace, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing_intermixed = False
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffeconf", description="Composable Caffe nets: typed modules in YAML or TOML, compiled to "
        "exact prototxt, and run, trained, drawn, inspected and compared.")
    parser.add_argument("--version", action="version", version=f"caffeconf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name, (module, help_text) in _available().items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.add_argument("--proto", metavar="FILE", default=None,
                                help="a fork's caffe.proto (SSD, SegNet, ...) to read and write nets with "
                                     "(default: BVLC's, or the config's `caffe_proto:`)")
        if name == command:
            chosen = importlib.import_module(f"caffeconf.commands.{module}")
            sub_parser.intermixed = getattr(chosen, "INTERMIXED", False)
            chosen.add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # OpenCV logs its decoders' complaints (naming its own source files) to stderr; the commands
    # word each failure themselves.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"caffeconf.commands.{_available()[args.command][0]}")
    try:
        with one_command(load_dialect(args.proto) if args.proto else None):
            return module.run(args)
    except CaffeconfError as error:
        as_json = getattr(args, "format", None) == "json"
        renderer = render_json if as_json else render_text
        (sys.stdout if as_json else sys.stderr).write(renderer(error.diagnostics))
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:  # a file problem no command anticipated: still no traceback
        sys.stderr.write(f"error: {error.filename or ''}{': ' if error.filename else ''}{error.strerror or error}\n")
        return 1
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug of ours: say so plainly rather than show a traceback
        sys.stderr.write(f"caffeconf: internal error: {type(error).__name__}: {error}\n"
                         "please report it with the command and input that caused it "
                         "(CAFFECONF_TRACEBACK=1 shows the traceback)\n")
        if os.environ.get("CAFFECONF_TRACEBACK"):
            raise
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
