"""Loss and scoring layers. Losses produce a 0-axis blob, as Caffe's do."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .registry import LayerContext, Op, register

FLT_MIN = float(np.finfo(np.float32).tiny)  # Caffe clamps probabilities at FLT_MIN before log
LOG_THRESHOLD = 1e-20  # Caffe's kLOG_THRESHOLD for the probability-input losses


def _normalization(ctx: LayerContext, legacy_default: str) -> str:
    """loss_param.normalization, else the deprecated `normalize` bool, else the layer's default."""
    p = ctx.param("loss_param")
    if p.has("normalization"):
        return p["normalization"]
    if p.has("normalize"):
        return "VALID" if p["normalize"] else "BATCH_SIZE"
    return legacy_default


def _normalizer(mode: str, outer: int, inner: int, valid: torch.Tensor) -> torch.Tensor:
    """Caffe's LossLayer::GetNormalizer, never below 1."""
    counts = {"FULL": outer * inner, "BATCH_SIZE": outer, "NONE": 1}
    value = valid.to(torch.float32) if mode == "VALID" else torch.tensor(float(counts[mode]))
    return torch.clamp(value, min=1.0)


def _ignore_label(p) -> int | None:
    return p["ignore_label"] if p.has("ignore_label") else None


def _class_layout(ctx: LayerContext, x: torch.Tensor, axis_param: int):
    axis = ctx.axis(axis_param, x.dim())
    return axis, math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])


def _labels(ctx: LayerContext, label: torch.Tensor, outer: int, inner: int) -> torch.Tensor:
    if label.numel() != outer * inner:
        raise ctx.error(f"the label count {label.numel()} must equal outer x inner = {outer * inner}")
    return label.reshape(outer, inner).long()


def _log_prob_at_labels(ctx, prob, labels, ignore):
    """log(max(prob[label], FLT_MIN)) per (outer, inner) position, 0 where ignored."""
    classes = prob.shape[1]
    valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    if bool(((safe < 0) | (safe >= classes)).any()):
        raise ctx.error(f"labels must lie in [0, {classes})")
    picked = prob.gather(1, safe.unsqueeze(1)).squeeze(1)
    return torch.where(valid, torch.log(picked.clamp(min=FLT_MIN)), torch.zeros_like(picked)), valid


@register("SoftmaxWithLoss")
def softmax_with_loss(ctx: LayerContext) -> Op:
    axis_param = ctx.param("softmax_param")["axis"]
    mode, ignore = _normalization(ctx, "VALID"), _ignore_label(ctx.param("loss_param"))

    def forward(bottoms, blobs):
        x, label = bottoms[0], bottoms[1]
        axis, outer, inner = _class_layout(ctx, x, axis_param)
        prob = F.softmax(x, dim=axis)
        flat = prob.reshape(outer, x.shape[axis], inner)
        logs, valid = _log_prob_at_labels(ctx, flat, _labels(ctx, label, outer, inner), ignore)
        loss = -logs.sum() / _normalizer(mode, outer, inner, valid.sum())
        return [loss, prob][: len(ctx.layer.tops)]

    return Op(forward=forward)


@register("InfogainLoss")
def infogain_loss(ctx: LayerContext) -> Op:
    p = ctx.param("infogain_loss_param")
    axis_param, source = p["axis"], p["source"]
    mode, ignore = _normalization(ctx, "VALID"), _ignore_label(ctx.param("loss_param"))
    stored = None
    if len(ctx.layer.bottoms) < 3:
        if not source:
            raise ctx.error("InfogainLoss needs a third bottom or infogain_loss_param.source")
        from ...caffe.weights import read_blob_file

        stored = torch.from_numpy(read_blob_file(source))

    def forward(bottoms, blobs):
        x, label = bottoms[0], bottoms[1]
        infogain = bottoms[2] if len(bottoms) > 2 else stored.to(x.device)
        axis, outer, inner = _class_layout(ctx, x, axis_param)
        classes = x.shape[axis]
        matrix = infogain.reshape(classes, classes)
        # Current Caffe applies a softmax first, like SoftmaxWithLoss.
        prob = F.softmax(x, dim=axis).reshape(outer, classes, inner)
        labels = _labels(ctx, label, outer, inner)
        valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
        weights = matrix[torch.where(valid, labels, torch.zeros_like(labels))]  # (outer, inner, K)
        terms = (weights.permute(0, 2, 1) * torch.log(prob.clamp(min=FLT_MIN))).sum(dim=1)
        loss = -torch.where(valid, terms, torch.zeros_like(terms)).sum()
        return [loss / _normalizer(mode, outer, inner, valid.sum()), F.softmax(x, dim=axis)][: len(ctx.layer.tops)]

    return Op(forward=forward)


