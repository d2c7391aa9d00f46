"""Caffe prototxt (V0, V1 or V2) → a flat caffeconf document that compiles back to the upgraded net.

read → check names → upgrade → document: each layer becomes one entry with its bottoms and
tops left implicit where the format's shortcuts give them back (an omitted `top` is the layer's
name, an omitted `bottom` the previous entry's single top, `in_place: true`). Floats are written
as the shortest decimal that reads back as the same float32; a literal `${` is escaped.
`factor` turns the flat layers into modules.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from ..caffe import messages, prototxt, serde
from ..caffe.facts import looks_like_solver, unknown_type_problem
from ..caffe.names import unknown_names
from ..caffe.netfile import net_file_from_bytes
from ..compile.compiler import build
from ..compile.verify import verify_net
from ..errors import SOURCES, CaffeconfError, Diagnostic, DiagnosticList, InternalError, Span
from ..ir import Layer, Net
from .config_text import to_toml, to_yaml
from .document import Imported, document, flat_entries, message_data
from .factor import factored_document
from .python_text import to_python

def read_net(path: str | Path) -> Imported:
    """The net at `path`, upgraded; every unknown field, enum value and layer type is reported.
    The file is read once and its text tokenized once."""
    source = str(path)
    data = prototxt.read_bytes(path)
    outline, text_lines = None, None
    if prototxt.looks_like_text(data):
        text = data.decode("utf-8")
        found = list(prototxt.tokens(text))
        outline, text_lines = prototxt.outline_tokens(found), len(text.splitlines())
        if looks_like_solver({field.name for field in outline.fields}):
            raise CaffeconfError.at(Span(source, 1, 1), _SOLVER_REFUSED)
        problems = [d for d in unknown_names(found, source, messages.descriptor("NetParameter"))
                    if d.severity == "error"]
        if problems:
            SOURCES.register(source, text)
            raise CaffeconfError(problems)
    elif isinstance(prototxt.empty_message_for(data, None), messages.SolverParameter):
        raise CaffeconfError.at(Span(source, 1, 1), _SOLVER_REFUSED)
    message = net_file_from_bytes(data, source, outline).message
    _check_types(message, source)
    # a binary net is measured by the text Caffe would write for it
    lines = text_lines if text_lines is not None else len(prototxt.net_to_text(message).splitlines())
    net_fields = message_data(message, skip=("layer", "name"))
    return Imported(message, tuple(_layer(layer) for layer in message.layer), net_fields, lines)


_SOLVER_REFUSED = "this is a solver (SolverParameter), not a net: import takes a NetParameter"


def _check_types(message: messages.NetParameter, source: str) -> None:
    """Layer types of a binary net (text ones were checked with their positions)."""
    problems = [Diagnostic(f"{problem[1]} (layer '{layer.name}')", Span(source, 1, 1), hint=problem[2])
                for layer in message.layer for problem in [unknown_type_problem(layer.type)]
                if problem and problem[0] == "error"]
    problems += [Diagnostic(f"layer {index} has no name: a caffeconf layer needs one", Span(source, 1, 1))
                 for index, layer in enumerate(message.layer) if not layer.name]
    if problems:
        raise CaffeconfError(problems)


def _layer(message: messages.LayerParameter) -> Layer:
    fields = message_data(message, skip=("name", "type", "bottom", "top"))
    return Layer(message.name, message.type, tuple(message.bottom), tuple(message.top), fields)


# ---------------------------------------------------------------------------
# The whole import, checked


@dataclass(frozen=True)
class ImportResult:
    text: str
    prototxt_lines: int
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def config_lines(self) -> int:
        return len(self.text.splitlines())

    def summary(self) -> str:
        saved = self.prototxt_lines - self.config_lines
        ratio = self.prototxt_lines / max(self.config_lines, 1)
        return (f"{self.config_lines} config lines for {self.prototxt_lines} prototxt lines: "
                f"{saved} saved ({ratio:.1f}x shorter)")


def import_config(path: str | Path, modules: bool = False, as_toml: bool = False) -> ImportResult:
    """The config text for the net at `path`, checked to compile back to the upgraded net.

    A net that caffeconf's own checks refuse (they are stricter than Caffe in places) cannot
    be compiled to check it: it is imported flat, unchecked, with the problems as warnings."""
    imported = read_net(path)
    render = to_toml if as_toml else to_yaml
    header = f"# Imported from {Path(path).name} by `caffeconf import`.\n"
    refused = verify_problems(serde.net_from_proto(imported.message))
    warnings = [f"caffeconf's checks refuse the net itself, so the import is flat and unchecked: {problem}"
                for problem in refused]
    text = None
    if modules and not refused:
        text, dropped = factored_document(imported, lambda doc: render(doc, header),
                                          lambda candidate: compiles_to(candidate, as_toml, imported.message))
        warnings += dropped
    if text is None:
        text = render(document(imported, flat_entries(imported.layers)), header)
        if not refused and not compiles_to(text, as_toml, imported.message):
            _refuse_what_caffeconf_refuses(path, text, as_toml)
            raise InternalError(f"the flat import of {path} does not compile back to the same net")
    notes = ("no repeated blocks found: the config is flat",) if modules and "\nmodules:" not in text \
        and "\n[modules." not in text and not refused else ()
    return ImportResult(text, imported.source_lines, tuple(warnings), notes)


def import_python(path: str | Path) -> ImportResult:
    """The net at `path` as a Python script that builds it with `caffeconf.netspec`, one call a layer."""
    imported = read_net(path)
    return ImportResult(to_python(imported, Path(path).name), imported.source_lines)


def compiles_to(text: str, as_toml: bool, message: messages.NetParameter) -> bool:
    """Whether config `text` compiles, without errors, to exactly `message`."""
    result = _built(text, as_toml)
    return result.ok and serde.net_to_proto(result.net) == message


def _built(text: str, as_toml: bool):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("net.toml" if as_toml else "net.yaml")
        path.write_text(text, encoding="utf-8")
        return build(path)


def _refuse_what_caffeconf_refuses(path: str | Path, text: str, as_toml: bool) -> None:
    """A net whose faithful config caffeconf's field checks refuse (a shape of 40 dims, which Caffe
    too refuses at set-up) is an error in the net, said in words, not an internal one."""
    errors = [d.message for d in _built(text, as_toml).diagnostics if d.severity == "error"]
    if errors:
        raise CaffeconfError.at(None, f"{path}: cannot import this net: {errors[0]}")


def verify_problems(net: Net) -> list[str]:
    """What `caffeconf compile`'s per-state verifier says of `net`, each message once."""
    diags = DiagnosticList()
    verify_net(net, diags)
    return sorted({d.message for d in diags.items if d.severity == "error"})
