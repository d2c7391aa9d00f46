"""How fast the HTML view of a large net opens in headless Chromium.

Uses Inception-ResNet-v2 from ../shared/models when it is there; otherwise a ResNet config
stretched to about 1000 layers (configs/resnet50.yaml with 8 + 60 blocks in stages 3 and 4).
Prints the time from navigation to the first drawing (modules collapsed to depth 1), side by side
with the same page expanded fully (?expand=all), and the file's size. Target: open < 2 s.
    .venv/bin/python benchmarks/view_open.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models" / "inception-resnet-v2" / "deploy.prototxt"


def big_net(folder: Path) -> Path:
    if SHARED.exists():
        return SHARED
    text = (ROOT / "configs" / "resnet50.yaml").read_text()
    text = text.replace("blocks: 4, width: 128", "blocks: 8, width: 128").replace(
        "blocks: 6, width: 256", "blocks: 60, width: 256")
    path = folder / "resnet_stretched.yaml"
    path.write_text(text)
    return path


def ready_ms(chromium: str, page: Path, query: str, profile: Path) -> int:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=60000",
             f"--user-data-dir={profile}", "--dump-dom", page.as_uri() + query]
    dom = subprocess.run([chromium, *flags], capture_output=True, text=True, timeout=300, check=True).stdout
    found = re.search(r'data-ready-ms="(\d+)"', dom)
    if not found:
        sys.exit(f"the page did not finish laying out ({page}{query})")
    return int(found.group(1))


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        net, page = big_net(folder), folder / "view.html"
        subprocess.run([sys.executable, "-m", "caffeconf", "draw", str(net), "--phase", "TEST", "-o", str(page)],
                       check=True)
        opened = min(ready_ms(chromium, page, "", folder / "profile") for _ in range(3))
        expanded = ready_ms(chromium, page, "?expand=all", folder / "profile")
        print(f"{net.name}: {page.stat().st_size / 1e6:.2f} MB page")
        print(f"open (depth 1): {opened} ms (target < 2000 ms: {opened / 2000:.2f} of it)")
        print(f"open expanded fully: {expanded} ms ({expanded / opened:.1f}x the collapsed open)")


if __name__ == "__main__":
    main()
