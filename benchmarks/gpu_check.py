"""Every GPU check in one run: environment, the gpu-marked tests, CUDA-vs-CPU parity, inference and
training throughput, and memory (the inspect estimate against the allocator's peak).

Writes a JSON report (default benchmarks/results/gpu.json) and a readable summary on stdout.
`--dry-run` takes the same code paths on the CPU with tiny batches, the small nets only and
torch.compile's eager backend, and records no timings worth reading: CI runs it so that the one
run on a GPU machine does not fail on a typo.

Run: bash benchmarks/gpu_check.sh [--dry-run] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caffeconf.caffe import caffe_pb2  # noqa: E402
from caffeconf.compile.load import StateChoice, load  # noqa: E402
from caffeconf.inspect.measure import measure  # noqa: E402
from caffeconf.inspect.shapes import infer_shapes  # noqa: E402
from caffeconf.run.device import autocast, synchronize  # noqa: E402
from caffeconf.run.memory import measure_peak_bytes  # noqa: E402
from caffeconf.run.session import build_model, gather_inputs  # noqa: E402
from caffeconf.train.loop import TrainOptions, Trainer  # noqa: E402
from caffeconf.train.report import Report  # noqa: E402
from caffeconf.compile.solver import NetChoice  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
# (path, stages) of every deploy net the parity check runs; the dry run keeps the small ones.
DEPLOY_NETS = [(MODELS / "lenet" / "lenet.prototxt", ()), (MODELS / "bvlc_googlenet" / "deploy.prototxt", ()),
               (MODELS / "bvlc_reference_caffenet" / "deploy.prototxt", ()),
               (MODELS / "squeezenet-v1.1" / "deploy.prototxt", ()),
               (MODELS / "resnet" / "ResNet-50-deploy.prototxt", ()),
               (ROOT / "configs" / "lenet_digits.yaml", ("deploy",)),
               (ROOT / "configs" / "googlenet.yaml", ("deploy",)),
               (ROOT / "configs" / "squeezenet.yaml", ("deploy",)), (ROOT / "configs" / "resnet50.yaml", ())]
SMALL_NETS = {"lenet.prototxt", "lenet_digits.yaml"}
TRAIN_NETS = {"googlenet": (ROOT / "configs" / "googlenet.yaml", 32), "resnet50": (ROOT / "benchmarks" / "resnet50_train.yaml", 256)}


def forward_benchmark():
    """benchmarks/run.py: the plain modules and the seeded caffeconf models (one definition of each)."""
    spec = importlib.util.spec_from_file_location("forward_benchmark", Path(__file__).with_name("run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------ environment and tests

def environment(device: torch.device) -> dict:
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
              "driver": None}
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30)
        report["driver"] = query.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return report


def gpu_tests() -> dict:
    """The gpu-marked tests in a child pytest; counts from its JUnit report."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "gpu.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", f"--junitxml={junit}", "-p",
                        "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        if not junit.exists():
            return {"passed": 0, "failed": 0, "skipped": 0, "error": "pytest wrote no report"}
        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = counts["failures"] + counts["errors"]
    return {"passed": counts["tests"] - failed - counts["skipped"], "failed": failed, "skipped": counts["skipped"]}


# ------------------------------------------------------------ parity

def net_outputs(path: Path, stages, device, precision="fp32", channels_last=False) -> dict[str, np.ndarray]:
    net = load(str(path), StateChoice("TEST", stages=stages)).net
    model = build_model(net, None, "TEST", 0, device)
    feed = {k: v.to(device) for k, v in gather_inputs(net, model, (), (), {}, 0, 2).items()}
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    with torch.no_grad(), autocast(device, precision):
        model(feed)  # fillers draw on the CPU generator in net order: the same weights on every device
        return {k: v.float().cpu().numpy() for k, v in model(feed).items()}


def relative_error(expected: dict, actual: dict) -> float:
    return max(float(np.abs(actual[k] - v).max() / max(np.abs(v).max(), 1e-30)) for k, v in expected.items())


