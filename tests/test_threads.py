"""--threads for the runner commands: PyTorch gets that many threads, and more threads than cores is
said (processes x threads over the cores slow each other down)."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from caffeconf.cli import main  # noqa: E402
from test_run_commands import tiny  # noqa: E402,F401  (fixture)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["run", "time"])
def test_threads_are_set_and_too_many_are_warned_about(tiny, capsys, restore_threads, command):
    cores = os.cpu_count() or 1
    assert main([command, str(tiny), "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1 and "warning" not in capsys.readouterr().err
    assert main([command, str(tiny), "--threads", str(cores + 1)]) == 0
    assert torch.get_num_threads() == cores + 1
    assert capsys.readouterr().err == (f"warning: 1 process(es) x {cores + 1} thread(s) exceed the {cores} CPU "
                                       "core(s): they will slow each other down (lower --nproc or --threads)\n")


def test_threads_must_be_positive(tiny, capsys):
    assert main(["test", str(tiny), "--weights", "w.caffemodel", "--threads", "0"]) == 1
    assert capsys.readouterr().err == "error: --threads must be at least 1, got 0\n"
