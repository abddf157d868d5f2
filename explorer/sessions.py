"""Live sessions, bounded: each one small, idle ones dropped, and at most N at a time.

Gradio keeps one `SessionState` per browser tab or API client, in an LRU holder of up to 10,000
by default. Measured on this app (`benchmarks/sessions.py`), each new session kept about 1.2 MB:
about 0.5 MB was Gradio's copy of every component's config (309 of them here), made up front for
each session although only Gradio's deep-link button reads it, and 0.8 MB the Forward tab's
starting picture deep-copied into the session's `gr.State`. Here:

- `LeanSessionState` makes those component configs only on demand, shares the app's block table
  until the session changes a component, and keeps no copy of every value shown (Gradio keeps them
  for its deep-link button, which this app does not use): a session keeps a few kB.
- `BoundedSessions` drops a session idle for `idle_minutes` (a closed browser tab after a minute),
  and keeps no new session while `max_sessions` are live: every handler of such a session refuses
  with a message saying so ("the class is full"); an old session is never evicted to make room
  (Gradio's own LRU would silently reset someone's work).

`install(demo, limits)` puts it in place on a launched app.
"""
from __future__ import annotations

import functools
import os
import time
from copy import copy
from typing import Callable, Iterator

import gradio as gr
from gradio.context import LocalContext
from gradio.state_holder import SessionState, StateHolder

from .guards import guarded
from .serving import Limits

CLOSED_GRACE_S = 60.0  # a closed tab's session lives this long (a reload or a brief drop reconnects to it)


class ClassFull(gr.Error):
    """A new session was refused: `max_sessions` are live."""

    def __init__(self, max_sessions: int):
        super().__init__(f"The class is full ({max_sessions} people are using this app); try again in a "
                         "minute. Sessions idle for a while are let go to make room.", title="Class full",
                         print_exception=False)  # a user's situation, not a bug: no traceback in the log


class LeanSessionState(SessionState):
    """A SessionState whose per-component configs are made when first needed, not for every component
    of the app up front (they are read only by Gradio's deep-link route)."""

    def __init__(self, blocks: gr.Blocks):
        # SessionState.__init__ without the eager config_values, and with the session's BlocksConfig
        # (two dicts of every block and event: 14 kB) shared with the app until the session changes a
        # component (a gr.update). tests/test_serving_sessions.py checks the attributes still match
        # Gradio's, so an upgrade that adds one fails loudly.
        self._shared_config = blocks.default_config
        self._own_config = None if not blocks.default_config.renderables else copy(blocks.default_config)
        self._app_block_ids = blocks.blocks  # shared, not copied: only membership is asked
        self.config_values: dict[int, dict] = {}
        self.state_data: dict[int, object] = {}
        self._state_ttl = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    @property
    def blocks_config(self):
        return self._own_config or self._shared_config

    @blocks_config.setter
    def blocks_config(self, config):
        self._own_config = config

    def __setitem__(self, key: int, value):
        # Writing a component (not a gr.State) changes the session's BlocksConfig: copy it first.
        # (gr.render writes it too; an app with renderables gets its own copy from the start.)
        if self._own_config is None and not isinstance(self._shared_config.blocks.get(key), gr.State):
            self._own_config = copy(self._shared_config)
        super().__setitem__(key, value)
        self.config_values.pop(key, None)  # made on demand by `components`, from the config just set

    def _update_config(self, key: int):
        pass  # `components` makes configs from the session's blocks when asked

    def _update_value_in_config(self, key: int, value):
        # Gradio keeps every input and output value a session has seen (plots' JSON included) for its
        # deep-link button; this app has none (tests check) and restores views from its own links.
        pass

    @property
    def components(self) -> Iterator[dict]:
        for key, block in self.blocks_config.blocks.items():
            if key not in self.config_values and key in self._app_block_ids:
                self.config_values[key] = self.blocks_config.config_for_block(key, [], block)
        for config in self.config_values.values():
            if config:
                yield config


