"""One module use, in the caller's scope -> the module, its ports for this instance, the caller's
blobs bound to them, the use's rules, and afterwards the caller's names for its outputs (or, for
a use that failed, the names it would have made, poisoned)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import Note, closest, did_you_mean
from .check import unknown_module
from .entries import Scope, bottoms
from .fields import layer_message
from .library import Library
from .rules import RuleSet
from .syntax import INSTANCE, ModuleDecl, ModuleUse, Port
from .tree import Map
from .values import Env, Evaluator

RULE_KINDS = ("include", "exclude")


def module_for(evaluator: Evaluator, entry: ModuleUse, scope: Scope, library: Library) -> ModuleDecl | None:
    node = entry.use
    name = evaluator.text(node, "`use`", scope.values)
    if name is None:
        return None
    module = library.lookup(name, scope.unit)
    if module is None:
        unknown_module(evaluator.diags, node.span, name, library, scope.unit)
    return module


def likely_module(evaluator: Evaluator, entry: ModuleUse, scope: Scope, library: Library) -> ModuleDecl | None:
    """The module an unknown `use:` most likely misspells, to tell what the use would have made."""
    written = evaluator.quiet_names(entry.use, scope.values)
    guess = closest(written[0], library.visible(scope.unit)) if written else None
    return library.lookup(guess, scope.unit) if guess else None


def instance_ports(evaluator: Evaluator, ports: tuple[Port, ...], values: dict[str, Any]) -> tuple[Port, ...] | None:
    """The module's ports with `${...}` names evaluated in the instance's own environment."""
    evaluated = []
    for port in ports:
        name = evaluator.text(port.node, "a port name", values)
        if name is None:
            return None
        evaluated.append(Port(name, port.span, port.node))
    return tuple(evaluated)


def bind_ports(evaluator: Evaluator, entry: ModuleUse, key: str, ports: tuple[Port, ...], module: ModuleDecl,
               prev: list[str] | None, env: Env) -> list[str] | None:
    """Caller blob names for the module's inputs (`bottom`) or outputs (`top`), in port order."""
    node = entry.bottom if key == "bottom" else entry.top
    if node is None:
        if key == "top":
            return None
        if len(ports) > 1:
            evaluator.diags.error(entry.span, f"module '{module.name}' has {len(ports)} inputs "
                                  f"({', '.join(p.name for p in ports)}): write `bottom:` to bind them",
                                  notes=[Note(f"inputs of '{module.name}' declared here", ports[0].span)])
            return None
        return bottoms(evaluator, entry, prev, not ports, "module use", env)
    if isinstance(node, Map):
        return _ports_by_name(evaluator, node, key, ports, module, env)
    names = evaluator.names(node, f"`{key}`", env, allow_null=key == "bottom")
    if names is not None and len(names) != len(ports):
        _count_mismatch(evaluator, node, key, ports, module, len(names))
        return None
    return names


def _count_mismatch(evaluator: Evaluator, node, key: str, ports: tuple[Port, ...], module: ModuleDecl,
                    count: int) -> None:
    what = "inputs" if key == "bottom" else "outputs"
    given = f"{count} {key}{'' if count == 1 else 's'} {'is' if count == 1 else 'are'}"
    evaluator.diags.error(node.span, f"module '{module.name}' has {len(ports)} {what[:-1] if len(ports) == 1 else what} "
                          f"({', '.join(p.name for p in ports) or 'none'}) but {given} given",
                          notes=[Note(f"{what} of '{module.name}' declared here",
                                      ports[0].span if ports else module.span)])


