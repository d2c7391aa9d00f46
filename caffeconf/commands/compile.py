"""`caffeconf compile FILE -o net.prototxt`: the flat Caffe NetParameter, text or binary."""

from __future__ import annotations

import json
import os
import sys

from ..compile.load import compile_config
from ..compile.passes import after_net, traced
from ..errors import CaffeconfError, did_you_mean, render_text
from ..files import reading_buffers, write_atomic
from ..ir import Net
from ..limits import add_limit_arguments, limits_from
from ..compile.source import is_config
from ..compile.rules import filter_net
from .net_options import add_settings_argument, settings_from


def add_arguments(parser) -> None:
    parser.add_argument("file", metavar="NET", help="a caffeconf config (.yaml or .toml)")
    parser.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    parser.add_argument("--binary", action="store_true", help="write the binary NetParameter")
    parser.add_argument("--source-map", metavar="MAP.json",
                        help="write, per flat layer, its source location and chain of module uses")
    parser.add_argument("--debug-passes", action="store_true",
                        help="print to stderr, after each compiler pass, its IR (and the verifier's findings)")
    variant = parser.add_argument_group(
        "variants", "--stage NAME selects a variant the config declares (`variants:`); with --phase or "
        "--level the net is also pruned as Caffe's FilterNet would for that state, and its rules dropped")
    variant.add_argument("--phase", choices=("TRAIN", "TEST"), help="the NetState phase to prune for")
    variant.add_argument("--stage", action="append", default=None, metavar="NAME",
                         help="a NetState stage (repeatable); also selects a declared variant")
    variant.add_argument("--level", type=int, help="the NetState level to prune for")
    add_settings_argument(parser)
    add_limit_arguments(parser)


def source_map(net: Net) -> dict:
    def where(span):
        return {"file": span.path, "line": span.line, "column": span.col}

    return {"layers": [
        {"name": layer.name, **where(layer.origin.span),
         "uses": [{"module": use.module, "instance": use.instance, **where(use.span)} for use in layer.origin.uses]}
        for layer in net.layers if layer.origin
    ]}


def _check_outputs(args, inputs) -> None:
    """-o and --source-map name two new or regular files, none of them one of `inputs`."""
    from ..files import check_writable

    if args.source_map == "-":
        raise CaffeconfError.at(None, "--source-map -: the source map is written to a file, not to stdout")
    outputs = [output for output in (args.output, args.source_map) if output and output != "-"]
    for output in outputs:
        check_writable(output, inputs)
    if len({os.path.realpath(output) for output in outputs}) < len(outputs):
        raise CaffeconfError.at(None, f"-o and --source-map both name {args.output}: give two files")


def run(args) -> int:
    from ..caffe import prototxt, serde
    from ..compile.verify import shape_diagnostics

    _check_outputs(args, (args.file,))  # before anything is written: never half the outputs
    if not is_config(args.file):
        raise CaffeconfError.at(None, f"{args.file}: compile takes a config (.yaml, .yml or .toml)",
                                hint="to bring a prototxt to today's format use `caffeconf upgrade`; "
                                     "to turn it into a config, `caffeconf import`")
    limits = limits_from(args)
    with traced(sys.stderr.write if args.debug_passes else None), reading_buffers({}) as read:
        result = compile_config(args.file, limits, frozenset(args.stage or ()), settings_from(args, limits))
    diagnostics = result.diagnostics + (shape_diagnostics(result.net) if result.ok else ())
    if diagnostics:
        sys.stderr.write(render_text(diagnostics))
    if not result.ok or any(d.severity == "error" for d in diagnostics):  # as validate refuses it
        return 1
    _check_outputs(args, tuple(read))  # the files it imports are inputs too
    net = result.net
    unknown = [stage for stage in args.stage or () if stage not in result.variants]
    if unknown and not (args.phase or args.level is not None):
        raise CaffeconfError.at(None, f"--stage {unknown[0]}: the config declares no such variant "
                                f"(variants: {', '.join(result.variants) or 'none'})",
                                hint=did_you_mean(unknown[0], result.variants)
                                or "give --phase too to prune by a NetState stage instead")
    if args.phase or args.level is not None:
        net = filter_net(net, phase=args.phase, stages=args.stage, level=args.level)
        with traced(sys.stderr.write if args.debug_passes else None):
            after_net("filter", net)
    message = serde.net_to_proto(net)
    if args.output == "-":
        if args.binary:
            raise CaffeconfError.at(None, "--binary needs an output file (-o)")
        sys.stdout.write(prototxt.net_to_text(message))
    else:
        prototxt.write_net(message, args.output, binary=args.binary)
    if args.source_map:
        write_atomic(args.source_map, json.dumps(source_map(net), indent=1) + "\n")
    return 0
