"""`caffeconf run NET`: one forward pass with PyTorch, and a summary of every output blob."""

from __future__ import annotations

import os

import sys

from ..errors import CaffeconfError, Diagnostic, did_you_mean
from ..ir import Net
from .net_options import add_device_argument, add_state_arguments, add_threads_argument, check_threads, warn, load_for_state
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
    add_state_arguments(parser)
    add_threads_argument(parser)
    add_device_argument(parser, "run")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="arithmetic of the forward pass: fp32 (Caffe's, default) or autocast to bf16/fp16")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory layout (CUDA)")
    parser.add_argument("--engine", choices=("pytorch", "onnxruntime"), default="pytorch",
                        help="pytorch (default), or onnxruntime: the net exported to ONNX in memory and run "
                             "by ONNX Runtime on the CPU (needs the onnx extra; see docs/export.md)")
    parser.add_argument("--seed", type=int, default=0, help="seed for fillers, random weights and random inputs")
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
    with required_modules("export" if args.engine == "onnxruntime" else "run"):
        return _run(args)


def _check_options(args) -> None:
    """Refuse impossible numbers before loading anything."""
    if args.batch is not None and args.batch < 1:
        raise CaffeconfError.at(None, f"--batch must be at least 1, got {args.batch}")
    if args.crop_size is not None and args.crop_size < 0:
        raise CaffeconfError.at(None, f"--crop-size must not be negative, got {args.crop_size}",
                                hint="0 means no crop, as crop_size in transform_param")
    if args.scale is not None and not args.scale > 0:
        raise CaffeconfError.at(None, f"--scale must be positive, got {args.scale:g}")
    if args.engine == "onnxruntime" and (args.precision != "fp32" or args.channels_last or args.device == "cuda"):
        raise CaffeconfError.at(None, "--engine onnxruntime runs in fp32 on the CPU: it takes no --precision, "
                                      "--channels-last or --device cuda")
    if args.blobs is not None and not args.output:
        raise CaffeconfError.at(None, "--blobs saves blobs to -o OUT.npz, but no -o was given")
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


def _blob_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _check_blobs(requested: list[str], net: Net) -> None:
    """Every name given to --blobs is a blob of the net (a top of one of its layers)."""
    known = list(dict.fromkeys(top for layer in net.layers for top in layer.tops))
    diagnostics = [Diagnostic(f"--blobs: the net has no blob '{name}'", None,
                              hint=did_you_mean(name, known) or _some_names(known))
                   for name in requested if name != "all" and name not in known]
    if diagnostics:
        raise CaffeconfError(diagnostics)


def _some_names(names: list[str], shown: int = 8) -> str:
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"its blobs are {listed} (or --blobs all)"


def _run(args) -> int:
    import torch

    from ..run.device import autocast, describe, select_device, use_threads
    from ..run.session import build_model, gather_inputs, save_outputs, summarize
    from ..caffe.weights import write_caffemodel

    warn(use_threads(args.threads))
    loaded = load_for_state(args)
    net, phase = loaded.net, loaded.state.phase
    device = torch.device("cpu") if args.engine == "onnxruntime" else select_device(args.device)
    requested = _blob_names(args.blobs) if args.blobs is not None else []
    _check_blobs(requested, net)
    model = build_model(net, args.weights, phase, args.seed, device, random_weights=args.random_weights)
    overrides = {"mean_values": tuple(args.mean_value or ()), "mean_file": args.mean_file,
                 "scale": args.scale, "crop_size": args.crop_size}
    inputs = gather_inputs(net, model, args.input, args.images, overrides, args.seed, args.batch)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        model = model.to(memory_format=memory_format)
    inputs = {name: _to_device(value, device, memory_format) for name, value in inputs.items()}
    # Inference only: create the blobs, then fold BatchNorm/Scale/Bias, residual sums and ReLUs into
    # the convolutions (a copy; the blobs written by --write-weights stay Caffe's own). Folding
    # skips the folded layers' tops, so not when --blobs asks for intermediate blobs.
    model.materialize({name: tuple(value.shape) for name, value in inputs.items()})
    if args.engine == "onnxruntime":
        every_blob = list(dict.fromkeys(top for layer in net.layers for top in layer.tops))
        blobs = _run_onnxruntime(net, model, inputs, every_blob if "all" in requested else requested)
    else:
        if not requested:
            model.fold_for_inference()
        with torch.no_grad(), autocast(device, args.precision):
            blobs = model(inputs, keep_all=bool(requested))
    outputs = {name: blobs[name] for name in model.outputs}
    engine = "; engine ONNX Runtime" if args.engine == "onnxruntime" else ""
    print(f"device: {describe(device)}; precision {args.precision}; phase {phase}{engine}")
    for name, value in outputs.items():
        print("\n".join(summarize(name, value)))
    if args.output:
        chosen = list(blobs) if "all" in requested else requested
        save_outputs(args.output, {name: blobs[name] for name in [*model.outputs, *chosen]})
    if args.write_weights:
        write_caffemodel(args.write_weights, net, model.blob_arrays())
    sys.stdout.flush()
    return 0


def _run_onnxruntime(net: Net, model, inputs: dict, requested: list[str]) -> dict:
    """The net exported in memory (its weights as `model` holds them) and run by ONNX Runtime: the
    net's outputs and the `requested` blobs (final values), with the inputs, as tensors."""
    import torch

    from ..export.graph import export_net
    from ..export.ort import run_model

    shapes = {name: tuple(value.shape) for name, value in inputs.items()}
    arrays = {name: value.numpy() for name, value in inputs.items()}
    exported = export_net(net, model.blob_arrays(), shapes, extra_outputs=[n for n in requested if n not in arrays])
    values = run_model(exported, arrays, torch.get_num_threads())
    return {**inputs, **{name: torch.from_numpy(value) for name, value in values.items()}}


def _to_device(value, device, memory_format):
    value = value.to(device)
    return value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
