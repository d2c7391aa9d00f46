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


def test_a_source_map_onto_the_net_output_is_refused(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    assert main(["compile", CONFIG, "-o", str(net), "--source-map", str(tmp_path / "." / "net.prototxt")]) == 1
    assert capsys.readouterr().err == f"error: -o and --source-map both name {net}: give two files\n"
    assert not net.exists()


def test_a_source_map_to_stdout_is_refused_rather_than_written_to_a_file_named_dash(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", CONFIG, "--source-map", "-"]) == 1
    assert capsys.readouterr().err == "error: --source-map -: the source map is written to a file, not to stdout\n"
    assert not (tmp_path / "-").exists()


def test_an_output_onto_a_file_the_config_imports_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = "caffeconf: 1\nmodules:\n  relu:\n    inputs: [x]\n    layers: [{name: y, type: ReLU}]\n"
    (tmp_path / "blocks.yaml").write_text(blocks)
    (tmp_path / "net.yaml").write_text("caffeconf: 1\nimports: {b: blocks.yaml}\nlayers:\n"
                                       "  - {name: data, type: Input, input_param: {shape: {dim: [1, 2]}}}\n"
                                       "  - {use: b.relu, name: r}\n")
    for outputs in (["-o", "blocks.yaml"], ["-o", "net.prototxt", "--source-map", "blocks.yaml"]):
        assert main(["compile", "net.yaml", *outputs]) == 1
        assert capsys.readouterr().err == ("error: blocks.yaml: is one of this command's inputs: not overwritten\n"
                                           "  hint: write the output to another file\n")
    assert (tmp_path / "blocks.yaml").read_text() == blocks and not (tmp_path / "net.prototxt").exists()
