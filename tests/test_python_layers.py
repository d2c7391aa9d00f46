"""Python layers (`type: "Python"`): structural in validate/inspect/import/diff; run, time, test and
train run them only with --allow-python-layers, through pycaffe's layer interface
(tests/python_layers/tiny_layers.py), inside autograd."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf import CaffeconfError  # noqa: E402
from caffeconf.cli import main  # noqa: E402
from caffeconf.compile.load import load  # noqa: E402
from caffeconf.run import pycaffe  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402

LAYERS = Path(__file__).resolve().parent / "python_layers"
LAYER_SOURCE = (LAYERS / "tiny_layers.py").read_text().splitlines()

AFFINE_NET = """name: "p"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "py" type: "Python" bottom: "data" top: "out"
  python_param { module: "tiny_layers" layer: "%s" param_str: '{"scale": 2, "shift": 0.5}' } }
"""

TRAIN_NET = """name: "regress"
layer { name: "ramp" type: "Python" top: "data" top: "label"
  python_param { module: "tiny_layers" layer: "Ramp" param_str: "4,3" } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 1 weight_filler { type: "constant" value: 0 } } }
layer { name: "loss" type: "Python" bottom: "fc" bottom: "label" top: "loss" loss_weight: 1
  python_param { module: "tiny_layers" layer: "HalfSquaredDistance" } }
