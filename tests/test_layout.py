"""The package's layout keeps its promises: no import cycles, `caffe_pb2` only inside
caffeconf/caffe/, the compiler and the language server free of the runner, the trainer and torch,
and compile/ made of small functions."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "caffeconf"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """Every name this module imports, at module level or inside functions alike."""
    path = MODULES[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return found


def _package_module(name: str) -> str | None:
    """The package module `name` refers to (a module, or the module holding an imported name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


GRAPH = {module: {target for name in _imports(module) if (target := _package_module(name)) and target != module}
         for module in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for target in GRAPH[module]:
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_no_two_modules_import_each_other_in_a_cycle():
    cycles = [cycle for module in MODULES if (cycle := _cycle_from(module))]
    assert not cycles, "import cycle: " + " -> ".join(cycles[0])


def test_only_the_caffe_subpackage_imports_caffe_pb2():
    outside = sorted(module for module in MODULES if not module.startswith("caffeconf.caffe")
                     and any(name.endswith("caffe_pb2") for name in _imports(module)))
    assert not outside


def _reached_from(prefix: str) -> set[str]:
    reached, todo = set(), [m for m in MODULES if m.startswith(prefix)]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += GRAPH[module]
    return reached


@pytest.mark.parametrize("package", ["caffeconf.compile", "caffeconf.lsp", "caffeconf.commands.lsp"])
def test_the_compiler_and_the_language_server_never_reach_the_runner_the_trainer_or_torch(package):
    reached = _reached_from(package)
    assert reached
    assert not sorted(m for m in reached if m.startswith(("caffeconf.run", "caffeconf.train", "caffeconf.export")))
    assert not sorted(m for m in reached if any(name.split(".")[0] in ("torch", "onnx") for name in _imports(m)))


def test_every_subpackage_says_what_goes_in_and_what_comes_out():
    for package in ("compile", "caffe", "inspect", "importer", "run", "train", "export", "lsp", "commands", "api",
                    "netspec"):
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"caffeconf/{package}/__init__.py has no docstring"


def test_only_a_handful_of_modules_stay_at_the_top():
    loose = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__", "__main__", "cli", "errors", "files", "ir", "limits"]


def _sizes(kind) -> list[tuple[int, str]]:
    found = []
    for path in sorted((PACKAGE / "compile").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, kind):
                found.append((node.end_lineno - node.lineno + 1, f"{path.name}:{node.lineno} {node.name}"))
    return found


def test_compile_is_made_of_small_functions_and_classes():
    functions = _sizes((ast.FunctionDef, ast.AsyncFunctionDef))
    assert [where for lines, where in functions if lines > 40] == []
    assert [where for lines, where in _sizes(ast.ClassDef) if lines > 250] == []
    assert statistics.median(lines for lines, _ in functions) <= 8
