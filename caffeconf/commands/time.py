"""`caffeconf time NET`: average forward and backward time per layer and in total, like `caffe time`
(PyTorch), or forward only through ONNX Runtime (--engine onnxruntime, or auto)."""

from __future__ import annotations

import sys

from ..errors import CaffeconfError
from .engines import MEASURED_PASSES, TITLES, WARM_UPS, add_engine_argument, cached_measurement, \
    export_for_runtime, faster_for, may_use_onnxruntime, measure_engines, measurement_key, report_choice, \
    store_measurement
from .net_options import add_runner_arguments, check_batch, check_threads, load_for_state, seed, warn
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml, .toml) or a Caffe prototxt")
    parser.add_argument("--iterations", type=int, default=50, metavar="N", help="timed iterations (default 50)")
    parser.add_argument("--weights", metavar="W.caffemodel", help="trained weights (else the fillers)")
    parser.add_argument("--input", action="append", default=[], metavar="BLOB=FILE.npy",
                        help="an input blob from a .npy file (repeatable); other inputs are random")
    add_runner_arguments(parser, "time")
    parser.add_argument("--seed", type=seed, default=0, help="seed for fillers and random inputs")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="batch size of random inputs")
    add_engine_argument(parser, "pytorch", "runs the passes (ONNX Runtime: forward only; pytorch: forward and "
                                           "backward, as `caffe time`)")


def run(args) -> int:
    if args.iterations < 1:
        raise CaffeconfError.at(None, f"--iterations must be at least 1, got {args.iterations}")
    check_batch(args)
    if args.engine == "onnxruntime" and args.device == "cuda":
        raise CaffeconfError.at(None, "--engine onnxruntime runs on the CPU: it takes no --device cuda")
    check_threads(args)
    with required_modules("time", "run,onnx" if args.engine == "onnxruntime" else None):
        return _time(args)


def _time(args) -> int:
    import torch

    from ..run.device import describe, select_device, use_threads
    from ..run.session import build_model, gather_inputs
    from ..run.timing import format_timing, time_net

    # `caffe time` builds the net for TRAIN unless told otherwise, to filter it and to run it
    warn(use_threads(args.threads))
    loaded = load_for_state(args, default_phase="TRAIN")
    net, phase = loaded.net, loaded.state.phase
    device = torch.device("cpu") if args.engine == "onnxruntime" else select_device(args.device)
    model = build_model(net, args.weights, phase, args.seed, device, allow_python_layers=args.allow_python_layers)
    inputs = gather_inputs(net, model, args.input, (), {}, args.seed, args.batch)
    inputs = {name: value.to(device) for name, value in inputs.items()}
    shapes = {name: tuple(value.shape) for name, value in inputs.items()}
    model.materialize(shapes)  # as Caffe's SetUp: shapes checked (a blob over INT_MAX refused) before a pass
    exported = None
    if args.engine == "onnxruntime":
        exported = export_for_runtime(net, model, shapes)
    elif args.engine == "auto" and may_use_onnxruntime(device.type):
        exported = _measured_choice(args, net, model, inputs, shapes)
    engine = "pytorch" if exported is None else "onnxruntime"
    by = " (auto)" if args.engine == "auto" else ""
    print(f"device: {describe(device)}; phase {phase}; engine {TITLES[engine]}{by}")
    timing = time_net(model, inputs, args.iterations, device) if exported is None else \
        _onnxruntime_timing(net, exported, inputs, args.iterations)
    sys.stdout.write(format_timing(timing))
    return 0


def _measured_choice(args, net, model, inputs: dict, shapes: dict):
    """Auto: the exported model where ONNX Runtime's pass is the faster (measured on this net,
    shapes and threads, or read from the cache of an earlier measurement), else None (PyTorch)."""
    import torch

    threads = torch.get_num_threads()
    key = measurement_key(net, shapes, threads)
    figures, exported, how = cached_measurement(key), None, "cached, per pass"
    if figures is None:
        figures, exported = measure_engines(net, model, inputs, threads)
        if figures is None:
            report_choice(args.verbose, "pytorch", None, "the net does not export")
            return None
        store_measurement(key, figures)
        how = f"measured now: the best of {MEASURED_PASSES} passes each after {WARM_UPS} warm-ups, per pass"
    engine = faster_for(figures, args.iterations, setup_paid=True)
    report_choice(args.verbose, engine, figures, how)
    if engine == "pytorch":
        return None
    return exported if exported is not None else export_for_runtime(net, model, shapes)


def _onnxruntime_timing(net, exported, inputs: dict, iterations: int):
    import torch

    from ..caffe.facts import FED_TYPES
    from ..export.ort import time_model
    from ..run.timing import LayerTime, Timing

    arrays = {name: value.numpy() for name, value in inputs.items()}
    forward_ms, layer_ms = time_model(exported, arrays, iterations, torch.get_num_threads())
    layers = [LayerTime(layer.name, layer.type, layer_ms.get(layer.name, 0.0))
              for layer in net.layers if layer.type not in FED_TYPES]
    return Timing(iterations, forward_ms, layers=layers, backward=False)
