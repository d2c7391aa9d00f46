"""Config file -> located tree: a bounded read, then the YAML or TOML parser by suffix."""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import SOURCES, CaffeconfError, Span
from ..files import read_bounded
from ..limits import DEFAULT_LIMITS, Limits
from .toml_tree import parse_toml
from .tree import Node
from .yaml_tree import parse_yaml

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def is_config(path: str | Path) -> bool:
    """A caffeconf config (by suffix), as opposed to a Caffe prototxt or binary net."""
    return Path(path).suffix.lower() in CONFIG_SUFFIXES


def read_source(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """The text of a source file, size-checked and registered for diagnostics."""
    name = str(path)
    try:
        data = read_bounded(path, limits.max_file_bytes)
        text = data.decode("utf-8").removeprefix("\ufeff")  # a BOM, as Windows editors write: tomllib refuses it
    except UnicodeDecodeError as error:
        SOURCES.register(name, data.decode("utf-8", errors="replace"))
        raise CaffeconfError.at(Span.after(name, data[:error.start].decode("utf-8")),
                                f"file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:  # one wording for every file a command cannot read, as caffe/prototxt.py's
        raise CaffeconfError.at(None, f"cannot read {name}: {error.strerror or error}") from None
    SOURCES.register(name, text)
    return text


def load_tree(path: str | Path, limits: Limits = DEFAULT_LIMITS, text: str | None = None) -> Node:
    """Read and parse a config file (YAML, or TOML by its suffix); with `text`, that is the
    file's content (a config given as a string to the Python API) and nothing is read."""
    if text is None:
        text = read_source(path, limits)
    else:
        SOURCES.register(str(path), text)
    return _parsed(text, str(path), limits)


# A tree is immutable and depends on nothing but its text, name and limits: the language server
# checks a config and its variants again after each edit, mostly from unchanged text. A few
# trees only: one of a 10,000-layer config holds about 18 MB.
@functools.lru_cache(maxsize=8)
def _parsed(text: str, path: str, limits: Limits) -> Node:
    return parse_toml(text, path, limits) if path.lower().endswith(".toml") else parse_yaml(text, path, limits)
