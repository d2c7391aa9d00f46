"""SegNet's and ENet's DenseImageData: its data and label shapes as the forks' DataLayerSetUp gives
them (dense_image_data_layer.cpp of alexgkendall/caffe-segnet and TimoSaemann/caffe-enet), from a
crop, a new size, or the first image of its list, and what the forks refuse at setup."""

from __future__ import annotations

import json

import pytest

from caffeconf.cli import main
from caffeconf.errors import CaffeconfError
from caffeconf.ir import Layer, Net
from caffeconf.inspect.shapes import infer_shapes

from conftest import SHARED, require_models

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2")

# `param` goes inside dense_image_data_param, after its source (batch_size 0 unless written).
DENSE = ('layer {{ name: "data" type: "DenseImageData" top: "data" top: "label"\n'
         '        dense_image_data_param {{ source: "list.txt" {param} }} }}\n')


def dense(param=None, transform=None, tops=("data", "label")) -> Layer:
    fields = {"dense_image_data_param": {"source": "list.txt", "batch_size": 2, **(param or {})}}
    if transform:
        fields["transform_param"] = transform
    return Layer("data", "DenseImageData", (), tops, fields)


def tops_of(layer):
    shapes = infer_shapes(Net("t", (layer,)))
    return shapes.layers[0].tops, shapes.layers[0].params


@pytest.mark.parametrize("param, transform, data, label", [
    ({}, None, (2, 3, None, None), (2, 1, None, None)),  # the size is the first image's: unknown here
    ({"new_height": 9, "new_width": 7}, None, (2, 3, 9, 7), (2, 1, 9, 7)),
    ({"crop_height": 5, "crop_width": 4}, None, (2, 3, 5, 4), (2, 1, 5, 4)),
    ({"new_height": 9, "new_width": 7, "crop_height": 9, "crop_width": 4, "is_color": False}, None,
     (2, 1, 9, 4), (2, 1, 9, 4)),
    ({"mirror": True, "shuffle": True}, {"scale": 0.5}, (2, 3, None, None), (2, 1, None, None)),
])
def test_shapes_follow_the_crop_else_the_new_size(tiny_fork, param, transform, data, label):
    assert tops_of(dense(param, transform)) == ((data, label), ())


@pytest.mark.parametrize("param, message", [
    ("shuffle: true", "dense_image_data_param.batch_size must be greater than 0 (its default is 0)"),
    ("new_height: 5", "dense_image_data_param.new_height and new_width must be set together, got 5 and 0"),
    ("crop_width: 3", "dense_image_data_param.crop_height and crop_width must be set together, got 0 and 3"),
    ("batch_size: 2 new_height: 5 new_width: 8 crop_height: 6 crop_width: 4",
     "the crop 6x4 (height x width) is larger than the 5x8 image"),
    ("batch_size: 2 } transform_param { mirror: true",
     "SegNet's DenseImageData refuses transform_param.mirror (it would mirror the image and its label differently): "
     "use dense_image_data_param.mirror"),
    ("batch_size: 2 } transform_param { crop_size: 4",
     "SegNet's DenseImageData refuses transform_param.crop_size (it would crop the image and its label differently): "
     "use dense_image_data_param.crop_height and crop_width"),
])
def test_refused_setups_are_located_by_validate(fork_proto, tmp_path, capsys, param, message):
    net = tmp_path / "net.prototxt"
    net.write_text('name: "t"\n' + DENSE.format(param=param))
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"{net}:2:1: error: layer 'data' (DenseImageData): {message}"


def test_it_makes_exactly_two_tops(tiny_fork):
    with pytest.raises(CaffeconfError) as caught:
        tops_of(dense(tops=("data",)))
    assert [d.message for d in caught.value.diagnostics] == \
        ["layer 'data' (DenseImageData): DenseImageData makes 2 top(s) here, but 1 are named"]


