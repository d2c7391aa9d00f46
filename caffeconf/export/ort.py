"""An exported ModelProto + input arrays -> ONNX Runtime's values of the graph's outputs (the
`run --engine onnxruntime` engine), on the CPU with a given number of threads."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx


def cpu_session(model: onnx.ModelProto, threads: int):
    """An ONNX Runtime CPU session that does not busy-wait between operators, so that peers on the
    same cores (another engine, a test) are not slowed."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_model(model: onnx.ModelProto, feed: Mapping[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
    session = cpu_session(model, threads)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {name: np.ascontiguousarray(value) for name, value in feed.items()})))
