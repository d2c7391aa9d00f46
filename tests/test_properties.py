"""Property tests: random module graphs, written out as YAML text and compiled, inline to
well-formed flat nets.

A program is a few modules (each may use the ones declared before it, so there is no
cycle) and top-level layers: chains and fan-in of plain layers, module uses with random
instance names, omitted bottoms and tops, in-place layers. A small reference inliner
written here from the format's rules says what the flat net must be; the compiled net
must equal it, and must be well-formed on its own terms (unique layer names, every
bottom produced by an earlier layer, the expected number of layers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffeconf.compile import compiler
from caffeconf.errors import render_text


@dataclass(frozen=True)
class LayerStep:
    name: str
    type: str
    bottoms: tuple[str, ...] | None  # None: omitted, the previous step's single top
    top: str | None  # None: the layer's name
    in_place: bool = False


@dataclass(frozen=True)
class UseStep:
    module: str
    instance: str
    bottoms: tuple[str, ...] | None  # None: omitted
    tops: tuple[str, ...] | None  # None: <instance><separator><output>


@dataclass(frozen=True)
class Module:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    steps: tuple[LayerStep | UseStep, ...]


@dataclass(frozen=True)
class Program:
    separator: str
    modules: tuple[Module, ...]
    steps: tuple[LayerStep | UseStep, ...]


INSTANCE_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
TYPES_BY_BOTTOMS = {1: ("ReLU", "Sigmoid", "TanH"), 2: ("Eltwise", "Concat")}


class _Body:
    """Draws the steps of one scope, tracking which blob names are visible in it."""

    def __init__(self, draw, modules: list[Module], visible: list[str]):
        self.draw, self.modules, self.visible = draw, modules, list(visible)
        self.prev: list[str] | None = list(visible) if len(visible) == 1 else None
        self.steps: list[LayerStep | UseStep] = []
        self.instances: set[str] = set()

    def bottoms(self, count: int) -> tuple[str, ...] | None:
        if count == 1 and self.prev is not None and len(self.prev) == 1 and self.draw(st.booleans()):
            return None
        return tuple(self.draw(st.lists(st.sampled_from(self.visible), min_size=count, max_size=count)))

    def _read(self, bottoms: tuple[str, ...] | None) -> list[str]:
        return list(bottoms) if bottoms is not None else list(self.prev)

    def add_layer(self, name: str | None = None) -> None:
        count = self.draw(st.sampled_from([1, 1, 2]))
        name = name or f"l{len(self.steps)}"
        bottoms = self.bottoms(count)
        in_place = name.startswith("l") and count == 1 and self.draw(st.integers(0, 3)) == 0
        kind = self.draw(st.sampled_from(TYPES_BY_BOTTOMS[count]))
        top = None if in_place or self.draw(st.booleans()) else f"b{len(self.steps)}"
        if name.startswith("out"):
            top = None  # the module's outputs are the names of its last layers
        self.steps.append(LayerStep(name, kind, bottoms, top, in_place))
        tops = self._read(bottoms) if in_place else [top or name]
        self.visible += [t for t in tops if t not in self.visible]
        self.prev = tops

    def add_use(self) -> None:
        module = self.draw(st.sampled_from(self.modules))
        instance = self.draw(INSTANCE_NAMES.filter(lambda n: n not in self.instances))
        self.instances.add(instance)
        bottoms = self.bottoms(len(module.inputs)) if len(module.inputs) == 1 else \
            tuple(self.draw(st.lists(st.sampled_from(self.visible), min_size=len(module.inputs),
                                     max_size=len(module.inputs))))
        named = self.draw(st.booleans())
        index = len(self.steps)
        tops = tuple(f"t{index}_{i}" for i in range(len(module.outputs))) if named else None
        self.steps.append(UseStep(module.name, instance, bottoms, tops))
        self.prev = list(tops) if named else [f"{instance}{SEPARATOR_PLACEHOLDER}{o}" for o in module.outputs]
        self.visible += self.prev

    def fill(self, length: int) -> None:
        for _ in range(length):
            if self.modules and self.draw(st.booleans()):
                self.add_use()
            else:
                self.add_layer()


# Names of default outputs depend on the document's separator, drawn last: steps hold this
# placeholder, replaced when the program is written out.
SEPARATOR_PLACEHOLDER = "\x00"


@st.composite
def programs(draw) -> Program:
    modules: list[Module] = []
    for index in range(draw(st.integers(1, 3))):
        inputs = tuple(f"in{i}" for i in range(draw(st.integers(1, 2))))
        body = _Body(draw, modules, list(inputs))
        body.fill(draw(st.integers(0, 3)))
        outputs = tuple(f"out{i}" for i in range(draw(st.integers(1, 2))))
        for output in outputs:
            body.add_layer(output)
        modules.append(Module(f"m{index}", inputs, outputs, tuple(body.steps)))
    top = _Body(draw, modules, ["data"])
    top.fill(draw(st.integers(1, 5)))
    separator = draw(st.sampled_from(["/", ".", "-"]))
    return Program(separator, tuple(modules), tuple(_settle(step, separator) for step in top.steps))


def _settle(step, separator: str):
    if step.bottoms is None:
        return step
    bottoms = tuple(b.replace(SEPARATOR_PLACEHOLDER, separator) for b in step.bottoms)
    return type(step)(**{**step.__dict__, "bottoms": bottoms})


def _settled_module(module: Module, separator: str) -> Module:
    return Module(module.name, module.inputs, module.outputs,
                  tuple(_settle(step, separator) for step in module.steps))


# -- writing the program as YAML ---------------------------------------------------------------

def _step_yaml(step) -> dict:
    if isinstance(step, UseStep):
        entry = {"use": step.module, "name": step.instance}
        if step.bottoms is not None:
            entry["bottom"] = list(step.bottoms)
        if step.tops is not None:
            entry["top"] = list(step.tops)
        return entry
    entry = {"name": step.name, "type": step.type}
    if step.bottoms is not None:
        entry["bottom"] = list(step.bottoms)
    if step.in_place:
        entry["in_place"] = True
    elif step.top is not None:
        entry["top"] = step.top
    return entry


def to_yaml(program: Program) -> str:
    """The program as config text: one flow mapping (JSON) per layer."""
    lines = ["caffeconf: 1", f"separator: {json.dumps(program.separator)}", "modules:"]
    for module in program.modules:
        module = _settled_module(module, program.separator)
        lines += [f"  {module.name}:", f"    inputs: {json.dumps(list(module.inputs))}",
                  f"    outputs: {json.dumps(list(module.outputs))}", "    layers:"]
        lines += [f"      - {json.dumps(_step_yaml(step))}" for step in module.steps]
    lines += ["layers:", '  - {"name": "data", "type": "Input", "top": "data", '
              '"input_param": {"shape": {"dim": [1, 4]}}}']
    lines += [f"  - {json.dumps(_step_yaml(step))}" for step in program.steps]
    return "\n".join(lines) + "\n"


# -- the reference inliner -------------------------------------------------------------------------

class Reference:
    """Expands a program by the format's rules into (name, type, bottoms, tops) rows."""

    def __init__(self, program: Program):
        self.separator = program.separator
        self.modules = {m.name: _settled_module(m, program.separator) for m in program.modules}
        self.rows: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []

    def expand(self, steps, prefix: str, blobs: dict[str, str], outputs: dict[str, str],
               prev: list[str] | None) -> dict[str, str]:
        def qualify(name: str) -> str:
            return f"{prefix}{self.separator}{name}" if prefix else name

        def top_blob(name: str) -> str:
            blobs[name] = blobs.get(name) or outputs.get(name) or qualify(name)
            return blobs[name]

        for step in steps:
            reads = list(step.bottoms) if step.bottoms is not None else list(prev)
            flat_bottoms = tuple(blobs[b] for b in reads)
            if isinstance(step, LayerStep):
                tops = reads if step.in_place else [step.top or step.name]
                self.rows.append((qualify(step.name), step.type, flat_bottoms, tuple(top_blob(t) for t in tops)))
                prev = tops
                continue
            module = self.modules[step.module]
            chosen = {o: top_blob(t) for o, t in zip(module.outputs, step.tops or ())}
            inner = self.expand(module.steps, qualify(step.instance), dict(zip(module.inputs, flat_bottoms)),
                                chosen, list(module.inputs) if len(module.inputs) == 1 else None)
            names = list(step.tops) if step.tops else [f"{step.instance}{self.separator}{o}" for o in module.outputs]
            for name, output in zip(names, module.outputs):
                blobs[name] = inner[output]
            prev = names
        return blobs


