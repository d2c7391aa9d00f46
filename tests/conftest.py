"""Shared fixtures: the repository root and the real Caffe models in ../shared."""

from __future__ import annotations

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


def model_files(pattern: str = "**/*.prototxt") -> list[Path]:
    """Shared prototxt files for parametrization (empty when ../shared is absent)."""
    return sorted(MODELS.glob(pattern)) if MODELS.is_dir() else []
