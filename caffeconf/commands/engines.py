"""The `--engine` of `run` and `time`: PyTorch (the runner), ONNX Runtime on the net exported in memory,
or auto — the engine measured faster on this net (see docs/export.md, "Choosing an engine")."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from importlib import metadata
from importlib.util import find_spec
from typing import Callable

from .. import __version__
from ..caffe.dialect import cache_dir
from ..errors import CaffeconfError
from ..files import write_atomic
from ..ir import Net

ENGINES = ("auto", "pytorch", "onnxruntime")
TITLES = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}
ORT_ONLY = ("--engine onnxruntime runs in fp32 on the CPU: it takes no --precision, --channels-last or "
            "--device cuda")


def add_engine_argument(parser, default: str, what: str) -> None:
    parser.add_argument("--engine", choices=ENGINES, default=default,
                        help=f"what {what}: pytorch, onnxruntime (the net exported to ONNX in memory and run "
                             "by ONNX Runtime on the CPU; needs the onnx extra), or auto: onnxruntime on the "
                             "CPU in fp32 when installed, the net exports and it was measured faster on this "
                             f"net (time measures; cached), else pytorch (default {default}; docs/export.md)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say how --engine auto chose (the measured figures)")


def may_use_onnxruntime(device_type: str, precision: str = "fp32", channels_last: bool = False) -> bool:
    """Whether auto tries ONNX Runtime: a CPU pass in Caffe's fp32 with the onnx extra installed."""
    return device_type == "cpu" and precision == "fp32" and not channels_last \
        and find_spec("onnx") is not None and find_spec("onnxruntime") is not None


def export_for_runtime(net: Net, model, shapes: dict, extra_outputs=(), quiet: bool = False):
    """The net with `model`'s weights as an ONNX model for ONNX Runtime, its outputs the net's and
    `extra_outputs` (not re-checked by onnx.checker and shape inference: that is `export`'s, and
    costs more than the session); None when `quiet` and the net cannot be exported (auto then runs
    PyTorch), else the refusal raised."""
    import onnxruntime  # noqa: F401  (a missing runtime is reported before anything is printed)

    from ..export.graph import export_net

    try:
        return export_net(net, model.blob_arrays(), shapes, extra_outputs=list(extra_outputs), check=False)
    except CaffeconfError:
        if quiet:
            return None
        raise


# ------------------------------------------------------------ --engine auto, measured

MEASURED_PASSES = 3  # per engine, after WARM_UPS: enough to rank two engines, not to benchmark
WARM_UPS = 2  # PyTorch's first passes create its kernels (seconds for GoogLeNet), ONNX Runtime's its buffers


def measurement_key(net: Net, shapes: dict, threads: int) -> str:
    """What a measurement depends on: the net's layers (not its weights), the input shapes, the
    threads and the versions of caffeconf, torch and ONNX Runtime."""
    layers = [[layer.type, layer.name, list(layer.bottoms), list(layer.tops), layer.fields] for layer in net.layers]
    versions = [__version__, *(_version(name) for name in ("torch", "onnxruntime"))]
    text = json.dumps([layers, sorted((k, list(v)) for k, v in shapes.items()), threads, versions],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _measurement_path(key: str):
    return cache_dir() / "engines" / f"{key}.json"


def cached_measurement(key: str) -> dict | None:
    """The figures measured on this net before ({pytorch_ms, onnxruntime_ms, setup_s}), or None."""
    try:
        figures = json.loads(_measurement_path(key).read_text(encoding="utf-8"))
        return {name: float(figures[name]) for name in ("pytorch_ms", "onnxruntime_ms", "setup_s")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_measurement(key: str, figures: dict) -> None:
    with contextlib.suppress(OSError):  # an unwritable cache only costs the next run a measurement
        path = _measurement_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(figures, indent=1) + "\n")


def best_ms(forward: Callable[[], object]) -> float:
    """Milliseconds of the quickest of MEASURED_PASSES calls of `forward` after WARM_UPS (the best,
    not the mean: a peer's burst on shared cores only slows some passes)."""
    for _ in range(WARM_UPS):
        forward()
    times = []
    for _ in range(MEASURED_PASSES):
        start = time.perf_counter()
        forward()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def faster_for(figures: dict, passes: int, setup_paid: bool) -> str:
    """The engine that finishes `passes` passes sooner: ONNX Runtime's setup (importing onnx,
    exporting, the session) counts unless already paid."""
    setup_ms = 0.0 if setup_paid else figures["setup_s"] * 1e3
    return "onnxruntime" if setup_ms + passes * figures["onnxruntime_ms"] < passes * figures["pytorch_ms"] \
        else "pytorch"


def report_choice(verbose: bool, engine: str, figures: dict | None, how: str) -> None:
    """With --verbose, the figures auto chose by (on stderr: the summary on stdout stays the same)."""
    if verbose:
        print(f"auto: {TITLES[engine]}: " + (how if figures is None else
              f"PyTorch {figures['pytorch_ms']:.2f} ms a pass, ONNX Runtime {figures['onnxruntime_ms']:.2f} ms a "
              f"pass after {figures['setup_s']:.2f} s of setup ({how})"), file=sys.stderr)


def blob_differences(reference: dict, other: dict, names) -> list[tuple[str, float, float, str]]:
    """Per blob: (name, largest absolute difference, that over the reference's largest magnitude,
    a note); a blob whose shapes differ gets infinite differences and the shapes as its note."""
    rows = []
    for name in names:
        expected, got = reference[name].detach().float().cpu(), other[name].detach().float().cpu()
        if expected.shape != got.shape:
            rows.append((name, float("inf"), float("inf"), f"shape {tuple(got.shape)}, not {tuple(expected.shape)}"))
            continue
        if not expected.numel():
            rows.append((name, 0.0, 0.0, ""))
            continue
        largest = (expected - got).abs().max().item()
        rows.append((name, largest, largest / max(expected.abs().max().item(), 1e-30), ""))
    return rows


def format_differences(rows, engine: str, reference: str) -> list[str]:
    width = max([len("blob"), *(len(row[0]) for row in rows)])
    lines = [f"{TITLES[engine]} against {TITLES[reference]} (relative: of {TITLES[reference]}'s largest magnitude):",
             f"  {'blob':<{width}}  {'max abs error':>13}  {'max rel error':>13}"]
    lines += [f"  {name:<{width}}  {absolute:13.3g}  {relative:13.3g}" + (f"  {note}" if note else "")
              for name, absolute, relative, note in rows]
    return lines


def measure_engines(net: Net, model, inputs: dict, threads: int):
    """(figures, the exported model): both engines' inference pass on these inputs (PyTorch's folded,
    as `run` runs it) and ONNX Runtime's setup; (None, None) where the net does not export."""
    import torch

    start = time.perf_counter()  # the setup from importing onnx on
    from ..export.ort import cpu_session

    exported = export_for_runtime(net, model, {name: tuple(value.shape) for name, value in inputs.items()},
                                  quiet=True)
    if exported is None:
        return None, None
    session = cpu_session(exported, threads)
    setup_s = time.perf_counter() - start
    arrays = {name: value.numpy() for name, value in inputs.items()}
    onnxruntime_ms = best_ms(lambda: session.run(None, arrays))
    model.fold_for_inference()
    with torch.no_grad():
        pytorch_ms = best_ms(lambda: model(inputs))
    return {"pytorch_ms": pytorch_ms, "onnxruntime_ms": onnxruntime_ms, "setup_s": setup_s}, exported
