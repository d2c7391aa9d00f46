"""Shared fixtures: the repository root and the real Caffe models in ../shared."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"


def require_models() -> Path:
    """The ../shared/models folder, or skip: a user's clone has no ../shared."""
    if not MODELS.is_dir():
        pytest.skip("../shared/models is absent (it sits beside the project's own CI checkout only)")
    return MODELS


@pytest.fixture
def models() -> Path:
    return require_models()


# CAFFECONF_UPDATE_GOLDEN=1 (or true/yes) rewrites the golden files instead of comparing; 0 or unset compares.
UPDATE_GOLDEN = os.environ.get("CAFFECONF_UPDATE_GOLDEN", "").strip().lower() in ("1", "true", "yes")


def check_golden(actual: str, expected_file: Path) -> None:
    """`actual` must equal the golden file's text (rewritten first when updating)."""
    if UPDATE_GOLDEN:
        expected_file.write_text(actual, encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.fixture
def golden():
    """The golden-file comparison that every golden harness (cases, errors, errors_prototxt,
    warnings, draw, import) shares."""
    return check_golden


# Nets for Caffe forks (../shared/models/README.md, "fork proto OK"), each with the first name BVLC's
# caffe.proto lacks: the BVLC-schema parametrizations leave them out; their own tests read them.
FORK_FILES = {
    "mobilenet-ssd/MobileNetSSD_train.prototxt": "resize_param",
    "mobilenet-ssd/MobileNetSSD_test.prototxt": "resize_param",
    "mobilenet-ssd/MobileNetSSD_deploy.prototxt": "permute_param",
    "mobilenet-ssd/solver.prototxt": "eval_type",
    "faster-rcnn-vgg16/train.prototxt": "smooth_l1_loss_param",
    "faster-rcnn-vgg16/test.prototxt": "roi_pooling_param",
    "enet/enet_train_encoder_decoder.prototxt": "dense_image_data_param",
    "enet/enet_deploy_final.prototxt": "bn_param",
    "segnet/segnet_train.prototxt": "dense_image_data_param",
    "segnet/segnet_inference.prototxt": "dense_image_data_param",
    "segnet-bayesian-basic/bayesian_segnet_basic_train.prototxt": "dense_image_data_param",
    "densenet-121/DenseNet_121.prototxt": "ceil_mode",
    "shufflenet/shufflenet_1x_g3_deploy.prototxt": "shuffle_channel_param",
    "shufflenet/shufflenet_v2_1x_deploy.prototxt": "shuffle_channel_param",
}


def model_files(pattern: str = "**/*.prototxt") -> list[Path]:
    """Shared prototxt files that BVLC's caffe.proto reads, for parametrization (empty when ../shared
    is absent)."""
    if not MODELS.is_dir():
        return []
    return sorted(p for p in MODELS.glob(pattern) if p.relative_to(MODELS).as_posix() not in FORK_FILES)


@pytest.fixture
def fork_proto(tmp_path, monkeypatch) -> Path:
    """BVLC's caffe.proto with the tiny fork's messages (tests/dialects/tiny_fork.proto) and
    fields of BVLC's messages added."""
    from caffeconf.caffe import dialect

    monkeypatch.setenv("CAFFECONF_CACHE", str(tmp_path / "cache"))
    additions = (ROOT / "tests" / "dialects" / "tiny_fork.proto").read_text()
    text = dialect.BVLC_PROTO.read_text()
    # `// Message: field` adds the field to BVLC's message; `// Message replaces NAME: field` also
    # drops BVLC's field NAME (a fork that numbered its own field where BVLC later put another).
    splices = re.findall(r"^// (\w+Parameter)(?: replaces (\w+))?: (.*)$", additions, flags=re.MULTILINE)
    for message, replaced, field in splices:
        if replaced:
            text, dropped = re.subn(rf"^  optional \w+ {replaced} = .*\n", "", text, count=1, flags=re.MULTILINE)
            assert dropped, f"BVLC's caffe.proto has no field {replaced}"
        text = text.replace(f"message {message} {{\n", f"message {message} {{\n{field}\n", 1)
    path = tmp_path / "fork" / "caffe.proto"
    path.parent.mkdir()
    path.write_text(text + additions)
    return path


@pytest.fixture
def tiny_fork(fork_proto):
    """The tiny fork's dialect in force for the test."""
    from caffeconf.caffe import dialect

    with dialect.use(dialect.load_dialect(fork_proto)) as active:
        yield active
