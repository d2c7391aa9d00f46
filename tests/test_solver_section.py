"""A config's `solver:` section: checked like any Caffe field, and the solver `caffeconf train` uses."""

from __future__ import annotations

import pytest

from caffeconf.compile.compiler import build
from caffeconf.errors import CaffeconfError, render_text
from caffeconf.compile.solver import config_solver, read_solver_file

NET = """caffeconf: 1
params:
  lr: {type: float, default: 0.01}
layers:
  - {name: data, type: Input, input_param: {shape: {dim: [1, 3]}}}
  - {name: ip, type: InnerProduct, inner_product_param: {num_output: 2}}
"""


def write(tmp_path, solver: str):
    path = tmp_path / "net.yaml"
    path.write_text(NET + solver)
    return path


def test_section_becomes_the_solver_for_this_config(tmp_path):
    path = write(tmp_path, "solver:\n  base_lr: ${lr * 10}\n  lr_policy: step\n  stepsize: 100\n"
                           "  max_iter: 300\n  type: Adam\n  test_state: [{stage: [val]}]\n")
    solver = config_solver(str(path))
    assert solver.net == str(path)
    assert (solver.base_lr, solver.lr_policy, solver.stepsize, solver.max_iter, solver.type) == \
        (pytest.approx(0.1), "step", 100, 300, "Adam")
    assert list(solver.test_state[0].stage) == ["val"]
    assert solver.snapshot_prefix == str(path.with_suffix(""))  # Caffe's default: the file's path
    assert read_solver_file(str(path)) == solver


def test_section_errors_are_located(tmp_path):
    path = write(tmp_path, "solver:\n  base_lr: 0.1\n  max_itr: 10\n  lr_policy: 5\n  net: other.prototxt\n")
    text = render_text(build(path).diagnostics)
    assert f"{path}:9:3: error: unknown field 'max_itr' in solver (SolverParameter has no such field)" in text
    assert "hint: did you mean 'max_iter'?" in text
    assert f"{path}:10:14: error: solver.lr_policy expects a string, got int 5" in text
    assert f"{path}:11:3: error: `solver.net`: a config's solver trains the config's own net" in text


def test_config_without_section_is_no_solver(tmp_path):
    path = write(tmp_path, "")
    assert config_solver(str(path)) is None
    with pytest.raises(CaffeconfError, match="no `solver:` section"):
        read_solver_file(str(path))


def test_plain_yaml_solver_file_is_checked_where_written(tmp_path):
    path = tmp_path / "solver.yaml"
    path.write_text("net: net.prototxt\nbase_lr: 0.1\nmomentun: 0.9\n")
    with pytest.raises(CaffeconfError) as error:
        read_solver_file(str(path))
    assert render_text(error.value.diagnostics).startswith(
        f"{path}:3:1: error: unknown field 'momentun' (SolverParameter has no such field)")


INLINE_SOLVER = """base_lr: 0.1
lr_policy: "fixed"
max_iter: 4
test_iter: 1
test_interval: 2
snapshot_prefix: "{prefix}"
net_param {{
  name: "inline"
  layers {{
    name: "data" type: DUMMY_DATA top: "data" top: "label"
    dummy_data_param {{
      shape {{ dim: 4 dim: 3 }} shape {{ dim: 4 }}
      data_filler {{ type: "gaussian" std: 1 }} data_filler {{ type: "constant" value: 1 }}
    }}
  }}
  layers {{ name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip"
           inner_product_param {{ num_output: 2 weight_filler {{ type: "xavier" }} }} }}
  layers {{ name: "loss" type: SOFTMAX_LOSS bottom: "ip" bottom: "label" top: "loss" }}
}}
"""


def test_solver_with_an_inline_v1_net_trains(tmp_path):
    pytest.importorskip("torch")
    from caffeconf.cli import main

    solver = tmp_path / "solver.prototxt"
    solver.write_text(INLINE_SOLVER.format(prefix=tmp_path / "net"))
    assert main(["train", "--solver", str(solver), "--quiet"]) == 0
    assert (tmp_path / "net_iter_4.caffemodel").is_file() and (tmp_path / "net_iter_4.solverstate").is_file()
