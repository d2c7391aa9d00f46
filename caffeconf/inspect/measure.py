"""Costs of a net: flat Net + its shapes -> parameters, multiply-accumulates and memory.

Per layer: learnable values, multiply-accumulates (MACs) of the layer's
matrix products (convolution, deconvolution, inner product, recurrent
layers; Caffe's other types count none, a Python or unknown type is
unknown), and the bytes of the blobs it creates. Layers can be summed per
module use at depth K.

The memory estimate models the PyTorch runner, not Caffe: values are fp32;
in inference each blob is freed after its last reader and in-place layers,
Split, Reshape and Flatten create no new memory (views); in training every
blob a layer creates lives until that layer's backward, activation gradients
live from the first reader's backward to the producer's, and the solver keeps
its history per trainable weight. Each layer's working memory (oneDNN's
reordered inputs and weights, LRN's intermediates) is added while it runs.
tests/test_memory_estimate.py holds the estimate within 15% of the peak the
runner really allocates (`caffeconf.run.memory.measure_peak_bytes`).
"""

from __future__ import annotations

import itertools

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..caffe.facts import fixed_blobs
from ..ir import Layer
from .shapes import LayerShapes, NetShapes, Shape, conv_geometry, count, layer_param

BYTES_PER_VALUE = 4  # fp32

# Types whose tops are views of their bottom in the runner: no new memory.
VIEW_TYPES = frozenset({"Split", "Reshape", "Flatten"})
# Types whose blobs are parameters rather than learned by gradient.
UNTRAINED_TYPES = frozenset({"BatchNorm"})
# What PyTorch keeps beside a layer's outputs for its backward, as a multiple
# of the output bytes: max pooling's int64 argmax indices (twice fp32), and
# dropout's one-byte mask; a Scale written in place still keeps its input (for
# the scale's gradient), since autograd cannot overwrite a tensor it saved.
SAVED_EXTRA = {"Pooling:MAX": 2.0, "Dropout": 0.25, "Scale:in-place": 1.0}
# Working memory a layer's forward holds beside its output (inference), as the
# runner's kernels need it on the CPU: oneDNN convolutions reorder their input
# and weights into blocked layouts; the cross-channel LRN holds the squares and
# their window sums (one output's worth beside its top at any time); max
# pooling computes int64 indices.
TRANSIENT_OF_OUTPUT = {"LRN": 1.0, "Pooling:MAX": 2.0}
TRANSIENT_INPUT_AND_WEIGHTS = frozenset({"Convolution", "Deconvolution", "ConvolutionDepthwise",
                                         "DepthwiseConvolution"})
# Solver history buffers per trainable value (Caffe's SGDSolver subclasses).
SOLVER_HISTORY = {"SGD": 1, "Nesterov": 1, "AdaGrad": 1, "RMSProp": 1, "AdaDelta": 2, "Adam": 2}


@dataclass(frozen=True)
class LayerCost:
    layer: Layer
    tops: tuple[Shape | None, ...]
    params: int | None  # values this layer owns (a shared weight counts at its first owner)
    trainable: int | None  # of which are learned by gradient
    macs: int | None
    activation_bytes: int | None  # new memory its tops take (0 for in-place and views)
    blob_values: int = 0  # every learnable value it reads, shared ones too


@dataclass(frozen=True)
class Row:
    """One line of the inspect table: a layer, or a module use summed."""

    name: str
    type: str
    outputs: tuple[Shape | None, ...]
    params: int | None
    macs: int | None
    activation_bytes: int | None


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int | None
    weight_gradients: int | None
    solver_history: int | None
    activations: int | None  # all forward blobs plus what backward keeps beside them
    training_peak: int | None
    inference_peak: int | None


# ---------------------------------------------------------------- per layer

def layer_costs(shapes: NetShapes) -> list[LayerCost]:
    shared_seen: set[str] = set()
    return [_layer_cost(entry, shared_seen) for entry in shapes.layers]


def _layer_cost(entry: LayerShapes, shared_seen: set[str]) -> LayerCost:
    params = trainable = None
    blob_values = sum(count(shape) or 0 for shape in entry.params or ())
    if entry.params is not None:
        owned = _owned_params(entry.layer, entry.params, shared_seen)
        params = sum(count(shape) for _, shape in owned)
        trainable = 0 if entry.layer.type in UNTRAINED_TYPES else sum(
            count(shape) for spec, shape in owned if spec.get("lr_mult", 1.0) != 0)
    return LayerCost(entry.layer, entry.tops, params, trainable, _macs(entry), _new_bytes(entry), blob_values)


