"""`caffeconf run NET`: one forward pass (PyTorch or ONNX Runtime), a summary of every output blob, and
with --compare the other engine's pass and each blob's largest difference."""

from __future__ import annotations

import os

import sys

from ..errors import CaffeconfError, Diagnostic, did_you_mean
from ..ir import Net
from .engines import ORT_ONLY, TITLES, add_engine_argument, blob_differences, cached_measurement, \
    export_for_runtime, faster_for, format_differences, may_use_onnxruntime, measurement_key, report_choice
from .net_options import add_runner_arguments, check_batch, check_threads, load_for_state, seed, warn
from .optional_modules import required_modules

INTERMIXED = True  # images may come anywhere among the options, as README shows


def add_arguments(parser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml, .toml) or a Caffe prototxt")
    parser.add_argument("images", nargs="*", default=[], metavar="IMAGE",
                        help="images for the first input blob, preprocessed like transform_param")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="W.caffemodel", help="trained weights (else the fillers)")
    source.add_argument("--random-weights", action="store_true",
                        help="seeded random weights of a sensible scale instead of the fillers (e.g. for "
                             "a deploy net without weights): weights normal with std 1/sqrt(fan_in), "
                             "small biases, BatchNorm variances positive, Scale factors near 1")
    parser.add_argument("--input", action="append", default=[], metavar="BLOB=FILE.npy",
                        help="an input blob from a .npy file (repeatable); other inputs are random")
    add_runner_arguments(parser, "run")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="arithmetic of the forward pass: fp32 (Caffe's, default) or autocast to bf16/fp16")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory layout (CUDA)")
    add_engine_argument(parser, "auto", "runs the pass")
    parser.add_argument("--compare", choices=("pytorch", "onnxruntime"), default=None, metavar="ENGINE",
                        help="also run the pass with this engine (pytorch or onnxruntime) and print each output's "
                             "(with --blobs, each of those blobs') largest absolute and relative difference; "
                             "exit status 1 when one is above --tolerance")
    parser.add_argument("--tolerance", type=float, default=None, metavar="REL",
                        help="the largest relative difference --compare accepts, of the blob's largest "
                             "magnitude in the --compare engine (default 1e-4)")
    parser.add_argument("--seed", type=seed, default=0, help="seed for fillers, random weights and random inputs")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="batch size of random inputs")
    parser.add_argument("--mean-value", type=float, action="append", default=None,
                        help="per-channel mean to subtract from images (repeatable)")
    parser.add_argument("--mean-file", help="a binaryproto mean image to subtract")
    parser.add_argument("--scale", type=float, help="factor applied after mean subtraction")
    parser.add_argument("--crop-size", type=int, help="centre crop of the images")
    parser.add_argument("-o", "--output", metavar="OUT.npz", help="save the output blobs")
    parser.add_argument("--blobs", metavar="NAME,...|all",
                        help="also save these intermediate blobs (or every blob) to -o OUT.npz")
    parser.add_argument("--write-weights", metavar="W.caffemodel",
                        help="save the net's weights (e.g. freshly filled) as a .caffemodel")


def run(args) -> int:
    _check_options(args)
    check_threads(args)
    with required_modules("run", "run,onnx" if "onnxruntime" in (args.engine, args.compare) else None):
        return _run(args)


def _check_options(args) -> None:
    """Refuse impossible numbers before loading anything."""
    check_batch(args)
    if args.crop_size is not None and args.crop_size < 0:
        raise CaffeconfError.at(None, f"--crop-size must not be negative, got {args.crop_size}",
                                hint="0 means no crop, as crop_size in transform_param")
    if args.scale is not None and not args.scale > 0:
        raise CaffeconfError.at(None, f"--scale must be positive, got {args.scale:g}")
    _check_engines(args)
    if args.blobs is not None and not (args.output or args.compare):
        raise CaffeconfError.at(None, "--blobs saves blobs to -o OUT.npz (or compares them, with --compare), "
                                      "but neither -o nor --compare was given")
    _check_outputs(args)
    if args.blobs is not None and not _blob_names(args.blobs):
        raise CaffeconfError.at(None, "--blobs needs blob names separated by commas, or 'all'")


