"""The runner against OpenCV's Caffe importer (cv2.dnn.readNetFromCaffe), our oracle.

Every case: seeded random weights written to a .caffemodel by us, the same
prototxt and .caffemodel run by OpenCV and by caffeconf, outputs equal within
1e-4 relative to the output's largest magnitude.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from caffeconf.compile.load import load  # noqa: E402
from caffeconf.compile.rules import filter_net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.layers.data import declared_shapes  # noqa: E402
from caffeconf.caffe.weights import write_caffemodel  # noqa: E402

from conftest import SHARED, model_files  # noqa: E402

TOLERANCE = 1e-4


def randomize_blobs(model: CaffeNet, seed: int) -> None:
    """Weights that keep activations in a sane range, and BatchNorm statistics that are valid."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for step in model.steps:
            for position, blob in enumerate(model.layer_blobs[step.index]):
                blob.copy_(_random_blob(step.layer.type, position, tuple(blob.shape), generator))


def _random_blob(layer_type, position, shape, generator):
    if layer_type == "BatchNorm":
        # running sums with a scale factor of 2: mean, positive variance, factor
        if position == 2:
            return torch.full(shape, 2.0)
        return torch.randn(shape, generator=generator) * 0.2 if position == 0 else \
            torch.rand(shape, generator=generator) + 0.5
    if layer_type in ("Scale", "PReLU", "Normalize") and position == 0:
        return torch.rand(shape, generator=generator) + 0.5
    fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else 100
    return torch.randn(shape, generator=generator) / np.sqrt(fan_in)


def run_both(prototxt: Path, inputs: dict[str, np.ndarray], tmp_path: Path, seed: int = 0,
             extra_outputs=()):
    """(ours, opencv): dicts of output blob -> array for the same net and weights."""
    net = filter_net(load(prototxt).net, phase="TEST")
    model = CaffeNet(net, seed=seed)
    feed = {name: torch.from_numpy(value) for name, value in inputs.items()}
    with torch.no_grad():
        model(feed)
        randomize_blobs(model, seed)
        blobs = model(feed, keep_all=True)
    weights = tmp_path / "weights.caffemodel"
    # OpenCV cannot read a 0-axis blob (Normalize's shared scale): written with one axis for it.
    arrays = {name: [a.reshape(1) if a.ndim == 0 else a for a in blobs_of]
              for name, blobs_of in model.blob_arrays().items()}
    write_caffemodel(weights, net, arrays)
    reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    for name, value in inputs.items():
        reference.setInput(value, name)
    producers = {top: (layer.name, index) for layer in net.layers for index, top in enumerate(layer.tops)}
    wanted = list(model.outputs) + [name for name in extra_outputs if name not in model.outputs]
    layer_names = sorted({producers[name][0] for name in wanted})
    retrieved = dict(zip(layer_names, reference.forwardAndRetrieve(layer_names)))
    theirs = {name: np.asarray(retrieved[producers[name][0]][producers[name][1]]) for name in wanted}
    return {name: blobs[name].numpy() for name in wanted}, theirs


def assert_close(ours: dict, theirs: dict) -> None:
    for name, expected in theirs.items():
        actual = ours[name]
        assert actual.size == expected.size, (name, actual.shape, expected.shape)
        actual = actual.reshape(expected.shape)
        scale = max(float(np.abs(expected).max()), 1e-12)
        error = float(np.abs(actual - expected).max()) / scale
        assert error <= TOLERANCE, f"blob '{name}': relative error {error:.3g}"


# ------------------------------------------------------------- shared models

def _deploy_nets() -> list[Path]:
    """V2 deploy nets: an Input layer (or legacy net input), no database layers, no V1 `layers`."""
    chosen = []
    for path in model_files():
        text = path.read_text(errors="replace")
        is_v2 = re.search(r"^\s*layer\s*\{", text, re.M) and not re.search(r"^\s*layers\s*[{:]", text, re.M)
        has_input = re.search(r'type:\s*"Input"', text) or re.search(r"^input:", text, re.M)
        if is_v2 and has_input and not re.search(r'type:\s*"(Data|ImageData|HDF5Data)"', text):
            chosen.append(path)
    return chosen


