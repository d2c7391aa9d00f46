"""SSD's layers (weiliu89/caffe) in the export's table: Normalize, Permute, PriorBox as a constant,
DetectionOutput through ONNX's NonMaxSuppression with the runner's (the fork's) order of rows.

DetectionOutput follows run/layers/detection.py step by step: decode (variance encoding), per
class the scores above confidence_threshold, the best top_k of them, NMS; keep_top_k over all the
classes of an image; rows [image, label, score, xmin, ymin, xmax, ymax] by image, label, best
score first (ties: lower prior first), or one row [image, -1, ...] per image when none is kept.
ONNX's NonMaxSuppression takes the candidates best first with ties to the lower index and drops
one whose IoU with a kept box is above the threshold, as the fork's ApplyNMSFast; its order of
results is not specified, so the rows are sorted here (TopK sorts stably: ties to the lower index).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from ..caffe.facts import legacy_dim, permute_order, prior_box_setup
from ..run.boxes import detection_settings, prior_boxes
from .emit import Emit, Unexpressible
from .layers import emits

DETECTIONS = "detections"  # the symbolic number of DetectionOutput's rows


def _scalar(e: Emit, suffix: str, value: int) -> str:
    return e.const(suffix, value, np.int64)


def _reshaped(e: Emit, x: str, dims) -> str:
    """Reshape to `dims`, -1 where the batch (or batch x classes) goes."""
    return e.node("Reshape", [x, e.ints("shape", dims)])[0]


def _checked(rule, *args):
    """`rule(*args)`, the fork's setup check shared with the runner; its ValueError is Unexpressible."""
    try:
        return rule(*args)
    except ValueError as problem:
        raise Unexpressible(str(problem)) from None


def _legacy(e: Emit, index: int, bottom: int = 0) -> int:
    """A dim of a bottom read as the fork reads it (num, channels, height, width), needed fixed."""
    dim = _checked(legacy_dim, e.bottom_shapes[bottom], index)
    if dim is None:
        raise Unexpressible("it needs a dim that a dynamic-batch export leaves open")
    return dim


@emits("Normalize")
def normalize(e: Emit) -> None:
    """x / sqrt(sum of x^2 + eps) * scale: the sum over channels and space (across_spatial) or over
    channels at each position; eps added to the sum, as the fork does."""
    p = e.param("norm_param")
    rank = len(e.bottom_shapes[0])
    _legacy(e, 1)  # refuses more than 4 axes, as the fork
    axes = list(range(1, rank)) if p["across_spatial"] else [1]
    x = e.inputs[0]
    squares = e.node("ReduceSum", [*e.node("Mul", [x, x]), e.ints("axes", axes)], keepdims=1)
    norm = e.node("Sqrt", e.node("Add", [*squares, e.const("eps", p["eps"])]))
    scale = e.blobs[0].reshape(()) if p["channel_shared"] else e.blobs[0].reshape((-1,) + (1,) * (rank - 2))
    e.node("Mul", [*e.node("Div", [x, *norm]), e.const("scale", scale)], e.out())


@emits("Permute")
def permute(e: Emit) -> None:
    order = _checked(permute_order, list(e.param("permute_param")["order"]), len(e.bottom_shapes[0]))
    e.node("Transpose", [e.inputs[0]], e.out(), perm=order)


@emits("PriorBox")
def prior_box(e: Emit) -> None:
    """The runner's boxes as a constant: they depend on the feature map's and the image's sizes only
    (never on the batch: Caffe's top has batch dim 1)."""
    setup = _checked(prior_box_setup, e.layer.fields.get("prior_box_param") or {})
    if len(e.inputs) != 2:
        raise Unexpressible(f"PriorBox takes 2 bottoms (a feature map and the image), got {len(e.inputs)}")
    layer_hw = (_legacy(e, 2), _legacy(e, 3))
    image_hw = setup.image if all(setup.image) else (_legacy(e, 2, 1), _legacy(e, 3, 1))
    if not layer_hw[0] * layer_hw[1]:
        raise Unexpressible(f"the feature map has no cells to put priors on ({layer_hw[0]}x{layer_hw[1]})")
    e.node("Identity", [e.const("boxes", prior_boxes(setup, layer_hw, image_hw))], e.out())


# ---------------------------------------------------------------- DetectionOutput

def _settings(e: Emit) -> dict:
    s = _checked(detection_settings, e.param("detection_output_param"))
    if s["eta"] != 1:
        raise Unexpressible(f"nms_param.eta {s['eta']:g} lowers the NMS threshold after each kept box; ONNX "
                            "NonMaxSuppression keeps one threshold (export with eta 1)")
    if len(e.inputs) != 3:
        raise Unexpressible(f"DetectionOutput takes 3 bottoms (locations, confidences, priors), got {len(e.inputs)}")
    return s


