"""Image lists and arrays -> LMDB databases of Caffe Datum records, like Caffe's convert_imageset.

Keys are `%08d_<filename>` in list order (after shuffling), so LMDB's key order is the list's
order. A database is built in a temporary folder beside the target and renamed into place when
complete, so a failed or interrupted build never leaves a partial database under the name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import CaffeconfError
from ..files import MAX_IMAGE_PIXELS, check_image_size
from ..caffe import messages
from ..caffe.image_list import read_image_list

COMMIT_EVERY = 1000  # records per LMDB transaction, as Caffe's tool commits
INITIAL_MAP_BYTES = 1 << 26


def array_datum(image: np.ndarray, label: int) -> messages.Datum:
    """A raw Datum from a C x H x W uint8 array (or float array, stored as float_data)."""
    channels, height, width = image.shape
    datum = messages.Datum(channels=channels, height=height, width=width, label=int(label))
    if image.dtype == np.uint8:
        datum.data = np.ascontiguousarray(image).tobytes()
    else:
        datum.float_data.extend(np.asarray(image, np.float32).ravel())
    return datum


def write_lmdb(path: str | os.PathLike, records: Iterable[tuple[bytes, messages.Datum]]) -> int:
    """Write (key, Datum) records to a new LMDB at `path`; returns the count. Refuses an existing path."""
    import lmdb

    target = Path(path)
    if target.exists():
        raise CaffeconfError.at(None, f"'{target}' already exists; remove it or choose another name",
                                hint="Caffe's convert_imageset also refuses to overwrite a database")
    building = Path(tempfile.mkdtemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}."))
    try:
        count = _fill(lmdb, building, records, target)
        os.rename(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return count


def _fill(lmdb, folder: Path, records, target: Path) -> int:
    # A small map grown as it fills, as Caffe's LMDB writer does: a 1 TiB map cannot be
    # reserved under an address-space limit.
    environment = lmdb.open(str(folder), map_size=INITIAL_MAP_BYTES, subdir=True, map_async=False)
    count, batch = 0, []
    try:
        for key, datum in records:
            batch.append((key, datum.SerializeToString()))
            count += 1
            if len(batch) == COMMIT_EVERY:
                _commit(lmdb, environment, batch)
                batch = []
        _commit(lmdb, environment, batch)
        environment.sync(True)
    except lmdb.Error as error:
        raise CaffeconfError.at(None, f"{target}: cannot write the database: {error}") from None
    finally:
        environment.close()
    if not count:
        raise CaffeconfError.at(None, f"{target}: no record to write: nothing was created")
    return count


def _commit(lmdb, environment, batch: list[tuple[bytes, bytes]]) -> None:
    """One transaction of `batch`, redone in a map twice as large whenever it fills the map."""
    while True:
        try:
            with environment.begin(write=True) as txn:
                for key, value in batch:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            environment.set_mapsize(environment.info()["map_size"] * 2)


def array_records(images: np.ndarray, labels: Iterable[int]) -> Iterator[tuple[bytes, messages.Datum]]:
    for index, (image, label) in enumerate(zip(images, labels)):
        yield f"{index:08d}".encode(), array_datum(image, label)


def read_list(path: str) -> list[tuple[str, int]]:
    """`filename label` lines (the last space separates them)."""
    try:
        return read_image_list(path)
    except OSError as error:
        raise CaffeconfError.at(None, f"cannot read list '{path}': {error.strerror}") from None


def check_resize(height: int, width: int) -> None:
    if height < 0 or width < 0 or height * width > MAX_IMAGE_PIXELS:
        raise CaffeconfError.at(None, f"a resize to {height}x{width} is out of bounds (each at least 0, "
                                      f"at most {MAX_IMAGE_PIXELS} pixels in all)")


def image_records(root: str, entries: list[tuple[str, int]], *, gray: bool, height: int, width: int,
                  encoded: bool, encode_type: str, skipped: list[str]) -> Iterator[tuple[bytes, messages.Datum]]:
    """Caffe's ReadImageToDatum per line; unreadable images are skipped (each named, with why, in
    `skipped`)."""
    import cv2

    check_resize(height, width)
    for index, (name, label) in enumerate(entries):
        try:
            datum = _image_datum(cv2, root + name, label, gray, height, width,
                                 encode_type or (Path(name).suffix.lstrip(".").lower() if encoded else ""))
        except CaffeconfError as error:
            skipped.append(error.diagnostics[0].message)
            continue
        except cv2.error:
            datum = None
        if datum is None:
            skipped.append(f"could not read image '{root + name}'")
            continue
        yield f"{index:08d}_{name}".encode(), datum


def _image_datum(cv2, path: str, label: int, gray: bool, height: int, width: int, encoding: str):
    check_image_size(path)
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        return None
    if height and width:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if not encoding:
        chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return array_datum(chw, label)
    # The file's own bytes when nothing changed them, as Caffe does; else re-encoded.
    unchanged = not (height and width) and not gray and Path(path).suffix.lstrip(".").lower() == encoding
    payload = Path(path).read_bytes() if unchanged else cv2.imencode("." + encoding, image)[1].tobytes()
    return messages.Datum(data=payload, label=int(label), encoded=True)
