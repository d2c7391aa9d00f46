"""Hostile input is refused cleanly: each attack through the real CLI, in a subprocess with a
timeout and an address-space limit, must exit non-zero with its located message and no
traceback, and leave no file clobbered.

tests/hostile/ holds one file per attack; its first lines say how to run it:
`# caffeconf: ARGS` ({input} is the file) and `# error: TEXT` that stderr must contain."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from caffeconf.errors import MAX_ECHOED_LINE, MAX_ECHOED_NAME, Diagnostic, Note, SourceLines, Span, render_text

from conftest import ROOT

HOSTILE = ROOT / "tests" / "hostile"
ADDRESS_SPACE = 2 * 1024**3


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def caffeconf(*args: str, cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "caffeconf", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limited)


def _header(path: Path, key: str) -> str:
    prefix = f"# {key}: "
    return next(line[len(prefix):] for line in path.read_text().splitlines() if line.startswith(prefix))


def _refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("attack", sorted(p.name for p in HOSTILE.iterdir()))
def test_each_attack_is_refused_where_it_is_written(attack, tmp_path):
    source = HOSTILE / attack
    (tmp_path / attack).write_bytes(source.read_bytes())  # some attacks aim at their own file
    args = _header(source, "caffeconf").format(input=attack).split()
    stderr = _refused(caffeconf(*args, cwd=tmp_path))
    assert _header(source, "error") in stderr
    assert (tmp_path / attack).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("command", [["validate"], ["inspect"], ["compile"]])
def test_a_fifo_given_as_input_is_refused_without_blocking(tmp_path, command):
    fifo = tmp_path / "net.yaml"
    os.mkfifo(fifo)
    stderr = _refused(caffeconf(*command, str(fifo), cwd=tmp_path, timeout=10))
    assert f"{fifo}: not a regular file (a FIFO or device): not read" in stderr


def test_a_device_given_as_a_net_is_refused_without_reading_it(tmp_path):
    stderr = _refused(caffeconf("inspect", "/dev/zero", cwd=tmp_path, timeout=10))
    assert "/dev/zero: not a regular file" in stderr


def test_an_output_onto_a_fifo_is_refused_and_the_fifo_stays(tmp_path):
    fifo = tmp_path / "out.prototxt"
    os.mkfifo(fifo)
    stderr = _refused(caffeconf("compile", str(ROOT / "configs" / "lenet.yaml"), "-o", str(fifo), cwd=tmp_path))
    assert "is not a regular file (a FIFO or device): not replaced" in stderr
    assert fifo.is_fifo()


def test_an_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "real.prototxt", tmp_path / "link.prototxt"
    target.write_text("old\n")
    link.symlink_to(target)
    result = caffeconf("compile", str(ROOT / "configs" / "lenet.yaml"), "-o", str(link), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and target.read_text().startswith('name: "LeNet"')


def _first_line(path: str) -> str:
    return Path(path).read_text().splitlines()[0]


@pytest.mark.parametrize("flags", [[], ["--allow-absolute-imports"]])
def test_a_prototxt_named_link_to_a_system_file_is_refused_without_echoing_it(tmp_path, flags):
    (tmp_path / "head.prototxt").symlink_to("/etc/passwd")
    (tmp_path / "net.yaml").write_text("caffeconf: 1\nimports: {head: head.prototxt}\nlayers: []\n")
    stderr = _refused(caffeconf("validate", *flags, "net.yaml", cwd=tmp_path))
    assert "net.yaml:2:17: error: import 'head.prototxt' (a link to '/etc/passwd') has no config or prototxt suffix" \
        in stderr
    assert _first_line("/etc/passwd") not in stderr


def test_a_link_leading_out_of_the_config_folder_is_refused(tmp_path):
    (tmp_path / "outside.yaml").write_text("caffeconf: 1\n")
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "blocks.yaml").symlink_to(tmp_path / "outside.yaml")
    (tmp_path / "nets" / "net.yaml").write_text("caffeconf: 1\nimports: {b: blocks.yaml}\nlayers: []\n")
    stderr = _refused(caffeconf("validate", "net.yaml", cwd=tmp_path / "nets"))
    assert (f"net.yaml:2:14: error: import 'blocks.yaml' (a link to '{tmp_path}/outside.yaml') "
            "leads outside the folder of net.yaml and the current directory") in stderr
    assert "hint: imports are relative paths that stay inside the config's folder or the current directory" in stderr
    assert caffeconf("validate", "nets/net.yaml", cwd=tmp_path).returncode == 0  # inside the current directory


def test_a_long_quoted_name_is_cut_in_every_rendered_part():
    name = "x" * 4000
    text = render_text([Diagnostic(f"unknown blob '{name}'", hint=f"did you mean '{name}x'?",
                                   notes=(Note(f"in module use '{name}'"),))])
    assert text.count("x" * (MAX_ECHOED_NAME - 1) + "\u2026' (4000 characters)") == 2
    assert "x" * (MAX_ECHOED_NAME - 1) + "\u2026' (4001 characters)" in text
    assert "x" * MAX_ECHOED_NAME not in text
    assert render_text([Diagnostic("unknown blob '" + "x" * MAX_ECHOED_NAME + "'")]).count("x") == MAX_ECHOED_NAME


@pytest.mark.parametrize("column", [1, 15_000, 29_998])
def test_a_long_source_line_is_shown_around_its_caret(column):
    sources = SourceLines()
    line = "".join(chr(ord("a") + i % 26) for i in range(30_000))
    sources.register("long.yaml", line)
    span = Span("long.yaml", 1, column, 1, column + 3)
    shown, caret = render_text([Diagnostic("bad", span)], sources).splitlines()[1:3]
    assert len(shown) <= 4 + MAX_ECHOED_LINE + 2
    start = caret.index("^")
    assert shown[start:start + 3] == line[column - 1:column + 2] and caret[start:] == "^~~"
    assert shown.startswith("    \u2026") == (column > 1) and shown.endswith("\u2026") == (column < 29_000)


def test_commands_that_read_a_net_refuse_an_absolute_import_unless_allowed(tmp_path):
    blocks = tmp_path / "elsewhere" / "blocks.yaml"
    blocks.parent.mkdir()
    blocks.write_text("caffeconf: 1\nmodules:\n  relu:\n    inputs: [x]\n    layers: [{name: y, type: ReLU}]\n")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "a.yaml").write_text(
        f"caffeconf: 1\nimports: {{b: {blocks}}}\nlayers:\n"
        "  - {name: data, type: Input, input_param: {shape: {dim: [1, 2]}}}\n  - {use: b.relu, name: r}\n")
    stderr = _refused(caffeconf("inspect", "net/a.yaml", cwd=tmp_path))
    assert f"net/a.yaml:2:14: error: import '{blocks}' is an absolute path" in stderr
    allowed = caffeconf("inspect", "--allow-absolute-imports", "net/a.yaml", cwd=tmp_path)
    assert allowed.returncode == 0 and "r/y" in allowed.stdout, allowed.stderr


def test_a_long_quoted_file_path_is_kept_whole(tmp_path):
    folder = tmp_path / ("d" * 100)
    folder.mkdir()
    text = render_text([Diagnostic(f"cannot draw to '{folder / 'net.jpg'}'"),
                        Diagnostic("unknown blob '" + "a/" * 60 + "'")])  # a layer name, not a file
    assert f"'{folder / 'net.jpg'}'" in text
    assert "'" + ("a/" * 60)[:MAX_ECHOED_NAME - 1] + "\u2026' (120 characters)" in text


@pytest.mark.parametrize("option", ["-o", "--write-weights"])
def test_run_never_writes_over_its_net(tmp_path, option):
    net = tmp_path / "net.yaml"
    net.write_bytes((ROOT / "configs" / "lenet.yaml").read_bytes())
    stderr = _refused(caffeconf("run", str(net), "--random-weights", option, str(net), cwd=tmp_path))
    assert f"{net}: is one of this command's inputs: not overwritten" in stderr
    assert net.read_bytes() == (ROOT / "configs" / "lenet.yaml").read_bytes()


def test_train_never_writes_its_log_over_its_solver(tmp_path):
    pytest.importorskip("torch")
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{ROOT / "configs" / "lenet.yaml"}"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 1\n')
    before = solver.read_bytes()
    stderr = _refused(caffeconf("train", "--solver", str(solver), "--log", str(solver), "-q", cwd=tmp_path, timeout=60))
    assert f"{solver}: is one of this command's inputs: not overwritten" in stderr
    assert solver.read_bytes() == before


def test_an_image_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    pytest.importorskip("torch")
    fifo, net = tmp_path / "image.png", tmp_path / "net.yaml"
    os.mkfifo(fifo)
    net.write_text("caffeconf: 1\nlayers:\n  - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 3, 8, 8]}}}\n"
                   "  - {name: relu, type: ReLU, bottom: data, top: out}\n")
    stderr = _refused(caffeconf("run", str(net), str(fifo), cwd=tmp_path, timeout=60))
    assert f"{fifo}: not a regular file (a FIFO or device): not read" in stderr


def test_a_seed_out_of_a_generators_range_is_refused_at_its_flag(tmp_path):
    result = caffeconf("run", str(ROOT / "configs" / "lenet.yaml"), "--seed", str(2**63), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument --seed: must be from 0 to {2**63 - 1}, got {2**63}" in result.stderr


def test_import_of_a_net_caffeconf_refuses_says_why(tmp_path):
    net = tmp_path / "forty_dims.prototxt"
    net.write_text('layer { name: "i" type: "Input" top: "i" input_param { shape { ' + "dim: 1 " * 40 + "} } }\n")
    stderr = _refused(caffeconf("import", str(net), "-o", str(tmp_path / "net.yaml"), cwd=tmp_path))
    assert stderr == (f"error: {net}: cannot import this net: input_param.shape.dim has 40 dims: a Caffe blob has "
                      "at most 32 axes (kMaxBlobAxes)\n")
