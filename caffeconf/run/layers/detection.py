"""SSD's detection layers (weiliu89/caffe, branch ssd): Normalize, Permute, PriorBox, DetectionOutput.

Each follows the fork's CPU forward (src/caffe/layers/*_layer.cpp, src/caffe/util/bbox_util.cpp),
including its float arithmetic where that shows in the outputs.
"""

from __future__ import annotations

import numpy as np
import torch

from ...caffe.facts import legacy_dim, permute_order, prior_box_setup
from ..boxes import detection_settings, prior_boxes
from .registry import BlobSpec, LayerContext, Op, filler, filler_or, register


def _legacy(ctx: LayerContext, x: torch.Tensor, index: int) -> int:
    return ctx.checked(legacy_dim, tuple(x.shape), index)


class _Normalize(torch.autograd.Function):
    """top = x / sqrt(sum of x^2 + eps) * scale, the sum over `dims` of (N, C, cells), with the
    fork's gradient (NormalizeLayer::Backward_cpu): dx = scale * (dy - x * sum(x dy) / norm^2) / norm,
    which with a scale per channel is not the derivative of the forward (that would sum
    x * scale * dy); dscale = sum(top * dy) / scale."""

    @staticmethod
    def forward(ctx, cells, scale, dims, eps):
        # The fork adds eps to the sum of squares, not to the norm.
        norm = torch.sqrt((cells * cells).sum(dim=dims, keepdim=True) + eps)
        top = cells / norm * scale
        ctx.save_for_backward(cells, scale, norm, top)
        ctx.dims = dims
        return top

    @staticmethod
    def backward(ctx, dy):
        cells, scale, norm, top = ctx.saved_tensors
        along = (cells * dy).sum(dim=ctx.dims, keepdim=True)
        dx = (dy - cells * along / (norm * norm)) / norm * scale
        products = (top * dy).sum(dim=(0, 2))
        dscale = products.sum() / scale if scale.dim() == 0 else products.reshape(scale.shape) / scale
        return dx, dscale, None, None


@register("Normalize")
def normalize(ctx: LayerContext) -> Op:
    p = ctx.param("norm_param")
    dims, channel_shared, eps = ((1, 2) if p["across_spatial"] else (1,)), p["channel_shared"], p["eps"]

    def specs(shapes):
        if len(shapes[0]) < 2:
            raise ctx.error("Normalize needs a bottom with at least 2 axes")
        shape = () if channel_shared else (shapes[0][1],)
        return [BlobSpec(shape, filler_or(p, "scale_filler", filler("constant", value=1.0)), "gain")]

    def forward(bottoms, blobs):
        x = bottoms[0]
        _legacy(ctx, x, 0)  # the fork reads the bottom as (num, channels, height, width)
        scale = blobs[0].reshape(()) if channel_shared else blobs[0].reshape(1, -1, 1)
        cells = x.reshape(x.shape[0], x.shape[1], -1)
        return [_Normalize.apply(cells, scale, dims, eps).reshape(x.shape)]

    return Op(forward=forward, blob_specs=specs)


@register("Permute")
def permute(ctx: LayerContext) -> Op:
    order = list(ctx.param("permute_param")["order"])

    def forward(bottoms, blobs):
        x = bottoms[0]
        return [x.permute(ctx.checked(permute_order, order, x.dim()))]

    return Op(forward=forward)


# ---------------------------------------------------------------- PriorBox

@register("PriorBox")
def prior_box(ctx: LayerContext) -> Op:
    setup = ctx.checked(prior_box_setup, ctx.layer.fields.get("prior_box_param") or {})

    def forward(bottoms, blobs):
        if len(bottoms) != 2:
            raise ctx.error(f"PriorBox takes 2 bottoms (a feature map and the image), got {len(bottoms)}")
        feature, image = bottoms
        layer_hw = (_legacy(ctx, feature, 2), _legacy(ctx, feature, 3))
        image_hw = setup.image if all(setup.image) else (_legacy(ctx, image, 2), _legacy(ctx, image, 3))
        if not layer_hw[0] * layer_hw[1]:
            raise ctx.error(f"the feature map {tuple(feature.shape)} has no cells to put priors on")
        return [torch.from_numpy(prior_boxes(setup, layer_hw, image_hw)).to(feature.device)]

    return Op(forward=forward)


# ---------------------------------------------------------------- DetectionOutput

