"""`caffeconf import NET.prototxt [-o net.yaml] [--modules] [--toml]`: a Caffe net as a caffeconf config
that compiles back to exactly the upgraded net; with --modules, repeated blocks become modules."""

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


def with_proto_header(text: str, proto: str, output: str, as_toml: bool) -> str:
    """The config with `caffe_proto:` after its format version, relative to where it is written."""
    folder = os.path.dirname(os.path.abspath(output)) if output != "-" else os.getcwd()
    value = json.dumps(os.path.relpath(os.path.abspath(proto), folder))
    version = "caffeconf = 1\n" if as_toml else "caffeconf: 1\n"
    return text.replace(version, version + ("caffe_proto = " if as_toml else "caffe_proto: ") + value + "\n", 1)


def run(args) -> int:
    from ..importer.read import import_config

    if args.output != "-":
        check_writable(args.output, inputs=(args.input,))
    as_toml = args.toml or args.output.lower().endswith(".toml")
    result = import_config(args.input, modules=args.modules, as_toml=as_toml)
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
