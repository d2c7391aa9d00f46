"""Small SegNet- (deploy and train), ENet- and Faster R-CNN-like nets written against the tiny fork
(tests/dialects/tiny_fork.proto): validate, inspect with every shape known, import, and round-trip
exactly; a net with a Python layer (Faster R-CNN's proposal) still validates and inspects, with `?`."""

from __future__ import annotations

import numpy as np
import pytest

from caffeconf.cli import main

from test_run_rcnn import FAST_RCNN_LIKE
from test_run_segnet import SEGNET_LIKE

ENET_LIKE = '''name: "enet_like"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "conv0"
        convolution_param { num_output: 13 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "pool0" type: "Pooling" bottom: "data" top: "pool0" top: "pool0_mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "concat0" type: "Concat" bottom: "conv0" bottom: "pool0" top: "concat0" }
layer { name: "bn0" type: "BN" bottom: "concat0" top: "bn0" bn_param { bn_mode: INFERENCE } }
layer { name: "prelu0" type: "PReLU" bottom: "bn0" top: "bn0" }
layer { name: "pool1" type: "Pooling" bottom: "bn0" top: "pool1" top: "pool1_mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv1" type: "Convolution" bottom: "pool1" top: "conv1" convolution_param { num_output: 16 kernel_size: 1 } }
layer { name: "up1" type: "Upsample" bottom: "conv1" bottom: "pool1_mask" top: "up1"
        upsample_param { upsample_h: 8 upsample_w: 8 } }
layer { name: "deconv" type: "Deconvolution" bottom: "up1" top: "deconv"
        convolution_param { num_output: 4 kernel_size: 2 stride: 2 bias_term: false } }
'''

FASTER_RCNN_LIKE = FAST_RCNN_LIKE.replace(
    'input: "rois" input_shape { dim: 6 dim: 5 }\n', '').replace(
    'layer { name: "roi_pool"',
    '''layer { name: "proposal" type: "Python" bottom: "conv1" top: "rois"
        python_param { module: "rpn.proposal_layer" layer: "ProposalLayer" param_str: "'feat_stride': 16" } }
layer { name: "roi_pool"''')

# SegNet's training nets start with DenseImageData: here with a new size, so no image is read.
SEGNET_LIKE_TRAIN = SEGNET_LIKE.replace(
    '''layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }''',
    '''layer { name: "data" type: "DenseImageData" top: "data" top: "label"
        dense_image_data_param { source: "train.txt" batch_size: 2 new_height: 8 new_width: 8 shuffle: true } }''')

NETS = {"segnet_like": SEGNET_LIKE, "segnet_like_train": SEGNET_LIKE_TRAIN, "enet_like": ENET_LIKE,
        "fast_rcnn_like": FAST_RCNN_LIKE, "faster_rcnn_like": FASTER_RCNN_LIKE}


@pytest.mark.parametrize("name", sorted(NETS))
def test_fork_net_validates_imports_and_round_trips(fork_proto, tmp_path, capsys, name):
    net = tmp_path / f"{name}.prototxt"
    net.write_text(NETS[name])
    proto = ["--proto", str(fork_proto)]
    assert main(["validate", *proto, str(net)]) == 0
    for modules in ([], ["--modules"]):
        config = tmp_path / f"{name}{len(modules)}.yaml"
        assert main(["import", *modules, *proto, str(net), "-o", str(config)]) == 0
        back = tmp_path / f"{name}{len(modules)}.prototxt"
        assert main(["compile", str(config), "-o", str(back)]) == 0
        assert main(["diff", *proto, str(net), str(back)]) == 0


@pytest.mark.parametrize("name", ["segnet_like", "segnet_like_train", "enet_like", "fast_rcnn_like"])
def test_fork_net_inspects_with_every_shape_known(fork_proto, tmp_path, capsys, name):
    from caffeconf.caffe import dialect
    from caffeconf.compile.load import load
    from caffeconf.inspect.measure import measure
    from caffeconf.inspect.shapes import infer_shapes

    net = tmp_path / f"{name}.prototxt"
    net.write_text(NETS[name])
    with dialect.use(dialect.load_dialect(fork_proto)):
        shapes = infer_shapes(load(net).net)
    assert all(top is not None and None not in top for entry in shapes.layers for top in entry.tops)
    assert all(entry.params is not None for entry in shapes.layers)
    costs, memory = measure(shapes)
    assert None not in [c.macs for c in costs] + [c.params for c in costs] and memory.training_peak
    capsys.readouterr()
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    assert "?" not in capsys.readouterr().out.split("memory estimate")[0]


def test_a_segnet_like_train_net_shapes_its_data_and_label(fork_proto, tmp_path, capsys):
    net = tmp_path / "segnet_like_train.prototxt"
    net.write_text(SEGNET_LIKE_TRAIN)
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["data"] == ["DenseImageData", "2x3x8x8,", "2x1x8x8", "0", "0", "2.0", "KiB"]  # 512 values
    assert rows["conv1_D"][:2] == ["Convolution", "2x3x8x8"]


def test_enet_like_shapes_and_parameters(fork_proto, tmp_path, capsys):
    net = tmp_path / "enet_like.prototxt"
    net.write_text(ENET_LIKE)
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["pool0"][1] == "1x3x8x8," and rows["pool0"][2] == "1x3x8x8"  # values and mask
    assert rows["bn0"][:3] == ["BN", "1x16x8x8", "32"]  # scale and shift, (1, 16, 1, 1) each
    assert rows["up1"][:2] == ["Upsample", "1x16x8x8"]
    assert rows["deconv"][:2] == ["Deconvolution", "1x4x16x16"]


