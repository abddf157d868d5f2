"""Pacing for live figures: each call waits its own pause, and all callers together start at most a
few times a second.

The Forward tab's figures that follow the slider (the histogram, the compared schedules, the step
encoding) go through Gradio's queue, at about 50 ms of server CPU each with the queue's own work
(benchmarks/class_load.py). One student dragging asks for five a second; a class of twenty would ask
for a hundred, more than the server's one Python core can give, and the slider's pictures would wait
behind them. With a class budget the figures follow more slowly when many drag at once (twenty
students: each figure a few seconds behind), while the pictures stay quick. Every call still ends
with a figure, so each page's figures catch up with its slider's last position.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """`wait()` returns no sooner than `each_s` after it was called, and calls return at least
    `1 / per_s` apart across all callers (a call takes the next free slot)."""

    def __init__(self, each_s: float, per_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if each_s < 0 or per_s <= 0:
            raise ValueError(f"each_s must be >= 0 and per_s > 0, got {each_s} and {per_s}")
        self.each_s, self.gap_s = each_s, 1.0 / per_s
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")  # the earliest time the next slot may start
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Sleep until this call's slot; returns the seconds slept."""
        with self._lock:
            now = self._clock()
            slot = max(now + self.each_s, self._next)
            self._next = slot + self.gap_s
        pause = slot - now
        if pause > 0:
            self._sleep(pause)
        return pause


class FrameSlots:
    """At most one frame in each slot of `gap_s` on a fixed grid of the clock, from the first frame.

    A minimum gap measured from the last frame sent halves the rate when frames come just faster than
    the cap: steps 80 ms apart with a 1/12 s gap send every other step (6 a second, not 12). On a
    grid, each step that lands in a slot no frame took yet goes out, so such a run sends about 12 a
    second and never more than one a slot (on average at most 1 / gap_s a second).
    """

    def __init__(self, gap_s: float, clock: Callable[[], float] = time.perf_counter):
        if gap_s <= 0:
            raise ValueError(f"gap_s must be > 0, got {gap_s}")
        self.gap_s, self._clock = gap_s, clock
        self._t0: float | None = None
        self._taken = -1  # the last slot a frame took

    def _slot(self) -> int:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        return int((now - self._t0) / self.gap_s)

    def free(self) -> bool:
        """Whether the current slot has no frame yet."""
        return self._slot() > self._taken

    def take(self) -> None:
        """A frame went out now: the current slot is taken."""
        self._taken = self._slot()

    def until_free(self) -> float:
        """Seconds from now until a slot with no frame starts: 0 when the current one has none."""
        if self._t0 is None:
            return 0.0
        return max(0.0, self._t0 + (self._taken + 1) * self.gap_s - self._clock())
