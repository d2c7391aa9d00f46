"""A fork's caffe.proto -> a `Dialect`: the message types every part of caffeconf reads and writes.

BVLC's caffe.proto (the generated `caffe_pb2`) is the default and costs nothing. A fork's
caffe.proto is compiled at run time by grpcio-tools' protoc (the same compiler that generates
`caffe_pb2`, so BVLC's and the fork's schemas mean the same thing) into a descriptor set, cached
under the file's sha256, and loaded into a descriptor pool of its own, so its `caffe.*` messages
never collide with BVLC's in protobuf's default pool.

The dialect in force is set once per command (`use`) and read through `current()`; the schema's
consumers go through `caffe.messages`, which asks the current dialect.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from ..errors import CaffeconfError, Diagnostic, Span, SOURCES
from ..files import read_bounded, write_atomic
from . import caffe_pb2

BVLC_PROTO = Path(__file__).resolve().parent / "caffe.proto"
PACKAGE = "caffe"


@dataclass(frozen=True, eq=False)
class Dialect:
    """One caffe.proto's message types; `name` is "BVLC" or the fork's proto path."""

    name: str
    pool: descriptor_pool.DescriptorPool
    digest: str  # sha256 of the .proto text
    proto_path: Path | None = None  # None for BVLC's bundled proto
    _classes: dict = field(default_factory=dict, repr=False)

    @property
    def is_bvlc(self) -> bool:
        return self.proto_path is None

    def descriptor(self, message_name: str) -> Descriptor:
        """The descriptor of a message type, e.g. "ConvolutionParameter"."""
        try:
            return self.pool.FindMessageTypeByName(f"{PACKAGE}.{message_name}")
        except KeyError:
            raise CaffeconfError.at(None, f"{self.name} defines no message {message_name}, which caffeconf "
                                          "needs: is this a caffe.proto?") from None

    def message_class(self, message_name: str) -> type[Message]:
        if message_name not in self._classes:
            self._classes[message_name] = (getattr(caffe_pb2, message_name) if self.is_bvlc
                                           else message_factory.GetMessageClass(self.descriptor(message_name)))
        return self._classes[message_name]

    def has_message(self, message_name: str) -> bool:
        try:
            self.pool.FindMessageTypeByName(f"{PACKAGE}.{message_name}")
        except KeyError:
            return False
        return True


@functools.cache
def bvlc() -> Dialect:
    """BVLC Caffe's schema: the generated caffe_pb2, in protobuf's default pool."""
    return Dialect("BVLC", caffe_pb2.DESCRIPTOR.pool, _bvlc_digest())


@functools.cache
def _bvlc_digest() -> str:
    return hashlib.sha256(BVLC_PROTO.read_bytes()).hexdigest() if BVLC_PROTO.exists() else ""


_current: contextvars.ContextVar[Dialect | None] = contextvars.ContextVar("caffeconf_dialect", default=None)


def current() -> Dialect:
    """The dialect in force: the one `use` set, else BVLC."""
    return _current.get() or bvlc()


@contextlib.contextmanager
def use(dialect: Dialect | None) -> Iterator[Dialect]:
    """Make `dialect` (None: keep the one in force) current while the block runs."""
    token = _current.set(dialect or current())
    try:
        yield current()
    finally:
        _current.reset(token)


def adopt(dialect: Dialect, at: Span | None = None, because: str = "the net") -> None:
    """Make `dialect` current for the rest of the enclosing `use` block (a config naming its proto).
    A different fork already in force is an error: one net has one schema."""
    active = current()
    if active.digest == dialect.digest:
        return
    if not active.is_bvlc:
        raise CaffeconfError.at(at, f"{because} names {dialect.name}, but {active.name} (a different "
                                    "caffe.proto) is already in force: one net has one schema")
    _current.set(dialect)


def load_dialect(path: str | Path, at: Span | None = None) -> Dialect:
    """The dialect of the caffe.proto at `path` (BVLC's own text gives the BVLC dialect).
    A proto that does not compile is a CaffeconfError located in it."""
    path = Path(path)
    try:
        text = read_bounded(path)
    except OSError as error:
        raise CaffeconfError.at(at, f"cannot read caffe.proto {path}: {error.strerror or error}") from None
    digest = hashlib.sha256(text).hexdigest()
    if digest == _bvlc_digest():
        return bvlc()
    return _fork_dialect(str(path), digest, text)


@functools.cache
def _fork_dialect(name: str, digest: str, text: bytes) -> Dialect:
    files = descriptor_pb2.FileDescriptorSet.FromString(_descriptor_set(name, digest, text))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    dialect = Dialect(name, pool, digest, Path(name))
    for required in ("NetParameter", "LayerParameter", "SolverParameter", "BlobProto"):
        dialect.descriptor(required)
    return dialect


def cache_dir() -> Path:
    """Where compiled protos are kept: $CAFFECONF_CACHE, else $XDG_CACHE_HOME/caffeconf, else ~/.cache/caffeconf."""
    if os.environ.get("CAFFECONF_CACHE"):
        return Path(os.environ["CAFFECONF_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "caffeconf"


def _descriptor_set(name: str, digest: str, text: bytes) -> bytes:
    """The serialized FileDescriptorSet of the proto, from the cache or from protoc."""
    cached = cache_dir() / "dialects" / f"{digest}.pb"
    if cached.is_file():
        return cached.read_bytes()
    compiled = compile_proto(name, text)
    with contextlib.suppress(OSError):  # an unwritable cache only costs the next run a compile
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, compiled)
    return compiled


def compile_proto(name: str, text: bytes) -> bytes:
    """protoc's FileDescriptorSet for `text` (read from `name`); its errors located in `name`."""
    if importlib.util.find_spec("grpc_tools") is None:
        raise CaffeconfError.at(None, f"reading {name} needs protoc from grpcio-tools: "
                                      "pip install 'caffeconf[dialects]'") from None
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "caffe.proto").write_bytes(text)
        out = Path(folder, "caffe.pb")
        # protoc reports on its own stderr (C++), so it runs in a child process we can read
        done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={folder}",
                               f"--descriptor_set_out={out}", "caffe.proto"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            raise _protoc_error(name, text, done.stderr)
        return out.read_bytes()


_PROTOC_LINE = re.compile(r"^(?:.*/)?caffe\.proto:(\d+):(\d+): (.*)$", re.MULTILINE)


def _protoc_error(name: str, text: bytes, stderr: str) -> CaffeconfError:
    SOURCES.register(name, text.decode("utf-8", errors="replace"))
    found: dict[int, Diagnostic] = {}
    for line, col, message in _PROTOC_LINE.findall(stderr):  # protoc counts from 1, as we do
        # protoc's later complaints about a line follow from its first one
        found.setdefault(int(line), Diagnostic(f"{message[:1].lower()}{message[1:]} (protoc)",
                                               Span(name, int(line), int(col))))
    if found:
        return CaffeconfError(list(found.values()))
    return CaffeconfError.at(Span(name, 1, 1), f"protoc cannot compile this caffe.proto: {stderr.strip() or '?'}")
