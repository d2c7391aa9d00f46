"""caffeconf train / test end to end on the digits LMDB: accuracy, OpenCV agreement of the saved
model, exact resume, atomic snapshots, Caffe's log lines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lmdb")
pytest.importorskip("sklearn")
cv2 = pytest.importorskip("cv2")

from caffeconf.cli import main  # noqa: E402
from caffeconf.train.report import csv_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "lenet_digits.yaml"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from caffeconf.train.digits import write_digits

    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "build" / "digits")
    return root


@pytest.fixture
def in_digits(digits, monkeypatch):
    """Run in the folder holding build/digits (the config's relative sources resolve from there)."""
    monkeypatch.chdir(digits)
    return digits


def write_solver(path: Path, **fields) -> Path:
    settings = {"net": f'"{CONFIG}"', "test_iter": 3, "test_interval": 0, "base_lr": 0.01, "momentum": 0.9,
                "weight_decay": 0.0005, "lr_policy": '"inv"', "gamma": 0.0001, "power": 0.75, "display": 0,
                "max_iter": 10, "snapshot": 0, "snapshot_prefix": f'"{path.parent / "snap"}"', "random_seed": 7}
    settings.update(fields)
    path.write_text("".join(f"{key}: {value}\n" for key, value in settings.items()))
    return path


def losses(log: Path) -> dict[int, str]:
    return {int(row["iteration"]): row["value"] for row in csv_rows(log)
            if row["phase"] == "train" and row["output"] == "loss"}


def test_short_demo_learns_digits_and_opencv_agrees(in_digits, tmp_path, capsys):
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=300, test_interval=300, display=100)
    assert main(["train", "--solver", str(solver), "--log", str(tmp_path / "log.csv")]) == 0
    out = capsys.readouterr().out
    assert "Iteration 100, loss = " in out and "Train net output #0: loss = " in out
    assert "Snapshotting to " + str(tmp_path / "snap_iter_300.caffemodel") in out
    assert (tmp_path / "snap_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tests = [row for row in csv_rows(tmp_path / "log.csv") if row["output"] == "accuracy"]
    assert [row["iteration"] for row in tests] == ["0", "300"]  # test_initialization defaults to true
    assert float(tests[0]["value"]) < 0.5 and float(tests[1]["value"]) >= 0.93

    deploy = tmp_path / "deploy.prototxt"
    assert main(["compile", str(CONFIG), "--stage", "deploy", "-o", str(deploy)]) == 0
    ours, theirs = predictions(deploy, tmp_path / "snap_iter_300.caffemodel")
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def predictions(deploy: Path, weights: Path):
    from caffeconf.compile.load import StateChoice, load
    from caffeconf.run.session import build_model
    from caffeconf.train.digits import digits_split

    _, (images, _) = digits_split()
    batch = images[:50].astype(np.float32) / 256
    net = load(str(deploy), StateChoice("TEST")).net
    model = build_model(net, str(weights), "TEST", 0, torch.device("cpu"))
    with torch.no_grad():
        ours = model({"data": torch.from_numpy(batch)})["prob"].numpy()
    opencv = cv2.dnn.readNetFromCaffe(str(deploy), str(weights))
    opencv.setInput(batch)
    return ours, opencv.forward("prob").reshape(ours.shape)


def test_resume_follows_the_uninterrupted_trajectory(in_digits, tmp_path):
    whole = write_solver(tmp_path / "whole.prototxt", max_iter=12, snapshot=6,
                         snapshot_prefix=f'"{tmp_path / "whole"}"', type='"Adam"', base_lr=0.001)
    assert main(["train", "--solver", str(whole), "-q", "--log", str(tmp_path / "whole.csv")]) == 0
    resumed = write_solver(tmp_path / "resumed.prototxt", max_iter=12, snapshot=6,
                           snapshot_prefix=f'"{tmp_path / "resumed"}"', type='"Adam"', base_lr=0.001)
    assert main(["train", "--solver", str(resumed), "-q", "--log", str(tmp_path / "resumed.csv"),
                 "--resume", str(tmp_path / "whole_iter_6.solverstate")]) == 0
    first, second = losses(tmp_path / "whole.csv"), losses(tmp_path / "resumed.csv")
    assert sorted(second) == list(range(6, 12))
    assert {i: first[i] for i in second} == second
    assert (tmp_path / "whole_iter_12.caffemodel").read_bytes() == (tmp_path / "resumed_iter_12.caffemodel").read_bytes()
    assert (tmp_path / "whole_iter_12.solverstate").read_bytes() != b""


@pytest.mark.parametrize("start", ["resumed at max_iter", "max_iter 0"])
def test_a_snapshot_before_any_iteration_keeps_the_history(in_digits, tmp_path, start):
    from caffeconf.caffe.solverstate import read_snapshot

    first = write_solver(tmp_path / "first.prototxt", max_iter=3, type='"Adam"', snapshot_prefix=f'"{tmp_path / "a"}"')
    assert main(["train", "--solver", str(first), "-q"]) == 0
    again = write_solver(tmp_path / "again.prototxt", max_iter=3 if start == "resumed at max_iter" else 0,
                         type='"Adam"', snapshot_prefix=f'"{tmp_path / "b"}"')
    resume = ["--resume", str(tmp_path / "a_iter_3.solverstate")] if start == "resumed at max_iter" else []
    assert main(["train", "--solver", str(again), "-q", *resume]) == 0
    written = read_snapshot(str(tmp_path / f"b_iter_{3 if resume else 0}.solverstate"))
    assert len(written.history) == 16  # Adam's two sets for conv1, conv2, ip1, ip2 (weights, biases)
    if resume:
        original = read_snapshot(str(tmp_path / "a_iter_3.solverstate"))
        assert all((mine == theirs).all() for mine, theirs in zip(written.history, original.history))
    else:
        assert not any(h.any() for h in written.history)


def test_a_failed_snapshot_leaves_no_partial_file(in_digits, tmp_path, monkeypatch):
    import caffeconf.files

    real_replace = os.replace

    def dying_replace(source, target):
        if str(target).endswith(".solverstate"):
            raise KeyboardInterrupt  # killed between writing the state and putting it in place
        real_replace(source, target)

    monkeypatch.setattr(caffeconf.files.os, "replace", dying_replace)
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=4, snapshot=2)
    assert main(["train", "--solver", str(solver), "-q"]) == 130
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["snap_iter_2.caffemodel", "snap_log.csv", "solver.prototxt"]  # the log is kept as it goes
    from caffeconf.caffe.weights import read_caffemodel

    assert set(read_caffemodel(tmp_path / "snap_iter_2.caffemodel")) == {"conv1", "conv2", "ip1", "ip2"}


