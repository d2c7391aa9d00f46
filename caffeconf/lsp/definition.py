"""A position in an open config -> where the thing there is defined: a `use:` -> its module
(also in an imported file), a bottom -> the layer that produces that blob, an import -> its file;
and a module -> every use of it, in the open configs and the files they import."""

from __future__ import annotations

import os

from ..compile.library import unit_key
from ..compile.load import compile_config
from ..compile.syntax import ModuleDecl
from ..compile.tree import Map, Scalar
from ..errors import Span
from ..limits import Limits
from .documents import Config, written_by
from .places import Place


def definition(config: Config, place: Place, limits: Limits, importers: tuple[str, ...] = ()) -> Span | None:
    """Where what is at `place` is defined; `importers` are the open configs importing this file,
    whose nets hold the instances of its modules."""
    if len(place.keys) == 2 and place.keys[0] == "imports" and isinstance(place.node, Scalar):
        return Span(os.path.join(os.path.dirname(config.document.path), str(place.node.value)), 1, 1)
    inside = place.within_entry()
    if inside is None:
        return None
    entry, keys = inside
    if keys[:1] == ("use",):
        module = config.entry_module(place)
        return module.span if module else None
    if keys[:1] == ("with",) and len(keys) == 2:
        module = config.entry_module(place)
        decl = module.params.get(keys[1]) if module else None
        return decl.span if decl else None
    if keys[:1] == ("share",):
        others = [span for span in share_uses(config, entry) if span != entry.span]
        return others[0] if others else None
    if keys[:1] == ("bottom",) and not place.on_key and "use" not in entry:
        return producer([config.document.path, *importers], entry, keys[1] if len(keys) > 1 else 0, limits)
    return None


def producer(roots: list[str], entry: Map, index: int, limits: Limits) -> Span | None:
    """Where the layer is written that produces bottom `index` of the first flat layer `entry`
    wrote (in the first net of `roots` that has one): the last earlier layer with that blob among
    its tops."""
    for root in roots:
        result = compile_config(root, limits)
        layers = result.net.layers if result.ok else ()
        at = next((i for i, layer in enumerate(layers) if written_by(layer, entry.span)), None)
        if at is not None:
            break
    else:
        return None
    if index >= len(layers[at].bottoms):
        return None
    blob = layers[at].bottoms[index]
    found = next((layer for layer in reversed(layers[:at]) if blob in layer.tops), None)
    return found.origin.span if found and found.origin else None


def module_at(config: Config, place: Place) -> ModuleDecl | None:
    """The module named at `place`: its declaration's key under `modules:`, or a `use:` of it."""
    if len(place.keys) == 2 and place.keys[0] == "modules" and place.on_key:
        return config.document.modules.get(place.keys[1])
    inside = place.within_entry()
    return config.entry_module(place) if inside and inside[1][:1] == ("use",) else None


def module_identity(module: ModuleDecl) -> tuple[str, str]:
    return os.path.abspath(module.path), module.name


def module_uses(config: Config, identity: tuple[str, str]) -> list[Span]:
    """Where the module `identity` is used (the `use:` values) in `config` and its imports."""
    found = []
    root = unit_key(config.document.path)
    for key, unit in config.library.units.items():
        entries = [entry for module in unit.modules.values() for entry in module.layers]
        entries += list(config.document.layers) if key == root else []
        for entry in entries:
            use = entry.get("use")
            target = config.library.lookup(use.value, key) if isinstance(use, Scalar) and isinstance(use.value, str) \
                else None
            if target is not None and module_identity(target) == identity:
                found.append(use.span)
    return found


def share_key(entry: Map) -> str | None:
    """The key a use shares its learned blobs under: `share: KEY` or `share: {key: KEY, ...}`."""
    share = entry.get("share")
    key = share.get("key") if isinstance(share, Map) else share
    return str(key.value) if isinstance(key, Scalar) and key.value is not None else None


def share_uses(config: Config, entry: Map) -> list[Span]:
    """Where the uses that share under the same key as `entry` are written, in its file."""
    key = share_key(entry)
    entries = list(config.document.layers) + [e for module in config.document.modules.values() for e in module.layers]
    return [other.span for other in entries if key is not None and share_key(other) == key]
