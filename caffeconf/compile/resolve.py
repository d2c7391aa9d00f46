"""Surface document -> flat Net: instantiate every module use with checked parameters and
inline it, qualifying layer and blob names as `<instance><separator><inner>`.

Each entry goes through small steps: repeat and `when:` decide its instances; a layer gets its
type, blobs, fields, folded rules and param names (`entries`, `sharing`); a use binds its
parameters (`params`) and ports (`uses`), then its module's entries expand in a new `Scope`
whose values are the environment every `${...}` inside it is evaluated in (`values`).
Problems go to a `DiagnosticList` so that one run reports all of them; an instance with errors
is still expanded as far as possible so later problems show up too.
"""

from __future__ import annotations

from typing import Any

from ..caffe.facts import SOURCE_TYPES
from ..errors import DiagnosticList, Note, merge_spread
from ..ir import Layer, Net, Origin, Use
from ..limits import Limits
from .budget import Budget
from .expr import UNKNOWN
from .entries import Scope, bottoms, flat_blob, layer_type, tops
from .findings import UseFindings
from .fields import describe, layer_message, net_message
from .library import Library, unit_key
from .params import ParamMisses, bind_params, merge_misspelt_variants
from .repeat import index_ranges, iterations, poison_undecided
from .rules import RuleSet, combine, settle_variants
from .sharing import Sharing
from .syntax import (INSTANCE, Document, Entry, LayerEntry, ModuleDecl, ModuleUse, Port, check_keys, parse_entry,
                     written_keys)
from .tree import Map, Node
from .uses import bind_ports, collect_outputs, instance_ports, module_for, poison_use, use_outputs, use_rules
from .values import FAILED, Evaluator, names_read

LAYER_SYNTAX_KEYS = written_keys(LayerEntry)
USE_KEYS = ("use", "name", "with", "bottom", "top", "include", "exclude", "repeat", "when", "share", "doc")


