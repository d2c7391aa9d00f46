"""`caffeconf run` and `caffeconf time` end to end, through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from caffeconf.cli import main  # noqa: E402
from caffeconf.run.preprocess import Transform, load_images  # noqa: E402

from conftest import require_models  # noqa: E402

TINY = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
        inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.prototxt"
    path.write_text(TINY)
    return path


def test_run_summarizes_outputs_with_top5(tiny, capsys):
    assert main(["run", str(tiny), "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("device: cpu (") and "precision fp32; phase TEST" in out[0]
    assert re.fullmatch(r"prob: shape \(2, 6\)  min \S+  max \S+  mean 0\.166667  std \S+", out[1])
    assert re.fullmatch(r"  top-5 \[0\]: (\d \(\S+\), ){4}\d \(\S+\)", out[2])
    assert out[3].startswith("  top-5 [1]: ") and len(out) == 4


def test_run_is_seeded_and_weights_round_trip(tiny, tmp_path, capsys):
    first, second, weights = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "w.caffemodel"
    assert main(["run", str(tiny), "--seed", "3", "-o", str(first), "--write-weights", str(weights)]) == 0
    assert main(["run", str(tiny), "--seed", "4", "--weights", str(weights), "-o", str(second),
                 "--input", f"data={_save_input(tmp_path, seed=3)}"]) == 0
    a, b = np.load(first)["prob"], np.load(second)["prob"]
    assert a.shape == (2, 6)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def _save_input(tmp_path, seed):
    # the seeded random input `run` makes for seed 3: one normal draw of the declared shape
    data = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(seed)).numpy()
    path = tmp_path / "data.npy"
    np.save(path, data)
    return path


def test_run_reports_unsupported_types_with_location(tmp_path, capsys):
    path = tmp_path / "bad.prototxt"
    path.write_text(TINY + 'layer { name: "up" type: "Upsample" bottom: "prob" top: "up" }\n')
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:10:1: error: layer 'up': unsupported layer type 'Upsample'")


def test_run_without_cuda_refuses_cuda(tiny, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["run", str(tiny), "--device", "cuda"]) == 1
    assert "no CUDA device is available" in capsys.readouterr().err


def test_run_bf16_autocast_stays_close(tiny, tmp_path):
    exact, mixed = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["run", str(tiny), "-o", str(exact)]) == 0
    assert main(["run", str(tiny), "--precision", "bf16", "-o", str(mixed)]) == 0
    np.testing.assert_allclose(np.load(exact)["prob"], np.load(mixed)["prob"], atol=2e-2)


def test_images_are_preprocessed_like_caffe(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    batch = load_images([str(tmp_path / "a.png")], (1, 3, 10, 12),
                        Transform(scale=0.5, mean_values=(10.0, 20.0, 30.0)))
    expected = (image.transpose(2, 0, 1).astype(np.float32) - np.array([10, 20, 30])[:, None, None]) * 0.5
    np.testing.assert_allclose(batch[0], expected)
    cropped = load_images([str(tmp_path / "a.png")], (1, 3, 10, 12), Transform(crop_size=6))
    np.testing.assert_allclose(cropped[0], image[2:8, 3:9].transpose(2, 0, 1))


def test_run_feeds_image_files(tiny, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 8, 3), 128, np.uint8))
    assert main(["run", str(tiny), str(tmp_path / "a.png"), "--mean-value", "128"]) == 0
    assert "prob: shape (1, 6)" in capsys.readouterr().out


def test_time_reports_every_layer_and_totals(tiny, capsys):
    assert main(["time", str(tiny), "--iterations", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "Average time per layer (2 iterations):"
    layer_lines = out[2:-4]
    assert [line.split()[0] for line in layer_lines] == ["conv", "relu", "pool", "fc", "prob"]
    assert all(re.search(r"forward: +\d+\.\d{3} ms\.  backward: +\d+\.\d{3} ms\.$", line) for line in layer_lines)
    assert [line.split(":")[0] for line in out[-4:]] == [
        "Average Forward pass", "Average Backward pass", "Average Forward-Backward", "Total Time"]


def test_run_shared_googlenet_deploy(capsys):
    models = require_models()
    assert main(["run", str(models / "bvlc_googlenet/deploy.prototxt"), "--batch", "1"]) == 0
    assert "prob: shape (1, 1000)" in capsys.readouterr().out


def test_run_config_with_deploy_variant_and_legacy_inputs(capsys):
    configs = __import__("pathlib").Path(__file__).resolve().parent.parent / "configs"
    assert main(["run", str(configs / "squeezenet.yaml"), "--stage", "deploy", "--batch", "1"]) == 0
    assert "prob: shape (1, 1000, 1, 1)" in capsys.readouterr().out
    assert main(["run", str(configs / "resnet50.yaml"), "--batch", "1"]) == 0  # net-level input + input_dim
    assert "prob: shape (1, 1000)" in capsys.readouterr().out


def _without_module(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter where importing `module` fails, as when it is not installed."""
    program = (f"import sys; sys.modules[{module!r}] = None; from caffeconf.cli import main; "
               f"sys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)


@pytest.mark.parametrize("command, extra, extras", [
    ("run", [], "run"), ("time", [], "run"), ("test", ["--weights", "w.caffemodel"], "run,train")])
def test_runner_commands_without_torch_say_what_to_install(tiny, command, extra, extras):
    done = _without_module("torch", [command, str(tiny), *extra])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: caffeconf {command} needs PyTorch (no module named 'torch'): "
                           f"pip install 'caffeconf[{extras}]' (see README)\n")


