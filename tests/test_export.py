"""`caffeconf export`: ONNX Runtime runs the exported net to caffeconf's runner's values and to OpenCV's
reading of the same Caffe net (every blob, on seeded random weights), for every shared deploy net and
every config's deploy form, a dynamic-batch export at batch 1 and 10; refusals are located; the
onnxruntime engine of `run` and `time`, `--compare`, `--engine auto`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from caffeconf.caffe.facts import FED_TYPES  # noqa: E402
from caffeconf.cli import main  # noqa: E402
from caffeconf.compile.load import StateChoice, load  # noqa: E402
from caffeconf.export.graph import export_net  # noqa: E402
from caffeconf.export.ort import cpu_session, run_model  # noqa: E402
from caffeconf.run.session import build_model, input_shapes  # noqa: E402
from caffeconf.caffe.weights import write_caffemodel  # noqa: E402

from conftest import FORK_FILES, MODELS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
TOLERANCE = 1e-4  # relative to the blob's largest magnitude


def shared_deploy_nets() -> list:
    """The deploy nets ../shared/models/README.md lists (`phase: deploy`), V0, V1 and V2; fork nets
    skip (test_export_ssd.py exports MobileNet-SSD in its dialect)."""
    readme = MODELS / "README.md"
    if not readme.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/models is absent (it holds the "
                                                                  "reference nets)"))]
    sections = readme.read_text(encoding="utf-8").split("\n### `")[1:]
    nets = [section.partition("`")[0] for section in sections if re.search(r"phase: deploy\b", section)]
    return [pytest.param(net, marks=pytest.mark.skip(reason="a fork's net, read with the fork's caffe.proto: "
                                                           "tests/test_export_ssd.py exports it"))
            if net in FORK_FILES else net for net in nets]


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    """Largest difference over the largest magnitude; OpenCV may drop or add unit axes (equal sizes)."""
    assert expected.size == got.size, (expected.shape, got.shape)
    got = got.reshape(expected.shape)
    return float(np.abs(expected - got).max() / max(np.abs(expected).max(), 1e-12)) if expected.size else 0.0


def exported(path: Path, stages=None, batch=None):
    net = load(path, StateChoice.of("TEST", stages, None, "TEST")).net
    shapes = input_shapes(net, batch)
    model = build_model(net, None, "TEST", 0, torch.device("cpu"), random_weights=True)
    model.materialize(shapes)
    return net, model, shapes


def feed_for(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def runner(model, feed, keep_all=False) -> dict[str, np.ndarray]:
    with torch.no_grad():
        blobs = model({k: torch.from_numpy(v) for k, v in feed.items()}, keep_all=keep_all)
    return {name: value.numpy() for name, value in blobs.items()}


def check_every_blob(net, model, shapes):
    """ORT's value of every blob (a blob Caffe rewrites in place: its final value) against the runner's;
    the export passes onnx.checker and strict shape inference (export_net's `checked`)."""
    every_blob = list(dict.fromkeys(top for layer in net.layers for top in layer.tops))
    onnx_model = export_net(net, model.blob_arrays(), shapes, extra_outputs=every_blob)
    feed = feed_for(shapes)
    outputs = run_model(onnx_model, feed, 2)
    reference = runner(model, feed, keep_all=True)
    errors = {name: relative_error(reference[name], value) for name, value in outputs.items()}
    assert set(errors) == set(every_blob) - set(shapes)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (worst, errors[worst])
    return feed, outputs


def check_against_opencv(prototxt: Path, net, model, feed, outputs, tmp_path) -> None:
    """OpenCV's value of every blob (from the blob's last writer, as ORT's) against ORT's."""
    weights = tmp_path / "w.caffemodel"
    write_caffemodel(weights, net, model.blob_arrays())
    opencv = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    # OpenCV's fusions (a Concat's inputs written into its output, a convolution absorbing its ReLU)
    # leave the absorbed layers' own outputs unset; without them every layer's output is its own
    opencv.enableFusion(False)
    for name, value in feed.items():
        opencv.setInput(value, name)
    writer = {top: (layer.name, index) for layer in net.layers if layer.type not in FED_TYPES
              for index, top in enumerate(layer.tops)}
    layers = sorted({name for name, _ in writer.values()})
    retrieved = dict(zip(layers, opencv.forwardAndRetrieve(layers)))
    errors = {blob: relative_error(np.asarray(retrieved[name][index]), outputs[blob])
              for blob, (name, index) in writer.items()}
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (worst, errors[worst])


def check_dynamic_batch(net, model, shapes) -> None:
    """A dynamic-batch export runs at batch 1 and 10 to the outputs of the runner's inference path
    (folded, as `run --engine pytorch`: the quicker at batch 10)."""
    onnx_model = export_net(net, model.blob_arrays(), shapes, dynamic_batch=True)
    model.fold_for_inference()
    assert [d.dim_param for d in onnx_model.graph.input[0].type.tensor_type.shape.dim][:1] == ["batch"]
    session = cpu_session(onnx_model, 2)
    names = [output.name for output in session.get_outputs()]
    for batch in (1, 10):
        feed = feed_for({name: (batch, *shape[1:]) for name, shape in shapes.items()}, seed=batch)
        reference = runner(model, feed)
        for name, value in zip(names, session.run(names, feed)):
            assert relative_error(reference[name], value) < TOLERANCE, (batch, name)


@pytest.mark.parametrize("relative", shared_deploy_nets())
def test_every_shared_deploy_net_exports_to_the_runners_and_opencvs_values(relative, tmp_path):
    path = MODELS / relative
    net, model, shapes = exported(path, batch=1)
    feed, outputs = check_every_blob(net, model, shapes)
    check_against_opencv(path, net, model, feed, outputs, tmp_path)


def test_the_shared_deploy_nets_are_all_found(models):
    found = {param if isinstance(param, str) else param.values[0] for param in shared_deploy_nets()}
    assert {"lenet/lenet.prototxt", "lenet-v0/lenet.prototxt", "lenet-v1/lenet.prototxt",
            "bvlc_reference_caffenet/deploy.prototxt", "bvlc_googlenet/deploy.prototxt",
            "siamese/mnist_siamese.prototxt", "cifar10/cifar10_quick.prototxt", "resnet/ResNet-50-deploy.prototxt",
            "squeezenet-v1.1/deploy.prototxt", "mobilenet-ssd/MobileNetSSD_deploy.prototxt"} == found


# The dynamic batch on the configs only: they hold the shared GoogLeNet, ResNet-50 and SqueezeNet (diffed
# in test_configs) and need no ../shared; batch 10 through the runner is the suite's slowest part.
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_configs_deploy_form_exports_to_the_runners_and_opencvs_values(config, tmp_path):
    stages = ["deploy"] if re.search(r"^variants:.*\bdeploy\b", config.read_text(), re.M) else None
    net, model, shapes = exported(config, stages, batch=1)
    readers = [layer.name for layer in net.layers if layer.type in FED_TYPES and layer.type != "Input"]
    if readers:
        pytest.skip(f"no deploy form: reads data through {readers}")
    feed, outputs = check_every_blob(net, model, shapes)
    prototxt = tmp_path / "net.prototxt"
    assert main(["compile", str(config), *(["--stage", "deploy"] if stages else []), "-o", str(prototxt)]) == 0
    check_against_opencv(prototxt, net, model, feed, outputs, tmp_path)
    check_dynamic_batch(net, model, shapes)


def test_export_writes_a_dynamic_batch_model_that_runs_at_batch_1_and_10(tmp_path):
    out = tmp_path / "lenet.onnx"
    config = REPO / "configs" / "lenet_digits.yaml"
    assert main(["export", str(config), "--stage", "deploy", "--random-weights", "--dynamic-batch",
                 "-o", str(out)]) == 0
    session = cpu_session(onnx.load(str(out)), 2)
    net, model, _ = exported(config, ["deploy"])
    for batch in (1, 10):
        feed = feed_for(input_shapes(net, batch), seed=batch)
        (prob,) = session.run(["prob"], feed)
        assert relative_error(runner(model, feed)["prob"], prob) < TOLERANCE


def test_a_net_that_reads_its_own_data_is_refused_at_the_layer(tmp_path, capsys):
    out = tmp_path / "caffenet.onnx"
    assert main(["export", "configs/caffenet.yaml", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "configs/caffenet.yaml:16:9: error: layer 'data' (Data): cannot export to ONNX: a Data layer reads its "
        "data itself; export a net whose inputs are Input layers (a deploy net, e.g. --stage deploy) "
        "(in module imagenet_data, used as test_data at configs/caffenet.yaml:67:5)")
    assert err.count("error:") == 1  # what reads the refused tops is not reported again
    assert not out.exists()


def test_an_opset_out_of_range_is_refused_before_loading(tmp_path, capsys):
    assert main(["export", "missing.yaml", "--opset", "7", "-o", str(tmp_path / "x.onnx")]) == 1
    assert "--opset must lie in" in capsys.readouterr().err


def test_run_with_the_onnxruntime_engine_gives_the_pytorch_engines_blobs(tmp_path, capsys):
    config = str(REPO / "configs" / "squeezenet.yaml")
    saved = {}
    for engine in ("pytorch", "onnxruntime"):
        out = tmp_path / f"{engine}.npz"
        assert main(["run", config, "--stage", "deploy", "--random-weights", "--batch", "1", "--engine", engine,
                     "-o", str(out), "--blobs", "all"]) == 0
        saved[engine] = dict(np.load(out))
    printed = capsys.readouterr().out
    assert "engine ONNX Runtime" in printed
    assert set(saved["pytorch"]) == set(saved["onnxruntime"]) and "fire9/concat" in saved["pytorch"]
    for name, expected in saved["pytorch"].items():
        assert relative_error(expected, saved["onnxruntime"][name]) < TOLERANCE, name


def test_the_onnxruntime_engine_refuses_what_it_cannot_honour(capsys):
    assert main(["run", "configs/squeezenet.yaml", "--engine", "onnxruntime", "--precision", "bf16"]) == 1
    assert capsys.readouterr().err == ("error: --engine onnxruntime runs in fp32 on the CPU: it takes no "
                                       "--precision, --channels-last or --device cuda\n")


def test_compare_prints_every_chosen_blobs_difference_from_the_pytorch_engine(capsys):
    blobs = ["fire2/concat", "conv10", "pool10"]
    assert main(["run", "configs/squeezenet.yaml", "--stage", "deploy", "--random-weights", "--batch", "1",
                 "--engine", "onnxruntime", "--compare", "pytorch", "--blobs", ",".join(blobs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("; engine ONNX Runtime")
    start = out.index("ONNX Runtime against PyTorch (relative: of PyTorch's largest magnitude):")
    assert out[start + 1].split() == ["blob", "max", "abs", "error", "max", "rel", "error"]
    rows = [line.split() for line in out[start + 2:]]
    assert [row[0] for row in rows] == ["prob", *blobs]
    assert all(len(row) == 3 and 0 <= float(row[2]) < TOLERANCE for row in rows), rows


def test_compare_fails_naming_the_blobs_above_the_tolerance(monkeypatch, capsys):
    from caffeconf.export import ort as ort_module

    exact = ort_module.run_model

    def one_blob_off(model, feed, threads):
        values = exact(model, feed, threads)
        values["ip1"] = values["ip1"] + np.float32(0.5) * (np.arange(values["ip1"].size) == 3).reshape(
            values["ip1"].shape)
        return values

    monkeypatch.setattr(ort_module, "run_model", one_blob_off)
    assert main(["run", "configs/lenet_digits.yaml", "--stage", "deploy", "--random-weights",
                 "--compare", "pytorch", "--blobs", "ip1,ip2", "--tolerance", "1e-3"]) == 1
    captured = capsys.readouterr()
    assert "engine ONNX Runtime" in captured.out.splitlines()[0]  # auto, with --compare pytorch: the other one
    ip1 = next(line.split() for line in captured.out.splitlines() if line.split()[:1] == ["ip1"])
    assert float(ip1[1]) == pytest.approx(0.5, rel=1e-5)
    assert captured.err == "error: 1 of 3 blobs differ from PyTorch's by more than --tolerance 0.001 (relative): ip1\n"


@pytest.mark.parametrize("options, message", [
    (["--engine", "pytorch", "--compare", "pytorch"],
     "--compare pytorch compares with the engine that ran, and --engine is pytorch too"),
    (["--tolerance", "0.1"], "--tolerance is the limit of --compare, but no --compare was given"),
    (["--compare", "onnxruntime", "--tolerance", "-1"], "--tolerance must be a non-negative number, got -1"),
    (["--compare", "onnxruntime", "--channels-last"],
     "--engine onnxruntime runs in fp32 on the CPU: it takes no --precision, --channels-last or --device cuda"),
])
def test_compare_options_are_checked_before_the_net_is_read(tmp_path, capsys, options, message):
    assert main(["run", str(tmp_path / "absent.prototxt"), *options]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_time_with_the_onnxruntime_engine_refuses_cuda_before_the_net_is_read(tmp_path, capsys):
    assert main(["time", str(tmp_path / "absent.prototxt"), "--engine", "onnxruntime", "--device", "cuda"]) == 1
    assert capsys.readouterr().err == "error: --engine onnxruntime runs on the CPU: it takes no --device cuda\n"


def _timing_rows(lines):
    """(layer, type) of each per-layer line of `caffeconf time`, and whether it shows a backward time."""
    rows = [line.split() for line in lines if " forward: " in line]
    return [(row[0], row[1]) for row in rows], {"backward:" in row for row in rows}


def test_time_with_the_onnxruntime_engine_gives_the_pytorch_engines_summary_forward_only(capsys):
    net = ["time", "configs/lenet_digits.yaml", "--stage", "deploy", "--phase", "TEST", "--iterations", "3"]
    assert main([*net, "--engine", "pytorch"]) == 0
    pytorch = capsys.readouterr().out.splitlines()
    assert main([*net, "--engine", "onnxruntime"]) == 0
    onnxruntime = capsys.readouterr().out.splitlines()
    assert onnxruntime[0].endswith("; phase TEST; engine ONNX Runtime")
    assert onnxruntime[1] == pytorch[1] == "Average time per layer (3 iterations):"
    (layers, backward), (ort_layers, ort_backward) = _timing_rows(pytorch), _timing_rows(onnxruntime)
    assert ort_layers == layers and len(layers) == 8 and backward == {True} and ort_backward == {False}
    per_layer = {line.split()[0]: float(line.split()[3]) for line in onnxruntime if " forward: " in line}
    assert per_layer["conv2"] > 0 and per_layer["ip1"] > 0  # each layer's nodes found in the profile
    forward = float(re.fullmatch(r"Average Forward pass: (\S+) ms\.", onnxruntime[-3]).group(1))
    assert onnxruntime[-2] == "No backward pass: the engine runs inference only."
    total = float(re.fullmatch(r"Total Time: (\S+) ms\.", onnxruntime[-1]).group(1))
    assert total == pytest.approx(forward * 3, abs=0.003)  # both printed to 3 decimals


SPP_NET = """name: "spp"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 8 dim: 8 } } }
layer { name: "spp" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 2 } }
"""


def test_auto_runs_pytorch_silently_where_the_net_does_not_export(tmp_path, capsys):
    net = tmp_path / "spp.prototxt"
    net.write_text(SPP_NET)
    assert main(["run", str(net)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("; engine PyTorch (auto)") and captured.err == ""
    assert main(["time", str(net), "--engine", "auto", "--iterations", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("; phase TRAIN; engine PyTorch (auto)") and captured.err == ""
    assert captured.out.splitlines()[-3].startswith("Average Backward pass: ")
    assert main(["time", str(net), "--engine", "onnxruntime", "--iterations", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:3:1: error: layer 'spp' (SPP): cannot export to ONNX: SPP has no ONNX mapping in caffeconf export")


def test_auto_runs_pytorch_without_onnxruntime(monkeypatch, capsys):
    from caffeconf.commands import engines

    monkeypatch.setattr(engines, "find_spec", lambda name: None if name == "onnxruntime" else object())
    assert main(["run", "configs/lenet_digits.yaml", "--stage", "deploy"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("; engine PyTorch (auto)")


LENET_DEPLOY = ["configs/lenet_digits.yaml", "--stage", "deploy"]
MEASURED = re.compile(r"auto: (PyTorch|ONNX Runtime): PyTorch (\S+) ms a pass, ONNX Runtime (\S+) ms a pass after "
                      r"(\S+) s of setup \((.*)\)")


def test_auto_runs_pytorch_for_one_pass_where_nothing_was_measured(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path))
    assert main(["run", *LENET_DEPLOY, "-v"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("; engine PyTorch (auto)")
    assert captured.err == ("auto: PyTorch: not measured on this net, shapes and threads yet (caffeconf time "
                            "--engine auto measures)\n")


def test_time_auto_measures_both_engines_and_run_reads_the_cached_figures(tmp_path, monkeypatch, capsys):
    from caffeconf.commands.engines import faster_for

    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path))
    assert main(["time", *LENET_DEPLOY, "--phase", "TEST", "--engine", "auto", "--iterations", "2", "-v"]) == 0
    captured = capsys.readouterr()
    chosen, pytorch_ms, onnxruntime_ms, setup_s, how = MEASURED.fullmatch(captured.err.strip()).groups()
    assert how == "measured now: the best of 3 passes each after 2 warm-ups, per pass"
    assert chosen == ("ONNX Runtime" if float(onnxruntime_ms) < float(pytorch_ms) else "PyTorch")
    assert captured.out.splitlines()[0].endswith(f"; engine {chosen} (auto)")
    (cached,) = (tmp_path / "engines").glob("*.json")
    figures = json.loads(cached.read_text())
    assert f"{figures['pytorch_ms']:.2f}" == pytorch_ms and f"{figures['setup_s']:.2f}" == setup_s
    assert main(["run", *LENET_DEPLOY, "-v"]) == 0  # one pass: ONNX Runtime's setup counts
    captured = capsys.readouterr()
    expected = {"pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}[faster_for(figures, 1, setup_paid=False)]
    assert MEASURED.fullmatch(captured.err.strip()).group(1, 5) == (expected, "cached, for one pass")
    assert captured.out.splitlines()[0].endswith(f"; engine {expected} (auto)")
    # figures where ONNX Runtime wins even with its setup: run takes it; on other threads nothing is cached
    cached.write_text(json.dumps({"pytorch_ms": 900.0, "onnxruntime_ms": 100.0, "setup_s": 0.5}))
    assert main(["run", *LENET_DEPLOY]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("; engine ONNX Runtime (auto)")
    assert main(["run", *LENET_DEPLOY, "--threads", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("; engine PyTorch (auto)")
    assert main(["run", *LENET_DEPLOY, "--precision", "bf16", "-v"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("; precision bf16; phase TEST; engine PyTorch (auto)")
    assert captured.err == "auto: PyTorch: ONNX Runtime runs fp32 passes on the CPU, with the onnx extra\n"


@pytest.mark.parametrize("options, message", [
    (["--input", "data=0,1,8,8"], "bad --input 'data=0,1,8,8': expected BLOB=D1,D2,... with positive integer dims"),
    (["--input", "data=1,-1,8,8"], "bad --input 'data=1,-1,8,8': expected BLOB=D1,D2,... with positive integer dims"),
    (["--batch", "0"], "--batch must be at least 1, got 0"),
])
def test_export_refuses_non_positive_input_dims_before_loading(tmp_path, capsys, options, message):
    out = tmp_path / "x.onnx"
    assert main(["export", str(tmp_path / "absent.prototxt"), *options, "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()


def test_export_refuses_a_declared_zero_dim_at_its_input_layer(tmp_path, capsys):
    net, out = tmp_path / "zero.prototxt", tmp_path / "zero.onnx"
    net.write_text('name: "zero"\n'
                   'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 0 dim: 2 } } }\n'
                   'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }\n')
    assert main(["export", str(net), "-o", str(out)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:2:1: error: layer 'data' (Input): cannot export to ONNX: its top 'data' has the shape 0x2: an "
        "exported input needs every dim positive (give one with --input data=D1,D2,...)")
    assert not out.exists()


# Sequences start again mid-batch (a 0 after 1s), per stream; streams 0 and 2 continue at t=0 from
# the initial states (exposed, or zero: Caffe's first forward).
CONT = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.float32)


def recurrent_net(kind: str, expose: bool, static: bool) -> tuple[str, list[str]]:
    """A prototxt with x (5 x 3 x 2 x 3), cont, [x_static], [initial states] feeding one LSTM or RNN."""
    shapes = {"x": (5, 3, 2, 3), "cont": (5, 3), **({"x_static": (3, 4)} if static else {})}
    states = (["h_0", "c_0"] if kind == "LSTM" else ["h_0"]) if expose else []
    shapes.update({state: (1, 3, 5) for state in states})
    inputs = "".join(f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ '
                     + " ".join(f"dim: {d}" for d in shape) + " } } }\n" for name, shape in shapes.items())
    tops = ["y", *(f"{state}_last" for state in states)]
    layer = (f'layer {{ name: "r" type: "{kind}" ' + " ".join(f'bottom: "{b}"' for b in shapes) + " "
             + " ".join(f'top: "{t}"' for t in tops) + " recurrent_param { num_output: 5 "
             f"expose_hidden: {str(expose).lower()} weight_filler {{ type: 'gaussian' std: 0.5 }} "
             "bias_filler { type: 'gaussian' std: 0.5 } } }\n")
    return f'name: "recurrent"\n{inputs}{layer}', tops


@pytest.mark.parametrize("static", [False, True], ids=["", "x_static"])
@pytest.mark.parametrize("expose", [False, True], ids=["", "expose_hidden"])
@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_recurrent_layers_export_to_the_runners_values(tmp_path, kind, expose, static):
    text, tops = recurrent_net(kind, expose, static)
    path = tmp_path / "recurrent.prototxt"
    path.write_text(text)
    net, model, shapes = exported(path)
    feed = {**feed_for(shapes), "cont": CONT}
    outputs = run_model(export_net(net, model.blob_arrays(), shapes), feed, 2)
    reference = runner(model, feed)
    assert sorted(outputs) == sorted(tops)
    for top in tops:
        assert relative_error(reference[top], outputs[top]) < TOLERANCE, top


def test_lstm_unit_exports_to_the_runners_values(tmp_path):
    path = tmp_path / "unit.prototxt"
    path.write_text('name: "unit"\n' + "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'
        for name, dims in (("c_prev", "dim: 1 dim: 3 dim: 5"), ("gates", "dim: 1 dim: 3 dim: 20"),
                           ("cont", "dim: 1 dim: 3")))
        + 'layer { name: "u" type: "LSTMUnit" bottom: "c_prev" bottom: "gates" bottom: "cont" top: "c" top: "h" }\n')
    net, model, shapes = exported(path)
    feed = {**feed_for(shapes), "cont": np.array([[1, 0, 1]], dtype=np.float32)}
    outputs = run_model(export_net(net, model.blob_arrays(), shapes), feed, 2)
    reference = runner(model, feed)
    assert sorted(outputs) == ["c", "h"]
    for top in ("c", "h"):
        assert relative_error(reference[top], outputs[top]) < TOLERANCE, top