def test_a_python_layer_leaves_its_shapes_unknown_without_failing(fork_proto, tmp_path, capsys):
    net = tmp_path / "faster_rcnn_like.prototxt"
    net.write_text(FASTER_RCNN_LIKE)
    assert main(["inspect", "--proto", str(fork_proto), str(net)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["proposal"][:2] == ["Python", "?"] and rows["roi_pool"][:2] == ["ROIPooling", "?"]
    assert rows["conv1"][1] == "2x4x12x12"


@pytest.mark.parametrize("layer,message", [
    ('layer { name: "up" type: "Upsample" bottom: "p" bottom: "m" top: "up" upsample_param { scale: 3 pad_out_h: true } }',
     "layer 'up' (Upsample): upsample_param.pad_out_h needs a scale of 2 along it, got 3"),
    ('layer { name: "up" type: "Upsample" bottom: "p" bottom: "data" top: "up" }',
     "layer 'up' (Upsample): the mask 1x3x8x8 differs in shape from the values 1x3x4x4"),
    ('layer { name: "bn" type: "BN" bottom: "p" top: "bn" top: "m2" bn_param { bn_mode: INFERENCE } }',
     "layer 'bn' (BN): BN with bn_mode INFERENCE makes at most 1 top(s), got 2"),
    ('layer { name: "ave" type: "Pooling" bottom: "data" top: "a" top: "am" pooling_param { pool: AVE kernel_size: 2 } }',
     "layer 'ave' (Pooling): AVE pooling makes at most 1 top(s) (a second, the argmax mask, for MAX only), got 2"),
])
def test_fork_setup_errors_are_located_by_validate(fork_proto, tmp_path, capsys, layer, message):
    net = tmp_path / "net.prototxt"
    net.write_text('name: "t"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "pool" type: "Pooling" bottom: "data" top: "p" top: "m" '
                   'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n' + layer + "\n")
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 1
    assert f"net.prototxt:4:1: error: {message}" in capsys.readouterr().err


def _older_proto(fork_proto, tmp_path):
    """The tiny fork without round_mode and input_param, as SegNet's and Faster R-CNN's protos lack them."""
    old = tmp_path / "old" / "caffe.proto"
    old.parent.mkdir()
    old.write_text("\n".join(line for line in fork_proto.read_text().splitlines()
                             if "RoundMode round_mode" not in line and "InputParameter input_param" not in line))
    return old


def test_a_negative_net_level_input_dim_is_refused_before_run_allocates(fork_proto, tmp_path, capsys):
    pytest.importorskip("torch")
    net = tmp_path / "net.prototxt"
    net.write_text('name: "t"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: -5\ninput_dim: 5\n'
                   'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    assert main(["run", "--proto", str(_older_proto(fork_proto, tmp_path)), str(net)]) == 1
    assert "error: layer 'input' (Input): top 'data' has a negative size: 1x3x-5x5" in capsys.readouterr().err



@pytest.mark.parametrize("written, message", [
    ("input_dim: 1\ninput_dim: 3\ninput_dim: 5\n", "1 inputs need 4 input_dim values (4 per input), found 3"),
    ("input_dim: 1\ninput_dim: 3\ninput_dim: 5\ninput_dim: 5\ninput_dim: 5\n",
     "1 inputs need 4 input_dim values (4 per input), found 5"),
    ("input_shape { dim: 1 }\ninput_dim: 1\ninput_dim: 3\ninput_dim: 5\ninput_dim: 5\n",
     "net sets both input_shape and the deprecated input_dim")])
def test_kept_net_level_inputs_are_checked_as_the_old_caffes_net_init_does(written, message, fork_proto, tmp_path,
                                                                           capsys):
    net = tmp_path / "net.prototxt"
    net.write_text(f'name: "t"\ninput: "data"\n{written}layer {{ name: "r" type: "ReLU" bottom: "data" top: "r" }}\n')
    assert main(["validate", "--proto", str(_older_proto(fork_proto, tmp_path)), str(net)]) == 1
    line = written.splitlines().index(next(l for l in written.splitlines() if l.startswith("input_dim"))) + 3
    assert capsys.readouterr().err.splitlines()[0] == f"{net}:{line}:1: error: {message}"

def test_a_fork_older_than_a_bvlc_field_reads_bvlcs_default(fork_proto, tmp_path, capsys):
    """SegNet's and ENet's PoolingParameter has no round_mode, Faster R-CNN's LayerParameter no
    input_param: the runner and shapes take BVLC's default, net-level inputs stay as the fork has them
    (and `run` feeds them)."""
    pytest.importorskip("torch")
    old = _older_proto(fork_proto, tmp_path)
    net = tmp_path / "net.prototxt"
    net.write_text('name: "t"\ninput: "data"\ninput_shape { dim: 1 dim: 2 dim: 5 dim: 5 }\n'
                   'layer { name: "pool" type: "Pooling" bottom: "data" top: "p" top: "m" '
                   'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
                   'layer { name: "up" type: "Upsample" bottom: "p" bottom: "m" top: "up" '
                   'upsample_param { upsample_h: 5 upsample_w: 5 } }\n')
    assert main(["validate", "--proto", str(old), str(net)]) == 0
    assert main(["inspect", "--proto", str(old), str(net)]) == 0
    assert "1x2x3x3" in capsys.readouterr().out  # CEIL, BVLC's default round_mode
    # `run` feeds the net-level input as the Input layer BVLC's upgrade would make of it.
    out = tmp_path / "out.npz"
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(5).standard_normal((1, 2, 5, 5)).astype(np.float32))
    assert main(["run", "--proto", str(old), str(net), "--input", f"data={data}", "--blobs", "all", "-o", str(out)]) == 0
    up = np.load(out)["up"]
    assert up.shape == (1, 2, 5, 5) and int((up != 0).sum()) == 18  # 3x3 maxima per plane
