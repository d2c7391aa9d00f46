"""`caffeconf run`'s options: images anywhere among them, --random-weights, --blobs."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from caffeconf.caffe.weights import read_caffemodel  # noqa: E402
from caffeconf.cli import main  # noqa: E402

from conftest import MODELS  # noqa: E402

# A deploy net without fillers: every blob would be zero without --random-weights.
DEPLOY = """name: "deploy"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 10 dim: 10 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 16 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "PReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
"""


@pytest.fixture
def deploy(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text(DEPLOY)
    return path


def _blobs(path):
    return {layer: [blob.data.reshape(blob.shape) for blob in blobs]
            for layer, blobs in read_caffemodel(path).items()}


def test_images_may_come_after_options(deploy, tmp_path):
    for name, value in (("a.png", 40), ("b.png", 200)):
        cv2.imwrite(str(tmp_path / name), np.full((10, 10, 3), value, np.uint8))
    first, after = tmp_path / "first.npz", tmp_path / "after.npz"
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    assert main(["run", str(deploy), a, b, "--random-weights", "--batch", "2", "-o", str(first)]) == 0
    assert main(["run", str(deploy), "--random-weights", a, "--batch", "2", b, "-o", str(after)]) == 0
    with np.load(first) as one, np.load(after) as other:
        np.testing.assert_array_equal(one["fc"], other["fc"])
        assert not np.allclose(one["fc"][0], one["fc"][1])  # both images were fed, in order


def test_a_bad_option_is_reported_with_runs_usage(deploy, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(deploy), "x.png", "--bogus"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: caffeconf run ")
    assert err.splitlines()[-1] == "caffeconf run: error: unrecognized arguments: --bogus"


def test_only_the_net_is_required(capsys):
    with pytest.raises(SystemExit):
        main(["run"])
    assert capsys.readouterr().err.splitlines()[-1] == "caffeconf run: error: the following arguments are required: NET"


def test_weights_and_random_weights_exclude_each_other(deploy, capsys):
    with pytest.raises(SystemExit):
        main(["run", str(deploy), "--weights", "w.caffemodel", "--random-weights"])
    assert "not allowed with argument --weights" in capsys.readouterr().err


def test_random_weights_have_the_scale_of_their_role(deploy, tmp_path):
    plain, random = tmp_path / "plain.caffemodel", tmp_path / "random.caffemodel"
    assert main(["run", str(deploy), "--write-weights", str(plain)]) == 0
    assert all(not blob.any() for layer in ("conv", "fc") for blob in _blobs(plain)[layer])
    assert main(["run", str(deploy), "--random-weights", "--write-weights", str(random)]) == 0
    blobs = _blobs(random)
    weight, bias = blobs["conv"]
    assert weight.shape == (16, 3, 3, 3) and abs(weight.std() * math.sqrt(27) - 1) < 0.15
    assert bias.any() and np.abs(bias).max() < 0.5
    mean, variance, normalizer = blobs["bn"]
    assert mean.any() and (variance > 0).all() and normalizer.tolist() == [1.0]
    gamma, beta = blobs["scale"]
    assert np.abs(gamma - 1).max() < 0.5 and len(set(gamma.tolist())) == 16 and beta.any()
    (slope,) = blobs["relu"]
    assert ((slope >= 0) & (slope <= 0.5)).all() and len(set(slope.tolist())) == 16
    assert abs(blobs["fc"][0].std() * 4 - 1) < 0.3  # fan_in 16


def test_random_weights_follow_the_seed(deploy, tmp_path):
    paths = [tmp_path / f"{seed}-{copy}.caffemodel" for seed, copy in ((1, 0), (1, 1), (2, 0))]
    for path, seed in zip(paths, (1, 1, 2)):
        assert main(["run", str(deploy), "--random-weights", "--seed", str(seed), "--write-weights", str(path)]) == 0
    same, again, other = (path.read_bytes() for path in paths)
    assert same == again and same != other


def test_random_weights_match_opencv_on_the_written_caffemodel(tmp_path):
    prototxt = MODELS / "lenet" / "lenet.prototxt"
    if not prototxt.exists():
        pytest.skip(f"{prototxt} is absent")
    data = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "data.npy", data)
    weights, saved = tmp_path / "lenet.caffemodel", tmp_path / "out.npz"
    assert main(["run", str(prototxt), "--random-weights", "--seed", "5", "--input", f"data={tmp_path / 'data.npy'}",
                 "--write-weights", str(weights), "-o", str(saved), "--blobs", "conv2,ip1"]) == 0
    oracle = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    oracle.setInput(data)
    expected = dict(zip(("conv2", "ip1", "prob"), oracle.forward(["conv2", "ip1", "prob"])))
    # Caffe's ip1 blob holds the value after the in-place relu1; OpenCV gives the ip1 layer's output
    expected["ip1"] = np.maximum(expected["ip1"], 0)
    with np.load(saved) as blobs:
        assert sorted(blobs.files) == ["conv2", "ip1", "prob"]
        assert np.abs(blobs["conv2"]).max() > 0.1  # weights of a real scale, not zeros
        for name, value in expected.items():
            np.testing.assert_allclose(blobs[name], value.reshape(blobs[name].shape), atol=1e-4)


def test_blobs_adds_intermediate_blobs_to_the_npz(deploy, tmp_path):
    named, every = tmp_path / "named.npz", tmp_path / "all.npz"
    assert main(["run", str(deploy), "--random-weights", "-o", str(named), "--blobs", "pool, conv"]) == 0
    assert main(["run", str(deploy), "--random-weights", "-o", str(every), "--blobs", "all"]) == 0
    with np.load(named) as blobs, np.load(every) as whole:
        assert blobs.files == ["fc", "pool", "conv"]
        assert sorted(whole.files) == ["conv", "data", "fc", "pool"]
        # conv holds the value after its in-place layers, as Caffe's blob does; pool averages it
        np.testing.assert_allclose(blobs["pool"], blobs["conv"].mean(axis=(2, 3), keepdims=True), atol=1e-6)
        for name in blobs.files:
            np.testing.assert_allclose(blobs[name], whole[name], atol=1e-6)


def test_blobs_reports_unknown_names_with_close_ones(deploy, tmp_path, capsys):
    argv = ["run", str(deploy), "-o", str(tmp_path / "out.npz"), "--blobs", "pol,fc,zzz"]
    assert main(argv) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: --blobs: the net has no blob 'pol'",
        "  hint: did you mean 'pool'?",
        "error: --blobs: the net has no blob 'zzz'",
        "  hint: its blobs are data, conv, pool, fc (or --blobs all)",
    ]
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("options, message", [
    (["--blobs", "fc"], "--blobs saves blobs to -o OUT.npz (or compares them, with --compare), but neither -o "
                        "nor --compare was given"),
    (["--blobs", " , ", "-o", "out.npz"], "--blobs needs blob names separated by commas, or 'all'"),
])
def test_blobs_options_are_checked_before_the_net_is_read(tmp_path, capsys, options, message):
    assert main(["run", str(tmp_path / "absent.prototxt"), *options]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {message}"]


# The layer types with learnable blobs that DEPLOY lacks, none with a filler.
EVERY_LEARNABLE = """name: "every"
layer { name: "data" type: "Input" top: "data" top: "words" top: "x" top: "cont"
        input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } shape { dim: 2 dim: 4 } shape { dim: 3 dim: 2 dim: 5 }
                      shape { dim: 3 dim: 2 } } }
