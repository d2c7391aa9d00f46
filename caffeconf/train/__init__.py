"""Solver + flat Net -> trained weights and snapshots, with Caffe's semantics on the PyTorch runner.

solver prototxt -> `settings` (SolverParameter, paths resolved) -> `loop.Trainer`, which feeds the
net from `data` sources, applies `solvers` updates at `lr_policy` rates, and writes snapshots
through caffe.solverstate. `distributed` runs the same loop in several processes. The package is
also the public `caffeconf.train(config_or_solver, ...)` (api/model.py), called as a function.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    """`caffeconf.train` is this package and the public API's `train(config_or_solver, ...)` at once
    (importing a submodule makes the package the attribute `caffeconf.train`, so one object is both)."""

    def __call__(self, *args, **kwargs):
        from ..api.model import train
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
