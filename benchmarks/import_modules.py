"""`import --modules` on large nets: config lines beside careful hand-written configs, and the time.

    python benchmarks/import_modules.py NET.prototxt...

The big nets are not in ../shared/models and are not kept here (third-party files): fetch them
into a temporary folder (ResNet-101 and ResNet-152: KaimingHe/deep-residual-networks; Inception-v3,
Inception-v4, Inception-ResNet-v2 and Xception: soeaver/caffe-model, cls/inception/). Hand-written
line counts are from issue 17; docs/import.md has the figures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from caffeconf.importer.read import import_config

HAND_WRITTEN = {"resnet152": 75, "ResNet-152-deploy": 75, "inception-v3": 137, "deploy_inception-v3": 137}


def main(paths: list[str]) -> int:
    print(f"{'net':40} {'prototxt':>8} {'config':>6} {'hand':>5} {'seconds':>7}")
    for path in paths:
        start = time.perf_counter()
        result = import_config(path, modules=True)
        seconds = time.perf_counter() - start
        hand = HAND_WRITTEN.get(Path(path).stem, "")
        print(f"{Path(path).name:40} {result.prototxt_lines:8} {result.config_lines:6} {hand!s:>5} {seconds:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
