"""Two gloo processes on CPU equal one process at the same global batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lmdb")

from caffeconf.cli import main  # noqa: E402
from caffeconf.caffe.weights import read_caffemodel  # noqa: E402
from caffeconf.train.imageset import array_records, write_lmdb  # noqa: E402

NET = """name: "tiny"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{db}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param {{ num_output: 16 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param {{ num_output: 4 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""


def train(tmp_path: Path, name: str, batch: int, nproc: int) -> dict:
    net = tmp_path / f"{name}.prototxt"
    net.write_text(NET.format(db=tmp_path / "db", batch=batch))
    solver = tmp_path / f"{name}_solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.001\nlr_policy: "fixed"\n'
                      f'max_iter: 5\nsnapshot_prefix: "{tmp_path / name}"\nrandom_seed: 3\n')
    assert main(["train", "--solver", str(solver), "--nproc", str(nproc), "--device", "cpu", "-q"]) == 0
    return read_caffemodel(tmp_path / f"{name}_iter_5.caffemodel")


def test_two_processes_match_one_at_the_same_global_batch(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 1, 4, 4), dtype=np.uint8)
    write_lmdb(tmp_path / "db", array_records(images, rng.integers(0, 4, size=40)))
    one = train(tmp_path, "one", batch=8, nproc=1)
    two = train(tmp_path, "two", batch=4, nproc=2)
    assert set(one) == set(two) == {"ip1", "ip2"}
    for layer in one:
        for mine, theirs in zip(one[layer], two[layer]):
            np.testing.assert_allclose(mine.data, theirs.data, rtol=1e-5, atol=1e-6)
    half = train(tmp_path, "half", batch=4, nproc=1)  # what rank 0 alone would learn
    assert not np.allclose(half["ip2"][0].data, two["ip2"][0].data, atol=1e-4)
