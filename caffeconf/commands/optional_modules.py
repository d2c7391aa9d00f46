"""The optional modules behind the runner commands (run, time, train, test), export and lsp: a
missing one becomes a CaffeconfError naming it and how to install it, never an ImportError traceback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import CaffeconfError

# top-level module -> (what it is, the extra that installs it)
_PROVIDED = {"torch": ("PyTorch", "run"), "numpy": ("NumPy", "run"), "cv2": ("OpenCV for image inputs", "run"),
             "lmdb": ("LMDB", "train"), "h5py": ("h5py for HDF5 data", "train"),
             "tqdm": ("tqdm for the progress line", "train"), "onnx": ("the onnx package", "onnx"),
             "pygls": ("pygls for the language server", "lsp"), "lsprotocol": ("pygls for the language server", "lsp"),
             "onnxruntime": ("ONNX Runtime", "onnx")}
# the extras each command needs
_EXTRAS = {"train": "run,train", "test": "run,train", "export": "run,onnx"}


@contextmanager
def required_modules(command: str, extras: str | None = None) -> Iterator[None]:
    """Run a command's body; a missing optional module is reported as `caffeconf COMMAND needs ...`
    with the extras that command needs (`extras`, where the options decide them)."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "").partition(".")[0]
        if module not in _PROVIDED:
            raise
        what, extra = _PROVIDED[module]
        extras = extras or _EXTRAS.get(command, extra)
        raise CaffeconfError.at(None, f"caffeconf {command} needs {what} (no module named '{module}'): "
                                      f"pip install 'caffeconf[{extras}]' (see README)") from None
