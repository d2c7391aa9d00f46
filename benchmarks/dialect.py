"""Validating a BVLC net costs no more than before fork dialects existed (a script, not a test).

Runs `caffeconf validate` on the bundled configs and on a prototxt compiled from one in three
checkouts, interleaved round by round so all see the same load: the last commit before dialects
(BEFORE), the commit that introduced them (DIALECTS), each in a temporary git worktree, and this
checkout. Each runs in its own process: the cold time is a whole `python -m caffeconf validate`
(imports included); the warm time is the best of three in-process calls after one warm-up.
Prints medians and two ratios: DIALECTS / BEFORE, the cost of looking the schema up through the
dialect in force (target <= 1.05), and now / BEFORE, everything validate has gained since (more
checks: each variant compiled, layer setup checks, data-source shapes).

Run: python benchmarks/dialect.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = "7eb1536"  # the commit that introduced caffeconf/caffe/dialect.py
BEFORE = DIALECTS + "^"
CONFIGS = ("lenet.yaml", "resnet50.yaml", "googlenet.yaml")

WARM = """
import contextlib, io, json, sys, time
from caffeconf.cli import main
path, repeats = sys.argv[1], int(sys.argv[2])
def once():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["validate", path]) == 0, path
once()
times = []
for _ in range(repeats):
    start = time.perf_counter(); once(); times.append(time.perf_counter() - start)
print(json.dumps(min(times)))
"""


def cold(checkout: Path, path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "caffeconf", "validate", str(path)], cwd=checkout, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(checkout))
    return time.perf_counter() - start


def warm(checkout: Path, path: Path, repeats: int) -> float:
    done = subprocess.run([sys.executable, "-c", WARM, str(path), str(repeats)], cwd=checkout, check=True,
                          capture_output=True, text=True, env=_env(checkout))
    return json.loads(done.stdout)


def _env(checkout: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(checkout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        checkouts = {"before": Path(scratch) / "before", "dialects": Path(scratch) / "dialects", "now": ROOT}
        for revision, where in ((BEFORE, checkouts["before"]), (DIALECTS, checkouts["dialects"])):
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(where), revision], cwd=ROOT, check=True)
        try:
            # The 1f5a685-era configs: today's bundled ones may use what older commits lack.
            prototxt = Path(scratch) / "googlenet.prototxt"
            subprocess.run([sys.executable, "-m", "caffeconf", "compile", "configs/googlenet.yaml", "-o", str(prototxt)],
                           cwd=checkouts["before"], check=True, env=_env(checkouts["before"]))
            inputs = [checkouts["before"] / "configs" / name for name in CONFIGS] + [prototxt]
            _compare(inputs, checkouts, args.rounds)
        finally:
            for name in ("before", "dialects"):
                subprocess.run(["git", "worktree", "remove", "--force", str(checkouts[name])], cwd=ROOT, check=True)
    return 0


def _compare(inputs: list[Path], checkouts: dict[str, Path], rounds: int) -> None:
    print(f"validate in {BEFORE} (before), {DIALECTS} (dialects) and this checkout (now), "
          f"median of {rounds} interleaved rounds, ms")
    print(f"{'input':<20} {'':>5} {'before':>7} {'dialects':>8} {'now':>7} {'dialects/before':>15} {'now/before':>10}")
    for path in inputs:
        samples = {(kind, name): [] for kind in ("cold", "warm") for name in checkouts}
        for _ in range(rounds):
            for name, where in checkouts.items():
                samples["cold", name].append(cold(where, path))
                samples["warm", name].append(warm(where, path, 3))
        for kind in ("cold", "warm"):
            m = {name: statistics.median(samples[kind, name]) * 1e3 for name in checkouts}
            print(f"{path.name:<20} {kind:>5} {m['before']:>7.1f} {m['dialects']:>8.1f} {m['now']:>7.1f} "
                  f"{m['dialects'] / m['before']:>15.2f} {m['now'] / m['before']:>10.2f}")


if __name__ == "__main__":
    sys.exit(main())
