"""The export of SSD's layers (Normalize, Permute, PriorBox, DetectionOutput): ONNX Runtime's value of
every blob, detections included, equals the runner's within 1e-4 and OpenCV's detections, on a small
SSD head in the tiny fork and on MobileNet-SSD from ../shared (seeded random weights, a lowered
confidence_threshold so that they leave detections); what ONNX cannot express is refused, located."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from caffeconf.cli import main  # noqa: E402
from caffeconf.compile.load import load  # noqa: E402
from caffeconf.compile.rules import filter_net  # noqa: E402
from caffeconf.export.graph import export_net  # noqa: E402
from caffeconf.export.ort import cpu_session, run_model  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402

from test_export import TOLERANCE, relative_error  # noqa: E402
from test_run_oracle import (MOBILENET_SSD, SSD_DETECTION, SSD_DETECTIONS, SSD_NORMALIZE, SSD_PRIORS,  # noqa: E402
                             SSD_PROTO, assert_detections_match, by_image_label_score, randomize_blobs,
                             run_both, ssd_net)


def runner_and_export(path, inputs, seed=0, dynamic_batch=False):
    """The runner's every blob (as test_run_oracle's run_both weights it) and the net exported with
    every blob an output."""
    net = filter_net(load(path).net, phase="TEST")
    model = CaffeNet(net, seed=seed)
    feed = {name: torch.from_numpy(value) for name, value in inputs.items()}
    with torch.no_grad():
        model(feed)
        randomize_blobs(model, seed)
        blobs = {name: value.numpy() for name, value in model(feed, keep_all=True).items()}
    every_blob = [name for name in dict.fromkeys(t for layer in net.layers for t in layer.tops) if name not in inputs]
    shapes = {name: value.shape for name, value in inputs.items()}
    exported = export_net(net, model.blob_arrays(), shapes, dynamic_batch=dynamic_batch, extra_outputs=every_blob)
    return blobs, exported, every_blob


def assert_same_detections(expected: np.ndarray, got: np.ndarray) -> None:
    """The same rows within 1e-4, in Caffe's order: by image, by label, best score first. (Two scores
    an ulp apart, ONNX Runtime's softmax against PyTorch's, may swap two rows: rows are compared in
    test_run_oracle's order, by rounded score then position.)"""
    assert got.shape == expected.shape, (got.shape, expected.shape)
    rows = got.reshape(-1, 7)
    assert np.array_equal(rows[np.lexsort((-rows[:, 2], rows[:, 1], rows[:, 0]))], rows), "Caffe's order"
    expected, got = by_image_label_score(expected.reshape(-1, 7)), by_image_label_score(rows)
    assert np.array_equal(got[:, :2], expected[:, :2]), "images and labels"
    assert relative_error(expected, got) < TOLERANCE


def check_ssd_export(tmp_path, detection_top="det", opencv=True, **net):
    path = ssd_net(tmp_path, **net)
    inputs = {"data": np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)}
    reference, exported, every_blob = runner_and_export(path, inputs)
    outputs = run_model(exported, inputs, 2)
    assert sorted(outputs) == sorted(every_blob)
    assert_same_detections(reference[detection_top], outputs[detection_top])
    errors = {name: relative_error(reference[name], outputs[name]) for name in every_blob if name != detection_top}
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (worst, errors[worst])
    if opencv:
        _, theirs = run_both(path, inputs, tmp_path)  # the same weights
        assert_detections_match(outputs[detection_top], theirs[detection_top])
    return outputs[detection_top]


@pytest.mark.parametrize("norm", SSD_NORMALIZE + ["across_spatial: true channel_shared: false eps: 0.01"])
def test_normalize_exports_to_the_runners_values(tiny_fork, tmp_path, norm):
    if "across_spatial: true" in norm:  # OpenCV refuses this one: the runner only (its numpy tests)
        path = ssd_net(tmp_path, norm=norm, detection=SSD_DETECTION)
        inputs = {"data": np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)}
        reference, exported, _ = runner_and_export(path, inputs)
        assert relative_error(reference["norm"], run_model(exported, inputs, 2)["norm"]) < TOLERANCE
        return
    check_ssd_export(tmp_path, norm=norm, detection=SSD_DETECTION)


@pytest.mark.parametrize("prior,priors", SSD_PRIORS, ids=[p for p, _ in SSD_PRIORS])
def test_prior_box_exports_as_the_runners_constant(tiny_fork, tmp_path, prior, priors):
    check_ssd_export(tmp_path, prior=prior, priors=priors, detection=SSD_DETECTION)


# (OpenCV reads no CORNER_SIZE, and no variance_encoded_in_target with PriorBox's variances: the runner only)
@pytest.mark.parametrize("detection,share_location,opencv", [(*case, True) for case in SSD_DETECTIONS] + [
    ("code_type: CORNER_SIZE confidence_threshold: 0.26 keep_top_k: 12 nms_param { nms_threshold: 0.3 top_k: 15 }",
     False, False),
    ("code_type: CENTER_SIZE variance_encoded_in_target: true confidence_threshold: 0.26 keep_top_k: 20 "
     "nms_param { nms_threshold: 0.45 }", True, False)], ids=lambda value: str(value))
