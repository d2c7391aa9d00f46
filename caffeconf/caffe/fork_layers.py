"""Setup rules of SegNet/ENet's BN, Upsample and DenseImageData and Fast R-CNN's ROIPooling and
SmoothL1Loss, as the forks' LayerSetUp and Reshape check and compute them (alexgkendall/caffe-segnet,
TimoSaemann/caffe-enet, rbgirshick/caffe-fast-rcnn): shape inference and the runner share them.
Each takes the layer's parameter message as written and raises ValueError with what is wrong."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import dialect, messages
from .facts import bn_is_pspnets, legacy_dim, proto_default

# BNLayer's var_eps_, fixed in LayerSetUp (bn_param has no eps).
BN_EPS = 1e-9


def bn_mode(written: Mapping[str, Any]) -> str:
    return written.get("bn_mode") or proto_default("bn_param", "bn_mode")


def check_bn_tops(written: Mapping[str, Any], tops: int) -> None:
    """BN's MaxTopBlobs: SegNet's LEARN may add the batch mean and variance as tops 2 and 3;
    PSPNet's BN has exactly one top."""
    if bn_is_pspnets():
        if tops != 1:
            raise ValueError(f"BN (PSPNet's) makes exactly 1 top, got {tops}")
        return
    most = 3 if bn_mode(written) == "LEARN" else 1
    if tops > most:
        raise ValueError(f"BN with bn_mode {bn_mode(written)} makes at most {most} top(s), got {tops}")


def upsample_size(written: Mapping[str, Any], height: int | None, width: int | None) -> tuple:
    """Upsample's (height, width): upsample_h/upsample_w when both are written, else the input's
    times scale_h/scale_w (or scale), less one where pad_out_h/pad_out_w (only with a scale of 2).
    None where the input's size is unknown."""
    def get(name):
        return written[name] if name in written else proto_default("upsample_param", name)

    both_sizes = "upsample_h" in written and "upsample_w" in written
    if not (both_sizes or ("scale" not in written and "scale_h" in written and "scale_w" in written)
            or ("scale_h" not in written and "scale_w" not in written)):
        raise ValueError("upsample_param needs upsample_h and upsample_w, else scale, or scale_h and scale_w")
    if both_sizes:
        if get("upsample_h") <= 1 or get("upsample_w") <= 1:
            raise ValueError("upsample_param.upsample_h and upsample_w must be greater than 1")
        return get("upsample_h"), get("upsample_w")
    scales = (get("scale"),) * 2 if "scale_h" not in written else (get("scale_h"), get("scale_w"))
    if min(scales) <= 1:
        raise ValueError(f"the upsample scales must be greater than 1, got {scales[0]} and {scales[1]}")
    pads = (get("pad_out_h"), get("pad_out_w"))
    for axis, scale, pad in zip("hw", scales, pads):
        if pad and scale != 2:
            raise ValueError(f"upsample_param.pad_out_{axis} needs a scale of 2 along it, got {scale}")
    return tuple(None if size is None else size * scale - int(pad)
                 for size, scale, pad in zip((height, width), scales, pads))


def roi_pooled_size(written: Mapping[str, Any]) -> tuple[int, int]:
    """ROIPooling's (pooled_h, pooled_w), each required to be above 0."""
    sizes = tuple(written.get(name, 0) for name in ("pooled_h", "pooled_w"))
    if min(sizes) <= 0:
        raise ValueError("roi_pooling_param.pooled_h and pooled_w must be greater than 0")
    return sizes


def check_smooth_l1_bottoms(count: int) -> None:
    """SmoothL1Loss takes predictions and targets, then optionally inside and outside weights (both)."""
    if count not in (2, 4):
        raise ValueError(f"SmoothL1Loss takes 2 bottoms (predictions, targets) or 4 (with inside and "
                         f"outside weights), got {count}")


