"""Images -> a net input batch, the way Caffe's DataTransformer prepares them.

image files (read in BGR, Caffe's channel order, values 0-255) -> resized to
the input's height and width (or to the mean file's, when cropping) ->
centre-cropped to crop_size -> minus mean_file or mean_value -> times scale
-> N x C x H x W float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import CaffeconfError
from ..files import check_image_size, check_regular_file
from ..caffe.weights import read_blob_file


@dataclass(frozen=True)
class Transform:
    scale: float = 1.0
    crop_size: int = 0
    mean_values: tuple[float, ...] = ()
    mean_file: str = ""


def transform_from_fields(fields, overrides: dict) -> Transform:
    """A data layer's transform_param (if any) with the command line's values on top."""
    written = dict(fields.get("transform_param", {})) if fields else {}
    merged = {
        "scale": written.get("scale", 1.0),
        "crop_size": written.get("crop_size", 0),
        "mean_values": tuple(written.get("mean_value", ())),
        "mean_file": written.get("mean_file", ""),
    }
    merged.update({key: value for key, value in overrides.items() if value not in (None, ())})
    return Transform(**merged)


def load_images(paths: Sequence[str], shape: Sequence[int], transform: Transform) -> np.ndarray:
    """A batch of images for an input blob of `shape` (N, C, H, W; N is replaced)."""
    import cv2

    channels, height, width = shape[1], shape[2], shape[3]
    if not 0 <= transform.crop_size <= min(height, width):
        raise CaffeconfError.at(None, f"crop size {transform.crop_size} does not fit the input's {height}x{width} "
                                      "(it is at least 0 and at most the input's height and width)")
    mean = _mean(transform, channels)
    batch = [_prepare(_read(cv2, path, channels), height, width, transform, mean, cv2) for path in paths]
    return np.stack(batch).astype(np.float32)


def _read(cv2, path: str, channels: int) -> np.ndarray:
    try:
        check_regular_file(path)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read image '{path}': {error.strerror}") from None
    check_image_size(path)
    try:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own limits and broken files: its text names its source lines, not ours
        image = None
    if image is None:
        raise CaffeconfError.at(None, f"cannot read image '{path}'")
    return image[:, :, None] if image.ndim == 2 else image


def _prepare(image, height, width, transform: Transform, mean, cv2) -> np.ndarray:
    if transform.crop_size:
        # Resize to the mean file's size (or the input's) and crop the centre, as at TEST time.
        base = mean.shape[1:] if mean is not None and mean.ndim == 3 else (height, width)
        image = _resize(cv2, image, max(base[0], transform.crop_size), max(base[1], transform.crop_size))
        image, mean = _centre_crop(image, mean, transform.crop_size)
    else:
        image = _resize(cv2, image, height, width)
    chw = image.transpose(2, 0, 1).astype(np.float32)
    if mean is not None:
        chw = chw - (mean if mean.ndim == 3 else mean[:, None, None])
    return chw * transform.scale


def _resize(cv2, image, height, width):
    if image.shape[:2] == (height, width):
        return image
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return resized[:, :, None] if resized.ndim == 2 else resized


def _centre_crop(image, mean, size):
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    cropped = image[top:top + size, left:left + size]
    if mean is not None and mean.ndim == 3:
        mean = mean[:, top:top + size, left:left + size]
    return cropped, mean


def _mean(transform: Transform, channels: int) -> np.ndarray | None:
    if transform.mean_file and transform.mean_values:
        raise CaffeconfError.at(None, "give mean_file or mean_value, not both (Caffe refuses both)")
    if transform.mean_file:
        blob = read_blob_file(transform.mean_file)
        return blob.reshape(blob.shape[-3:])
    if not transform.mean_values:
        return None
    values = np.asarray(transform.mean_values, dtype=np.float32)
    if len(values) not in (1, channels):
        raise CaffeconfError.at(None, f"{len(values)} mean values for {channels} channels; give 1 or {channels}")
    return np.broadcast_to(values, (channels,)).copy()
