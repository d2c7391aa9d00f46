"""benchmarks/gpu_check.sh --dry-run: the one prepared GPU run takes the same code paths on the CPU,
so that the run on a GPU machine does not fail on a typo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")

from conftest import require_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = {"device", "tests", "fp32_max_rel_error", "googlenet_b256_infer_img_s", "resnet50_b256_infer_img_s",
                 "resnet50_train_img_s", "googlenet_train_img_s", "ratios", "memory_inference_estimate_mb",
                 "memory_inference_measured_mb", "memory_training_estimate_mb", "memory_training_measured_mb"}


@pytest.mark.slow
def test_dry_run_writes_every_figure(tmp_path):
    require_models()  # GoogLeNet and ResNet-50's deploy nets drive the throughput checks
    out = tmp_path / "gpu.json"
    env = {**os.environ, "CAFFECONF_VENV": str(Path(os.sys.executable).parent.parent)}
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert REQUIRED_KEYS <= report.keys()
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert report["tests"]["failed"] == 0 and report["tests"]["skipped"] > 0  # gpu tests skip on the CPU
    assert report["fp32_max_rel_error"] == 0.0  # the CPU against itself: the same weights and inputs
    assert set(report["parity"]) == {"lenet/lenet.prototxt", "configs/lenet_digits.yaml"}
    for key in ("googlenet_b256_infer_img_s", "resnet50_b256_infer_img_s", "resnet50_train_img_s"):
        assert report[key] > 0
    assert set(report["ratios"]) == {"googlenet_fp32_vs_plain", "googlenet_bf16_compile_vs_plain_fp32",
                                     "resnet50_fp32_vs_plain", "resnet50_bf16_compile_vs_plain_fp32"}
    # the inspect estimate and the measured peak agree within a factor of two
    for kind in ("inference", "training"):
        estimate, measured = report[f"memory_{kind}_estimate_mb"], report[f"memory_{kind}_measured_mb"]
        assert 0.5 <= estimate / measured <= 2.0
    assert "fp32 max relative error vs CPU: 0.0" in result.stdout


def test_without_a_gpu_the_real_run_refuses(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the real run would start")
    env = {**os.environ, "CAFFECONF_VENV": str(Path(os.sys.executable).parent.parent)}
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--out", str(tmp_path / "gpu.json")], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "gpu_check: no CUDA device; use --dry-run on a CPU machine"
    assert not (tmp_path / "gpu.json").exists()
