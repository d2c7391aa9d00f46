"""Each bundled config compiles to the real Caffe net it replaces, compared as protobuf messages."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from caffeconf.caffe import serde
from caffeconf.compile.compiler import compile_file
from caffeconf.caffe import caffe_pb2

from conftest import ROOT, require_models

# (config, reference under ../shared/models, compile-time variants selected)
CASES = [
    ("lenet.yaml", "lenet/lenet_train_test.prototxt", ()),
    ("caffenet.yaml", "bvlc_reference_caffenet/train_val.prototxt", ()),
    ("googlenet.yaml", "bvlc_googlenet/train_val.prototxt", ()),
    ("googlenet.yaml", "bvlc_googlenet/deploy.prototxt", ("deploy",)),
    ("squeezenet.yaml", "squeezenet-v1.1/train_val.prototxt", ()),
    ("squeezenet.yaml", "squeezenet-v1.1/deploy.prototxt", ("deploy",)),
    ("resnet50.yaml", "resnet/ResNet-50-deploy.prototxt", ()),
    ("siamese.yaml", "siamese/mnist_siamese_train_test.prototxt", ()),
]


def reference(path) -> caffe_pb2.NetParameter:
    message = caffe_pb2.NetParameter()
    text_format.Parse(path.read_text(), message)
    return message


def first_difference(ours: caffe_pb2.NetParameter, theirs: caffe_pb2.NetParameter) -> str:
    for index, (a, b) in enumerate(zip(ours.layer, theirs.layer)):
        if a != b:
            return f"layer {index}:\n--- ours\n{a}--- reference\n{b}"
    return f"{len(ours.layer)} layers vs {len(theirs.layer)}; net fields differ"


@pytest.mark.parametrize("config,ref,variants", CASES, ids=["-".join((c[0], *c[2])) for c in CASES])
def test_config_equals_reference(config, ref, variants):
    models = require_models()
    net = compile_file(ROOT / "configs" / config, variants=frozenset(variants))
    ours, theirs = serde.net_to_proto(net), reference(models / ref)
    assert ours == theirs, first_difference(ours, theirs)


def test_googlenet_config_is_short():
    lines = (ROOT / "configs" / "googlenet.yaml").read_text().splitlines()
    assert len(lines) <= 300


@pytest.mark.parametrize("config,ref", [(c[0], c[1]) for c in CASES if not c[2]], ids=[c[0] for c in CASES if not c[2]])
def test_diff_proves_config_equals_reference(config, ref, capsys):
    from caffeconf.cli import main

    code = main(["diff", str(ROOT / "configs" / config), str(require_models() / ref)])
    assert code == 0, capsys.readouterr().out
