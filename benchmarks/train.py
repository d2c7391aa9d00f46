"""Training speed: caffeconf's trainer vs a hand-written PyTorch loop (a script, not a test).

GoogLeNet (configs/googlenet.yaml, TRAIN phase: three losses, the auxiliary ones weighted 0.3)
at batch 32 with SGD (lr 0.01, momentum 0.9, weight_decay 2e-4; biases at twice the rate and no
decay, as the config's lr_mult/decay_mult say), fed the same random images from memory:
  caffeconf   caffeconf.train.loop.Trainer: the interpreter plus Caffe's update rule
  plain       the same architecture as a plain nn.Module with torch.optim.SGD
Prints images/s of each and the time ratio caffeconf / plain (target <= 1.10).

Run: python benchmarks/train.py [--iterations 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caffeconf.caffe import caffe_pb2  # noqa: E402
from caffeconf.run.device import select_device, synchronize  # noqa: E402
from caffeconf.train.loop import TrainOptions, Trainer  # noqa: E402
from caffeconf.train.report import Report  # noqa: E402
from caffeconf.compile.solver import NetChoice  # noqa: E402


def _forward_benchmark():
    """benchmarks/run.py's inception block and block table (one definition of the architecture)."""
    spec = importlib.util.spec_from_file_location("forward_benchmark", Path(__file__).with_name("run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _forward_benchmark()


class AuxiliaryHead(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.conv, self.fc, self.classifier = nn.Conv2d(cin, 128, 1), nn.Linear(128 * 4 * 4, 1024), nn.Linear(1024, 1000)

    def forward(self, x):
        x = F.relu(self.conv(F.avg_pool2d(x, 5, 3, ceil_mode=True)))
        return self.classifier(F.dropout(F.relu(self.fc(x.flatten(1))), 0.7, self.training))


class TrainingGoogLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.conv2r, self.conv2 = nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, padding=1)
        self.blocks = nn.ModuleDict({name: RUN.Inception(*spec) for name, *spec in RUN.GOOGLENET_BLOCKS})
        self.aux1, self.aux2 = AuxiliaryHead(512), AuxiliaryHead(528)
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x, label):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.local_response_norm(x, 5, 1e-4, 0.75)
        x = F.local_response_norm(F.relu(self.conv2(F.relu(self.conv2r(x)))), 5, 1e-4, 0.75)
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        loss = 0
        for name, block in self.blocks.items():
            x = block(x)
            if name in ("4a", "4d"):
                head = self.aux1 if name == "4a" else self.aux2
                loss = loss + 0.3 * F.cross_entropy(head(x), label)
            if name in ("3b", "4e"):
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = F.dropout(F.avg_pool2d(x, 7, 1).flatten(1), 0.4, self.training)
        return loss + F.cross_entropy(self.fc(x), label)


BATCH = 32  # configs/googlenet.yaml's TRAIN batch_size


def solver(iterations: int) -> caffe_pb2.SolverParameter:
    return caffe_pb2.SolverParameter(type="SGD", base_lr=0.01, momentum=0.9, weight_decay=2e-4, lr_policy="fixed",
                                     max_iter=iterations, display=0, snapshot_after_train=False)


def images(batch: int):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(batch, 3, 224, 224)).astype(np.float32),
            rng.integers(0, 1000, size=batch).astype(np.float32))


def time_caffeconf(batch: int, iterations: int, device) -> float:
    from caffeconf.compile.load import StateChoice, load

    net = load(str(ROOT / "configs" / "googlenet.yaml"), StateChoice("TRAIN")).net
    data_layer = next(layer for layer in net.layers if layer.type == "Data")
    data, label = images(batch)
    options = TrainOptions(arrays={data_layer.name: {"data": data, "label": label}}, device=device)
    trainer = Trainer(solver(iterations + 1), NetChoice(str(ROOT / "configs" / "googlenet.yaml"), "TRAIN"), [],
                      options, Report(None, iterations, quiet=True))
    trainer.step()  # warm-up (creates the blobs and the solver history)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.step()
    synchronize(device)
    return (time.perf_counter() - start) / iterations


def time_plain(batch: int, iterations: int, device) -> float:
    torch.manual_seed(0)
    model = TrainingGoogLeNet().to(device).train()
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    optimizer = torch.optim.SGD([{"params": weights, "lr": 0.01, "weight_decay": 2e-4},
                                 {"params": biases, "lr": 0.02, "weight_decay": 0.0}], lr=0.01, momentum=0.9)
    data, label = images(batch)

    def step():
        # the same host -> device copy of each batch as the trainer's feed
        x, y = torch.from_numpy(data).to(device), torch.from_numpy(label).long().to(device)
        optimizer.zero_grad(set_to_none=True)
        model(x, y).backward()
        optimizer.step()

    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / iterations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations (after one warm-up)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    torch.set_flush_denormal(True)
    ours = time_caffeconf(BATCH, args.iterations, device)
    plain = time_plain(BATCH, args.iterations, device)
    print(f"GoogLeNet training, batch {BATCH}, {device}, {torch.get_num_threads()} threads")
    print(f"  caffeconf  {ours * 1000:9.1f} ms/iter  {BATCH / ours:8.1f} images/s")
    print(f"  plain      {plain * 1000:9.1f} ms/iter  {BATCH / plain:8.1f} images/s")
    print(f"  ratio (caffeconf / plain time): {ours / plain:.3f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
