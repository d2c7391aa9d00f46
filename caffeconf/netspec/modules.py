"""A config's modules -> Python functions: `lib = modules("configs/googlenet.yaml")`, then
`lib.inception(x, name="inception_3a", n1x1=64, ...)` expands the module into `x`'s net exactly
as `{use: inception, name: inception_3a, with: {...}}` would, its parameters checked as typed."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Sequence

from ..api.caller import caller_span
from ..caffe.dialect import current, use
from ..compile.compiler import parse_config
from ..compile.library import located, unit_key
from ..compile.syntax import ModuleDecl
from ..errors import CaffeconfError, DiagnosticList, did_you_mean
from ..limits import DEFAULT_LIMITS
from .builder import Builder, Top


class Modules:
    """The modules a config declares or imports, as callables (`lib.name`, or `lib["ns.name"]` for
    an imported one). `stage` selects the config's variants (`stage="deploy"`), which its modules
    may read (`${deploy}`)."""

    def __init__(self, path: str | os.PathLike, stage: str | Sequence[str] | None = None):
        span = caller_span()
        diags = DiagnosticList()
        self._path = os.fspath(path)
        with use(None):
            self._document, self._library = parse_config(self._path, DEFAULT_LIMITS, diags)
            diags.raise_if_errors()
            if not current().is_bvlc:
                raise CaffeconfError.at(span, f"{self._path} is for {current().name} (`caffe_proto:`): "
                                              "netspec builds nets for BVLC's caffe.proto only")
        self._unit = unit_key(self._document.path)
        selected = frozenset([stage] if isinstance(stage, str) else stage or ())
        declared = self._document.variants
        for unknown in sorted(selected - set(declared)):
            raise CaffeconfError.at(span, f"stage '{unknown}': {self._path} declares no such variant "
                                          f"(variants: {', '.join(declared) or 'none'})",
                                    hint=did_you_mean(unknown, declared))
        self._selected = selected
        self._globals = {name: name in selected for name in declared}

    def __getattr__(self, name: str) -> "Module":
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> "Module":
        decl = self._library.lookup(name, self._unit)
        if decl is None:
            visible = self._library.visible(self._unit)
            raise CaffeconfError.at(caller_span(), f"{self._path} has no module '{name}'",
                                    hint=did_you_mean(name, visible) or f"its modules: {', '.join(visible) or 'none'}")
        return Module(self, name, decl)

    def __dir__(self) -> list[str]:
        return [name for name in self._library.visible(self._unit) if "." not in name]

    def __repr__(self) -> str:
        return f"<modules of {self._path}: {', '.join(self._library.visible(self._unit))}>"

    @contextlib.contextmanager
    def variants_in(self, builder: Builder) -> Iterator[None]:
        """While one of these modules expands, `${deploy}` and the rules see this config's variants."""
        resolver = builder.resolver
        saved = resolver.globals, resolver.variants, resolver.selected
        resolver.globals, resolver.variants = self._globals, frozenset(self._document.variants)
        resolver.selected = self._selected
        try:
            yield
        finally:
            resolver.globals, resolver.variants, resolver.selected = saved

    def namespace_in(self, builder: Builder) -> str:
        """The name under which `builder`'s net imports this config (made the first time)."""
        if id(self) not in builder.namespaces:
            alias = f"_modules{len(builder.namespaces)}"
            builder.namespaces[id(self)] = alias
            builder.library.units.update(self._library.units)
            builder.library.units[builder.scope.unit].imports[alias] = self._unit
        return builder.namespaces[id(self)]


class Module:
    """One module as a function: `module(*bottoms, name=INSTANCE, top=None, **params)` returns its
    output Top (a tuple for several, None for none); `bottoms` bind its inputs in order (None
    binds one to null)."""

    def __init__(self, modules: Modules, name: str, decl: ModuleDecl):
        self.modules, self.name, self.decl = modules, name, decl
        params = ", ".join(f"{p.name}: {p.type_text}" for p in decl.params.values())
        ports = ", ".join(p.name for p in decl.inputs)
        self.__doc__ = f"{name}({ports}, *, name, {params})" + (f"\n\n{decl.doc}" if decl.doc else "")

    def __repr__(self) -> str:
        return f"<module {self.name!r} of {self.modules._path}>"

    def __call__(self, *bottoms, name: str | None = None, top: Sequence[str] | str | None = None,
                 **params: Any) -> Top | tuple[Top, ...] | None:
        span = caller_span()
        builder = _builder_of(bottoms, self.name, span)
        if name is None:
            raise CaffeconfError.at(span, f"a use of module '{self.name}' needs name= (the instance name)")
        data: dict[str, Any] = {"use": f"{self.modules.namespace_in(builder)}.{self.name}", "name": name}
        if params:
            data["with"] = params
        data["bottom"] = [None if b is None else builder.bottom_name(b, span) for b in bottoms]
        if top is not None:
            data["top"] = top
        entry = located(data, span)
        with self.modules.variants_in(builder):
            outputs = builder.step(lambda: builder.resolver.expand_use(entry, builder.scope, None))
        tops = tuple(Top(None, index, output, builder) for index, output in enumerate(outputs or ()))
        for found in tops:
            builder.blobs.setdefault(found.name, found)
        return tops[0] if len(tops) == 1 else (tops or None)


def _builder_of(bottoms: tuple, module: str, span) -> Builder:
    """The net a use goes into: the one its bottoms belong to."""
    nets = {id(b.net): b.net for b in bottoms if isinstance(b, Top) and b.net is not None}
    if len(nets) > 1:
        raise CaffeconfError.at(span, f"the bottoms of this use of module '{module}' belong to different nets")
    if not nets:
        raise CaffeconfError.at(span, f"this use of module '{module}' has no bottom of a net to go into",
                                hint="pass a blob of the net (n.data, or what a layer assigned to it returned)")
    return next(iter(nets.values()))


def modules(path: str | os.PathLike, stage: str | Sequence[str] | None = None) -> Modules:
    """The modules of the config at `path` as callables (see `Modules`)."""
    return Modules(path, stage)