def check_smooth_l1_shapes(shapes: Sequence[Sequence[int | None]]) -> None:
    """Every bottom has the predictions' channels, height and width (legacy axes), the targets also
    their number; an unknown dim (None) matches any."""
    def legacy(shape):
        return [legacy_dim(shape, index) for index in range(4)]

    first = legacy(shapes[0])
    for position, shape in enumerate(shapes[1:], start=1):
        checked = range(4) if position == 1 else range(1, 4)
        if any(None not in (first[i], legacy(shape)[i]) and first[i] != legacy(shape)[i] for i in checked):
            raise ValueError(f"bottom {position} {_dims(shape)} does not match the predictions {_dims(shapes[0])}")


def _dims(shape: Sequence[int | None]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def dense_image_data_defined() -> bool:
    """Whether the dialect in force defines DenseImageData's message (BVLC's caffe.proto does not:
    the layer's fields, and so its shapes, are then unknown)."""
    return dialect.current().has_message("DenseImageDataParameter")


def dense_image_is_enets() -> bool:
    """ENet's DenseImageData (TimoSaemann/caffe-enet) has label_divide_factor and dropped SegNet's
    refusal of the transformer's crop and mirror; the dialect's DenseImageDataParameter tells which."""
    return "label_divide_factor" in messages.descriptor("DenseImageDataParameter").fields_by_name


def dense_image_tops(written: Mapping[str, Any], transform: Mapping[str, Any],
                     image: tuple[int, int] | None = None) -> tuple[tuple, tuple]:
    """DenseImageData's data and label shapes, as DataLayerSetUp gives them: batch_size x 3 (is_color,
    else 1) x the transformer's crop_size square, else crop_height x crop_width, else new_height x
    new_width, else the first image's `image` (height, width; None where it is not read); the label
    has 1 channel and the same size (ENet's divided by label_divide_factor when not cropped).
    Refuses what setup CHECKs, the first batch's loading (in the thread setup starts) included."""
    def get(name):
        return written[name] if name in written else proto_default("dense_image_data_param", name)

    batch, channels = get("batch_size"), 3 if get("is_color") else 1
    size = _set_together(get, "new") or image  # the fork reads the image resized
    crop = (transform["crop_size"],) * 2 if transform.get("crop_size") else _set_together(get, "crop")
    divide = written.get("label_divide_factor", 1)  # ENet's; SegNet's proto lacks it
    _check_dense_image_setup(transform, batch, divide)
    if crop:
        if size and (crop[0] > size[0] or crop[1] > size[1]):
            raise ValueError(f"the crop {crop[0]}x{crop[1]} (height x width) is larger than the "
                             f"{size[0]}x{size[1]} image")
        return (batch, channels, *crop), (batch, 1, *crop)
    height, width = size or (None, None)
    label = tuple(None if extent is None else extent // divide for extent in (height, width))
    return (batch, channels, height, width), (batch, 1, *label)


def _set_together(get, prefix: str) -> tuple[int, int] | None:
    """new_height/new_width or crop_height/crop_width: both positive (the size) or both 0 (None)."""
    height, width = get(f"{prefix}_height"), get(f"{prefix}_width")
    if (height > 0) != (width > 0):
        raise ValueError(f"dense_image_data_param.{prefix}_height and {prefix}_width must be set together, "
                         f"got {height} and {width}")
    return (height, width) if height > 0 else None


def _check_dense_image_setup(transform: Mapping[str, Any], batch: int, divide: int) -> None:
    if batch <= 0:  # the first batch's CHECK that its blob is not empty
        raise ValueError("dense_image_data_param.batch_size must be greater than 0 (its default is 0)")
    if divide <= 0:  # setup divides the new size by it
        raise ValueError("dense_image_data_param.label_divide_factor must be greater than 0")
    for name, verb, instead in (("crop_size", "crop", "crop_height and crop_width"), ("mirror", "mirror", "mirror")):
        if transform.get(name) and not dense_image_is_enets():  # its batch loader CHECKs neither is set
            raise ValueError(f"SegNet's DenseImageData refuses transform_param.{name} (it would {verb} the image and "
                             f"its label differently): use dense_image_data_param.{instead}")
