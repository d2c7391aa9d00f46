"""Nets built from Python, NetSpec-style -> the same flat `Net` a config gives.

Every Caffe layer type is a function here (`cs.Convolution`, `cs.ReLU`, ...); their fields are
checked as a config's are, and errors name the Python line that made them; a config's modules
are callable too (docs/python.md).

>>> from caffeconf import netspec as cs
>>> n = cs.Net("tiny")
>>> n.data = cs.Input(shape=[1, 3, 224, 224])
>>> n.conv1 = cs.Convolution(n.data, num_output=64, kernel_size=7, stride=2)
>>> lib = cs.modules("configs/googlenet.yaml")
>>> lib.inception(n.conv1, name="inception_3a", n1x1=64, n3x3_reduce=96, n3x3=128, n5x5_reduce=16, n5x5=32,
...               pool_proj=32)
<Top 'inception_3a/output'>
>>> net = n.to_net()  # a caffeconf.Net: save it, shape it, run it, diff it
>>> net.layers[2].name, len(net.layers)
('inception_3a/1x1', 16)
"""

from .builder import Layer, Net, Top, layer_function
from .modules import Module, Modules, modules

__all__ = ["Layer", "Module", "Modules", "Net", "Top", "modules"]


def __getattr__(name: str):
    """`cs.Convolution` and every other layer type: a function making that layer (its type is
    checked when it is called, with "did you mean" for a misspelt one)."""
    if name[:1].isupper():
        return layer_function(name)
    raise AttributeError(f"module 'caffeconf.netspec' has no attribute '{name}'")


def __dir__() -> list[str]:
    from ..caffe.facts import layer_types
    return sorted({*__all__, *layer_types()})
