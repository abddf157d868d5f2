"""Progress lines for long command-line work: how far, and how long is left at the pace so far."""
from __future__ import annotations

import sys
import time


def time_left(elapsed: float, fraction: float) -> str:
    """', about 3 min left' at the pace so far (elapsed seconds for `fraction` of the work); '' until it is known."""
    if elapsed < 2.0 or fraction < 0.01 or fraction >= 1.0:
        return ""  # the first batch's warm-up says little about the pace
    left = elapsed * (1.0 - fraction) / fraction
    return f", about {max(1, round(left))} s left" if left < 90 else f", about {round(left / 60)} min left"


class ProgressLine:
    """Writes '[ 40%] what, about 3 s left' to stderr: rewritten in place on a terminal, else every 10%."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_tenth = -1
        self.last_write = 0.0

    def __call__(self, fraction: float, what: str) -> None:
        now = time.perf_counter()
        line = f"[{fraction:4.0%}] {what}{time_left(now - self.start, fraction)}"
        if self.tty:
            if now - self.last_write >= 0.1 or fraction >= 1.0:
                self.last_write = now
                print(f"\r{line:<72}", end="", file=self.stream, flush=True)
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)
