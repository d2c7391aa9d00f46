"""Flat Net + blobs + input shapes -> a checked onnx.ModelProto.

One loop over the layers, as the runner's: each layer's emitter (layers.EMITTERS) writes ONNX
nodes reading the current value of each bottom. ONNX values are assigned once, so a blob that
Caffe rewrites in place (a ReLU on its convolution's top) has one value per writer: the last
keeps the blob's name, earlier ones are `blob@layer` (the blob as that layer left it).
Shapes come from inspect.shapes; with a dynamic batch, the dims that change with the batch size
(found by inferring the shapes again at another batch size) are left symbolic.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper

from ..caffe.facts import FED_TYPES
from ..errors import CaffeconfError, Diagnostic
from ..inspect.shapes import LayerShapes, infer_shapes
from ..ir import Layer, Net, output_names
from .emit import DEFAULT_OPSET, MIN_OPSET, Graph, Emit, Shape, Unexpressible, format_dims, value_info
from . import detection, layers as table  # noqa: F401 (detection fills the table with SSD's layers)

def export_net(net: Net, blobs: Mapping[str, Sequence[np.ndarray]], input_shapes: Mapping[str, Sequence[int]],
               *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
               extra_outputs: Sequence[str] = (), check: bool = True) -> onnx.ModelProto:
    """The net as an ONNX model, checked by onnx.checker and strict shape inference unless not
    `check`: inputs its Input tops, outputs Caffe's net outputs plus `extra_outputs` (blob names,
    their final values); `blobs` by layer name, in Caffe's order.
    Raises CaffeconfError with one located diagnostic per layer ONNX cannot express."""
    check_opset(opset)
    entries = _layer_shapes(net, input_shapes, dynamic_batch)
    graph, names = Graph(opset), _value_names(net)
    graph.used.update(name for versions in names for name in versions)
    current: dict[str, str] = {}
    inputs, problems = [], []
    refused: set[str] = set()  # tops of refused layers: what reads them is not reported again
    for layer, entry, top_names in zip(net.layers, entries, names):
        try:
            if refused.intersection(layer.bottoms):
                refused.update(layer.tops)
            elif layer.type in FED_TYPES:
                inputs.extend(_graph_inputs(layer, entry, top_names, dynamic_batch))
            else:
                _emit(table.EMITTERS, layer, entry, top_names, graph, current, blobs, dynamic_batch)
        except Unexpressible as refusal:
            problems.append(_diagnostic(layer, str(refusal)))
            refused.update(layer.tops)
        current.update(zip(layer.tops, top_names))
    if problems:
        raise CaffeconfError(problems)
    outputs = _graph_outputs(net, entries, extra_outputs, graph.data_shaped)
    if not graph.nodes:  # ONNX Runtime cannot load a graph without a node
        raise CaffeconfError.at(None, "the net computes nothing (no layer besides its inputs): nothing to export")
    opsets = [helper.make_opsetid("", opset)]
    # the oldest IR version the opset allows, so that runtimes older than this onnx package read it
    model = helper.make_model(
        helper.make_graph(graph.nodes, net.name or "net", inputs, outputs, graph.initializers),
        opset_imports=opsets, producer_name="caffeconf", ir_version=helper.find_min_ir_version_for(opsets))
    return checked(model) if check else model


def check_opset(opset: int) -> None:
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise CaffeconfError.at(None, f"--opset must lie in {MIN_OPSET}..{newest} (this onnx package's newest), "
                                      f"got {opset}")


def checked(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.checker's verdict and ONNX's strict shape inference; an exporter bug if either fails."""
    onnx.checker.check_model(model, full_check=False)
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def _emit(emitters, layer: Layer, entry: LayerShapes, top_names: list[str], graph: Graph,
          current: Mapping[str, str], blobs: Mapping[str, Sequence[np.ndarray]], dynamic_batch: bool) -> None:
    emitter = emitters.get(layer.type)
    if emitter is None:
        raise Unexpressible(f"{layer.type} has no ONNX mapping in caffeconf export")
    _check_known(entry.bottoms + entry.tops, dynamic_batch)
    stored = list(blobs.get(layer.name, ()))
    if len(stored) != len(entry.params or ()):
        raise Unexpressible(f"it has {len(entry.params or ())} learnable blobs but {len(stored)} were given")
    emitter(Emit(layer, graph, [current[b] for b in layer.bottoms], top_names,
                 list(entry.bottoms), list(entry.tops), stored))