class BoundedSessions(StateHolder):
    """Gradio's session holder with a cap on live sessions and expiry of idle ones.

    max_sessions: live sessions at most; a new one beyond them raises `ClassFull` (shown to the user).
    idle_s: a session unused this many seconds is dropped (its gr.State values forgotten).
    clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, max_sessions: int, idle_s: float, clock: Callable[[], float] = time.monotonic,
                 closed_grace_s: float = CLOSED_GRACE_S):
        super().__init__()
        self.max_sessions = int(max_sessions)
        self.idle_s = float(idle_s)
        self.closed_grace_s = float(closed_grace_s)
        self.clock = clock
        self.last_used: dict[str, float] = {}
        self.refused = 0  # calls turned away for want of a place (for the benchmark and tests)
        self.expired = 0  # sessions dropped for idling

    def set_blocks(self, blocks: gr.Blocks):
        super().set_blocks(blocks)
        self.capacity = max(self.capacity, self.max_sessions)  # Gradio's own LRU eviction never fires first

    def __getitem__(self, session_id: str) -> SessionState:
        now = self.clock()
        with self.lock:
            state = self.session_data.get(session_id)
            if state is None:
                self._expire(now)
                if len(self.session_data) >= self.max_sessions:
                    # Not kept: the call's handler refuses it (`admits`). Raising here would reach the
                    # client as a bare HTTP 500 (this runs while Gradio routes the request).
                    return LeanSessionState(self.blocks)
                state = self.session_data[session_id] = LeanSessionState(self.blocks)
            self.session_data.move_to_end(session_id)
            self.last_used[session_id] = now
        return state

    def admits(self, session_id: str | None) -> bool:
        """Whether a call of this session may run: it holds a place (or the call has no session)."""
        return session_id is None or session_id in self.session_data

    def update(self, session_id: str):
        with self.lock:
            if session_id in self.session_data:
                self.session_data.move_to_end(session_id)

    def live(self) -> int:
        """Sessions held now, after dropping the expired ones."""
        with self.lock:
            self._expire(self.clock())
            return len(self.session_data)

    def _expire(self, now: float) -> None:
        """Drop idle sessions and closed tabs past their grace (call with the lock held)."""
        for session_id, state in list(self.session_data.items()):
            idle = now - self.last_used.get(session_id, now)
            if idle > self.idle_s or (state.is_closed and idle > self.closed_grace_s):
                self.delete_state(session_id)  # runs gr.State delete callbacks
                del self.session_data[session_id]
                self.last_used.pop(session_id, None)
                self.time_last_used.pop(session_id, None)
                self.expired += 1


def install(demo: gr.Blocks, limits: Limits, clock: Callable[[], float] = time.monotonic) -> BoundedSessions:
    """Replace the launched `demo`'s session holder with a bounded one; returns it."""
    app = getattr(demo, "server_app", None)
    if app is None:
        raise RuntimeError("launch the app before bounding its sessions (demo.launch(...) first)")
    holder = BoundedSessions(limits.max_sessions, limits.idle_minutes * 60, clock)
    holder.set_blocks(demo)
    old = app.state_holder
    with old.lock:
        for session_id in old.session_data:  # sessions made in the moment since launch, kept as they are
            holder.session_data[session_id] = old.session_data[session_id]
            holder.last_used[session_id] = clock()
        app.state_holder = holder
    if not getattr(demo, "_sessions_checked", False):  # every handler refuses a session without a place
        for block_fn in demo.fns.values():
            if block_fn.fn is not None:
                block_fn.fn = guarded(block_fn.fn, functools.partial(_admitted, app))
        demo._sessions_checked = True
    return holder


def _admitted(app) -> None:
    """Raise ClassFull when the calling session holds no place in the app's bounded holder."""
    holder = app.state_holder
    request = LocalContext.request.get(None)
    if isinstance(holder, BoundedSessions) and not holder.admits(getattr(request, "session_hash", None)):
        with holder.lock:
            holder.refused += 1
        raise ClassFull(holder.max_sessions)
