"""Rules on module uses fold into one rule set Caffe accepts, with the same meaning in every NetState."""

from __future__ import annotations

import itertools

from hypothesis import assume, given, settings, strategies as st

from caffeconf.ir import Layer
from caffeconf.compile.rules import NetState, RuleSet, combine, layer_is_kept, settle_variants, state_meets_rule

STAGES = ("a", "b", "c")
STATES = [NetState(phase, level, stages)
          for phase in ("TRAIN", "TEST") for level in range(-3, 4)
          for size in range(len(STAGES) + 1) for stages in itertools.combinations(STAGES, size)]


@st.composite
def rules(draw):
    rule = {}
    if draw(st.booleans()):
        rule["phase"] = draw(st.sampled_from(["TRAIN", "TEST"]))
    for key in ("min_level", "max_level"):
        if draw(st.booleans()):
            rule[key] = draw(st.integers(-2, 2))
    for key in ("stage", "not_stage"):
        chosen = draw(st.lists(st.sampled_from(STAGES), max_size=2, unique=True))
        if chosen:
            rule[key] = chosen
    return rule


rule_sets = st.builds(lambda kind, items: RuleSet(kind, tuple(items)),
                      st.sampled_from(["include", "exclude"]), st.lists(rules(), min_size=1, max_size=3))


def kept_by_level(level: RuleSet, state: NetState) -> bool:
    met = any(state_meets_rule(state, rule) for rule in level.rules)
    return met if level.kind == "include" else not met


def kept_by_caffe(folded: RuleSet | None, state: NetState) -> bool:
    fields = {folded.kind: list(folded.rules)} if folded else {}
    return layer_is_kept(Layer("l", "ReLU", fields=fields), state)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_sets, min_size=1, max_size=4))
def test_folded_rules_keep_exactly_what_the_chain_keeps(chain):
    try:
        folded = combine(chain)
    except ValueError:  # too many rules to express: refused with a clear error instead
        assume(False)
    assert folded is None or folded.kind in ("include", "exclude")
    for state in STATES:
        assert kept_by_caffe(folded, state) == all(kept_by_level(level, state) for level in chain), state


@settings(max_examples=200, deadline=None)
@given(st.lists(rule_sets, min_size=1, max_size=3), st.booleans())
def test_settling_a_variant_matches_deciding_it_in_every_state(chain, selected):
    """Treat stage 'a' as a compile-time variant: settling it equals knowing whether 'a' is in the state."""
    try:
        folded = combine(chain)
    except ValueError:
        assume(False)
    settled = settle_variants(folded, frozenset({"a"}), frozenset({"a"} if selected else ()))
    for state in STATES:
        if ("a" in state.stages) != selected:
            continue
        expected = kept_by_caffe(folded, state)
        actual = False if settled is False else kept_by_caffe(settled, state)
        assert actual == expected, state


def test_include_and_exclude_on_one_layer_fold_into_includes():
    folded = combine([RuleSet("include", ({"phase": "TEST"},)), RuleSet("exclude", ({"stage": ["deploy"]},))])
    assert folded == RuleSet("include", ({"phase": "TEST", "not_stage": ["deploy"]},))


def test_contradictory_chain_is_never_kept():
    folded = combine([RuleSet("include", ({"phase": "TEST"},)), RuleSet("include", ({"phase": "TRAIN"},))])
    assert folded == RuleSet("include", ({"min_level": 1, "max_level": 0},))
    assert not any(kept_by_caffe(folded, state) for state in STATES)


def test_rules_on_nested_uses_end_to_end(tmp_path):
    from caffeconf.compile.compiler import compile_file
    from caffeconf.compile.rules import filter_net

    config = tmp_path / "net.yaml"
    config.write_text("""caffeconf: 1
modules:
  inner:
    inputs: [x]
    layers:
      - {name: always, type: ReLU, bottom: x}
      - {name: staged, type: ReLU, bottom: x, include: {stage: extra}}
  outer:
    inputs: [x]
    layers:
      - {use: inner, name: in, exclude: {stage: quiet}}
layers:
  - {name: data, type: Input, input_param: {shape: {dim: [1]}}}
  - {use: outer, name: out, include: {phase: TEST}}
""")
    net = compile_file(config)
    assert net.layer("out/in/always").fields == {"include": [{"phase": "TEST", "not_stage": ["quiet"]}]}
    assert net.layer("out/in/staged").fields == {
        "include": [{"phase": "TEST", "stage": ["extra"], "not_stage": ["quiet"]}]}
    kept = {state: [layer.name for layer in filter_net(net, phase=state[0], stages=state[1]).layers]
            for state in [("TRAIN", ()), ("TEST", ()), ("TEST", ("extra",)), ("TEST", ("extra", "quiet"))]}
    assert kept == {
        ("TRAIN", ()): ["data"],
        ("TEST", ()): ["data", "out/in/always"],
        ("TEST", ("extra",)): ["data", "out/in/always", "out/in/staged"],
        ("TEST", ("extra", "quiet")): ["data"],
    }