def test_caffe_test_averages_each_output(in_digits, tmp_path, capsys):
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=20)
    assert main(["train", "--solver", str(solver), "-q"]) == 0
    capsys.readouterr()
    assert main(["test", str(CONFIG), "--weights", str(tmp_path / "snap_iter_20.caffemodel"),
                 "--iterations", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    batches = [float(line.split(" = ")[1]) for line in lines if line.startswith("Batch") and "accuracy" in line]
    assert len(batches) == 3
    summary = [line for line in lines if line.startswith("accuracy = ")]
    assert summary == [f"accuracy = {sum(batches) / 3:.6g}"]


def test_solver_relative_paths_resolve_from_the_current_directory(in_digits, tmp_path):
    (in_digits / "runs").mkdir(exist_ok=True)
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=2, snapshot_prefix='"runs/rel"')
    assert main(["train", "--solver", str(solver), "-q"]) == 0
    assert (in_digits / "runs" / "rel_iter_2.caffemodel").is_file()
    assert (in_digits / "runs" / "rel_iter_2.solverstate").is_file()


def test_missing_database_is_a_located_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=2)
    assert main(["train", "--solver", str(solver), "-q"]) == 1
    err = capsys.readouterr().err
    assert "lenet_digits.yaml:" in err and "layer 'digits' (Data): no LMDB at 'build/digits/digits_train_lmdb'" in err