"""


@pytest.fixture
def layers_on_path(monkeypatch):
    """tests/python_layers on sys.path, and tiny_layers not imported before or after the test."""
    monkeypatch.syspath_prepend(str(LAYERS))
    sys.modules.pop("tiny_layers", None)
    yield
    sys.modules.pop("tiny_layers", None)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def line_of(text: str) -> int:
    return next(number for number, line in enumerate(LAYER_SOURCE, 1) if text in line)


def net_of(path: Path):
    return load(str(path)).net


# ------------------------------------------------------------------ without the flag


REFUSAL = ("{net}:3:1: error: layer 'py' (Python module tiny_layers): a Python layer imports and runs its "
           "module's code, which caffeconf does only when given --allow-python-layers")


@pytest.mark.parametrize("command", [["run"], ["time", "--iterations", "1"], ["test", "--weights", "absent.caffemodel"]])
def test_running_commands_refuse_python_layers_without_the_flag(command, layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    if command[0] == "test":
        assert main(["run", str(write(tmp_path / "plain.prototxt", AFFINE_NET.split("layer { name: \"py\"")[0])),
                     "--write-weights", str(tmp_path / "absent.caffemodel")]) == 0
        command = ["test", "--weights", str(tmp_path / "absent.caffemodel")]
        capsys.readouterr()
    assert main([command[0], str(net), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == REFUSAL.format(net=net)
    assert "hint: pass --allow-python-layers (allow_python_layers=True in the Python API) if you trust the module" in err
    assert "tiny_layers" not in sys.modules  # refused before its code was imported


def test_train_refuses_python_layers_without_the_flag(layers_on_path, tmp_path, capsys):
    solver = write_solver(tmp_path, write(tmp_path / "net.prototxt", TRAIN_NET), max_iter=1)
    assert main(["train", "--solver", str(solver), "-q"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert [line.split(": error: ")[1].split(":")[0] for line in errors] == [
        "layer 'ramp' (Python module tiny_layers)", "layer 'loss' (Python module tiny_layers)"]
    assert "tiny_layers" not in sys.modules and not list(tmp_path.glob("snap*.caffemodel"))


def test_export_refuses_python_layers(layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    assert main(["export", str(net), "-o", str(tmp_path / "net.onnx")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:3:1: error: layer 'py' (Python module tiny_layers): an ONNX graph cannot hold a Python layer's code")


def test_the_api_model_refuses_python_layers_without_the_flag(layers_on_path, tmp_path):
    from caffeconf import Model

    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    with pytest.raises(CaffeconfError, match="only when given --allow-python-layers"):
        Model(str(net), device="cpu")
    model = Model(str(net), device="cpu", allow_python_layers=True)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(model({"data": x})["out"].numpy(), 2 * x + 0.5)


# ------------------------------------------------------------------ structural treatment


def test_validate_import_and_diff_treat_python_layers_structurally(layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    assert main(["validate", str(net)]) == 0
    config = tmp_path / "net.yaml"
    assert main(["import", str(net), "-o", str(config)]) == 0
    assert 'python_param: {module: tiny_layers, layer: Affine, param_str: "{\\"scale\\": 2, \\"shift\\": 0.5}"}' \
        in config.read_text()
    assert main(["diff", str(net), str(config)]) == 0
    assert "tiny_layers" not in sys.modules



@pytest.mark.parametrize("written", ['layer: "Affine"', 'module: "tiny_layers"'])
def test_validate_refuses_a_python_layer_that_names_no_module_or_no_class(written, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", 'name: "n"\n'
                'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
                f'layer {{ name: "p" type: "Python" bottom: "data" top: "y" python_param {{ {written} }} }}\n')
    assert main(["validate", str(net)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{net}:3:1: error: layer 'p' (Python): python_param needs both `module` and `layer` (the class)")

def test_inspect_shows_unknown_shapes_with_a_note(layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    assert main(["inspect", str(net)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[3].split() == ["py", "Python", "?", "?", "?", "?"]
    assert "tiny_layers" not in sys.modules
    assert err == (f"{net}:3:1: note: layer 'py' (Python module tiny_layers) shapes its tops in its own code, which "
                   "inspect does not run: its shapes, and those computed from them, are '?'\n")


# ------------------------------------------------------------------ running them


@pytest.mark.parametrize("phase, offset", [("TEST", 0.0), ("TRAIN", 1000.0)])
def test_run_gives_the_layers_formula(phase, offset, layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert main(["run", str(net), "--allow-python-layers", "--phase", phase, "--input", f"data={tmp_path / 'x.npy'}",
                 "-o", str(out)]) == 0
    np.testing.assert_allclose(np.load(out)["out"], 2 * x + 0.5 + offset, rtol=1e-6)
    assert "caffe" not in sys.modules or sys.modules["caffe"] is not pycaffe  # the stand-in is not left behind


def test_a_module_beside_the_net_is_found(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "nets"
    folder.mkdir()
    write(folder / "beside_the_net.py", "import caffe\n\nclass Negate(caffe.Layer):\n"
          "    def setup(self, bottom, top): pass\n"
          "    def reshape(self, bottom, top): top[0].reshape(*bottom[0].shape)\n"
          "    def forward(self, bottom, top): top[0].data[...] = -bottom[0].data\n"
          "    def backward(self, top, propagate_down, bottom): pass\n")
    net = write(folder / "net.prototxt", (AFFINE_NET % "Negate").replace("tiny_layers", "beside_the_net"))
    monkeypatch.setitem(sys.modules, "beside_the_net", None)
    del sys.modules["beside_the_net"]  # (monkeypatch removes it again after the test)
    model = CaffeNet(net_of(net), allow_python_layers=True)
    x = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(model({"data": x})["out"], -x)
    assert str(folder) not in sys.path  # the folder was searched only while the module was imported


def test_a_data_layer_is_called_as_caffe_calls_it(layers_on_path, tmp_path):
    net = write(tmp_path / "net.prototxt", TRAIN_NET.split('layer { name: "fc"')[0])
    model = CaffeNet(net_of(net), phase="TRAIN", allow_python_layers=True)
    tiny_layers = sys.modules["tiny_layers"]
    tiny_layers.Ramp.calls.clear()
    first, second = model({}), model({})
    assert tiny_layers.Ramp.calls == ["setup", "reshape", "reshape", "forward", "reshape", "forward"]
    assert torch.equal(first["data"], torch.arange(12.0).reshape(4, 3)) and torch.equal(first["data"], second["data"])
    assert torch.equal(first["label"], torch.tensor([[3.0], [12.0], [21.0], [30.0]]))


def test_backward_runs_the_layers_backward_in_autograd(layers_on_path, tmp_path):
    """A Python layer feeding a Python loss (loss_weight 2): d loss / d data is the formula's."""
    text = (AFFINE_NET % "Affine").replace('top: "data" input_param { shape { dim: 2 dim: 3 } }',
                                            'top: "data" top: "target" input_param { shape { dim: 2 dim: 3 } }')
    text += ('layer { name: "loss" type: "Python" bottom: "out" bottom: "target" top: "loss" loss_weight: 2\n'
             '  python_param { module: "tiny_layers" layer: "HalfSquaredDistance" } }\n')
    model = CaffeNet(net_of(write(tmp_path / "net.prototxt", text)), phase="TEST", allow_python_layers=True)
    generator = torch.Generator().manual_seed(3)
    x, target = torch.randn(2, 3, generator=generator, requires_grad=True), torch.randn(2, 3, generator=generator)
    blobs = model({"data": x, "target": target}, keep_all=True)
    loss = model.loss(blobs)
    loss.backward()
    reference = 2 * ((2 * x.detach() + 0.5 - target) ** 2).sum() / 2 / 2
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    torch.testing.assert_close(x.grad, 2 * 2 * (2 * x.detach() + 0.5 - target) / 2)


def write_solver(folder: Path, net: Path, **fields) -> Path:
    settings = {"net": f'"{net}"', "base_lr": 0.002, "lr_policy": '"fixed"', "display": 0, "max_iter": 10,
                "snapshot": 0, "snapshot_after_train": "false", "snapshot_prefix": f'"{folder / "snap"}"',
                "random_seed": 1, "solver_mode": "CPU"}
    settings.update(fields)
    return write(folder / "solver.prototxt", "".join(f"{key}: {value}\n" for key, value in settings.items()))


