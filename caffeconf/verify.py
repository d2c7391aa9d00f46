"""Flat-net verifier: what Caffe's `Net::Init` would refuse, for every NetState the rules can select.

Caffe only ever sees the filtered net, so each check runs per reachable state:
unique layer names, every bottom produced by an earlier layer, and no top
written twice except in place (top i equal to bottom i).
"""

from __future__ import annotations

import itertools
from typing import Iterator

from .errors import DiagnosticList, Note
from .ir import Layer, Net
from .rules import NetState, layer_is_kept

MAX_STAGE_SETS = 64


def candidate_states(net: Net) -> Iterator[NetState]:
    """Enough states to tell apart every combination of the net's rules."""
    rules = [rule for layer in net.layers for key in ("include", "exclude") for rule in layer.fields.get(key, ())]
    stages = sorted({s for rule in rules for s in (*rule.get("stage", ()), *rule.get("not_stage", ()))})
    levels = {0} | {rule[key] + d for rule in rules for key in ("min_level", "max_level") if key in rule
                    for d in (-1, 0, 1)}
    stage_sets = [()]
    for size in range(1, len(stages) + 1):
        stage_sets += list(itertools.combinations(stages, size))
        if len(stage_sets) >= MAX_STAGE_SETS:
            break
    for phase in ("TRAIN", "TEST"):
        for level in sorted(levels):
            for stage_set in stage_sets[:MAX_STAGE_SETS]:
                yield NetState(phase, level, stage_set)


def verify_net(net: Net, diags: DiagnosticList) -> None:
    for state in candidate_states(net):
        kept = [layer for layer in net.layers if not _both_rules(layer, diags) and layer_is_kept(layer, state)]
        _verify_state(kept, tuple(net.fields.get("input", ())), _describe(state, net), diags)


def _both_rules(layer: Layer, diags: DiagnosticList) -> bool:
    if layer.fields.get("include") and layer.fields.get("exclude"):
        diags.error(_span(layer), f"layer '{layer.name}' has both include and exclude rules, which Caffe refuses")
        return True
    return False


def _describe(state: NetState, net: Net) -> str:
    has_rules = any(layer.fields.get("include") or layer.fields.get("exclude") for layer in net.layers)
    if not has_rules:
        return ""
    parts = [f"phase {state.phase}"]
    if state.level:
        parts.append(f"level {state.level}")
    if state.stages:
        parts.append("stages " + ", ".join(state.stages))
    return f" (in {' '.join(parts)})"


def _span(layer: Layer):
    return layer.origin.span if layer.origin else None


def _verify_state(layers: list[Layer], net_inputs: tuple[str, ...], where: str, diags: DiagnosticList) -> None:
    names: dict[str, Layer] = {}
    producers: dict[str, Layer | None] = dict.fromkeys(net_inputs)  # legacy net-level inputs
    for layer in layers:
        first = names.setdefault(layer.name, layer)
        if first is not layer:
            diags.error(_span(layer), f"duplicate layer name '{layer.name}'{where}",
                        notes=[Note("first layer with that name", _span(first))])
        for bottom in layer.bottoms:
            if bottom not in producers:
                diags.error(_span(layer), f"layer '{layer.name}' reads blob '{bottom}' that no earlier layer "
                            f"produces{where}")
        for index, top in enumerate(layer.tops):
            in_place = index < len(layer.bottoms) and layer.bottoms[index] == top
            if top in producers and not in_place:
                first = producers[top]
                by = f"layer '{first.name}'" if first else "the net's `input`"
                diags.error(_span(layer), f"layer '{layer.name}' writes blob '{top}' that {by} already produced{where}",
                            notes=[Note(f"'{first.name}' is here", _span(first))] if first else [],
                            hint="write in place (top equal to the bottom at the same index) or rename the top")
            producers.setdefault(top, layer)
