"""flat Net (already filtered for one phase) -> a torch.nn.Module that runs it as Caffe would.

One loop over the layers with an environment of named blobs. Learnable blobs are
created on first use, when the bottom shapes are known (as in Caffe's SetUp):
from loaded .caffemodel blobs when given, else from the layer's fillers (or,
with `random_weights`, seeded values of a sensible scale for each blob). In
inference (no autograd) each blob is dropped after its last consumer and
in-place layers overwrite their bottom when nothing else still holds it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import CaffeconfError, Diagnostic, did_you_mean
from ..ir import Layer, Net, output_names
from . import layers as registry
from .fillers import fill, fill_random
from .fold import Folded, fold_affine
from .layers import LayerContext, Op
from .layers.data import inputs_as_layer
from .layers.python import unallowed_python_layers
from ..caffe.facts import FED_TYPES, layer_types, unknown_type_problem
from ..caffe.weights import StoredBlob, describe_shape, shape_matches

Tensor = torch.Tensor


@dataclass
class Step:
    index: int
    layer: Layer
    ctx: LayerContext
    op: Op
    ready: bool = False
    in_place: bool = False
    # blob names to drop from the environment after this step (inference only)
    dead_after: tuple[str, ...] = ()


def check_supported(net: Net, allow_python_layers: bool = False) -> None:
    """Reject every layer whose type caffeconf cannot run, before anything runs; Python layers
    unless they are allowed."""
    runnable = layer_types()  # a fork's types run only with its caffe.proto
    diagnostics = unallowed_python_layers(net, allow_python_layers) + [
        Diagnostic(f"layer '{layer.name}': unsupported layer type '{layer.type}' "
                   f"(caffeconf run has no implementation for it)",
                   layer.origin.span if layer.origin else None,
                   hint=_closest_type(layer.type) if layer.type not in registry.LAYERS
                   else unknown_type_problem(layer.type)[2])
        for layer in net.layers if layer.type not in registry.LAYERS or layer.type not in runnable
    ]
    if diagnostics:
        raise CaffeconfError(diagnostics)


def _closest_type(name: str) -> str | None:
    """A hint naming the nearest supported type, ignoring case (Caffe's types are case-sensitive)."""
    by_lower = {type_name.lower(): type_name for type_name in registry.LAYERS}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return f"did you mean '{by_lower[match[0]]}'?" if match else None


class CaffeNet(nn.Module):
    """A flat Caffe net as a module: `forward({blob: tensor}) -> {output blob: tensor}`."""

    def __init__(self, net: Net, *, phase: str = "TEST", seed: int = 0,
                 weights: Mapping[str, list[StoredBlob]] | None = None,
                 device: torch.device | str = "cpu", random_weights: bool = False,
                 allow_python_layers: bool = False):
        """`random_weights`: blobs not in `weights` get fillers.fill_random's values, not the fillers'.
        `allow_python_layers`: import and run the code of the net's Python layers (else refuse them)."""
        super().__init__()
        net = inputs_as_layer(net)
        check_supported(net, allow_python_layers)
        self.net, self.phase, self.device = net, phase, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.weights = dict(weights or {})
        self.random_weights = random_weights
        self.steps = self._build_steps(net.layers)
        self.layer_blobs = nn.ModuleList(nn.ParameterList() for _ in self.steps)
        self.shared: dict[str, nn.Parameter] = {}
        self.inputs = [top for layer in net.layers if layer.type in FED_TYPES for top in layer.tops]
        self.outputs = output_names(net.layers)
        self.folds: dict[int, Folded] = {}
        self._check_bottoms()
        self._plan_lifetimes()

    # ------------------------------------------------------------ building

    def _build_steps(self, layers: tuple[Layer, ...]) -> list[Step]:
        steps, diagnostics = [], []
        for index, layer in enumerate(layers):
            ctx = LayerContext(layer, self.phase, self.generator, self.device)
            try:
                op = registry.LAYERS[layer.type](ctx)
            except CaffeconfError as error:
                diagnostics.extend(error.diagnostics)
                continue
            in_place = layer.is_in_place() and op.forward_in_place is not None
            steps.append(Step(index, layer, ctx, op, in_place=in_place))
        if diagnostics:
            raise CaffeconfError(diagnostics)
        return steps

    def _check_bottoms(self) -> None:
        produced: set[str] = set()
        for step in self.steps:
            for position, bottom in enumerate(step.layer.bottoms):
                if bottom not in produced:
                    raise step.ctx.error(f"unknown bottom blob '{bottom}' (bottom {position}): "
                                         "no earlier layer produces it",
                                         hint=did_you_mean(bottom, produced))
            produced.update(step.layer.tops)

    def _plan_lifetimes(self) -> None:
        last_read = {bottom: step for step in self.steps for bottom in step.layer.bottoms}
        for name, step in last_read.items():
            if name not in step.layer.tops and name not in self.outputs:
                step.dead_after += (name,)

    # ------------------------------------------------------------- running

    def forward(self, inputs: Mapping[str, Tensor], keep_all: bool = False) -> dict[str, Tensor]:
        """Run every layer; return the output blobs (or every blob, with `keep_all`)."""
        env = self.feed(inputs)
        free = not keep_all and not torch.is_grad_enabled()
        # Under torch.compile the compiler plans memory itself; storage checks would break its graph.
        in_place = free and not torch.compiler.is_compiling()
        protected = self._protected_storage(env) if in_place else set()
        folds = self.folds if not torch.is_grad_enabled() else {}
        absorbed = {index for fold in folds.values() for index in fold.absorbed}
        for step in self.steps:
            if step.layer.type not in FED_TYPES and step.index not in absorbed:
                self._run_step(step, env, folds.get(step.index), in_place, protected)
            if free:  # absorbed steps still end their bottoms' lifetimes
                for name in step.dead_after:
                    env.pop(name, None)
        return env if keep_all else {name: env[name] for name in self.outputs}

    def _run_step(self, step: Step, env: dict[str, Tensor], fold: Folded | None, in_place: bool,
                  protected: set[int]) -> None:
        bottoms = [env[name] for name in step.layer.bottoms]
        if fold:
            residual = env[fold.residual] if fold.residual else None
            blobs = [fold.weight] if fold.bias is None else [fold.weight, fold.bias]
            fused = (residual, fold.relu, fold.cache)
            env.update(zip(fold.tops, self.run_layer(step, bottoms, blobs=blobs, fused=fused)))
        else:
            overwrite = step.in_place and in_place and self._exclusive(env, step.layer.bottoms[0], protected)
            env.update(zip(step.layer.tops, self.run_layer(step, bottoms, in_place=overwrite)))

    def run_layer(self, step: Step, bottoms: list[Tensor], in_place: bool = False,
                  blobs: list[Tensor] | None = None, fused: tuple | None = None) -> list[Tensor]:
        """One layer's forward, creating its blobs first if needed; errors name the layer.
        `blobs` replaces the layer's own (folded weights); `fused` is (residual, relu, cache) for
        a convolution's inference step (see fold.py)."""
        if not step.ready:
            self._materialize(step, [tuple(b.shape) for b in bottoms], bottoms[0].device if bottoms else self.device)
        blobs = list(self.layer_blobs[step.index]) if blobs is None else blobs
        try:
            if fused:
                tops = step.op.forward_fused(bottoms, blobs, *fused)
            else:
                tops = (step.op.forward_in_place if in_place else step.op.forward)(bottoms, blobs)
        except (RuntimeError, ValueError, IndexError) as error:
            shapes = ", ".join(str(tuple(b.shape)) for b in bottoms)
            raise step.ctx.error(f"{error} (bottom shapes: {shapes})") from error
        if len(tops) != len(step.layer.tops):
            raise step.ctx.error(f"it makes {len(tops)} tops but {len(step.layer.tops)} are named")
        return tops

    def feed(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        env = {}
        for step in self.steps:
            if step.layer.type not in FED_TYPES:
                continue
            for top in step.layer.tops:
                if top not in inputs:
                    raise step.ctx.error(f"no input given for its top '{top}'",
                                         hint=f"feed it, e.g. --input {top}=file.npy")
                env[top] = inputs[top]
        unknown = sorted(set(inputs) - set(env))
        if unknown:
            raise CaffeconfError.at(None, f"inputs {unknown} name no Input or data layer top",
                                    hint=did_you_mean(unknown[0], env))
        return env

    def _protected_storage(self, env: Mapping[str, Tensor]) -> set[int]:
        """Memory in-place layers must not overwrite: the caller's inputs and the parameters."""
        protected = {x.untyped_storage().data_ptr() for x in env.values()}
        # (the blobs directly: Module.parameters() walks the module tree, a cost on every pass)
        protected.update(p.untyped_storage().data_ptr() for blobs in self.layer_blobs for p in blobs)
        return protected

    @staticmethod
    def _exclusive(env: Mapping[str, Tensor], name: str, protected: set[int]) -> bool:
        """True when no other live blob, input or parameter shares `name`'s memory."""
        storage = env[name].untyped_storage().data_ptr()
        return storage not in protected and not any(
            other != name and x.untyped_storage().data_ptr() == storage for other, x in env.items())

    # ------------------------------------------------------------- weights

    def materialize(self, input_shapes: Mapping[str, Sequence[int]]) -> None:
        """Create every layer's learnable blobs for inputs of these shapes, without a pass: as a
        first pass would (and as Caffe's SetUp does), layer by layer, the fillers drawing from the
        generator in net order. Layers whose bottom shapes cannot be inferred stay lazy."""
        from ..inspect.shapes import infer_shapes

        inferred = infer_shapes(self.net, inputs=input_shapes)
        for step, entry in zip(self.steps, inferred.layers):
            known = all(shape is not None and None not in shape for shape in entry.bottoms)
            if not step.ready and step.layer.type not in FED_TYPES and known:
                self._materialize(step, [tuple(shape) for shape in entry.bottoms], self.device)

    def _materialize(self, step: Step, shapes: list[tuple[int, ...]], device) -> None:
        specs = step.op.blob_specs(shapes) if step.op.blob_specs else []
        stored = self.weights.get(step.layer.name)
        if stored is not None and len(stored) != len(specs):
            raise step.ctx.error(f"the weights file has {len(stored)} blobs for it, "
                                 f"but it has {len(specs)}")
        names = [p.get("name", "") for p in step.layer.params] + [""] * len(specs)
        blobs = self.layer_blobs[step.index]
        for position, (spec, name) in enumerate(zip(specs, names)):
            initial = self._initial_value(step, position, spec, stored)
            blobs.append(self._share_or_create(step, position, name, spec, initial, device))
        step.ready = True

    def _initial_value(self, step: Step, position: int, spec, stored) -> Tensor:
        if stored is None:
            if self.random_weights:
                return fill_random(spec.shape, spec.role, self.generator)
            return step.ctx.checked(fill, spec.shape, spec.filler, self.generator)
        blob = stored[position]
        if not shape_matches(blob, spec.shape):
            raise step.ctx.error(
                f"blob {position} in the weights file has shape {describe_shape(blob)}, "
                f"but the layer needs {spec.shape}",
                hint="rename the layer to learn it from scratch instead of loading it")
        return torch.from_numpy(blob.data.reshape(spec.shape).copy())

    def _share_or_create(self, step: Step, position: int, name: str, spec, initial: Tensor,
                         device) -> nn.Parameter:
        if name and name in self.shared:
            owner = self.shared[name]
            mode = step.layer.params[position].get("share_mode", "STRICT")
            same = (tuple(owner.shape) == spec.shape if mode == "STRICT"
                    else owner.numel() == initial.numel())
            if not same:
                raise step.ctx.error(f"shared param '{name}' has shape {tuple(owner.shape)} here "
                                     f"but {spec.shape} in this layer ({mode} sharing)")
            if step.layer.name in self.weights:
                with torch.no_grad():  # like Caffe, a later copy into shared memory wins
                    owner.copy_(initial.reshape(owner.shape))
            return owner
        parameter = nn.Parameter(initial.to(device))
        if name:
            self.shared[name] = parameter
        return parameter

    def blob_arrays(self) -> dict[str, list[np.ndarray]]:
        """Every materialized layer's blobs as float32 arrays, by layer name (for a .caffemodel)."""
        return {step.layer.name: [b.detach().float().cpu().numpy() for b in self.layer_blobs[step.index]]
                for step in self.steps if len(self.layer_blobs[step.index])}

    def fold_for_inference(self) -> int:
        """Fold BatchNorm/Scale/Bias chains, residual sums and ReLUs into their convolutions for
        forwards without autograd (a snapshot of the current blobs; call again after changing
        them). Returns how many convolutions absorbed layers."""
        self.folds = fold_affine(self)
        return sum(1 for fold in self.folds.values() if fold.absorbed)

    # ---------------------------------------------------------------- loss

    def loss(self, blobs: Mapping[str, Tensor]) -> Tensor | None:
        """Caffe's total loss: the sum of loss_weight x top over weighted tops."""
        terms = [blobs[top].sum() * weight for step in self.steps
                 for top, weight in zip(step.layer.tops, loss_weights(step.layer)) if weight and top in blobs]
        return sum(terms[1:], terms[0]) if terms else None


def loss_weights(layer: Layer) -> list[float]:
    """A layer's per-top loss weights: as written, else 1 for a *Loss layer's first top."""
    written = list(layer.fields.get("loss_weight", ()))
    if not written and layer.tops:
        written = [1.0 if layer.type.endswith("Loss") else 0.0]
    return written + [0.0] * (len(layer.tops) - len(written))
