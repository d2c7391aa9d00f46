"""Reading inputs with a bound, and writing outputs atomically (a temp file in the same folder,
then `os.replace`).

Only regular files are read (a FIFO would block, a device never end) and never more than the
bound. An existing output is either the old file or the complete new one, never a truncated mix,
even if the process dies mid-write; outputs never replace a FIFO, a device or an input.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import CaffeconfError, Span


# protobuf cannot parse a message over 2 GiB, so no Caffe file is larger.
MAX_CAFFE_FILE_BYTES = 2**31 - 1


def read_bounded(path: str | os.PathLike, max_bytes: int = MAX_CAFFE_FILE_BYTES) -> bytes:
    """The bytes of the regular file at `path`, refusing anything else and anything over
    `max_bytes` (a CaffeconfError); OSErrors (a missing file...) are the caller's to word."""
    name = str(path)
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a directory", name)
    if not stat.S_ISREG(info.st_mode):
        raise CaffeconfError.at(None, f"{name}: not a regular file (a FIFO or device): not read")
    if info.st_size > max_bytes:
        raise CaffeconfError.at(Span(name, 1, 1), f"file is {info.st_size} bytes, over the limit of {max_bytes}")
    with open(path, "rb") as handle:
        data = handle.read(info.st_size)  # read() of the bound itself would allocate all of it
        while len(data) <= max_bytes and (more := handle.read(1 << 20)):  # it grew since the stat
            data += more
    if len(data) > max_bytes:
        raise CaffeconfError.at(Span(name, 1, 1), f"file is over the limit of {max_bytes} bytes")
    return data


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically; a failure is a CaffeconfError naming the path.
    Through a symlink the file it points to is replaced, and the link stays."""
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    check_writable(path)
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


def check_writable(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Fail early, before any output is written, when `path` cannot be an output file: a
    directory, a FIFO or device, one of the command's `inputs`, or in a folder we cannot write."""
    given, target = Path(path), Path(os.path.realpath(path))
    folder = given.parent if str(given.parent) else Path(".")
    if target.is_dir():
        raise CaffeconfError.at(None, f"{given}: is a directory, not an output file")
    if target.exists() and not target.is_file():
        raise CaffeconfError.at(None, f"{given}: is not a regular file (a FIFO or device): not replaced")
    if any(target == Path(os.path.realpath(source)) for source in inputs):
        raise CaffeconfError.at(None, f"{given}: is one of this command's inputs: not overwritten",
                                hint="write the output to another file")
    if not folder.is_dir():
        raise CaffeconfError.at(None, f"{given}: cannot write: folder '{folder}' does not exist")
    if not os.access(target.parent, os.W_OK):
        raise CaffeconfError.at(None, f"{given}: cannot write: folder '{folder}' is not writable")


def _cannot_write(target: Path, error: OSError) -> CaffeconfError:
    return CaffeconfError.at(None, f"{target}: cannot write: {error.strerror or error}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
