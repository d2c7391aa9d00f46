"""SSD's box arithmetic without torch, shared by the runner (run/layers/detection.py) and the ONNX
export (export/detection.py): PriorBox's boxes, and DetectionOutput's settings as the fork reads them."""

from __future__ import annotations

import numpy as np

from ..caffe.facts import PriorBoxSetup
from .params import Params


def prior_sizes(setup: PriorBoxSetup) -> np.ndarray:
    """(priors, 2) float32 box (width, height) per cell, in the fork's order: for each min_size,
    the square of that size, the square of sqrt(min*max), then one box of the min_size's area per
    other aspect ratio. The fork reads the sizes into ints and takes square roots in double."""
    sizes = []
    for index, low in enumerate(setup.min_sizes):
        low = int(low)
        sizes.append((low, low))
        if setup.max_sizes:
            side = np.sqrt(low * int(setup.max_sizes[index]))
            sizes.append((side, side))
        for ratio in setup.aspect_ratios:
            if abs(ratio - 1.0) >= 1e-6:
                root = np.sqrt(np.float64(np.float32(ratio)))
                sizes.append((low * root, low / root))
    return np.array(sizes, dtype=np.float64).astype(np.float32)


def prior_boxes(setup: PriorBoxSetup, layer_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """(1, 2, H*W*priors*4): every prior's (xmin, ymin, xmax, ymax) over the image, row by row,
    then its variances; centres in float32 as the fork computes them, the corners in double."""
    (height, width), (image_h, image_w) = layer_hw, image_hw
    step_h, step_w = setup.step
    if not step_h or not step_w:
        step_h, step_w = np.float32(image_h) / np.float32(height), np.float32(image_w) / np.float32(width)
    offset = np.float32(setup.offset)
    centre_x = ((np.arange(width, dtype=np.float32) + offset) * np.float32(step_w)).astype(np.float64)
    centre_y = ((np.arange(height, dtype=np.float32) + offset) * np.float32(step_h)).astype(np.float64)
    half = prior_sizes(setup).astype(np.float64) / 2.0
    boxes = np.empty((height, width, len(half), 4), dtype=np.float64)
    boxes[..., 0] = (centre_x[None, :, None] - half[None, None, :, 0]) / image_w
    boxes[..., 1] = (centre_y[:, None, None] - half[None, None, :, 1]) / image_h
    boxes[..., 2] = (centre_x[None, :, None] + half[None, None, :, 0]) / image_w
    boxes[..., 3] = (centre_y[:, None, None] + half[None, None, :, 1]) / image_h
    boxes = boxes.astype(np.float32)
    if setup.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    variances = np.broadcast_to(np.array(setup.variances, dtype=np.float32), boxes.shape[:3] + (4,))
    return np.stack([boxes.reshape(-1), variances.reshape(-1)])[None]


def detection_settings(p: Params) -> dict:
    """DetectionOutput's detection_output_param as the fork's forward uses it; ValueError for what
    the fork refuses."""
    if not p.has("num_classes"):
        raise ValueError("detection_output_param.num_classes is required")
    nms = p["nms_param"]
    settings = dict(classes=p["num_classes"], share_location=p["share_location"],
                    background=p["background_label_id"], code_type=p["code_type"],
                    variance_in_target=p["variance_encoded_in_target"], keep_top_k=p["keep_top_k"],
                    # Caffe: no written threshold keeps every score above -FLT_MAX.
                    threshold=p["confidence_threshold"] if p.has("confidence_threshold") else
                    float(-np.finfo(np.float32).max),
                    nms_threshold=nms["nms_threshold"], eta=nms["eta"],
                    top_k=nms["top_k"] if nms.has("top_k") else -1)
    if settings["nms_threshold"] < 0:
        raise ValueError("nms_param.nms_threshold must be non-negative")
    if not 0 < settings["eta"] <= 1:
        raise ValueError(f"nms_param.eta must lie in (0, 1], got {settings['eta']}")
    if settings["share_location"] and settings["background"] == -1:
        # The fork decodes no shared locations then, and stops at the first class.
        raise ValueError("with share_location, background_label_id -1 leaves the fork no locations to decode")
    return settings
