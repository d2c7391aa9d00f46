"""Runner speed and memory, side by side in one run (a script, not a test).

For GoogLeNet and ResNet-50 (the deploy prototxts in ../shared/models), with the
same random weights everywhere:
  caffeconf   the interpreter (caffeconf.run.CaffeNet) on the flat net
  plain       the same architecture written directly as a torch nn.Module
  opencv      cv2.dnn.readNetFromCaffe on the prototxt and the .caffemodel we wrote
  onnxruntime ONNX Runtime on `caffeconf export`'s model (CPU, same threads, no spinning; when installed)
It measures forward at batch 1 and 10, forward+backward at batch 10 (not OpenCV:
it has no backward), and peak memory of a batch-10 forward in a fresh process (CUDA:
the allocator's peak; CPU: the peak of the running sum of the pass's allocations, from
the profiler; weights and input excluded), then prints the ratios. (Peak RSS growth
is no measure on the CPU: whether glibc hands freed blocks back decides it, and it
ranged from 17 to 173 MiB for the same plain module.)

Run: python benchmarks/run.py [--quick] [--device cpu|cuda] [--nets googlenet resnet50]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caffeconf.commands.engines import may_use_onnxruntime  # noqa: E402
from caffeconf.compile.rules import filter_net  # noqa: E402
from caffeconf.run.device import select_device, synchronize  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.memory import running_peak  # noqa: E402
from caffeconf.compile.load import StateChoice, load  # noqa: E402
from caffeconf.caffe.weights import write_caffemodel  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
NETS = {"googlenet": MODELS / "bvlc_googlenet" / "deploy.prototxt",
        "resnet50": MODELS / "resnet" / "ResNet-50-deploy.prototxt"}


# ------------------------------------------------------------ plain modules

class Inception(nn.Module):
    def __init__(self, cin, n1, n3r, n3, n5r, n5, proj):
        super().__init__()
        self.b1 = nn.Conv2d(cin, n1, 1)
        self.b3r, self.b3 = nn.Conv2d(cin, n3r, 1), nn.Conv2d(n3r, n3, 3, padding=1)
        self.b5r, self.b5 = nn.Conv2d(cin, n5r, 1), nn.Conv2d(n5r, n5, 5, padding=2)
        self.proj = nn.Conv2d(cin, proj, 1)

    def forward(self, x):
        pooled = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
        return torch.cat([F.relu(self.b1(x)), F.relu(self.b3(F.relu(self.b3r(x)))),
                          F.relu(self.b5(F.relu(self.b5r(x)))), F.relu(self.proj(pooled))], 1)


GOOGLENET_BLOCKS = [("3a", 192, 64, 96, 128, 16, 32, 32), ("3b", 256, 128, 128, 192, 32, 96, 64),
                    ("4a", 480, 192, 96, 208, 16, 48, 64), ("4b", 512, 160, 112, 224, 24, 64, 64),
                    ("4c", 512, 128, 128, 256, 24, 64, 64), ("4d", 512, 112, 144, 288, 32, 64, 64),
                    ("4e", 528, 256, 160, 320, 32, 128, 128), ("5a", 832, 256, 160, 320, 32, 128, 128),
                    ("5b", 832, 384, 192, 384, 48, 128, 128)]


class GoogLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.conv2r, self.conv2 = nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, padding=1)
        self.blocks = nn.ModuleDict({name: Inception(*spec) for name, *spec in GOOGLENET_BLOCKS})
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.local_response_norm(x, 5, 1e-4, 0.75)
        x = F.local_response_norm(F.relu(self.conv2(F.relu(self.conv2r(x)))), 5, 1e-4, 0.75)
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        for name, block in self.blocks.items():
            x = block(x)
            if name in ("3b", "4e"):
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = F.avg_pool2d(x, 7, 1)
        return F.softmax(self.fc(x.flatten(1)), 1)

    def caffe_names(self):
        names = {"conv1": "conv1/7x7_s2", "conv2r": "conv2/3x3_reduce", "conv2": "conv2/3x3",
                 "fc": "loss3/classifier"}
        parts = {"b1": "1x1", "b3r": "3x3_reduce", "b3": "3x3", "b5r": "5x5_reduce", "b5": "5x5",
                 "proj": "pool_proj"}
        for block, *_ in GOOGLENET_BLOCKS:
            names.update({f"blocks.{block}.{p}": f"inception_{block}/{c}" for p, c in parts.items()})
        return names


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride, project):
        super().__init__()
        self.a = nn.Conv2d(cin, width, 1, stride, bias=False)
        self.b = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.c = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn_a, self.bn_b, self.bn_c = nn.BatchNorm2d(width), nn.BatchNorm2d(width), nn.BatchNorm2d(width * 4)
        self.short = nn.Conv2d(cin, width * 4, 1, stride, bias=False) if project else None
        self.bn_short = nn.BatchNorm2d(width * 4) if project else None

    def forward(self, x):
        y = F.relu(self.bn_a(self.a(x)))
        y = F.relu(self.bn_b(self.b(y)))
        y = self.bn_c(self.c(y))
        return F.relu(y + (self.bn_short(self.short(x)) if self.short is not None else x))


RESNET_STAGES = [(2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 512)]


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64)
        blocks, cin = {}, 64
        for stage, count, width in RESNET_STAGES:
            for i in range(count):
                blocks[f"{stage}{'abcdef'[i]}"] = Bottleneck(cin, width, 2 if i == 0 and stage > 2 else 1, i == 0)
                cin = width * 4
        self.blocks = nn.ModuleDict(blocks)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, ceil_mode=True)
        for block in self.blocks.values():
            x = block(x)
        return F.softmax(self.fc(F.avg_pool2d(x, 7, 1).flatten(1)), 1)

    def caffe_names(self):
        names = {"conv1": "conv1", "fc": "fc1000", "bn1": ("bn_conv1", "scale_conv1")}
        for block in self.blocks:
            for part, branch in (("a", "2a"), ("b", "2b"), ("c", "2c"), ("short", "1")):
                names[f"blocks.{block}.{part}"] = f"res{block}_branch{branch}"
                bn_part = "bn_short" if part == "short" else f"bn_{part}"
                names[f"blocks.{block}.{bn_part}"] = (f"bn{block}_branch{branch}", f"scale{block}_branch{branch}")
        return names


def load_plain(module: nn.Module, blobs: dict[str, list[np.ndarray]]) -> nn.Module:
    """Copy Caffe blobs into the plain module; BatchNorm + Scale become one affine BatchNorm2d."""
    modules = dict(module.named_modules())
    with torch.no_grad():
        for path, source in module.caffe_names().items():
            target = modules.get(path)
            if target is None:
                continue
            if isinstance(source, tuple):
                mean, var, factor = blobs[source[0]]
                scale = 0.0 if factor[0] == 0 else 1.0 / factor[0]
                target.running_mean.copy_(torch.from_numpy(mean * scale))
                target.running_var.copy_(torch.from_numpy(var * scale))
                gamma, beta = blobs[source[1]]
                target.weight.copy_(torch.from_numpy(gamma))
                target.bias.copy_(torch.from_numpy(beta))
                target.eps = 1e-5
            else:
                weights = blobs[source]
                target.weight.copy_(torch.from_numpy(weights[0]).reshape(target.weight.shape))
                if target.bias is not None:
                    target.bias.copy_(torch.from_numpy(weights[1]))
    return module.eval()


PLAIN = {"googlenet": GoogLeNet, "resnet50": ResNet50}


# --------------------------------------------------------------- set-up

def optimized(model: CaffeNet, device) -> CaffeNet:
    """The inference set-up: channels-last memory; each convolution fused with its BatchNorm/Scale
    chain, residual sum and ReLU, its weights kept in oneDNN's layout (fold_for_inference)."""
    model = model.to(memory_format=torch.channels_last)
    model.fold_for_inference()
    return model


