"""Signals on a real `caffeconf train` process (stop with a snapshot, resume to the same weights,
one continuous log; SIGHUP snapshots and goes on), the snapshot folder checked before training,
and the log kept across resumes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lmdb")
pytest.importorskip("sklearn")

from caffeconf.cli import main  # noqa: E402
from caffeconf.train.report import csv_rows  # noqa: E402
from caffeconf.train.signals import NONE, SNAPSHOT, STOP, Requests  # noqa: E402

from test_train_loop import digits, in_digits, write_solver  # noqa: E402,F401  (fixtures)

LONG = 100000  # a run that only a signal ends


def start_training(solver: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "caffeconf", "train", "--solver", str(solver), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(process: subprocess.Popen, pattern: str) -> list[str]:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"training ended before printing {pattern!r}:\n{''.join(lines)}{process.stderr.read()}")


def history(log: Path) -> list[tuple[str, str, str, str]]:
    """The log without its seconds column."""
    return [(row["iteration"], row["phase"], row["output"], row["value"]) for row in csv_rows(log)]


def test_ctrl_c_snapshots_and_a_resumed_run_ends_as_an_uninterrupted_one(in_digits, tmp_path):
    solver = write_solver(tmp_path / "long.prototxt", max_iter=LONG, display=1, snapshot_prefix=f'"{tmp_path / "cut"}"')
    process = start_training(solver, "--log", str(tmp_path / "cut.csv"))
    read_until(process, r"^Iteration 3,")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    stopped = re.search(r"stopped by SIGINT at iteration (\d+); snapshot (\S+) and (\S+)\n", err)
    assert stopped, err
    at = int(stopped[1])
    assert stopped[2] == str(tmp_path / f"cut_iter_{at}.caffemodel") and Path(stopped[2]).is_file()
    assert f"resume with (and your other options): caffeconf train --solver {solver} --resume {stopped[3]}" in err
    assert history(tmp_path / "cut.csv")[-1][0] == str(at - 1)  # the log of the interrupted run is written

    end = at + 4
    rest = write_solver(tmp_path / "rest.prototxt", max_iter=end, display=1, snapshot_prefix=f'"{tmp_path / "cut"}"')
    assert main(["train", "--solver", str(rest), "-q", "--log", str(tmp_path / "cut.csv"), "--resume", stopped[3]]) == 0
    whole = write_solver(tmp_path / "whole.prototxt", max_iter=end, display=1,
                         snapshot_prefix=f'"{tmp_path / "whole"}"')
    assert main(["train", "--solver", str(whole), "-q", "--log", str(tmp_path / "whole.csv")]) == 0
    assert (tmp_path / f"cut_iter_{end}.caffemodel").read_bytes() == (tmp_path / f"whole_iter_{end}.caffemodel").read_bytes()
    assert history(tmp_path / "cut.csv") == history(tmp_path / "whole.csv")
    seconds = [float(row["seconds"]) for row in csv_rows(tmp_path / "cut.csv")]
    assert seconds == sorted(seconds)  # the resumed run counts on from the interrupted one


def test_sighup_snapshots_and_goes_on_then_sigterm_stops(in_digits, tmp_path):
    solver = write_solver(tmp_path / "long.prototxt", max_iter=LONG, display=1)
    process = start_training(solver)
    read_until(process, r"^Iteration 2,")
    process.send_signal(signal.SIGHUP)
    snapshot = read_until(process, r"^Snapshotting to ")[-1]
    read_until(process, r"^Iteration \d+,")  # still training
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM at iteration" in err
    first = re.search(r"snap_iter_(\d+)\.caffemodel", snapshot)
    last = re.search(r"at iteration (\d+)", err)
    assert int(first[1]) < int(last[1])
    assert sorted(p.name for p in tmp_path.glob("snap_iter_*")) == sorted(
        f"snap_iter_{n}.{ext}" for n in (first[1], last[1]) for ext in ("caffemodel", "solverstate"))


def test_signal_effects_as_caffe_flags():
    stop_on_hup = Requests(sigint_effect="none", sighup_effect="stop")
    stop_on_hup.receive(signal.SIGINT)
    assert stop_on_hup.take() == NONE
    stop_on_hup.receive(signal.SIGHUP)
    assert (stop_on_hup.take(), stop_on_hup.take(), stop_on_hup.stopped_by) == (STOP, STOP, "SIGHUP")
    snapshots = Requests(sigint_effect="snapshot")
    snapshots.receive(signal.SIGTERM)
    assert (snapshots.take(), snapshots.take()) == (SNAPSHOT, NONE)
    default = Requests()
    default.receive(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait for the iteration to end
        default.receive(signal.SIGINT)


def test_snapshot_folder_is_checked_before_the_first_iteration(in_digits, tmp_path, capsys):
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=5, display=1,
                          snapshot_prefix=f'"{tmp_path / "missing" / "snap"}"')
    assert main(["train", "--solver", str(solver), "--log", str(tmp_path / "log.csv")]) == 1
    out, err = capsys.readouterr()
    assert err == f"error: {tmp_path / 'missing' / 'snap_iter_0.caffemodel'}: cannot write: folder " \
                  f"'{tmp_path / 'missing'}' does not exist\n"
    assert "Iteration" not in out


def test_a_resumed_log_replaces_the_rows_from_the_resume_iteration(in_digits, tmp_path):
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=8, snapshot=4, display=2)
    log = tmp_path / "log.csv"
    assert main(["train", "--solver", str(solver), "-q", "--log", str(log)]) == 0
    first = history(log)
    assert main(["train", "--solver", str(solver), "-q", "--log", str(log),
                 "--resume", str(tmp_path / "snap_iter_4.solverstate")]) == 0
    assert history(log) == first
    assert [int(i) for i, phase, _, _ in first if phase == "train"] == list(range(8))


class Terminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_line_shows_rate_eta_loss_and_lr_on_a_terminal_only(monkeypatch, quiet):
    from caffeconf.train.report import Report

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    report = Report(None, 10, quiet=quiet)
    for iteration in range(5):
        report.progress(iteration, loss=0.5, rate=0.01)
    if report.bar is not None:
        report.bar.refresh()  # tqdm draws at most every 0.1 s
    report.finish()
    if quiet:
        assert terminal.text == ""
    else:
        assert re.search(r"5/10 \[\d\d:\d\d<\d\d:\d\d, +[\d.?]+it/s\], loss 0\.5, lr 0\.01", terminal.text), terminal.text


def test_a_solver_given_with_a_config_says_it_replaces_the_configs_section(in_digits, tmp_path, capsys):
    from test_train_loop import CONFIG

    solver = write_solver(tmp_path / "solver.prototxt", max_iter=1)
    assert main(["train", str(CONFIG), "--solver", str(solver), "--log", str(tmp_path / "log.csv"), "-q"]) == 0
    assert f"note: --solver {solver} replaces the `solver:` section of {CONFIG}\n" in capsys.readouterr().err
    assert main(["train", "--solver", str(solver), "--log", str(tmp_path / "log.csv"), "-q"]) == 0
    assert "replaces" not in capsys.readouterr().err


def test_ctrl_c_stops_every_process_of_nproc_at_one_iteration_with_one_snapshot(tmp_path):
    import os

    import numpy as np

    from caffeconf.train.imageset import array_records, write_lmdb

    rng = np.random.default_rng(0)
    write_lmdb(tmp_path / "db", array_records(rng.integers(0, 256, size=(40, 1, 4, 4), dtype=np.uint8),
                                              rng.integers(0, 4, size=40)))
    net = tmp_path / "net.prototxt"
    net.write_text(f'layer {{ name: "data" type: "Data" top: "data" top: "label" data_param {{ source: "{tmp_path / "db"}"'
                   ' batch_size: 4 backend: LMDB } }\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param {'
                   ' num_output: 4 weight_filler { type: "xavier" } } }\n'
                   'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: {LONG}\ndisplay: 1\n'
                      f'snapshot_prefix: "{tmp_path / "snap"}"\n')
    process = subprocess.Popen([sys.executable, "-m", "caffeconf", "train", "--solver", str(solver), "--nproc", "2",
                                "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    read_until(process, r"^Iteration 3,")
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches every process of the group
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    at = re.search(r"stopped by SIGINT at iteration (\d+)", err)[1]
    assert err.count("stopped by SIGINT") == 1
    assert sorted(p.name for p in tmp_path.glob("snap_iter_*")) == [f"snap_iter_{at}.caffemodel",
                                                                    f"snap_iter_{at}.solverstate"]
