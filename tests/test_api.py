"""The public Python API: its doctests run from the repository root."""

import doctest
import os
from pathlib import Path

import caffeconf.api.net

ROOT = Path(__file__).resolve().parent.parent


def test_api_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(caffeconf.api.net, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
