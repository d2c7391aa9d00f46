"""`caffeconf lsp` latency: didChange -> publishDiagnostics over stdio, as an editor sees it.

    python benchmarks/lsp.py [--rounds N]

For each bundled config and a generated 10,000-layer config, opens it in a real server process,
then changes it N times (alternating a harmless edit and the original) and prints the median and
worst latency from sending the change to receiving its diagnostics; the server waits
DEBOUNCE_SECONDS for typing to pause first, which the check column leaves out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lsp"))

from lsp_client import LanguageServer  # noqa: E402  (the tests' client, from its folder)

from caffeconf.lsp.server import DEBOUNCE_SECONDS  # noqa: E402


def long_chain(layers: int) -> str:
    lines = ["caffeconf: 1", "layers:", "  - {name: data, type: Input, input_param: {shape: {dim: [1, 4]}}}"]
    lines += [f"  - {{name: r{i}, type: ReLU}}" for i in range(layers)]
    return "\n".join(lines) + "\n"


def latencies(server: LanguageServer, path: Path, text: str, rounds: int) -> list[float]:
    server.open(path.as_uri(), text)
    server.diagnostics(path.as_uri(), timeout=120)
    found = []
    for version in range(2, rounds + 2):
        edited = text + ("# edit\n" if version % 2 else "")
        start = time.perf_counter()
        server.notify("textDocument/didChange", {"textDocument": {"uri": path.as_uri(), "version": version},
                                                 "contentChanges": [{"text": edited}]})
        server.diagnostics(path.as_uri(), timeout=120)
        found.append(time.perf_counter() - start)
    server.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})
    server.diagnostics(path.as_uri())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = LanguageServer([sys.executable, "-m", "caffeconf", "lsp"], {}, cwd=ROOT, env=env)
    server.initialize(ROOT)
    print(f"{'config':28} {'median ms':>9} {'worst ms':>8} {'check ms':>8}  (debounce {DEBOUNCE_SECONDS * 1000:.0f} ms)")
    with tempfile.TemporaryDirectory() as folder:
        chain = Path(folder) / "chain_10k.yaml"
        cases = [(path, path.read_text()) for path in sorted((ROOT / "configs").glob("*.yaml"))]
        for path, text in cases + [(chain, long_chain(10_000))]:
            found = latencies(server, path, text, args.rounds)
            median = statistics.median(found)
            print(f"{path.name:28} {median * 1000:9.0f} {max(found) * 1000:8.0f} {(median - DEBOUNCE_SECONDS) * 1000:8.0f}")
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
