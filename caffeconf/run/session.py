"""What the `run` and `time` commands share: a model for a net, and its inputs."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..caffe.facts import MAX_BLOB_ELEMENTS
from ..errors import CaffeconfError
from ..files import check_path
from ..ir import Net
from .interpreter import CaffeNet
from .layers.data import declared_shapes, inputs_as_layer
from ..inspect.shapes import check_source_sizes
from .preprocess import Transform, load_images, transform_from_fields
from ..caffe.weights import read_caffemodel


def build_model(net: Net, weights: str | None, phase: str, seed: int, device: torch.device,
                random_weights: bool = False, allow_python_layers: bool = False) -> CaffeNet:
    stored = read_caffemodel(weights) if weights else None
    return CaffeNet(net, phase=phase, seed=seed, weights=stored, device=device, random_weights=random_weights,
                    allow_python_layers=allow_python_layers).to(device)


def input_shapes(net: Net, batch: int | None) -> dict[str, tuple[int, ...]]:
    """Declared shapes of the Input layers' tops, with the batch size replaced when asked."""
    shapes, net = {}, inputs_as_layer(net)
    for layer in net.layers:
        if layer.type == "Input":
            for top, shape in zip(layer.tops, declared_shapes(layer.fields, layer.tops) or ()):
                shapes[top] = ((batch,) + tuple(shape[1:])) if batch and shape else tuple(shape)
    check_source_sizes(net, shapes)
    return shapes


def gather_inputs(net: Net, model: CaffeNet, arrays: Sequence[str], images: Sequence[str],
                  transform_overrides: dict, seed: int, batch: int | None) -> dict[str, torch.Tensor]:
    """Inputs from .npy files and images; a seeded normal sample for every other declared input."""
    given = dict(_load_array(spec) for spec in arrays)
    if images:
        if not model.inputs:
            raise CaffeconfError.at(None, "the net has no input blob to feed images to")
        target = model.inputs[0]
        given[target] = load_images(images, _image_shape(net, target, batch), _transform(net, target, transform_overrides))
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)) for name, value in given.items()}
    for name, shape in input_shapes(net, batch).items():
        if name not in inputs:
            inputs[name] = torch.randn(shape, generator=generator)
    return inputs


def _load_array(spec: str) -> tuple[str, np.ndarray]:
    name, separator, path = spec.partition("=")
    if not separator or not name or not path:
        raise CaffeconfError.at(None, f"bad --input '{spec}': expected BLOB=FILE.npy")
    try:
        return name, read_npy(path)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read --input {name}={path}: {error.strerror or error}") from None


def read_npy(path: str) -> np.ndarray:
    """A numeric .npy array, its header checked before any data is read: a file declaring
    petabytes, or more elements than a Caffe blob holds, is refused without allocating them."""
    from numpy.lib import format as npy

    check_path(path)
    if not os.path.isfile(path):
        raise CaffeconfError.at(None, f"{path}: not a regular file: not read") if os.path.exists(path) \
            else FileNotFoundError(2, "No such file or directory", path)
    with open(path, "rb") as handle:
        try:
            version = npy.read_magic(handle)
            read_header = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(version)
            shape, _, dtype = read_header(handle)
        except (ValueError, SyntaxError, TypeError, EOFError):
            raise CaffeconfError.at(None, f"{path}: not a .npy file (or its header is broken)") from None
        if dtype.kind not in "biuf":
            raise CaffeconfError.at(None, f"{path}: holds {dtype} values; a blob takes numbers")
        count = math.prod(shape)
        if count > MAX_BLOB_ELEMENTS:
            raise CaffeconfError.at(None, f"{path}: its shape {'x'.join(map(str, shape))} has more elements than "
                                          f"the {MAX_BLOB_ELEMENTS} (INT_MAX) a Caffe blob can hold")
        if os.fstat(handle.fileno()).st_size - handle.tell() < count * dtype.itemsize:
            raise CaffeconfError.at(None, f"{path}: shorter than its header's shape {'x'.join(map(str, shape))}")
        handle.seek(0)
        return np.load(handle, allow_pickle=False)


def _image_shape(net: Net, blob: str, batch: int | None) -> tuple[int, ...]:
    shape = input_shapes(net, batch).get(blob)
    if shape is None or len(shape) != 4:
        raise CaffeconfError.at(None, f"images need a declared 4-axis shape for input '{blob}'",
                                hint="declare it with an Input layer, or pass --input with a .npy file")
    return shape


def _transform(net: Net, blob: str, overrides: dict) -> Transform:
    producer = next((layer for layer in net.layers if blob in layer.tops), None)
    return transform_from_fields(producer.fields if producer else {}, overrides)


def summarize(name: str, blob: torch.Tensor, top: int = 5) -> list[str]:
    """Shape and statistics of a blob, and the top classes for a class-score blob."""
    values = blob.detach().float().cpu()
    lines = [f"{name}: shape {tuple(values.shape)}"]
    if values.numel():
        lines[0] += (f"  min {values.min().item():.6g}  max {values.max().item():.6g}  "
                     f"mean {values.mean().item():.6g}  std {values.std(unbiased=False).item():.6g}")
    scores = _class_scores(values)
    if scores is not None:
        k = min(top, scores.shape[1])
        best, indices = torch.topk(scores, k, dim=1)
        for sample in range(min(scores.shape[0], 4)):
            ranked = ", ".join(f"{i} ({v:.4g})" for i, v in zip(indices[sample].tolist(), best[sample].tolist()))
            lines.append(f"  top-{k} [{sample}]: {ranked}")
    return lines


def _class_scores(values: torch.Tensor) -> torch.Tensor | None:
    """(N, C) or (N, C, 1, 1) with several classes: a classifier's output."""
    if values.dim() < 2 or values.shape[1] < 2 or any(d != 1 for d in values.shape[2:]):
        return None
    return values.reshape(values.shape[0], values.shape[1])


def save_outputs(path: str | Path, outputs: dict[str, torch.Tensor]) -> None:
    """The blobs as an .npz that np.load reads back by blob name. Written here rather than by np.savez,
    which would take blobs named `file` or `allow_pickle` as its own arguments."""
    import io
    import zipfile

    from ..files import write_atomic

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, value in outputs.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value.detach().float().cpu().numpy(), allow_pickle=False)
    write_atomic(path, buffer.getvalue())
