"""Signals during training, as Caffe's SignalHandler: a signal -> a request (stop, snapshot or
nothing) that the loop reads once per iteration, so an iteration always completes and a snapshot
holds a consistent state.

SIGINT and SIGTERM take `--sigint-effect` (Caffe's default: stop), SIGHUP `--sighup-effect`
(default: snapshot and go on). Caffe does not catch SIGTERM; here it stops like Ctrl-C, since it
is how schedulers and `kill` end a job. A second SIGINT while a stop is pending ends the process
at once (the snapshot files are written atomically, so nothing half-written is left).
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

EFFECTS = ("stop", "snapshot", "none")
NONE, SNAPSHOT, STOP = 0, 1, 2  # ordered: the strongest request across processes wins


class Requests:
    """What the signals received since the last `take()` ask for."""

    def __init__(self, sigint_effect: str = "stop", sighup_effect: str = "snapshot", abort_on_repeat: bool = True):
        self.effects = {signal.SIGINT: sigint_effect, signal.SIGTERM: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.abort_on_repeat = abort_on_repeat
        self.pending = NONE
        self.stopped_by: str | None = None  # the signal's name, once a stop was requested

    def receive(self, number: int, _frame=None) -> None:
        effect = self.effects.get(number, "none")
        if effect == "stop" and self.pending == STOP and number == signal.SIGINT and self.abort_on_repeat:
            raise KeyboardInterrupt
        if effect == "stop":
            self.pending, self.stopped_by = STOP, signal.Signals(number).name
        elif effect == "snapshot":
            self.pending = max(self.pending, SNAPSHOT)

    def take(self) -> int:
        """The request (NONE, SNAPSHOT or STOP), cleared except for a stop."""
        request = self.pending
        if request == SNAPSHOT:
            self.pending = NONE
        return request

    @contextmanager
    def installed(self) -> Iterator["Requests"]:
        """Catch the signals for the duration of the block, then restore the previous handlers."""
        previous = {number: signal.signal(number, self.receive) for number in self.effects}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def exit_status(signal_name: str | None) -> int:
    """The shell's status for a process ended by that signal (128 + its number); else 1."""
    known = signal.Signals.__members__
    return 128 + int(known[signal_name]) if signal_name in known else 1
