"""Surface document -> flat Net: instantiate every module use with checked parameters and
inline it, qualifying layer and blob names as `<instance><separator><inner>`.

Problems go to a `DiagnosticList` so that one run reports all of them; an
instance with errors is still expanded as far as possible so later problems
show up too.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..caffe.facts import LAYER_TYPES, SOURCE_TYPES
from ..errors import CaffeconfError, DiagnosticList, Note, Span, did_you_mean
from .expr import compile_template
from .fields import LAYER, NET, FieldChecker, describe
from ..ir import Layer, Net, Origin, Use
from ..limits import Limits
from .tree import Map, Node, Scalar, Seq
from .rules import RuleSet, combine, settle_variants
from .check import type_hint
from .library import Library, unit_key
from .syntax import INSTANCE, Document, ModuleDecl, ParamDecl, Port, check_keys

LAYER_SYNTAX_KEYS = frozenset({"name", "type", "bottom", "top", "in_place", "repeat", "when"})
USE_KEYS = ("use", "name", "with", "bottom", "top", "include", "exclude", "repeat", "when", "share", "doc")
REPEAT_KEYS = ("count", "var")
SHARE_KEYS = ("key", "name")
RULE_FIELDS = {kind: LAYER.fields_by_name[kind] for kind in ("include", "exclude")}
# Learnable blobs with conventional names; other types' blobs are named by index.
BLOB_NAMES = {"Convolution": ("w", "b"), "Deconvolution": ("w", "b"), "InnerProduct": ("w", "b"),
              "Embed": ("w", "b")}


@dataclass
class Scope:
    """Names visible while expanding one module instance (or the top level)."""

    values: dict[str, Any]  # parameter values for `${...}`
    prefix: str  # qualifies layer and blob names ("" at top level)
    separator: str
    uses: tuple[Use, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> flat blob the caller chose
    blobs: dict[str, str] = field(default_factory=dict)  # scope name -> flat blob name
    chain: tuple[int, ...] = ()  # ids of the modules being expanded, outermost first
    unit: str = ""  # the file whose names are visible here (see library.Library)
    module: ModuleDecl | None = None
    unbound: frozenset[str] = frozenset()  # inputs the use bound to null
    layer_tops: dict[str, list[str]] = field(default_factory=dict)  # layer name -> its tops, for hints
    rules: tuple[RuleSet, ...] = ()  # include/exclude of the enclosing uses, outermost first
    share: "Share | None" = None  # the innermost `share:` around this scope

    def qualify(self, name: str) -> str:
        return f"{self.prefix}{self.separator}{name}" if self.prefix else str(name)

    def blob_for_top(self, name: str) -> str:
        """The flat blob a top named `name` writes, registering it in the scope."""
        flat = self.blobs.get(name) or self.outputs.get(name) or self.qualify(name)
        self.blobs[name] = flat
        return flat


@dataclass(frozen=True)
class Share:
    """Weights shared by every use with the same key.

    The k-th learnable layer of each such use shares the k-th layer's blobs of the first use;
    param names derive from the key and that first layer's path inside its use.
    """

    key: str
    prefix: str  # flat-name prefix of the sharing use, stripped to get the inner layer path
    template: Scalar | None  # custom `${key}`/`${layer}`/`${blob}` name, else "<key>/<layer>_<blob>"
    span: Span
    seen: list[int] = field(default_factory=lambda: [0])  # learnable layers met so far in this use


class BlobName(str):
    """A blob name that remembers where it was written, for errors about it."""

    span: Span

    def __new__(cls, name: str, span: Span) -> "BlobName":
        named = super().__new__(cls, name)
        named.span = span
        return named


class Resolver:
    def __init__(self, document: Document, library: Library, diags: DiagnosticList,
                 limits: Limits, variants: frozenset[str] = frozenset()):
        self.document, self.library, self.diags, self.limits = document, library, diags, limits
        self.selected = variants
        self.variants = frozenset(document.variants)
        # Each declared variant is a bool visible in every scope: `when: ${deploy}`.
        self.globals = {name: name in variants for name in document.variants}
        self.layers: list[Layer] = []
        self._templates: dict[int, Any] = {}
        self._scope_values: dict[str, Any] = {}
        self.fields = FieldChecker(self.evaluate, diags)
        self.share_layouts: dict[str, list[tuple[str, str, Span]]] = {}
        self.document_values: dict[str, Any] = {}

    # -- values -------------------------------------------------------------------------------

    def evaluate(self, node: Scalar) -> Any:
        """A scalar's value in the current scope (`${...}` filled in)."""
        if node.evaluated or not isinstance(node.value, str) or "${" not in node.value:
            return node.value
        key = id(node)
        if key not in self._templates:
            self._templates[key] = compile_template(node.value, _text_start(node))
        return self._templates[key].evaluate(self._scope_values)

    def value(self, node: Node) -> Any:
        """Plain data for any node, scalars evaluated; raises CaffeconfError."""
        if isinstance(node, Scalar):
            return self.evaluate(node)
        if isinstance(node, Seq):
            return [self.value(item) for item in node.items]
        return {key: self.value(child) for key, child in node.values.items()}

    def _try(self, node: Node) -> Any:
        try:
            return self.value(node)
        except CaffeconfError as error:
            self.diags.extend(error)
            return _FAILED

    def text(self, node: Node | None, what: str) -> str | None:
        if node is None:
            return None
        value = self._try(node)
        if value is _FAILED:
            return None
        if not isinstance(value, str) or not value:
            self.diags.error(node.span, f"{what} must be a non-empty string, got {describe(value)}")
            return None
        return value

    def names(self, node: Node, what: str, allow_null: bool = False) -> list[str] | None:
        """A blob-name list (a single name is a one-element list); each name remembers its span.

        With `allow_null`, a null item leaves a module input unbound.
        """
        written = node.items if isinstance(node, Seq) else (node,)
        names: list = []
        for item in written:
            value = self._try(item)
            if value is _FAILED:
                return None
            for name in (value if isinstance(value, list) and not isinstance(node, Seq) else [value]):
                if name is None and allow_null:
                    names.append(None)
                elif isinstance(name, str) and name:
                    names.append(BlobName(name, item.span))
                else:
                    self.diags.error(item.span, f"{what} must be blob names, got {describe(name)}")
                    return None
        return names

    # -- expansion ----------------------------------------------------------------------------

    def run(self) -> Net:
        doc = self.document
        scope = Scope(values={}, prefix="", separator=doc.separator, unit=unit_key(doc.path))
        scope.values = self.bind_params(doc.params, None, scope, doc.span, "the document",
                                        builtins=self.globals) or {}
        self._scope_values = scope.values
        name = self.text(doc.name, "`name`") if doc.name is not None else ""
        net_fields = self.fields.message(Map(doc.net_fields, {k: v.span for k, v in doc.net_fields.items()},
                                             doc.span), NET, "", skip=frozenset({"layer", "layers"}))
        self.document_values = scope.values
        for legacy_input in net_fields.get("input", ()):  # net-level `input` blobs, as in old prototxt
            scope.blobs[legacy_input] = legacy_input
        self.expand(doc.layers, scope, prev=None)
        return Net(name=name or "", layers=tuple(self.layers), fields=net_fields)

    def document_message(self, node: Node, descriptor, path: str, skip: frozenset[str]) -> dict[str, Any]:
        """Fields of another message (e.g. `solver:`), checked with the document's parameters in scope."""
        self._scope_values = self.document_values
        return self.fields.message(node, descriptor, path, skip=skip)

    def expand(self, entries: tuple[Map, ...], scope: Scope, prev: list[str] | None) -> None:
        for entry in entries:
            for each in self.iterations(entry, scope):
                self._scope_values = each.values
                if not self.wanted(entry):
                    continue
                expand = self.expand_use if "use" in entry else self.expand_layer
                tops = expand(entry, each, prev)
                prev = _FAILED if tops is None else tops  # the next entry can't chain on a failed one

    def iterations(self, entry: Map, scope: Scope) -> list[Scope]:
        """One scope per `repeat` index (the index bound to `var`, default `i`), or just `scope`."""
        node = entry.get("repeat")
        if node is None:
            return [scope]
        self._scope_values = scope.values
        count_node, var = node, "i"
        if isinstance(node, Map):
            check_keys(node, REPEAT_KEYS, "`repeat`", self.diags)
            count_node = node.get("count")
            if count_node is None:
                self.diags.error(node.span, "`repeat` needs a `count`")
                return []
            if node.get("var") is not None:
                var = self.text(node.get("var"), "`repeat.var`")
                if var is None:
                    return []
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
                    self.diags.error(node.get("var").span, f"`repeat.var` must be an identifier, got '{var}'")
                    return []
        count = self._try(count_node)
        if count is _FAILED:
            return []
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.diags.error(count_node.span, f"`repeat` count must be a non-negative integer, got {describe(count)}")
            return []
        if count > self.limits.max_repeat:
            self.diags.error(count_node.span, f"`repeat` count {count} is over the limit of {self.limits.max_repeat}",
                             hint="raise it with --max-repeat if this is intended")
            return []
        if var in scope.values:
            self.diags.error(count_node.span, f"the repeat index '{var}' would hide a parameter or an outer "
                             "repeat index of that name",
                             hint="choose another name with `repeat: {count: ..., var: NAME}`")
            return []
        return [dataclasses.replace(scope, values={**scope.values, var: index}) for index in range(count)]

    def wanted(self, entry: Map) -> bool:
        """`when:` decides whether this entry is emitted at all."""
        node = entry.get("when")
        if node is None:
            return True
        value = self._try(node)
        if value is _FAILED:
            return False
        if not isinstance(value, bool):
            self.diags.error(node.span, f"`when` must be true or false, got {describe(value)}")
            return False
        return value

    def expand_layer(self, entry: Map, scope: Scope, prev: list[str] | None) -> list[str] | None:
        name = self.text(entry.get("name"), "a layer name")
        if entry.get("name") is None:
            self.diags.error(entry.span, "a layer needs a `name`")
        layer_type = self.layer_type(entry, scope)
        bottoms = self.bottoms(entry, prev, layer_type in SOURCE_TYPES, what="layer")
        tops = self.tops(entry, name, bottoms)
        fields = self.fields.message(entry, LAYER, "", skip=LAYER_SYNTAX_KEYS, layer_type=layer_type)
        if name is None or layer_type is None or bottoms is None or tops is None:
            return None
        self._count_layer(entry.span)
        flat_bottoms = tuple(self.flat_blob(b, scope, entry) for b in bottoms)
        flat_tops = tuple(scope.blob_for_top(t) for t in tops)
        flat_name = scope.qualify(name)
        fields = self.settle_rules(fields, scope, entry)
        if fields is None:
            return tops  # never kept in the chosen variant
        fields = self.named_params(fields, layer_type, flat_name, len(bottoms), scope, entry)
        scope.layer_tops[name] = tops
        bottom_spans = tuple(getattr(b, "span", None) for b in bottoms)
        self.layers.append(Layer(flat_name, layer_type, flat_bottoms, flat_tops, fields,
                                 Origin(entry.span, scope.uses, bottom_spans)))
        return tops

    def settle_rules(self, fields: dict[str, Any], scope: Scope, entry: Map) -> dict[str, Any] | None:
        """The layer's own rules folded with its uses' rules and the compile-time variants."""
        own = tuple(RuleSet(kind, tuple(fields.pop(kind))) for kind in ("include", "exclude") if kind in fields)
        try:
            combined = combine(scope.rules + own)
        except ValueError as error:
            where = entry.keys.get("exclude") or entry.keys.get("include") or entry.span
            self.diags.error(where, f"cannot express this layer's rules for Caffe: {error}",
                             hint="split the module use, or state the rules more simply (fewer excluded stages)")
            return fields
        settled = settle_variants(combined, self.variants, self.selected)
        if settled is False:
            return None
        if settled is not None:
            fields[settled.kind] = list(settled.rules)
        return fields

    def named_params(self, fields: dict[str, Any], layer_type: str, flat_name: str, bottom_count: int,
                     scope: Scope, entry: Map) -> dict[str, Any]:
        """Explicit param names qualified per instance; under `share:`, every learnable blob named."""
        params = [dict(spec) for spec in fields.get("param", ())]
        for spec in params:
            if "name" in spec and scope.prefix and spec["name"] not in self.global_params(scope):
                spec["name"] = scope.qualify(spec["name"])
        count = learnable_blob_count(layer_type, fields, bottom_count)
        if scope.share is not None and count:
            layer = self.shared_layer(scope.share, layer_type, flat_name, entry)
            params += [{} for _ in range(count - len(params))]
            for index, spec in enumerate(params[:count]):
                spec.setdefault("name", self.shared_name(scope.share, layer_type, layer, index))
        if params:
            fields["param"] = params
        return fields

    def global_params(self, scope: Scope) -> frozenset[str]:
        return scope.module.global_params if scope.module else frozenset()

    def shared_layer(self, share: Share, layer_type: str, flat_name: str, entry: Map) -> str:
        """The inner path of the first use's layer in this position (checking the types agree)."""
        layout = self.share_layouts.setdefault(share.key, [])
        position = share.seen[0]
        share.seen[0] += 1
        if position == len(layout):
            inner = flat_name[len(share.prefix):] if flat_name.startswith(share.prefix) else flat_name
            layout.append((inner, layer_type, entry.span))
            return inner
        if position > len(layout) or layout[position][1] != layer_type:
            first = layout[position] if position < len(layout) else None
            self.diags.error(entry.span, f"uses sharing '{share.key}' differ: this is learnable layer {position + 1} "
                             f"({layer_type}) but the first use has "
                             + (f"a layer of type {first[1]} there" if first else f"only {len(layout)}"),
                             notes=[Note(f"first use sharing '{share.key}'", first[2] if first else share.span)])
        return layout[min(position, len(layout) - 1)][0]

    def shared_name(self, share: Share, layer_type: str, layer: str, index: int) -> str:
        names = BLOB_NAMES.get(layer_type, ())
        blob = names[index] if index < len(names) else str(index)
        if share.template is None:
            return f"{share.key}{self.document.separator}{layer}_{blob}"
        previous = self._scope_values
        self._scope_values = {"key": share.key, "layer": layer, "blob": blob}
        name = self.text(share.template, "`share.name`") or f"{share.key}{self.document.separator}{layer}_{blob}"
        self._scope_values = previous
        return name

    def layer_type(self, entry: Map, scope: Scope) -> str | None:
        node = entry.get("type")
        if node is None:
            self.diags.error(entry.span, "a layer needs a `type` (or `use:` for a module)")
            return None
        layer_type = self.text(node, "`type`")
        if layer_type is not None and layer_type not in LAYER_TYPES:
            self.diags.error(node.span, f"unknown layer type '{layer_type}'",
                             hint=did_you_mean(layer_type, LAYER_TYPES) or _module_hint(layer_type, self.library, scope))
            return None
        return layer_type

    def bottoms(self, entry: Map, prev: list[str] | None, is_source: bool, what: str) -> list[str] | None:
        """Written bottoms, else none for a data layer, else the previous entry's single top
        (`prev` is None at the start of a scope, _FAILED after an entry that could not be built)."""
        node = entry.get("bottom")
        if node is not None:
            return self.names(node, "`bottom`")
        if is_source:
            return []
        if prev is _FAILED:
            return None  # the previous entry's errors are reported; this one can't be checked
        if prev is None or len(prev) != 1:
            detail = "nothing comes before it" if prev is None else f"the previous one has {len(prev)} tops"
            self.diags.error(entry.span, f"this {what} names no `bottom` and {detail}",
                             hint="write `bottom:` explicitly")
            return None
        return [str(name) for name in prev]  # written nowhere here: no span of their own

    def tops(self, entry: Map, name: str | None, bottoms: list[str] | None) -> list[str] | None:
        in_place = entry.get("in_place")
        if in_place is not None:
            flag = self._try(in_place)
            if not isinstance(flag, bool):
                self.diags.error(in_place.span, "`in_place` must be true or false")
                return None
            if flag:
                if "top" in entry:
                    self.diags.error(entry.keys["top"], "a layer with `in_place: true` takes its tops from "
                                     "its bottoms; remove `top`")
                return None if bottoms is None else list(bottoms)
        if "top" in entry:
            return self.names(entry.get("top"), "`top`")
        return None if name is None else [name]

    def flat_blob(self, name: str, scope: Scope, entry: Map) -> str:
        flat = scope.blobs.get(name)
        if flat is None and name in scope.unbound:
            self.diags.error(getattr(name, "span", entry.span), f"input '{name}' is bound to null by this use of "
                             f"module '{scope.module.name}', so no layer can read it",
                             hint="leave this layer out with `when:` when the input is null")
            return scope.qualify(name)
        if flat is None:
            self.diags.error(getattr(name, "span", entry.span),
                             f"unknown blob '{name}': no layer before this one produces it",
                             hint=did_you_mean(name, scope.blobs))
            return scope.qualify(name)
        return flat

    def _count_layer(self, span: Span) -> None:
        if len(self.layers) >= self.limits.max_layers:
            raise CaffeconfError.at(span, f"the net expands to more than {self.limits.max_layers} layers",
                                    hint="raise the limit with --max-layers if this is intended")

    # -- module uses --------------------------------------------------------------------------

    def expand_use(self, entry: Map, scope: Scope, prev: list[str] | None) -> list[str] | None:
        check_keys(entry, USE_KEYS, "a module use", self.diags)
        module = self.module_for(entry, scope)
        instance = self.text(entry.get("name"), "the instance `name`")
        if entry.get("name") is None:
            self.diags.error(entry.span, "a module use needs a `name` (the instance name)")
        if module is None or instance is None:
            return None
        if id(module) in scope.chain:
            return None  # a cycle; check.find_cycles reports it with the chain
        if len(scope.uses) >= self.limits.max_use_depth:
            self.diags.error(entry.span, f"module uses nest deeper than {self.limits.max_use_depth}")
            return None
        if module.refused_params:
            return None  # a parameter declaration is broken (already reported): its body can't be checked
        values = self.bind_params(module.params, entry.get("with"), scope, entry.span, f"module '{module.name}'",
                                  builtins={**self.globals, INSTANCE: instance})
        if values is None:
            return None
        inputs, outputs = self.ports(module.inputs, values), self.ports(module.outputs, values)
        self._scope_values = scope.values
        if inputs is None or outputs is None:
            return None
        bottoms = self.bind_ports(entry, "bottom", inputs, module, prev)
        tops = self.bind_ports(entry, "top", outputs, module, None)
        if bottoms is None:
            return None
        flat_bottoms = [None if b is None or b in scope.unbound else self.flat_blob(b, scope, entry) for b in bottoms]
        prefix = scope.qualify(instance) if module.qualify else scope.prefix
        callee = Scope(
            values=values, separator=scope.separator, prefix=prefix,
            uses=scope.uses + (Use(module.name, scope.qualify(instance), entry.span),),
            outputs={port.name: scope.blob_for_top(top) for port, top in zip(outputs, tops or ())},
            blobs={port.name: flat for port, flat in zip(inputs, flat_bottoms) if flat is not None},
            unbound=frozenset(port.name for port, flat in zip(inputs, flat_bottoms) if flat is None),
            chain=scope.chain + (id(module),), unit=unit_key(module.path), module=module,
            rules=scope.rules + self.use_rules(entry),
            share=self.use_share(entry, prefix, scope) or scope.share,
        )
        first = [inputs[0].name] if len(inputs) == 1 and flat_bottoms[0] is not None else None
        before = len(self.diags.items)
        self.expand(module.layers, callee, prev=first)
        failed_inside = any(d.severity == "error" for d in self.diags.items[before:])
        self.diags.annotate_since(before, Note(f"in module {module.name}, used as {scope.qualify(instance)}",
                                               entry.span))
        self._scope_values = scope.values
        if failed_inside:
            return None  # an output missing now is a consequence of the errors already reported
        return self.collect_outputs(module, outputs, callee, scope, instance, tops, entry)

    def use_rules(self, entry: Map) -> tuple[RuleSet, ...]:
        found = []
        for kind, field_descriptor in RULE_FIELDS.items():
            node = entry.get(kind)
            if node is not None:
                rules = self.fields.field(node, field_descriptor, kind)
                if rules:
                    found.append(RuleSet(kind, tuple(rules)))
        return tuple(found)

    def use_share(self, entry: Map, prefix: str, scope: Scope) -> Share | None:
        node = entry.get("share")
        if node is None:
            return None
        template = None
        key_node: Node | None = node
        if isinstance(node, Map):
            check_keys(node, SHARE_KEYS, "`share`", self.diags)
            key_node, template = node.get("key"), node.get("name")
            if key_node is None:
                self.diags.error(node.span, "`share` needs a `key`")
                return None
        key = self.text(key_node, "the `share` key")
        if key is None:
            return None
        if template is not None and not isinstance(template, Scalar):
            self.diags.error(template.span, "`share.name` must be a string such as \"${layer}_${blob}\"")
            template = None
        return Share(key, f"{prefix}{scope.separator}" if prefix else "", template, entry.span)

    def ports(self, ports: tuple[Port, ...], values: dict[str, Any]) -> tuple[Port, ...] | None:
        """The module's ports with `${...}` names evaluated for this instance."""
        self._scope_values = values
        evaluated = []
        for port in ports:
            name = self.text(port.node, "a port name")
            if name is None:
                return None
            evaluated.append(Port(name, port.span, port.node))
        return tuple(evaluated)

    def module_for(self, entry: Map, scope: Scope) -> ModuleDecl | None:
        node = entry.get("use")
        name = self.text(node, "`use`")
        if name is None:
            return None
        module = self.library.lookup(name, scope.unit)
        if module is None:
            self.diags.error(node.span, f"unknown module '{name}'",
                             hint=type_hint(name) or did_you_mean(name, self.library.visible(scope.unit)))
        return module

    def bind_ports(self, entry: Map, key: str, ports: tuple[Port, ...], module: ModuleDecl,
                   prev: list[str] | None) -> list[str] | None:
        """Caller blob names for the module's inputs (`bottom`) or outputs (`top`), in port order."""
        node = entry.get(key)
        what = "inputs" if key == "bottom" else "outputs"
        if node is None:
            if key == "top":
                return None
            if len(ports) > 1:
                self.diags.error(entry.span, f"module '{module.name}' has {len(ports)} inputs "
                                 f"({', '.join(p.name for p in ports)}): write `bottom:` to bind them",
                                 notes=[Note(f"inputs of '{module.name}' declared here", ports[0].span)])
                return None
            return self.bottoms(entry, prev, not ports, what="module use")
        if isinstance(node, Map):
            return self._ports_by_name(node, key, ports, module)
        names = self.names(node, f"`{key}`", allow_null=key == "bottom")
        if names is not None and len(names) != len(ports):
            given = f"{len(names)} {key}{'' if len(names) == 1 else 's'} {'is' if len(names) == 1 else 'are'}"
            self.diags.error(node.span, f"module '{module.name}' has {len(ports)} {what[:-1] if len(ports) == 1 else what} "
                             f"({', '.join(p.name for p in ports) or 'none'}) but {given} given",
                             notes=[Note(f"{what} of '{module.name}' declared here",
                                         ports[0].span if ports else module.span)])
            return None
        return names

    def _ports_by_name(self, node: Map, key: str, ports: tuple[Port, ...], module: ModuleDecl) -> list[str] | None:
        known = {port.name for port in ports}
        ok = True
        for name in node.values:
            if name not in known:
                ok = False
                self.diags.error(node.keys[name], f"module '{module.name}' has no {'input' if key == 'bottom' else 'output'} "
                                 f"'{name}'", hint=did_you_mean(name, known))
        missing = [port.name for port in ports if port.name not in node.values]
        if missing:
            ok = False
            self.diags.error(node.span, f"`{key}` binds no blob to {', '.join(missing)} of module '{module.name}'")
        if not ok:
            return None
        names = [self.text(node.values[port.name], f"`{key}.{port.name}`") for port in ports]
        return None if None in names else names  # type: ignore[return-value]

    def collect_outputs(self, module: ModuleDecl, outputs: tuple[Port, ...], callee: Scope, scope: Scope,
                        instance: str, tops: list[str] | None, entry: Map) -> list[str] | None:
        """Caller names for the outputs: its tops, else `<instance>/<output>` (the bare output name
        for a module with `qualify: false`, whose names are the caller's)."""
        names = []
        for index, port in enumerate(outputs):
            flat = callee.blobs.get(port.name)
            if flat is None:
                written = callee.layer_tops.get(port.name)
                hint = (f"'{port.name}' is a layer that writes {', '.join(repr(t) for t in written)}: "
                        f"name that blob as the output" if written else None)
                self.diags.error(port.span, f"output '{port.name}' of module '{module.name}' is never produced "
                                 "by its layers", notes=[Note(f"used as '{instance}' here", entry.span)], hint=hint)
                return None
            if tops:
                name = tops[index]
            else:
                name = f"{instance}{scope.separator}{port.name}" if module.qualify else port.name
            scope.blobs[name] = flat
            names.append(name)
        return names

    # -- parameters ---------------------------------------------------------------------------

    def bind_params(self, decls: dict[str, ParamDecl], with_node: Node | None, scope: Scope, use_span: Span,
                    owner: str, builtins: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Checked parameter values: given ones (evaluated in the caller's scope), then defaults."""
        given: dict[str, Any] = dict(builtins or {})
        ok = True
        if with_node is not None and not isinstance(with_node, Map):
            self.diags.error(with_node.span, "`with` must map parameter names to values")
            return None
        for key, node in (with_node.values.items() if with_node is not None else ()):
            decl = decls.get(key)
            if decl is None:
                ok = False
                self.diags.error(with_node.keys[key], f"{owner} has no parameter '{key}'",
                                 hint=did_you_mean(key, decls) or (f"its parameters: {', '.join(decls)}"
                                                                  if decls else "it takes no parameters"))
                continue
            value = self._try(node)
            if value is _FAILED or not self._check_param(decl, value, node, owner):
                ok = False
            else:
                given[key] = value
        return self._with_defaults(decls, given, use_span, owner) if ok else None

    def _with_defaults(self, decls: dict[str, ParamDecl], given: dict[str, Any], use_span: Span,
                       owner: str) -> dict[str, Any] | None:
        values = dict(given)
        previous = self._scope_values
        self._scope_values = values  # defaults may refer to earlier parameters
        ok = True
        for decl in decls.values():
            if decl.name in values:
                continue
            if decl.default is None:
                ok = False
                self.diags.error(use_span, f"missing required parameter '{decl.name}' ({decl.type_text}) of {owner}",
                                 notes=[Note(f"'{decl.name}' declared here", decl.span)])
                continue
            value = self._try(decl.default)
            if value is _FAILED or not self._check_param(decl, value, decl.default, owner):
                ok = False
            else:
                values[decl.name] = value
        self._scope_values = previous
        return values if ok else None

    def _check_param(self, decl: ParamDecl, value: Any, node: Node, owner: str) -> bool:
        problem = param_problem(decl, value)
        span = node.span
        item = re.match(r"item (\d+): ", problem or "")
        if item and isinstance(node, Seq) and int(item.group(1)) < len(node.items):
            span = node.items[int(item.group(1))].span
        if problem:
            self.diags.error(span, f"parameter '{decl.name}' of {owner}: {problem}",
                             notes=[Note(f"'{decl.name}' declared here as {decl.type_text}", decl.span)])
        return problem is None


def learnable_blob_count(layer_type: str, fields: dict[str, Any], bottom_count: int) -> int:
    """How many learnable blobs Caffe gives a layer of this type (what `param` entries refer to)."""
    def bias(param_key: str, default: bool) -> int:
        return int(fields.get(param_key, {}).get("bias_term", default))

    if layer_type in ("Convolution", "Deconvolution"):
        return 1 + bias("convolution_param", True)
    if layer_type == "InnerProduct":
        return 1 + bias("inner_product_param", True)
    if layer_type == "Embed":
        return 1 + bias("embed_param", True)
    if layer_type == "Scale":
        return (1 if bottom_count == 1 else 0) + bias("scale_param", False)
    if layer_type == "Bias":
        return 1 if bottom_count == 1 else 0
    if layer_type in ("LSTM", "RNN"):  # one more weight when an x_static bottom is fed
        exposed = {"LSTM": 2, "RNN": 1}[layer_type] if fields.get("recurrent_param", {}).get("expose_hidden") else 0
        return {"LSTM": 3, "RNN": 5}[layer_type] + (bottom_count > 2 + exposed)
    return {"PReLU": 1, "Parameter": 1, "BatchNorm": 3}.get(layer_type, 0)


def param_problem(decl: ParamDecl, value: Any) -> str | None:
    """Why `value` does not fit the declaration, or None."""
    if not decl.is_list:
        return _item_problem(decl, value)
    if not isinstance(value, list):
        return f"expects a list of {decl.kind}, got {describe(value)}"
    if decl.min_len is not None and len(value) < decl.min_len:
        return f"needs at least {decl.min_len} items, got {len(value)}"
    if decl.max_len is not None and len(value) > decl.max_len:
        return f"takes at most {decl.max_len} items, got {len(value)}"
    for index, item in enumerate(value):
        problem = _item_problem(decl, item)
        if problem:
            return f"item {index}: {problem}"
    return None


def _item_problem(decl: ParamDecl, value: Any) -> str | None:
    if value is None:
        return None  # null leaves the Caffe fields that use the parameter unset
    kind = decl.kind
    fits = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "enum": isinstance(value, str) and value in decl.values,
    }[kind]
    if not fits:
        if kind == "enum":
            hint = did_you_mean(str(value), decl.values) if isinstance(value, str) else None
            return (f"expects one of {', '.join(decl.values)}, got {describe(value)}"
                    + (f" ({hint})" if hint else ""))
        return f"expects {kind}, got {describe(value)}"
    if decl.minimum is not None and value < decl.minimum:
        return f"must be >= {decl.minimum}, got {value}"
    if decl.maximum is not None and value > decl.maximum:
        return f"must be <= {decl.maximum}, got {value}"
    return None


def _text_start(node: Scalar) -> Span:
    """Where the scalar's text starts: one column in for a quoted scalar."""
    span = node.span
    return Span(span.path, span.line, span.col + 1, span.end_line, span.end_col) if node.quoted else span


def _module_hint(name: str, library: Library, scope: Scope) -> str | None:
    return f"'{name}' is a module: write `use: {name}`" if library.lookup(name, scope.unit) else None


class _Failed:
    def __repr__(self) -> str:
        return "<failed>"


_FAILED = _Failed()