def _ports_by_name(evaluator: Evaluator, node: Map, key: str, ports: tuple[Port, ...], module: ModuleDecl,
                   env: Env) -> list[str] | None:
    known = {port.name for port in ports}
    ok = True
    for name in node.values:
        if name not in known:
            ok = False
            evaluator.diags.error(node.keys[name], f"module '{module.name}' has no "
                                  f"{'input' if key == 'bottom' else 'output'} '{name}'",
                                  hint=did_you_mean(name, known))
    missing = [port.name for port in ports if port.name not in node.values]
    if missing and ok:  # else a misspelt name is the mistake, and the port it meant is missing
        ok = False
        evaluator.diags.error(node.span, f"`{key}` binds no blob to {', '.join(missing)} of module '{module.name}'")
    if not ok:
        return None
    names = [evaluator.text(node.values[port.name], f"`{key}.{port.name}`", env) for port in ports]
    return None if None in names else names  # type: ignore[return-value]


def use_rules(evaluator: Evaluator, entry: ModuleUse, env: Env) -> tuple[RuleSet, ...]:
    """The use's own include/exclude rules, which apply to every layer inside it."""
    found = {kind: evaluator.fields(env).field(node, layer_message().fields_by_name[kind], kind)
             for kind, node in zip(RULE_KINDS, (entry.include, entry.exclude)) if node is not None}
    return tuple(RuleSet(kind, tuple(rules)) for kind, rules in found.items() if rules)


def collect_outputs(evaluator: Evaluator, module: ModuleDecl, outputs: tuple[Port, ...], callee: Scope,
                    scope: Scope, instance: str, written_tops: list[str] | None, entry: ModuleUse) -> list[str] | None:
    """Caller names for the outputs: its tops, else `<instance>/<output>` (the bare output name
    for a module with `qualify: false`, whose names are the caller's)."""
    names = written_tops or [f"{instance}{scope.separator}{port.name}" if module.qualify else port.name
                             for port in outputs]
    for port, name in zip(outputs, names):
        flat = callee.blobs.get(port.name)
        if flat is None and callee.is_poisoned(port.name):
            return None  # its producer failed, with its own error
        if flat is None:
            written = callee.layer_tops.get(port.name)
            hint = (f"'{port.name}' is a layer that writes {', '.join(repr(t) for t in written)}: "
                    f"name that blob as the output" if written else did_you_mean(port.name, callee.blobs))
            evaluator.diags.error(port.span, f"output '{port.name}' of module '{module.name}' is never produced "
                                  "by its layers", hint=hint)  # the use is noted as for any error in its body
            return None
        scope.blobs[name] = flat
    return list(names)


def use_outputs(evaluator: Evaluator, entry: ModuleUse, scope: Scope, module: ModuleDecl | None, instance: str | None,
                ports: tuple[Port, ...] | None = None) -> list[str]:
    """The caller's names for a use's outputs as far as they can be told without new errors:
    its `top:`, else `<instance>/<output>` (for an unknown module, the instance name), the
    output names as the instance's parameters make them (`ports`) when it got that far."""
    written = evaluator.quiet_names(entry.top, scope.values)
    if written or instance is None:
        return written
    if module is None:
        return [instance]
    return [f"{instance}{scope.separator}{port.name}" if module.qualify else port.name
            for port in ports or module.outputs]


def poison_use(evaluator: Evaluator, library: Library, entry: ModuleUse, scope: Scope, module: ModuleDecl | None,
               instance: str | None, outputs: list[str]) -> list[str] | None:
    """Poison what a use that failed before its parameters were bound would produce: for an
    unknown module, every `<instance>/...` and the outputs of the module it likely misspells;
    for a module with `qualify: false`, its output names are templates (`res${id}`), matched as
    such; a use without a name may have made any of its module's outputs under any name."""
    if module is None and instance is not None:
        scope.poisoned.add(f"{instance}{scope.separator}")
        module = likely_module(evaluator, entry, scope, library)
    if module is None:
        return scope.poison(outputs)
    # without an instance name, `${instance}` and `<instance>/` match any name
    ports = [pattern for port in module.outputs for pattern in
             evaluator.name_patterns(port.node, {INSTANCE: instance} if instance is not None else {})]
    if not module.qualify:
        scope.poison_matching(ports)
    elif instance is None:
        scope.poison_matching([f".*{re.escape(scope.separator)}{port}" for port in ports])
    return scope.poison(outputs)
