"""Fork dialects: a caffe.proto read at run time (tests/dialects/tiny_fork.proto spliced into
BVLC's), cached by content, with located errors; and the hints given without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from caffeconf.caffe import dialect
from caffeconf.cli import main

NET = '''name: "fork"
input: "data"
input_shape { dim: 1 dim: 4 dim: 2 dim: 3 }
layer { name: "perm" type: "Permute" bottom: "data" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "perm" top: "shuffle" shuffle_channel_param { group: 2 } }
'''


def test_fork_net_validates_and_round_trips_with_its_proto(fork_proto, tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    assert main(["validate", "--proto", str(fork_proto), str(net)]) == 0
    assert list((tmp_path / "cache" / "dialects").glob("*.pb")), "the compiled proto is cached"
    out = tmp_path / "net.yaml"
    assert main(["import", "--proto", str(fork_proto), str(net), "-o", str(out)]) == 0
    back = tmp_path / "back.prototxt"
    assert main(["compile", "--proto", str(fork_proto), str(out), "-o", str(back)]) == 0
    assert main(["diff", "--proto", str(fork_proto), str(net), str(back)]) == 0


def test_without_the_proto_every_fork_field_is_reported_with_the_fork(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    assert main(["validate", str(net)]) == 1
    err = capsys.readouterr().err
    assert f"{net}:4:65: error: unknown field 'permute_param' in caffe.LayerParameter" in err
    assert f"{net}:5:78: error: unknown field 'shuffle_channel_param' in caffe.LayerParameter" in err
    assert "hint: 'permute_param' is defined by the caffe.proto of the SSD fork" in err
    assert "parameter_param" not in err  # no misleading did-you-mean


def test_a_broken_proto_is_a_located_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path / "cache"))
    proto = tmp_path / "caffe.proto"
    proto.write_text('syntax = "proto2";\npackage caffe;\nmessage A {\n  optinal int32 z = 3;\n}\n')
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    assert main(["validate", "--proto", str(proto), str(net)]) == 1
    err = capsys.readouterr().err
    assert f"{proto}:4:3: error: expected \"required\", \"optional\", or \"repeated\". (protoc)" in err
    assert "Traceback" not in err


def test_bvlc_proto_text_is_the_bvlc_dialect():
    assert dialect.load_dialect(dialect.BVLC_PROTO) is dialect.bvlc()


def test_did_you_mean_only_when_really_close():
    from caffeconf.errors import did_you_mean
    assert did_you_mean("bn_param", ["mvn_param", "batch_norm_param"]) is None
    assert did_you_mean("permute_param", ["parameter_param"]) is None
    assert did_you_mean("num_ouput", ["num_output"]) == "did you mean 'num_output'?"


def test_import_writes_the_proto_into_the_config_and_it_compiles_without_proto(fork_proto, tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    out = tmp_path / "net.yaml"
    assert main(["import", "--proto", str(fork_proto), str(net), "-o", str(out)]) == 0
    assert "\ncaffe_proto: \"fork/caffe.proto\"\n" in out.read_text()
    back = tmp_path / "back.prototxt"
    assert main(["compile", str(out), "-o", str(back)]) == 0  # the header names the dialect
    assert main(["diff", "--proto", str(fork_proto), str(net), str(back)]) == 0


SSD_NET = Path(__file__).resolve().parents[2] / "shared" / "models" / "mobilenet-ssd" / "MobileNetSSD_deploy.prototxt"
SSD_PROTO = Path(__file__).resolve().parents[2] / "shared" / "dialects" / "ssd" / "caffe.proto"


def test_mobilenet_ssd_validates_imports_and_round_trips_with_the_ssd_proto(tmp_path, capsys):
    if not (SSD_NET.exists() and SSD_PROTO.exists()):
        pytest.skip("../shared/models/mobilenet-ssd or ../shared/dialects/ssd is absent")
    assert main(["validate", "--proto", str(SSD_PROTO), str(SSD_NET)]) == 0
    out = tmp_path / "ssd.yaml"
    assert main(["import", "--modules", "--proto", str(SSD_PROTO), str(SSD_NET), "-o", str(out)]) == 0
    back = tmp_path / "ssd.prototxt"
    assert main(["compile", str(out), "-o", str(back)]) == 0
    assert main(["diff", "--proto", str(SSD_PROTO), str(SSD_NET), str(back)]) == 0
    capsys.readouterr()
    assert main(["validate", str(SSD_NET)]) == 1
    assert "pass --proto FILE" in capsys.readouterr().err
