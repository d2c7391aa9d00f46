"""Solvers and learning-rate policies against Caffe's rules computed by hand with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.caffe import caffe_pb2  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.train.lr_policy import learning_rate  # noqa: E402
from caffeconf.train.solvers import learnable_params, make_solver  # noqa: E402


def small_net() -> Net:
    """Input -> InnerProduct (lr_mult 1 / 2, decay_mult 1 / 0) -> EuclideanLoss against a target."""
    layers = (
        Layer("input", "Input", (), ("data", "target"),
              {"input_param": {"shape": [{"dim": [4, 3]}, {"dim": [4, 2]}]}}),
        Layer("ip", "InnerProduct", ("data",), ("ip",),
              {"inner_product_param": {"num_output": 2, "weight_filler": {"type": "gaussian", "std": 0.5},
                                       "bias_filler": {"type": "uniform", "min": -0.5, "max": 0.5}},
               "param": [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}]}),
        Layer("loss", "EuclideanLoss", ("ip", "target"), ("loss",), {}),
    )
    return Net("small", layers)


INPUTS = {"data": torch.tensor(np.random.default_rng(3).normal(size=(4, 3)), dtype=torch.float32),
          "target": torch.tensor(np.random.default_rng(4).normal(size=(4, 2)), dtype=torch.float32)}


def gradients(model) -> list[np.ndarray]:
    model.zero_grad(set_to_none=True)
    model.loss(model(INPUTS)).backward()
    return [p.tensor.grad.numpy().astype(np.float64) for p in learnable_params(model)]


def solver_settings(**fields) -> caffe_pb2.SolverParameter:
    return caffe_pb2.SolverParameter(base_lr=0.1, **fields)


def reference_update(kind, s, w, g, history, lr, t):
    """Caffe's ComputeUpdateValue for one blob (float64); returns (update, history)."""
    if kind == "SGD":
        h = s.momentum * history[0] + lr * g
        return h, [h]
    if kind == "Nesterov":
        h = s.momentum * history[0] + lr * g
        return (1 + s.momentum) * h - s.momentum * history[0], [h]
    if kind == "AdaGrad":
        h = history[0] + g * g
        return lr * g / (np.sqrt(h) + s.delta), [h]
    if kind == "RMSProp":
        h = s.rms_decay * history[0] + (1 - s.rms_decay) * g * g
        return lr * g / (np.sqrt(h) + s.delta), [h]
    if kind == "AdaDelta":
        h = s.momentum * history[0] + (1 - s.momentum) * g * g
        step = g * np.sqrt((history[1] + s.delta) / (h + s.delta))
        return lr * step, [h, s.momentum * history[1] + (1 - s.momentum) * step * step]
    if kind == "Adam":
        m = s.momentum * history[0] + (1 - s.momentum) * g
        v = s.momentum2 * history[1] + (1 - s.momentum2) * g * g
        correction = math.sqrt(1 - s.momentum2 ** t) / (1 - s.momentum ** t)
        return lr * correction * m / (np.sqrt(v) + s.delta), [m, v]
    raise AssertionError(kind)


CASES = {
    "SGD": dict(momentum=0.9, weight_decay=0.01),
    "Nesterov": dict(momentum=0.9, weight_decay=0.01),
    "AdaGrad": dict(weight_decay=0.01, delta=1e-6),
    "RMSProp": dict(rms_decay=0.9, delta=1e-6, weight_decay=0.01),
    "AdaDelta": dict(momentum=0.95, delta=1e-6, weight_decay=0.01),
    "Adam": dict(momentum=0.9, momentum2=0.999, delta=1e-8, weight_decay=0.01),
}


@pytest.mark.parametrize("regularization", ["L2", "L1"])
@pytest.mark.parametrize("kind", sorted(CASES))
def test_three_updates_match_caffe_rules(kind, regularization):
    settings = solver_settings(type=kind, regularization_type=regularization, **CASES[kind])
    model = CaffeNet(small_net(), phase="TRAIN", seed=1)
    model(INPUTS)
    params = learnable_params(model)
    solver = make_solver(settings, params)
    weights = [p.tensor.detach().numpy().astype(np.float64).copy() for p in params]
    histories = [[np.zeros_like(w)] * solver.history_sets for w in weights]
    for iteration in range(3):
        grads = gradients(model)
        solver.apply_update(settings.base_lr, iteration)
        for i, (param, g) in enumerate(zip(params, grads)):
            decay = settings.weight_decay * param.decay_mult
            g = g + decay * (weights[i] if regularization == "L2" else np.sign(weights[i]))
            update, histories[i] = reference_update(kind, settings, weights[i], g, histories[i],
                                                    settings.base_lr * param.lr_mult, iteration + 1)
            weights[i] = weights[i] - update
            np.testing.assert_allclose(param.tensor.detach().numpy(), weights[i], rtol=2e-5, atol=1e-6)
    saved = [h.numpy() for h in solver.history]
    expected = [hist[k] for k in range(solver.history_sets) for hist in histories]
    for mine, theirs in zip(saved, expected):
        np.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=1e-7)