def test_detection_output_exports_to_the_runners_rows(tiny_fork, tmp_path, detection, share_location, opencv):
    detections = check_ssd_export(tmp_path, detection=detection, share_location=share_location, opencv=opencv)
    assert detections.shape[2] > 5, "enough detections to compare"


def test_no_detection_gives_one_row_of_minus_ones_per_image(tiny_fork, tmp_path):
    # (OpenCV answers no rows at all: the runner only)
    rows = check_ssd_export(tmp_path, opencv=False, detection="code_type: CENTER_SIZE confidence_threshold: 0.99 "
                                                              "keep_top_k: 10 nms_param { nms_threshold: 0.45 }")
    assert rows.tolist() == [[[[0] + [-1] * 6, [1] + [-1] * 6]]]


def test_a_dynamic_batch_ssd_export_runs_at_batch_1_and_10_with_priors_of_batch_1(tiny_fork, tmp_path):
    path = ssd_net(tmp_path, detection=SSD_DETECTIONS[0][0])
    inputs = {"data": np.zeros((2, 3, 32, 32), np.float32)}
    _, exported, _ = runner_and_export(path, inputs, dynamic_batch=True)
    session = cpu_session(exported, 2)
    for batch in (1, 10):
        feed = {"data": np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)}
        reference, _, _ = runner_and_export(path, feed)
        names = ["det", "prior", "conf_flat"]
        for name, value in zip(names, session.run(names, feed)):
            if name == "det":
                assert_same_detections(reference[name], value)
            else:
                assert value.shape == reference[name].shape and relative_error(reference[name], value) < TOLERANCE


def test_eta_below_1_is_refused_at_the_layer(tiny_fork, tmp_path, capsys):
    path = ssd_net(tmp_path, detection="code_type: CENTER_SIZE keep_top_k: 10 nms_param { nms_threshold: 0.45 "
                                       "eta: 0.9 }")
    out = tmp_path / "ssd.onnx"
    assert main(["export", str(path), "--random-weights", "-o", str(out)]) == 1
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if '"DetectionOutput"' in text)
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{path}:{line}:1: error: layer 'det' (DetectionOutput): cannot export to ONNX: nms_param.eta 0.9 lowers "
        "the NMS threshold after each kept box; ONNX NonMaxSuppression keeps one threshold (export with eta 1)")
    assert not out.exists()


def test_mobilenet_ssd_exports_to_the_runners_values_and_opencvs_detections(tmp_path):
    if not (MOBILENET_SSD.is_file() and SSD_PROTO.is_file()):
        pytest.skip("../shared/models/mobilenet-ssd or ../shared/dialects/ssd is absent")
    from caffeconf.caffe import dialect

    net = tmp_path / "ssd.prototxt"
    net.write_text(MOBILENET_SSD.read_text().replace("confidence_threshold: 0.25", "confidence_threshold: 0.06"))
    inputs = {"data": np.random.default_rng(3).standard_normal((1, 3, 300, 300)).astype(np.float32)}
    with dialect.use(dialect.load_dialect(SSD_PROTO)):
        reference, exported, every_blob = runner_and_export(net, inputs)
        _, opencv = run_both(net, inputs, tmp_path)
    outputs = run_model(exported, inputs, 2)
    assert reference["detection_out"].shape[2] > 20, "enough detections to compare"
    detections = outputs.pop("detection_out")
    assert_same_detections(reference.pop("detection_out"), detections)
    assert_detections_match(detections, opencv["detection_out"])
    errors = {name: relative_error(reference[name], outputs[name]) for name in outputs}
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, (worst, errors[worst])


SWAPPED_CORNERS_NET = """name: "swapped"
layer { name: "loc" type: "Input" top: "loc" input_param { shape { dim: 1 dim: 8 } } }
layer { name: "conf" type: "Input" top: "conf" input_param { shape { dim: 1 dim: 4 } } }
layer { name: "prior" type: "Input" top: "prior" input_param { shape { dim: 1 dim: 2 dim: 8 } } }
layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior" top: "det"
  detection_output_param { num_classes: 2 background_label_id: 0 code_type: CORNER keep_top_k: 10
                           nms_param { nms_threshold: 0.45 } } }
"""


def test_a_box_with_its_corners_swapped_suppresses_nothing_as_in_caffe(tiny_fork, tmp_path):
    """Box 0 is box 1 with xmin and xmax swapped: the fork's overlap of it is 0, so both are kept;
    ONNX Runtime's NMS, which orders corners itself, would drop box 1 without the export's care."""
    path = tmp_path / "swapped.prototxt"
    path.write_text(SWAPPED_CORNERS_NET)
    feed = {"loc": np.zeros((1, 8), np.float32), "conf": np.array([[0.1, 0.9, 0.2, 0.8]], np.float32),
            "prior": np.array([[[0.6, 0.1, 0.2, 0.5, 0.2, 0.1, 0.6, 0.5], [0.1] * 8]], np.float32)}
    net = filter_net(load(path).net, phase="TEST")
    model = CaffeNet(net)
    with torch.no_grad():
        expected = model({name: torch.from_numpy(value) for name, value in feed.items()})["det"].numpy()
    got = run_model(export_net(net, {}, {name: value.shape for name, value in feed.items()}), feed, 2)["det"]
    assert expected.reshape(-1, 7)[:, 2].tolist() == pytest.approx([0.9, 0.8])
    assert np.array_equal(got, expected)
