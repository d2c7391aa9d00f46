"""Command-line options shared by the commands that read one net: which state
(phase, stages, level) to build it for, a config's `--set` overrides, whether it may import
from outside its folder, and shapes for its inputs."""

from __future__ import annotations

import argparse
import sys

from ..compile.load import Loaded, LoadOptions, StateChoice, load
from ..compile.settings import Settings, parse_settings
from ..errors import CaffeconfError
from ..limits import DEFAULT_LIMITS, Limits


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phase", choices=("TRAIN", "TEST"),
                        help="build the net for this phase (default: the net's state, else TEST)")
    parser.add_argument("--stage", action="append", default=None, metavar="STAGE",
                        help="a NetState stage (repeatable); for a config, also selects a declared variant")
    parser.add_argument("--level", type=int, default=None, help="the NetState level")
    add_config_arguments(parser)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """What a command that reads a config may change in how it compiles."""
    parser.add_argument("--allow-absolute-imports", action="store_true",
                        help="allow a config's imports by absolute path or from outside its folder")
    add_settings_argument(parser)


def add_settings_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                        help="give a config's parameter NAME, or a solver field as solver.FIELD, the value "
                             "VALUE (YAML: a number, string, bool, null or [list]); repeatable")


def settings_from(args: argparse.Namespace, limits: Limits = DEFAULT_LIMITS) -> Settings:
    return parse_settings(args.settings, limits)


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", action="append", default=[], metavar="BLOB=D1,D2,...",
                        help="the shape of an input blob, e.g. data=10,3,227,227 (repeatable)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="replace the first dim of every input blob")


def add_runner_arguments(parser: argparse.ArgumentParser, action: str, state: bool = True) -> None:
    """What the commands that run a net (to `action` it) take: the state to build it for (without
    `state`, as train's solver gives it, only how its configs compile), its Python layers, threads, device."""
    (add_state_arguments if state else add_config_arguments)(parser)
    parser.add_argument("--allow-python-layers", action="store_true",
                        help="run the net's Python layers (type: \"Python\"): import each one's python_param.module "
                             "(from sys.path, then the net's folder and the current directory) and run its "
                             "code; without this flag such a net is refused")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads per process (default: the cores divided among the processes)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help=f"where to {action} (default auto: CUDA when available)")


MAX_SEED = 2**63 - 1  # what a torch or NumPy generator takes


def seed(text: str) -> int:
    """A --seed value: an integer from 0 to MAX_SEED (argparse reports anything else at its flag)."""
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def check_threads(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise CaffeconfError.at(None, f"--threads must be at least 1, got {args.threads}")


def warn(note: str | None) -> None:
    if note:
        sys.stderr.write(note + "\n")


def load_for_state(args: argparse.Namespace, default_phase: str = "TEST") -> Loaded:
    """The net at args.net, as Caffe builds it for the state the arguments choose."""
    return load(args.net, StateChoice.of(args.phase, args.stage, args.level, default_phase), load_options(args))


def load_options(args: argparse.Namespace) -> LoadOptions:
    limits = Limits(allow_absolute_imports=args.allow_absolute_imports)
    return LoadOptions(limits, settings=settings_from(args, limits))


def check_batch(args: argparse.Namespace) -> None:
    if args.batch is not None and args.batch < 1:
        raise CaffeconfError.at(None, f"--batch must be at least 1, got {args.batch}")


def parse_inputs(specs: list[str], positive: bool = False) -> dict[str, tuple[int, ...]]:
    """--input shapes; `positive`: every dim at least 1 (an ONNX export's inputs), else at least 0."""
    shapes = {}
    for spec in specs:
        name, _, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not name or not shape or any(d < (1 if positive else 0) for d in shape):
            raise CaffeconfError.at(None, f"bad --input '{spec}': expected BLOB=D1,D2,... "
                                          f"with {'positive' if positive else 'non-negative'} integer dims")
        shapes[name] = shape
    return shapes
