"""Caffe's Python layer (`type: "Python"`, python_param module/layer/param_str) -> an Op that runs the
layer's own class through pycaffe's interface (`run/pycaffe.py`), inside torch's autograd graph.

Its code is arbitrary code, so the interpreter builds these layers only when told to
(`--allow-python-layers`); otherwise `unallowed_python_layers` names each one before anything runs.
The module is imported as pycaffe would find it, on sys.path (PYTHONPATH first), and then in the
folder of the file that declares the layer and the current directory, which are searched after
sys.path so that no file beside a net can shadow an installed module. Errors the layer's code
raises are reported at the layer, with the layer code's own traceback lines as notes.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Sequence

import numpy as np
import torch

from ...errors import CaffeconfError, Diagnostic, Note, Span, did_you_mean
from ...inspect.shapes import PYTHON_PARAM_NEEDED, python_module
from ...ir import Net
from .. import pycaffe
from .registry import LayerContext, Op, register

ALLOW_FLAG = "--allow-python-layers"
# Frames of these files are caffeconf's or the import machinery's, not the layer code's.
_NOT_LAYER_CODE = (os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep,
                   os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep, "<frozen importlib")
_SHOWN_FRAMES = 5  # the innermost frames of the layer code's traceback that become notes


def python_refusals(net: Net, why: str, hint: str | None = None) -> list[Diagnostic]:
    """One located error per Python layer of `net`, saying `why` it does not run here."""
    return [Diagnostic(f"layer '{layer.name}' (Python module {python_module(layer)}): {why}",
                       layer.origin.span if layer.origin else None, hint=hint)
            for layer in net.layers if layer.type == "Python"]


def unallowed_python_layers(net: Net, allowed: bool) -> list[Diagnostic]:
    """The refusals of a runner not given ALLOW_FLAG."""
    if allowed:
        return []
    return python_refusals(net, "a Python layer imports and runs its module's code, which caffeconf "
                                f"does only when given {ALLOW_FLAG}",
                           hint=f"pass {ALLOW_FLAG} (allow_python_layers=True in the Python API) "
                                "if you trust the module")


@register("Python")
def python_layer(ctx: LayerContext) -> Op:
    p = ctx.param("python_param")
    module_name, class_name = p["module"], p["layer"]
    if not module_name or not class_name:
        raise ctx.error(f"{PYTHON_PARAM_NEEDED} to run")
    runner = _Runner(ctx, module_name, _import_class(ctx, module_name, class_name), p["param_str"])
    return Op(forward=lambda bottoms, blobs: runner.forward(bottoms))


def _import_class(ctx: LayerContext, module_name: str, class_name: str) -> type:
    module = _import_module(ctx, module_name)
    layer_class = getattr(module, class_name, None)
    if not isinstance(layer_class, type):
        classes = [name for name, value in vars(module).items() if isinstance(value, type)]
        raise _error(ctx, module_name, f"the module ({getattr(module, '__file__', '?')}) has no class "
                                       f"'{class_name}'", hint=did_you_mean(class_name, classes))
    return layer_class


def _import_module(ctx: LayerContext, module_name: str):
    """The layer's module, imported with `caffe` standing for pycaffe's layer interface."""
    declared = os.path.dirname(os.path.abspath(ctx.layer.origin.span.path)) if ctx.layer.origin else None
    added = [folder for folder in dict.fromkeys((declared, os.getcwd())) if folder and folder not in sys.path]
    previous = sys.modules.get("caffe")
    sys.path.extend(added)
    sys.modules["caffe"] = pycaffe
    try:
        return importlib.import_module(module_name)
    except Exception as error:  # the module's own code failed, or it was not found
        missing = isinstance(error, ModuleNotFoundError) and module_name.startswith(error.name or "\0")
        searched = f"searched sys.path (PYTHONPATH first), then {' and '.join(added) or 'nothing more'}"
        raise _user_error(ctx, module_name, error, "importing it: ", searched if missing else None)
    finally:
        for folder in added:
            sys.path.remove(folder)
        if previous is None:
            del sys.modules["caffe"]
        else:
            sys.modules["caffe"] = previous


def _error(ctx: LayerContext, module_name: str, message: str, notes: Sequence[Note] = (),
           hint: str | None = None) -> CaffeconfError:
    span = ctx.layer.origin.span if ctx.layer.origin else None
    uses = ctx.layer.origin.use_notes() if ctx.layer.origin else ()
    return CaffeconfError.at(span, f"layer '{ctx.layer.name}' (Python module {module_name}): {message}",
                             notes=(*notes, *uses), hint=hint)


def _user_error(ctx: LayerContext, module_name: str, error: Exception, doing: str = "",
                hint: str | None = None) -> CaffeconfError:
    """The exception in our words, with the frames of the layer's code (not caffeconf's) as notes."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_NOT_LAYER_CODE)]
    shown = frames[-_SHOWN_FRAMES:]
    notes = [Note(f"{'raised in' if frame is shown[-1] else 'in'} {frame.name}",
                  Span(frame.filename, frame.lineno or 1, (frame.colno or 0) + 1)) for frame in shown]
    if isinstance(error, SyntaxError) and error.filename:
        notes.append(Note("the syntax error", Span(error.filename, error.lineno or 1, error.offset or 1)))
    text = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()[-1]
    return _error(ctx, module_name, doing + text, notes, hint=hint)


