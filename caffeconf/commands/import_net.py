"""`caffeconf import NET.prototxt [-o net.yaml] [--modules] [--toml | --python]`: a Caffe net as a caffeconf
config that compiles back to exactly the upgraded net; with --modules, repeated blocks become modules;
with --python, a script that builds it with caffeconf.netspec."""

from __future__ import annotations

import json
import os
import sys

from ..files import check_writable, write_atomic


def add_arguments(parser) -> None:
    parser.add_argument("input", metavar="NET", help="a Caffe net (V0, V1 or V2 prototxt, or binary)")
    parser.add_argument("-o", "--output", default="-", metavar="OUT",
                        help="the config to write, atomically (default: stdout)")
    parser.add_argument("--modules", action="store_true",
                        help="recover repeated blocks as modules with parameters and repeats")
    parser.add_argument("--toml", action="store_true", help="write TOML (the default for a .toml OUT)")
    parser.add_argument("--python", action="store_true",
                        help="write a Python script that builds the net with caffeconf.netspec, one call a layer "
                             "(the default for a .py OUT)")


def with_proto_header(text: str, proto: str, output: str, as_toml: bool) -> str:
    """The config with `caffe_proto:` after its format version, relative to where it is written."""
    folder = os.path.dirname(os.path.abspath(output)) if output != "-" else os.getcwd()
    value = json.dumps(os.path.relpath(os.path.abspath(proto), folder))
    version = "caffeconf = 1\n" if as_toml else "caffeconf: 1\n"
    return text.replace(version, version + ("caffe_proto = " if as_toml else "caffe_proto: ") + value + "\n", 1)


def run(args) -> int:
    from ..errors import CaffeconfError
    from ..importer.read import import_config, import_python

    if args.output != "-":
        check_writable(args.output, inputs=(args.input,))
    as_python = args.python or args.output.lower().endswith(".py")
    as_toml = args.toml or args.output.lower().endswith(".toml")
    clash = [option for option, given in (("--modules", args.modules), ("--toml", as_toml), ("--proto", args.proto))
             if given] if as_python else []
    if clash:
        raise CaffeconfError.at(None, f"--python writes a flat script for BVLC's caffe.proto: it takes no {clash[0]}")
    result = import_python(args.input) if as_python else \
        import_config(args.input, modules=args.modules, as_toml=as_toml)
    text = with_proto_header(result.text, args.proto, args.output, as_toml) if args.proto else result.text
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
    for warning in result.warnings:
        sys.stderr.write(f"{args.input}: warning: {warning}\n")
    for note in result.notes:
        sys.stderr.write(f"{args.input}: note: {note}\n")
    sys.stderr.write(f"{args.input}: {result.summary()}\n")
    return 0
