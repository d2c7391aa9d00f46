"""Caffe's Solver::Solve on the PyTorch runner: solver settings + nets -> trained weights.

Per iteration, as Solver::Step: test when due; `iter_size` forward/backward passes summing
gradients; the smoothed loss over `average_loss` iterations; one update; a snapshot when due.
After the last iteration: a final snapshot (snapshot_after_train) and a final test when due.

Determinism: before each forward pass the net's random generator (fillers, dropout) is reseeded
from (random_seed, iteration, pass), and data sources are stateless, so a resumed run repeats
an uninterrupted one exactly. random_seed -1 (Caffe's "from entropy") is taken as 0 here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from ..caffe.facts import FED_TYPES
from ..caffe.solverstate import Resumed, remove_stale_snapshot_temporaries, snapshot_paths, write_snapshot
from ..files import check_writable
from ..caffe.weights import StoredBlob
from ..compile.load import LoadOptions, StateChoice, load
from ..compile.rules import filter_net
from ..run.interpreter import CaffeNet, loss_weights
from .data import Shard, Source, make_source
from .lr_policy import learning_rate
from .report import Report
from ..compile.solver import NetChoice
from .signals import SNAPSHOT, STOP, Requests
from .solvers import Solver, learnable_params, make_solver


@dataclass
class TrainOptions:
    weights: Mapping[str, list[StoredBlob]] | None = None
    resumed: Resumed | None = None
    arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None  # data fed from Python, by layer
    shard: Shard = field(default_factory=Shard)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # Called after each iteration's backward passes (sums gradients across processes).
    reduce_gradients: Callable[[list], None] | None = None
    leader: bool = True  # tests, snapshots and reports only in the first process
    requests: Requests = field(default_factory=Requests)  # what signals ask for
    # The strongest request across processes (every process stops at the same iteration).
    agree: Callable[[int], int] | None = None
    load: LoadOptions = field(default_factory=LoadOptions)  # how the nets' configs compile (`--set`, imports)
    allow_python_layers: bool = False  # import and run the nets' Python layers (--allow-python-layers)


def load_choice(choice: NetChoice, how: LoadOptions):
    if choice.inline is not None:
        return filter_net(choice.inline, phase=choice.phase, stages=choice.stages, level=choice.level)
    return load(choice.path, StateChoice.of(choice.phase, choice.stages, choice.level), how).net


class Feeder:
    """The data layers of one net, each with its source."""

    def __init__(self, net, phase: str, seed: int, shard: Shard, arrays, device):
        self.sources: list[Source] = [make_source(layer, phase, seed, shard, arrays)
                                      for layer in net.layers if layer.type in FED_TYPES]
        self.device = device

    def batch(self, number: int) -> dict[str, torch.Tensor]:
        return {top: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
                for source in self.sources for top, array in source.batch(number).items()}


TRAIN_PASS, TEST_PASS = 0, 1


def pass_seed(seed: int, kind: int, number: int, index: int) -> int:
    """The generator seed of one forward pass (`index` within training iteration or test `number`)."""
    return int(np.random.SeedSequence([seed, kind, number, index]).generate_state(1)[0])


class TestNet:
    """A TEST-phase net sharing the training net's blobs by layer name (Caffe's ShareTrainedLayersWith)."""

    def __init__(self, net, test_iter: int, seed: int, options: TrainOptions, index: int):
        self.net, self.test_iter, self.index, self.seed = net, test_iter, index, seed
        self.feeder = Feeder(net, "TEST", seed, Shard(), options.arrays, options.device)
        self.device, self.allow_python_layers = options.device, options.allow_python_layers
        self.model: CaffeNet | None = None
        self.shared = False

    def run(self, train: CaffeNet, tests_done: int, initial) -> dict[str, torch.Tensor]:
        """Each output averaged over test_iter batches (the batches continue where the last test ended)."""
        if self.model is None:
            self.model = CaffeNet(self.net, phase="TEST", seed=self.seed, device=self.device,
                                  weights=stored_blobs(train.blob_arrays()) or initial,
                                  allow_python_layers=self.allow_python_layers)
        totals: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for i in range(self.test_iter):
                self._share(train)  # once both nets hold their blobs
                self.model.generator.manual_seed(pass_seed(self.seed, TEST_PASS, tests_done, i))
                outputs = self.model(self.feeder.batch(tests_done * self.test_iter + i))
                for name, value in outputs.items():
                    totals[name] = totals.get(name, 0) + value.detach().double().cpu()
        return {name: total / self.test_iter for name, total in totals.items()}

    def _share(self, train: CaffeNet) -> None:
        if self.shared or not _materialized(train) or not _materialized(self.model):
            return
        owners = {step.layer.name: train.layer_blobs[step.index] for step in train.steps}
        for step in self.model.steps:
            mine, theirs = self.model.layer_blobs[step.index], owners.get(step.layer.name)
            if theirs is not None and len(mine) and [t.shape for t in theirs] == [m.shape for m in mine]:
                self.model.layer_blobs[step.index] = torch.nn.ParameterList(list(theirs))
        self.shared = True


def _materialized(model: CaffeNet) -> bool:
    return all(step.ready or step.layer.type in FED_TYPES for step in model.steps)


class Trainer:
    def __init__(self, solver, train_choice: NetChoice, test_choices: list[NetChoice],
                 options: TrainOptions, report: Report):
        self.settings, self.options, self.report = solver, options, report
        if options.leader:  # as Caffe's CheckSnapshotWritePermissions: before the time is spent
            check_writable(snapshot_paths(solver.snapshot_prefix, 0)[0])
            for stale in remove_stale_snapshot_temporaries(solver.snapshot_prefix):
                report.line(f"removed '{stale}', left by a run killed while it wrote a snapshot")
        # Decaying weights and gradients reach denormal floats, which slow CPU arithmetic ~20x;
        # flushing them to zero changes values below 1.2e-38 only.
        torch.set_flush_denormal(True)
        self.seed = max(solver.random_seed, 0)
        self.net = load_choice(train_choice, options.load)
        resumed = options.resumed
        self.feeder = Feeder(self.net, "TRAIN", self.seed, options.shard, options.arrays, options.device)
        self.model = CaffeNet(self.net, phase="TRAIN", seed=self.seed,
                              weights=resumed.weights if resumed else options.weights,
                              device=options.device, allow_python_layers=options.allow_python_layers).to(options.device)
        # Blobs exist before any pass, so that test nets (which may run first) start from the same
        # values and no BatchNorm statistics move.
        self.model.materialize({name: tuple(blob.shape) for name, blob in self.feeder.batch(0).items()})
        self.initial = stored_blobs(self.model.blob_arrays())
        self.tests = [TestNet(load_choice(choice, options.load), iters, self.seed, options, i)
                      for i, (choice, iters) in enumerate(zip(test_choices, solver.test_iter))]
        self.iteration = resumed.iteration if resumed else 0
        self.current_step = resumed.current_step if resumed else 0
        self.solver: Solver | None = None
        self.losses: deque[float] = deque(maxlen=max(solver.average_loss, 1))
        self.snapshots: list[tuple[str, str]] = []
        self.snapshot_iteration: int | None = None
        self.stopped_by: str | None = None  # the signal that ended training early

    # ------------------------------------------------------------ the loop

    def solve(self) -> bool:
        """Train to max_iter, or until a signal asks to stop; True when all iterations ran."""
        s = self.settings
        while self.iteration < s.max_iter:
            if self._test_due(self.iteration):
                self.test_all()
            self.step()
            request = self._request()
            if (s.snapshot and self.iteration % s.snapshot == 0) or request == SNAPSHOT:
                self.snapshot()
            if request == STOP:
                self.stopped_by = self.options.requests.stopped_by or "a signal in another process"
                break
        periodic = bool(s.snapshot) and self.iteration % s.snapshot == 0  # Caffe's test: written in the loop
        if s.snapshot_after_train and not periodic and self.snapshot_iteration != self.iteration:
            self.snapshot()
        if self.stopped_by is None and s.test_interval and self.iteration % s.test_interval == 0:
            self.test_all()
        self.report.finish()
        return self.stopped_by is None

    def _request(self) -> int:
        request = self.options.requests.take()
        return self.options.agree(request) if self.options.agree else request

    def _test_due(self, iteration: int) -> bool:
        s = self.settings
        return bool(s.test_interval) and iteration % s.test_interval == 0 and (
            iteration > 0 or s.test_initialization)

    def step(self) -> float:
        """One iteration: forward/backward iter_size times, then one update. Returns the loss."""
        s = self.settings
        self.model.zero_grad(set_to_none=True)
        loss_sum, outputs = 0.0, {}
        for k in range(s.iter_size):
            self.model.generator.manual_seed(pass_seed(self.seed, TRAIN_PASS, self.iteration, k))
            outputs = self.model(self.feeder.batch(self.iteration * s.iter_size + k))
            loss = self.model.loss(outputs)
            if loss is not None:
                loss.backward()
                loss_sum += loss.item()
        if self.options.reduce_gradients:
            self.options.reduce_gradients(self._solver().params)
        loss = loss_sum / s.iter_size
        self.losses.append(loss)
        rate, self.current_step = learning_rate(s, self.iteration, self.current_step)
        self._display(loss, rate, outputs)
        self._solver().apply_update(rate, self.iteration)
        self.iteration += 1
        return loss

    def _solver(self) -> Solver:
        """The solver, made (with a resumed history) at the first update or snapshot: a snapshot
        before any iteration, resumed at max_iter or trained with max_iter 0, still holds it."""
        if self.solver is None:
            self.solver = self._make_solver()
        return self.solver

    def _make_solver(self) -> Solver:
        solver = make_solver(self.settings, learnable_params(self.model))
        resumed = self.options.resumed
        if resumed:
            if len(resumed.history) != len(solver.history):  # Caffe checks this on every restore
                from ..errors import CaffeconfError
                raise CaffeconfError.at(None, f"the solver state holds {len(resumed.history)} history blobs, "
                                              f"this net and solver need {len(solver.history)}")
            for mine, saved in zip(solver.history, resumed.history):
                mine.copy_(torch.from_numpy(saved.reshape(mine.shape)))
        return solver

    def _display(self, loss: float, rate: float, outputs) -> None:
        smoothed = sum(self.losses) / len(self.losses)
        if not self.options.leader:
            return
        self.report.record(self.iteration, "train", "loss", smoothed)
        self.report.record(self.iteration, "lr", "lr", rate)
        self.report.progress(self.iteration, smoothed, rate)
        if self.settings.display and self.iteration % self.settings.display == 0:
            self.report.line(f"Iteration {self.iteration}, loss = {smoothed:.6g}, lr = {rate:.6g}")
            for line in output_lines(self.net, "Train net", outputs):
                self.report.line("    " + line)
            self.report.flush()

    # ------------------------------------------------------------ test, snapshot

    def test_all(self) -> None:
        if not self.options.leader:
            return
        done = tests_before(self.settings, self.iteration)
        for test in self.tests:
            scores = test.run(self.model, done, self.initial)
            self.report.line(f"Iteration {self.iteration}, Testing net (#{test.index})")
            for name, value in scores.items():
                for element in value.reshape(-1).tolist():
                    self.report.record(self.iteration, f"test{test.index}", name, element)
            for line in output_lines(test.net, "Test net", scores):
                self.report.line("    " + line)

    def snapshot(self) -> None:
        if not self.options.leader:
            return
        history = [h.detach().cpu().numpy() for h in self._solver().history]
        paths = write_snapshot(self.settings.snapshot_prefix, self.iteration, self.current_step,
                               self.net, self.model.blob_arrays(), history)
        self.snapshots.append(paths)
        self.snapshot_iteration = self.iteration
        self.report.line(f"Snapshotting to {paths[0]} and {paths[1]}")


def stored_blobs(arrays: Mapping[str, list[np.ndarray]]) -> dict[str, list[StoredBlob]]:
    return {name: [StoredBlob(a.ravel(), tuple(a.shape), False) for a in blobs] for name, blobs in arrays.items()}


def tests_before(solver, iteration: int) -> int:
    """How many tests ran before `iteration` (where each test net's batches continue from)."""
    if not solver.test_interval:
        return 0
    count = (iteration - 1) // solver.test_interval + 1 if iteration > 0 else 0
    return count - (0 if solver.test_initialization or iteration == 0 else 1)


def output_lines(net, title: str | None, outputs: Mapping[str, torch.Tensor]) -> list[str]:
    """Caffe's `Train net output #k: name = value (* weight = weighted loss)` lines
    (without `title`, `name = value ...` as `caffe test` ends)."""
    weights = {top: weight for layer in net.layers for top, weight in zip(layer.tops, loss_weights(layer))}
    lines, index = [], 0
    for name, value in outputs.items():
        for element in value.detach().reshape(-1).tolist():
            weight = weights.get(name, 0.0)
            suffix = f" (* {weight:g} = {element * weight:.6g} loss)" if weight else ""
            lead = f"{title} output #{index}: " if title else ""
            lines.append(f"{lead}{name} = {element:.6g}{suffix}")
            index += 1
    return lines
