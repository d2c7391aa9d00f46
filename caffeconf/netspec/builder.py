"""Python calls -> a flat `Net`, through the compiler's own resolver.

`Convolution(bottom, num_output=64)` checks its Caffe fields at once, as a YAML layer's are
checked (the same checker, the same "did you mean"), located at the Python line that made it;
`n.conv1 = ...` names it and adds it to the net. A config's module called from Python
(`modules.py`) expands exactly as a `use:` in YAML would. Each step either succeeds whole or is
undone and raises one CaffeconfError, so a net is never left half-built.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from google.protobuf.descriptor import FieldDescriptor

from ..api.caller import caller_span
from ..api.net import Net as CompiledNet
from ..caffe.facts import unknown_type_problem
from ..compile.entries import Scope
from ..compile.fields import layer_message, net_message, param_message_of
from ..compile.library import Library, Unit, located, unit_key
from ..compile.resolve import LAYER_SYNTAX_KEYS, Resolver
from ..compile.syntax import Document
from ..compile.values import Evaluator
from ..compile.verify import check_sharing, verify_net
from ..errors import CaffeconfError, Diagnostic, DiagnosticList, Span, did_you_mean
from ..ir import Net as FlatNet
from ..limits import DEFAULT_LIMITS


class Top:
    """A blob: one output of a layer call (named when it is assigned to a net) or of a module use."""

    def __init__(self, layer: "Layer | None", index: int = 0, name: str | None = None, net: "Builder | None" = None):
        self.layer, self.index = layer, index
        self.name = name  # the blob's name in the net, once its layer is in one
        self.assigned: str | None = None  # the attribute or key it was assigned to (its name-to-be)
        self.net = net

    def __repr__(self) -> str:
        if self.name is not None:
            return f"<Top {self.name!r}>"
        return f"<Top {self.index} of an unnamed {self.layer.type} layer>"


class Layer:
    """A checked layer call, not yet in a net: its type, bottoms and Caffe fields, and where it was written."""

    def __init__(self, layer_type: str, bottoms: tuple, fields: dict[str, Any], span: Span, ntop: int,
                 in_place: bool, name: str | None):
        self.type, self.bottoms, self.fields, self.span = layer_type, bottoms, fields, span
        self.in_place, self.name = in_place, name
        self.tops = [Top(self, index) for index in range(1 if in_place else ntop)]
        self.net: Builder | None = None  # set once added

    def __repr__(self) -> str:
        return f"<{self.type} layer{' ' + repr(self.name) if self.name else ''}>"


def layer_function(layer_type: str) -> Callable[..., Any]:
    """The builder function for one Caffe layer type, e.g. `Convolution(bottom, num_output=64, kernel_size=7)`."""
    def make(*bottoms, ntop: int = 1, in_place: bool = False, name: str | None = None, **fields):
        span = caller_span()
        data = caffe_fields(layer_type, fields)
        check_layer_call(layer_type, data, bottoms, ntop, span)
        layer = Layer(layer_type, bottoms, data, span, ntop, in_place, name)
        return layer if not layer.tops else layer.tops[0] if len(layer.tops) == 1 else tuple(layer.tops)

    make.__name__ = make.__qualname__ = layer_type
    make.__doc__ = (f"A Caffe {layer_type} layer on `bottoms`: keyword arguments are LayerParameter fields "
                    f"({param_message_of(layer_type) or 'no *_param of its own'} fields go straight in); "
                    "`ntop` tops, or `in_place=True`; `name` names the layer (else its first top's name).")
    return make


def caffe_fields(layer_type: str, given: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments as LayerParameter data, as pycaffe's NetSpec places them: the layer's own
    fields stay, its *_param message's fields go inside it; an unknown name goes where the closest
    known one is, so that its error says "did you mean" about the right message."""
    own = param_message_of(layer_type)
    on_layer = layer_message().fields_by_name
    inner = on_layer[own].message_type.fields_by_name if own else {}
    data: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in given.items():
        if key in inner and not key.endswith("_param"):
            nested[key] = _blob_shapes(inner[key], value)
        elif key in on_layer or own is None or _closer_on_layer(key, on_layer, inner):
            data[key] = value
        else:
            nested[key] = value
    if nested:
        data[own] = {**nested, **data.get(own, {})} if isinstance(data.get(own, {}), dict) else data[own]
    return data


def _closer_on_layer(key: str, on_layer, inner) -> bool:
    return did_you_mean(key, on_layer) is not None and did_you_mean(key, inner) is None


