"""The HTML view in a real browser: headless Chromium driven over the DevTools protocol.

A screenshot of GoogLeNet's view at depth 1 is kept in $CAFFECONF_ARTIFACTS (default
tests/artifacts/, ignored by git).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from caffeconf.cli import main
from conftest import ROOT, model_files

websocket = pytest.importorskip("websocket", reason="needs websocket-client (the test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
ARTIFACTS = Path(os.environ.get("CAFFECONF_ARTIFACTS", ROOT / "tests" / "artifacts"))


class Page:
    """One tab: evaluate JavaScript, collect console errors and exceptions."""

    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=60)
        self.next_id, self.errors = 0, []
        self.call("Runtime.enable")
        self.call("Log.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(message["params"]["exceptionDetails"].get("text"))
            if message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.errors.append(str(message["params"]["args"]))
            if message.get("method") == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
                self.errors.append(message["params"]["entry"]["text"])
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")


@pytest.fixture
def browser(tmp_path):
    profile = tmp_path / "profile"
    process = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                "--window-size=1280,900", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and len(port_file.read_text().split()) == 2:
            break
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
    yield page
    page.socket.close()
    process.terminate()
    process.wait(timeout=30)


def open_view(page: Page, tmp_path: Path, config: str, *options: str) -> None:
    out = tmp_path / "view.html"
    assert main(["draw", config, *options, "-o", str(out)]) == 0
    page.call("Page.enable")
    page.call("Page.navigate", url=out.as_uri())
    for _ in range(300):
        if page.js("typeof window.caffeconfView === 'object'"):
            break
        time.sleep(0.1)
    page.js("window.caffeconfView.ready.then(() => true)")


def size(page: Page, ident: str) -> tuple[float, float]:
    return tuple(page.js(f"(() => {{ const b = document.getElementById({json.dumps(ident)}).getBBox();"
                         " return [b.width, b.height]; })()"))


def test_googlenet_view_opens_collapsed_opens_searches_and_details(browser, tmp_path):
    open_view(browser, tmp_path, "configs/googlenet.yaml", "--stage", "deploy")
    layer_box = size(browser, browser.js("document.querySelector('g.node.layer').id"))
    module_ids = browser.js("[...document.querySelectorAll('g.node.module')].map(g => g.id)")
    assert len(module_ids) >= 9  # the inceptions, each one node at depth 1
    for ident in module_ids:
        width, height = size(browser, ident)
        assert width <= 2 * layer_box[0] and height <= 2 * layer_box[1], (ident, (width, height), layer_box)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = browser.call("Page.captureScreenshot", format="png")["data"]
    (ARTIFACTS / "googlenet_depth1.png").write_bytes(base64.b64decode(shot))

    # Opening a module lays the drawing out again with its layers inside a cluster.
    use = browser.js("window.caffeconfView.useId('inception_3a')")
    assert use >= 0
    browser.js(f"document.getElementById('m{use}').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))")
    assert browser.js(f"!!document.getElementById('c{use}') && !document.getElementById('m{use}')")
    inner = browser.js(f"document.querySelectorAll('#c{use}').length")
    assert inner == 1
    # Search reveals a layer deep inside a closed module, highlights it and shows its details.
    browser.js("window.caffeconfView.search('inception_4e/5x5')")
    assert browser.js("document.querySelector('g.hit').id.startsWith('l')")
    details = browser.js("document.getElementById('details').textContent")
    assert "inception_4e/5x5" in details and "Convolution" in details and "MACs" in details
    assert "configs/googlenet.yaml:" in details
    # Closing the module again puts back one node.
    browser.js(f"document.getElementById('c{use}').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))")
    assert browser.js(f"!!document.getElementById('m{use}')")
    assert browser.errors == []


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_config_opens_with_compact_modules(browser, tmp_path, config):
    open_view(browser, tmp_path, str(config), "--phase", "TEST")
    layers = browser.js("[...document.querySelectorAll('g.node.layer')].map(g => g.id)")
    modules = browser.js("[...document.querySelectorAll('g.node.module')].map(g => g.id)")
    assert layers or modules
    if layers:
        tallest = max(size(browser, ident)[1] for ident in layers)
        widest = max(size(browser, ident)[0] for ident in layers)
        for ident in modules:
            width, height = size(browser, ident)
            assert width <= 2 * widest and height <= 2 * tallest, (ident, width, height)
    assert browser.errors == []


@pytest.mark.parametrize("path", [p for p in model_files() if "deploy" in p.name],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_deploy_net_opens(browser, tmp_path, path):
    open_view(browser, tmp_path, str(path))
    shown = browser.js("document.querySelectorAll('g.node.layer').length")
    # A prototxt has no modules: every layer of the flat net is a node.
    assert shown == browser.js("JSON.parse(document.getElementById('net-data').textContent).layers.length") > 0
    assert browser.errors == []