def _owned_params(layer: Layer, shapes: Sequence[Shape], shared_seen: set[str]):
    """(ParamSpec, shape) for the blobs this layer owns; a named blob is owned by its first user.
    A blob whose lr_mult the layer's setup forces to 0 has that in its spec."""
    specs, fixed = layer.params, fixed_blobs(layer.type, layer.fields)
    owned = []
    for i, shape in enumerate(shapes):
        spec = specs[i] if i < len(specs) else {}
        spec = {**spec, "lr_mult": 0.0} if i in fixed else spec
        name = spec.get("name", "")
        if name and name in shared_seen:
            continue
        if name:
            shared_seen.add(name)
        owned.append((spec, shape))
    return owned


def _new_bytes(entry: LayerShapes) -> int | None:
    layer = entry.layer
    values = _total(None if shape is None else count(shape) for top, shape in zip(layer.tops, entry.tops)
                    if top not in layer.bottoms and layer.type not in VIEW_TYPES)
    return None if values is None else values * BYTES_PER_VALUE


def _macs(entry: LayerShapes) -> int | None:
    """The layer's MACs; None (shown `?`) when shapes are unknown or the type's cost is (Python, custom)."""
    if entry.layer.type in ZERO_MAC_TYPES:
        return 0
    rule = MAC_RULES.get(entry.layer.type)
    if rule is None or any(shape is None for shape in entry.bottoms + entry.tops):
        return None
    return rule(entry)


