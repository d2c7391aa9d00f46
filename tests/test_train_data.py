"""Data layers and transform_param with Caffe's semantics; convert-imageset."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
lmdb = pytest.importorskip("lmdb")
cv2 = pytest.importorskip("cv2")

from caffeconf.cli import main  # noqa: E402
from caffeconf.ir import Layer  # noqa: E402
from caffeconf.caffe import caffe_pb2  # noqa: E402
from caffeconf.train.data import Shard, datum_to_array, make_source  # noqa: E402

IMAGE = np.arange(3 * 6 * 5, dtype=np.uint8).reshape(3, 6, 5)


def data_layer(source, batch=2, **transform) -> Layer:
    return Layer("data", "Data", (), ("data", "label"),
                 {"data_param": {"source": str(source), "batch_size": batch, "backend": "LMDB"},
                  "transform_param": transform})


@pytest.fixture
def image_db(tmp_path):
    from caffeconf.train.imageset import array_records, write_lmdb

    images = np.stack([IMAGE + i for i in range(5)])
    write_lmdb(tmp_path / "db", array_records(images, range(5)))
    return tmp_path / "db"


def test_test_phase_centre_crops_subtracts_mean_values_and_scales(image_db):
    source = make_source(data_layer(image_db, crop_size=3, mean_value=[1, 2, 3], scale=0.5), "TEST", 0)
    batch = source.batch(0)
    expected = (IMAGE[:, 1:4, 1:4].astype(np.float32) - np.array([1, 2, 3])[:, None, None]) * 0.5
    np.testing.assert_array_equal(batch["data"][0], expected)
    np.testing.assert_array_equal(batch["label"], [0, 1])


def test_records_are_read_in_order_and_wrap(image_db):
    source = make_source(data_layer(image_db, batch=2), "TEST", 0)
    assert source.batch(2)["label"].tolist() == [4, 0]


def test_train_phase_crops_and_mirrors_at_random_reproducibly(image_db):
    layer = data_layer(image_db, batch=5, crop_size=3, mirror=True)
    first, again = make_source(layer, "TRAIN", 1).batch(0)["data"], make_source(layer, "TRAIN", 1).batch(0)["data"]
    np.testing.assert_array_equal(first, again)
    windows = set()
    for sample, image in zip(first, np.stack([IMAGE + i for i in range(5)])):
        found = [(top, left, flip) for top in range(4) for left in range(3) for flip in (False, True)
                 if np.array_equal(sample, (image[:, top:top + 3, left:left + 3][:, :, ::-1] if flip
                                            else image[:, top:top + 3, left:left + 3]))]
        assert found, "every sample is a crop (maybe mirrored) of its image"
        windows.add(found[0])
    assert len(windows) > 1


def test_two_shards_read_the_halves_of_the_global_batch(image_db):
    whole = make_source(data_layer(image_db, batch=4), "TEST", 0).batch(1)["label"].tolist()
    halves = [make_source(data_layer(image_db, batch=2), "TEST", 0, Shard(rank, 2)).batch(1)["label"].tolist()
              for rank in (0, 1)]
    assert halves[0] + halves[1] == whole == [4, 0, 1, 2]


def test_mean_file_is_subtracted_at_the_crop_position(image_db, tmp_path):
    mean = caffe_pb2.BlobProto(shape=caffe_pb2.BlobShape(dim=[1, 3, 6, 5]))
    mean.data.extend(np.linspace(0, 1, 90, dtype=np.float32))
    (tmp_path / "mean.binaryproto").write_bytes(mean.SerializeToString())
    layer = data_layer(image_db, crop_size=4, mean_file=str(tmp_path / "mean.binaryproto"))
    got = make_source(layer, "TEST", 0).batch(0)["data"][0]
    full_mean = np.linspace(0, 1, 90, dtype=np.float32).reshape(3, 6, 5)
    np.testing.assert_allclose(got, IMAGE[:, 1:5, 0:4] - full_mean[:, 1:5, 0:4])


def test_encoded_and_raw_datums_decode_to_the_same_pixels():
    hwc = IMAGE.transpose(1, 2, 0).copy()
    encoded = caffe_pb2.Datum(data=cv2.imencode(".png", hwc)[1].tobytes(), encoded=True)
    raw = caffe_pb2.Datum(channels=3, height=6, width=5, data=IMAGE.tobytes())
    np.testing.assert_array_equal(datum_to_array(encoded), datum_to_array(raw))


def test_convert_imageset_keys_resize_and_refusal(tmp_path, capsys):
    for name, value in (("a.png", 10), ("b.png", 200)):
        cv2.imwrite(str(tmp_path / name), np.full((7, 9, 3), value, np.uint8))
    (tmp_path / "list.txt").write_text("a.png 3\nb.png 5\nmissing.png 1\n")
    args = [str(tmp_path) + "/", str(tmp_path / "list.txt"), str(tmp_path / "db"),
            "--resize_height", "4", "--resize_width", "6", "--encoded"]
    assert main(["convert-imageset", *args]) == 0
    assert "Processed 2 files" in capsys.readouterr().out
    with lmdb.open(str(tmp_path / "db"), readonly=True) as env, env.begin() as txn:
        records = {key.decode(): caffe_pb2.Datum.FromString(value) for key, value in txn.cursor()}
    assert sorted(records) == ["00000000_a.png", "00000001_b.png"]
    image = datum_to_array(records["00000001_b.png"])
    assert image.shape == (3, 4, 6) and (image == 200).all() and records["00000001_b.png"].label == 5
    assert main(["convert-imageset", *args]) == 1
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "db", "list.txt"]


def test_image_data_resizes_and_shuffles_each_epoch(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((5, 5), i * 10, np.uint8))
    (tmp_path / "list.txt").write_text("".join(f"{i}.png {i}\n" for i in range(4)))
    layer = Layer("images", "ImageData", (), ("data", "label"), {"image_data_param": {
        "source": str(tmp_path / "list.txt"), "root_folder": str(tmp_path) + "/", "batch_size": 4,
        "shuffle": True, "is_color": False, "new_height": 3, "new_width": 2}})
    source = make_source(layer, "TRAIN", 0)
    epochs = [source.batch(n) for n in range(3)]
    assert epochs[0]["data"].shape == (4, 1, 3, 2)
    for batch in epochs:
        assert sorted(batch["label"].tolist()) == [0, 1, 2, 3]
        assert (batch["data"][:, 0, 0, 0] == batch["label"] * 10).all()
    assert len({tuple(batch["label"].tolist()) for batch in epochs}) > 1


def test_hdf5_data_reads_the_listed_files_in_order(tmp_path):
    h5py = pytest.importorskip("h5py")
    for index in range(2):
        with h5py.File(tmp_path / f"part{index}.h5", "w") as handle:
            handle["data"] = np.full((3, 2), index, np.float32) + np.arange(3)[:, None] * 10
            handle["label"] = np.arange(3, dtype=np.float32) + index * 3
    (tmp_path / "files.txt").write_text(f"{tmp_path / 'part0.h5'}\n{tmp_path / 'part1.h5'}\n")
    layer = Layer("h5", "HDF5Data", (), ("data", "label"),
                  {"hdf5_data_param": {"source": str(tmp_path / "files.txt"), "batch_size": 4}})
    batch = make_source(layer, "TRAIN", 0).batch(1)
    assert batch["label"].tolist() == [4, 5, 0, 1]


def test_hdf5_shuffle_reorders_files_then_rows_within_each(tmp_path):
    h5py = pytest.importorskip("h5py")
    for index in range(3):
        with h5py.File(tmp_path / f"part{index}.h5", "w") as handle:
            handle["data"] = np.zeros((4, 1), np.float32)
            handle["label"] = np.arange(4, dtype=np.float32) + index * 10
    (tmp_path / "files.txt").write_text("".join(f"{tmp_path / f'part{i}.h5'}\n" for i in range(3)))
    layer = Layer("h5", "HDF5Data", (), ("data", "label"),
                  {"hdf5_data_param": {"source": str(tmp_path / "files.txt"), "batch_size": 4, "shuffle": True}})
    source = make_source(layer, "TRAIN", 0)
    orders = []
    for epoch in range(4):
        labels = [int(v) for n in range(3) for v in source.batch(3 * epoch + n)["label"]]
        files = [label // 10 for label in labels]
        # each file's rows stay together, in a shuffled order
        assert files == [f for f in dict.fromkeys(files) for _ in range(4)]
        assert sorted(labels) == sorted(range(4)) + sorted(range(10, 14)) + sorted(range(20, 24))
        orders.append(tuple(labels))
    assert len(set(orders)) > 1


def test_arrays_fed_from_python(tmp_path):
    layer = data_layer(tmp_path / "unused", batch=3)
    arrays = {"data": {"data": np.arange(12, dtype=np.float32).reshape(6, 2), "label": np.arange(6)}}
    batch = make_source(layer, "TRAIN", 0, arrays=arrays).batch(1)
    assert batch["label"].tolist() == [3, 4, 5] and batch["data"][0].tolist() == [6, 7]


def test_unreadable_data_layer_type_is_refused_with_the_readable_ones():
    from caffeconf.errors import CaffeconfError, render_text

    layer = Layer("win", "WindowData", (), ("data", "label"), {"window_data_param": {"source": "w.txt"}})
    with pytest.raises(CaffeconfError) as raised:
        make_source(layer, "TRAIN", 0)
    assert render_text(raised.value.diagnostics) == (
        "error: layer 'win' (WindowData): caffeconf cannot read data of this layer type\n"
        "  hint: use a Data (LMDB), ImageData, HDF5Data or DummyData layer\n")
