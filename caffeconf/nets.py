"""Load any net the user names into the flat IR: a caffeconf config (YAML/TOML)
or a Caffe prototxt / binary NetParameter (any version, upgraded).

This is the entry point that consumers (run, draw, inspect, diff) share.
"""

from __future__ import annotations

from pathlib import Path

from .ir import Net

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def is_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CONFIG_SUFFIXES


def load_net(path: str | Path, variants: frozenset[str] = frozenset()) -> Net:
    """The flat net at `path`, with every layer and rule still present (no filtering).

    For a config, `variants` selects compile-time variants (stages it declares under `variants:`).
    """
    if is_config(path):
        from .compiler import compile_file

        return compile_file(path, variants=variants)
    from . import prototxt, serde, upgrade

    return serde.net_from_proto(upgrade.upgrade_net(prototxt.read_net(path), source=str(path)), source=str(path))
