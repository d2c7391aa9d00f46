"""Configs that compile but deserve a warning: each `tests/warnings/<name>.yaml` with its exact text."""

from __future__ import annotations


import pytest

from caffeconf.compile.compiler import build
from caffeconf.errors import render_text

from conftest import ROOT

WARNINGS = ROOT / "tests" / "warnings"
CASES = sorted(p.stem for p in WARNINGS.glob("*.yaml"))


@pytest.mark.parametrize("name", CASES)
def test_warning_golden(name, monkeypatch, golden):
    monkeypatch.chdir(ROOT)
    result = build(f"tests/warnings/{name}.yaml")
    assert result.ok, "a warning case must still compile"
    rendered = render_text(result.diagnostics)
    assert "warning:" in rendered
    golden(rendered, WARNINGS / f"{name}.expected")
