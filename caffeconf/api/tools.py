"""The public `shapes`, `measure` and `import_net`: caffeconf's inspection and import tools on a
`Net` (or anything `load` takes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..inspect.measure import MemoryEstimate, Row, estimate_memory, layer_costs, net_totals, rows
from ..inspect.shapes import NetShapes, infer_shapes
from .net import Source, load


def shapes(net: Source, inputs: Mapping[str, Sequence[int]] | None = None, *,
           batch: int | None = None) -> NetShapes:
    """Every layer's bottom, top and learnable blob shapes (`.layers`), and `.blob(name)`, as
    `caffeconf inspect` infers them; `inputs` replaces the shapes source layers declare, `batch`
    their first axis. Raises CaffeconfError naming each layer whose shapes do not fit.

    >>> deploy = load("configs/googlenet.yaml", stage="deploy")
    >>> shapes(deploy).blob("prob")
    (10, 1000)
    >>> shapes(deploy, {"data": [1, 3, 224, 224]}).blob("pool5/7x7_s1")
    (1, 1024, 1, 1)
    """
    return infer_shapes(load(net).flat, inputs, batch)


@dataclass(frozen=True)
class Measurement:
    """What `caffeconf inspect` counts: per-layer rows, the net's totals, and memory estimates."""

    layers: tuple[Row, ...]  # name, type, outputs, params, macs, activation_bytes
    params: int | None
    macs: int | None
    activation_bytes: int | None
    memory: MemoryEstimate  # weights, gradients, solver history, activations, training and inference peaks


def measure(net: Source, inputs: Mapping[str, Sequence[int]] | None = None, *, batch: int | None = None,
            solver: str = "SGD") -> Measurement:
    """Parameters, multiply-accumulates and memory of the net, per layer and in total (None where
    a shape is unknown); `solver` decides the history the training estimate counts.

    >>> cost = measure(load("configs/googlenet.yaml", stage="deploy"), batch=1)
    >>> cost.params, cost.macs
    (6998552, 1582671872)
    >>> cost.layers[0].name, cost.layers[0].outputs
    ('data', ((1, 3, 224, 224),))
    """
    costs = layer_costs(shapes(net, inputs, batch=batch))
    return Measurement(tuple(rows(costs, 0)), *net_totals(costs), estimate_memory(costs, solver))


def import_net(path: str | os.PathLike, modules: bool = True, *, toml: bool = False, python: bool = False) -> str:
    """A Caffe net (prototxt or binary, V0/V1/V2) as config text that compiles back to exactly
    the same net, as `caffeconf import` writes it: with `modules`, repeated blocks become modules
    with typed parameters; with `toml`, TOML instead of YAML; with `python`, a script building it
    with `caffeconf.netspec`, one call a layer (`modules` and `toml` do not apply).

    >>> text = import_net("tests/cases/qualified_names/expected.prototxt", modules=False)
    >>> text.splitlines()[1:4]
    ['caffeconf: 1', 'name: qualified', 'layers:']
    >>> load(text) == load("tests/cases/qualified_names/expected.prototxt")
    True
    >>> import_net("tests/cases/qualified_names/expected.prototxt", python=True).splitlines()[4:6]
    ["n = cs.Net('qualified')", "n['data'] = cs.Input(shape=[1, 3, 16, 16])"]
    """
    from ..importer.read import import_config, import_python
    if python:
        return import_python(path).text
    return import_config(path, modules=modules, as_toml=toml).text