def reference_rows(program: Program) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    reference = Reference(program)
    reference.rows.append(("data", "Input", (), ("data",)))
    reference.expand(program.steps, "", {"data": "data"}, {}, ["data"])
    return reference.rows


def expected_count(program: Program) -> int:
    """Flat layers: the Input, plus each plain layer, plus each use's module expanded."""
    modules = {m.name: m for m in program.modules}

    def count(steps) -> int:
        return sum(1 if isinstance(s, LayerStep) else count(modules[s.module].steps) for s in steps)

    return 1 + count(program.steps)


# -- the properties -----------------------------------------------------------------------------

def _compile(program: Program, directory: Path):
    path = directory / "net.yaml"
    path.write_text(to_yaml(program), encoding="utf-8")
    result = compiler.build(path)
    assert result.ok, to_yaml(program) + render_text(result.diagnostics)
    return result.net


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs())
def test_random_module_graphs_inline_to_well_formed_nets(program, tmp_path):
    net = _compile(program, tmp_path)
    names = [layer.name for layer in net.layers]
    assert len(names) == len(set(names)), "layer names are unique"
    produced: set[str] = set()
    for layer in net.layers:
        missing = [b for b in layer.bottoms if b not in produced]
        assert not missing, f"{layer.summary()} reads blobs no earlier layer produced: {missing}"
        produced.update(layer.tops)
    assert len(net.layers) == expected_count(program)
    actual = [(layer.name, layer.type, layer.bottoms, layer.tops) for layer in net.layers]
    assert actual == reference_rows(program), to_yaml(program)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs())
def test_every_use_binds_its_inputs_and_outputs(program, tmp_path):
    """The layers of each top-level use read, from outside the use, only the blobs the caller
    bound to its inputs; and the blobs the caller names as its outputs are written inside it.
    (At top level a blob's name is its flat name.)"""
    net = _compile(program, tmp_path)
    modules = {m.name: m for m in program.modules}
    position, prev = 1, ["data"]  # after the Input layer
    for step in program.steps:
        reads = list(step.bottoms) if step.bottoms is not None else prev
        if isinstance(step, LayerStep):
            position += 1
            prev = reads if step.in_place else [step.top or step.name]
            continue
        module = modules[step.module]
        size = expected_count(Program(program.separator, program.modules, module.steps)) - 1
        inner = net.layers[position:position + size]
        assert all(layer.name.startswith(step.instance + program.separator) for layer in inner)
        written, read_from_outside = set(), set()
        for layer in inner:
            read_from_outside.update(b for b in layer.bottoms if b not in written)
            written.update(layer.tops)
        assert read_from_outside and read_from_outside <= set(reads)
        prev = list(step.tops) if step.tops else [f"{step.instance}{program.separator}{o}" for o in module.outputs]
        assert set(prev) <= written
        position += size
