"""`caffeconf compile --debug-passes`: after each pass, its IR and the verifier's findings on stderr."""

from __future__ import annotations

from conftest import ROOT
from caffeconf.cli import main

CASES = ROOT / "tests" / "debug_passes"


def test_each_pass_prints_its_ir(tmp_path, capsys, golden):
    argv = ["compile", str(CASES / "tiny.yaml"), "--phase", "TEST", "-o", str(tmp_path / "net.prototxt")]
    assert main(argv + ["--debug-passes"]) == 0
    golden(capsys.readouterr().err, CASES / "tiny.expected")


def test_without_the_flag_nothing_is_traced(tmp_path, capsys):
    assert main(["compile", str(CASES / "tiny.yaml"), "--phase", "TEST", "-o", str(tmp_path / "net.prototxt")]) == 0
    assert capsys.readouterr().err == ""
