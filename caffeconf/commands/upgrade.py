"""`caffeconf upgrade IN [-o OUT]`: a V0/V1 net or an old solver rewritten in the current format,
like Caffe's upgrade_net_proto_text / upgrade_solver_proto_text (canonical text or binary)."""

from __future__ import annotations

import sys

from ..errors import CaffeconfError, render_text
from ..files import check_writable
from ..caffe import messages


def add_arguments(parser) -> None:
    parser.add_argument("input", metavar="NET", help="a Caffe net (or solver) (prototxt or binary)")
    parser.add_argument("-o", "--output", default="-", metavar="OUT",
                        help="output file, written atomically (default: stdout)")
    parser.add_argument("--binary", action="store_true", help="write binary protobuf, not text")


def run(args) -> int:
    from ..caffe import prototxt, upgrade

    if args.binary and args.output == "-":
        raise CaffeconfError.at(None, "--binary needs an output file (-o)")
    if args.output != "-":
        check_writable(args.output, inputs=(args.input,))
    message = prototxt.read_net_or_solver(args.input)
    if isinstance(message, messages.SolverParameter):
        what = "solver"
        upgraded, report = upgrade.upgrade_solver_with_report(message, args.input)
    else:
        what = f"{upgrade.net_version(message)} net"
        upgraded, report = upgrade.upgrade_net_with_report(message, args.input)
    if report.warnings:
        sys.stderr.write(render_text(report.warnings))
    if args.output == "-":
        sys.stdout.write(prototxt.message_to_text(upgraded))
    else:
        prototxt.write_message(upgraded, args.output, binary=args.binary)
    sys.stderr.write(f"{args.input}: {what}: {report.summary()}\n")
    # Like Caffe's upgrade_net_proto_text: the output is written, but an upgrade that had to drop
    # or guess something is not a success.
    return 1 if report.warnings else 0