class _Runner:
    """One instance of the layer's class and its blobs, called as Caffe's PythonLayer calls it."""

    def __init__(self, ctx: LayerContext, module_name: str, layer_class: type, param_str: str):
        self.ctx, self.module_name = ctx, module_name
        self.layer = self._call(layer_class, pycaffe.LayerParameter())
        self.param_str = param_str
        self.bottom = [pycaffe.Blob() for _ in ctx.layer.bottoms]
        self.top = [pycaffe.Blob() for _ in ctx.layer.tops]
        self.set_up = False

    def forward(self, bottoms: list[torch.Tensor]) -> list[torch.Tensor]:
        if not bottoms:  # a data layer: nothing to differentiate
            return [torch.from_numpy(array).to(self.ctx.device) for array in self.run_forward([])]
        return list(_PythonCall.apply(self, *bottoms))

    def run_forward(self, bottoms: list[torch.Tensor]) -> list[np.ndarray]:
        """Caffe's SetUp on the first pass (setup, reshape), then Forward (reshape, forward)."""
        for blob, tensor in zip(self.bottom, bottoms):
            blob.reshape(*tensor.shape)
            blob.data[...] = tensor.detach().float().cpu().numpy()
        if not self.set_up:
            self.layer.param_str = self.param_str
            self.layer.phase = pycaffe.TRAIN if self.ctx.phase == "TRAIN" else pycaffe.TEST
            self._call(lambda: self.layer.setup(self.bottom, self.top))
            self._call(lambda: self.layer.reshape(self.bottom, self.top))
            self.set_up = True
        self._call(lambda: self.layer.reshape(self.bottom, self.top))
        self._call(lambda: self.layer.forward(self.bottom, self.top))
        for name, blob in zip(self.ctx.layer.tops, self.top):
            if blob.count == 0 and blob.shape == ():
                raise _error(self.ctx, self.module_name, f"its top '{name}' has no shape: the layer's reshape "
                                                         "must give it one (top[i].reshape(...))")
        return [blob.data.copy() for blob in self.top]

    def run_backward(self, top_grads: Sequence[torch.Tensor], propagate_down: Sequence[bool]) -> list[np.ndarray]:
        """Caffe's Backward: top diffs in, the bottoms' diffs (zeroed first) out."""
        for blob, grad in zip(self.top, top_grads):
            blob.diff[...] = grad.detach().float().cpu().numpy().reshape(blob.shape)
        for blob in self.bottom:
            blob.diff[...] = 0
        self._call(lambda: self.layer.backward(self.top, list(propagate_down), self.bottom))
        return [blob.diff.copy() for blob in self.bottom]

    def _call(self, function, *args):
        try:
            return function(*args)
        except Exception as error:  # the layer's code raised: reported at the layer, in our words
            raise _user_error(self.ctx, self.module_name, error) from None


class _PythonCall(torch.autograd.Function):
    """The layer's forward and backward (numpy, on the CPU) as one node of the autograd graph."""

    @staticmethod
    def forward(ctx, runner: _Runner, *bottoms: torch.Tensor):
        ctx.runner, ctx.like = runner, [(b.device, b.dtype) for b in bottoms]
        device = bottoms[0].device
        return tuple(torch.from_numpy(array).to(device) for array in runner.run_forward(list(bottoms)))

    @staticmethod
    def backward(ctx, *top_grads: torch.Tensor):
        wanted = ctx.needs_input_grad[1:]
        diffs = ctx.runner.run_backward(top_grads, wanted)
        return (None, *(torch.from_numpy(diff).to(device=device, dtype=dtype) if need else None
                        for diff, need, (device, dtype) in zip(diffs, wanted, ctx.like)))