def decode_boxes(loc: torch.Tensor, priors: torch.Tensor, variances: torch.Tensor, code_type: str,
                 variance_in_target: bool) -> torch.Tensor:
    """The fork's DecodeBBox for (..., priors, 4) predictions against (priors, 4) priors, float32."""
    if variance_in_target:
        variances = torch.ones_like(variances)
    if code_type == "CORNER":
        return priors + variances * loc
    size = torch.stack([priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]], dim=1)
    if code_type == "CORNER_SIZE":
        return priors + variances * loc * size.repeat(1, 2)
    centre = torch.stack([priors[:, 0] + priors[:, 2], priors[:, 1] + priors[:, 3]], dim=1) / 2
    decoded_centre = variances[:, :2] * loc[..., :2] * size + centre
    half = torch.exp(variances[:, 2:] * loc[..., 2:]) * size / 2
    return torch.cat([decoded_centre - half, decoded_centre + half], dim=-1)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """BBoxSize: width * height, 0 for a box with xmax < xmin or ymax < ymin."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.where((width < 0) | (height < 0), np.float32(0), width * height)


def jaccard_overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """JaccardOverlap of every pair, in float32: 0 unless the intersection has positive width and height."""
    low = np.maximum(boxes[:, None, :2], others[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    width, height = high[..., 0] - low[..., 0], high[..., 1] - low[..., 1]
    inter = width * height
    union = box_areas(boxes)[:, None] + box_areas(others)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = inter / union
    return np.where((width > 0) & (height > 0), overlap, np.float32(0))


NMS_BLOCK = 256  # candidates whose overlaps are computed at once: bounds memory without top_k


def nms_fast(boxes: np.ndarray, scores: np.ndarray, threshold: float, nms_threshold: float,
             eta: float, top_k: int) -> list[int]:
    """ApplyNMSFast: the scores above `threshold`, best first (ties in index order), at most
    `top_k` of them; each kept unless it overlaps a kept one by more than the threshold, which
    `eta` lowers after each kept box while it is above 0.5."""
    candidates = np.nonzero(scores > threshold)[0]
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k > -1:
        candidates = candidates[:top_k]
    ordered = boxes[candidates]
    adaptive, eta = np.float32(nms_threshold), np.float32(eta)
    kept: list[int] = []
    for start in range(0, len(candidates), NMS_BLOCK):
        block = jaccard_overlaps(ordered[start:start + NMS_BLOCK], ordered[:start + NMS_BLOCK])
        for position in range(start, min(start + NMS_BLOCK, len(candidates))):
            if not kept or (block[position - start, kept] <= adaptive).all():
                kept.append(position)
                if eta < 1 and adaptive > 0.5:
                    adaptive = adaptive * eta
    return candidates[kept].tolist()


def _split_bottoms(ctx: LayerContext, bottoms, s: dict):
    """(loc [N, loc classes, P, 4], conf [N, P, classes], priors [P, 4], variances [P, 4])."""
    if len(bottoms) != 3:
        raise ctx.error(f"DetectionOutput takes 3 bottoms (locations, confidences, priors), got {len(bottoms)}")
    loc, conf, priors = bottoms
    count = _legacy(ctx, priors, 2) // 4
    loc_classes = 1 if s["share_location"] else s["classes"]
    if loc.shape[0] != conf.shape[0]:
        raise ctx.error(f"locations {tuple(loc.shape)} and confidences {tuple(conf.shape)} differ in batch size")
    for what, x, per_prior in (("locations", loc, loc_classes * 4), ("confidences", conf, s["classes"])):
        if x[0].numel() != count * per_prior:
            raise ctx.error(f"{what} {tuple(x.shape)} need {count * per_prior} values per image "
                            f"({count} priors x {per_prior})")
    loc = loc.reshape(loc.shape[0], count, loc_classes, 4).transpose(1, 2)
    prior_values = priors.reshape(-1)[:count * 8].reshape(2, count, 4)
    if s["code_type"] != "CORNER" and bool(((prior_values[0, :, 2:] - prior_values[0, :, :2]) <= 0).any()):
        raise ctx.error(f"code_type {s['code_type']} needs every prior wider and taller than 0")
    return loc, conf.reshape(conf.shape[0], count, s["classes"]), prior_values[0], prior_values[1]


def _kept_per_class(boxes: np.ndarray, scores: np.ndarray, s: dict) -> dict[int, list[int]]:
    """For one image: class -> prior indices kept by NMS, then at most keep_top_k over all classes
    by score (each class's list in that score order)."""
    kept = {}
    for label in range(s["classes"]):
        if label != s["background"]:
            class_boxes = boxes[0 if s["share_location"] else label]
            kept[label] = nms_fast(class_boxes, scores[:, label], s["threshold"], s["nms_threshold"],
                                   s["eta"], s["top_k"])
    total = sum(len(indices) for indices in kept.values())
    if s["keep_top_k"] <= -1 or total <= s["keep_top_k"]:
        return kept
    ranked = [(scores[index, label], label, index) for label, indices in kept.items() for index in indices]
    ranked.sort(key=lambda entry: -entry[0])  # stable where the fork's std::sort leaves ties unordered
    best: dict[int, list[int]] = {}
    for _, label, index in ranked[:s["keep_top_k"]]:
        best.setdefault(label, []).append(index)
    return dict(sorted(best.items()))


@register("DetectionOutput")
def detection_output(ctx: LayerContext) -> Op:
    s = ctx.checked(detection_settings, ctx.param("detection_output_param"))

    def forward(bottoms, blobs):
        loc, conf, priors, variances = _split_bottoms(ctx, bottoms, s)
        boxes = decode_boxes(loc, priors, variances, s["code_type"], s["variance_in_target"])
        boxes, conf = boxes.float().cpu().numpy(), conf.float().cpu().numpy()
        rows = []
        for image in range(len(boxes)):
            for label, indices in _kept_per_class(boxes[image], conf[image], s).items():
                located = boxes[image, 0 if s["share_location"] else label]
                rows += [[image, label, conf[image, index, label], *located[index]] for index in indices]
        if not rows:
            # Caffe's convention for no detection: one row per image, [image, -1, -1, ...].
            rows = [[image] + [-1.0] * 6 for image in range(len(boxes))]
        return [torch.tensor(np.array(rows, dtype=np.float32), device=bottoms[0].device).reshape(1, 1, len(rows), 7)]

    return Op(forward=forward)
