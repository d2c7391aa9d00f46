"""Flat-net verifier: what Caffe's `Net::Init` would refuse, for the NetStates the rules name.

Caffe only ever sees the filtered net, so each check runs per state: every bottom
produced by an earlier layer, no top written twice except in place (top i equal to
bottom i), and unique layer names (Caffe itself allows duplicates, but weights are
copied by layer name, so duplicates that own weights are errors, others warnings).
The states are each phase, at the levels the rules bound, with no stage, each stage
alone, and each set of stages a single rule asks for together.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from ..caffe.facts import SOURCE_TYPES, learnable_blobs
from ..errors import CaffeconfError, Diagnostic, DiagnosticList, Note, merge_spread
from ..ir import Layer, Net
from .rules import NetState, both_rules_problem, filter_net, layer_is_kept

def candidate_states(net: Net) -> Iterator[NetState]:
    """The states a net is plausibly run in, as its rules name them."""
    rules = [rule for layer in net.layers for key in ("include", "exclude") for rule in layer.fields.get(key, ())]
    stages = sorted({s for rule in rules for s in (*rule.get("stage", ()), *rule.get("not_stage", ()))})
    levels = {0} | {rule[key] + d for rule in rules for key in ("min_level", "max_level") if key in rule
                    for d in (-1, 0, 1)}
    together = {tuple(sorted(rule["stage"])) for rule in rules if len(rule.get("stage", ())) > 1}
    stage_sets = [(), *((stage,) for stage in stages), *sorted(together)]
    for phase in ("TRAIN", "TEST"):
        for level in sorted(levels):
            for stage_set in stage_sets:
                yield NetState(phase, level, stage_set)


def run_states(net: Net, diags: DiagnosticList) -> Iterator[tuple[NetState, list[Layer]]]:
    """Each candidate state with the layers Caffe keeps in it, skipping states that feed nothing."""
    for state in candidate_states(net):
        kept = [layer for layer in net.layers if not _both_rules(layer, diags) and layer_is_kept(layer, state)]
        if _has_source(kept, net):
            yield state, kept


def verify_net(net: Net, diags: DiagnosticList) -> None:
    reported: set[tuple] = set()  # a problem that holds in several states is reported for the first
    found, blamed = DiagnosticList(), {}
    for state, kept in run_states(net, diags):
        where = f" (in {describe_state(state)})" if has_rules(net) else ""
        _verify_state(kept, net, where, found, reported, blamed)
    for diag in one_per_written_layer([(d, blamed.get(found.key(d))) for d in found.items], net):
        diags.add(diag)


def one_per_written_layer(found: list[tuple[Diagnostic, Layer | None]], net: Net) -> list[Diagnostic]:
    """Diagnostics of the layers one module line makes (one per use of the module), each paired with
    its layer, as one noting the uses it holds in: "in all 4 uses of module block (b0, b1, b2, c)".
    A diagnostic without a layer, or of a layer written outside a module, stays as it is."""
    instances: dict = {}  # where a layer is written -> the instances of it in the net
    for layer in net.layers:
        if layer.origin and layer.origin.uses:
            instances.setdefault(layer.origin.span, []).append(layer.origin.uses[-1])
    groups: dict = {}
    for diag, layer in found:
        in_module = layer is not None and layer.origin is not None and layer.origin.uses
        groups.setdefault((diag.span, diag.severity) if in_module else id(diag), []).append((diag, layer))
    merged = []
    for pairs in groups.values():
        first = pairs[0][0]
        if len(pairs) == 1:
            merged.append(first)
            continue
        uses = [layer.origin.uses[-1] for _, layer in pairs]
        total = len(instances[first.span])
        held = f"all {total}" if len(uses) == total else f"{len(uses)} of {total}"
        note = Note(f"in {held} uses of module {uses[0].module} ({', '.join(use.instance for use in uses)})")
        merged.append(first.with_note(note))
    return merged


def _has_source(kept: list[Layer], net: Net) -> bool:
    """A state that keeps no data layer (and has no net input) is one the net is never run in:
    e.g. BVLC's autoencoder selects its TEST data by stage, so plain TEST feeds nothing."""
    return bool(net.fields.get("input")) or any(layer.type in SOURCE_TYPES for layer in kept) \
        or not any(layer.type in SOURCE_TYPES for layer in net.layers)


