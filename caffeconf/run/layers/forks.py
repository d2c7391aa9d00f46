"""Spatial layers of the mobile and segmentation forks: ConvolutionDepthwise (farmingyard's
ShuffleNet/MobileNet forks), ShuffleChannel (farmingyard/ShuffleNet) and Interp (hszhao/PSPNet,
DeepLab v2). yonghenglh6's DepthwiseConvolution is Caffe's Convolution on the CPU, registered in
`vision`. Each follows the fork's CPU forward; PyTorch's autograd gives the fork's backward
(each is the exact adjoint of its forward there)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...caffe.facts import depthwise_geometry, depthwise_output, interp_crop, interp_size, legacy_dim, shuffle_group
from .registry import BlobSpec, LayerContext, Op, legacy_4d, register


@register("ConvolutionDepthwise")
def convolution_depthwise(ctx: LayerContext) -> Op:
    """One kernel per bottom channel, as ConvolutionDepthwiseLayer's loops: num_output and group
    are not read; weight (channels, 1, kh, kw), bias (channels,) with bias_term."""
    p = ctx.param("convolution_param")
    geo = ctx.checked(depthwise_geometry, ctx.layer.fields.get("convolution_param") or {})

    def specs(shapes):
        channels = ctx.checked(legacy_dim, tuple(shapes[0]), 1)
        weight = [BlobSpec((channels, 1, *geo.kernel), p["weight_filler"])]
        return weight + ([BlobSpec((channels,), p["bias_filler"], "bias")] if p["bias_term"] else [])

    def forward(bottoms, blobs):
        x = legacy_4d(ctx, bottoms[0])
        for axis in range(2):
            ctx.checked(depthwise_output, x.shape[2 + axis], geo.kernel[axis], geo.pad[axis], geo.stride[axis],
                  geo.dilation[axis])
        bias = blobs[1] if len(blobs) > 1 else None
        return [F.conv2d(x, blobs[0], bias, geo.stride, geo.pad, geo.dilation, x.shape[1])]

    return Op(forward=forward, blob_specs=specs)


@register("ShuffleChannel")
def shuffle_channel(ctx: LayerContext) -> Op:
    """Channel i * (C / group) + j of the bottom becomes channel j * group + i of the top."""
    written = ctx.layer.fields.get("shuffle_channel_param") or {}

    def forward(bottoms, blobs):
        x = legacy_4d(ctx, bottoms[0])
        n, channels, height, width = x.shape
        group = ctx.checked(shuffle_group, written, channels)
        rows = x.reshape(n, group, channels // group, height * width)
        return [rows.transpose(1, 2).reshape(n, channels, height, width)]

    return Op(forward=forward)


@register("Interp")
def interp(ctx: LayerContext) -> Op:
    written = ctx.layer.fields.get("interp_param") or {}
    pad_beg, pad_end = ctx.checked(interp_crop, written)

    def forward(bottoms, blobs):
        x = legacy_4d(ctx, bottoms[0])
        height, width = ctx.checked(interp_size, written, x.shape[2], x.shape[3])
        cropped = [x.shape[2] + pad_beg + pad_end, x.shape[3] + pad_beg + pad_end]
        crop = x[:, :, -pad_beg:-pad_beg + cropped[0], -pad_beg:-pad_beg + cropped[1]]
        if cropped == [height, width]:  # the fork copies
            return [crop.clone()]
        return [bilinear_align_corners(crop, height, width)]

    return Op(forward=forward)


def bilinear_align_corners(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """caffe_cpu_interp2: corners on corners, source position ratio * i with the ratio
    (in - 1) / (out - 1) (0 for one output) and the weights in float32, as the fork computes them."""
    (top, bottom, h1), (left, right, w1) = (_interp_axis(x.shape[2 + axis], size, x) for axis, size in
                                            enumerate((height, width)))
    h1 = h1[:, None]
    h0, w0 = 1 - h1, 1 - w1
    upper, lower = x[:, :, top], x[:, :, bottom]
    return (h0 * (w0 * upper[..., left] + w1 * upper[..., right]) +
            h1 * (w0 * lower[..., left] + w1 * lower[..., right]))


def _interp_axis(size_in: int, size_out: int, x: torch.Tensor):
    """(first index, second index, weight of the second) per output position along one axis."""
    ratio = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    position = ratio * np.arange(size_out, dtype=np.float32)
    first = position.astype(np.int64)
    second = first + (first < size_in - 1)
    weight = torch.from_numpy(position - first.astype(np.float32)).to(device=x.device, dtype=x.dtype)
    return torch.from_numpy(first).to(x.device), torch.from_numpy(second).to(x.device), weight
