"""Each bundled config compiles to the real Caffe net it replaces, compared as protobuf messages."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from caffeconf import serde
from caffeconf.compiler import compile_file
from caffeconf.proto import caffe_pb2
from caffeconf.rules import filter_net

from conftest import ROOT, require_models

# (config, reference under ../shared/models, FilterNet state or None for the full net)
CASES = [
    ("lenet.yaml", "lenet/lenet_train_test.prototxt", None),
    ("caffenet.yaml", "bvlc_reference_caffenet/train_val.prototxt", None),
    ("googlenet.yaml", "bvlc_googlenet/train_val.prototxt", None),
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


@pytest.mark.parametrize("config,ref,state", CASES, ids=[c[0] + (f"-{c[2]}" if c[2] else "") for c in CASES])
def test_config_equals_reference(config, ref, state):
    models = require_models()
    net = compile_file(ROOT / "configs" / config)
    if state:
        net = filter_net(net, **state)
    ours, theirs = serde.net_to_proto(net), reference(models / ref)
    assert ours == theirs, first_difference(ours, theirs)


def test_googlenet_config_is_short():
    lines = (ROOT / "configs" / "googlenet.yaml").read_text().splitlines()
    assert len(lines) <= 300