def _decoded(e: Emit, s: dict, loc: str, priors: str, variances: str) -> str:
    """The fork's DecodeBBox in the runner's float32 operations: (N, loc classes, P, 4) boxes."""
    scaled = loc if s["variance_in_target"] else e.node("Mul", [variances, loc])[0]
    if s["code_type"] == "CORNER":
        return e.node("Add", [priors, scaled])[0]
    low, high = e.node("Split", [priors, e.ints("halves", [2, 2])], 2, axis=1)
    size = e.node("Sub", [high, low])
    if s["code_type"] == "CORNER_SIZE":
        return e.node("Add", [priors, *e.node("Mul", [scaled, *e.node("Concat", [*size, *size], axis=1)])])[0]
    two = e.const("two", 2.0)
    centre = e.node("Div", [*e.node("Add", [low, high]), two])
    shift, stretch = e.node("Split", [scaled, e.ints("halves", [2, 2])], 2, axis=3)
    decoded_centre = e.node("Add", [*e.node("Mul", [shift, *size]), *centre])
    half = e.node("Div", [*e.node("Mul", [*e.node("Exp", [stretch]), *size]), two])
    return e.node("Concat", [*e.node("Sub", [*decoded_centre, *half]), *e.node("Add", [*decoded_centre, *half])],
                  axis=3)[0]


def _candidate_scores(e: Emit, s: dict, conf: str, priors: int) -> str:
    """(N * classes, 1, P) scores: the background's none, and per class only its best top_k."""
    classes = s["classes"]
    scores = e.node("Transpose", [_reshaped(e, conf, [-1, priors, classes])], perm=[0, 2, 1])
    if 0 <= s["background"] < classes:
        mask = np.zeros((1, classes, 1), np.float32)
        mask[0, s["background"]] = -np.inf
        scores = e.node("Add", [*scores, e.const("background", mask)])
    if -1 < s["top_k"] < priors:
        best, where = e.node("TopK", [*scores, e.ints("top_k", [s["top_k"]])], 2, axis=2)
        none = e.node("ConstantOfShape", e.node("Shape", scores),
                      value=numpy_helper.from_array(np.array([-np.inf], np.float32)))
        scores = e.node("ScatterElements", [*none, where, best], axis=2)
    return _reshaped(e, scores[0], [-1, 1, priors])


class _Rows:
    """NonMaxSuppression's selected (batch = image * classes + label, 0, prior) triples, sorted and
    filtered as whole rows."""

    def __init__(self, e: Emit, selected: str, scores: str, classes: int):
        self.e, self.selected, self.scores, self.classes = e, selected, scores, classes

    def column(self, index: int) -> str:
        return self.e.node("Gather", [self.selected, _scalar(self.e, "column", index)], axis=1)[0]

    def pairs(self) -> str:
        """(S, 2) [batch, prior] for GatherND."""
        return self.e.node("Gather", [self.selected, self.e.ints("pair", [0, 2])], axis=1)[0]

    def score(self) -> str:
        return self.e.node("GatherND", [self.scores, self.pairs()])[0]

    def image(self) -> str:
        return self.e.node("Div", [self.column(0), _scalar(self.e, "classes", self.classes)])[0]

    def sort(self, key: str, largest: int) -> None:
        """Reorder by `key`, stably (TopK gives equal keys in their order)."""
        count = self.e.node("Shape", [key])
        _, order = self.e.node("TopK", [key, *count], 2, axis=0, largest=largest, sorted=1)
        self.selected = self.e.node("Gather", [self.selected, order], axis=0)[0]

    def keep(self, condition: str) -> None:
        self.selected = self.e.node("Compress", [self.selected, condition], axis=0)[0]


def _images(e: Emit, conf: str) -> str:
    """The images' indices 0..N-1 (N from the confidences: a dynamic batch)."""
    count = e.node("Gather", [*e.node("Shape", [conf]), _scalar(e, "first", 0)])
    return e.node("Range", [_scalar(e, "zero", 0), *count, _scalar(e, "one", 1)])[0]


def _keep_top_k(e: Emit, rows: _Rows, images: str, keep: int) -> None:
    """At most `keep` rows per image, the best scores (ties: lower label, then lower prior), as the
    runner's sort of all the classes' kept boxes."""
    rows.sort(rows.image(), largest=0)  # stable: within an image still best score first
    image = rows.image()
    per_image = e.node("Cast", e.node("Equal", [*e.node("Unsqueeze", [image, e.ints("axes", [1])]), images]), to=7)
    counts = e.node("ReduceSum", [*per_image, e.ints("rows", [0])], keepdims=0)
    starts = e.node("CumSum", [*counts, _scalar(e, "axis", 0)], exclusive=1)
    positions = e.node("Range", [_scalar(e, "zero", 0), *e.node("Squeeze", e.node("Shape", [image])),
                                 _scalar(e, "one", 1)])
    rank = e.node("Sub", [*positions, *e.node("Gather", [*starts, image])])
    rows.keep(e.node("Less", [*rank, _scalar(e, "keep_top_k", keep)])[0])


