"""Caffe's NetStateRule semantics (`Net::FilterNet` / `StateMeetsRule`) on the flat IR.

flat Net + NetState -> the Net that Caffe would build for that state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import CaffeconfError
from ..ir import Layer, Net


@dataclass(frozen=True)
class NetState:
    phase: str = "TEST"  # NetState.phase defaults to TEST in caffe.proto
    level: int = 0
    stages: tuple[str, ...] = ()

    @classmethod
    def of_net(cls, net: Net, phase: str | None = None, level: int | None = None,
               stages: Iterable[str] | None = None, default_phase: str = "TEST") -> "NetState":
        """The net's own `state`, overridden where the caller says, as Caffe's Net constructor does."""
        declared = net.fields.get("state", {})
        return cls(
            phase=phase if phase is not None else declared.get("phase", default_phase),
            level=level if level is not None else declared.get("level", 0),
            stages=tuple(stages) if stages is not None else tuple(declared.get("stage", ())),
        )


def state_meets_rule(state: NetState, rule: Mapping[str, Any]) -> bool:
    """A rule is met when every condition it sets holds for the state."""
    return (rule.get("phase", state.phase) == state.phase
            and rule.get("min_level", state.level) <= state.level <= rule.get("max_level", state.level)
            and all(stage in state.stages for stage in rule.get("stage", ()))
            and not any(stage in state.stages for stage in rule.get("not_stage", ())))


def both_rules_problem(layer: Layer) -> str | None:
    """What Caffe says of a layer with include and exclude rules together (it refuses them), if it has."""
    if layer.fields.get("include") and layer.fields.get("exclude"):
        return f"layer '{layer.name}' has both include and exclude rules, which Caffe refuses"
    return None


def layer_is_kept(layer: Layer, state: NetState) -> bool:
    """Caffe keeps a layer if any include rule is met, or, without includes, if no exclude rule is."""
    problem = both_rules_problem(layer)
    if problem:
        raise CaffeconfError.at(layer.origin.span if layer.origin else None, problem)
    include, exclude = layer.fields.get("include", ()), layer.fields.get("exclude", ())
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


# -- combining rules ------------------------------------------------------------------------------
#
# A module use may carry include/exclude rules that apply to every layer inside it. Caffe reads
# only one layer's own rules and refuses include and exclude together, so the chain of rules
# (outermost use ... the layer itself) is folded into one equivalent set. Include sets conjoin
# pairwise; an exclude rule is negated atom by atom, which NetStateRule can always express
# (phase is binary, levels are integers, stage and not_stage are each other's negation).

Rule = Mapping[str, Any]
NEVER: Rule = {"min_level": 1, "max_level": 0}  # a valid NetStateRule that no state meets
MAX_COMBINED_RULES = 256


@dataclass(frozen=True)
class RuleSet:
    kind: str  # "include" or "exclude"
    rules: tuple[Rule, ...]


def conjoin(a: Rule, b: Rule) -> Rule | None:
    """One rule met exactly when both are, or None when no state meets both."""
    if "phase" in a and "phase" in b and a["phase"] != b["phase"]:
        return None
    lows = [r["min_level"] for r in (a, b) if "min_level" in r]
    highs = [r["max_level"] for r in (a, b) if "max_level" in r]
    stages = list(dict.fromkeys([*a.get("stage", ()), *b.get("stage", ())]))
    not_stages = list(dict.fromkeys([*a.get("not_stage", ()), *b.get("not_stage", ())]))
    if (lows and highs and max(lows) > min(highs)) or set(stages) & set(not_stages):
        return None
    merged = {"phase": a.get("phase", b.get("phase")), "min_level": max(lows, default=None),
              "max_level": min(highs, default=None), "stage": stages, "not_stage": not_stages}
    return {key: value for key, value in merged.items() if value is not None and value != []}


def negate(rule: Rule) -> list[Rule]:
    """Rules whose union is met exactly when `rule` is not (empty: `rule` is always met)."""
    negations: list[Rule] = []
    if "phase" in rule:
        negations.append({"phase": "TEST" if rule["phase"] == "TRAIN" else "TRAIN"})
    if "min_level" in rule:
        negations.append({"max_level": rule["min_level"] - 1})
    if "max_level" in rule:
        negations.append({"min_level": rule["max_level"] + 1})
    negations += [{"not_stage": [stage]} for stage in rule.get("stage", ())]
    negations += [{"stage": [stage]} for stage in rule.get("not_stage", ())]
    return negations


def combine(levels: Iterable[RuleSet]) -> RuleSet | None:
    """One rule set that keeps a layer exactly when every level keeps it (None: always kept).

    Raises ValueError when the equivalent include set would exceed MAX_COMBINED_RULES rules.
    """
    levels = [level for level in levels if level.rules]
    if not levels:
        return None
    if all(level.kind == "exclude" for level in levels):
        return RuleSet("exclude", _unique([rule for level in levels for rule in level.rules]))
    terms: list[Rule] = [{}]
    for level in levels:
        if level.kind == "include":
            terms = [c for t in terms for r in level.rules if (c := conjoin(t, r)) is not None]
        else:
            for rule in level.rules:
                terms = [c for t in terms for n in negate(rule) if (c := conjoin(t, n)) is not None]
        terms = list(_unique(terms))
        if len(terms) > MAX_COMBINED_RULES:
            raise ValueError(f"the combined include/exclude rules need more than {MAX_COMBINED_RULES} "
                             "include rules to express")
    if not terms:
        return RuleSet("include", (NEVER,))
    if any(not term for term in terms):
        return None
    return RuleSet("include", tuple(terms))


def _unique(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    unique: dict[str, Rule] = {}
    for rule in rules:
        unique.setdefault(repr(sorted(rule.items())), rule)
    return tuple(unique.values())


def settle_variants(rule_set: RuleSet | None, variants: frozenset[str],
                    selected: frozenset[str]) -> RuleSet | None | bool:
    """Decide, at compile time, the stages declared as variants.

    Returns the remaining rules (None: always kept), or False when the layer is never kept.
    """
    if rule_set is None:
        return None
    remaining = []
    for rule in rule_set.rules:
        stages = [s for s in rule.get("stage", ()) if s in variants]
        not_stages = [s for s in rule.get("not_stage", ()) if s in variants]
        if any(s not in selected for s in stages) or any(s in selected for s in not_stages):
            continue  # this rule can never be met in the chosen variant
        settled = {key: [s for s in value if s not in variants] if key in ("stage", "not_stage") else value
                   for key, value in rule.items()}
        remaining.append({key: value for key, value in settled.items() if value != []})  # no stage left: no key
    always = any(not rule for rule in remaining)
    if rule_set.kind == "include":
        if not remaining:
            return False
        return None if always else RuleSet("include", tuple(remaining))
    if always:
        return False
    return RuleSet("exclude", tuple(remaining)) if remaining else None
