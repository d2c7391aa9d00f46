"""What a training run shows and leaves behind: display lines, a progress line on a terminal
(iterations/s, ETA, loss, lr), a CSV log (`iteration,seconds,phase,output,value`) and a PNG plot
drawn from the whole log.

The log is one continuous history across resumes: a run resumed at iteration N keeps the rows
before N, replaces the rest, and goes on counting seconds from the last kept row. Rows are
appended as they come and flushed at every display line and when the run ends (stopped or not).
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

from ..files import write_atomic

HEADER = ["iteration", "seconds", "phase", "output", "value"]


class Report:
    def __init__(self, csv_path: str | None, max_iter: int, quiet: bool = False, stream=None,
                 start_iteration: int = 0, resumed: bool = False):
        self.csv_path, self.max_iter, self.quiet = csv_path, max_iter, quiet
        self.start_iteration, self.resumed = start_iteration, resumed
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.handle = self.writer = None
        self.bar = self._progress_bar(start_iteration) if not quiet and sys.stderr.isatty() else None

    def open_log(self) -> None:
        """Start the log (keeping, when resumed, the rows before the first iteration). Called once the
        nets are built, so a refused net leaves an existing log as it was."""
        if not self.csv_path:
            return
        kept = _rows_before(self.csv_path, self.start_iteration) if self.resumed else []
        self.start = time.perf_counter() - (float(kept[-1][1]) if kept else 0.0)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([HEADER, *kept])
        write_atomic(self.csv_path, buffer.getvalue())
        self.handle = open(self.csv_path, "a", newline="")
        self.writer = csv.writer(self.handle, lineterminator="\n")

    def _progress_bar(self, start_iteration: int):
        from tqdm import tqdm

        return tqdm(total=self.max_iter, initial=start_iteration, unit="it", file=sys.stderr, leave=False,
                    dynamic_ncols=True, bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}, "
                                                   "{rate_fmt}]{postfix}")

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.clear()
        print(text, file=self.stream, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def record(self, iteration: int, phase: str, output: str, value: float) -> None:
        if self.writer:
            self.writer.writerow((iteration, round(time.perf_counter() - self.start, 3), phase, output, value))

    def flush(self) -> None:
        if self.handle:
            self.handle.flush()

    def progress(self, iteration: int, loss: float, rate: float) -> None:
        """One iteration done (`iteration` is its number, counted from 0)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4g}, lr {rate:.3g}", refresh=False)
            self.bar.update(iteration + 1 - self.bar.n)

    def finish(self) -> None:
        """Close the progress line (leaving the cursor at the start of a clean line) and the log."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.handle:
            self.handle.close()
            self.handle = self.writer = None

    def plot(self, path: str) -> str | None:
        """A loss/accuracy PNG of the whole log; returns a note instead when matplotlib is missing."""
        try:
            import matplotlib
        except ImportError:
            return "matplotlib is not installed: no plot (pip install matplotlib)"
        matplotlib.use("Agg")
        from matplotlib import pyplot

        figure, losses = pyplot.subplots(figsize=(8, 4.5))
        accuracies = None
        for number, ((phase, output), points) in enumerate(sorted(_series(self.csv_path).items())):
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


def _rows_before(path: str, iteration: int) -> list[list[str]]:
    """The rows of an existing log before `iteration` (none when there is no such log)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0] != HEADER:
        return []
    return [row for row in rows[1:] if len(row) == len(HEADER) and row[0].isdigit() and int(row[0]) < iteration]


def _series(path: str) -> dict[tuple[str, str], list[tuple[int, float]]]:
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in csv_rows(path):
        if row["phase"] != "lr":
            series.setdefault((row["phase"], row["output"]), []).append((int(row["iteration"]), float(row["value"])))
    return series


def csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
