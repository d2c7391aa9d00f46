"""A minimal Language Server Protocol client over stdio, enough to drive yaml-language-server and
`caffeconf lsp`.

JSON-RPC messages are framed with a `Content-Length` header. A reader thread
files every message the server sends: responses by request id, notifications
in a list that waits can poll, and requests from the server (configuration,
capability registration, progress) are answered at once so it never stalls.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER = HERE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


class LspError(Exception):
    pass


class LanguageServer:
    """One server process; `request` waits for the reply, `notify` does not."""

    def __init__(self, command: list[str], settings: dict[str, Any], **popen: Any):
        self.settings = settings
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=popen.pop("stderr", subprocess.DEVNULL), **popen)
        self.next_id = 0
        self.responses: dict[int, dict] = {}
        self.notifications: list[dict] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    # -- framing --------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                return  # the server exited
            self._dispatch(json.loads(stream.read(length)))

    def _dispatch(self, message: dict) -> None:
        if "method" in message and "id" in message:
            self._send({"id": message["id"], "result": self._answer(message)})
            return
        with self.changed:
            if "id" in message:
                self.responses[message["id"]] = message
            else:
                self.notifications.append(message)
            self.changed.notify_all()

    def _answer(self, request: dict) -> Any:
        """Replies to the server's own requests: settings by section, null for the rest."""
        if request["method"] == "workspace/configuration":
            return [self.settings.get(item.get("section", ""), None) for item in request["params"]["items"]]
        return None

    # -- calls ------------------------------------------------------------------------------------

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 10.0) -> Any:
        self.next_id += 1
        request_id = self.next_id
        self._send({"id": request_id, "method": method, "params": params})
        with self.changed:
            if not self.changed.wait_for(lambda: request_id in self.responses, timeout):
                raise LspError(f"no reply to {method} within {timeout} s")
            reply = self.responses.pop(request_id)
        if "error" in reply:
            raise LspError(f"{method} failed: {reply['error']}")
        return reply.get("result")

    def settle(self) -> None:
        """Wait until the server has handled everything sent so far: it answers requests in order,
        so once a reply (here, to a method no server has) comes, every notification before it is in."""
        try:
            self.request("caffeconf-tests/settle", None)
        except LspError as error:
            if "-32601" not in str(error) and "not found" not in str(error).lower():
                raise

    def published(self) -> dict[str, list[dict]]:
        """The latest diagnostics published for each document, taken from the notifications."""
        with self.changed:
            found = {n["params"]["uri"]: n["params"]["diagnostics"] for n in self.notifications
                     if n["method"] == "textDocument/publishDiagnostics"}
            self.notifications.clear()
        return found

    def wait_for_notification(self, method: str, match: Any, timeout: float = 10.0) -> dict:
        """The first notification `method` whose params satisfy `match` (a predicate)."""
        def found() -> dict | None:
            return next((n for n in self.notifications if n["method"] == method and match(n["params"])), None)

        with self.changed:
            if not self.changed.wait_for(lambda: found() is not None, timeout):
                raise LspError(f"no {method} notification within {timeout} s")
            message = found()
            self.notifications.remove(message)
        return message["params"]

    def initialize(self, root: Path) -> dict:
        """Initialise the server for the workspace `root`; returns the capabilities it advertises."""
        reply = self.request("initialize", {
            "processId": None,
            "rootUri": root.as_uri(),
            "capabilities": {
                "workspace": {"configuration": True},
                "textDocument": {
                    "completion": {"completionItem": {"documentationFormat": ["markdown", "plaintext"]}},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "publishDiagnostics": {},
                },
            },
        }, timeout=30.0)
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings})
        return reply["capabilities"]

    def open(self, uri: str, text: str, language: str = "yaml") -> None:
        self.notify("textDocument/didOpen", {
            "textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}})

    def diagnostics(self, uri: str, timeout: float = 10.0) -> list[dict]:
        return self.wait_for_notification("textDocument/publishDiagnostics",
                                          lambda params: params["uri"] == uri, timeout)["diagnostics"]

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=5.0)
            self.notify("exit", None)
            self.process.wait(timeout=5.0)
        except (LspError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
