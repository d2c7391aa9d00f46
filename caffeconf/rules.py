"""Caffe's NetStateRule semantics (`Net::FilterNet` / `StateMeetsRule`) on the flat IR.

flat Net + NetState -> the Net that Caffe would build for that state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import CaffeconfError
from .ir import Layer, Net


@dataclass(frozen=True)
class NetState:
    phase: str = "TEST"  # NetState.phase defaults to TEST in caffe.proto
    level: int = 0
    stages: tuple[str, ...] = ()

    @classmethod
    def of_net(cls, net: Net, phase: str | None = None, level: int | None = None,
               stages: Iterable[str] | None = None) -> "NetState":
        """The net's own `state`, overridden where the caller says, as Caffe's Net constructor does."""
        declared = net.fields.get("state", {})
        return cls(
            phase=phase if phase is not None else declared.get("phase", "TEST"),
            level=level if level is not None else declared.get("level", 0),
            stages=tuple(stages) if stages is not None else tuple(declared.get("stage", ())),
        )


def state_meets_rule(state: NetState, rule: Mapping[str, Any]) -> bool:
    """A rule is met when every condition it sets holds for the state."""
    if "phase" in rule and rule["phase"] != state.phase:
        return False
    if "min_level" in rule and state.level < rule["min_level"]:
        return False
    if "max_level" in rule and state.level > rule["max_level"]:
        return False
    if any(stage not in state.stages for stage in rule.get("stage", ())):
        return False
    return not any(stage in state.stages for stage in rule.get("not_stage", ()))


def layer_is_kept(layer: Layer, state: NetState) -> bool:
    """Caffe keeps a layer if any include rule is met, or, without includes, if no exclude rule is."""
    include, exclude = layer.fields.get("include", ()), layer.fields.get("exclude", ())
    if include and exclude:
        raise CaffeconfError.at(
            layer.origin.span if layer.origin else None,
            f"layer '{layer.name}' has both include and exclude rules, which Caffe refuses",
        )
    if include:
        return any(state_meets_rule(state, rule) for rule in include)
    return not any(state_meets_rule(state, rule) for rule in exclude)


def filter_net(net: Net, phase: str | None = None, stages: Iterable[str] | None = None,
               level: int | None = None) -> Net:
    """The layers Caffe builds for this state; the kept layers lose their (now settled) rules."""
    state = NetState.of_net(net, phase=phase, level=level, stages=stages)
    kept = tuple(_without_rules(layer) for layer in net.layers if layer_is_kept(layer, state))
    return dataclasses.replace(net, layers=kept)


def _without_rules(layer: Layer) -> Layer:
    fields = {k: v for k, v in layer.fields.items() if k not in ("include", "exclude")}
    return dataclasses.replace(layer, fields=fields)
