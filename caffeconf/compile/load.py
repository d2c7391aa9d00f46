"""Load any net the user names into the flat IR: a caffeconf config (YAML/TOML)
or a Caffe prototxt / binary NetParameter (any version, upgraded).

This is the entry point that consumers (run, draw, inspect, diff) share.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..ir import Layer, Net

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def is_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CONFIG_SUFFIXES


def legacy_inputs_as_layer(net: Net) -> Net:
    """Caffe's upgrade of net-level `input` + `input_shape`/`input_dim` into one Input layer named
    "input" at the front (without shapes the inputs are dropped, as Caffe does), so that consumers
    see a config the way they see the same net read from a prototxt."""
    names = list(net.fields.get("input", ()))
    if not names:
        return net
    fields = {k: v for k, v in net.fields.items() if k not in ("input", "input_shape", "input_dim")}
    shapes = [list(shape.get("dim", ())) for shape in net.fields.get("input_shape", ())]
    dims = list(net.fields.get("input_dim", ()))
    shapes = shapes or [dims[i:i + 4] for i in range(0, len(dims), 4)]
    if len(shapes) != len(names):
        return dataclasses.replace(net, fields=fields)
    layer = Layer("input", "Input", (), tuple(names), {"input_param": {"shape": [{"dim": s} for s in shapes]}})
    return dataclasses.replace(net, layers=(layer,) + tuple(net.layers), fields=fields)


def load_net(path: str | Path, variants: frozenset[str] = frozenset()) -> Net:
    """The flat net at `path`, with every layer and rule still present (no filtering).

    For a config, `variants` selects compile-time variants (stages it declares under `variants:`).
    """
    if is_config(path):
        from .compiler import compile_file

        return legacy_inputs_as_layer(compile_file(path, variants=variants))
    from ..caffe import prototxt, serde, upgrade

    return serde.net_from_proto(upgrade.upgrade_net(prototxt.read_net(path), source=str(path)), source=str(path))


def load_net_for_state(path: str | Path, phase: str | None = None, stages=None, level: int | None = None) -> Net:
    """The net as Caffe builds it for this state (FilterNet). For a config the stages also select
    the compile-time variants it declares (e.g. `--stage deploy`)."""
    from .rules import filter_net

    net = load_net(path, variants=frozenset(stages or ()))
    return filter_net(net, phase=phase, stages=stages, level=level)
