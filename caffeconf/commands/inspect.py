"""`caffeconf inspect NET`: shapes, parameters, MACs and memory per layer or module use."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys

from ..errors import CaffeconfError
from ..inspect.measure import SOLVER_HISTORY, MemoryEstimate, Row, estimate_memory, layer_costs, net_totals, rows
from ..inspect.shapes import Shape, format_shape, infer_shapes, python_module
from ..inspect.sources import read_source_shapes, source_inputs
from .net_options import add_input_arguments, add_state_arguments, load_for_state, parse_inputs

COLUMNS = ("layer", "type", "output", "params", "MACs", "activations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("net", metavar="NET", help="a config (.yaml/.toml) or a Caffe prototxt")
    add_input_arguments(parser)
    add_state_arguments(parser)
    parser.add_argument("--depth", type=int, default=0, metavar="K",
                        help="one row per module use at depth K (0: one row per layer)")
    parser.add_argument("--solver", choices=sorted(SOLVER_HISTORY), default="SGD",
                        help="solver whose history the training estimate counts (default SGD)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table",
                        help="a table (default), JSON or CSV of the layers")


def run(args: argparse.Namespace) -> int:
    if args.batch is not None and args.batch <= 0:
        raise CaffeconfError.at(None, f"--batch must be positive, got {args.batch}")
    if args.depth < 0:
        raise CaffeconfError.at(None, f"--depth must be 0 or more, got {args.depth}")
    net = load_for_state(args).net
    given = parse_inputs(args.input)
    read = [r for r in read_source_shapes(net) if not set(r.tops) <= set(given)]
    for source in read:
        sys.stderr.write(f"shapes read: {source.describe()}\n")
    sys.stderr.write("".join(_python_note(layer) for layer in net.layers if layer.type == "Python"))
    shapes = infer_shapes(net, {**source_inputs(read), **given}, args.batch)
    costs = layer_costs(shapes)
    render = {"table": render_table, "json": render_json, "csv": render_csv}[args.format]
    sys.stdout.write(render(rows(costs, args.depth), net_totals(costs), estimate_memory(costs, args.solver)))
    return 0


def _python_note(layer) -> str:
    where = f"{layer.origin.span}: " if layer.origin else ""
    return (f"{where}note: layer '{layer.name}' (Python module {python_module(layer)}) shapes its tops in its own code, which "
            f"inspect does not run: its shapes, and those computed from them, are '?'\n")


def format_count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def format_bytes(value: int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _outputs(outputs: tuple[Shape | None, ...]) -> str:
    return ", ".join(format_shape(s) for s in outputs) or "-"


def render_table(table: list[Row], totals, memory: MemoryEstimate) -> str:
    params, macs, activations = totals
    lines = [COLUMNS, *((row.name, row.type, _outputs(row.outputs), format_count(row.params), format_count(row.macs),
                         format_bytes(row.activation_bytes)) for row in table),
             ("total", "", "", format_count(params), format_count(macs), format_bytes(activations))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [_align(line, widths) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.insert(len(text) - 1, text[1])
    return "\n".join(text) + "\n\n" + _memory_text(memory)


def _align(cells: tuple[str, ...], widths: list[int]) -> str:
    """Names left-aligned, numbers right-aligned."""
    parts = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths))]
    return "  ".join(parts).rstrip()


def _memory_text(memory: MemoryEstimate) -> str:
    items = [(name.replace("_", " "), value) for name, value in dataclasses.asdict(memory).items()]
    width = max(len(name) for name, _ in items)
    lines = ["memory estimate (fp32; ? where shapes are unknown: give --input):"]
    lines += [f"  {name.ljust(width)}  {format_bytes(value).rjust(10)}" for name, value in items]
    return "\n".join(lines) + "\n"


def render_json(table: list[Row], totals, memory: MemoryEstimate) -> str:
    params, macs, activations = totals
    document = {
        "rows": [{"name": r.name, "type": r.type, "outputs": [None if s is None else list(s) for s in r.outputs],
                  "params": r.params, "macs": r.macs, "activation_bytes": r.activation_bytes}
                 for r in table],
        "totals": {"params": params, "macs": macs, "activation_bytes": activations},
        "memory_bytes": dataclasses.asdict(memory),
    }
    return json.dumps(document, indent=2) + "\n"


def render_csv(table: list[Row], totals, memory: MemoryEstimate) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("name", "type", "outputs", "params", "macs", "activation_bytes"))
    writer.writerows((r.name, r.type, ";".join(format_shape(s) for s in r.outputs),
                      _blank(r.params), _blank(r.macs), _blank(r.activation_bytes)) for r in table)
    return buffer.getvalue()


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)