def _both_rules(layer: Layer, diags: DiagnosticList) -> bool:
    problem = both_rules_problem(layer)
    if problem:
        diags.error(_span(layer), problem)
    return problem is not None


def has_rules(net: Net) -> bool:
    """Whether any layer has include/exclude rules (else every state keeps the same layers)."""
    return any(layer.fields.get("include") or layer.fields.get("exclude") for layer in net.layers)


def describe_state(state: NetState) -> str:
    """e.g. "phase TEST level 1 stages deploy, small"."""
    parts = [f"phase {state.phase}"]
    if state.level:
        parts.append(f"level {state.level}")
    if state.stages:
        parts.append("stages " + ", ".join(state.stages))
    return " ".join(parts)


def _span(layer: Layer):
    return layer.origin.span if layer.origin else None


def _first_time(reported: set[tuple], *key) -> bool:
    if key in reported:
        return False
    reported.add(key)
    return True


def _learnable(layer: Layer) -> bool:
    return bool(learnable_blobs(layer.type, layer.fields, len(layer.bottoms)))


def _distinct_spans(layer: Layer, first: Layer):
    """Where two clashing layers differ: their own lines, or (written once in a module) the uses."""
    if layer.origin and first.origin and layer.origin.span == first.origin.span:
        for ours, theirs in zip(layer.origin.uses, first.origin.uses):
            if ours.span != theirs.span:
                return ours.span, theirs.span
    return _span(layer), _span(first)


def _verify_state(layers: list[Layer], net: Net, where: str, diags: DiagnosticList, reported: set[tuple],
                  blamed: dict[tuple, Layer]) -> None:
    names: dict[str, Layer] = {}
    producers: dict[str, Layer | None] = dict.fromkeys(net.fields.get("input", ()))  # legacy net-level inputs
    for layer in layers:
        first = names.setdefault(layer.name, layer)
        if first is not layer and _first_time(reported, "name", id(layer), id(first)):
            here, there = _distinct_spans(layer, first)
            notes = [Note("first layer with that name", there)]
            if layer.params or first.params or _learnable(layer) or _learnable(first):
                diags.error(here, f"duplicate layer name '{layer.name}'{where}: Caffe copies weights by layer "
                            "name, so both would get the same ones", notes=notes)
            else:
                diags.warning(here, f"duplicate layer name '{layer.name}'{where}: Caffe accepts it, but tools "
                              "that address layers by name see only one", notes=notes)
        for index, bottom in enumerate(layer.bottoms):
            if bottom not in producers and _first_time(reported, "bottom", id(layer), bottom):
                others = [other for other in net.layers if bottom in other.tops and other is not layer]
                notes = [Note(f"'{bottom}' is produced by '{other.name}', which this state does not keep "
                              f"(or only after '{layer.name}')", _span(other)) for other in others[:2]]
                span = layer.origin.bottom_span(index) if layer.origin else None
                diag = Diagnostic(f"layer '{layer.name}' reads blob '{bottom}' that no earlier layer produces{where}",
                                  span, notes=(*notes, *(layer.origin.use_notes() if layer.origin else ())))
                diags.add(diag)
                blamed[diags.key(diag)] = layer
        for index, top in enumerate(layer.tops):
            in_place = index < len(layer.bottoms) and layer.bottoms[index] == top
            if top in producers and not in_place and _first_time(reported, "top", id(layer), top):
                first = producers[top]
                by = f"layer '{first.name}'" if first else "the net's `input`"
                here, there = _distinct_spans(layer, first) if first else (_span(layer), None)
                diags.error(here, f"layer '{layer.name}' writes blob '{top}' that {by} already produced{where}",
                            notes=[Note(f"'{first.name}' is here", there)] if first else [],
                            hint="write in place (top equal to the bottom at the same index) or rename the top")
            producers.setdefault(top, layer)


