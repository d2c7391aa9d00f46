"""Fast/Faster R-CNN's layers (rbgirshick/caffe-fast-rcnn, the faster-rcnn branch that
py-faster-rcnn pins): ROIPooling and SmoothL1Loss. The fork implements both backward passes, and
SmoothL1Loss's forward, on the GPU only (its CPU ones are NOT_IMPLEMENTED): these follow its .cu
kernels, in float32 where the kernels' float arithmetic shows in the results."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...caffe.facts import legacy_dim
from ...caffe.fork_layers import check_smooth_l1_bottoms, check_smooth_l1_shapes, roi_pooled_size
from .registry import LayerContext, Op, legacy_4d, register

FLT_MAX = float(np.finfo(np.float32).max)
# Values gathered at once (ROIs x channels x bins x bin cells): bounds memory for many large ROIs.
ROI_CHUNK_VALUES = 1 << 24


# ---------------------------------------------------------------- ROIPooling

def _round_half_away(values: torch.Tensor) -> torch.Tensor:
    """C's round() of float32 values (half away from zero; torch.round rounds half to even), exact in float64."""
    wide = values.double()
    return (torch.sign(wide) * torch.floor(wide.abs() + 0.5)).long()


def roi_geometry(rois: torch.Tensor, spatial_scale: float, pooled: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Per ROI (batch index, x1, y1, x2, y2): its batch index (the float truncated), its start and
    end rows and columns on the feature map (round(coordinate * spatial_scale), float32 product),
    and each bin's unclipped offsets from the start, floor(p * bin) to ceil((p + 1) * bin) with
    bin = max(end - start + 1, 1) / pooled, all in float32."""
    scaled = rois[:, 1:5].float() * torch.tensor(spatial_scale, dtype=torch.float32, device=rois.device)
    start_w, start_h, end_w, end_h = _round_half_away(scaled).unbind(1)
    geometry = {"batch": rois[:, 0].float().trunc().long(), "start_h": start_h, "start_w": start_w,
                "end_h": end_h, "end_w": end_w}
    for axis, start, end, bins in (("h", start_h, end_h, pooled[0]), ("w", start_w, end_w, pooled[1])):
        size = torch.clamp(end - start + 1, min=1).float()
        bin_size = size / torch.tensor(float(bins))
        steps = torch.arange(bins + 1, dtype=torch.float32, device=rois.device)
        geometry[f"bin_{axis}"] = bin_size
        geometry[f"low_{axis}"] = torch.floor(steps[None, :-1] * bin_size[:, None]).long()
        geometry[f"high_{axis}"] = torch.ceil(steps[None, 1:] * bin_size[:, None]).long()
    return geometry


def _bin_cells(start: torch.Tensor, low: torch.Tensor, high: torch.Tensor, limit: int):
    """(cell index per ROI, bin and offset in the bin, clipped to [0, limit)), whether it is in the bin,
    whether the bin is empty."""
    first = torch.clamp(low + start[:, None], 0, limit)
    last = torch.clamp(high + start[:, None], 0, limit)
    width = int((last - first).max()) if first.numel() else 0
    cells = first[:, :, None] + torch.arange(max(width, 1), device=first.device)[None, None, :]
    inside = cells < last[:, :, None]
    return torch.clamp(cells, max=max(limit - 1, 0)), inside, last <= first


def roi_max_pool(features: torch.Tensor, geometry: dict, pooled: tuple[int, int]):
    """(top [R, C, PH, PW], argmax [R, C, PH, PW] as h * width + w, -1 where nothing is pooled): the
    first largest value of each bin, row by row; 0 for a bin clipped away to nothing; -FLT_MAX (argmax -1)
    where no value exceeds -FLT_MAX, as the fork's strict comparison from -FLT_MAX gives."""
    _, channels, height, width = features.shape
    rows, row_in, row_empty = _bin_cells(geometry["start_h"], geometry["low_h"], geometry["high_h"], height)
    columns, column_in, column_empty = _bin_cells(geometry["start_w"], geometry["low_w"], geometry["high_w"], width)
    per_roi = channels * pooled[0] * pooled[1] * rows.shape[2] * columns.shape[2]
    chunk = max(1, ROI_CHUNK_VALUES // max(per_roi, 1))
    tops, argmaxes = [], []
    for begin in range(0, len(rows), chunk):
        part = slice(begin, begin + chunk)
        r, c = rows[part], columns[part]
        cells = features[geometry["batch"][part][:, None, None, None, None, None],
                         torch.arange(channels, device=features.device)[None, :, None, None, None, None],
                         r[:, None, :, None, :, None], c[:, None, None, :, None, :]]
        inside = row_in[part][:, None, :, None, :, None] & column_in[part][:, None, None, :, None, :]
        cells = torch.where(inside, cells, -math.inf)
        best, at = cells.flatten(4).max(dim=4)
        place = (r[:, None, :, None, :, None] * width + c[:, None, None, :, None, :]).flatten(4)
        place = place.expand(-1, channels, -1, -1, -1).gather(4, at.unsqueeze(4)).squeeze(4)
        empty = (row_empty[part][:, :, None] | column_empty[part][:, None, :])[:, None]
        tops.append(torch.where(empty, torch.zeros_like(best), torch.clamp(best, min=-FLT_MAX)))
        argmaxes.append(torch.where(empty | ~(best > -FLT_MAX), torch.full_like(place, -1), place))
    if not tops:
        return features.new_zeros((0, channels, *pooled)), features.new_zeros((0, channels, *pooled), dtype=torch.long)
    return torch.cat(tops), torch.cat(argmaxes)


def roi_gradient_reaches(geometry: dict, argmax: torch.Tensor, pooled: tuple[int, int], width: int) -> torch.Tensor:
    """Which pooled units send their gradient to their argmax in the fork's ROIPoolBackward: the
    argmax must lie inside the ROI as rounded (not the 1x1 a malformed ROI is forced to), and the
    unit among those the kernel derives back from the cell, floor((h - start) / bin) to
    ceil((h - start + 1) / bin) clipped to the bins, in float32."""
    reaches = argmax >= 0
    for axis, cell, bins, position in (("h", argmax.div(width, rounding_mode="floor"), pooled[0], 2),
                                       ("w", argmax.remainder(width), pooled[1], 3)):
        start = geometry[f"start_{axis}"].view(-1, 1, 1, 1)
        end = geometry[f"end_{axis}"].view(-1, 1, 1, 1)
        bin_size = geometry[f"bin_{axis}"].view(-1, 1, 1, 1)
        first = torch.clamp(torch.floor((cell - start).float() / bin_size).long(), 0, bins)
        last = torch.clamp(torch.ceil((cell - start + 1).float() / bin_size).long(), 0, bins)
        unit = torch.arange(bins, device=argmax.device).view([1, 1, bins, 1] if position == 2 else [1, 1, 1, bins])
        reaches &= (cell >= start) & (cell <= end) & (first <= unit) & (unit < last)
    return reaches


class _ROIPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, geometry_rois, spatial_scale, pooled):
        geometry = roi_geometry(geometry_rois, spatial_scale, pooled)
        top, argmax = roi_max_pool(features, geometry, pooled)
        ctx.save_for_backward(argmax)
        ctx.geometry, ctx.pooled, ctx.features_shape = geometry, pooled, features.shape
        return top

    @staticmethod
    def backward(ctx, dy):
        (argmax,) = ctx.saved_tensors
        batch, channels, height, width = ctx.features_shape
        reaches = roi_gradient_reaches(ctx.geometry, argmax, ctx.pooled, width)
        channel = torch.arange(channels, device=argmax.device).view(1, -1, 1, 1)
        planes = ctx.geometry["batch"].view(-1, 1, 1, 1) * channels + channel
        flat = (planes * height * width + argmax)[reaches]
        grad = dy.new_zeros(batch * channels * height * width).index_add_(0, flat, dy[reaches])
        return grad.reshape(ctx.features_shape), None, None, None


@register("ROIPooling")
def roi_pooling(ctx: LayerContext) -> Op:
    """Max pooling of each ROI's region of the feature map into pooled_h x pooled_w bins."""
    p = ctx.param("roi_pooling_param")
    pooled = ctx.checked(roi_pooled_size, ctx.layer.fields.get("roi_pooling_param") or {})
    spatial_scale = p["spatial_scale"]

    def forward(bottoms, blobs):
        if len(bottoms) != 2:
            raise ctx.error(f"ROIPooling takes 2 bottoms (features, ROIs), got {len(bottoms)}")
        features, rois = legacy_4d(ctx, bottoms[0]), bottoms[1]
        count = legacy_dim(tuple(rois.shape), 0) if rois.dim() <= 4 else rois.shape[0]
        rois = rois.detach().reshape(count, -1)
        if rois.shape[1] < 5:
            raise ctx.error(f"ROIs {tuple(bottoms[1].shape)} need 5 values each (batch index, x1, y1, x2, y2)")
        rois = rois[:, :5].to(features.device)
        batch = rois[:, 0].float().trunc().long()
        if count and bool(((batch < 0) | (batch >= features.shape[0])).any()):
            raise ctx.error(f"an ROI's batch index lies outside the {features.shape[0]} images of the features")
        return [_ROIPool.apply(features, rois, spatial_scale, pooled)]

    return Op(forward=forward)


# ---------------------------------------------------------------- SmoothL1Loss

class _SmoothL1(torch.autograd.Function):
    """loss = sum(w_out * f(w_in * (b0 - b1))) / num, f(d) = 0.5 sigma^2 d^2 where |d| < 1 / sigma^2,
    else |d| - 0.5 / sigma^2; the comparison and f in double, as the kernel's double constants make
    them. Backward: db0 = -db1 = dloss / num * w_in * w_out * f'(d), f'(d) = sigma^2 d or sign(d)."""

    @staticmethod
    def forward(ctx, predictions, targets, inside, outside, sigma2):
        diff = predictions - targets
        if inside is not None:
            diff = inside * diff
        wide, threshold = diff.double(), 1.0 / float(sigma2)
        small = wide.abs() < threshold
        errors = torch.where(small, 0.5 * wide * wide * float(sigma2), wide.abs() - 0.5 / float(sigma2)).float()
        if outside is not None:
            errors = outside * errors
        ctx.save_for_backward(diff, small, inside, outside)
        ctx.sigma2, ctx.num = sigma2, predictions.shape[0] if predictions.dim() else 1
        return errors.sum() / ctx.num

    @staticmethod
    def backward(ctx, dloss):
        diff, small, inside, outside = ctx.saved_tensors
        slope = torch.where(small, ctx.sigma2 * diff, torch.sign(diff))
        grad = (dloss / ctx.num) * slope
        for weight in (inside, outside):
            if weight is not None:
                grad = grad * weight
        return grad, -grad, None, None, None


@register("SmoothL1Loss")
def smooth_l1_loss(ctx: LayerContext) -> Op:
    ctx.checked(check_smooth_l1_bottoms, len(ctx.layer.bottoms))
    sigma = np.float32(ctx.param("smooth_l1_loss_param")["sigma"])
    sigma2 = torch.tensor(sigma * sigma, dtype=torch.float32)  # sigma2_ is a float

    def forward(bottoms, blobs):
        ctx.checked(check_smooth_l1_shapes, [tuple(b.shape) for b in bottoms])
        predictions = bottoms[0]
        # The fork reads the weights element by element in the predictions' order.
        others = [b.reshape(predictions.shape) for b in bottoms[1:]]
        inside, outside = (others[1], others[2]) if len(others) == 3 else (None, None)
        return [_SmoothL1.apply(predictions, others[0], inside, outside, sigma2)]

    return Op(forward=forward)