@pytest.mark.parametrize("command", ["run", "time"])
def test_the_onnxruntime_engine_without_onnxruntime_says_what_to_install(tiny, command):
    done = _without_module("onnxruntime", [command, str(tiny), "--engine", "onnxruntime", "--iterations", "1"]
                           if command == "time" else [command, str(tiny), "--engine", "onnxruntime"])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: caffeconf {command} needs ONNX Runtime (no module named 'onnxruntime'): "
                           "pip install 'caffeconf[run,onnx]' (see README)\n")


def test_the_auto_engine_without_onnxruntime_runs_pytorch(tiny):
    done = _without_module("onnxruntime", ["run", str(tiny)])
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0].endswith("; engine PyTorch (auto)")


def test_train_without_torch_says_what_to_install(tmp_path):
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "net.prototxt"\nbase_lr: 0.01\nmax_iter: 1\n')
    done = _without_module("torch", ["train", "--solver", str(solver)])
    assert done.returncode == 1
    assert done.stderr == ("error: caffeconf train needs PyTorch (no module named 'torch'): "
                           "pip install 'caffeconf[run,train]' (see README)\n")


def test_run_images_without_opencv_say_what_to_install(tiny, tmp_path):
    image = tmp_path / "a.png"  # never read: OpenCV is missing first
    done = _without_module("cv2", ["run", str(tiny), str(image)])
    assert done.returncode == 1
    assert done.stderr == ("error: caffeconf run needs OpenCV for image inputs (no module named 'cv2'): "
                           "pip install 'caffeconf[run]' (see README)\n")


@pytest.mark.parametrize("argv, message", [
    (["run", "--batch", "0"], "--batch must be at least 1, got 0"),
    (["time", "--batch", "-2"], "--batch must be at least 1, got -2"),
    (["run", "--crop-size", "-1"], "--crop-size must not be negative, got -1"),
    (["run", "--scale", "0"], "--scale must be positive, got 0"),
    (["run", "--scale", "-0.5"], "--scale must be positive, got -0.5"),
    (["run", "--scale", "nan"], "--scale must be positive, got nan"),
])
def test_runner_options_are_checked_before_the_net_is_read(tmp_path, capsys, argv, message):
    missing = tmp_path / "absent.prototxt"  # never opened: the option is refused first
    assert main([*argv[:1], str(missing), *argv[1:]]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"error: {message}"


def test_run_saves_blobs_whose_names_are_np_savez_arguments(tmp_path):
    net = tmp_path / "names.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'
                   'layer { name: "relu" type: "ReLU" bottom: "data" top: "file" }\n'
                   'layer { name: "prob" type: "Softmax" bottom: "data" top: "allow_pickle" }\n'
                   'layer { name: "tanh" type: "TanH" bottom: "data" top: "a/b" }\n')
    data = np.array([[-1.0, 0.5, 2.0], [3.0, -4.0, 0.0]], np.float32)
    np.save(tmp_path / "data.npy", data)
    saved = tmp_path / "out.npz"
    assert main(["run", str(net), "--input", f"data={tmp_path / 'data.npy'}", "-o", str(saved)]) == 0
    with np.load(saved, allow_pickle=False) as blobs:
        assert sorted(blobs.files) == ["a/b", "allow_pickle", "file"]
        np.testing.assert_array_equal(blobs["file"], np.maximum(data, 0))
        np.testing.assert_allclose(blobs["allow_pickle"], torch.softmax(torch.from_numpy(data), 1).numpy(), rtol=1e-6)
        np.testing.assert_allclose(blobs["a/b"], np.tanh(data), rtol=1e-6)


@pytest.mark.parametrize("command", ["run", "time"])
def test_a_batch_past_int_max_elements_is_refused_before_allocating(tiny, capsys, command):
    assert main([command, str(tiny), "--batch", "1000000000"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{tiny}:2:1: error: layer 'data' (Input): top 'data' of shape 1000000000x3x8x8 has more elements "
        "than the 2147483647 (INT_MAX) a Caffe blob can hold")


def test_a_weight_blob_past_int_max_elements_is_refused_before_allocating(tmp_path, capsys):
    net = tmp_path / "wide.prototxt"
    net.write_text(TINY.replace("num_output: 6", "num_output: 1000000000"))
    assert main(["run", str(net)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:7:1: error: layer 'fc' (InnerProduct): learnable blob 0 of shape 1000000000x4 has more elements "
        "than the 2147483647 (INT_MAX) a Caffe blob can hold")
