"""What a training run shows and leaves behind: display lines, a progress bar (on a terminal
only), a CSV log (`iteration,seconds,phase,output,value`) and a PNG plot of it."""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

from ..files import write_atomic


class Report:
    def __init__(self, csv_path: str | None, max_iter: int, quiet: bool = False, stream=None):
        self.csv_path, self.max_iter, self.quiet = csv_path, max_iter, quiet
        self.stream = stream or sys.stdout
        self.rows: list[tuple[int, float, str, str, float]] = []
        self.start = time.perf_counter()
        self.bar = not quiet and sys.stderr.isatty()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar:
            sys.stderr.write("\r\033[K")
        print(text, file=self.stream, flush=True)

    def record(self, iteration: int, phase: str, output: str, value: float) -> None:
        self.rows.append((iteration, round(time.perf_counter() - self.start, 3), phase, output, value))

    def progress(self, iteration: int, loss: float) -> None:
        if not self.bar:
            return
        done = iteration / max(self.max_iter, 1)
        filled = int(done * 30)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {iteration}/{self.max_iter} loss {loss:.4g}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.bar:
            sys.stderr.write("\r\033[K")
        if self.csv_path:
            self.write_csv(self.csv_path)

    def write_csv(self, path: str) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["iteration", "seconds", "phase", "output", "value"])
        writer.writerows(self.rows)
        write_atomic(path, buffer.getvalue())

    def plot(self, path: str) -> str | None:
        """A loss/accuracy PNG; returns a note instead when matplotlib is missing."""
        try:
            import matplotlib
        except ImportError:
            return "matplotlib is not installed: no plot (pip install matplotlib)"
        matplotlib.use("Agg")
        from matplotlib import pyplot

        figure, losses = pyplot.subplots(figsize=(8, 4.5))
        accuracies = None
        for number, ((phase, output), points) in enumerate(sorted(self._series().items())):
            xs, ys = zip(*points)
            color = f"C{number}"  # one colour cycle across both axes
            if "acc" in output:
                accuracies = accuracies or losses.twinx()
                accuracies.plot(xs, ys, "--", color=color, label=f"{phase} {output}")
                accuracies.set_ylabel("accuracy")
            else:
                losses.plot(xs, ys, color=color, label=f"{phase} {output}")
        losses.set_xlabel("iteration")
        losses.set_ylabel("loss")
        handles = [h for axis in (losses, accuracies) if axis for h in axis.get_legend_handles_labels()[0]]
        losses.legend(handles, [h.get_label() for h in handles], loc="upper right")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        pyplot.close(figure)
        write_atomic(path, buffer.getvalue())
        return None

    def _series(self) -> dict[tuple[str, str], list[tuple[int, float]]]:
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for iteration, _, phase, output, value in self.rows:
            if phase != "lr":
                series.setdefault((phase, output), []).append((iteration, value))
        return series


def csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
