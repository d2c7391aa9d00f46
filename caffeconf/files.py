"""Reading inputs with a bound, and writing outputs atomically (a temp file in the same folder,
then `os.replace`).

Only regular files are read (a FIFO would block, a device never end) and never more than the
bound. An existing output is either the old file or the complete new one, never a truncated mix,
even if the process dies mid-write; outputs never replace a FIFO, a device or an input.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from .errors import CaffeconfError, Span


# protobuf cannot parse a message over 2 GiB, so no Caffe file is larger.
MAX_CAFFE_FILE_BYTES = 2**31 - 1


# Decoding a larger image would take gigabytes (8,192 x 8,192 is 64 Mi pixels, 192 MiB in BGR).
MAX_IMAGE_PIXELS = 1 << 26


def check_path(path: str | os.PathLike) -> None:
    """Refuse a path the OS cannot name (a NUL byte, as a config's "\\0" can write)."""
    if "\0" in str(path):
        raise CaffeconfError.at(None, f"{str(path)!r}: a file path cannot hold a NUL byte")


# An editor's unsaved buffers (absolute path -> bytes), read instead of the disk while
# `reading_buffers` runs; None outside it. The files read meanwhile are recorded, so that the
# language server knows which open configs an edit to an imported file concerns.
_buffers: Mapping[str, bytes] | None = None
_read: set[str] | None = None


@contextlib.contextmanager
def reading_buffers(buffers: Mapping[str, bytes]) -> Iterator[set[str]]:
    """Inside the block `read_bounded` takes each file in `buffers` from there; yields the set of
    absolute paths read (from buffers or disk) so far."""
    global _buffers, _read
    outer = _buffers, _read
    _buffers, _read = buffers, set()
    try:
        yield _read
    finally:
        _buffers, _read = outer


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """The stat of the regular file at `path`; a FIFO or device (which could block a reader or
    never end) is a CaffeconfError, a directory or a missing file an OSError for the caller to word."""
    check_path(path)
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a directory", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise CaffeconfError.at(None, f"{path}: not a regular file (a FIFO or device): not read")
    return info


def read_bounded(path: str | os.PathLike, max_bytes: int = MAX_CAFFE_FILE_BYTES) -> bytes:
    """The bytes of the regular file at `path` (or of its unsaved buffer, see `reading_buffers`),
    refusing anything else and anything over `max_bytes` (a CaffeconfError); OSErrors (a missing
    file...) are the caller's to word."""
    name = str(path)
    check_path(path)
    if _read is not None:
        _read.add(os.path.abspath(path))
        if (buffered := _buffers.get(os.path.abspath(path))) is not None:
            _check_size(name, len(buffered), max_bytes)
            return buffered
    info = check_regular_file(path)
    _check_size(name, info.st_size, max_bytes)
    with open(path, "rb") as handle:
        data = handle.read(info.st_size)  # read() of the bound itself would allocate all of it
        while len(data) <= max_bytes and (more := handle.read(1 << 20)):  # it grew since the stat
            data += more
    if len(data) > max_bytes:
        raise CaffeconfError.at(Span(name, 1, 1), f"file is over the limit of {max_bytes} bytes")
    return data


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise CaffeconfError.at(Span(name, 1, 1), f"file is {size} bytes, over the limit of {max_bytes}")


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically; a failure is a CaffeconfError naming the path.
    Through a symlink the file it points to is replaced, and the link stays."""
    write_atomic_together([(path, data)])


def write_atomic_together(outputs: list[tuple[str | os.PathLike, str | bytes]]) -> None:
    """Write each (path, data) atomically, every temp file complete before the first replace, so
    that a kill leaves either none of the new files or all but the last in the list (a snapshot
    lists its .solverstate last: a visible state always has its weights)."""
    written: list[tuple[str, Path]] = []
    try:
        for path, data in outputs:
            written.append(_write_temporary(path, data))
        for tmp, target in written:
            try:
                os.replace(tmp, target)
            except OSError as error:
                raise _cannot_write(target, error) from None
    finally:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)


def _write_temporary(path: str | os.PathLike, data: str | bytes) -> tuple[str, Path]:
    """(a complete, synced temp file beside the target, the target), the temp named `.NAME.*.tmp`."""
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
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(target, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, target


def remove_stale_temporaries(folder: str | os.PathLike, name_prefix: str) -> list[Path]:
    """Remove the temp files a killed run left in `folder` for outputs whose names start with
    `name_prefix` (`write_atomic`'s `.NAME.*.tmp`); returns them."""
    try:
        stale = [p for p in Path(folder).glob(f".{glob.escape(name_prefix)}*.tmp") if p.is_file()]
    except OSError:
        return []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def check_writable(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Fail early, before any output is written, when `path` cannot be an output file: a
    directory, a FIFO or device, one of the command's `inputs`, or in a folder we cannot write."""
    check_path(path)
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


def image_dimensions(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG file declares, read from its header without decoding it;
    None for other formats or a header that cannot be read (the decoder then says what it finds)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head.startswith(b"\xff\xd8"):
                return _jpeg_dimensions(handle)
    except (OSError, struct.error):
        return None
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless...), which hold the dimensions.
_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_dimensions(handle) -> tuple[int, int] | None:
    handle.seek(2)
    for _ in range(1000):  # segments before the frame header; a bound against a looping file
        marker = handle.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return None
        length = struct.unpack(">H", marker[2:4])[0]
        if marker[1] in _JPEG_FRAMES:
            height, width = struct.unpack(">xHH", handle.read(5))
            return width, height
        handle.seek(length - 2, os.SEEK_CUR)
    return None


def check_image_size(path: str | os.PathLike) -> None:
    """Refuse an image whose header declares more than MAX_IMAGE_PIXELS, before it is decoded."""
    size = image_dimensions(path)
    if size and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise CaffeconfError.at(None, f"image '{path}' declares {size[0]}x{size[1]} pixels, over the limit of "
                                      f"{MAX_IMAGE_PIXELS} (8192x8192): not decoded")
