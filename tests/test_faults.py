"""Faults around the files a command writes: a kill -9 at random moments while training snapshots
every iteration, a full disk, a read-only folder, a file-size limit. Whatever happens, a command
says what went wrong, an existing output keeps its old bytes, no temporary file stays behind,
and a resumed run ends byte-identical to an uninterrupted one."""

from __future__ import annotations

import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

GOOGLENET = str(ROOT / "configs" / "googlenet.yaml")
END = 12  # iterations of the runs compared

NET = """caffeconf: 1
layers:
  - {name: data, type: DummyData, top: [data, label],
     dummy_data_param: {shape: [{dim: [8, 64]}, {dim: [8]}], data_filler: [{type: gaussian}, {type: constant}]}}
  - {name: ip1, type: InnerProduct, bottom: data, top: ip1,
     inner_product_param: {num_output: 2048, weight_filler: {type: xavier}}}
  - {name: ip2, type: InnerProduct, bottom: ip1, top: ip2,
     inner_product_param: {num_output: 4, weight_filler: {type: xavier}}}
  - {name: loss, type: SoftmaxWithLoss, bottom: [ip2, label], top: loss}
solver: {base_lr: 0.01, momentum: 0.9, lr_policy: fixed, max_iter: %d, display: 1, snapshot: 1, random_seed: 5}
"""


def caffeconf(*args: str, cwd: Path, limit=None, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "caffeconf", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit, **popen)


def finished(*args: str, cwd: Path, limit=None, timeout: float = 120) -> tuple[int, str]:
    process = caffeconf(*args, cwd=cwd, limit=limit)
    _, err = process.communicate(timeout=timeout)
    assert "Traceback" not in err and "internal error" not in err, err
    return process.returncode, err


def snapshots(folder: Path, kind: str) -> set[int]:
    return {int(re.search(r"_iter_(\d+)\.", p.name)[1]) for p in folder.glob(f"net_iter_*.{kind}")}


@pytest.mark.slow
def test_kill_9_while_snapshotting_never_costs_a_resume_its_exactness(tmp_path):
    pytest.importorskip("torch")
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "net.yaml").write_text(NET % END)
    assert finished("train", "net.yaml", "-q", cwd=reference) == (0, "")
    expected = (reference / f"net_iter_{END}.caffemodel").read_bytes()
    trials = random.Random(0)
    for trial in range(2):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        (folder / "net.yaml").write_text(NET % 100000)
        process = caffeconf("train", "net.yaml", cwd=folder)
        target = trials.randint(2, 6)
        for line in process.stdout:
            if line.startswith(f"Iteration {target},"):
                break
        time.sleep(trials.uniform(0, 0.05))  # somewhere inside or between snapshot writes
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        states, models = snapshots(folder, "solverstate"), snapshots(folder, "caffemodel")
        assert states <= models, "a .solverstate is visible without its .caffemodel"
        assert states, "no snapshot was written before the kill"
        (folder / "net.yaml").write_text(NET % END)
        code, err = finished("train", "net.yaml", "-q", "--resume", f"net_iter_{max(states)}.solverstate", cwd=folder)
        assert code == 0, err
        assert (folder / f"net_iter_{END}.caffemodel").read_bytes() == expected
        assert not [p.name for p in folder.iterdir() if ".tmp" in p.name or p.name.startswith(".")]


def _filled_tmpfs(folder: Path, options: str) -> Path:
    """A small tmpfs at `folder` (root where mounts are allowed, else the test is skipped)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root in a machine that allows mounts)")
    return folder


@pytest.fixture
def full_disk(tmp_path):
    disk = _filled_tmpfs(tmp_path / "disk", "size=64k")
    try:
        (disk / "out.prototxt").write_text("old\n")
        with open(disk / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:
                pass
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture
def read_only(tmp_path):
    folder = _filled_tmpfs(tmp_path / "ro", "ro,size=64k")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _unchanged_and_clean(disk: Path) -> None:
    assert (disk / "out.prototxt").read_text() == "old\n"
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "out.prototxt"]


def test_compile_onto_a_full_disk_keeps_the_old_output(full_disk, tmp_path):
    code, err = finished("compile", GOOGLENET, "-o", str(full_disk / "out.prototxt"), cwd=tmp_path)
    assert (code, err) == (1, f"error: {full_disk / 'out.prototxt'}: cannot write: No space left on device\n")
    _unchanged_and_clean(full_disk)


def test_training_onto_a_full_disk_says_so_and_leaves_nothing_half_written(full_disk, tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "net.yaml").write_text(NET % 3)
    code, err = finished("train", "net.yaml", "-q", "--set", f"solver.snapshot_prefix={full_disk / 'net'}",
                         cwd=tmp_path)
    assert code == 1
    assert re.fullmatch(rf"error: {re.escape(str(full_disk))}/net_(log\.csv|iter_1\.caffemodel): cannot write: "
                        r"No space left on device\n", err), err
    _unchanged_and_clean(full_disk)


def test_outputs_into_a_read_only_folder_are_refused_before_any_work(read_only, tmp_path):
    code, err = finished("compile", GOOGLENET, "-o", str(read_only / "out.prototxt"), cwd=tmp_path)
    assert (code, err) == (1, f"error: {read_only / 'out.prototxt'}: cannot write: folder '{read_only}' is not "
                              "writable\n")
    pytest.importorskip("torch")
    (tmp_path / "net.yaml").write_text(NET % 3)
    code, err = finished("train", "net.yaml", "-q", "--set", f"solver.snapshot_prefix={read_only / 'net'}",
                         cwd=tmp_path)
    assert code == 1 and "is not writable" in err and "Iteration" not in err
    assert list(read_only.iterdir()) == []


def _file_size_limit() -> None:
    """Writes past 16 KiB fail with EFBIG, as on a disk that fills (SIGXFSZ ignored, so they fail
    rather than kill)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_a_write_cut_short_keeps_the_old_output_everywhere(tmp_path):
    old = tmp_path / "out.prototxt"
    old.write_text("old\n")
    code, err = finished("compile", GOOGLENET, "-o", str(old), cwd=tmp_path, limit=_file_size_limit)
    assert (code, err) == (1, f"error: {old}: cannot write: File too large\n")
    assert old.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.prototxt"]
