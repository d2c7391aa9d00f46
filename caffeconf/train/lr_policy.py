"""(solver settings, iteration) -> learning rate, with Caffe's formulas (SGDSolver::GetLearningRate).

`multistep` is the one stateful policy: Caffe advances `current_step` whenever the iteration
reaches the next stepvalue, and saves it in the .solverstate.
"""

from __future__ import annotations

import math


def learning_rate(solver, iteration: int, current_step: int = 0) -> tuple[float, int]:
    """The rate at `iteration` and the (possibly advanced) multistep position."""
    policy = solver.lr_policy
    if policy == "multistep":
        current_step = advance_multistep(solver.stepvalue, iteration, current_step)
        return solver.base_lr * solver.gamma ** current_step, current_step
    return POLICIES[policy](solver, iteration), current_step  # (policies checked as the solver was read)


def advance_multistep(stepvalues, iteration: int, current_step: int) -> int:
    while current_step < len(stepvalues) and iteration >= stepvalues[current_step]:
        current_step += 1
    return current_step


# Caffe's formulas, by lr_policy (multistep, stateful, is `learning_rate`'s own)
POLICIES = {
    "fixed": lambda s, it: s.base_lr,
    "step": lambda s, it: s.base_lr * s.gamma ** (it // s.stepsize),
    "exp": lambda s, it: s.base_lr * s.gamma ** it,
    "inv": lambda s, it: s.base_lr * (1 + s.gamma * it) ** (-s.power),
    "poly": lambda s, it: s.base_lr * (1 - it / s.max_iter) ** s.power,
    "sigmoid": lambda s, it: s.base_lr * (1 / (1 + math.exp(-s.gamma * (it - s.stepsize)))),
}
