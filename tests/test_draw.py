"""Drawings: golden DOT text, rendering through Graphviz, and the HTML page in headless Chromium.

Set CAFFECONF_UPDATE_GOLDEN=1 to rewrite the expected .dot files after a deliberate change.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from caffeconf.cli import main
from conftest import ROOT, model_files

HERE = ROOT / "tests" / "draw"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


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
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_renders_through_dot(tmp_path, suffix, magic):
    out = tmp_path / f"net{suffix}"
    assert draw("tests/draw/tower.yaml", "-o", out) == 0
    assert magic in out.read_bytes()[:400]


def test_unknown_output_kind_is_refused(tmp_path, capsys):
    assert draw("tests/draw/tower.yaml", "-o", tmp_path / "net.jpg") == 1
    assert capsys.readouterr().err == (
        f"error: cannot draw to '{tmp_path / 'net.jpg'}': the name must end in .svg, .png, .pdf, .dot, .html\n"
        "  hint: or give --format\n")


def test_draw_to_stdout_writes_dot_or_the_format_given(tmp_path, capfdbinary):
    assert draw("tests/draw/tower.yaml", "-o", "-") == 0
    written = capfdbinary.readouterr().out
    assert written == (HERE / "tower_clusters.dot").read_bytes()
    assert draw("tests/draw/tower.yaml", "-o", "-", "--format", "html") == 0
    assert capfdbinary.readouterr().out.startswith(b"<!DOCTYPE html>")


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


# ---------------------------------------------------------------- the HTML view

def test_html_page_is_self_contained(tmp_path):
    out = tmp_path / "net.html"
    assert draw("tests/draw/tower.yaml", "-o", out) == 0
    page = out.read_text()
    assert "Viz.instance" in page and 'id="net-data"' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network


def test_view_writes_the_page_and_prints_its_path_without_a_browser(tmp_path, capsys):
    out = tmp_path / "tower.html"
    assert main(["view", "tests/draw/tower.yaml", "-o", str(out), "--no-browser"]) == 0
    assert capsys.readouterr().out == f"{out}\n"
    assert 'id="net-data"' in out.read_text()


def test_a_dot_that_runs_too_long_is_stopped_with_a_clear_error(tmp_path, capsys, monkeypatch):
    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(slow))
    started = time.monotonic()
    assert draw("tests/draw/tower.yaml", "-o", tmp_path / "net.svg", "--dot-timeout", "0.5") == 1
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert err.startswith("error: Graphviz 'dot' did not lay out the net within 0.5 s: stopped\n"
                          "  hint: draw fewer boxes (--depth K), write .html or .dot, or allow more time")
    assert not (tmp_path / "net.svg").exists()


def test_a_dot_timeout_must_be_positive(tmp_path, capsys):
    assert draw("tests/draw/tower.yaml", "-o", tmp_path / "net.svg", "--dot-timeout", "0") == 1
    assert capsys.readouterr().err == "error: --dot-timeout must be positive, got 0\n"
