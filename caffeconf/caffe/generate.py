"""caffe.proto -> caffe_pb2.py, through grpc_tools' bundled protoc.

    python -m caffeconf.caffe.generate          rewrite caffe_pb2.py
    python -m caffeconf.caffe.generate --check  exit 1 if caffe_pb2.py is stale

The committed module is protoc's output byte for byte, so `--check` is an exact
comparison. protoc stamps its own version into the output: regenerate with the
grpcio-tools release the project pins, or the check reports a difference.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from ..files import write_atomic

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "caffe.proto"
MODULE_FILE = PROTO_DIR / "caffe_pb2.py"


def fresh_module_bytes() -> bytes:
    """What protoc emits for caffe.proto right now."""
    from grpc_tools import protoc  # a build-time tool: imported only when generating

    with tempfile.TemporaryDirectory() as tmp:
        status = protoc.main(["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={tmp}", PROTO_FILE.name])
        if status != 0:
            raise RuntimeError(f"protoc failed on {PROTO_FILE} (exit status {status})")
        return Path(tmp, MODULE_FILE.name).read_bytes()


def gencode_version(module_source: bytes) -> str:
    """The protobuf version protoc stamped into a generated module, or '?'."""
    stamp = re.search(rb"^# Protobuf Python Version: (\S+)$", module_source, flags=re.MULTILINE)
    return stamp[1].decode() if stamp else "?"


def staleness() -> str | None:
    """Why the committed caffe_pb2.py differs from a fresh generation, or None when it does not."""
    committed = MODULE_FILE.read_bytes() if MODULE_FILE.exists() else b""
    fresh = fresh_module_bytes()
    if committed == fresh:
        return None
    return (f"{MODULE_FILE} is stale (committed gencode {gencode_version(committed)}, "
            f"this protoc makes {gencode_version(fresh)}): run `python -m caffeconf.caffe.generate`")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caffeconf.caffe.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether caffe_pb2.py is stale")
    args = parser.parse_args(argv)
    if args.check:
        reason = staleness()
        if reason:
            print(reason, file=sys.stderr)
        return 1 if reason else 0
    write_atomic(MODULE_FILE, fresh_module_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
