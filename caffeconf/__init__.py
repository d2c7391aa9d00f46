"""caffeconf: composable Caffe network definitions.

The pipeline is load -> check -> resolve -> emit; everything else (runner,
drawing, inspection, import, diff) consumes the flat net in `caffeconf.ir`.
The public Python API is what this module exports (docs/python.md); `Model` and
`train` need the run (and train) extras and import PyTorch only when first used.

>>> import caffeconf
>>> net = caffeconf.load("configs/googlenet.yaml", stage="deploy")
>>> caffeconf.shapes(net).blob("prob")
(10, 1000)
"""

__version__ = "0.1.0"

from .api.net import Net, diff, load, validate  # noqa: E402  the public API
from .api.tools import Measurement, import_net, measure, shapes  # noqa: E402
from .errors import CaffeconfError, Diagnostic, render_text  # noqa: E402
from . import train  # noqa: E402  the trainer's package, callable as `train(config_or_solver, ...)` (api/model.py)

__all__ = ["CaffeconfError", "Diagnostic", "Measurement", "Model", "Net", "diff", "import_net", "load",
           "measure", "render_text", "shapes", "train", "validate"]


def __getattr__(name: str):
    """`Model` on first use, so that importing caffeconf never imports PyTorch."""
    if name == "Model":
        from .api.model import Model
        return Model
    raise AttributeError(f"module 'caffeconf' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), "Model"})
