"""Nets BVLC Caffe's Net::Init accepts: each tests/accepted/NAME.yaml must validate with no
diagnostic at all (no error, no warning)."""

from __future__ import annotations

import pytest

from caffeconf import cli
from conftest import ROOT

ACCEPTED_DIR = ROOT / "tests" / "accepted"


@pytest.mark.parametrize("name", sorted(p.stem for p in ACCEPTED_DIR.glob("*.yaml")))
def test_validates_clean(name, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    status = cli.main(["validate", f"tests/accepted/{name}.yaml"])
    captured = capsys.readouterr()
    assert (status, captured.out, captured.err) == (0, "", "")
