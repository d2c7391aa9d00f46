"""`caffeconf test NET --weights W [--iterations N]`: score a model like `caffe test`, printing
each output blob averaged over N batches of the net's (TEST-phase) data layers."""

from __future__ import annotations

from ..errors import CaffeconfError
from .net_options import add_runner_arguments, check_threads, load_options, seed, warn
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml, .toml) or a Caffe prototxt")
    parser.add_argument("--weights", required=True, metavar="W.caffemodel", help="the trained weights")
    parser.add_argument("--iterations", type=int, default=50, metavar="N",
                        help="batches to average over (default 50, as caffe test)")
    add_runner_arguments(parser, "test")
    parser.add_argument("--seed", type=seed, default=0, help="seed for random transforms and Dropout")


def run(args) -> int:
    if args.iterations < 1:
        raise CaffeconfError.at(None, f"--iterations must be at least 1, got {args.iterations}")
    check_threads(args)
    with required_modules("test"):
        return _score(args)


def _score(args) -> int:
    import torch

    from ..run.device import select_device, use_threads
    from ..run.interpreter import CaffeNet, loss_weights
    from ..compile.load import StateChoice, load
    from ..caffe.weights import read_caffemodel
    from ..train.loop import Feeder, output_lines
    from ..train.data import Shard

    warn(use_threads(args.threads))
    phase = args.phase or "TEST"
    net = load(args.net, StateChoice.of(phase, args.stage, args.level), load_options(args)).net
    device = select_device(args.device)
    model = CaffeNet(net, phase=phase, seed=args.seed, weights=read_caffemodel(args.weights), device=device,
                     allow_python_layers=args.allow_python_layers)
    feeder = Feeder(net, phase, args.seed, Shard(), None, device)
    weights = {top: w for layer in net.layers for top, w in zip(layer.tops, loss_weights(layer))}
    totals, loss = {}, 0.0
    with torch.no_grad():
        for batch in range(args.iterations):
            outputs = model(feeder.batch(batch))
            for name, value in outputs.items():
                totals[name] = totals.get(name, 0) + value.double().cpu()
                loss += float(value.double().sum()) * weights.get(name, 0.0)
                print(f"Batch {batch}, {name} = {_text(value)}")
    print(f"Loss: {loss / args.iterations:.6g}")
    for line in output_lines(net, None, {n: t / args.iterations for n, t in totals.items()}):
        print(line)
    return 0


def _text(value) -> str:
    values = value.reshape(-1).tolist()
    return " ".join(f"{v:.6g}" for v in values[:8]) + (" ..." if len(values) > 8 else "")
