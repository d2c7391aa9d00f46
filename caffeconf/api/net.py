"""The public `load`/`validate`/`diff` and the `Net` they return, on top of `compile.load`'s
front door: a config or prototxt by path, a config or prototxt as text, or a NetParameter
message from any `caffe_pb2` (pycaffe's NetSpec included)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

from ..caffe.dialect import Dialect, current, load_dialect, use
from ..compile.compiler import Overrides
from ..compile.library import located
from ..compile.source import is_config
from ..compile.load import LoadOptions, StateChoice, for_state, load as load_file, one_command
from ..errors import CaffeconfError, Diagnostic
from ..ir import Net as FlatNet
from .caller import caller_span


@dataclass(frozen=True, eq=False)
class Net:
    """A compiled net: the flat IR (`flat`), the warnings loading it gave, and the caffe.proto
    (`dialect`) its fields belong to. Every caffeconf tool takes one.

    >>> net = load("configs/googlenet.yaml", phase="TEST")
    >>> net.name, len(net.layers)
    ('GoogleNet', 165)
    >>> net.to_prototxt().splitlines()[0]
    'name: "GoogleNet"'
    """

    flat: FlatNet
    diagnostics: tuple[Diagnostic, ...] = ()
    dialect: Dialect | None = None  # None: BVLC's caffe.proto

    @property
    def name(self) -> str:
        return self.flat.name

    @property
    def layers(self):
        """The flat layers, in net order (`caffeconf.ir.Layer`: name, type, bottoms, tops, fields)."""
        return self.flat.layers

    def __repr__(self) -> str:
        return f"<caffeconf.Net {self.name!r}: {len(self.layers)} layers>"

    def __eq__(self, other: object) -> bool:
        """Equal nets write the same NetParameter (where they were written does not count)."""
        return isinstance(other, Net) and self.to_proto().SerializeToString(deterministic=True) == \
            other.to_proto().SerializeToString(deterministic=True)

    __hash__ = None  # type: ignore[assignment]  # equality is by content, which is not frozen deep down

    def to_proto(self):
        """The net as a caffe NetParameter message (of caffeconf's own `caffe_pb2`, or the dialect's)."""
        from ..caffe import serde
        with use(self.dialect):
            return serde.net_to_proto(self.flat)

    def to_prototxt(self) -> str:
        """The net as prototxt text, byte for byte what `caffeconf compile` writes."""
        from ..caffe import prototxt
        return prototxt.net_to_text(self.to_proto())

    def save(self, path: str | os.PathLike, *, binary: bool = False) -> None:
        """Write the net to `path` atomically: prototxt text, or the binary NetParameter with `binary=True`."""
        from ..caffe import prototxt
        prototxt.write_net(self.to_proto(), path, binary=binary)


Source = Union[str, os.PathLike, Net, Any]  # Any: a NetParameter message
# A prototxt written as text has `layer {` (or V1's `layers {`) at the start of a line; a YAML config cannot.
_PROTOTXT_TEXT = re.compile(r"^\s*layers?\s*\{", re.MULTILINE)


def load(source: Source, *, stage: str | Sequence[str] | None = None, phase: str | None = None,
         level: int | None = None, proto: str | os.PathLike | None = None,
         params: Mapping[str, Any] | None = None) -> Net:
    """The net `source` is: a path to a config (.yaml/.toml) or a Caffe net (prototxt or binary,
    V0/V1/V2), text holding a YAML config or a prototxt (any string with a newline), a
    NetParameter message from any `caffe_pb2`, or a net built with `caffeconf.netspec`. Raises
    one `CaffeconfError` carrying every diagnostic.

    `stage`, `phase` and `level` choose the NetState (a config's variants are stages) and prune
    the net as Caffe's FilterNet does; `proto` is a fork's caffe.proto; `params` gives values for
    a config's document `params`, checked like the file's own.

    >>> load("configs/googlenet.yaml", stage="deploy").layers[-1].type
    'Softmax'
    >>> text = "caffeconf: 1\\nname: tiny\\nlayers:\\n  - {name: data, type: Input, input_param: {shape: {dim: [1, 3]}}}\\n"
    >>> load(text).name
    'tiny'
    >>> load("configs/no-such.yaml")
    Traceback (most recent call last):
    ...
    caffeconf.errors.CaffeconfError: error: cannot read configs/no-such.yaml: No such file or directory
    """
    stages = [stage] if isinstance(stage, str) else stage
    choice = StateChoice.of(phase, stages, level) if (phase or stages or level is not None) else None
    if hasattr(source, "to_net"):  # a net built with caffeconf.netspec
        source = source.to_net()
    if isinstance(source, Net) and proto is None and params is None:
        return source if choice is None else Net(for_state(source.flat, choice)[0], source.diagnostics,
                                                 source.dialect)
    name, options = _named_source(source, params)
    with one_command(load_dialect(proto) if proto is not None else None):
        loaded = load_file(name, choice, options)
        dialect = current()
    if not loaded.ok:
        raise CaffeconfError(loaded.diagnostics)
    return Net(loaded.net, loaded.diagnostics, None if dialect.is_bvlc else dialect)


def _named_source(source: Source, params: Mapping[str, Any] | None) -> tuple[str, LoadOptions]:
    """The name `compile.load` knows `source` by, and what it is given besides."""
    values = _params(params)
    if isinstance(source, Net):
        source = source.to_proto()
    if isinstance(source, str) and "\n" in source and not _PROTOTXT_TEXT.search(source):
        return "<string>.yaml", LoadOptions(verify=True, overrides=Overrides(values, source))
    if isinstance(source, (str, os.PathLike)) and "\n" not in str(source) and is_config(source):
        return os.fspath(source), LoadOptions(verify=True, overrides=Overrides(values))
    if values is not None:
        raise CaffeconfError.at(caller_span(), "`params` gives values for a config's `params:`, "
                                               "and this net is not a config")
    if hasattr(source, "SerializeToString"):  # a NetParameter from any caffe_pb2
        return "<NetParameter>", LoadOptions(verify=True, content=source.SerializeToString())
    if isinstance(source, str) and "\n" in source:
        return "<string>.prototxt", LoadOptions(verify=True, content=source.encode("utf-8"))
    if not isinstance(source, (str, os.PathLike)):
        raise CaffeconfError.at(caller_span(), f"cannot load a {type(source).__name__}: give a path, "
                                               "config or prototxt text, or a NetParameter")
    return os.fspath(source), LoadOptions(verify=True)


def _params(params: Mapping[str, Any] | None):
    """`params` as the located map a use's `with:` is, at the Python line that gave it."""
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise CaffeconfError.at(caller_span(), f"`params` must map parameter names to values, "
                                               f"got {type(params).__name__}")
    return located(dict(params), caller_span())


def validate(source: Source, **state) -> list[Diagnostic]:
    """Every diagnostic for `source` (what `caffeconf validate` reports, shapes included): an empty
    list when it is clean. Takes `load`'s keyword arguments.

    >>> validate("configs/googlenet.yaml")
    []
    >>> text = "caffeconf: 1\\nlayers:\\n  - {name: data, type: Input, input_param: {shap: {dim: [1]}}}\\n"
    >>> [(str(d.span), d.message, d.hint) for d in validate(text)]
    [('<string>.yaml:3:45', "unknown field 'shap' in input_param (InputParameter has no such field)", "did you mean 'shape'?")]
    """
    from ..compile.verify import shape_diagnostics
    try:
        net = load(source, **state)
    except CaffeconfError as error:
        return list(error.diagnostics)
    return list(net.diagnostics + shape_diagnostics(net.flat))


def diff(a: Source, b: Source) -> list:
    """What differs between two nets (anything `load` takes), as `caffeconf diff` reports it: a list
    of differences (each has `.describe()`), empty when they are the same net.

    >>> diff("configs/googlenet.yaml", "configs/googlenet.yaml")
    []
    >>> diff("configs/googlenet.yaml", load("configs/googlenet.yaml", stage="deploy"))[0].describe()
    'changed: layer data#1: type: "Data" -> "Input"'

    """
    from ..inspect.diff import diff_nets
    return diff_nets(load(a).flat, load(b).flat)
