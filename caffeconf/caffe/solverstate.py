"""Snapshots as Caffe writes them: `<prefix>_iter_<N>.caffemodel` (the weights) and
`<prefix>_iter_<N>.solverstate` (a binary SolverState: iter, learned_net, history,
current_step). Each file is written atomically, the weights first, so a process killed while
snapshotting leaves either no new files, or a complete .caffemodel without its state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CaffeconfError
from ..files import read_bounded, remove_stale_temporaries, write_atomic_together
from ..ir import Net
from . import messages
from .prototxt import parse_binary
from .weights import StoredBlob, blob_bytes, blob_from_proto, caffemodel_bytes, read_caffemodel


@dataclass
class Resumed:
    iteration: int
    current_step: int
    weights: dict[str, list[StoredBlob]]
    history: list[np.ndarray]


def snapshot_paths(prefix: str, iteration: int) -> tuple[str, str]:
    base = f"{prefix}_iter_{iteration}"
    return base + ".caffemodel", base + ".solverstate"


def write_snapshot(prefix: str, iteration: int, current_step: int, net: Net,
                   blobs: dict[str, list[np.ndarray]], history: Sequence[np.ndarray]) -> tuple[str, str]:
    model_path, state_path = snapshot_paths(prefix, iteration)
    state = messages.SolverState(iter=iteration, learned_net=model_path, current_step=current_step)
    for array in history:
        state.history.add().MergeFromString(blob_bytes(np.asarray(array, dtype=np.float32)))
    # Both complete on disk before either appears, the state last: a kill leaves no state without
    # its weights, and at worst a .caffemodel of the last iteration without its state.
    write_atomic_together([(model_path, caffemodel_bytes(net, blobs)), (state_path, state.SerializeToString())])
    return model_path, state_path


def remove_stale_snapshot_temporaries(prefix: str) -> list:
    """The temp files a run killed mid-snapshot left beside `prefix`'s snapshots, removed."""
    folder, name = os.path.split(prefix)
    return remove_stale_temporaries(folder or ".", f"{name}_iter_")


def read_snapshot(state_path: str) -> Resumed:
    """The SolverState at `state_path` and the weights its learned_net names (taken as written,
    i.e. from the current directory, else next to the state file)."""
    try:
        data = read_bounded(state_path)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read solver state '{state_path}': {error.strerror}") from None
    state = messages.SolverState()
    # a .caffemodel parses as a SolverState with unknown fields: parse_binary refuses it, as Caffe would
    if not parse_binary(data, state) or not (state.learned_net or state.history):
        raise CaffeconfError.at(None, f"{state_path}: not a binary SolverState (.solverstate) file",
                                hint="resume from the .solverstate that a snapshot wrote beside its .caffemodel")
    if state.iter < 0 or state.current_step < 0:
        raise CaffeconfError.at(None, f"{state_path}: the solver state's iter ({state.iter}) and current_step "
                                      f"({state.current_step}) must not be negative")
    weights = read_caffemodel(_learned_net_path(state_path, state.learned_net)) if state.learned_net else {}
    try:
        history = [blob_from_proto(blob) for blob in state.history]
    except ValueError as error:
        raise CaffeconfError.at(None, f"{state_path}: a history blob in the solver state is broken: {error}") from None
    return Resumed(state.iter, state.current_step, weights,
                   [blob.data.reshape(blob.shape) for blob in history])


def _learned_net_path(state_path: str, learned_net: str) -> str:
    if Path(learned_net).exists() or Path(learned_net).is_absolute():
        return learned_net
    beside = Path(state_path).parent / Path(learned_net).name
    return str(beside) if beside.exists() else learned_net
