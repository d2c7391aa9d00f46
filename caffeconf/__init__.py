"""caffeconf: composable Caffe network definitions.

The pipeline is load -> check -> resolve -> emit; everything else (runner,
drawing, inspection, import, diff) consumes the flat net in `caffeconf.ir`.
"""

__version__ = "0.1.0"