def _conv_macs(entry: LayerShapes) -> int | None:
    """Each output value of a group takes C/group x kernel MACs."""
    layer, bottom = entry.layer, entry.bottoms[0]
    geo = conv_geometry(layer, bottom)
    group = layer_param(layer, "convolution_param", "group")
    channels = bottom[geo.axis]
    spatial = [count(b[geo.axis + 1:]) if layer.type == "Deconvolution" else count(t[geo.axis + 1:])
               for b, t in zip(entry.bottoms, entry.tops)]
    if channels is None or None in spatial:
        return None
    num_output = layer_param(layer, "convolution_param", "num_output")
    outer = count(bottom[:geo.axis])
    per_position = (channels // group) * num_output * count(geo.kernel)
    return sum(outer * s * per_position for s in spatial)


def _depthwise_macs(entry: LayerShapes) -> int | None:
    """ConvolutionDepthwise: each output value takes one kernel's worth of MACs (its filter)."""
    values = count(entry.tops[0])
    return None if values is None or entry.params is None else values * count(entry.params[0][2:])


def _inner_product_macs(entry: LayerShapes) -> int | None:
    weight = entry.params[0] if entry.params else None
    outer = count(entry.tops[0][:-1])
    return None if weight is None or outer is None else outer * count(weight)


def _recurrent_macs(entry: LayerShapes) -> int | None:
    """Every weight matrix is applied once per time step and item."""
    if entry.params is None:
        return None
    steps_items = count(entry.bottoms[0][:2])
    matrices = sum(count(shape) for shape in entry.params if len(shape) == 2)
    return None if steps_items is None else steps_items * matrices


MAC_RULES = {
    "Convolution": _conv_macs, "Deconvolution": _conv_macs, "DepthwiseConvolution": _conv_macs,
    "ConvolutionDepthwise": _depthwise_macs,
    "InnerProduct": _inner_product_macs, "LSTM": _recurrent_macs, "RNN": _recurrent_macs,
}

# Caffe's types with no matrix product: sources, element-wise and per-channel arithmetic, pooling and
# normalization, blob plumbing, lookups, losses and metrics, SSD's layers (whose box decoding and
# NMS are no matrix products), ShuffleChannel (a copy), Interp (4 weights per output, as pooling),
# SegNet's and Fast R-CNN's.
ZERO_MAC_TYPES = frozenset("""
Data DummyData HDF5Data ImageData Input MemoryData WindowData Parameter HDF5Output Silence
AbsVal BNLL Clip ELU Exp Log Power PReLU ReLU Sigmoid Swish TanH Threshold Dropout
Bias Scale Eltwise LSTMUnit BatchNorm LRN MVN Softmax Pooling SPP Reduction
ArgMax BatchReindex Concat Crop Embed Filter Flatten Im2col Reshape Slice Split Tile
Accuracy ContrastiveLoss EuclideanLoss HingeLoss InfogainLoss MultinomialLogisticLoss
SigmoidCrossEntropyLoss SoftmaxWithLoss
Normalize Permute PriorBox DetectionOutput ShuffleChannel Interp
BN Upsample DenseImageData ROIPooling SmoothL1Loss
""".split())


# ---------------------------------------------------------------- grouping by module use

def rows(costs: Sequence[LayerCost], depth: int | None) -> list[Row]:
    """One row per layer (depth None or 0), or per module use at `depth`."""
    if not depth:
        return [Row(c.layer.name, c.layer.type, c.tops, c.params, c.macs, c.activation_bytes)
                for c in costs]
    groups: dict[tuple, list[LayerCost]] = {}
    for index, cost in enumerate(costs):
        groups.setdefault(group_key(cost.layer, depth, index), []).append(cost)
    readers = _readers(c.layer for c in costs)
    return [_group_row(key, members, readers) for key, members in groups.items()]


def group_key(layer: Layer, depth: int, index: int) -> tuple:
    """The first `depth` module uses that produced the layer; outside any, the layer itself by its
    place (Caffe lets two layers share a name)."""
    uses = layer.origin.uses[:depth] if layer.origin else ()
    return tuple(use.instance for use in uses) if uses else ("", index)


def _group_row(key: tuple, members: list[LayerCost], readers: dict[str, set[str]]) -> Row:
    if key[0] == "":
        single = members[0]
        return Row(single.layer.name, single.layer.type, single.tops, single.params,
                   single.macs, single.activation_bytes)
    inside = {c.layer.name for c in members}
    outputs = {}
    for cost in members:
        for top, shape in zip(cost.layer.tops, cost.tops):
            if not readers.get(top, set()) <= inside or not readers.get(top):
                outputs[top] = shape  # read outside the group, or a net output
    uses = members[0].layer.origin.uses[:len(key)]
    return Row("/".join(key), uses[-1].module, tuple(outputs.values()),
               _total(c.params for c in members), _total(c.macs for c in members),
               _total(c.activation_bytes for c in members))


def _readers(layers: Iterable[Layer]) -> dict[str, set[str]]:
    readers: dict[str, set[str]] = {}
    for layer in layers:
        for bottom in layer.bottoms:
            readers.setdefault(bottom, set()).add(layer.name)
    return readers


def _total(values: Iterable[int | None]) -> int | None:
    values = list(values)
    return None if None in values else sum(values)


# ---------------------------------------------------------------- memory

def estimate_memory(costs: Sequence[LayerCost], solver: str = "SGD") -> MemoryEstimate:
    weights = _total(c.params for c in costs)
    trainable = _total(c.trainable for c in costs)
    if weights is None or trainable is None or any(c.activation_bytes is None for c in costs):
        return MemoryEstimate(None if weights is None else weights * BYTES_PER_VALUE,
                              None, None, None, None, None)
    weight_bytes, grad_bytes = weights * BYTES_PER_VALUE, trainable * BYTES_PER_VALUE
    history = grad_bytes * SOLVER_HISTORY[solver]
    storages = _storages(costs)
    saved = [c.activation_bytes + _saved_extra(c) for c in costs]
    return MemoryEstimate(
        weights=weight_bytes, weight_gradients=grad_bytes, solver_history=history,
        activations=sum(saved),
        training_peak=weight_bytes + grad_bytes + history + _backward_peak(costs, storages, saved),
        inference_peak=weight_bytes + _inference_peak(costs, storages),
    )


def _kind(cost: LayerCost) -> str:
    """The layer type, refined where memory behaviour differs (pooling method, in-place Scale)."""
    layer = cost.layer
    if layer.type == "Pooling":
        return "Pooling:" + layer_param(layer, "pooling_param", "pool")
    if layer.type == "Scale" and layer.is_in_place():
        return "Scale:in-place"
    return layer.type


def _top_bytes(cost: LayerCost) -> int:
    return sum((count(shape) or 0) * BYTES_PER_VALUE for shape in cost.tops if shape is not None)


def _saved_extra(cost: LayerCost) -> int:
    return int(SAVED_EXTRA.get(_kind(cost), 0.0) * _top_bytes(cost))


def _transient(cost: LayerCost, storages: dict[str, "_Storage"]) -> int:
    """Working memory during this layer's forward in inference (see TRANSIENT_*)."""
    if cost.layer.type in TRANSIENT_INPUT_AND_WEIGHTS:
        inputs = sum(storages[b].bytes for b in cost.layer.bottoms[:1] if b in storages)
        return inputs + cost.blob_values * BYTES_PER_VALUE
    return int(TRANSIENT_OF_OUTPUT.get(_kind(cost), 0.0) * _top_bytes(cost))


@dataclass
class _Storage:
    """Memory behind one or more blob names (in-place layers and views share it)."""

    producer: int
    bytes: int
    last_reader: int
    consumed: bool = False  # read by a layer that does not merely update it in place


def _storages(costs: Sequence[LayerCost]) -> dict[str, _Storage]:
    """Blob name -> its storage, as the blob is when each layer reads it."""
    by_blob: dict[str, _Storage] = {}
    for index, cost in enumerate(costs):
        layer = cost.layer
        for bottom in layer.bottoms:
            if bottom in by_blob:
                by_blob[bottom].last_reader = index
                by_blob[bottom].consumed |= bottom not in layer.tops
        for top, shape in zip(layer.tops, cost.tops):
            if top in layer.bottoms:
                by_blob[top].last_reader = index  # written in place
            elif layer.type in VIEW_TYPES and layer.bottoms:
                by_blob[top] = by_blob[layer.bottoms[0]]
            else:
                by_blob[top] = _Storage(index, count(shape) * BYTES_PER_VALUE, index)
    return by_blob


def _distinct(storages: Iterable[_Storage]) -> list[_Storage]:
    return list({id(storage): storage for storage in storages}.values())


def _inference_peak(costs: Sequence[LayerCost], storages: dict[str, _Storage]) -> int:
    """Walk forward: a storage lives from its producer to its last reader (net outputs to the end);
    each layer adds its working memory while it runs."""
    spans = [(s.producer, s.last_reader if s.consumed else len(costs) - 1, s.bytes)
             for s in _distinct(storages.values())]
    return max((live + _transient(cost, storages) for cost, live in zip(costs, _running_sums(spans, len(costs)))),
               default=0)


def _running_sums(spans: Iterable[tuple[int, int, int]], length: int) -> list[int]:
    """For each index below `length`, the sum of the amounts whose (first, last) span holds it: one
    pass over the starts and ends, however many spans overlap (100k-layer nets stay linear)."""
    change = [0] * (length + 1)
    for first, last, amount in spans:
        if first <= last:
            change[first] += amount
            change[min(last, length - 1) + 1] -= amount
    return list(itertools.accumulate(change[:length]))


def _backward_peak(costs: Sequence[LayerCost], storages: dict[str, _Storage], saved: list[int]) -> int:
    """Walk backward: forward memory of layers not yet back-propagated, plus live activation
    gradients (each from its last reader back to its producer)."""
    last_readers: dict[int, tuple[_Storage, int]] = {}
    for index, cost in enumerate(costs):
        for bottom in cost.layer.bottoms:
            storage = storages.get(bottom)
            if storage is not None and costs[storage.producer].layer.bottoms:  # a source's tops need no gradient
                last_readers[id(storage)] = (storage, index)
    gradients = _running_sums(((s.producer, last, s.bytes) for s, last in last_readers.values()), len(costs))
    return max((forward + gradient for forward, gradient in zip(itertools.accumulate(saved), gradients)), default=0)


def net_totals(costs: Sequence[LayerCost]) -> tuple[int | None, int | None, int | None]:
    """Parameters, MACs and activation bytes of the whole net."""
    return (_total(c.params for c in costs), _total(c.macs for c in costs),
            _total(c.activation_bytes for c in costs))


def measure(shapes: NetShapes, solver: str = "SGD"):
    """(per-layer costs, memory estimate) for a net whose shapes are known."""
    costs = layer_costs(shapes)
    return costs, estimate_memory(costs, solver)