def parity(device, dry_run: bool) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    nets, errors = {}, {}
    for path, stages in DEPLOY_NETS:
        if not path.exists() or (dry_run and path.name not in SMALL_NETS):
            continue
        label = f"{path.parent.name}/{path.name}"
        reference = net_outputs(path, stages, torch.device("cpu"))
        nets[label] = {"fp32": relative_error(reference, net_outputs(path, stages, device, channels_last=True))}
        for precision in ("bf16", "fp16"):
            try:
                nets[label][precision] = relative_error(reference, net_outputs(path, stages, device, precision))
            except RuntimeError as error:  # an op without a kernel for this dtype on this device
                errors[f"{label} {precision}"] = str(error).splitlines()[0]
    worst = max((v["fp32"] for v in nets.values()), default=None)
    return {"fp32_max_rel_error": worst, "parity": nets, "autocast_errors": errors}


# ------------------------------------------------------------ throughput

def images_per_second(action, batch: int, device, repeats: int) -> float:
    action()  # warm-up (and compilation)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        action()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return batch / best


def inference_variants(run, name: str, device, compile_backend: str):
    """{variant: callable(x)}: caffeconf and the plain module, fp32 and bf16 + channels-last + compile."""
    model, blobs = run.caffeconf_model(name, device)
    ours = run.as_input(run.optimized(model, device))
    plain = run.load_plain(run.PLAIN[name](), blobs).to(device)
    fast_plain = plain.to(memory_format=torch.channels_last)
    return {"caffeconf_fp32": (lambda x: ours(x.contiguous(memory_format=torch.channels_last)), "fp32"),
            "caffeconf_bf16_compile": (torch.compile(lambda x: ours(x)["prob"], backend=compile_backend), "bf16"),
            "plain_fp32": (plain, "fp32"),
            "plain_bf16_compile": (torch.compile(fast_plain, backend=compile_backend), "bf16")}


def inference(device, dry_run: bool) -> dict:
    run = forward_benchmark()
    batches, repeats = ((1, 2), 1) if dry_run else ((1, 64, 256), 5)
    backend = "eager" if dry_run else "inductor"
    results = {}
    for name in ("googlenet", "resnet50"):
        if not run.NETS[name].exists():
            continue
        for variant, (module, precision) in inference_variants(run, name, device, backend).items():
            for batch in batches:
                x = torch.randn(batch, 3, 224, 224, device=device)
                if precision == "bf16":
                    x = x.contiguous(memory_format=torch.channels_last)

                def action(module=module, x=x, precision=precision):
                    with torch.no_grad(), autocast(device, precision):
                        module(x)
                results[f"{name}_b{batch}_{variant}_img_s"] = images_per_second(action, batch, device, repeats)
    return results


def inference_ratios(results: dict, largest: int) -> dict:
    ratios = {}
    for name in ("googlenet", "resnet50"):
        key = f"{name}_b{largest}_" + "{}_img_s"
        if key.format("plain_fp32") in results:
            plain = results[key.format("plain_fp32")]
            ratios[f"{name}_fp32_vs_plain"] = results[key.format("caffeconf_fp32")] / plain
            ratios[f"{name}_bf16_compile_vs_plain_fp32"] = results[key.format("caffeconf_bf16_compile")] / plain
    return ratios


# ------------------------------------------------------------ training

def synthetic_solver(iterations: int) -> caffe_pb2.SolverParameter:
    return caffe_pb2.SolverParameter(type="SGD", base_lr=0.01, momentum=0.9, weight_decay=1e-4, lr_policy="fixed",
                                     max_iter=iterations, display=0, snapshot_after_train=False)


def with_batch(net, batch: int):
    """The net with every Data layer's batch_size set to `batch` (the fed arrays' length)."""
    def resized(layer):
        if layer.type != "Data":
            return layer
        data_param = {**layer.fields["data_param"], "batch_size": batch}
        return dataclasses.replace(layer, fields={**layer.fields, "data_param": data_param})
    return dataclasses.replace(net, layers=tuple(resized(layer) for layer in net.layers))