def _layer_shapes(net: Net, input_shapes: Mapping[str, Sequence[int]], dynamic_batch: bool) -> list[LayerShapes]:
    """Every layer's shapes; with a dynamic batch, dims that change with it are None."""
    shapes = infer_shapes(net, inputs=input_shapes).layers
    if not dynamic_batch:
        return list(shapes)
    probe = infer_shapes(net, inputs={name: (shape[0] + 1, *shape[1:]) for name, shape in input_shapes.items()})

    def merged(a, b):
        if a is None or b is None:
            return None
        return tuple(x if x == y else None for x, y in zip(a, b))

    return [LayerShapes(entry.layer, tuple(map(merged, entry.bottoms, other.bottoms)),
                        tuple(map(merged, entry.tops, other.tops)), entry.params)
            for entry, other in zip(shapes, probe.layers)]


def _value_names(net: Net) -> list[list[str]]:
    """Per layer, the ONNX names of its tops: a blob's last writer gives it the blob's own name,
    earlier writers `blob@layer`; fed blobs (the graph's inputs) keep their names where fed."""
    fed = {top for layer in net.layers if layer.type in FED_TYPES for top in layer.tops}
    last_writer = {top: index for index, layer in enumerate(net.layers) for top in layer.tops}
    return [[top if (top in fed) == (layer.type in FED_TYPES) and (top in fed or last_writer[top] == index)
             else f"{top}@{layer.name}" for top in layer.tops]
            for index, layer in enumerate(net.layers)]


def _check_known(shapes: Sequence[Shape | None], dynamic_batch: bool) -> None:
    """Every shape known statically (but for the batch-following dims of a dynamic-batch export)."""
    if any(shape is None or (not dynamic_batch and None in shape) for shape in shapes):
        raise Unexpressible("its shapes are not known statically (ONNX export needs them)")


def _graph_inputs(layer: Layer, entry: LayerShapes, top_names: list[str],
                  dynamic_batch: bool) -> list[onnx.ValueInfoProto]:
    if layer.type != "Input":
        raise Unexpressible(f"a {layer.type} layer reads its data itself; export a net whose inputs are "
                            "Input layers (a deploy net, e.g. --stage deploy)")
    _check_known(entry.tops, dynamic_batch)
    for top, shape in zip(layer.tops, entry.tops):
        if any(dim is not None and dim < 1 for dim in shape):
            raise Unexpressible(f"its top '{top}' has the shape {format_dims(shape)}: an exported input needs "
                                f"every dim positive (give one with --input {top}=D1,D2,...)")
    return [value_info(name, shape) for name, shape in zip(top_names, entry.tops)]


def _graph_outputs(net: Net, entries: list[LayerShapes], extra: Sequence[str],
                   data_shaped: Mapping[str, Shape]) -> list[onnx.ValueInfoProto]:
    final = {top: shape for entry in entries for top, shape in zip(entry.layer.tops, entry.tops)}
    final.update(data_shaped)
    fed = {top for layer in net.layers if layer.type in FED_TYPES for top in layer.tops}
    wanted = [n for n in dict.fromkeys([*output_names(net.layers), *extra]) if n not in fed]
    return [value_info(name, final[name]) for name in wanted]


def _diagnostic(layer: Layer, message: str) -> Diagnostic:
    span = layer.origin.span if layer.origin else None
    where = layer.origin.describe() if layer.origin else ""
    text = f"layer '{layer.name}' ({layer.type}): cannot export to ONNX: {message}"
    return Diagnostic(text + (f" ({where})" if where else ""), span)
