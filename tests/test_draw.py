"""Drawings: golden DOT text, rendering through Graphviz, and the HTML page in headless Chromium.

Set CAFFECONF_UPDATE_GOLDEN=1 to rewrite the expected .dot files after a deliberate change.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from caffeconf.cli import main
from conftest import ROOT, model_files

HERE = ROOT / "tests" / "draw"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _relative_paths(monkeypatch):
    """Spans in the drawings (tooltips) are written relative to the repository."""
    monkeypatch.chdir(ROOT)


def draw(*args) -> int:
    return main(["draw", *map(str, args)])


@pytest.mark.parametrize("name, options", [
    ("tower_clusters", []),
    ("tower_depth1", ["--depth", "1", "--rankdir", "LR"]),
    ("tower_flat", ["--flat"]),
])
def test_golden_dot(tmp_path, name, options, golden):
    out = tmp_path / f"{name}.dot"
    assert draw("tests/draw/tower.yaml", "-o", out, *options) == 0
    golden(out.read_text(), HERE / f"{name}.dot")


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_renders_through_dot(tmp_path, suffix, magic):
    out = tmp_path / f"net{suffix}"
    assert draw("tests/draw/tower.yaml", "-o", out) == 0
    assert magic in out.read_bytes()[:400]


def test_unknown_output_kind_is_refused(tmp_path, capsys):
    assert draw("tests/draw/tower.yaml", "-o", tmp_path / "net.jpg") == 1
    assert capsys.readouterr().err == (
        f"error: cannot draw to '{tmp_path / 'net.jpg'}': the name must end in .svg, .png, .dot, .html\n")


def test_missing_dot_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert draw("tests/draw/tower.yaml", "-o", tmp_path / "net.svg") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: drawing .svg needs Graphviz's 'dot' program, which is not installed\n")
    assert not (tmp_path / "net.svg").exists()


@pytest.mark.parametrize("path", [p for p in model_files() if "solver" not in p.name],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_model_draws(tmp_path, path):
    out = tmp_path / "net.dot"
    assert draw(path, "-o", out, "--phase", "TRAIN") == 0
    text = out.read_text()
    assert text.startswith("digraph ") and text.rstrip().endswith("}")


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_draws_collapsed(tmp_path, config):
    out = tmp_path / "net.dot"
    assert draw(config, "-o", out, "--depth", "1", "--phase", "TEST") == 0
    assert "digraph" in out.read_text()


# ---------------------------------------------------------------- the HTML page in a browser

def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def element(dom: str, ident: str) -> str:
    """The opening tag of the element with this id."""
    match = re.search(rf'<g id="{re.escape(ident)}"[^>]*>', dom)
    assert match, f"no element {ident} in the page"
    return match.group(0)


@needs_dot
def test_html_page_is_self_contained(tmp_path):
    out = tmp_path / "net.html"
    assert draw("tests/draw/tower.yaml", "-o", out) == 0
    page = out.read_text()
    assert "<svg" in page and "<script>" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network


@needs_dot
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_html_page_expands_a_module_on_click(tmp_path):
    out = tmp_path / "net.html"
    assert draw("tests/draw/tower.yaml", "-o", out) == 0
    # Clusters: c1 = left (tower), c2 = left/unit, c3 = right, c4 = right/unit; all start collapsed.
    before = chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    assert 'data-state="collapsed"' in element(before, "c1")
    assert "display: none" in element(before, "l3")  # left/pool, inside the collapsed left tower
    # ?expand=c1 clicks the left tower's box once the page has loaded.
    after = chromium(tmp_path, "--dump-dom", out.as_uri() + "?expand=c1").stdout
    assert 'data-state="expanded"' in element(after, "c1")
    assert "display: none" not in element(after, "l3")  # left/pool is shown now
    assert 'data-state="collapsed"' in element(after, "c2")  # the nested unit stays collapsed
    assert "display: none" in element(after, "l1")
    assert "display: none" in element(after, "l6")  # right/pool: the other tower is untouched
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=800,600", out.as_uri() + "?expand=c1")
    assert shot.read_bytes()[:4] == b"\x89PNG"
