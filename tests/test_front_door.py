"""The one front door (`compile.load`) and the commands on it: a prototxt read once per command,
a config compiled once, the state deciding both the filter and the phase, `compile`'s normal
path with its source map, and `validate` on a prototxt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from caffeconf import cli
from caffeconf.caffe import prototxt, serde
from caffeconf.compile import load as front_door
from caffeconf.compile.load import StateChoice, load, one_command

from conftest import ROOT

TRAIN_VAL = """name: "tv"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "train_only" type: "ReLU" bottom: "data" top: "a" include { phase: TRAIN } }
layer { name: "test_only" type: "TanH" bottom: "data" top: "a" include { phase: TEST } }
layer { name: "out" type: "Sigmoid" bottom: "a" top: "out" }
"""

_opened: list[str] = []
_watching: list[str] = []


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _watching and str(args[0]) == _watching[0]:
        _opened.append(event)


sys.addaudithook(_count_opens)  # hooks cannot be removed; it counts only while a test watches


@pytest.fixture
def opens():
    """How often the watched file is opened while the test runs."""
    def watch(path: Path) -> list[str]:
        _watching[:] = [str(path)]
        _opened.clear()
        return _opened
    yield watch
    _watching.clear()


@pytest.mark.parametrize("command", [
    ["validate"], ["inspect"], ["draw", "-o", "{tmp}/net.dot"], ["import", "-o", "{tmp}/net.yaml"],
    ["import", "--modules", "-o", "{tmp}/net.yaml"],
])
def test_a_prototxt_is_read_once_per_command(tmp_path, opens, capsys, command):
    net = tmp_path / "tv.prototxt"
    net.write_text(TRAIN_VAL)
    args = [part.format(tmp=tmp_path) for part in command]
    opened = opens(net)
    assert cli.main([args[0], str(net), *args[1:]]) == 0, capsys.readouterr().err
    assert len(opened) == 1


def test_a_config_compiles_once_however_many_consumers_load_it(monkeypatch):
    builds = []
    real = front_door.build
    monkeypatch.setattr(front_door, "build", lambda *a, **k: builds.append(a) or real(*a, **k))
    config = ROOT / "configs" / "lenet.yaml"
    with one_command():
        train = load(config, StateChoice("TRAIN")).net
        test = load(config, StateChoice("TEST")).net
        whole = load(config).net
    assert len(builds) == 1
    assert [layer.name for layer in train.layers] != [layer.name for layer in test.layers]
    assert len(whole.layers) > len(train.layers)
    load(config)  # outside a command nothing is kept
    assert len(builds) == 2


def test_the_chosen_state_filters_the_net_and_is_its_phase(tmp_path):
    net = tmp_path / "tv.prototxt"
    net.write_text(TRAIN_VAL)
    default = load(net, StateChoice())
    assert default.state.phase == "TEST"  # caffe.proto's NetState default
    assert [layer.name for layer in default.net.layers] == ["data", "test_only", "out"]
    timed = load(net, StateChoice(default_phase="TRAIN"))
    assert timed.state.phase == "TRAIN"
    assert [layer.name for layer in timed.net.layers] == ["data", "train_only", "out"]
    assert load(net, StateChoice("TEST", default_phase="TRAIN")).state.phase == "TEST"


def test_time_on_a_train_val_net_builds_and_runs_its_train_net(tmp_path, capsys):
    pytest.importorskip("torch")
    net = tmp_path / "tv.prototxt"
    net.write_text(TRAIN_VAL)
    assert cli.main(["time", str(net), "--iterations", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "phase TRAIN" in out
    assert "train_only" in out and "test_only" not in out


def test_a_configs_legacy_inputs_become_the_input_layer_a_prototxt_gets(tmp_path):
    config = tmp_path / "net.yaml"
    config.write_text("caffeconf: 1\nname: legacy\ninput: [data]\ninput_dim: [1, 3, 4, 4]\n"
                      "layers:\n  - {name: relu, type: ReLU, bottom: data, top: out}\n")
    as_prototxt = tmp_path / "net.prototxt"
    as_prototxt.write_text('name: "legacy"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 4\ninput_dim: 4\n'
                           'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n')
    assert serde.net_to_proto(load(config).net) == serde.net_to_proto(load(as_prototxt).net)


def test_compile_writes_the_flat_net_and_its_source_map(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    case = Path("tests/cases/nested_modules")
    out, source_map = tmp_path / "net.prototxt", tmp_path / "net.map.json"
    assert cli.main(["compile", str(case / "config.yaml"), "-o", str(out), "--source-map", str(source_map)]) == 0
    assert capsys.readouterr().err == ""
    assert out.read_text() == (case / "expected.prototxt").read_text()
    layers = json.loads(source_map.read_text())["layers"]
    assert [entry["name"] for entry in layers] == [layer.name for layer in prototxt.read_net(out).layer]
    lines = (case / "config.yaml").read_text().splitlines()
    deepest = next(entry for entry in layers if entry["name"] == "stage2/unit2/conv")
    assert lines[deepest["line"] - 1][deepest["column"] - 1:].startswith("{name: conv")
    assert [(use["module"], use["instance"]) for use in deepest["uses"]] == [
        ("stage", "stage2"), ("unit", "stage2/unit2")]
    for use in deepest["uses"]:
        assert lines[use["line"] - 1][use["column"] - 1:].startswith("{use: ")


def test_validate_on_a_prototxt_reports_what_caffe_would_refuse(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("bad.prototxt").write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n'
        'layer { name: "act" type: "Relu" bottom: "data" top: "act" }\n'
        'layer { name: "out" type: "TanH" bottom: "dat" top: "out" }\n')
    assert cli.main(["validate", "bad.prototxt"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("bad.prototxt:2:1: error: layer 'act': unknown layer type 'Relu' "
                                   "(BVLC Caffe has no such type)")
    assert "bad.prototxt:3:1: error:" in err and "'dat'" in err
    Path("good.prototxt").write_text(TRAIN_VAL)
    assert cli.main(["validate", "good.prototxt"]) == 0
    assert capsys.readouterr().err == ""