@emits("DetectionOutput")
def detection_output(e: Emit) -> None:
    s = _settings(e)
    classes, loc_classes = s["classes"], 1 if s["share_location"] else s["classes"]
    priors = _legacy(e, 2, 2) // 4
    if not priors:
        raise Unexpressible("the priors bottom holds no prior")
    loc_in, conf_in, prior_in = e.inputs
    # (2, P, 4): the first P boxes, then their variances (the runner reads the first P * 8 values)
    head = e.node("Slice", [_reshaped(e, prior_in, [-1]), e.ints("start", [0]), e.ints("end", [priors * 8])])
    boxes_at, variances = e.node("Split", [_reshaped(e, head[0], [2, priors, 4]), e.ints("parts", [1, 1])], 2, axis=0)
    prior_corners, variance_values = (_reshaped(e, v, [priors, 4]) for v in (boxes_at, variances))
    loc = e.node("Transpose", [_reshaped(e, loc_in, [-1, priors, loc_classes, 4])], perm=[0, 2, 1, 3])
    boxes = _decoded(e, s, loc[0], prior_corners, variance_values)
    if s["share_location"]:
        boxes = e.node("Expand", [boxes, e.ints("classes", [1, classes, 1, 1])])[0]
    boxes = _reshaped(e, boxes, [-1, priors, 4])  # (N * classes, P, 4)
    scores = _candidate_scores(e, s, conf_in, priors)
    selected = e.node("NonMaxSuppression", [_for_nms(e, boxes), scores, e.ints("most", [priors]),
                                            e.const("iou", [s["nms_threshold"]]), e.const("above", [s["threshold"]])])
    rows = _Rows(e, selected[0], _reshaped(e, scores, [-1, priors]), classes)
    # canonical order first (NonMaxSuppression's is unspecified): by image, label, prior
    rows.sort(e.node("Add", [*e.node("Mul", [rows.column(0), _scalar(e, "priors", priors)]), rows.column(2)])[0],
              largest=0)
    rows.sort(rows.score(), largest=1)
    images = _images(e, conf_in)
    if s["keep_top_k"] > -1:
        _keep_top_k(e, rows, images, s["keep_top_k"])
    rows.sort(rows.column(0), largest=0)  # by image and label, each still best score first
    _write_rows(e, rows, boxes, images)


def _for_nms(e: Emit, boxes: str) -> str:
    """The boxes for NonMaxSuppression, which orders each box's corners itself: one with xmax < xmin
    or ymax < ymin (which the fork's overlap leaves at 0 with every box) becomes an empty box, which
    ONNX Runtime never lets suppress or be suppressed."""
    low, high = e.node("Split", [boxes, e.ints("halves", [2, 2])], 2, axis=2)
    smaller = e.reduce("ReduceMin", e.node("Sub", [high, low])[0], [2], 1)
    upright = e.node("GreaterOrEqual", [*smaller, e.const("zero", 0.0)])
    return e.node("Where", [*upright, boxes, e.const("empty", 0.0)])[0]


def _write_rows(e: Emit, rows: _Rows, boxes: str, images: str) -> None:
    """(1, 1, R, 7) rows [image, label, score, box], or one [image, -1 x 6] per image when R is 0."""
    def as_column(value: str, cast: bool) -> str:
        value = e.node("Cast", [value], to=1)[0] if cast else value
        return e.node("Unsqueeze", [value, e.ints("axes", [1])])[0]

    label = e.node("Mod", [rows.column(0), _scalar(e, "classes", rows.classes)])[0]
    located = e.node("GatherND", [boxes, rows.pairs()])
    found = e.node("Concat", [as_column(rows.image(), True), as_column(label, True), as_column(rows.score(), False),
                              *located], axis=1)
    count = e.node("Gather", [*e.node("Shape", found), e.ints("first", [0])])
    none = e.node("Concat", [as_column(images, True),
                             *e.node("Expand", [e.const("none", -np.ones((1, 6))), *e.node(
                                 "Concat", [*e.node("Shape", [images]), e.ints("six", [6])], axis=0)])], axis=1)
    # the rows found, else (R = 0) the N rows of -1 after them: rows 0 .. R + N * (R == 0)
    empty = e.node("Cast", e.node("Equal", [*count, e.ints("zero", [0])]), to=7)
    end = e.node("Add", [*count, *e.node("Mul", [*empty, *e.node("Shape", [images])])])
    chosen = e.node("Slice", [*e.node("Concat", [*found, *none], axis=0), e.ints("start", [0]), *end,
                              e.ints("axis", [0])])
    e.node("Reshape", [*chosen, e.ints("shape", [1, 1, -1, 7])], e.out())
    e.graph.data_shaped[e.tops[0]] = (1, 1, DETECTIONS, 7)
