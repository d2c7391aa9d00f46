"""The demo dataset: scikit-learn's bundled 8x8 digits -> train and test LMDBs of raw Datums.

`python -m caffeconf.train.digits OUT` writes OUT/digits_train_lmdb (1437 images) and
OUT/digits_test_lmdb (every fifth image: 360), pixels 0-16 scaled to 0-255 (times 16, 256 -> 255).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .imageset import array_records, write_lmdb


def digits_split() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.minimum(digits.images * 16, 255).astype(np.uint8)[:, None]  # N x 1 x 8 x 8
    labels = digits.target.astype(np.int64)
    test = np.arange(len(labels)) % 5 == 0
    return (images[~test], labels[~test]), (images[test], labels[test])


def write_digits(out: str | Path) -> tuple[Path, Path]:
    """Both LMDBs under `out` (kept when they already exist)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "digits_train_lmdb", out / "digits_test_lmdb"
    for path, (images, labels) in zip(paths, digits_split()):
        if not path.exists():
            write_lmdb(path, array_records(images, labels))
    return paths


if __name__ == "__main__":
    for written in write_digits(sys.argv[1] if len(sys.argv) > 1 else "build/digits"):
        print(written)