def _check_outputs(args) -> None:
    """-o and --write-weights name new or regular files, none of them an input, before any work."""
    from ..files import check_writable

    inputs = (args.net, *[path for path in (args.weights, args.mean_file) if path], *args.images,
              *[spec.partition("=")[2] for spec in args.input])
    for output in (args.output, args.write_weights):
        if output:
            check_writable(output, inputs)
    if args.output and args.write_weights and os.path.realpath(args.output) == os.path.realpath(args.write_weights):
        raise CaffeconfError.at(None, f"-o and --write-weights both name {args.output}: give two files")


def _check_engines(args) -> None:
    if args.tolerance is not None and args.compare is None:
        raise CaffeconfError.at(None, "--tolerance is the limit of --compare, but no --compare was given")
    if args.tolerance is not None and not 0 <= args.tolerance < float("inf"):
        raise CaffeconfError.at(None, f"--tolerance must be a non-negative number, got {args.tolerance:g}")
    if args.compare is not None and args.compare == args.engine:
        raise CaffeconfError.at(None, f"--compare {args.compare} compares with the engine that ran, "
                                      f"and --engine is {args.engine} too")
    if "onnxruntime" in (args.engine, args.compare) and (args.precision != "fp32" or args.channels_last
                                                          or args.device == "cuda"):
        raise CaffeconfError.at(None, ORT_ONLY)


def _blob_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _chosen_blobs(requested: list[str], net: Net) -> list[str]:
    """The blobs given to --blobs (every blob for 'all'), each refused unless a blob of the net
    (a top of one of its layers)."""
    known = list(dict.fromkeys(top for layer in net.layers for top in layer.tops))
    diagnostics = [Diagnostic(f"--blobs: the net has no blob '{name}'", None,
                              hint=did_you_mean(name, known) or _some_names(known))
                   for name in requested if name != "all" and name not in known]
    if diagnostics:
        raise CaffeconfError(diagnostics)
    return known if "all" in requested else requested


def _some_names(names: list[str], shown: int = 8) -> str:
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"its blobs are {listed} (or --blobs all)"


def _run(args) -> int:
    import torch

    from ..run.device import describe, select_device, use_threads
    from ..run.session import build_model, gather_inputs, save_outputs, summarize
    from ..caffe.weights import write_caffemodel

    warn(use_threads(args.threads))
    loaded = load_for_state(args)
    net, phase = loaded.net, loaded.state.phase
    explicit_ort = "onnxruntime" in (args.engine, args.compare)
    device = torch.device("cpu") if explicit_ort else select_device(args.device)
    chosen = _chosen_blobs(_blob_names(args.blobs) if args.blobs is not None else [], net)
    model = build_model(net, args.weights, phase, args.seed, device, random_weights=args.random_weights,
                        allow_python_layers=args.allow_python_layers)
    overrides = {"mean_values": tuple(args.mean_value or ()), "mean_file": args.mean_file,
                 "scale": args.scale, "crop_size": args.crop_size}
    inputs = gather_inputs(net, model, args.input, args.images, overrides, args.seed, args.batch)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        model = model.to(memory_format=memory_format)
    inputs = {name: _to_device(value, device, memory_format) for name, value in inputs.items()}
    model.materialize({name: tuple(value.shape) for name, value in inputs.items()})
    engine, exported = _choose_engine(args, net, model, inputs, chosen, device)
    blobs = _forward(engine, exported, model, inputs, chosen, device, args.precision)
    by = " (auto)" if args.engine == "auto" and not args.compare else ""
    print(f"device: {describe(device)}; precision {args.precision}; phase {phase}; engine {TITLES[engine]}{by}")
    for name in model.outputs:
        print("\n".join(summarize(name, blobs[name])))
    if args.output:
        save_outputs(args.output, {name: blobs[name] for name in dict.fromkeys([*model.outputs, *chosen])})
    if args.write_weights:
        write_caffemodel(args.write_weights, net, model.blob_arrays())
    if args.compare:
        reference = _forward(args.compare, exported, model, inputs, chosen, device, args.precision)
        _report_differences(blobs, reference, [n for n in dict.fromkeys([*model.outputs, *chosen]) if n not in inputs],
                            engine, args.compare, 1e-4 if args.tolerance is None else args.tolerance)
    sys.stdout.flush()
    return 0


