"""An exported ModelProto + input arrays -> ONNX Runtime's values of the graph's outputs (the
`run --engine onnxruntime` engine), on the CPU with a given number of threads."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx


def run_model(model: onnx.ModelProto, feed: Mapping[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # no busy-waiting between operators: peers on the same cores (another engine, a test) are not slowed
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {name: np.ascontiguousarray(value) for name, value in feed.items()})))
