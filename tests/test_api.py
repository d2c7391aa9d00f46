"""The public Python API: its doctests run from the repository root."""

import doctest
from pathlib import Path

import pytest

import caffeconf.api.net
from conftest import MODELS

ROOT = Path(__file__).resolve().parent.parent


def test_api_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(caffeconf.api.net, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


REFERENCE = MODELS / "bvlc_googlenet/train_val.prototxt"


def test_googlenet_config_equals_reference_prototxt():
    from caffeconf import diff, load
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} absent")
    config = load(ROOT / "configs/googlenet.yaml")
    assert diff(config, REFERENCE) == []
    assert diff(config, ROOT / "configs/lenet.yaml") != []
