"""An exported ModelProto + input arrays -> ONNX Runtime's values of the graph's outputs (the
`run --engine onnxruntime` engine), on the CPU with a given number of threads; and the average time
of its passes, whole and per Caffe layer (`time --engine onnxruntime`)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from typing import Mapping

import numpy as np
import onnx

from .emit import layer_of_node


def cpu_session(model: onnx.ModelProto, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime CPU session that does not busy-wait between operators, so that peers on the
    same cores (another engine, a test) are not slowed. With `profile_prefix`, a profiling session
    without graph optimizations, so that each node stays its own (fusion would merge layers)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_model(model: onnx.ModelProto, feed: Mapping[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
    session = cpu_session(model, threads)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, _contiguous(feed))))


def time_model(model: onnx.ModelProto, feed: Mapping[str, np.ndarray], iterations: int,
               threads: int) -> tuple[float, dict[str, float]]:
    """Average milliseconds of a whole pass (the optimized session, after one uncounted warm-up),
    and per Caffe layer name those of its nodes, from a profiled pass without fusion (each layer on
    its own, as `caffe time` times layers)."""
    feed = _contiguous(feed)
    session = cpu_session(model, threads)
    session.run(None, feed)
    start = time.perf_counter()
    for _ in range(iterations):
        session.run(None, feed)
    return (time.perf_counter() - start) * 1e3 / iterations, _layer_ms(model, feed, iterations, threads)


def _layer_ms(model: onnx.ModelProto, feed: Mapping[str, np.ndarray], iterations: int,
              threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        session = cpu_session(model, threads, profile_prefix=os.path.join(folder, "profile"))
        for _ in range(iterations + 1):
            session.run(None, feed)
        with open(session.end_profiling(), encoding="utf-8") as handle:
            events = json.load(handle)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    warm_up_end = runs[0][1] if runs else float("-inf")
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] > warm_up_end:
            totals[layer_of_node(event["name"].removesuffix("_kernel_time"))] += event["dur"] / 1e3 / iterations
    return dict(totals)


def _contiguous(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(value) for name, value in feed.items()}