def _blob_shapes(field: FieldDescriptor, value: Any) -> Any:
    """`shape=[1, 3, 224, 224]` for a BlobShape field, as `{dim: [...]}` (a list of them for several)."""
    if field.message_type is None or field.message_type.name != "BlobShape" or not isinstance(value, (list, tuple)):
        return value
    if all(isinstance(item, int) for item in value):
        return {"dim": list(value)}
    return [{"dim": list(item)} if isinstance(item, (list, tuple)) else item for item in value]


_SYNTAX_HINTS = {
    "bottom": "pass the bottoms first, as positional arguments",
    "top": "assign the layer's output to the net (n.name = ...), and give ntop= for several tops",
    "type": "the function is the type (cs.Convolution)",
    "repeat": "repeat it with a Python loop", "when": "choose it with a Python if",
}


def check_layer_call(layer_type: str, data: dict[str, Any], bottoms: tuple, ntop: int, span: Span) -> None:
    """What is wrong with a layer call, raised at once at the caller's line (warnings wait for the net)."""
    diags = DiagnosticList()
    problem = unknown_type_problem(layer_type)
    if problem and problem[0] == "error":
        diags.error(span, problem[1], hint=problem[2])
    if isinstance(ntop, bool) or not isinstance(ntop, int) or ntop < 0:
        diags.error(span, f"`ntop` must be a number of tops (0 or more), got {ntop!r}")
    for key in sorted(LAYER_SYNTAX_KEYS & set(data)):
        diags.error(span, f"`{key}=` is not how a layer call says it: {_SYNTAX_HINTS.get(key, 'leave it out')}")
    for position, bottom in enumerate(bottoms):
        if not isinstance(bottom, (Top, str)):
            diags.error(span, f"bottom {position} of this {layer_type} layer must be a blob (a Top or a blob name), "
                              f"got {type(bottom).__name__}")
    entry = located({"name": "_", "type": layer_type, **data}, span)
    Evaluator(diags).fields({}).message(entry, layer_message(), "", skip=LAYER_SYNTAX_KEYS, layer_type=layer_type)
    diags.raise_if_errors()


