"""Writing outputs atomically: a temp file in the same folder, then `os.replace`.

An existing output is therefore either the old file or the complete new one,
never a truncated mix, even if the process dies mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CaffeconfError


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically; a failure is a CaffeconfError naming the path."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    check_writable(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise _cannot_write(target, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(target, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike) -> None:
    """Fail early, before any output is written, when `path` cannot be an output file."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise CaffeconfError.at(None, f"{target}: is a directory, not an output file")
    if not folder.is_dir():
        raise CaffeconfError.at(None, f"{target}: cannot write: folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise CaffeconfError.at(None, f"{target}: cannot write: folder '{folder}' is not writable")


def _cannot_write(target: Path, error: OSError) -> CaffeconfError:
    return CaffeconfError.at(None, f"{target}: cannot write: {error.strerror or error}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
