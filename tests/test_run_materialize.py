"""CaffeNet.materialize: the blobs a first pass would create, without the pass."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402

GAUSSIAN = {"type": "gaussian", "std": 0.5}


def net():
    def ip(name, bottom, share=None):
        fields = {"inner_product_param": {"num_output": 3, "weight_filler": GAUSSIAN, "bias_filler": GAUSSIAN}}
        if share:
            fields["param"] = [{"name": share}]
        return Layer(name, "InnerProduct", (bottom,), (name,), fields)
    return Net("t", (Layer("data", "Input", (), ("data",), {"input_param": {"shape": [{"dim": [2, 4, 5, 5]}]}}),
                     Layer("conv", "Convolution", ("data",), ("conv",),
                           {"convolution_param": {"num_output": 6, "kernel_size": [3], "weight_filler": GAUSSIAN}}),
                     Layer("bn", "BatchNorm", ("conv",), ("conv",), {}),
                     Layer("pool", "Pooling", ("conv",), ("pool",), {"pooling_param": {"kernel_size": 2, "stride": 2}}),
                     ip("fc", "pool"), Layer("relu", "ReLU", ("fc",), ("fc",), {}), ip("fc2", "fc"),
                     Layer("split", "Split", ("fc2",), ("a", "b"), {}),
                     ip("head_a", "a", share="shared"), ip("head_b", "b", share="shared")))


def test_materialize_creates_the_blobs_a_first_pass_would():
    x = {"data": torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))}
    by_pass, materialized = CaffeNet(net(), seed=5), CaffeNet(net(), seed=5)
    materialized.materialize({"data": (2, 4, 5, 5)})
    assert all(step.ready for step in materialized.steps[1:])
    before = materialized.blob_arrays()
    with torch.no_grad():
        expected = by_pass(x)
        outputs = materialized(x)
    reference = by_pass.blob_arrays()
    assert before.keys() == reference.keys()
    for name in reference:
        for mine, theirs in zip(before[name], reference[name]):
            np.testing.assert_array_equal(mine, theirs)
    assert materialized.layer_blobs[8][0] is materialized.layer_blobs[9][0]  # shared by name
    for name in expected:
        torch.testing.assert_close(outputs[name], expected[name], rtol=0, atol=0)