# -- shared weights ------------------------------------------------------------------------------
#
# Caffe lets the first layer with a given `param { name }` own the blob; later layers share it.
# Their blob shapes must agree (Caffe aborts otherwise); differing lr/decay multipliers are legal
# but almost always a mistake, and a filler on a layer that does not own the blob is ignored.

_WEIGHT_SHAPE_FIELDS = {
    "Convolution": ("convolution_param", ("num_output", "kernel_size", "kernel_h", "kernel_w", "group", "bias_term")),
    "Deconvolution": ("convolution_param", ("num_output", "kernel_size", "kernel_h", "kernel_w", "group", "bias_term")),
    "InnerProduct": ("inner_product_param", ("num_output", "bias_term", "transpose")),
    "Embed": ("embed_param", ("num_output", "input_dim", "bias_term")),
}


def check_sharing(net: Net, diags: DiagnosticList) -> None:
    owners: dict[str, tuple[Layer, dict]] = {}
    sharers: list[tuple[str, Layer, dict, Layer, dict]] = []
    for layer in net.layers:
        for spec in layer.params:
            name = spec.get("name")
            if not name:
                continue
            if name in owners:
                sharers.append((name, layer, spec, *owners[name]))
            else:
                owners[name] = (layer, spec)
    if not sharers:
        return
    param_shapes = _param_shapes(net)
    ignored_fillers: dict[str, tuple[Layer, Layer, list[str]]] = {}
    mismatched: set[tuple[str, str]] = set()  # one shape error per pair of layers: one mistake
    for name, layer, spec, owner, owner_spec in sharers:
        _check_sharer(name, layer, spec, owner, owner_spec, param_shapes, diags, mismatched)
        if layer.params.index(spec) < 2 and _filler(layer, layer.params.index(spec)) is not None:
            ignored_fillers.setdefault(layer.name, (layer, owner, []))[2].append(name)
    for layer, owner, names in ignored_fillers.values():
        listed = ", ".join(f"'{n}'" for n in names)
        diags.warning(_span(layer), f"layer '{layer.name}' sets fillers for {listed}, which '{owner.name}' owns: "
                      "Caffe ignores them", notes=_sharer_notes(layer, owner))


def _sharer_notes(layer: Layer, owner: Layer) -> list[Note]:
    where = f" ({owner.origin.describe()})" if owner.origin and owner.origin.uses else ""
    notes = [Note(f"'{owner.name}' owns the shared blobs{where}", _span(owner))]
    if layer.origin and layer.origin.uses:
        notes.append(Note(f"'{layer.name}' comes from module {layer.origin.uses[-1].module}, used as "
                          f"{layer.origin.uses[-1].instance}", layer.origin.uses[-1].span))
    return notes


def _check_sharer(name: str, layer: Layer, spec: dict, owner: Layer, owner_spec: dict,
                  param_shapes: dict, diags: DiagnosticList, mismatched: set[tuple[str, str]]) -> None:
    note = _sharer_notes(layer, owner)
    index, owner_index = layer.params.index(spec), owner.params.index(owner_spec)
    ours, theirs = _blob_shape(layer, index, param_shapes), _blob_shape(owner, owner_index, param_shapes)
    pair = (layer.name, owner.name)
    if pair not in mismatched and _shape_mismatch(name, layer, owner, ours, theirs, note, diags):
        mismatched.add(pair)
    for key in ("lr_mult", "decay_mult"):
        if spec.get(key, 1.0) != owner_spec.get(key, 1.0):
            diags.warning(_span(layer), f"layer '{layer.name}' shares '{name}' with {key} {spec.get(key, 1.0)} but "
                          f"'{owner.name}' uses {owner_spec.get(key, 1.0)}", notes=note)


