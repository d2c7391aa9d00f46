"""`caffeconf inspect`'s memory estimate against the peak the runner really allocates (within 15%)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from caffeconf.inspect.measure import estimate_memory, layer_costs  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.run.memory import measure_peak_bytes  # noqa: E402
from caffeconf.compile.load import StateChoice, load  # noqa: E402
from caffeconf.inspect.shapes import infer_shapes  # noqa: E402

from conftest import require_models  # noqa: E402

CASES = [  # (net under ../shared/models, batch, training?)
    ("bvlc_googlenet/deploy.prototxt", 4, False),
    ("bvlc_googlenet/deploy.prototxt", 2, True),
    ("resnet/ResNet-50-deploy.prototxt", 2, False),
    ("resnet/ResNet-50-deploy.prototxt", 2, True),
    ("squeezenet-v1.1/deploy.prototxt", 4, True),
]


@pytest.mark.parametrize("name,batch,train", CASES, ids=[f"{c[0].split('/')[0]}-b{c[1]}-{'train' if c[2] else 'infer'}"
                                                          for c in CASES])
def test_estimate_is_within_15_percent_of_the_measured_peak(name, batch, train):
    torch.manual_seed(0)
    net = load(str(require_models() / name), StateChoice("TEST")).net
    shapes = infer_shapes(net, batch=batch)
    estimate = estimate_memory(layer_costs(shapes))
    model = CaffeNet(net, phase="TEST", seed=0)
    inputs = {top: torch.randn(shape) for layer, shape_list in _sources(shapes) for top, shape in shape_list}
    measured = measure_peak_bytes(model, inputs, train=train)
    # The runner keeps no solver history; the estimate's training peak includes it.
    expected = estimate.training_peak - estimate.solver_history if train else estimate.inference_peak
    print(f"{name} b{batch} {'train' if train else 'infer'}: estimate {expected / 2**20:.1f} MiB, measured {measured / 2**20:.1f} MiB")
    assert abs(expected - measured) <= 0.15 * measured, (expected / 2**20, measured / 2**20)


def _sources(shapes):
    for entry in shapes.layers:
        if entry.layer.type == "Input":
            yield entry.layer, list(zip(entry.layer.tops, entry.tops))
