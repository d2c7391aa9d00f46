"""Golden compile outputs: each tests/cases/NAME/ holds config.yaml and the exact
expected.prototxt it compiles to (canonical Caffe text). Set CAFFECONF_UPDATE_GOLDEN=1 to
rewrite the expected files (then read every change).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from caffeconf.compile import compiler
from caffeconf.caffe import prototxt, serde
from caffeconf.errors import render_text
from conftest import ROOT

CASES_DIR = ROOT / "tests" / "cases"


def _case_names() -> list[str]:
    return sorted(path.parent.name for path in CASES_DIR.glob("*/config.yaml"))


@pytest.mark.parametrize("name", _case_names())
def test_compile_golden(name, monkeypatch, golden):
    monkeypatch.chdir(ROOT)
    result = compiler.build(f"tests/cases/{name}/config.yaml")
    assert result.ok, render_text(result.diagnostics)
    assert not result.diagnostics, render_text(result.diagnostics)
    actual = prototxt.net_to_text(serde.net_to_proto(result.net))
    golden(actual, CASES_DIR / name / "expected.prototxt")


def test_every_case_is_complete():
    names = _case_names()
    assert len(names) >= 8
    incomplete = [name for name in names if not (CASES_DIR / name / "expected.prototxt").is_file()]
    assert not incomplete


_COMMANDS_THEN_LIST_TORCH = """
import sys
from caffeconf import cli
out = sys.argv[1]
codes = [cli.main(["validate", "configs/googlenet.yaml"]),
         cli.main(["compile", "configs/googlenet.yaml", "-o", out + "/net.prototxt", "--source-map", out + "/map.json"]),
         cli.main(["compile", "configs/lenet.yaml", "--binary", "-o", out + "/net.binaryproto"])]
print(codes, sorted(name for name in sys.modules if name == "torch" or name.startswith("torch.")))
"""


def test_validate_and_compile_never_import_torch(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", _COMMANDS_THEN_LIST_TORCH, str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0, 0, 0] []"
    assert (tmp_path / "net.prototxt").stat().st_size and (tmp_path / "net.binaryproto").stat().st_size