@register("MultinomialLogisticLoss")
def multinomial_logistic_loss(ctx: LayerContext) -> Op:
    def forward(bottoms, blobs):
        prob, label = bottoms[0], bottoms[1]
        flat = prob.reshape(prob.shape[0], -1)
        picked = flat.gather(1, label.reshape(-1, 1).long()).squeeze(1)
        return [-torch.log(picked.clamp(min=LOG_THRESHOLD)).sum() / prob.shape[0]]

    return Op(forward=forward)


@register("EuclideanLoss")
def euclidean_loss(ctx: LayerContext) -> Op:
    def forward(bottoms, blobs):
        a, b = bottoms
        if a.numel() != b.numel():
            raise ctx.error(f"bottoms must have equal counts, got {a.numel()} and {b.numel()}")
        diff = a - b.reshape(a.shape)
        return [(diff * diff).sum() / a.shape[0] / 2]

    return Op(forward=forward)


@register("SigmoidCrossEntropyLoss")
def sigmoid_cross_entropy_loss(ctx: LayerContext) -> Op:
    # Without normalization settings Caffe keeps its historical division by the batch size.
    mode, ignore = _normalization(ctx, "BATCH_SIZE"), _ignore_label(ctx.param("loss_param"))

    def forward(bottoms, blobs):
        x, target = bottoms[0], bottoms[1].reshape(bottoms[0].shape)
        positive = (x >= 0).to(x.dtype)
        # The numerically stable form Caffe uses.
        terms = x * (target - positive) - torch.log1p(torch.exp(x - 2 * x * positive))
        valid = target != ignore if ignore is not None else torch.ones_like(x, dtype=torch.bool)
        loss = -torch.where(valid, terms, torch.zeros_like(terms)).sum()
        outer = x.shape[0]
        return [loss / _normalizer(mode, outer, x.numel() // outer, valid.sum())]

    return Op(forward=forward)


@register("ContrastiveLoss")
def contrastive_loss(ctx: LayerContext) -> Op:
    p = ctx.param("contrastive_loss_param")
    margin, legacy = p["margin"], p["legacy_version"]

    def forward(bottoms, blobs):
        a, b, similar = bottoms
        squared = ((a - b) ** 2).reshape(a.shape[0], -1).sum(dim=1)
        dissimilar = (torch.clamp(margin - squared, min=0) if legacy
                      else torch.clamp(margin - torch.sqrt(squared), min=0) ** 2)
        same = similar.reshape(-1) != 0
        return [torch.where(same, squared, dissimilar).sum() / a.shape[0] / 2]

    return Op(forward=forward)


@register("HingeLoss")
def hinge_loss(ctx: LayerContext) -> Op:
    norm = ctx.param("hinge_loss_param")["norm"]

    def forward(bottoms, blobs):
        x, label = bottoms
        scores = x.reshape(x.shape[0], -1)
        sign = torch.ones_like(scores).scatter(1, label.reshape(-1, 1).long(), -1.0)
        margins = torch.clamp(1 + sign * scores, min=0)
        total = margins.sum() if norm == "L1" else (margins * margins).sum()
        return [total / x.shape[0]]

    return Op(forward=forward)


@register("Accuracy")
def accuracy(ctx: LayerContext) -> Op:
    p = ctx.param("accuracy_param")
    top_k, axis_param, ignore = p["top_k"], p["axis"], _ignore_label(p)

    def forward(bottoms, blobs):
        x, label = bottoms[0], bottoms[1]
        axis, outer, inner = _class_layout(ctx, x, axis_param)
        classes = x.shape[axis]
        scores = x.reshape(outer, classes, inner)
        labels = _labels(ctx, label, outer, inner)
        valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        true_score = scores.gather(1, safe.unsqueeze(1))
        # Caffe counts classes scoring >= the true class (itself included) and needs < top_k others.
        better = (scores >= true_score).sum(dim=1) - 1
        correct = (better < top_k) & valid
        tops = [correct.sum().to(x.dtype) / valid.sum().clamp(min=1).to(x.dtype)]
        if len(ctx.layer.tops) > 1:
            tops.append(_per_class_accuracy(safe, valid, correct, classes, x.dtype))
        return tops

    return Op(forward=forward)


def _per_class_accuracy(labels, valid, correct, classes, dtype):
    seen = torch.bincount(labels[valid], minlength=classes).to(dtype)
    hits = torch.bincount(labels[correct], minlength=classes).to(dtype)
    return torch.where(seen > 0, hits / seen.clamp(min=1), torch.zeros_like(seen))