def test_enets_label_divide_factor_shrinks_the_label_and_its_transform_may_crop(fork_proto, tmp_path):
    from caffeconf.caffe import dialect

    enet = tmp_path / "enet" / "caffe.proto"
    enet.parent.mkdir()
    enet.write_text(fork_proto.read_text().replace(
        "  optional uint32 crop_height = 12 [default = 0];\n",
        "  optional uint32 crop_height = 12 [default = 0];\n"
        "  optional uint32 label_divide_factor = 13 [default = 1];\n"))
    with dialect.use(dialect.load_dialect(enet)):
        assert tops_of(dense({"new_height": 512, "new_width": 1024, "label_divide_factor": 8}))[0] == \
            ((2, 3, 512, 1024), (2, 1, 64, 128))
        assert tops_of(dense({"label_divide_factor": 8}, {"crop_size": 32, "mirror": True}))[0] == \
            ((2, 3, 32, 32), (2, 1, 32, 32))
        with pytest.raises(CaffeconfError, match="label_divide_factor must be greater than 0"):
            tops_of(dense({"label_divide_factor": 0}))


def write_pairs(folder, *sizes):
    """Images and grey label images of the given (height, width), and a list naming them in pairs."""
    lines = []
    for index, (height, width) in enumerate(sizes):
        cv2.imwrite(str(folder / f"im{index}.png"), np.zeros((height, width, 3), np.uint8))
        cv2.imwrite(str(folder / f"lab{index}.png"), np.zeros((height, width), np.uint8))
        lines.append(f"im{index}.png lab{index}.png")
    (folder / "list.txt").write_text("\n".join(lines) + "\n")


def inspect_rows(capsys, fork_proto, net, *options):
    assert main(["inspect", "--proto", str(fork_proto), "--format", "json", str(net), *options]) == 0
    captured = capsys.readouterr()
    return {row["name"]: row["outputs"] for row in json.loads(captured.out)["rows"]}, captured.err


def test_the_size_is_read_from_the_first_image_of_the_list(fork_proto, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the fork opens its list and images relative to the current directory
    write_pairs(tmp_path, (6, 10), (7, 11))
    net = tmp_path / "net.prototxt"
    net.write_text('name: "t"\n' + DENSE.format(param="batch_size: 2"))
    rows, said = inspect_rows(capsys, fork_proto, net)
    assert rows["data"] == [[2, 3, 6, 10], [2, 1, 6, 10]]
    assert said == ("shapes read: layer 'data': 'data' 2x3x6x10, 'label' 2x1x6x10 from image 'im0.png' "
                    "(the first of 'list.txt')\n")
    assert inspect_rows(capsys, fork_proto, net, "--batch", "5")[0]["data"] == [[5, 3, 6, 10], [5, 1, 6, 10]]
    net.write_text('name: "t"\n' + DENSE.format(param="batch_size: 2 is_color: false crop_height: 4 crop_width: 5"))
    assert inspect_rows(capsys, fork_proto, net)[0]["data"] == [[2, 1, 4, 5], [2, 1, 4, 5]]
    (tmp_path / "list.txt").write_text("im0.png\n")  # no label image: nothing is read, nothing guessed
    net.write_text('name: "t"\n' + DENSE.format(param="batch_size: 2"))
    assert inspect_rows(capsys, fork_proto, net) == ({"data": [[2, 3, None, None], [2, 1, None, None]]}, "")


SEGNET_PROTO = SHARED / "dialects" / "segnet" / "caffe.proto"


def test_segnet_train_inspects_with_every_shape_known(tmp_path, monkeypatch, capsys):
    original = require_models() / "segnet" / "segnet_train.prototxt"
    if not original.exists() or not SEGNET_PROTO.exists():
        pytest.skip("../shared/models/segnet/segnet_train.prototxt or ../shared/dialects/segnet/caffe.proto is absent")
    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path / "cache"))  # where the proto is compiled
    monkeypatch.chdir(tmp_path)
    write_pairs(tmp_path, (360, 480))  # CamVid's size
    net = tmp_path / "segnet_train.prototxt"
    net.write_text(original.read_text().replace("/SegNet/CamVid/train.txt", "list.txt"))
    rows, said = inspect_rows(capsys, SEGNET_PROTO, net)
    assert rows["data"] == [[4, 3, 360, 480], [4, 1, 360, 480]]
    assert rows["conv1_1_D"] == [[4, 11, 360, 480]]
    assert all(shape is not None and None not in shape for outputs in rows.values() for shape in outputs)
    assert said.startswith("shapes read: layer 'data'")
