"""The language server itself: LSP messages over stdio or TCP -> checks of the open nets,
published as diagnostics (debounced while typing), and the answers to hover, definition,
references, completion, outline and quick-fix requests.

Everything runs on the server's one event loop, in order, so a check never overlaps another
(the checks share caffeconf's registers of sources and of the dialect in force)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Iterator

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from ..limits import DEFAULT_LIMITS, Limits
from .checks import Checks, is_net, is_prototxt
from .convert import code_point_column, lsp_diagnostic, span_range
from .completion import completions, proto_completions
from .definition import definition, module_at, module_identity, module_uses, share_uses
from .documents import read_config
from .hover import hover_text, proto_hover_text
from .outline import did_you_mean_fix, outline, proto_outline
from .prototxt import ProtoPlace, proto_definition, proto_place

# Typing sends a change per keystroke; wait this long for a pause before checking.
DEBOUNCE_SECONDS = 0.05

def _version() -> str:
    """The installed caffeconf's version (read from its metadata: importing the package itself
    would reach the public API's runner)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("caffeconf")
    except PackageNotFoundError:
        return "unknown"


class CaffeconfServer(LanguageServer):
    """pygls' server with the open buffers' checks and the checks waiting for typing to pause."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__("caffeconf", _version())
        self.checks = Checks(limits)
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.debounce = DEBOUNCE_SECONDS

    def recheck(self, path: str) -> None:
        """Check every open net that `path` concerns and publish what changed."""
        self.pending.pop(path, None)
        touched: set[str] = set()
        if path in self.checks.buffers and not is_net(path, self.checks.buffers[path]):
            touched |= self.checks.forget(path)  # an edit took away what made it a config
        for root in self.checks.concerned(path):
            touched |= self.checks.check(root)
        self.publish(touched)

    def recheck_later(self, path: str) -> None:
        """`recheck` once no change to `path` has come for `debounce` seconds."""
        if (waiting := self.pending.pop(path, None)) is not None:
            waiting.cancel()
        self.pending[path] = asyncio.get_running_loop().call_later(self.debounce, self.recheck, path)

    def publish(self, paths: set[str]) -> None:
        for path in sorted(paths):
            diagnostics = [lsp_diagnostic(diag) for diag in self.checks.diagnostics(path)]
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(from_fs_path(path), diagnostics))


server = CaffeconfServer()


def _path(uri: str) -> str:
    return os.path.abspath(to_fs_path(uri) or uri)


# The files a net may read: configs, prototxt imports, a fork's caffe.proto.
WATCHED = "**/*.{yaml,yml,toml,prototxt,pbtxt,proto}"


@server.feature(types.INITIALIZED)
def _initialized(ls: CaffeconfServer, params: types.InitializedParams) -> None:
    # imports may reach outside a config's folder but not outside the current directory, and
    # `validate` runs in the project: so does the server
    if ls.workspace.root_path and os.path.isdir(ls.workspace.root_path):
        os.chdir(ls.workspace.root_path)
    watching = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
    if watching and watching.dynamic_registration:
        options = types.DidChangeWatchedFilesRegistrationOptions([types.FileSystemWatcher(WATCHED)])
        ls.client_register_capability(types.RegistrationParams([types.Registration(
            "caffeconf-watched-files", types.WORKSPACE_DID_CHANGE_WATCHED_FILES, options)]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _files_changed(ls: CaffeconfServer, params: types.DidChangeWatchedFilesParams) -> None:
    """A file changed on disk (saved by another program, a checkout): the open nets that read it
    are checked again (an open buffer itself is what the editor shows, not the disk)."""
    for change in params.changes:
        path = _path(change.uri)
        if path not in ls.checks.buffers:
            ls.recheck(path)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: CaffeconfServer, params: types.DidOpenTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    ls.checks.open(path, params.text_document.text)
    ls.recheck(path)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
async def _did_change(ls: CaffeconfServer, params: types.DidChangeTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    ls.checks.open(path, ls.workspace.get_text_document(params.text_document.uri).source)
    ls.recheck_later(path)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: CaffeconfServer, params: types.DidCloseTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if (waiting := ls.pending.pop(path, None)) is not None:
        waiting.cancel()
    ls.publish(ls.checks.close(path) | {path})
    ls.recheck(path)  # the nets that import it read it from disk again


@contextlib.contextmanager
def _config_at(ls: CaffeconfServer, params: types.TextDocumentPositionParams) -> Iterator[tuple | None]:
    """(the open config, the place at the position) read through the buffers, or None for a
    prototxt or a config that does not parse; the buffers stay in force inside the block."""
    with ls.checks.reading():
        config = read_config(_path(params.text_document.uri), ls.checks.limits)
        yield (config, config.place(*_place(ls, params))) if config else None


def _proto_at(ls: CaffeconfServer, params: types.TextDocumentPositionParams) -> tuple[str, ProtoPlace] | None:
    """(the open prototxt, what is at the position), or None for any other file."""
    path = _path(params.text_document.uri)
    if not is_prototxt(path) or path not in ls.checks.buffers:
        return None
    return path, proto_place(ls.checks.buffers[path], *_place(ls, params))


@server.feature(types.TEXT_DOCUMENT_HOVER)
def _hover(ls: CaffeconfServer, params: types.HoverParams) -> types.Hover | None:
    with _config_at(ls, params) as found:
        importers = ls.checks.importers(_path(params.text_document.uri))
        proto = _proto_at(ls, params)
        text = hover_text(*found, ls.checks.limits, importers) if found else \
            proto_hover_text(*proto, ls.checks.limits) if proto else None
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text)) if text else None


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: CaffeconfServer, params: types.DefinitionParams) -> types.Location | None:
    with _config_at(ls, params) as found:
        importers = ls.checks.importers(_path(params.text_document.uri))
        proto = _proto_at(ls, params)
        target = definition(*found, ls.checks.limits, importers) if found else \
            proto_definition(*proto, ls.checks.limits) if proto else None
        # the target's lines are read while the buffers are in force, for its UTF-16 columns
        return types.Location(from_fs_path(os.path.abspath(target.path)), span_range(target)) if target else None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def _references(ls: CaffeconfServer, params: types.ReferenceParams) -> list[types.Location]:
    """Every use of the module at the position, in each open config and the files it imports; on
    a `share:`, the uses sharing under that key."""
    with _config_at(ls, params) as found:
        module = module_at(*found) if found else None
        inside = found[1].within_entry() if found else None
        if inside and inside[1][:1] == ("share",):
            return [types.Location(params.text_document.uri, span_range(span)) for span in share_uses(found[0], inside[0])]
    if module is None:
        return []
    identity, spans = module_identity(module), {}
    for root, text in ls.checks.buffers.items():
        with ls.checks.reading():
            config = read_config(root, ls.checks.limits) if is_net(root, text) else None
            for span in module_uses(config, identity) if config else ():
                spans[span] = types.Location(from_fs_path(os.path.abspath(span.path)), span_range(span))
    if params.context.include_declaration:
        with ls.checks.reading():
            spans[module.span] = types.Location(from_fs_path(identity[0]), span_range(module.span))
    return list(spans.values())


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def _symbols(ls: CaffeconfServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    path = _path(params.text_document.uri)
    if is_prototxt(path) and path in ls.checks.buffers:
        return proto_outline(path, ls.checks.buffers[path])
    with ls.checks.reading():
        config = read_config(path, ls.checks.limits)
        return outline(config.root) if config else []


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
def _code_actions(ls: CaffeconfServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    document = ls.workspace.get_text_document(params.text_document.uri)
    return [fix for diagnostic in params.context.diagnostics
            if (fix := did_you_mean_fix(document.uri, document.text_in_client_range(diagnostic.range), diagnostic))]


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[" ", ":", "{", ","]))
def _completion(ls: CaffeconfServer, params: types.CompletionParams) -> list[types.CompletionItem]:
    path = _path(params.text_document.uri)
    if path not in ls.checks.buffers:
        return []
    if is_prototxt(path):
        return proto_completions(ls.checks.buffers[path], *_place(ls, params))
    return completions(ls.checks, path, *_place(ls, params))


def _place(ls: CaffeconfServer, params: types.TextDocumentPositionParams) -> tuple[int, int]:
    """The 1-based line and code point column of an LSP position; past the last line, the end of
    the document (as LSP reads a character past a line's end as that end)."""
    lines = ls.workspace.get_text_document(params.text_document.uri).source.split("\n")
    line = params.position.line
    if line >= len(lines):
        return len(lines), len(lines[-1]) + 1
    return line + 1, code_point_column(lines[line], params.position.character)


def serve(tcp_port: int | None = None, limits: Limits = DEFAULT_LIMITS, debounce_ms: int | None = None) -> None:
    server.checks.limits = limits
    if debounce_ms is not None:
        server.debounce = debounce_ms / 1000
    if tcp_port is None:
        server.start_io()
    else:
        server.start_tcp("127.0.0.1", tcp_port)