def caffeconf_model(name: str, device) -> tuple[CaffeNet, dict[str, list[np.ndarray]]]:
    """The net with `run --random-weights`' seeded values (deploy nets have no fillers)."""
    net = load(str(NETS[name]), StateChoice("TEST")).net
    model = CaffeNet(net, seed=0, random_weights=True)
    with torch.no_grad():
        model({"data": torch.zeros(1, 3, 224, 224)})  # creates the blobs
    return model.to(device), model.blob_arrays()


# ------------------------------------------------------------ measuring

def best_ms(action, repeats: int, device) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        action()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def forward(module, x, device):
    def action():
        with torch.no_grad():
            module(x)
    return action


def forward_backward(module, x):
    def action():
        out = module(x)
        out = out["prob"] if isinstance(out, dict) else out
        out.sum().backward()
    return action


def as_input(module):
    """The plain module takes a tensor; CaffeNet takes {blob: tensor}."""
    if isinstance(module, CaffeNet):
        return lambda x: module({"data": x})
    return module


def peak_memory_mb(name: str, variant: str, device_name: str, batch: int) -> float:
    """Peak memory of one forward, measured in a fresh process so earlier runs do not count."""
    result = subprocess.run([sys.executable, __file__, "--measure-memory", name, variant, device_name, str(batch)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def measure_memory(name: str, variant: str, device_name: str, batch: int) -> None:
    device = select_device(device_name)
    model, blobs = caffeconf_model(name, device)
    runner = as_input(optimized(model, device)) if variant == "caffeconf" else load_plain(PLAIN[name](), blobs).to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    if variant == "caffeconf":
        x = x.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        forward(runner, x, device)()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        forward(runner, x, device)()
        print((torch.cuda.max_memory_allocated(device) - base) / 2**20)
        return
    forward(runner, x, device)()  # warm-up: lazily created blobs and one-time caches do not count
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        forward(runner, x, device)()
    print(running_peak(profiler) / 2**20)


def opencv_forward(prototxt: Path, blobs, net, batch: int):
    import cv2

    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "w.caffemodel"
        write_caffemodel(weights, net, blobs)
        reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)

    def action():
        reference.setInput(x)
        reference.forward()
    return action


def onnxruntime_forward(net, blobs, batch: int):
    """ONNX Runtime on the exported net, or None without the onnx extra."""
    try:
        from caffeconf.export.graph import export_net
        from caffeconf.export.ort import cpu_session
    except ImportError:
        return None
    shape = (batch, 3, 224, 224)
    session = cpu_session(export_net(net, blobs, {"data": shape}), torch.get_num_threads())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return lambda: session.run(None, {"data": x})


def bench(name: str, device, repeats: int, with_memory: bool) -> None:
    model, blobs = caffeconf_model(name, device)
    plain = load_plain(PLAIN[name](), blobs).to(device)
    ours = as_input(optimized(model, device))
    check = torch.randn(2, 3, 224, 224, device=device)
    with torch.no_grad():
        difference = (ours(check)["prob"] - plain(check)).abs().max().item()
    print(f"\n{name} on {device}: max |caffeconf - plain| = {difference:.2e}")
    rows = []
    for batch in (1, 10):
        x = torch.randn(batch, 3, 224, 224, device=device)
        row = {"caffeconf": best_ms(forward(ours, x.contiguous(memory_format=torch.channels_last), device),
                                    repeats, device),
               "plain": best_ms(forward(plain, x, device), repeats, device)}
        if device.type == "cpu":
            net = filter_net(load(str(NETS[name]), StateChoice("TEST")).net, phase="TEST")
            row["opencv"] = best_ms(opencv_forward(NETS[name], blobs, net, batch), repeats, device)
            ort_forward = onnxruntime_forward(net, blobs, batch)
            if ort_forward is not None:
                row["onnxruntime"] = best_ms(ort_forward, repeats, device)
        rows.append((f"forward, batch {batch}", row))
    if device.type == "cuda":
        rows.append(("forward, batch 10, bf16+compile", _fast_gpu_row(ours, plain, device, repeats)))
    x = torch.randn(10, 3, 224, 224, device=device)
    rows.append(("forward+backward, batch 10", {
        "caffeconf": best_ms(forward_backward(ours, x), max(1, repeats // 2), device),
        "plain": best_ms(forward_backward(plain, x), max(1, repeats // 2), device)}))
    for label, row in rows:
        ratios = "  ".join(f"{k}/caffeconf {row[k] / row['caffeconf']:.2f}" for k in row if k != "caffeconf")
        times = "  ".join(f"{k} {v:8.1f} ms" for k, v in row.items())
        print(f"  {label:<28} {times}   ({ratios})")
        if "onnxruntime" in row:
            # --engine auto, once it has measured the net, takes the engine whose pass is the faster
            # (for `time`, and for a `run` whose passes outweigh ONNX Runtime's setup)
            auto = min(row["caffeconf"], row["onnxruntime"]) if may_use_onnxruntime(device.type) else row["caffeconf"]
            print(f"  {'':<28} caffeconf (PyTorch engine)/onnxruntime {row['caffeconf'] / row['onnxruntime']:.2f}; "
                  f"auto (measured)/onnxruntime {auto / row['onnxruntime']:.2f} (target <= 1.0)")
    if with_memory:
        ours_mb = peak_memory_mb(name, "caffeconf", device.type, 10)
        plain_mb = peak_memory_mb(name, "plain", device.type, 10)
        print(f"  peak allocated, forward batch 10: caffeconf {ours_mb:.0f} MiB  plain {plain_mb:.0f} MiB "
              f"(caffeconf/plain {ours_mb / max(plain_mb, 1e-9):.2f})")


def _fast_gpu_row(ours, plain, device, repeats) -> dict[str, float]:
    """caffeconf with bf16 autocast and torch.compile against the plain module in fp32 (the target
    is 1.5x its throughput)."""
    x = torch.randn(10, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(lambda v: ours(v)["prob"])

    def fast():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            compiled(x)
    return {"caffeconf": best_ms(fast, repeats, device), "plain": best_ms(forward(plain, x, device), repeats, device)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no memory runs")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--nets", nargs="+", choices=sorted(NETS), default=sorted(NETS))
    parser.add_argument("--measure-memory", nargs=4, metavar=("NET", "VARIANT", "DEVICE", "BATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_memory:
        name, variant, device_name, batch = args.measure_memory
        measure_memory(name, variant, device_name, int(batch))
        return 0
    device = select_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    for name in args.nets:
        bench(name, device, 2 if args.quick else 5, not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
