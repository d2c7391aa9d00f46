"""One layer's view for its emitter (`Emit`), and the ONNX nodes and initializers written so far (`Graph`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..ir import Layer
from ..run.params import Params, layer_params

MIN_OPSET = 13  # Softmax over one axis, Split/Unsqueeze/ReduceSum with their axes as inputs
DEFAULT_OPSET = 17
BATCH = "batch"  # the symbolic batch dim of a dynamic-batch export

Shape = tuple  # dims; None for a dim that follows the batch size (dynamic-batch exports), a name for one
# that the data decides (DetectionOutput's number of detections)


class Unexpressible(Exception):
    """Raised by an emitter: ONNX cannot express this layer as written (the message says why)."""


@dataclass
class Graph:
    """The nodes and initializers written so far, and the names they use (all unique)."""

    opset: int
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    data_shaped: dict[str, Shape] = field(default_factory=dict)  # values whose shape inference cannot know

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


def layer_of_node(name: str) -> str:
    """The layer that wrote a node, from the node's name: `LAYER/OP`, made unique by a suffix on OP."""
    return name.rpartition("/")[0]


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

    def body(self) -> Graph:
        """An empty graph for a Scan's body, its names unique with the whole model's."""
        return Graph(self.graph.opset, used=self.graph.used)

    def scan(self, body: Graph, inputs: Sequence[str], scanned: int, body_inputs: Sequence[tuple[str, Shape]],
             body_outputs: Sequence[tuple[str, Shape]], outputs: Sequence[str]) -> list[str]:
        """A Scan node: `inputs` are the initial states then `scanned` sequences (over axis 0); the
        body reads the states and one step of each sequence and writes the new states then its
        per-step outputs, which Scan stacks. Outputs: the final states, then the stacked outputs."""
        graph = helper.make_graph(body.nodes, self.graph.fresh(f"{self.layer.name}/body"),
                                  [value_info(n, s) for n, s in body_inputs],
                                  [value_info(n, s) for n, s in body_outputs])
        return self.node("Scan", inputs, outputs, body=graph, num_scan_inputs=scanned)

    def static(self, shape: Shape, what: str) -> Shape:
        """`shape`, which this mapping needs fixed: refused where a dim follows the batch size."""
        if None in shape:
            raise Unexpressible(f"{what} depends on the batch size, which a dynamic-batch export leaves open")
        return shape


def value_info(name: str, shape: Shape):
    """A float tensor's declaration; a batch-following dim (None) is the symbolic batch, a named one symbolic."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH if d is None else d for d in shape])


def format_dims(shape: Shape) -> str:
    return "x".join(BATCH if d is None else str(d) for d in shape)


