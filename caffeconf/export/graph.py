"""Flat Net + blobs + input shapes -> a checked onnx.ModelProto.

One loop over the layers, as the runner's: each layer's emitter (layers.EMITTERS) writes ONNX
nodes reading the current value of each bottom. ONNX values are assigned once, so a blob that
Caffe rewrites in place (a ReLU on its convolution's top) has one value per writer: the last
keeps the blob's name, earlier ones are `blob@layer` (the blob as that layer left it).
Shapes come from inspect.shapes; with a dynamic batch, the dims that change with the batch size
(found by inferring the shapes again at another batch size) are left symbolic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..caffe.facts import FED_TYPES
from ..errors import CaffeconfError, Diagnostic
from ..inspect.shapes import LayerShapes, infer_shapes
from ..ir import Layer, Net, output_names
from ..run.params import Params, layer_params

MIN_OPSET = 13  # Softmax over one axis, Split/Unsqueeze/ReduceSum with their axes as inputs
DEFAULT_OPSET = 17
BATCH = "batch"  # the symbolic batch dim of a dynamic-batch export

Shape = tuple  # dims; None for a dim that follows the batch size (dynamic-batch exports)


class Unexpressible(Exception):
    """Raised by an emitter: ONNX cannot express this layer as written (the message says why)."""


@dataclass
class Graph:
    """The nodes and initializers written so far, and the names they use (all unique)."""

    opset: int
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def fresh(self, hint: str) -> str:
        name, index = hint, 1
        while name in self.used:
            index += 1
            name = f"{hint}_{index}"
        self.used.add(name)
        return name

    def const(self, hint: str, value: Any, dtype=np.float32) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1, hint: str = "",
             **attributes) -> list[str]:
        """Add one node; `outputs` names its outputs, or counts fresh ones named after `hint`."""
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{hint or op}:{i}" if outputs > 1 else f"{hint or op}")
                       for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs),
                                           name=self.fresh(f"{hint or op}/{op}"), **attributes))
        return list(outputs)


@dataclass
class Emit:
    """What an emitter sees of one layer: its fields, bottoms' values and shapes, blobs, and where
    to write its tops (`tops`: the value names its results must take)."""

    layer: Layer
    graph: Graph
    inputs: list[str]
    tops: list[str]
    bottom_shapes: list[Shape]
    top_shapes: list[Shape]
    blobs: list[np.ndarray]

    def param(self, message: str) -> Params:
        return layer_params(self.layer.fields, message)

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1, **attributes) -> list[str]:
        return self.graph.node(op, inputs, outputs, hint=self.layer.name, **attributes)

    def const(self, suffix: str, value: Any, dtype=np.float32) -> str:
        return self.graph.const(f"{self.layer.name}#{suffix}", value, dtype)

    def ints(self, suffix: str, values: Sequence[int]) -> str:
        return self.const(suffix, list(values), np.int64)

    def out(self, index: int = 0) -> list[str]:
        return [self.tops[index]]

    def axis(self, axis: int, rank: int) -> int:
        if not -rank <= axis < rank:
            raise Unexpressible(f"axis {axis} is out of range for a blob with {rank} axes")
        return axis % rank

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: int, outputs=1) -> list[str]:
        """A Reduce* node: its axes an input from opset 18 (ReduceSum: 13), an attribute before."""
        if self.graph.opset >= 18 or op == "ReduceSum":
            return self.node(op, [x, self.ints("axes", axes)], outputs, keepdims=keepdims)
        return self.node(op, [x], outputs, axes=list(axes), keepdims=keepdims)

    def reshape(self, x: str, source: Shape, target: Shape, outputs=1) -> list[str]:
        """Reshape `x` (of shape `source`) to `target`; a batch-following dim (None) of the target
        copies the same dim of the source (0) or is inferred (-1, once)."""
        dims = []
        for index, dim in enumerate(target):
            if dim is not None:
                dims.append(dim)
            elif index < len(source) and source[index] is None and None not in source[:index]:
                dims.append(0)
            elif -1 not in dims:
                dims.append(-1)
            else:
                raise Unexpressible(f"the shape {format_dims(target)} has several dims that follow the batch size")
        if 0 in [d for d in target if d is not None]:
            raise Unexpressible("a reshape to a shape with a zero dim")
        return self.node("Reshape", [x, self.ints("shape", dims)], outputs)

    def static(self, shape: Shape, what: str) -> Shape:
        """`shape`, which this mapping needs fixed: refused where a dim follows the batch size."""
        if None in shape:
            raise Unexpressible(f"{what} depends on the batch size, which a dynamic-batch export leaves open")
        return shape


def format_dims(shape: Shape) -> str:
    return "x".join(BATCH if d is None else str(d) for d in shape)


def export_net(net: Net, blobs: Mapping[str, Sequence[np.ndarray]], input_shapes: Mapping[str, Sequence[int]],
               *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
               extra_outputs: Sequence[str] = ()) -> onnx.ModelProto:
    """The net as a checked ONNX model: inputs its Input tops, outputs Caffe's net outputs plus
    `extra_outputs` (blob names, their final values); `blobs` by layer name, in Caffe's order.
    Raises CaffeconfError with one located diagnostic per layer ONNX cannot express."""
    from . import layers as table

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
    outputs = _graph_outputs(net, entries, extra_outputs)
    opsets = [helper.make_opsetid("", opset)]
    # the oldest IR version the opset allows, so that runtimes older than this onnx package read it
    model = helper.make_model(
        helper.make_graph(graph.nodes, net.name or "net", inputs, outputs, graph.initializers),
        opset_imports=opsets, producer_name="caffeconf", ir_version=helper.find_min_ir_version_for(opsets))
    return checked(model)


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


def _value_info(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH if d is None else d for d in shape])


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
    return [_value_info(name, shape) for name, shape in zip(top_names, entry.tops)]


def _graph_outputs(net: Net, entries: list[LayerShapes], extra: Sequence[str]) -> list[onnx.ValueInfoProto]:
    final = {top: shape for entry in entries for top, shape in zip(entry.layer.tops, entry.tops)}
    fed = {top for layer in net.layers if layer.type in FED_TYPES for top in layer.tops}
    wanted = [n for n in dict.fromkeys([*output_names(net.layers), *extra]) if n not in fed]
    return [_value_info(name, final[name]) for name in wanted]


def _diagnostic(layer: Layer, message: str) -> Diagnostic:
    span = layer.origin.span if layer.origin else None
    where = layer.origin.describe() if layer.origin else ""
    text = f"layer '{layer.name}' ({layer.type}): cannot export to ONNX: {message}"
    return Diagnostic(text + (f" ({where})" if where else ""), span)
