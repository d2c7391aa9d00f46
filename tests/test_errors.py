"""The config compiler's negative suite: each tests/errors/NAME.yaml (or NAME.toml) holds one
mistake and NAME.expected the exact diagnostics `caffeconf validate` prints for it, with
paths relative to the repository root: exactly one error, however many layers, uses,
repetitions or states the mistake touches (MULTI_MISTAKE_CASES hold several on purpose).
Files a case imports live in tests/errors/lib/. Set CAFFECONF_UPDATE_GOLDEN=1 to rewrite the
expected files (then read every change). A case whose current message is known to be
wrong says so in a `# KNOWN-ISSUE:` comment at its top.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caffeconf import cli
from caffeconf.commands.validate import file_diagnostics
from caffeconf.limits import DEFAULT_LIMITS
from caffeconf.errors import render_text
from conftest import ROOT, UPDATE_GOLDEN, check_golden

ERRORS_DIR = ROOT / "tests" / "errors"
# Cases with a test of their own (they must also finish within a time limit).
TIMED_CASES = {"billion_laughs"}
# Cases that show every independent mistake of a file reported in one run.
MULTI_MISTAKE_CASES = {"several_errors", "misspelt_variant_readings"}
MIN_CASES = 45
SUFFIXES = (".yaml", ".toml")


def _case_paths() -> dict[str, Path]:
    return {path.stem: path for suffix in SUFFIXES for path in sorted(ERRORS_DIR.glob(f"*{suffix}"))}


def _case_names() -> list[str]:
    return sorted(_case_paths())


def _relative(name: str) -> str:
    return _case_paths()[name].relative_to(ROOT).as_posix()


def _diagnose(name: str) -> str:
    """What `validate` reports: the build's diagnostics, then (for a net that builds) its shapes',
    then what only a declared variant shows."""
    return render_text(file_diagnostics(_relative(name), DEFAULT_LIMITS))


def _check_golden(name: str, actual: str) -> None:
    check_golden(actual, ERRORS_DIR / f"{name}.expected")


@pytest.mark.parametrize("name", [n for n in _case_names() if n not in TIMED_CASES])
def test_error_golden(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    actual = _diagnose(name)
    assert "error:" in actual, "a negative case must produce at least one error"
    _check_golden(name, actual)
    if name not in MULTI_MISTAKE_CASES:
        assert actual.count(": error: ") == 1, "one mistake, one error"


def test_suite_is_complete():
    names = _case_names()
    assert len(names) >= MIN_CASES
    assert len(names) == sum(1 for suffix in SUFFIXES for _ in ERRORS_DIR.glob(f"*{suffix}")), \
        "two cases share a name"
    orphans = sorted({p.stem for p in ERRORS_DIR.glob("*.expected")} - set(names))
    assert not orphans, f"expected files without a case: {orphans}"


SOLVERS_DIR = ERRORS_DIR / "solvers"


@pytest.mark.parametrize("path", sorted(p for p in SOLVERS_DIR.glob("*_solver.*") if p.suffix != ".expected"),
                         ids=lambda p: p.stem)
def test_validate_checks_a_solver_and_the_nets_it_names(path, monkeypatch, capsys):
    """A solver is checked as a SolverParameter, then each net it names; NAME.expected holds what
    validate prints (empty for a solver Caffe accepts)."""
    monkeypatch.chdir(SOLVERS_DIR)  # a solver's paths are relative to the current directory, as Caffe opens them
    code = cli.main(["validate", path.name])
    printed = capsys.readouterr().err
    check_golden(printed, path.with_suffix(".expected"))
    assert printed.count(": error: ") == (1 if "error:" in printed else 0), "one mistake, one error"
    assert code == (1 if printed else 0)


def test_a_command_that_reads_nets_names_a_solver_for_what_it_is(monkeypatch, capsys):
    monkeypatch.chdir(SOLVERS_DIR)
    assert cli.main(["inspect", "good_solver.prototxt"]) == 1
    assert capsys.readouterr().err == (
        "good_solver.prototxt:2:1: error: good_solver.prototxt holds a solver (SolverParameter), not a net\n"
        "    net: \"net.prototxt\"\n"
        "    ^\n"
        "  hint: give the net it names in `net:`, or train it with `caffeconf train`\n")


def _run_python(code: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter at the repository root, with `args` as sys.argv[1:]."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


_TIMED_BUILD = """
import sys, time
from caffeconf.commands.validate import shape_diagnostics
from caffeconf.compile import compiler
from caffeconf.errors import render_text
start = time.perf_counter()
diagnostics = compiler.build(sys.argv[1]).diagnostics
print(f"{time.perf_counter() - start:.3f}")
sys.stdout.write(render_text(diagnostics))
"""


def test_billion_laughs_fails_fast():
    """Refused in under 2 s of build time; the child is killed well before the slow path ends."""
    name = "billion_laughs"
    try:
        result = _run_python(_TIMED_BUILD, [_relative(name)], timeout=120 if UPDATE_GOLDEN else 4)
    except subprocess.TimeoutExpired:
        pytest.fail("building the alias bomb did not finish within 4 s")
    elapsed, _, rendered = result.stdout.partition("\n")
    assert result.returncode == 0, result.stderr
    _check_golden(name, rendered)
    assert float(elapsed) < 2.0


def test_validate_json_gives_line_column_and_message(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", "--format", "json", _relative("unknown_layer_type")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {"diagnostics": [{
        "severity": "error",
        "message": "unknown layer type 'Convolutoin'",
        "location": {"path": "tests/errors/unknown_layer_type.yaml", "line": 5, "column": 25,
                     "end_line": 5, "end_column": 36},
        "hint": "did you mean 'Convolution'?",
        "notes": [],
    }]}


def test_validate_text_is_the_expected_file(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", _relative("several_errors")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (ERRORS_DIR / "several_errors.expected").read_text(encoding="utf-8")


def _validate(*paths: str) -> subprocess.CompletedProcess:
    return _run_python("import sys; from caffeconf import cli; sys.exit(cli.main())",
                       ["validate", *paths], timeout=60)


def test_validate_exit_codes_without_tracebacks():
    clean = _validate("configs/lenet.yaml")
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "")
    cases = [_relative(n) for n in _case_names() if n not in TIMED_CASES]
    broken = _validate(*cases)
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    assert broken.stderr.count(": error: ") >= len(cases)
    for path in cases:
        assert f"{path}:" in broken.stderr, f"{path} gave no diagnostic"


def test_an_in_place_layer_on_a_blob_nothing_makes_is_not_noted_as_its_own_producer(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("net.prototxt").write_text('input: "data"\ninput_shape { dim: 1 }\n'
                                    'layer { name: "relu" type: "ReLU" bottom: "feature" top: "feature" }\n')
    assert cli.main(["validate", "net.prototxt"]) == 1
    assert capsys.readouterr().err == (
        "net.prototxt:3:1: error: layer 'relu' reads blob 'feature' that no earlier layer produces\n"
        "    layer { name: \"relu\" type: \"ReLU\" bottom: \"feature\" top: \"feature\" }\n"
        "    ^\n")