def test_train_learns_through_python_data_and_loss_layers(layers_on_path, tmp_path, capsys):
    from caffeconf.train.report import csv_rows

    solver = write_solver(tmp_path, write(tmp_path / "net.prototxt", TRAIN_NET), max_iter=8)
    log = tmp_path / "log.csv"
    assert main(["train", "--solver", str(solver), "--allow-python-layers", "--log", str(log), "-q",
                 "--plot", str(tmp_path / "plot.png")]) == 0
    losses = [float(row["value"]) for row in csv_rows(log) if row["phase"] == "train" and row["output"] == "loss"]
    data = np.arange(12.0).reshape(4, 3)
    label = data.sum(1)
    assert losses[0] == pytest.approx((label ** 2).sum() / 4 / 2, rel=1e-6)  # the weights start at 0
    assert len(losses) == 8 and all(later < earlier for earlier, later in zip(losses, losses[1:]))


def test_the_api_trains_python_layers_when_allowed(layers_on_path, tmp_path, capsys):
    import caffeconf

    solver = write_solver(tmp_path, write(tmp_path / "net.prototxt", TRAIN_NET), max_iter=2)
    with pytest.raises(CaffeconfError, match="only when given --allow-python-layers"):
        caffeconf.train(str(solver), quiet=True)
    assert caffeconf.train(str(solver), quiet=True, allow_python_layers=True) == 0


# ------------------------------------------------------------------ the layer code's errors


def test_an_exception_in_the_layers_code_is_reported_at_the_layer(layers_on_path, tmp_path, capsys):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Broken")
    assert main(["run", str(net), "--allow-python-layers"]) == 1
    err = capsys.readouterr().err.splitlines()
    source = LAYERS / "tiny_layers.py"
    assert err[0] == f"{net}:3:1: error: layer 'py' (Python module tiny_layers): ValueError: broken on purpose (6 values)"
    assert err[3:] == [f"{source}:{line_of('self.fail(bottom[0].count)')}:9: note: in forward",
                       f"{source}:{line_of('broken on purpose')}:9: note: raised in fail"]


def test_an_exception_in_backward_is_reported_at_the_layer(layers_on_path, tmp_path, monkeypatch):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % "Affine")
    model = CaffeNet(net_of(net), allow_python_layers=True)
    monkeypatch.setattr(sys.modules["tiny_layers"].Affine, "backward", lambda self, top, down, bottom: 1 / 0)
    x = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(CaffeconfError) as raised:
        model({"data": x})["out"].sum().backward()
    assert raised.value.diagnostics[0].message == \
        "layer 'py' (Python module tiny_layers): ZeroDivisionError: division by zero"


@pytest.mark.parametrize("layer, message", [
    ("Shapeless", "its top 'out' has no shape: the layer's reshape must give it one (top[i].reshape(...))"),
    ("Afine", "the module ({source}) has no class 'Afine'"),
])
def test_a_layer_class_that_breaks_the_interface_is_reported(layer, message, layers_on_path, tmp_path):
    net = write(tmp_path / "net.prototxt", AFFINE_NET % layer)
    with pytest.raises(CaffeconfError) as raised:
        CaffeNet(net_of(net), allow_python_layers=True)({"data": torch.ones(2, 3)})
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.message == "layer 'py' (Python module tiny_layers): " + message.format(
        source=LAYERS / "tiny_layers.py")
    assert str(diagnostic.span) == f"{net}:3:1"


def test_a_missing_module_names_where_it_was_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = write(tmp_path / "net.prototxt", (AFFINE_NET % "Affine").replace("tiny_layers", "no_such_layers"))
    with pytest.raises(CaffeconfError) as raised:
        CaffeNet(net_of(net), allow_python_layers=True)
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.message == ("layer 'py' (Python module no_such_layers): importing it: "
                                  "ModuleNotFoundError: No module named 'no_such_layers'")
    assert diagnostic.hint == f"searched sys.path (PYTHONPATH first), then {tmp_path}"
    assert diagnostic.notes == ()


# ------------------------------------------------------------------ the blobs


def test_blobs_behave_as_pycaffes():
    blob = pycaffe.Blob()
    assert (blob.shape, blob.count) == ((), 0)
    blob.reshape(2, 3, 4)
    assert (blob.shape, blob.count, blob.num, blob.channels, blob.height, blob.width) == ((2, 3, 4), 24, 2, 3, 4, 1)
    blob.data[...] = np.arange(24).reshape(2, 3, 4)
    blob.reshape(4, 6)  # within the capacity: Caffe keeps the memory
    assert blob.data.dtype == np.float32 and blob.data[3, 5] == 23
    blob.diff[1, 1] = 7
    assert blob.diff.reshape(-1)[7] == 7 and not blob.data.flags.owndata
    blob.reshape(5, 5)  # beyond it: new zeroed memory
    assert blob.data.sum() == 0
    blob.reshape(1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="at most 4 axes"):
        blob.num
