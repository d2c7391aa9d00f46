"""caffeconf: composable Caffe network definitions.

The pipeline is load -> check -> resolve -> emit; everything else (runner,
drawing, inspection, import, diff) consumes the flat net in `caffeconf.ir`.
"""

__version__ = "0.1.0"

from .api.net import Net, diff, load, validate  # noqa: E402  the public API

__all__ = ["Net", "diff", "load", "validate"]