def _logits(net) -> list[str]:
    """The bottom of a final Softmax: compared too, since softmax can hide differences."""
    last = net.layers[-1]
    return list(last.bottoms) if last.type == "Softmax" else []


@pytest.mark.parametrize("path", _deploy_nets(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_deploy_net_matches_opencv(path, tmp_path):
    net = filter_net(load(path).net, phase="TEST")
    inputs = {}
    generator = np.random.default_rng(1)
    for layer in net.layers:
        if layer.type == "Input":
            for top, shape in zip(layer.tops, declared_shapes(layer.fields, layer.tops)):
                inputs[top] = generator.standard_normal((1,) + tuple(shape[1:])).astype(np.float32)
    ours, theirs = run_both(path, inputs, tmp_path, extra_outputs=_logits(net))
    assert_close(ours, theirs)


def test_deploy_nets_are_found():
    names = {f"{p.parent.name}/{p.name}" for p in _deploy_nets()}
    if model_files():
        assert {"bvlc_googlenet/deploy.prototxt", "resnet/ResNet-50-deploy.prototxt",
                "lenet/lenet.prototxt"} <= names


# ------------------------------------------------------ per-layer edge cases

def one_layer_net(tmp_path: Path, layer: str, shapes: dict[str, tuple[int, ...]], extra="") -> Path:
    """A prototxt with one Input layer per bottom and `layer` (text) after them."""
    inputs = "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" '
        f'input_param {{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}\n'
        for name, shape in shapes.items())
    path = tmp_path / "net.prototxt"
    path.write_text(f'name: "t"\n{inputs}{layer}\n{extra}')
    return path


def check_layer(tmp_path, layer, shapes, seed=0):
    generator = np.random.default_rng(seed)
    inputs = {name: generator.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    ours, theirs = run_both(one_layer_net(tmp_path, layer, shapes), inputs, tmp_path, seed)
    assert_close(ours, theirs)
    return ours


POOLING = [
    # (input H, W, pooling_param): ceil rounding, overhanging last windows, clipped windows
    ((6, 6), "kernel_size: 3 stride: 2"),
    ((7, 7), "kernel_size: 3 stride: 2 pad: 1"),
    ((5, 8), "kernel_size: 2 stride: 2 pad: 1"),
    ((13, 13), "kernel_size: 3 stride: 2"),
    ((10, 11), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0"),
    ((6, 6), "kernel_size: 3 stride: 3 pad: 2"),  # pad > kernel / 2: past PyTorch's own limit
    ((9, 7), "global_pooling: true"),
    ((7, 7), "kernel_size: 3 stride: 2 round_mode: FLOOR"),
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("size,param", POOLING, ids=[p for _, p in POOLING])
def test_pooling_matches_opencv(tmp_path, method, size, param):
    if "round_mode" in param:
        pytest.skip("OpenCV's Caffe importer ignores round_mode")
    layer = f'layer {{ name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param {{ pool: {method} {param} }} }}'
    check_layer(tmp_path, layer, {"x": (2, 3) + size})


@pytest.mark.parametrize("size", [1, 3, 5, 7])
@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_lrn_matches_opencv(tmp_path, size, region):
    # k stays at its default 1: OpenCV's importer ignores Caffe's `k` (see the numpy test below).
    layer = (f'layer {{ name: "n" type: "LRN" bottom: "x" top: "n" lrn_param {{ local_size: {size} '
             f'alpha: 0.3 beta: 0.75 norm_region: {region} }} }}')
    check_layer(tmp_path, layer, {"x": (2, 9, 6, 5)})


CONVOLUTIONS = [
    "num_output: 6 kernel_size: 3",
    "num_output: 6 kernel_size: 3 group: 3 pad: 1",
    "num_output: 4 kernel_size: 3 dilation: 2 pad: 2",
    "num_output: 4 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
    "num_output: 4 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1",
    "num_output: 4 kernel_size: 3 bias_term: false",
    "num_output: 6 kernel_size: 1 group: 6",
]


@pytest.mark.parametrize("param", CONVOLUTIONS)
def test_convolution_matches_opencv(tmp_path, param):
    layer = f'layer {{ name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param {{ {param} }} }}'
    check_layer(tmp_path, layer, {"x": (2, 6, 9, 8)})


@pytest.mark.parametrize("param", [
    "num_output: 4 kernel_size: 4 stride: 2 pad: 1",
    "num_output: 6 kernel_size: 3 stride: 2 group: 3",
    "num_output: 3 kernel_size: 2 stride: 1 bias_term: false",
])
def test_deconvolution_matches_opencv(tmp_path, param):
    layer = f'layer {{ name: "d" type: "Deconvolution" bottom: "x" top: "d" convolution_param {{ {param} }} }}'
    check_layer(tmp_path, layer, {"x": (1, 6, 5, 4)})


@pytest.mark.parametrize("param", [
    "", "operation: SUM coeff: 1 coeff: -2 coeff: 0.5", "operation: PROD", "operation: MAX"])
def test_eltwise_matches_opencv(tmp_path, param):
    layer = f'layer {{ name: "e" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "e" eltwise_param {{ {param} }} }}'
    check_layer(tmp_path, layer, {name: (2, 3, 4, 5) for name in "abc"})


@pytest.mark.parametrize("param", ["axis: 2 offset: 1 offset: 2", "axis: 1 offset: 1", "axis: 3 offset: 3", "axis: 2"])
def test_crop_matches_opencv(tmp_path, param):
    layer = f'layer {{ name: "c" type: "Crop" bottom: "a" bottom: "b" top: "c" crop_param {{ {param} }} }}'
    check_layer(tmp_path, layer, {"a": (2, 5, 8, 9), "b": (2, 4, 5, 6)})


def test_batch_norm_scale_factor_matches_opencv(tmp_path):
    layer = 'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" batch_norm_param { eps: 0.001 } }'
    check_layer(tmp_path, layer, {"x": (2, 4, 3, 3)})


@pytest.mark.parametrize("param", ["", "bias_term: true", "axis: 1 num_axes: 2 bias_term: true"])
def test_scale_matches_opencv(tmp_path, param):
    layer = f'layer {{ name: "s" type: "Scale" bottom: "x" top: "s" scale_param {{ {param} }} }}'
    check_layer(tmp_path, layer, {"x": (2, 4, 3, 5)})


@pytest.mark.parametrize("layer", [
    'layer { name: "r" type: "ReLU" bottom: "x" top: "x" relu_param { negative_slope: 0.1 } }',
    'layer { name: "r" type: "PReLU" bottom: "x" top: "r" }',
    'layer { name: "r" type: "ELU" bottom: "x" top: "r" elu_param { alpha: 0.7 } }',
    'layer { name: "r" type: "Sigmoid" bottom: "x" top: "r" }',
    'layer { name: "r" type: "TanH" bottom: "x" top: "r" }',
    'layer { name: "r" type: "AbsVal" bottom: "x" top: "r" }',
    'layer { name: "r" type: "BNLL" bottom: "x" top: "r" }',
    'layer { name: "r" type: "Power" bottom: "x" top: "r" power_param { power: 2 scale: 0.5 shift: 1 } }',
    'layer { name: "r" type: "Exp" bottom: "x" top: "r" exp_param { base: 2 scale: 0.5 shift: 1 } }',
    'layer { name: "r" type: "Softmax" bottom: "x" top: "r" softmax_param { axis: 2 } }',
    'layer { name: "r" type: "InnerProduct" bottom: "x" top: "r" inner_product_param { num_output: 5 } }',
    'layer { name: "r" type: "InnerProduct" bottom: "x" top: "r" inner_product_param { num_output: 5 axis: 2 } }',
    'layer { name: "r" type: "Flatten" bottom: "x" top: "r" flatten_param { axis: 2 } }',
    'layer { name: "r" type: "Reshape" bottom: "x" top: "r" reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }',
    'layer { name: "r" type: "MVN" bottom: "x" top: "r" }',
    'layer { name: "r" type: "MVN" bottom: "x" top: "r" mvn_param { across_channels: true } }',
    'layer { name: "r" type: "Slice" bottom: "x" top: "a" top: "b" slice_param { axis: 1 slice_point: 1 } }',
    'layer { name: "r" type: "Concat" bottom: "x" bottom: "x" top: "r" concat_param { axis: 2 } }',
    'layer { name: "r" type: "Dropout" bottom: "x" top: "r" }',
])
def test_simple_layers_match_opencv(tmp_path, layer):
    check_layer(tmp_path, layer, {"x": (2, 4, 3, 6)})


# ------------------------------------------------------------------ configs

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_deploy_form_matches_opencv(config, tmp_path):
    from caffeconf.cli import main

    stage = ["--stage", "deploy"] if re.search(r"^variants:.*\bdeploy\b", config.read_text(), re.M) else []
    prototxt = tmp_path / "net.prototxt"
    assert main(["compile", str(config), *stage, "-o", str(prototxt)]) == 0
    net = filter_net(load(prototxt).net, phase="TEST")
    readers = [layer.name for layer in net.layers if layer.type in ("Data", "ImageData", "HDF5Data")]
    if readers:
        pytest.skip(f"no deploy form: reads data through {readers}")
    inputs = {}
    for layer in net.layers:
        if layer.type == "Input":
            for top, shape in zip(layer.tops, declared_shapes(layer.fields, layer.tops)):
                inputs[top] = np.random.default_rng(2).standard_normal((1,) + tuple(shape[1:])).astype(np.float32)
    ours, theirs = run_both(prototxt, inputs, tmp_path, extra_outputs=_logits(net))
    assert_close(ours, theirs)


# ------------------------------------------------------------ SSD's layers

def prototxt_layer(name: str, layer_type: str, bottoms: tuple[str, ...], param: str = "") -> str:
    """One layer of a prototxt, its top named after it."""
    inputs = " ".join(f'bottom: "{bottom}"' for bottom in bottoms)
    return f'layer {{ name: "{name}" type: "{layer_type}" {inputs} top: "{name}" {param} }}'


def ssd_net(tmp_path: Path, norm="", prior="min_size: 8 max_size: 16 aspect_ratio: 2 variance: 0.1 clip: false",
            priors=4, detection="", classes=4, share_location=True) -> Path:
    """A small SSD head: conv -> Normalize -> loc/conf convolutions -> Permute -> Flatten, PriorBox
    (`priors` per cell) on two feature maps, Concat, Softmax over classes, DetectionOutput.
    (OpenCV needs PriorBox's variance and clip (its default clip is true, Caffe's false) and
    DetectionOutput's code_type, keep_top_k, nms_threshold and background_label_id written; it
    sizes its output by keep_top_k, so keep_top_k -1 crashes it.)"""
    loc_classes = 1 if share_location else classes
    layers = [prototxt_layer("data", "Input", (), "input_param { shape { dim: 2 dim: 3 dim: 32 dim: 32 } }"),
              prototxt_layer("c1", "Convolution", ("data",), "convolution_param { num_output: 8 kernel_size: 3 "
                             "stride: 4 pad: 1 }"),
              prototxt_layer("norm", "Normalize", ("c1",), f"norm_param {{ {norm} }}"),
              prototxt_layer("c2", "Convolution", ("c1",), "convolution_param { num_output: 8 kernel_size: 3 "
                             "stride: 2 pad: 1 }")]
    for source in ("norm", "c2"):
        for head, outputs in (("loc", priors * loc_classes * 4), ("conf", priors * classes)):
            name = f"{source}_{head}"
            layers += [prototxt_layer(name, "Convolution", (source,),
                                      f"convolution_param {{ num_output: {outputs} kernel_size: 3 pad: 1 }}"),
                       prototxt_layer(f"{name}_perm", "Permute", (name,),
                                      "permute_param { order: 0 order: 2 order: 3 order: 1 }"),
                       prototxt_layer(f"{name}_flat", "Flatten", (f"{name}_perm",))]
        layers.append(prototxt_layer(f"{source}_prior", "PriorBox", (source, "data"), f"prior_box_param {{ {prior} }}"))
    for head, suffix, axis in (("loc", "_flat", 1), ("conf", "_flat", 1), ("prior", "", 2)):
        layers.append(prototxt_layer(head, "Concat", (f"norm_{head}{suffix}", f"c2_{head}{suffix}"),
                                     f"concat_param {{ axis: {axis} }}"))
    layers += [prototxt_layer("conf_shape", "Reshape", ("conf",),
                              f"reshape_param {{ shape {{ dim: 0 dim: -1 dim: {classes} }} }}"),
               prototxt_layer("conf_prob", "Softmax", ("conf_shape",), "softmax_param { axis: 2 }"),
               prototxt_layer("conf_flat", "Flatten", ("conf_prob",)),
               prototxt_layer("det", "DetectionOutput", ("loc", "conf_flat", "prior"),
                              f"detection_output_param {{ num_classes: {classes} background_label_id: 0 "
                              f"share_location: {str(share_location).lower()} {detection} }}")]
    path = tmp_path / "ssd.prototxt"
    path.write_text('name: "ssd"\n' + "\n".join(layers) + "\n")
    return path


def by_image_label_score(rows: np.ndarray) -> np.ndarray:
    """Detections by image, then by label, then best score first (scores equal to 1e-5 by position)."""
    return rows[np.lexsort((rows[:, 4], rows[:, 3], -np.round(rows[:, 2], 5), rows[:, 1], rows[:, 0]))]


def assert_detections_match(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Our rows are in Caffe's order: by image, by label, best score first. OpenCV pads its output
    with rows of zeros up to keep_top_k per image and sorts each image's rows by score across
    labels, so its rows are compared without the padding, in that order too; rows of equal score
    (Caffe keeps them in prior order, OpenCV in its sort's; random weights make them where deep
    features are all zero) are compared by position."""
    ours, theirs = ours.reshape(-1, 7), theirs.reshape(-1, 7)
    theirs = theirs[~np.all(theirs == 0, axis=1)]
    order = np.lexsort((-ours[:, 2], ours[:, 1], ours[:, 0]))
    assert np.array_equal(ours[order], ours), "rows by image, then label, then best score first"
    ours, theirs = by_image_label_score(ours), by_image_label_score(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert np.array_equal(ours[:, :2], theirs[:, :2]), "images and labels"
    assert float(np.abs(ours[:, 2:] - theirs[:, 2:]).max()) <= 1e-5


def check_ssd(tmp_path, seed=0, **net) -> dict:
    path = ssd_net(tmp_path, **net)
    blobs = [top for layer in filter_net(load(path).net, phase="TEST").layers for top in layer.tops if top != "data"]
    inputs = {"data": np.random.default_rng(seed).standard_normal((2, 3, 32, 32)).astype(np.float32)}
    ours, theirs = run_both(path, inputs, tmp_path, seed, extra_outputs=blobs)
    detections = ours.pop("det")
    assert_detections_match(detections, theirs.pop("det"))
    for name, expected in theirs.items():
        assert ours[name].shape == expected.shape, name
        assert float(np.abs(ours[name] - expected).max()) <= 1e-5, f"blob '{name}'"
    return detections


SSD_DETECTION = "code_type: CENTER_SIZE confidence_threshold: 0.3 keep_top_k: 500 nms_param { nms_threshold: 0.45 }"
# (OpenCV refuses a scale per channel with across_spatial: the numpy tests cover it.)
SSD_NORMALIZE = ["", "across_spatial: false", "across_spatial: false channel_shared: false eps: 0.001"]


@pytest.mark.parametrize("norm", SSD_NORMALIZE)
def test_ssd_normalize_matches_opencv(tiny_fork, tmp_path, norm):
    check_ssd(tmp_path, norm=norm, detection=SSD_DETECTION)


SSD_PRIORS = [
    # (prior_box_param, priors per cell)
    ("min_size: 8 max_size: 16 aspect_ratio: 2 aspect_ratio: 3 clip: true "
     "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2", 6),
    ("min_size: 6 min_size: 10 aspect_ratio: 2 flip: false variance: 0.2 clip: false", 4),
    ("min_size: 5 max_size: 9 min_size: 12 max_size: 20 step: 8 offset: 0.25 variance: 0.1 clip: false", 4),
    ("min_size: 7 step_h: 6 step_w: 5 variance: 0.1 clip: false", 1),
    ("min_size: 7 aspect_ratio: 3 aspect_ratio: 3 variance: 0.1 clip: true", 3),
]


@pytest.mark.parametrize("prior,priors", SSD_PRIORS, ids=[p for p, _ in SSD_PRIORS])
def test_ssd_prior_box_matches_opencv(tiny_fork, tmp_path, prior, priors):
    check_ssd(tmp_path, prior=prior, priors=priors,
              detection=SSD_DETECTION)


SSD_DETECTIONS = [
    # (DetectionOutput's fields, share_location)
    ("code_type: CENTER_SIZE confidence_threshold: 0.26 keep_top_k: 40 "
     "nms_param { nms_threshold: 0.45 top_k: 60 }", True),
    ("code_type: CORNER confidence_threshold: 0.27 keep_top_k: 500 nms_param { nms_threshold: 0.5 top_k: 20 }", False),
    ("code_type: CORNER keep_top_k: 25 confidence_threshold: 0.26 nms_param { nms_threshold: 0.45 }", False),
    ("code_type: CENTER_SIZE nms_param { nms_threshold: 0.2 top_k: 10 } keep_top_k: 30", True),
    # more candidates per class than the runner's NMS takes in one block (NMS_BLOCK)
    ("code_type: CENTER_SIZE confidence_threshold: 0.01 keep_top_k: 500 nms_param { nms_threshold: 0.7 }", True),
]


@pytest.mark.parametrize("detection,share_location", SSD_DETECTIONS, ids=[d for d, _ in SSD_DETECTIONS])
def test_ssd_detection_output_matches_opencv(tiny_fork, tmp_path, detection, share_location):
    detections = check_ssd(tmp_path, detection=detection, share_location=share_location)
    assert detections.shape[2] > 5, "enough detections to compare"


MOBILENET_SSD = SHARED / "models" / "mobilenet-ssd" / "MobileNetSSD_deploy.prototxt"
SSD_PROTO = SHARED / "dialects" / "ssd" / "caffe.proto"


def test_mobilenet_ssd_run_with_random_weights_matches_opencv(tmp_path):
    """`caffeconf run --random-weights` on MobileNet-SSD (its confidence_threshold lowered so that
    random weights leave detections) against OpenCV on the weights it writes."""
    from caffeconf.cli import main

    if not (MOBILENET_SSD.is_file() and SSD_PROTO.is_file()):
        pytest.skip("../shared/models/mobilenet-ssd or ../shared/dialects/ssd is absent")
    net = tmp_path / "ssd.prototxt"
    net.write_text(MOBILENET_SSD.read_text().replace("confidence_threshold: 0.25", "confidence_threshold: 0.06"))
    image = tmp_path / "data.npy"
    np.save(image, np.random.default_rng(3).standard_normal((1, 3, 300, 300)).astype(np.float32))
    weights, out = tmp_path / "random.caffemodel", tmp_path / "out.npz"
    assert main(["run", "--proto", str(SSD_PROTO), str(net), "--random-weights", "--input", f"data={image}",
                 "--write-weights", str(weights), "-o", str(out), "--blobs", "all"]) == 0
    ours = dict(np.load(out))
    reference = cv2.dnn.readNetFromCaffe(str(net), str(weights))
    reference.setInput(np.load(image), "data")
    # (not blobs a ReLU overwrites in place: OpenCV keeps a layer's own output apart)
    compared = ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox", "conv11_mbox_loc", "conv17_2_mbox_conf"]
    theirs = dict(zip(compared + ["detection_out"], reference.forward(compared + ["detection_out"])))
    detections = ours.pop("detection_out")
    assert detections.shape[2] > 20, "enough detections to compare"
    assert_detections_match(detections, theirs.pop("detection_out"))
    assert_close({name: ours[name] for name in theirs}, theirs)
