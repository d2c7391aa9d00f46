"""Output paths that cannot be written give a clear error, and nothing is half-written."""

from __future__ import annotations

from caffeconf.cli import main

from conftest import ROOT

CONFIG = str(ROOT / "configs" / "lenet.yaml")


def test_missing_folder_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["compile", CONFIG, "-o", str(tmp_path / "nowhere" / "net.prototxt")]) == 1
    assert "cannot write: folder" in capsys.readouterr().err


def test_a_directory_is_not_an_output(tmp_path, capsys):
    assert main(["compile", CONFIG, "-o", str(tmp_path)]) == 1
    assert "is a directory, not an output file" in capsys.readouterr().err


def test_bad_source_map_path_leaves_the_net_unwritten(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text("old\n")
    code = main(["compile", CONFIG, "-o", str(net), "--source-map", str(tmp_path / "no" / "map.json")])
    assert code == 1 and net.read_text() == "old\n"
    assert "Traceback" not in capsys.readouterr().err


def test_compile_refuses_a_prototxt_with_a_pointer(tmp_path, capsys):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('layer { name: "data" type: "Input" top: "data" }\n')
    assert main(["compile", str(prototxt)]) == 1
    assert "compile takes a config" in capsys.readouterr().err