def test_a_refused_net_leaves_the_previous_log_as_it_was(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=2)
    log = tmp_path / "snap_log.csv"
    log.write_text("iteration,seconds,phase,output,value\n0,0.1,train,loss,2.3\n")
    assert main(["train", "--solver", str(solver), "-q"]) == 1
    assert "no LMDB at" in capsys.readouterr().err
    assert log.read_text() == "iteration,seconds,phase,output,value\n0,0.1,train,loss,2.3\n"

def test_resume_refuses_a_file_that_is_not_a_solver_state(tmp_path):
    from caffeconf.errors import CaffeconfError
    from caffeconf.caffe import caffe_pb2
    from caffeconf.caffe.solverstate import read_snapshot

    weights = tmp_path / "net_iter_10.caffemodel"
    net = caffe_pb2.NetParameter(name="n")
    net.layer.add(name="ip", type="InnerProduct").blobs.add().data.extend([1.0, 2.0])
    weights.write_bytes(net.SerializeToString())
    with pytest.raises(CaffeconfError, match="not a binary SolverState"):
        read_snapshot(str(weights))


@pytest.mark.parametrize("iter_size", [0, -3])
def test_an_iter_size_below_one_is_refused_before_training(tmp_path, monkeypatch, capsys, iter_size):
    monkeypatch.chdir(tmp_path)
    solver = write_solver(tmp_path / "solver.prototxt", max_iter=2, iter_size=iter_size)
    assert main(["train", "--solver", str(solver), "-q"]) == 1
    assert capsys.readouterr().err == (f"{solver}:15:1: error: iter_size must be at least 1, got {iter_size}\n"
                                       f"    iter_size: {iter_size}\n    ^\n")


def test_a_yaml_solver_given_as_net_is_read_as_the_solver(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "solver.yaml").write_text(f"net: {CONFIG}\nbase_lr: 0.01\nmax_iter: 2\niter_size: 0\nlr_policy: Step\n")
    assert main(["train", "solver.yaml", "-q"]) == 1
    assert capsys.readouterr().err == ("solver.yaml:4:1: error: iter_size must be at least 1, got 0\n"
                                       "    iter_size: 0\n    ^~~~~~~~~\n"
                                       "solver.yaml:5:1: error: unknown lr_policy 'Step'\n"
                                       "    lr_policy: Step\n    ^~~~~~~~~\n  hint: did you mean 'step'?\n")


@pytest.mark.parametrize("field, value", [("iter", -1), ("current_step", -2)])
def test_resume_refuses_a_negative_iteration(tmp_path, field, value):
    from caffeconf.errors import CaffeconfError
    from caffeconf.caffe import caffe_pb2
    from caffeconf.caffe.solverstate import read_snapshot

    state = tmp_path / "net_iter_10.solverstate"
    fields = {"iter": 10, "current_step": 0, field: value}
    state.write_bytes(caffe_pb2.SolverState(learned_net="net_iter_10.caffemodel", **fields).SerializeToString())
    with pytest.raises(CaffeconfError) as caught:
        read_snapshot(str(state))
    assert caught.value.diagnostics[0].message == (
        f"{state}: the solver state's iter ({fields['iter']}) and current_step ({fields['current_step']}) "
        "must not be negative")


def test_resume_refuses_a_history_shape_whose_product_overflows(tmp_path):
    from caffeconf.errors import CaffeconfError
    from caffeconf.caffe import caffe_pb2
    from caffeconf.caffe.solverstate import read_snapshot

    state = tmp_path / "net_iter_1.solverstate"
    message = caffe_pb2.SolverState(iter=1)
    message.history.add().shape.dim.extend([2**32, 2**32])  # 2^64: 0 once wrapped in int64
    state.write_bytes(message.SerializeToString())
    with pytest.raises(CaffeconfError, match="a history blob in the solver state is broken: "
                                             r"a blob of shape \(4294967296, 4294967296\) holds 0 values"):
        read_snapshot(str(state))