def _shape_mismatch(name: str, layer: Layer, owner: Layer, ours: tuple | None, theirs: tuple | None,
                    note: list[Note], diags: DiagnosticList) -> bool:
    """Report (and say) whether the shared blob's shapes differ, or the fields that set them."""
    if ours is not None and theirs is not None:
        if ours != theirs:
            diags.error(_span(layer), f"layer '{layer.name}' shares '{name}' with '{owner.name}' but its blob has "
                        f"shape {_shape_text(ours)}, not {_shape_text(theirs)}", notes=note)
        return ours != theirs
    difference = _field_difference(layer, owner)
    if difference:
        diags.error(_span(layer), f"layer '{layer.name}' shares '{name}' with '{owner.name}' but their "
                    f"{difference} differ, so their blobs cannot have one shape", notes=note)
    return bool(difference)


def _param_shapes(net: Net) -> dict[str, tuple]:
    """Learnable blob shapes by layer name, where inference can tell them (any phase)."""
    from ..inspect.shapes import infer_shapes

    found: dict[str, tuple] = {}
    for phase in ("TRAIN", "TEST"):
        try:
            shapes = infer_shapes(filter_net(net, phase=phase))
        except CaffeconfError:
            continue
        for entry in shapes.layers:
            if entry.params is not None:
                found.setdefault(entry.layer.name, entry.params)
    return found


def _blob_shape(layer: Layer, index: int, param_shapes: dict) -> tuple | None:
    shapes = param_shapes.get(layer.name)
    if shapes is None or index >= len(shapes) or shapes[index] is None or None in shapes[index]:
        return None
    return tuple(shapes[index])


def _shape_text(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def _field_difference(layer: Layer, owner: Layer) -> str | None:
    if layer.type != owner.type:
        return f"types ({layer.type} and {owner.type})"
    message, keys = _WEIGHT_SHAPE_FIELDS.get(layer.type, (None, ()))
    ours, theirs = layer.fields.get(message, {}), owner.fields.get(message, {})
    different = [key for key in keys if ours.get(key) != theirs.get(key)]
    return ", ".join(f"{message}.{key}" for key in different) or None


def _filler(layer: Layer, index: int):
    message, _ = _WEIGHT_SHAPE_FIELDS.get(layer.type, (None, ()))
    return layer.fields.get(message, {}).get("weight_filler" if index == 0 else "bias_filler") if message else None


def shape_diagnostics(net: Net) -> tuple[Diagnostic, ...]:
    """Shape mismatches in each state the net runs in, wherever the input shapes are known (from
    the net, or read from its data layers' sources, which a note then names): a mismatch of one
    layer (in one module instance) in several states is one error, noted with the states it holds
    in when the net's rules make the states differ."""
    from ..inspect.shapes import infer_shapes
    from ..inspect.sources import read_source_shapes, source_inputs

    states, found = [], []
    for state, _ in run_states(net, DiagnosticList()):
        states.append(state)
        kept = filter_net(net, phase=state.phase, stages=state.stages, level=state.level)
        read = read_source_shapes(kept)
        try:
            infer_shapes(kept, source_inputs(read))
            found.append(())
        except CaffeconfError as error:
            notes = tuple(Note(f"shapes read: {r.describe()}") for r in read)
            found.append(tuple(dataclasses.replace(d, notes=d.notes + notes)
                               for d in _one_per_module_layer(error.diagnostics, kept)))
    if not has_rules(net):
        return tuple(dict.fromkeys(d for group in found for d in group))
    return tuple(merge_spread(found, "states", lambda indices: ", ".join(describe_state(states[i]) for i in indices),
                              key=lambda d: (d.span, d.severity, d.notes)))


def _one_per_module_layer(found: tuple, net) -> tuple:
    """Shape errors of the layers one module line makes as one (verify.one_per_written_layer); a
    shape error names its layer by its place and its use notes."""
    layers = {(layer.origin.span, layer.origin.use_notes()): layer for layer in net.layers if layer.origin}
    return tuple(one_per_written_layer([(d, layers.get((d.span, d.notes))) for d in found], net))
