"""Caffe's parameter updates (src/caffe/solvers/*.cpp, sgd_solver.cpp) on PyTorch tensors.

One update, as Caffe's SGDSolver::ApplyUpdate does it, after the gradients of `iter_size`
forward/backward passes have been summed into `.grad`:
  1. clip_gradients: scale every gradient by clip / ||all gradients||_2 when the norm exceeds it;
  2. normalize: divide by iter_size;
  3. regularize: add weight_decay * decay_mult * (w for L2, sign(w) for L1);
  4. compute the update from the solver's rule and history, with rate = lr * lr_mult;
  5. w -= update.
History follows Caffe's layout: one tensor per learnable parameter, and for AdaDelta and Adam a
second set after the first (squared updates, second moments).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..caffe.facts import fixed_blobs

Tensor = torch.Tensor


@dataclass
class LearnableParam:
    """One of Caffe's learnable_params: a blob owned by a layer (shared blobs appear once)."""

    name: str  # layer name and blob index, for messages
    tensor: nn.Parameter
    lr_mult: float
    decay_mult: float


def learnable_params(model) -> list[LearnableParam]:
    """The model's materialized blobs in Caffe's order: layer by layer, each shared blob at its owner
    (whose ParamSpec gives lr_mult and decay_mult, both 1 when unwritten)."""
    seen: set[int] = set()
    found = []
    for step in model.steps:
        for position, tensor in enumerate(model.layer_blobs[step.index]):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            spec = step.layer.params[position] if position < len(step.layer.params) else {}
            if position in fixed_blobs(step.layer.type, step.layer.fields):
                spec = {**spec, "lr_mult": 0.0}  # as the layer's setup forces it
            found.append(LearnableParam(f"{step.layer.name}[{position}]", tensor,
                                        float(spec.get("lr_mult", 1.0)), float(spec.get("decay_mult", 1.0))))
    return found


class Solver:
    """Caffe's SGD; subclasses override `compute_update` (and `history_sets`)."""

    history_sets = 1

    def __init__(self, settings, params: list[LearnableParam]):
        self.settings = settings
        self.params = params
        self.history = [torch.zeros_like(p.tensor, requires_grad=False)
                        for _ in range(self.history_sets) for p in params]
        for p in params:
            # Caffe sends no gradient to blobs with lr_mult 0 (param_propagate_down is false).
            p.tensor.requires_grad_(p.lr_mult != 0)

    def apply_update(self, rate: float, iteration: int) -> None:
        """One update at learning rate `rate`; `iteration` is Caffe's iter_ before it increments."""
        with torch.no_grad():
            grads = [p.tensor.grad if p.tensor.grad is not None else torch.zeros_like(p.tensor)
                     for p in self.params]
            self.clip(grads)
            for index, (param, grad) in enumerate(zip(self.params, grads)):
                grad = self.regularize(param, self.normalize(grad))
                update = self.compute_update(index, grad, rate * param.lr_mult, iteration)
                param.tensor.sub_(update)

    def clip(self, grads: list[Tensor]) -> None:
        threshold = self.settings.clip_gradients
        if threshold < 0 or not grads:
            return
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
        if norm > threshold:
            for g in grads:
                g.mul_(threshold / norm)

    def normalize(self, grad: Tensor) -> Tensor:
        size = self.settings.iter_size
        return grad * (1.0 / size) if size > 1 else grad

    def regularize(self, param: LearnableParam, grad: Tensor) -> Tensor:
        decay = self.settings.weight_decay * param.decay_mult
        if not decay:
            return grad
        w = param.tensor.detach()
        return grad + decay * (w if self.settings.regularization_type == "L2" else torch.sign(w))

    def second(self, index: int) -> int:
        """The position of a parameter's second history tensor."""
        return index + len(self.params)

    def compute_update(self, index: int, grad: Tensor, rate: float, iteration: int) -> Tensor:
        history = self.history[index]
        history.mul_(self.settings.momentum).add_(grad, alpha=rate)
        return history


class Nesterov(Solver):
    def compute_update(self, index, grad, rate, iteration):
        momentum = self.settings.momentum
        history = self.history[index]
        previous = history.clone()
        history.mul_(momentum).add_(grad, alpha=rate)
        return (1 + momentum) * history - momentum * previous


class AdaGrad(Solver):
    def compute_update(self, index, grad, rate, iteration):
        history = self.history[index]
        history.add_(grad * grad)
        return rate * grad / (history.sqrt() + self.settings.delta)


class RMSProp(Solver):
    def compute_update(self, index, grad, rate, iteration):
        decay = self.settings.rms_decay
        history = self.history[index]
        history.mul_(decay).add_(grad * grad, alpha=1 - decay)
        return rate * grad / (history.sqrt() + self.settings.delta)


class AdaDelta(Solver):
    history_sets = 2

    def compute_update(self, index, grad, rate, iteration):
        momentum, delta = self.settings.momentum, self.settings.delta
        squared_grads, squared_updates = self.history[index], self.history[self.second(index)]
        squared_grads.mul_(momentum).add_(grad * grad, alpha=1 - momentum)
        step = grad * torch.sqrt((squared_updates + delta) / (squared_grads + delta))
        squared_updates.mul_(momentum).add_(step * step, alpha=1 - momentum)
        return rate * step


class Adam(Solver):
    history_sets = 2

    def compute_update(self, index, grad, rate, iteration):
        beta1, beta2 = self.settings.momentum, self.settings.momentum2
        moment, second_moment = self.history[index], self.history[self.second(index)]
        moment.mul_(beta1).add_(grad, alpha=1 - beta1)
        second_moment.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        t = iteration + 1
        correction = (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
        return (rate * correction) * moment / (second_moment.sqrt() + self.settings.delta)


SOLVERS = {"SGD": Solver, "Nesterov": Nesterov, "AdaGrad": AdaGrad, "RMSProp": RMSProp,
           "AdaDelta": AdaDelta, "Adam": Adam}


def make_solver(settings, params: list[LearnableParam]) -> Solver:
    """The solver of `settings.type` (checked as the solver was read: compile.solver.check_solver_values)."""
    return SOLVERS[settings.type](settings, params)
