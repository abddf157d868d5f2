"""What a caller may run, and how often: rate limits on expensive endpoints and the student role.

Applied to a built app from outside its tabs (`apply(demo, limits, logins)` wraps the handlers of
the events named in `GROUPS`), so the tabs stay as they are. A client is its login name plus its
network address: students sharing one student login are still counted one by one.

- Rate limits: each group of expensive endpoints allows `n` calls a minute per client; one more
  is refused with a message saying which limit and when to try again.
- Students (`--student-auth`) take the quiz and look at the views; everything that trains, runs a
  model on demand, evaluates, exports, uploads or manages the quiz is refused for them.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

import gradio as gr
from gradio.context import LocalContext

from .serving import Limits, Logins
from .wrapping import checked_first, within

WINDOW_S = 60.0

# Groups of expensive endpoints, by api_name (user-started events only: a tab's own follow-up
# events, such as the chain redrawn when its tab opens, are not counted).
GROUPS: dict[str, frozenset[str]] = {
    "training": frozenset({"train_start"}),
    "sampling": frozenset({"reverse_play", "reverse_play_live", "reverse_sample", "chain"}),
    "evaluation": frozenset({"evaluate", "evaluate_history", "quiz_new"}),
    "export": frozenset({"reverse_export", "quiz_export", "do_export"}),
}
# Refused to students besides the groups above: training controls, uploads, the quiz's teacher side.
TEACHER_ONLY = frozenset({
    "train_pause", "train_resume", "train_stop", "train_save", "train_upload", "train_drawing",
    "train_points_file", "train_points_text", "upload", "do_open",
    "quiz_results", "quiz_reveal", "quiz_hide",
}).union(*GROUPS.values())


class RateLimiter:
    """At most `n` calls per `window_s` seconds for each (group, client); a sliding window."""

    def __init__(self, per_window: dict[str, int], window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic):
        self.per_window = dict(per_window)
        self.window_s = float(window_s)
        self.clock = clock
        self._calls: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def check(self, group: str, client: str) -> None:
        """Count one call, or raise gr.Error (nothing counted) when the client is over the limit."""
        n = self.per_window[group]
        now = self.clock()
        with self._lock:
            calls = self._calls.setdefault((group, client), deque())
            while calls and now - calls[0] >= self.window_s:
                calls.popleft()
            if len(calls) >= n:
                wait = max(1, round(self.window_s - (now - calls[0])))
                raise gr.Error(f"Too many {group} requests from you: at most {n} a minute. "
                               f"Try again in {wait} s.", title="Slow down", print_exception=False)
            calls.append(now)
            for key in [k for k, v in self._calls.items() if not v]:  # forget clients gone quiet
                del self._calls[key]


def client_of(request: gr.Request | None) -> tuple[str | None, str]:
    """(login name or None, network address) of the caller."""
    if request is None:
        return None, "unknown"
    user = getattr(request, "username", None)
    host = getattr(getattr(request, "client", None), "host", None) or "unknown"
    return user, host


def guarded(fn: Callable, check: Callable[[], None]) -> Callable:
    """`fn` with `check()` run first, of the same kind (plain, generator, async) and signature."""
    return within(fn, lambda: checked_first(check))


def apply(demo: gr.Blocks, limits: Limits | None, logins: Logins | None = None,
          clock: Callable[[], float] = time.monotonic) -> Callable[[], None]:
    """Guard `demo`'s events: rate limits (when `limits`) and the student role (when `logins` has one).

    Returns a function that takes the guards off again (tests use it).
    """
    limiter = RateLimiter(dict(limits.per_minute), WINDOW_S, clock) if limits else None
    students = logins if logins is not None and logins.student else None
    group_of = {name: group for group, names in GROUPS.items() for name in names}
    originals = {}
    for block_fn in demo.fns.values():
        name = block_fn.api_name
        group = group_of.get(name) if limiter else None
        student_refused = students is not None and name in TEACHER_ONLY
        if block_fn.fn is None or not (group or student_refused):
            continue

        def check(name=name, group=group, student_refused=student_refused):
            user, host = client_of(LocalContext.request.get(None))
            if student_refused and students.is_student(user):
                raise gr.Error("Students can take the quiz and look around; this needs the teacher's login.",
                               title="Not for students", print_exception=False)
            if group:
                limiter.check(group, f"{user or ''}@{host}")

        originals[block_fn] = block_fn.fn
        block_fn.fn = guarded(block_fn.fn, check)

    def undo():
        for block_fn, fn in originals.items():
            block_fn.fn = fn
    return undo
