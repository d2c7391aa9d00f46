"""Fast R-CNN's ROIPooling and SmoothL1Loss (rbgirshick/caffe-fast-rcnn): numpy loops written from
the fork's roi_pooling_layer.cpp/.cu and smooth_L1_loss_layer.cu, OpenCV for ROIPooling's forward,
and a training step of a Fast R-CNN-like head."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.errors import CaffeconfError  # noqa: E402

from test_run_layers import close, feed_layer  # noqa: E402
from test_run_segnet import load_text, op_of, train_steps  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_fork")

F32 = np.float32
FEATURES = np.random.default_rng(11).standard_normal((2, 3, 9, 8)).astype(F32)
# Inside, overhanging the map, fractional at .5 (C's round goes away from zero), malformed (end < start).
ROIS = np.array([[0, 0, 0, 15, 17], [1, 2.2, 1.6, 9.5, 7.3], [1, 5, 5, 4, 4], [0, -3, 3, 30, 6],
                 [1, 3, 1, 3, 1]], dtype=F32)
PARAM = {"pooled_h": 3, "pooled_w": 2, "spatial_scale": 0.5}


def c_round(value):
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def fork_roi(roi, scale, pooled_h, pooled_w):
    """(batch, start_h, start_w, end_h, end_w, bin_h, bin_w) as ROIPoolForward computes them, in float32."""
    start_w, start_h, end_w, end_h = (c_round(float(F32(v) * F32(scale))) for v in roi[1:5])
    bin_h = F32(max(end_h - start_h + 1, 1)) / F32(pooled_h)
    bin_w = F32(max(end_w - start_w + 1, 1)) / F32(pooled_w)
    return int(roi[0]), start_h, start_w, end_h, end_w, bin_h, bin_w


def fork_roi_pooling(x, rois, scale, pooled_h, pooled_w):
    """roi_pooling_layer.cpp Forward_cpu, loop for loop: (top, argmax)."""
    _, channels, height, width = x.shape
    top = np.full((len(rois), channels, pooled_h, pooled_w), -np.finfo(F32).max, dtype=F32)
    argmax = np.full(top.shape, -1)
    for n, roi in enumerate(rois):
        batch, start_h, start_w, _, _, bin_h, bin_w = fork_roi(roi, scale, pooled_h, pooled_w)
        for c in range(channels):
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    hs = min(max(int(math.floor(F32(ph) * bin_h)) + start_h, 0), height)
                    he = min(max(int(math.ceil(F32(ph + 1) * bin_h)) + start_h, 0), height)
                    ws = min(max(int(math.floor(F32(pw) * bin_w)) + start_w, 0), width)
                    we = min(max(int(math.ceil(F32(pw + 1) * bin_w)) + start_w, 0), width)
                    if he <= hs or we <= ws:
                        top[n, c, ph, pw] = 0
                    for h in range(hs, he):
                        for w in range(ws, we):
                            if x[batch, c, h, w] > top[n, c, ph, pw]:
                                top[n, c, ph, pw], argmax[n, c, ph, pw] = x[batch, c, h, w], h * width + w
    return top, argmax


def fork_roi_backward(x_shape, rois, argmax, dy, scale, pooled_h, pooled_w):
    """ROIPoolBackward (roi_pooling_layer.cu), per bottom cell: the units of each ROI holding it that
    the kernel derives back from the cell and whose argmax it is."""
    grad = np.zeros(x_shape)
    _, channels, height, width = x_shape
    for n, roi in enumerate(rois):
        batch, start_h, start_w, end_h, end_w, bin_h, bin_w = fork_roi(roi, scale, pooled_h, pooled_w)
        for c in range(channels):
            for h in range(start_h, min(end_h, height - 1) + 1):
                for w in range(max(start_w, 0), min(end_w, width - 1) + 1):
                    if h < 0:
                        continue
                    phs = min(max(int(math.floor(F32(h - start_h) / bin_h)), 0), pooled_h)
                    phe = min(max(int(math.ceil(F32(h - start_h + 1) / bin_h)), 0), pooled_h)
                    pws = min(max(int(math.floor(F32(w - start_w) / bin_w)), 0), pooled_w)
                    pwe = min(max(int(math.ceil(F32(w - start_w + 1) / bin_w)), 0), pooled_w)
                    for ph in range(phs, phe):
                        for pw in range(pws, pwe):
                            if argmax[n, c, ph, pw] == h * width + w:
                                grad[batch, c, h, w] += dy[n, c, ph, pw]
    return grad


def test_roi_pooling_is_the_forks_loop():
    (top,) = feed_layer("ROIPooling", {"roi_pooling_param": PARAM}, FEATURES, ROIS)
    expected, _ = fork_roi_pooling(FEATURES, ROIS, 0.5, 3, 2)
    assert top.shape == (5, 3, 3, 2)
    close(top, expected, 0)


def test_roi_pooling_empty_bins_give_zero_and_ties_the_first_cell():
    x = np.zeros((1, 1, 4, 4), dtype=F32)
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = 3.0
    rois = np.array([[0, 1, 1, 2, 2], [0, 10, 10, 12, 12]], dtype=F32)  # the second lies past the map
    op = op_of("ROIPooling", {"roi_pooling_param": {"pooled_h": 1, "pooled_w": 1}}, bottoms=("x", "rois"))
    features = torch.from_numpy(x).requires_grad_()
    (top,) = op.forward([features, torch.from_numpy(rois)], [])
    close(top.detach().numpy().ravel(), [3.0, 0.0], 0)
    top.sum().backward()
    assert features.grad.numpy()[0, 0, 1, 2] == 1.0 and features.grad.numpy().sum() == 1.0  # (1, 2) is first


def test_roi_pooling_matches_opencv(tmp_path):
    pytest.importorskip("cv2")
    from test_run_oracle import assert_close, one_layer_net, run_both

    layer = ('layer { name: "roi" type: "ROIPooling" bottom: "x" bottom: "rois" top: "roi" '
             'roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 } }')
    path = one_layer_net(tmp_path, layer, {"x": FEATURES.shape, "rois": ROIS.shape})
    ours, theirs = run_both(path, {"x": FEATURES, "rois": ROIS}, tmp_path)
    assert_close(ours, theirs)


def test_roi_pooling_backward_is_the_forks_kernel():
    op = op_of("ROIPooling", {"roi_pooling_param": PARAM}, bottoms=("x", "rois"))
    features = torch.from_numpy(FEATURES).requires_grad_()
    (top,) = op.forward([features, torch.from_numpy(ROIS)], [])
    dy = np.random.default_rng(12).standard_normal(top.shape).astype(F32)
    top.backward(torch.from_numpy(dy))
    _, argmax = fork_roi_pooling(FEATURES, ROIS, 0.5, 3, 2)
    close(features.grad.numpy(), fork_roi_backward(FEATURES.shape, ROIS, argmax, dy, 0.5, 3, 2))


def test_roi_pooling_gradcheck():
    op = op_of("ROIPooling", {"roi_pooling_param": PARAM}, bottoms=("x", "rois"))
    features = torch.from_numpy(FEATURES.astype(np.float64)).requires_grad_()
    rois = torch.from_numpy(ROIS[:2])
    assert torch.autograd.gradcheck(lambda x: op.forward([x, rois], [])[0], (features,))


@pytest.mark.parametrize("param,rois,message", [
    ({"pooled_h": 2}, ROIS, "roi_pooling_param.pooled_h and pooled_w must be greater than 0"),
    (PARAM, np.array([[2, 0, 0, 1, 1]], dtype=F32), "an ROI's batch index lies outside the 2 images"),
    (PARAM, np.zeros((3, 4), dtype=F32), r"ROIs \(3, 4\) need 5 values each"),
])
def test_roi_pooling_errors_name_the_layer(param, rois, message):
    with pytest.raises(CaffeconfError, match=r"layer 'l' \(ROIPooling\): " + message):
        feed_layer("ROIPooling", {"roi_pooling_param": param}, FEATURES, rois)


# ---------------------------------------------------------------- SmoothL1Loss

PRED = np.random.default_rng(13).standard_normal((4, 8)).astype(F32)
TARGET = np.random.default_rng(14).standard_normal((4, 8)).astype(F32)
INSIDE = (np.random.default_rng(15).random((4, 8)) > 0.3).astype(F32) * 2
OUTSIDE = np.random.default_rng(16).random((4, 8)).astype(F32)


def fork_smooth_l1(pred, target, inside, outside, sigma):
    d = inside.astype(np.float64) * (pred.astype(np.float64) - target)
    sigma2 = sigma * sigma
    errors = np.where(np.abs(d) < 1 / sigma2, 0.5 * d * d * sigma2, np.abs(d) - 0.5 / sigma2)
    slope = np.where(np.abs(d) < 1 / sigma2, sigma2 * d, np.sign(d))
    return (outside * errors).sum() / len(pred), slope * inside * outside / len(pred)


@pytest.mark.parametrize("sigma", [1.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_smooth_l1_loss_and_its_backward_are_the_forks(sigma, weighted):
    bottoms = [PRED, TARGET] + ([INSIDE, OUTSIDE] if weighted else [])
    ones = np.ones_like(PRED)
    loss, grad = fork_smooth_l1(PRED, TARGET, *((INSIDE, OUTSIDE) if weighted else (ones, ones)), sigma)
    (top,) = feed_layer("SmoothL1Loss", {"smooth_l1_loss_param": {"sigma": sigma}}, *bottoms)
    close(top, loss)
    op = op_of("SmoothL1Loss", {"smooth_l1_loss_param": {"sigma": sigma}}, bottoms=tuple("abcd"[:len(bottoms)]))
    pred, target = (torch.from_numpy(b).requires_grad_() for b in bottoms[:2])
    (value,) = op.forward([pred, target] + [torch.from_numpy(b) for b in bottoms[2:]], [])
    (value * 2).backward()  # a loss weight of 2
    close(pred.grad.numpy(), 2 * grad)
    close(target.grad.numpy(), -2 * grad)


def test_smooth_l1_loss_takes_both_weights_or_none():
    with pytest.raises(CaffeconfError, match=re.escape("layer 'l' (SmoothL1Loss): SmoothL1Loss takes 2 bottoms")):
        op_of("SmoothL1Loss", {}, bottoms=("a", "b", "c"))


def test_smooth_l1_loss_bottoms_must_agree_in_shape():
    with pytest.raises(CaffeconfError, match=r"bottom 1 4x2x4 does not match the predictions 4x8"):
        feed_layer("SmoothL1Loss", {}, PRED, TARGET.reshape(4, 2, 4))


# ---------------------------------------------------------------- a Fast R-CNN-like head trains

FAST_RCNN_LIKE = '''name: "fast_rcnn_like"
input: "data" input_shape { dim: 2 dim: 3 dim: 12 dim: 12 }
input: "rois" input_shape { dim: 6 dim: 5 }
input: "labels" input_shape { dim: 6 }
input: "bbox_targets" input_shape { dim: 6 dim: 8 }
input: "bbox_inside_weights" input_shape { dim: 6 dim: 8 }
input: "bbox_outside_weights" input_shape { dim: 6 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "roi_pool" type: "ROIPooling" bottom: "conv1" bottom: "rois" top: "roi_pool"
        roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0.5 } }
layer { name: "fc" type: "InnerProduct" bottom: "roi_pool" top: "fc"
        inner_product_param { num_output: 8 weight_filler { type: "xavier" } } }
layer { name: "relu_fc" type: "ReLU" bottom: "fc" top: "fc" }
layer { name: "cls_score" type: "InnerProduct" bottom: "fc" top: "cls_score"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "bbox_pred" type: "InnerProduct" bottom: "fc" top: "bbox_pred"
        inner_product_param { num_output: 8 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss_cls" type: "SoftmaxWithLoss" bottom: "cls_score" bottom: "labels" top: "loss_cls" }
layer { name: "loss_bbox" type: "SmoothL1Loss" bottom: "bbox_pred" bottom: "bbox_targets"
        bottom: "bbox_inside_weights" bottom: "bbox_outside_weights" top: "loss_bbox" loss_weight: 1 }
'''


def test_a_fast_rcnn_like_head_trains(tmp_path):
    generator = torch.Generator().manual_seed(1)
    rois = torch.tensor([[0, 0, 0, 11, 11], [0, 2, 2, 8, 9], [1, 1, 3, 20, 20],
                         [1, 0, 0, 5, 5], [0, 6, 1, 23, 14], [1, 4, 4, 4, 4]], dtype=torch.float32)
    inputs = {"data": torch.randn(2, 3, 12, 12, generator=generator), "rois": rois,
              "labels": torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.float32),
              "bbox_targets": torch.randn(6, 8, generator=generator) * 0.5,
              "bbox_inside_weights": torch.ones(6, 8), "bbox_outside_weights": torch.full((6, 8), 0.5)}
    model_net = load_text(FAST_RCNN_LIKE, tmp_path)
    losses = train_steps(model_net, inputs, steps=20, rate=0.05)
    assert losses[-1] < 0.7 * losses[0], losses
