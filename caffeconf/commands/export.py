"""`caffeconf export NET -o model.onnx`: the net and its weights as an ONNX model with Caffe's numerics."""

from __future__ import annotations

from .net_options import add_input_arguments, add_state_arguments, check_batch, load_for_state, parse_inputs, seed
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml, .toml) or a Caffe prototxt whose inputs are "
                                                  "Input layers (a deploy net)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.onnx",
                        help="the ONNX model to write, atomically")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="W.caffemodel", help="trained weights (else the fillers)")
    source.add_argument("--random-weights", action="store_true",
                        help="seeded random weights of a sensible scale, as `caffeconf run --random-weights`")
    parser.add_argument("--seed", type=seed, default=0, help="seed for fillers and random weights")
    parser.add_argument("--opset", type=int, default=None, metavar="N",
                        help="the ONNX opset to write (default 17)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="leave the batch dimension symbolic (the declared batch is only an example)")
    add_input_arguments(parser)
    add_state_arguments(parser)


def run(args) -> int:
    with required_modules("export"):
        return _export(args)


def _export(args) -> int:
    import torch

    from ..export.emit import DEFAULT_OPSET
    from ..export.graph import check_opset, export_net
    from ..files import check_writable, write_atomic
    from ..errors import CaffeconfError
    from ..run.layers.python import python_refusals
    from ..run.session import build_model, input_shapes

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    check_opset(opset)
    check_batch(args)
    given = parse_inputs(args.input, positive=True)
    check_writable(args.output, (args.net, *([args.weights] if args.weights else [])))
    loaded = load_for_state(args)
    net = loaded.net
    refusals = python_refusals(net, "an ONNX graph cannot hold a Python layer's code")
    if refusals:
        raise CaffeconfError(refusals)
    shapes = {**input_shapes(net, args.batch), **given}
    model = build_model(net, args.weights, loaded.state.phase, args.seed, torch.device("cpu"),
                        random_weights=args.random_weights)
    model.materialize(shapes)
    exported = export_net(net, model.blob_arrays(), shapes, opset=opset, dynamic_batch=args.dynamic_batch)
    write_atomic(args.output, exported.SerializeToString())
    print(f"{args.output}: ONNX opset {opset}, {len(exported.graph.node)} nodes, "
          f"inputs {', '.join(i.name for i in exported.graph.input)}, "
          f"outputs {', '.join(o.name for o in exported.graph.output)}")
    return 0
