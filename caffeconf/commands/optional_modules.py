"""The optional modules behind the runner commands (run, time, train, test): a missing one becomes a
CaffeconfError naming it and how to install it, never an ImportError traceback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import CaffeconfError

# top-level module -> what it is; the `run` extra installs them all
_PROVIDED = {"torch": "PyTorch", "numpy": "NumPy", "cv2": "OpenCV for image inputs"}


@contextmanager
def required_modules(command: str) -> Iterator[None]:
    """Run a command's body; a missing torch, numpy or cv2 is reported as `caffeconf COMMAND needs ...`."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "").partition(".")[0]
        if module not in _PROVIDED:
            raise
        raise CaffeconfError.at(None, f"caffeconf {command} needs {_PROVIDED[module]} (no module named "
                                      f"'{module}'): pip install 'caffeconf[run]' (see README)") from None
