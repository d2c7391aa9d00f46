"""The `--engine` of `run` and `time`: PyTorch (the runner), ONNX Runtime on the net exported in memory,
or auto — ONNX Runtime where it can run the pass (see docs/export.md, "Choosing an engine")."""

from __future__ import annotations

from importlib.util import find_spec

from ..errors import CaffeconfError
from ..ir import Net

ENGINES = ("auto", "pytorch", "onnxruntime")
TITLES = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}
ORT_ONLY = ("--engine onnxruntime runs in fp32 on the CPU: it takes no --precision, --channels-last or "
            "--device cuda")


def add_engine_argument(parser, default: str, what: str) -> None:
    parser.add_argument("--engine", choices=ENGINES, default=default,
                        help=f"what {what}: pytorch, onnxruntime (the net exported to ONNX in memory and run "
                             "by ONNX Runtime on the CPU; needs the onnx extra), or auto: onnxruntime on the "
                             "CPU in fp32 when installed and the net exports, else pytorch (default "
                             f"{default}; docs/export.md)")


def onnxruntime_installed() -> bool:
    return find_spec("onnx") is not None and find_spec("onnxruntime") is not None


def may_use_onnxruntime(device_type: str, precision: str = "fp32", channels_last: bool = False) -> bool:
    """Whether auto tries ONNX Runtime: a CPU pass in Caffe's fp32 with the onnx extra installed."""
    return device_type == "cpu" and precision == "fp32" and not channels_last and onnxruntime_installed()


def export_for_runtime(net: Net, model, shapes: dict, extra_outputs=(), quiet: bool = False):
    """The net with `model`'s weights as a checked ONNX model, its outputs the net's and `extra_outputs`;
    None when `quiet` and the net cannot be exported (auto then runs PyTorch), else the refusal raised."""
    import onnxruntime  # noqa: F401  (a missing runtime is reported before anything is printed)

    from ..export.graph import export_net

    try:
        return export_net(net, model.blob_arrays(), shapes, extra_outputs=list(extra_outputs))
    except CaffeconfError:
        if quiet:
            return None
        raise


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