class Builder:
    """One net under construction: the resolver and top-level scope every step expands into."""

    def __init__(self, name: str, fields: dict[str, Any], span: Span):
        self.name = name
        unit = unit_key(span.path)
        self.library = Library({unit: Unit(span.path, {})})
        document = Document(span.path, span, None, "/", {}, {}, None, (), {})
        self.diags = DiagnosticList()
        self.resolver = Resolver(document, self.library, self.diags, DEFAULT_LIMITS)
        self.scope = Scope(values={}, prefix="", separator="/", unit=unit)
        self.blobs: dict[str, Top] = {}
        self.waiting: list[Layer] = []  # assigned in part (a multi-top layer with tops still unnamed)
        self.warnings: list[Diagnostic] = []
        self.autonames: Counter = Counter()
        self.namespaces: dict[int, str] = {}
        refused = sorted({"layer", "layers"} & set(fields))
        if refused:
            raise CaffeconfError.at(span, f"`{refused[0]}=` is not a field here: assign the net's layers to it "
                                          "(n.name = cs.Type(...))")
        self.fields = self.step(lambda: self.resolver.evaluator.fields({}).message(
            located(fields, span), net_message(), ""))

    def step(self, run: Callable[[], Any]) -> Any:
        """Run one expansion; on any error, undo it and raise every diagnostic it gave."""
        layers, start = len(self.resolver.layers), len(self.diags.items)
        saved = dict(self.scope.blobs), dict(self.scope.layer_tops), set(self.scope.poisoned)
        result = None
        try:
            result = run()
        except CaffeconfError as error:
            self.diags.extend(error)
        found = self.diags.take_since(start)
        if any(d.severity == "error" for d in found):
            del self.resolver.layers[layers:]
            self.scope.blobs, self.scope.layer_tops, self.scope.poisoned = saved
            raise CaffeconfError(sorted(found, key=lambda d: d.severity != "error"))
        self.warnings += found
        return result

    # -- naming and adding layers -----------------------------------------------------------

    def assign(self, name: str, value: Any, span: Span) -> None:
        """`n.<name> = value`: name a layer's top (or an in-place layer) and add the layer once named."""
        if isinstance(value, Layer) and not value.tops:  # a layer with no tops: the name is the layer's
            value.name = value.name or name
            return self.add(value)
        if not isinstance(value, Top):
            raise CaffeconfError.at(span, f"`{name}` can only name a layer's output (a Top), got {type(value).__name__}")
        if value.net not in (None, self):
            raise CaffeconfError.at(span, f"`{name}`: {value!r} belongs to another net")
        self.blobs[name] = value
        layer = value.layer
        if layer is None or layer.net is not None:
            return  # a blob already in the net: one more name for it
        value.net = self
        if layer.in_place:
            layer.name = layer.name or name
        else:
            value.assigned = name
        if all(top.assigned for top in layer.tops) or layer.in_place:
            self.add(layer)
        elif layer not in self.waiting:
            self.waiting.append(layer)

    def add(self, layer: Layer) -> None:
        """Expand `layer` into the net (its unnamed producers first, automatically named)."""
        if layer.net is not None:
            return
        bottoms = [self.bottom_name(bottom, layer.span) for bottom in layer.bottoms]
        tops = [top.assigned or self.autoname(layer.type) for top in layer.tops]
        name = layer.name or (tops[0] if tops else self.autoname(layer.type))
        data = {"name": name, "type": layer.type, **({"bottom": bottoms} if bottoms else {}), **layer.fields}
        data.update({"in_place": True} if layer.in_place else {"top": tops})
        entry = located(data, layer.span)
        flat_tops = self.step(lambda: self.resolver.expand_layer(entry, self.scope, None))
        layer.net = self
        if layer in self.waiting:
            self.waiting.remove(layer)
        for top, flat in zip(layer.tops, flat_tops):
            top.name, top.net = flat, self

    def autoname(self, layer_type: str) -> str:
        """pycaffe's automatic names for what was never assigned: Convolution1, Convolution2, ..."""
        self.autonames[layer_type] += 1
        return f"{layer_type}{self.autonames[layer_type]}"

    def bottom_name(self, bottom: Top | str, span: Span) -> str:
        if isinstance(bottom, str):
            return bottom  # the resolver checks it names a blob, with "did you mean"
        if bottom.net not in (None, self):
            raise CaffeconfError.at(span, f"{bottom!r} is a blob of another net")
        if bottom.name is None:
            self.add(bottom.layer)
        return bottom.name

    def blob(self, name: str, span: Span) -> Top:
        """`n.<name>`: the net's blob of that name, else what was assigned to the name (an in-place
        layer's name stands for the blob it rewrote, as in pycaffe)."""
        if name in self.scope.blobs:
            return Top(None, 0, self.scope.blobs[name], self)
        if name in self.blobs:
            return self.blobs[name]
        raise CaffeconfError.at(span, f"the net has no blob '{name}'",
                                hint=did_you_mean(name, [*self.blobs, *self.scope.blobs]))

    # -- the result -------------------------------------------------------------------------

    def finish(self) -> CompiledNet:
        """The net as `caffeconf.load` gives a config's: checked as a whole as the compiler checks one."""
        for layer in list(self.waiting):
            self.add(layer)
        net = FlatNet(self.name, tuple(self.resolver.layers), self.fields)
        diags = DiagnosticList()
        verify_net(net, diags)
        check_sharing(net, diags)
        diags.raise_if_errors()
        return CompiledNet(net, tuple(self.warnings) + tuple(diags.sorted()))


class Net:
    """A net built from Python, as pycaffe's NetSpec: `n.conv1 = Convolution(n.data, ...)` names
    the layer and its top `conv1` (`n["conv1/7x7"] = ...` for names that are not identifiers);
    `n.to_net()` is the `caffeconf.Net` every tool takes. Keyword arguments are NetParameter
    fields (`force_backward=True`)."""

    def __init__(self, name: str = "", **fields):
        span = caller_span()
        if not isinstance(name, str):
            raise CaffeconfError.at(span, f"a net's name must be a string, got {type(name).__name__}")
        object.__setattr__(self, "_builder", Builder(name, fields, span))

    def __setattr__(self, name: str, value: Any) -> None:
        self._builder.assign(name, value, caller_span())

    __setitem__ = __setattr__

    def __getattr__(self, name: str) -> Top:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._builder.blob(name, caller_span())

    def __getitem__(self, name: str) -> Top:
        return self._builder.blob(name, caller_span())

    def __repr__(self) -> str:
        return f"<caffeconf.netspec.Net {self._builder.name!r}: {len(self._builder.resolver.layers)} layers>"

    def to_net(self) -> CompiledNet:
        """The finished net: equal to what a config writing the same layers and uses compiles to."""
        return self._builder.finish()

    def to_proto(self):
        """The NetParameter message (as pycaffe's `NetSpec.to_proto()`)."""
        return self.to_net().to_proto()
