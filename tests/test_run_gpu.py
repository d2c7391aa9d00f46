"""The runner on CUDA (cuDNN): same numbers as the CPU in fp32, close in bf16/fp16. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.cli import main  # noqa: E402
from caffeconf.run.device import describe, select_device  # noqa: E402
from caffeconf.compile.load import StateChoice, load  # noqa: E402
from caffeconf.run.session import build_model, gather_inputs  # noqa: E402

from conftest import require_models  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def outputs_on(device_name, path, precision="fp32", channels_last=False):
    from caffeconf.run.device import autocast

    net = load(str(path), StateChoice("TEST")).net
    device = select_device(device_name)
    model = build_model(net, None, "TEST", 0, device)
    inputs = gather_inputs(net, model, (), (), {}, 0, 2)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    feed = {k: v.to(device) for k, v in inputs.items()}
    with torch.no_grad(), autocast(device, precision):
        model(feed)  # fillers run on the CPU generator: same weights on both devices
        return {k: v.float().cpu().numpy() for k, v in model(feed).items()}


@pytest.mark.parametrize("net", ["bvlc_googlenet/deploy.prototxt", "resnet/ResNet-50-deploy.prototxt"])
def test_cuda_fp32_matches_cpu(net):
    path = require_models() / net
    cpu, cuda = outputs_on("cpu", path), outputs_on("cuda", path, channels_last=True)
    for name, expected in cpu.items():
        scale = np.abs(expected).max()
        assert np.abs(cuda[name] - expected).max() <= 1e-4 * scale


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_runs(precision):
    path = require_models() / "bvlc_googlenet/deploy.prototxt"
    out = outputs_on("cuda", path, precision)
    assert np.isfinite(out["prob"]).all()
    np.testing.assert_allclose(out["prob"].sum(axis=1), 1.0, atol=1e-2)


def test_run_reports_cudnn(capsys):
    assert "cuDNN" in describe(select_device("cuda"))
    path = require_models() / "lenet/lenet.prototxt"
    assert main(["run", str(path), "--device", "cuda", "--batch", "2"]) == 0
    assert "cuDNN" in capsys.readouterr().out