def _choose_engine(args, net: Net, model, inputs: dict, chosen: list[str], device):
    """The engine of the pass, and the exported model when ONNX Runtime runs it (or is compared).
    Auto: _auto_engine; a net that does not export runs in PyTorch, silently."""
    engine = args.engine
    shapes = {name: tuple(value.shape) for name, value in inputs.items()}
    if engine == "auto":
        other = {"pytorch": "onnxruntime", "onnxruntime": "pytorch"}
        engine = other[args.compare] if args.compare else _auto_engine(args, net, shapes, device)
    if "onnxruntime" not in (engine, args.compare):
        return engine, None
    quiet = args.engine == "auto" and not args.compare
    exported = export_for_runtime(net, model, shapes, [n for n in chosen if n not in inputs], quiet=quiet)
    return ("pytorch" if exported is None else engine), exported


def _auto_engine(args, net: Net, shapes: dict, device) -> str:
    """ONNX Runtime where a CPU pass in fp32 was measured (by `time --engine auto`, on these shapes
    and threads) to finish sooner with it, its setup included; else PyTorch. One pass does not pay
    for measuring (ONNX Runtime's setup alone outweighs it), so `run` only reads the measurement."""
    import torch

    if not may_use_onnxruntime(device.type, args.precision, args.channels_last):
        report_choice(args.verbose, "pytorch", None, "ONNX Runtime runs fp32 passes on the CPU, with the onnx extra")
        return "pytorch"
    figures = cached_measurement(measurement_key(net, shapes, torch.get_num_threads()))
    if figures is None:
        report_choice(args.verbose, "pytorch", None, "not measured on this net, shapes and threads yet "
                                                     "(caffeconf time --engine auto measures)")
        return "pytorch"
    engine = faster_for(figures, 1, setup_paid=False)
    report_choice(args.verbose, engine, figures, "cached, for one pass")
    return engine


def _forward(engine: str, exported, model, inputs: dict, chosen: list[str], device, precision: str) -> dict:
    """The blobs of one pass: the net's outputs and the `chosen` blobs (final values), with the inputs."""
    import torch

    from ..run.device import autocast

    if engine == "onnxruntime":
        from ..export.ort import run_model

        arrays = {name: value.numpy() for name, value in inputs.items()}
        values = run_model(exported, arrays, torch.get_num_threads())
        return {**inputs, **{name: torch.from_numpy(value) for name, value in values.items()}}
    # Inference only: fold BatchNorm/Scale/Bias, residual sums and ReLUs into the convolutions (a
    # copy; the blobs written by --write-weights stay Caffe's own). Folding skips the folded layers'
    # tops, so not when --blobs asks for intermediate blobs.
    if not chosen:
        model.fold_for_inference()
    with torch.no_grad(), autocast(device, precision):
        return model(inputs, keep_all=bool(chosen))


def _report_differences(blobs: dict, reference: dict, names: list[str], engine: str, compared: str,
                        tolerance: float) -> None:
    """Print each blob's largest difference from the --compare engine's; refuse those above `tolerance`."""
    rows = blob_differences(reference, blobs, names)
    print("\n".join(format_differences(rows, engine, compared)))
    above = [name for name, _, relative, _ in rows if not relative <= tolerance]
    if above:
        listed = ", ".join(above[:5]) + (f" and {len(above) - 5} more" if len(above) > 5 else "")
        raise CaffeconfError.at(None, f"{len(above)} of {len(rows)} blobs differ from {TITLES[compared]}'s by more "
                                      f"than --tolerance {tolerance:g} (relative): {listed}")


def _to_device(value, device, memory_format):
    value = value.to(device)
    return value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
