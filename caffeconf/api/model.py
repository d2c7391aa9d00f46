"""The public `Model` and `train`, with the run (and train) extras: a `Net` as a torch module with
Caffe's numerics (`run/`), and Caffe's solvers (`train/`, through the `train` command). Importing
`caffeconf` never imports this module; `caffeconf.Model` and `caffeconf.train` load it on first use."""

from __future__ import annotations

import argparse
import os
from typing import Mapping

import numpy as np
import torch

from ..caffe.weights import StoredBlob, read_caffemodel, write_caffemodel
from ..compile.load import StateChoice, for_state, one_command
from ..compile.source import is_config
from ..run.device import select_device
from ..run.interpreter import CaffeNet
from ..run.session import input_shapes
from .net import Source, load


class Model(CaffeNet):
    """The net as a torch module: `model({blob: array or tensor})` returns the output blobs and keeps
    every blob of that pass in `.blobs` (as pycaffe's `net.blobs`). Learnable blobs come from
    `weights` (a .caffemodel path, or the dict `caffeconf.caffe.weights.read_caffemodel` gives),
    else from the layers' fillers, seeded by `seed`. `device`: "cpu", "cuda", a torch.device, or
    None for CUDA when available. A net loaded with every phase is run for `phase`. A net with Python
    layers runs only with `allow_python_layers=True`, which imports and runs their modules' code.

    >>> model = Model(load("tests/cases/qualified_names/expected.prototxt"), device="cpu")
    >>> outputs = model({"data": np.ones((1, 3, 16, 16), np.float32)})
    >>> sorted(outputs) == model.outputs, tuple(model.blobs["data"].shape)
    (True, (1, 3, 16, 16))
    """

    def __init__(self, net: Source, weights: str | os.PathLike | Mapping[str, list[StoredBlob]] | None = None,
                 device: str | torch.device | None = None, *, phase: str = "TEST", seed: int = 0,
                 allow_python_layers: bool = False):
        flat, _ = for_state(load(net).flat, StateChoice(phase))
        where = device if isinstance(device, torch.device) else select_device(device or "auto")
        stored = read_caffemodel(weights) if isinstance(weights, (str, os.PathLike)) else weights
        super().__init__(flat, phase=phase, seed=seed, weights=stored, device=where,
                         allow_python_layers=allow_python_layers)
        self.to(where)
        self.blobs: dict[str, torch.Tensor] = {}
        self.materialize(input_shapes(flat, None))  # where shapes are declared, blobs exist before any pass

    def forward(self, inputs: Mapping[str, object], keep_all: bool = True) -> dict[str, torch.Tensor]:
        """The output blobs for `inputs` (numpy arrays or tensors by blob name); every blob stays in `.blobs`."""
        tensors = {name: _tensor(value, self.device) for name, value in inputs.items()}
        self.blobs = super().forward(tensors, keep_all=keep_all)
        return {name: self.blobs[name] for name in self.outputs}

    def save_caffemodel(self, path: str | os.PathLike) -> None:
        """Write the learnable blobs as a .caffemodel (atomically), which Caffe and OpenCV read."""
        write_caffemodel(path, self.net, self.blob_arrays())


def _tensor(value, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(device)


def train(config_or_solver: str | os.PathLike, *, net: str | os.PathLike | None = None,
          weights: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          device: str = "auto", log: str | None = None, plot: str | None = None, quiet: bool = False,
          threads: int | None = None, nproc: int = 1, allow_python_layers: bool = False) -> int:
    """Train as `caffeconf train` does: a config with a `solver:` section, or a solver (prototxt
    or YAML) with `net` or the solver's own net; `weights` to start from, or `resume` from a
    .solverstate. Snapshots, the CSV log and the plot are written where the solver says.
    `allow_python_layers`: run the nets' Python layers (as --allow-python-layers).
    Returns 0 when training ran to `max_iter`, else the status of the signal that stopped it."""
    from ..commands import train as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    if net is None and is_config(config_or_solver):
        args.net = os.fspath(config_or_solver)  # its own `solver:` section
    else:
        args.solver, args.net = os.fspath(config_or_solver), _path_or_none(net)
    args.weights, args.resume = _path_or_none(weights), _path_or_none(resume)
    args.device, args.log, args.plot, args.quiet, args.threads, args.nproc = device, log, plot, quiet, threads, nproc
    args.allow_python_layers = allow_python_layers
    with one_command():
        return command.run(args)


def _path_or_none(path) -> str | None:
    return None if path is None else os.fspath(path)