layer { name: "deconv" type: "Deconvolution" bottom: "data" top: "deconv"
        convolution_param { num_output: 4 kernel_size: 2 } }
layer { name: "bias" type: "Bias" bottom: "deconv" top: "bias" }
layer { name: "embed" type: "Embed" bottom: "words" top: "embed" embed_param { num_output: 3 input_dim: 10 } }
layer { name: "parameter" type: "Parameter" top: "parameter" parameter_param { shape { dim: 2 dim: 3 } } }
layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "lstm" recurrent_param { num_output: 4 } }
layer { name: "rnn" type: "RNN" bottom: "x" bottom: "cont" top: "rnn" recurrent_param { num_output: 4 } }
"""


def test_random_weights_fill_every_learnable_layer_type(tmp_path):
    from caffeconf.compile.load import LoadOptions, StateChoice, load
    from caffeconf.run.interpreter import CaffeNet

    path = tmp_path / "every.prototxt"
    path.write_text(EVERY_LEARNABLE)
    net = load(str(path), StateChoice("TEST"), LoadOptions()).net
    model = CaffeNet(net, random_weights=True)
    model.materialize({"data": (2, 3, 6, 6), "words": (2, 4), "x": (3, 2, 5), "cont": (3, 2)})
    blobs = model.blob_arrays()
    assert sorted(blobs) == ["bias", "deconv", "embed", "lstm", "parameter", "rnn"]
    assert all(blob.any() and np.isfinite(blob).all() for layer in blobs.values() for blob in layer)
