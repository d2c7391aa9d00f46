"""Data-layer shapes read from their sources (LMDB first record, HDF5 datasets, an image list's
first image) by inspect and validate, which say what they read."""

from __future__ import annotations

import json
import os

import pytest

from caffeconf.cli import main

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2")

NET = """caffeconf: 1
layers:
{layers}
"""
MNIST = ("  - {name: mnist, type: Data, top: [data, label], data_param: {source: digits_lmdb, backend: LMDB,"
         " batch_size: 64}}")
IMAGES = ("  - {name: images, type: ImageData, top: [im, imlabel], image_data_param: {source: list.txt,"
          " batch_size: 4%s}, transform_param: {crop_size: %d}}")
HDF5 = "  - {name: h5, type: HDF5Data, top: [features, target], hdf5_data_param: {source: h5list.txt, batch_size: 8}}"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Caffe opens sources relative to the current directory
    return tmp_path


def write_net(folder, *layers) -> str:
    (folder / "net.yaml").write_text(NET.format(layers="\n".join(layers)))
    return "net.yaml"


def write_digits(records):
    pytest.importorskip("lmdb")
    from caffeconf.train.imageset import write_lmdb

    write_lmdb("digits_lmdb", records)


def raw_digits(count=3, shape=(1, 28, 28)):
    from caffeconf.train.imageset import array_records

    return array_records(np.zeros((count, *shape), np.uint8), range(count))


def inspect_rows(capsys, net, *options):
    assert main(["inspect", net, "--format", "json", *options]) == 0
    captured = capsys.readouterr()
    return {row["name"]: row["outputs"] for row in json.loads(captured.out)["rows"]}, captured.err


def test_data_takes_its_shape_from_the_first_lmdb_record(folder, capsys):
    write_digits(raw_digits())
    rows, said = inspect_rows(capsys, write_net(folder, MNIST))
    assert rows["mnist"] == [[64, 1, 28, 28], [64]]
    assert said == "shapes read: layer 'mnist': 'data' 64x1x28x28, 'label' 64 from LMDB 'digits_lmdb' (its first record)\n"


def test_an_encoded_record_is_decoded_for_its_size_and_cropped(folder, capsys):
    from caffeconf.caffe import messages

    png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    write_digits([(b"0", messages.Datum(encoded=True, data=png, label=1))])
    rows, _ = inspect_rows(capsys, write_net(folder, MNIST.replace("}}", "}, transform_param: {crop_size: 24}}")))
    assert rows["mnist"] == [[64, 3, 24, 24], [64]]


def test_image_data_reads_the_first_image_header_unless_it_resizes(folder, capsys):
    (folder / "img").mkdir()
    cv2.imwrite("img/a.png", np.zeros((40, 30, 3), np.uint8))
    cv2.imwrite("img/b.jpg", np.zeros((50, 60, 3), np.uint8))
    (folder / "list.txt").write_text("img/b.jpg 3\nimg/a.png 1\n")
    rows, said = inspect_rows(capsys, write_net(folder, IMAGES % ("", 0)))
    assert rows["images"] == [[4, 3, 50, 60], [4]]
    assert said == ("shapes read: layer 'images': 'im' 4x3x50x60, 'imlabel' 4 from image 'img/b.jpg' "
                    "(the first of 'list.txt')\n")
    rows, _ = inspect_rows(capsys, write_net(folder, IMAGES % (", is_color: false, new_height: 9, new_width: 7", 0)))
    assert rows["images"] == [[4, 1, 9, 7], [4]]
    rows, _ = inspect_rows(capsys, write_net(folder, IMAGES % ("", 32)))
    assert rows["images"] == [[4, 3, 32, 32], [4]]


def test_hdf5_data_reads_the_dataset_shapes_of_the_first_file(folder, capsys):
    h5py = pytest.importorskip("h5py")
    with h5py.File("part1.h5", "w") as handle:
        handle["features"] = np.zeros((10, 5, 2), np.float32)
        handle["target"] = np.zeros((10,), np.float32)
    (folder / "h5list.txt").write_text("part1.h5\n")
    rows, said = inspect_rows(capsys, write_net(folder, HDF5))
    assert rows["h5"] == [[8, 5, 2], [8]]
    assert said.endswith("from HDF5 'part1.h5' (the first of 'h5list.txt')\n")


def test_absent_or_unreadable_sources_leave_the_shape_unknown(folder, capsys):
    os.mkfifo("list.txt")  # would block a reader that opened it
    (folder / "digits_lmdb").mkdir()
    (folder / "digits_lmdb" / "data.mdb").write_bytes(b"not a database")
    rows, said = inspect_rows(capsys, write_net(folder, MNIST, IMAGES % ("", 0), HDF5))
    assert rows == {"mnist": [[64, None, None, None], [64]], "images": [[4, 3, None, None], [4]],
                    "h5": [None, None]}
    assert said == ""


def test_input_flags_win_over_what_is_read(folder, capsys):
    write_digits(raw_digits())
    rows, said = inspect_rows(capsys, write_net(folder, MNIST), "--input", "data=2,1,5,5", "--input", "label=2")
    assert rows["mnist"] == [[2, 1, 5, 5], [2]]
    assert said == ""


def test_validate_finds_a_shape_error_only_the_source_reveals_and_names_it(folder, capsys):
    write_digits(raw_digits(shape=(3, 28, 28)))
    eltwise = "- {name: masked, type: Eltwise, bottom: [data, mask], top: masked, eltwise_param: {operation: PROD}}"
    net = write_net(folder, MNIST, "  - {name: mask, type: Input, top: mask, input_param: {shape: {dim: [64, 1, 28, 28]}}}",
                    "  " + eltwise)
    assert main(["validate", net]) == 1
    assert capsys.readouterr().err == (
        "net.yaml:5:5: error: layer 'masked' (Eltwise): Eltwise inputs differ in shape: 64x3x28x28, 64x1x28x28\n"
        f"      {eltwise}\n"
        f"        ^{'~' * (len(eltwise) - 3)}\n"
        "note: shapes read: layer 'mnist': 'data' 64x3x28x28, 'label' 64 from LMDB 'digits_lmdb' (its first record)\n")
    os.rename("digits_lmdb", "elsewhere")
    assert main(["validate", net]) == 0
