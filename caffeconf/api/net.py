"""The public `load`/`validate` and the `Net` they return, on top of `compile.load`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..compile.load import LoadOptions, StateChoice, load as load_file
from ..errors import CaffeconfError, Diagnostic
from ..ir import Net as FlatNet


@dataclass(frozen=True)
class Net:
    """A compiled net: the flat IR plus the diagnostics loading it gave.

    >>> net = load("configs/googlenet.yaml", phase="TEST")
    >>> net.to_prototxt().startswith('name: "GoogleNet"')
    True
    """

    flat: FlatNet
    diagnostics: tuple[Diagnostic, ...] = ()

    def to_proto(self):
        """The net as a caffe NetParameter message."""
        from ..caffe import serde
        return serde.net_to_proto(self.flat)

    def to_prototxt(self) -> str:
        """The net as prototxt text, as `caffeconf compile` writes it."""
        from ..caffe import prototxt
        return prototxt.net_to_text(self.to_proto())

    def save(self, path: str | Path, *, binary: bool = False) -> None:
        """Write the net to `path` (text, or binary with `binary=True`)."""
        from ..caffe import prototxt
        prototxt.write_net(self.to_proto(), str(path), binary=binary)


def load(path: str | Path, *, phase: str | None = None, stage: Sequence[str] | None = None,
         level: int | None = None) -> Net:
    """Load a config or prototxt; raises one CaffeconfError carrying every diagnostic.

    >>> load("configs/no-such.yaml")
    Traceback (most recent call last):
    ...
    caffeconf.errors.CaffeconfError: ...
    """
    state = StateChoice.of(phase, stage, level) if (phase or stage or level is not None) else None
    loaded = load_file(path, state, LoadOptions(verify=True))
    if not loaded.ok:
        raise CaffeconfError(loaded.diagnostics)
    return Net(loaded.net, loaded.diagnostics)


def validate(path: str | Path, **state) -> list[Diagnostic]:
    """Every diagnostic for the net at `path`: an empty list when it is clean.

    >>> validate("configs/googlenet.yaml")
    []
    """
    try:
        return list(load(path, **state).diagnostics)
    except CaffeconfError as error:
        return list(error.diagnostics)


def diff(a: "Net | str | Path", b: "Net | str | Path") -> list:
    """What differs between two nets (configs, prototxts or `Net`s), as `caffeconf diff` reports it.

    >>> diff("configs/googlenet.yaml", "configs/googlenet.yaml")
    []
    """
    from ..inspect.diff import diff_nets
    return diff_nets(_flat(a), _flat(b))


def _flat(net: "Net | str | Path") -> FlatNet:
    return net.flat if isinstance(net, Net) else load(net).flat
