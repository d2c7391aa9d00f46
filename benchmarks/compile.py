"""Compile speed, measured side by side in one run (a script, not a test).

1. configs/googlenet.yaml: caffeconf's compile (load, check, resolve, verify, emit text) against
   protobuf's own text parse of the prototxt it emits. Target: within 3x of that parse.
2. Synthetic nested-module nets of 1k, 10k and 100k layers. Target: linear growth; 100k in under 10 s
   on a 2-core machine.

Run: python benchmarks/compile.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import text_format

from caffeconf.caffe import prototxt, serde
from caffeconf.compile.compiler import compile_file
from caffeconf.limits import Limits
from caffeconf.caffe import caffe_pb2

ROOT = Path(__file__).resolve().parent.parent


def best_of(repeats: int, action) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def compile_to_text(path: Path, limits: Limits = Limits()) -> str:
    return prototxt.net_to_text(serde.net_to_proto(compile_file(path, limits)))


def synthetic(blocks: int) -> str:
    """`blocks` uses of a stage of 10 blocks of 10 layers: 100 * blocks layers, three levels deep."""
    return f"""caffeconf: 1
modules:
  block:
    params: {{width: int}}
    inputs: [x]
    outputs: [out]
    layers:
      - {{name: conv, type: Convolution, convolution_param: {{num_output: "${{width}}", kernel_size: 3, pad: 1}}}}
      - {{name: bn, type: BatchNorm, in_place: true}}
      - {{name: scale, type: Scale, in_place: true, scale_param: {{bias_term: true}}}}
      - {{name: relu, type: ReLU, in_place: true}}
      - {{name: conv2, type: Convolution, convolution_param: {{num_output: "${{width}}", kernel_size: 1}}}}
      - {{name: relu2, type: ReLU, in_place: true}}
      - {{name: pool, type: Pooling, pooling_param: {{pool: MAX, kernel_size: 3, stride: 1, pad: 1}}}}
      - {{name: drop, type: Dropout, in_place: true}}
      - {{name: sum, type: Eltwise, bottom: [x, pool]}}
      - {{name: out, type: ReLU}}
  stage:
    params: {{width: int}}
    inputs: [x]
    outputs: ["b9/out"]
    layers:
      - {{use: block, name: "b${{i}}", repeat: 10, with: {{width: "${{width}}"}}}}
layers:
  - {{name: data, type: Input, input_param: {{shape: {{dim: [1, 16, 32, 32]}}}}}}
  - {{use: stage, name: "s${{i}}", repeat: {blocks}, with: {{width: 16}}}}
"""


def main() -> None:
    quick = "--quick" in sys.argv
    googlenet = ROOT / "configs" / "googlenet.yaml"
    text = compile_to_text(googlenet)
    ours = best_of(5, lambda: compile_to_text(googlenet))
    parse = best_of(5, lambda: text_format.Parse(text, caffe_pb2.NetParameter()))
    print(f"googlenet.yaml: compile {ours * 1e3:.1f} ms, protobuf text parse of its output {parse * 1e3:.1f} ms, "
          f"ratio {ours / parse:.2f}x (target <= 3x)")
    sizes = (10, 100) if quick else (10, 100, 1000)
    previous = None
    with tempfile.TemporaryDirectory() as folder:
        for blocks in sizes:
            path = Path(folder) / f"net{blocks}.yaml"
            path.write_text(synthetic(blocks))
            seconds = best_of(1 if blocks >= 1000 else 3, lambda: compile_file(path))
            layers = 100 * blocks + 1
            growth = f", x{seconds / previous:.1f} for x10 layers" if previous else ""
            print(f"{layers:>7} layers: {seconds:.2f} s ({seconds / layers * 1e6:.0f} us/layer){growth}")
            previous = seconds
    print("targets: linear growth (x10 time for x10 layers); 100k layers under 10 s")


if __name__ == "__main__":
    main()