def test_clip_gradients_scales_by_the_global_norm_before_iter_size_normalization():
    settings = solver_settings(type="SGD", clip_gradients=0.05, iter_size=2)
    model = CaffeNet(small_net(), phase="TRAIN", seed=1)
    model(INPUTS)
    params = learnable_params(model)
    solver = make_solver(settings, params)
    before = [p.tensor.detach().numpy().copy() for p in params]
    grads = gradients(model)
    norm = math.sqrt(sum((g * g).sum() for g in grads))
    assert norm > 0.05
    solver.apply_update(settings.base_lr, 0)
    for param, w, g, in zip(params, before, grads):
        expected = w - settings.base_lr * param.lr_mult * g * (0.05 / norm) / 2
        np.testing.assert_allclose(param.tensor.detach().numpy(), expected, rtol=1e-5, atol=1e-7)


def test_lr_mult_zero_blobs_get_no_gradient_and_never_move():
    net = small_net()
    layer = net.layers[1]
    frozen = Layer(layer.name, layer.type, layer.bottoms, layer.tops,
                   {**layer.fields, "param": [{"lr_mult": 0.0}, {"lr_mult": 1.0}]})
    model = CaffeNet(Net("n", (net.layers[0], frozen, net.layers[2])), phase="TRAIN", seed=1)
    model(INPUTS)
    params = learnable_params(model)
    solver = make_solver(solver_settings(type="SGD", momentum=0.9, weight_decay=0.1), params)
    before = params[0].tensor.detach().clone()
    model.loss(model(INPUTS)).backward()
    solver.apply_update(0.1, 0)
    assert params[0].tensor.grad is None
    assert torch.equal(params[0].tensor.detach(), before)


def test_batch_norm_statistics_are_never_learned_even_without_param_specs():
    """BVLC's BatchNorm setup adds lr_mult 0 specs for its mean, variance and normalizer: weight
    decay must not shrink them (with lr_mult 1 it would)."""
    layers = (Layer("input", "Input", (), ("data", "target"),
                    {"input_param": {"shape": [{"dim": [4, 3, 2, 2]}, {"dim": [4, 3, 2, 2]}]}}),
              Layer("scale", "Scale", ("data",), ("scaled",), {"scale_param": {"filler": {"value": 2.0}}}),
              Layer("bn", "BatchNorm", ("scaled",), ("bn",), {}),
              Layer("loss", "EuclideanLoss", ("bn", "target"), ("loss",), {}))
    feed = {name: torch.tensor(np.random.default_rng(seed).normal(size=(4, 3, 2, 2)), dtype=torch.float32)
            for name, seed in (("data", 5), ("target", 6))}
    model = CaffeNet(Net("n", layers), phase="TRAIN", seed=1)
    model(feed)
    params = learnable_params(model)
    assert [p.lr_mult for p in params] == [1.0, 0.0, 0.0, 0.0]
    solver = make_solver(solver_settings(type="SGD", momentum=0.9, weight_decay=0.5), params)
    model.zero_grad(set_to_none=True)
    model.loss(model(feed)).backward()
    after_forward = [p.tensor.detach().clone() for p in params[1:]]  # the moving averages moved
    solver.apply_update(0.1, 0)
    for param, before in zip(params[1:], after_forward):
        assert torch.equal(param.tensor.detach(), before)


def test_the_solvers_and_policies_are_those_the_solver_check_accepts():
    from caffeconf.caffe.facts import LR_POLICIES, SOLVER_TYPES
    from caffeconf.train.lr_policy import POLICIES as FORMULAS
    from caffeconf.train.solvers import SOLVERS

    assert tuple(SOLVERS) == SOLVER_TYPES
    assert sorted([*FORMULAS, "multistep"]) == sorted(LR_POLICIES)


POLICIES = {
    "fixed": (dict(), lambda s, it: s.base_lr),
    "step": (dict(gamma=0.5, stepsize=30), lambda s, it: s.base_lr * s.gamma ** math.floor(it / s.stepsize)),
    "exp": (dict(gamma=0.99), lambda s, it: s.base_lr * s.gamma ** it),
    "inv": (dict(gamma=1e-3, power=0.75), lambda s, it: s.base_lr * (1 + s.gamma * it) ** -s.power),
    "poly": (dict(power=2.0, max_iter=200), lambda s, it: s.base_lr * (1 - it / s.max_iter) ** s.power),
    "sigmoid": (dict(gamma=-0.05, stepsize=100),
                lambda s, it: s.base_lr / (1 + math.exp(-s.gamma * (it - s.stepsize)))),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_learning_rate_policies_follow_caffe_formulas(policy):
    fields, formula = POLICIES[policy]
    settings = caffe_pb2.SolverParameter(base_lr=0.01, lr_policy=policy, **fields)
    for iteration in (0, 1, 29, 30, 31, 99, 100, 150, 199):
        rate, _ = learning_rate(settings, iteration)
        assert rate == pytest.approx(formula(settings, iteration), rel=1e-6), iteration


def test_multistep_advances_current_step_at_each_stepvalue():
    settings = caffe_pb2.SolverParameter(base_lr=1.0, lr_policy="multistep", gamma=0.1, stepvalue=[10, 20, 20, 35])
    step, rates = 0, {}
    for iteration in range(40):
        rates[iteration], step = learning_rate(settings, iteration, step)
    assert rates[9] == 1.0 and rates[10] == pytest.approx(0.1)
    assert rates[19] == pytest.approx(0.1) and rates[20] == pytest.approx(0.001)  # both 20s pass at once
    assert rates[35] == pytest.approx(1e-4) and step == 4