class Resolver:
    def __init__(self, document: Document, library: Library, diags: DiagnosticList,
                 limits: Limits, variants: frozenset[str] = frozenset(), params: Map | None = None):
        self.document, self.library, self.diags, self.limits = document, library, diags, limits
        self.params = params  # values given for the document's own parameters (the Python API's)
        self.selected = variants
        self.variants = frozenset(document.variants)
        # Each declared variant is a bool visible in every scope: `when: ${deploy}`.
        self.globals = {name: name in variants for name in document.variants}
        self.evaluator = Evaluator(diags)
        self.sharing = Sharing(self.evaluator, document.separator)
        self.layers: list[Layer] = []
        self.budget = Budget(limits)
        self.findings = UseFindings(diags)
        self.param_misses = ParamMisses(diags)
        self.document_values: dict[str, Any] = {}

    def _names_read(self) -> set[str]:
        """The names read by any expression of the document or the modules it sees."""
        modules = [module for unit in self.library.units.values() for module in unit.modules.values()]
        return names_read([*self.document.layers, *(decl.default for decl in self.document.params.values()),
                           *(node for module in modules for node in module.layers),
                           *(decl.default for module in modules for decl in module.params.values())])

    def run(self) -> Net | None:
        """The flat net, or None when the document's own parameters fail."""
        doc = self.document
        values = bind_params(self.evaluator, doc.params, self.params, {}, doc.span, "the document",
                             builtins={**self.globals, **dict.fromkeys(doc.refused_params, UNKNOWN)})
        if values is None:
            return None  # every entry would only repeat that the parameters are unknown
        self.document_values = values
        name = self.evaluator.text(doc.name, "`name`", values) if doc.name is not None else ""
        net_fields = self.evaluator.fields(values).message(
            Map(doc.net_fields, {k: v.span for k, v in doc.net_fields.items()}, doc.span), net_message(), "",
            skip=frozenset({"layer", "layers"}))
        # net-level `input` blobs, as in old prototxt, are there from the start
        scope = Scope(values=values, prefix="", separator=doc.separator, unit=unit_key(doc.path),
                      blobs={blob: blob for blob in net_fields.get("input", ())})
        self.expand(doc.entries, scope, prev=None)
        self.param_misses.report()
        merge_misspelt_variants(self.diags, doc.variants, self._names_read)
        self.findings.annotate()
        return Net(name=name or "", layers=tuple(self.layers), fields=net_fields)

    def document_message(self, node: Node, descriptor, path: str, skip: frozenset[str]) -> dict[str, Any]:
        """Fields of another message (e.g. `solver:`), checked with the document's parameters in scope."""
        return self.evaluator.fields(self.document_values).message(node, descriptor, path, skip=skip)

    def expand(self, entries: tuple[Entry, ...], scope: Scope, prev: list[str] | None) -> None:
        for entry in entries:
            expand = self.expand_repeat if entry.repeat is not None else self.expand_entry
            prev = expand(entry, scope, prev)

    def expand_entry(self, entry: Entry, scope: Scope, prev: list[str] | None) -> list[str] | None:
        """One instance of an entry, unless `when:` leaves it out; the tops the next entry may chain on."""
        wanted = self.wanted(entry, scope)
        if wanted is None:
            poison_undecided(self.evaluator, entry, scope)
            return FAILED
        if not wanted:
            return prev
        built = (self.use if isinstance(entry, ModuleUse) else self.layer)(entry, scope, prev)
        return FAILED if built is None else built  # the next entry can't chain on a failed one

    # -- repeat and when ----------------------------------------------------------------------

    def expand_repeat(self, entry: Entry, scope: Scope, prev: list[str] | None) -> list[str] | None:
        """Every repetition of an entry; a problem found in several is reported once, at its written
        place, with a note naming the indices it holds for."""
        repetitions = iterations(self.evaluator, self.limits, entry, scope)
        if repetitions is None:
            poison_undecided(self.evaluator, entry, scope)
            return FAILED
        (copies, var), start, found = repetitions, len(self.layers), []
        try:
            for done, each in enumerate(copies):
                if done:
                    self.budget.check_repeat(entry.repeat.span, len(self.layers), done, len(copies),
                                             len(self.layers) - start)
                before = len(self.diags.items)
                prev = self.expand_entry(entry, each, prev)
                found.append(self.diags.take_since(before))
        finally:  # also when a limit stops the repeat: what its repetitions found is still reported
            self._report_repetitions(found, var, entry)
        return prev

    def _report_repetitions(self, found: list[list], var: str, entry: Entry) -> None:
        merged = merge_spread(found, "repetitions", lambda indices: f"{var} = {index_ranges(indices)}",
                              entry.repeat.span) if len(found) > 1 else [d for group in found for d in group]
        for diag in merged:
            self.diags.add(diag)

    def wanted(self, entry: Entry, scope: Scope) -> bool | None:
        """`when:` decides whether this entry is emitted at all (None: it could not tell)."""
        node = entry.when
        if node is None:
            return True
        value = self.evaluator.attempt(node, scope.values)
        if value is FAILED:
            return None
        if not isinstance(value, bool):
            self.diags.error(node.span, f"`when` must be true or false, got {describe(value)}")
            return None
        return value

    # -- layers -------------------------------------------------------------------------------

    def expand_layer(self, node: Map, scope: Scope, prev: list[str] | None) -> list[str] | None:
        """One layer written as a mapping (netspec's calls), expanded into `scope`."""
        return self.layer(parse_entry(node), scope, prev)

    def layer(self, entry: LayerEntry, scope: Scope, prev: list[str] | None) -> list[str] | None:
        env, evaluator = scope.values, self.evaluator
        name = evaluator.text(entry.name, "a layer name", env)
        if entry.name is None:
            self.diags.error(entry.span, "a layer needs a `name`")
        kind = layer_type(evaluator, entry, scope, self.library)
        # A type that failed may be a misspelt data layer's: no bottom is asked of it (one mistake, one error).
        written_bottoms = bottoms(evaluator, entry, prev, kind is None or kind in SOURCE_TYPES, "layer", env)
        written_tops = tops(evaluator, entry, name, written_bottoms, env)
        fields = evaluator.fields(env).message(entry.node, layer_message(), "", skip=LAYER_SYNTAX_KEYS, layer_type=kind)
        if name is None or kind is None or written_bottoms is None or written_tops is None:
            return scope.poison(written_tops or [])
        flat_bottoms = tuple(flat_blob(evaluator, b, scope, entry) for b in written_bottoms)
        flat_tops = tuple(scope.blob_for_top(t) for t in written_tops)
        flat_name = scope.qualify(name)
        self.budget.count_layer(entry.span, len(self.layers), (flat_name, *flat_bottoms, *flat_tops), fields)
        fields = self.settle_rules(fields, scope, entry)
        if fields is None:
            return written_tops  # never kept in the chosen variant
        fields = self.sharing.name_params(fields, kind, flat_name, len(written_bottoms), scope, entry)
        scope.layer_tops[name] = written_tops
        bottom_spans = tuple(getattr(b, "span", None) for b in written_bottoms)
        self.layers.append(Layer(flat_name, kind, flat_bottoms, flat_tops, fields,
                                 Origin(entry.span, scope.uses, bottom_spans)))
        return written_tops

    def settle_rules(self, fields: dict[str, Any], scope: Scope, entry: LayerEntry) -> dict[str, Any] | None:
        """The layer's own rules folded with its uses' rules and the compile-time variants."""
        own = tuple(RuleSet(kind, tuple(fields.pop(kind))) for kind in ("include", "exclude") if kind in fields)
        try:
            combined = combine(scope.rules + own)
        except ValueError as error:
            where = entry.node.keys.get("exclude") or entry.node.keys.get("include") or entry.span
            self.diags.error(where, f"cannot express this layer's rules for Caffe: {error}",
                             hint="split the module use, or state the rules more simply (fewer excluded stages)")
            return fields
        settled = settle_variants(combined, self.variants, self.selected)
        if settled is False:
            return None
        if settled is not None:
            fields[settled.kind] = list(settled.rules)
        return fields

    # -- module uses --------------------------------------------------------------------------

    def expand_use(self, node: Map, scope: Scope, prev: list[str] | None) -> list[str] | None:
        """One module use written as a mapping (netspec's calls), expanded into `scope`."""
        return self.use(parse_entry(node), scope, prev)

    def use(self, entry: ModuleUse, scope: Scope, prev: list[str] | None) -> list[str] | None:
        module = module_for(self.evaluator, entry, scope, self.library)
        misplaced = self._misplaced_params(entry, module)
        check_keys(entry.node, USE_KEYS, "a module use", self.diags)
        instance = self.evaluator.text(entry.name, "the instance `name`", scope.values)
        if entry.name is None:
            self.diags.error(entry.span, "a module use needs a `name` (the instance name)")
        outputs = use_outputs(self.evaluator, entry, scope, module, instance)
        if module is None or instance is None or misplaced or not self._can_expand(module, entry, scope):
            return poison_use(self.evaluator, self.library, entry, scope, module, instance, outputs)
        instantiated = self.instantiate(module, instance, entry, scope, prev)
        if instantiated is None:
            return poison_use(self.evaluator, self.library, entry, scope, module, instance, outputs)
        callee, ports, written_tops, first = instantiated
        outputs = use_outputs(self.evaluator, entry, scope, module, instance, ports)
        self.budget.check_use(entry.span, id(module), module.name, len(self.layers))
        before, start, mark = len(self.diags.items), len(self.layers), self.findings.start()
        self.expand(module.entries, callee, prev=first)
        self.budget.made[id(module)] = len(self.layers) - start
        failed_inside = any(d.severity == "error" for d in self.diags.items[before:])
        # a missing output after errors inside is a consequence of them: not looked for
        collected = None if failed_inside else \
            collect_outputs(self.evaluator, module, ports, callee, scope, instance, written_tops, entry)
        self.diags.annotate_since(before, Note(f"in module {module.name}, used as {scope.qualify(instance)}",
                                               entry.span))
        self.findings.record(module, scope.qualify(instance), entry.span, mark)
        if collected is None and module.qualify:  # whatever `<instance>/...` is read, its error is reported
            scope.poisoned.add(f"{instance}{scope.separator}")
        return scope.poison(outputs) if collected is None else collected

    def _misplaced_params(self, entry: ModuleUse, module: ModuleDecl | None) -> bool:
        """Parameters written as keys of the use instead of under `with:`, reported; their
        parameters count as given, so the instance is not checked against missing ones."""
        misplaced = [key for key in entry.node.values if key not in USE_KEYS and module and key in module.params]
        for key in misplaced:
            self.diags.error(entry.node.keys[key], f"unknown key '{key}' in a module use",
                             hint=f"'{key}' is a parameter of module '{module.name}': write it under `with:`")
        return bool(misplaced)

    def _can_expand(self, module: ModuleDecl, entry: ModuleUse, scope: Scope) -> bool:
        if id(module) in scope.chain:
            return False  # a cycle; check.find_cycles reports it with the chain
        if len(scope.uses) >= self.limits.max_use_depth:
            self.diags.error(entry.span, f"module uses nest deeper than {self.limits.max_use_depth}")
            return False
        return not module.refused_params  # a broken declaration (reported): its body can't be checked

    def instantiate(self, module: ModuleDecl, instance: str, entry: ModuleUse, scope: Scope,
                    prev: list[str] | None) -> tuple[Scope, tuple[Port, ...], list[str] | None, list[str] | None] | None:
        """The instance's scope (parameters bound, ports bound to the caller's blobs), its output
        ports, the tops the caller wrote, and the chained bottom its first entry may take."""
        evaluator, env = self.evaluator, scope.values
        values = bind_params(evaluator, module.params, entry.arguments, env, entry.span, f"module '{module.name}'",
                             builtins={**self.globals, INSTANCE: instance}, misses=self.param_misses)
        if values is None:
            return None
        inputs, outputs = instance_ports(evaluator, module.inputs, values), instance_ports(evaluator, module.outputs, values)
        if inputs is None or outputs is None:
            return None
        written_bottoms = bind_ports(evaluator, entry, "bottom", inputs, module, prev, env)
        written_tops = bind_ports(evaluator, entry, "top", outputs, module, None, env)
        if written_bottoms is None:
            return None
        flat_bottoms = [None if b is None or b in scope.unbound else flat_blob(evaluator, b, scope, entry)
                        for b in written_bottoms]
        prefix = scope.qualify(instance) if module.qualify else scope.prefix
        callee = Scope(
            values=values, separator=scope.separator, prefix=prefix,
            uses=scope.uses + (Use(module.name, scope.qualify(instance), entry.span),),
            outputs={port.name: scope.blob_for_top(top) for port, top in zip(outputs, written_tops or ())},
            blobs={port.name: flat for port, flat in zip(inputs, flat_bottoms) if flat is not None},
            unbound=frozenset(port.name for port, flat in zip(inputs, flat_bottoms) if flat is None),
            chain=scope.chain + (id(module),), unit=unit_key(module.path), module=module,
            rules=scope.rules + use_rules(evaluator, entry, env),
            share=self.sharing.use_share(entry, prefix, env) or scope.share,
        )
        first = [inputs[0].name] if len(inputs) == 1 and flat_bottoms[0] is not None else None
        return callee, outputs, written_tops, first
