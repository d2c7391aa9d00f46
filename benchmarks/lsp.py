"""`caffeconf lsp` latency: didChange -> publishDiagnostics over stdio, as an editor sees it.

    python benchmarks/lsp.py [--rounds N]

For each bundled config and a generated 10,000-layer config, opens it in a real server process,
then changes it N times and prints the median and worst latency from sending the change to
receiving its diagnostics. Every change is a new text (a numbered comment appended), so nothing
checked before can be served again. Two servers are timed: one started with `--debounce 0`, for
the check itself (reading the change, the whole `validate`, publishing, the stdio both ways), and
one with the default debounce, for what an editor sees once typing pauses.
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

DEFAULT, NONE = None, 0  # the server's own debounce, and none


def long_chain(layers: int) -> str:
    lines = ["caffeconf: 1", "layers:", "  - {name: data, type: Input, input_param: {shape: {dim: [1, 4]}}}"]
    lines += [f"  - {{name: r{i}, type: ReLU}}" for i in range(layers)]
    return "\n".join(lines) + "\n"


def latencies(server: LanguageServer, path: Path, text: str, rounds: int) -> list[float]:
    server.open(path.as_uri(), text)
    server.diagnostics(path.as_uri(), timeout=120)
    found = []
    for version in range(2, rounds + 2):
        edited = text + f"# edit {version}\n"
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
    servers = {}
    for debounce in (NONE, DEFAULT):
        flags = [] if debounce is DEFAULT else ["--debounce", str(debounce)]
        servers[debounce] = LanguageServer([sys.executable, "-m", "caffeconf", "lsp", *flags], {}, cwd=ROOT, env=env)
        servers[debounce].initialize(ROOT)
    print(f"{'config':20} {'check median ms':>15} {'worst':>6}   {'with the ' + str(round(DEBOUNCE_SECONDS * 1000)) + ' ms debounce':>28}")
    with tempfile.TemporaryDirectory() as folder:
        chain = Path(folder) / "chain_10k.yaml"
        cases = [(path, path.read_text()) for path in sorted((ROOT / "configs").glob("*.yaml"))]
        for path, text in cases + [(chain, long_chain(10_000))]:
            check, typed = (latencies(servers[debounce], path, text, args.rounds) for debounce in (NONE, DEFAULT))
            print(f"{path.name:20} {statistics.median(check) * 1000:15.0f} {max(check) * 1000:6.0f}   "
                  f"{statistics.median(typed) * 1000:22.0f} median")
    for server in servers.values():
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