def train_images_per_second(path: Path, batch: int, device, iterations: int) -> float:
    """The trainer's own loop (caffeconf.train.loop.Trainer) on random images already in memory."""
    net = with_batch(load(str(path), StateChoice("TRAIN")).net, batch)
    data_layer = next(layer for layer in net.layers if layer.type == "Data")
    rng = np.random.default_rng(0)
    arrays = {"data": rng.standard_normal((batch, 3, 224, 224), dtype=np.float32),
              "label": rng.integers(0, 1000, size=batch).astype(np.float32)}
    options = TrainOptions(arrays={data_layer.name: arrays}, device=device)
    trainer = Trainer(synthetic_solver(iterations + 1), NetChoice(str(path), "TRAIN", inline=net), [], options,
                      Report(None, iterations, quiet=True))
    return images_per_second(trainer.step, batch, device, iterations)


def training(device, dry_run: bool) -> dict:
    results = {}
    for name, (path, batch) in TRAIN_NETS.items():
        results[f"{name}_train_img_s"] = train_images_per_second(path, 2 if dry_run else batch, device,
                                                                 1 if dry_run else 5)
    return results


# ------------------------------------------------------------ memory

def memory(device, dry_run: bool) -> dict:
    """The inspect estimate against the measured peak, for one forward and one forward+backward."""
    path, stages = (ROOT / "configs" / "lenet_digits.yaml", ("deploy",)) if dry_run else (ROOT / "configs" / "googlenet.yaml",
                                                                                 ("deploy",))
    batch = 2 if dry_run else 64
    net = load(str(path), StateChoice("TEST", stages=stages)).net
    _, estimate = measure(infer_shapes(net, batch=batch))
    model = build_model(net, None, "TEST", 0, device)
    feed = {k: v.to(device) for k, v in gather_inputs(net, model, (), (), {}, 0, batch).items()}
    measured = {"inference": measure_peak_bytes(model, feed), "training": measure_peak_bytes(model, feed, train=True)}
    return {"memory_net": f"{path.name} batch {batch}",
            "memory_inference_estimate_mb": estimate.inference_peak / 2**20,
            "memory_inference_measured_mb": measured["inference"] / 2**20,
            "memory_training_estimate_mb": estimate.training_peak / 2**20,
            "memory_training_measured_mb": measured["training"] / 2**20}


# ------------------------------------------------------------ report

def summary(report: dict) -> list[str]:
    lines = [f"device {report['device']}  torch {report['torch']}  CUDA {report['cuda']}  cuDNN {report['cudnn']}"
             f"  driver {report['driver']}",
             f"gpu tests: {report['tests']['passed']} passed, {report['tests']['failed']} failed,"
             f" {report['tests'].get('skipped', 0)} skipped",
             f"fp32 max relative error vs CPU: {report['fp32_max_rel_error']}"]
    lines += [f"  {key}: {value:.1f}" for key, value in report.items() if key.endswith("_img_s") and value]
    lines += [f"  {key}: {value:.2f}" for key, value in report["ratios"].items()]
    lines += [f"  {key}: {value:.1f}" for key, value in report.items() if key.endswith("_mb")]
    return lines


def progress(step: str) -> None:
    print(f"gpu_check: {step} ...", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code paths on the CPU, tiny shapes")
    parser.add_argument("--out", type=Path, help="the JSON report (default benchmarks/results/gpu.json, "
                                                 "or gpu-dry-run.json with --dry-run)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; use --dry-run on a CPU machine", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    out = args.out or ROOT / "benchmarks" / "results" / ("gpu-dry-run.json" if args.dry_run else "gpu.json")
    report = {**environment(device), "dry_run": args.dry_run}
    progress("gpu-marked tests")
    report["tests"] = gpu_tests()
    progress("parity")
    report.update(parity(device, args.dry_run))
    progress("inference throughput")
    throughput = inference(device, args.dry_run)
    report.update(throughput)
    largest = 2 if args.dry_run else 256
    report["largest_batch"] = largest
    report["ratios"] = inference_ratios(throughput, largest)
    for name in ("googlenet", "resnet50"):  # the headline figures; at the dry run's batch 2 under the same keys
        report[f"{name}_b256_infer_img_s"] = max(
            (v for k, v in throughput.items() if k.startswith(f"{name}_b{largest}_caffeconf")), default=None)
    progress("training throughput")
    report.update(training(device, args.dry_run))
    progress("memory")
    report.update(memory(device, args.dry_run))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print("\n".join(summary(report)))
    print(f"wrote {out}")
    return 1 if report["tests"]["failed"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
