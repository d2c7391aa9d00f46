"""SSD's layers (weiliu89/caffe, branch ssd) where OpenCV cannot check them or reads them
differently: values worked out by hand from the fork's formulas. (The OpenCV parity tests are in
test_run_oracle.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.errors import CaffeconfError  # noqa: E402

from test_run_layers import close, feed_layer  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_fork")


# ---------------------------------------------------------------- Normalize

X = np.random.default_rng(4).standard_normal((2, 3, 2, 2)).astype(np.float32) * 0.3


def test_normalize_across_spatial_with_a_scale_per_channel_adds_eps_to_the_sum_of_squares():
    scale = np.array([1.0, 2.0, 3.0])
    (top,) = feed_layer("Normalize", {"norm_param": {"channel_shared": False, "eps": 0.5}}, X, blobs=[scale])
    norms = np.sqrt((X.astype(np.float64) ** 2).sum(axis=(1, 2, 3)) + 0.5)
    close(top, X / norms[:, None, None, None] * scale[None, :, None, None])


def test_normalize_within_each_cell_with_a_shared_scale():
    (top,) = feed_layer("Normalize", {"norm_param": {"across_spatial": False, "eps": 0.25}}, X, blobs=[1.5])
    norms = np.sqrt((X.astype(np.float64) ** 2).sum(axis=1, keepdims=True) + 0.25)
    close(top, X / norms * 1.5)


@pytest.mark.parametrize("across_spatial", [True, False])
@pytest.mark.parametrize("channel_shared", [True, False])
def test_normalize_backward_is_the_forks(across_spatial, channel_shared):
    """bottom_diff = scale (dy - x sum(x dy) / norm^2) / norm, the sums over what the norm sums (with
    a scale per channel not the forward's derivative); scale_diff = sum(top dy) / scale."""
    from caffeconf.ir import Layer
    from caffeconf.run.layers import LAYERS, LayerContext

    layer = Layer("l", "Normalize", ("x",), ("y",), {"norm_param": {
        "across_spatial": across_spatial, "channel_shared": channel_shared}})
    op = LAYERS["Normalize"](LayerContext(layer, "TRAIN", torch.Generator()))
    x = torch.from_numpy(X.astype(np.float64)).requires_grad_()
    scale = torch.tensor(1.5 if channel_shared else [1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    dy = torch.from_numpy(np.random.default_rng(5).standard_normal(X.shape))
    (top,) = op.forward([x], [scale])
    top.backward(dy)
    xs, dys, tops = X.astype(np.float64), dy.numpy(), top.detach().numpy()
    axes = (1, 2, 3) if across_spatial else 1
    norm = np.sqrt((xs ** 2).sum(axis=axes, keepdims=True) + 1e-10)
    gain = scale.detach().numpy().reshape((1, -1, 1, 1) if not channel_shared else ())
    along = (xs * dys).sum(axis=axes, keepdims=True)
    close(x.grad.numpy(), gain * (dys - xs * along / norm ** 2) / norm)
    products = (tops * dys).sum(axis=(0, 2, 3))
    close(scale.grad.numpy(), (products.sum() if channel_shared else products) / scale.detach().numpy())


def test_normalize_scale_starts_at_one_or_its_filler():
    from caffeconf.run.interpreter import CaffeNet
    from caffeconf.ir import Layer, Net

    layers = (Layer("x", "Input", (), ("x",), {"input_param": {"shape": [{"dim": [1, 3, 2, 2]}]}}),
              Layer("shared", "Normalize", ("x",), ("a",), {}),
              Layer("own", "Normalize", ("x",), ("b",), {"norm_param": {
                  "channel_shared": False, "scale_filler": {"type": "constant", "value": 20.0}}}))
    model = CaffeNet(Net("t", layers))
    model.materialize({"x": (1, 3, 2, 2)})
    shared, own = (blobs[0].detach().numpy() for blobs in model.layer_blobs[1:])
    assert shared.shape == () and shared == 1.0
    assert own.shape == (3,) and (own == 20.0).all()


# ---------------------------------------------------------------- PriorBox

def test_prior_box_from_written_image_size_and_steps_with_min_size_read_as_an_int():
    """A 1x2 feature map, img_h 20 / img_w 40, step_h 10 / step_w 20: centres (10, 5), (30, 5);
    min_size 7.9 is read as 7 (the fork's `int min_size_`), so the boxes are 7x7, sqrt(7*12)
    squared, then 7*sqrt(2) by 7/sqrt(2)."""
    fields = {"prior_box_param": {"min_size": [7.9], "max_size": [12.0], "aspect_ratio": [2.0], "flip": False,
                                  "img_h": 20, "img_w": 40, "step_h": 10.0, "step_w": 20.0, "variance": [0.3]}}
    (top,) = feed_layer("PriorBox", fields, np.zeros((1, 1, 1, 2)), np.zeros((1, 3, 5, 5)))
    sizes = [(7, 7), (math.sqrt(84), math.sqrt(84)), (7 * math.sqrt(2), 7 / math.sqrt(2))]
    expected = [((cx - w / 2) / 40, (5 - h / 2) / 20, (cx + w / 2) / 40, (5 + h / 2) / 20)
                for cx in (10, 30) for w, h in sizes]
    assert top.shape == (1, 2, 24)
    close(top[0, 0], expected)
    close(top[0, 1], [0.3] * 24)


def test_prior_box_steps_from_the_image_bottom_and_img_size():
    fields = {"prior_box_param": {"min_size": [4.0], "offset": 0.25}}
    (from_bottom,) = feed_layer("PriorBox", fields, np.zeros((1, 1, 2, 4)), np.zeros((1, 3, 16, 32)))
    # steps 16/2 = 8 high and 32/4 = 8 wide; default variance 0.1
    close(from_bottom[0, 0, :8], [(2 - 2) / 32, (2 - 2) / 16, (2 + 2) / 32, (2 + 2) / 16,
                                  (10 - 2) / 32, (2 - 2) / 16, (10 + 2) / 32, (2 + 2) / 16])
    close(from_bottom[0, 1], [0.1] * 32)
    fields["prior_box_param"]["img_size"] = 64
    (written,) = feed_layer("PriorBox", fields, np.zeros((1, 1, 2, 4)), np.zeros((1, 3, 16, 32)))
    # steps 64/2 = 32 and 64/4 = 16: the second cell's centre is (0.25 + 1) * 16 = 20 across
    close(written[0, 0, 4:8], [(20 - 2) / 64, (8 - 2) / 64, (20 + 2) / 64, (8 + 2) / 64])


def test_prior_box_setup_errors_are_located():
    with pytest.raises(CaffeconfError, match=r"layer 'l' \(PriorBox\): prior_box_param needs min_size"):
        feed_layer("PriorBox", {"prior_box_param": {}}, np.zeros((1, 1, 2, 2)), np.zeros((1, 3, 8, 8)))


# ---------------------------------------------------------------- DetectionOutput

# Three priors, the first two overlapping (IoU 0.818), and per prior the scores of
# background, class 1 and class 2.
PRIORS = [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.9, 0.9]]
VARIANCE = [0.1, 0.1, 0.2, 0.2]
SCORES = [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]]


def detect(loc=None, batch=1, **param):
    """DetectionOutput on PRIORS and SCORES (the same for each image): its rows."""
    param = {"num_classes": 3, "code_type": "CENTER_SIZE", "nms_param": {"nms_threshold": 0.45}, **param}
    locations = np.tile(np.zeros(12) if loc is None else np.asarray(loc, dtype=np.float64).reshape(-1), (batch, 1))
    priors = np.array([sum(PRIORS, []), VARIANCE * 3]).reshape(1, 2, 12)
    confidences = np.tile(np.array(SCORES).reshape(1, 9), (batch, 1))
    (top,) = feed_layer("DetectionOutput", {"detection_output_param": param}, locations, confidences, priors)
    assert top.shape[:2] == (1, 1) and top.shape[3] == 7
    return top.reshape(-1, 7)


def rows(*entries):
    """(image, label, score, prior index) -> the row Caffe writes for an undecoded (zero) location."""
    return [[image, label, score] + PRIORS[prior] for image, label, score, prior in entries]


def test_detections_by_image_then_label_then_score():
    # class 1: prior 1 overlaps prior 0 by 0.818 > 0.45; class 2: priors 0 and 1 tie at 0.1,
    # prior 0 first (stable order), then prior 1 falls to it
    close(detect(batch=2), rows((0, 1, 0.8, 0), (0, 1, 0.3, 2), (0, 2, 0.4, 2), (0, 2, 0.1, 0),
                                (1, 1, 0.8, 0), (1, 1, 0.3, 2), (1, 2, 0.4, 2), (1, 2, 0.1, 0)))


def test_keep_top_k_keeps_the_best_over_all_classes_and_still_groups_by_class():
    close(detect(keep_top_k=3), rows((0, 1, 0.8, 0), (0, 1, 0.3, 2), (0, 2, 0.4, 2)))


def test_confidence_threshold_is_strict_and_top_k_limits_candidates_per_class():
    close(detect(confidence_threshold=0.3), rows((0, 1, 0.8, 0), (0, 2, 0.4, 2)))
    close(detect(nms_param={"nms_threshold": 0.45, "top_k": 1}), rows((0, 1, 0.8, 0), (0, 2, 0.4, 2)))


def test_eta_lowers_the_nms_threshold_after_each_kept_box():
    loose = {"nms_threshold": 0.9}
    close(detect(nms_param=loose), rows((0, 1, 0.8, 0), (0, 1, 0.7, 1), (0, 1, 0.3, 2),
                                        (0, 2, 0.4, 2), (0, 2, 0.1, 0), (0, 2, 0.1, 1)))
    # after the first box of class 1 the threshold is 0.9 * 0.5 = 0.45: prior 1 (0.818) goes
    close(detect(nms_param={**loose, "eta": 0.5}), rows((0, 1, 0.8, 0), (0, 1, 0.3, 2), (0, 2, 0.4, 2),
                                                        (0, 2, 0.1, 0)))


def test_no_detection_gives_one_row_of_minus_ones_per_image():
    close(detect(batch=2, confidence_threshold=0.9), [[0] + [-1] * 6, [1] + [-1] * 6])


# Prior 2 is (0.6, 0.6, 0.9, 0.9), 0.3 wide and high; its location (0.5, -0.5, 1, 0).
DECODED = [
    ("CORNER", False, [0.6 + 0.1 * 0.5, 0.6 - 0.1 * 0.5, 0.9 + 0.2, 0.9]),
    ("CORNER", True, [0.6 + 0.5, 0.6 - 0.5, 0.9 + 1, 0.9]),
    ("CORNER_SIZE", False, [0.6 + 0.1 * 0.5 * 0.3, 0.6 - 0.1 * 0.5 * 0.3, 0.9 + 0.2 * 0.3, 0.9]),
    ("CORNER_SIZE", True, [0.6 + 0.5 * 0.3, 0.6 - 0.5 * 0.3, 0.9 + 0.3, 0.9]),
    ("CENTER_SIZE", False, [0.75 + 0.1 * 0.5 * 0.3 - math.exp(0.2) * 0.15, 0.75 - 0.1 * 0.5 * 0.3 - 0.15,
                            0.75 + 0.1 * 0.5 * 0.3 + math.exp(0.2) * 0.15, 0.75 - 0.1 * 0.5 * 0.3 + 0.15]),
    ("CENTER_SIZE", True, [0.75 + 0.5 * 0.3 - math.exp(1) * 0.15, 0.75 - 0.5 * 0.3 - 0.15,
                           0.75 + 0.5 * 0.3 + math.exp(1) * 0.15, 0.75 - 0.5 * 0.3 + 0.15]),
]


@pytest.mark.parametrize("code_type,in_target,box", DECODED, ids=[f"{c}-{t}" for c, t, _ in DECODED])
def test_decoding_each_code_type(code_type, in_target, box):
    loc = [0.0] * 8 + [0.5, -0.5, 1.0, 0.0]
    found = detect(loc=loc, code_type=code_type, variance_encoded_in_target=in_target, confidence_threshold=0.35)
    close(found, [[0, 1, 0.8] + PRIORS[0], [0, 2, 0.4] + box])


def test_locations_per_class_without_share_location_and_another_background():
    # background 2: classes 0 and 1 are detected, each with its own locations (class 0's moved by 0.1)
    loc = np.zeros((3, 3, 4))
    loc[:, 0] = 1.0
    found = detect(loc=loc, share_location=False, background_label_id=2, code_type="CORNER",
                   confidence_threshold=0.25)
    moved = [[x + 0.1, y + 0.1, u + 0.2, v + 0.2] for x, y, u, v in PRIORS]
    close(found, [[0, 0, 0.3] + moved[2], [0, 1, 0.8] + PRIORS[0], [0, 1, 0.3] + PRIORS[2]])


@pytest.mark.parametrize("param,message", [
    ({"nms_param": {"eta": 0.0}}, r"nms_param.eta must lie in \(0, 1\], got 0.0"),
    ({"background_label_id": -1}, "with share_location, background_label_id -1 leaves the fork no locations"),
    ({"num_classes": 4}, r"confidences \(1, 9\) need 12 values per image \(3 priors x 4\)"),
])
def test_detection_output_errors_name_the_layer(param, message):
    with pytest.raises(CaffeconfError, match=r"layer 'l' \(DetectionOutput\): " + message):
        detect(**param)
