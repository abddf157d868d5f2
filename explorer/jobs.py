"""The background training job: one per app process, trained in a child process, watched by snapshot.

Why a child process: a torch training thread inside the server process competes with the request
threads for the same cores and the same interpreter; measured on 2 cores it slowed the UI's
sliders and was itself slowed ten-fold. The child runs `core.training.Trainer` with one torch
thread at a lower priority and sends back plain numbers and small numpy previews over a pipe; a
reader thread here folds them into a history under a lock. Every viewer (any browser tab, any
number of them) polls `snapshot()`; nothing is pushed, so a reload simply reattaches.

Commands (pause, resume, stop, save) go to the child over a second pipe. A checkpoint is written
by the child (it owns the weights) into the user's runs folder, where the checkpoint lists find it.
The child's side is `explorer/job_child.py`.
"""
from __future__ import annotations

import atexit
import itertools
import math
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from datetime import datetime
from multiprocessing.connection import Connection
from operator import attrgetter
from pathlib import Path

from core import checkpoint, retention
from core.config import RunConfig

STATUSES = ("idle", "starting", "running", "paused", "stopping", "finished", "stopped", "failed")
ACTIVE = ("starting", "running", "paused", "stopping")
MAX_POINTS = 2000         # loss / lr points kept: when full every other one is dropped, so they span the run
MAX_PER_T = 200           # per-timestep loss rows kept for the heatmap
MAX_PREVIEWS = 40         # preview batches kept
SMOOTHING = 0.98          # EMA factor of the smoothed loss curve (bias-corrected), per step
MAX_MARKS = 512           # (step, elapsed) marks kept for the time left: thinned like the series
PREVIEW_STEPS = 20 / 3    # a preview (20 DDIM steps, forward passes only) counts as this many training steps until one is timed
MIN_STEPS_TO_REMEMBER = 20  # a run's pace is remembered for later estimates once it made this many steps
SAVE_TIMEOUT = 120.0      # seconds a save waits for the child to write the checkpoint
STOP_TIMEOUT = 30.0       # seconds to wait for a clean stop (it saves the weights) before the child is terminated


ROOT = Path(__file__).resolve().parent.parent


class JobBusy(RuntimeError):
    """A training job is already running in this app; only one runs at a time."""


class JobError(RuntimeError):
    """A command could not be carried out (no job, job over, save failed)."""


def _spawn_child(nice: int = 0) -> tuple[subprocess.Popen, Connection, Connection]:
    """Start a training process; returns it with the parent's ends of the command and event pipes.

    The child lowers its priority by `nice` and imports torch and the trainer at once, then waits
    for its run's setup: started ahead of a Start (a spare), it has done that work before it is asked.
    """
    cmd_r, cmd_w = os.pipe()
    evt_r, evt_w = os.pipe()
    env = dict(os.environ)
    # The child must import this package whatever the working directory the app was started from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from explorer.job_child import child_entry; child_entry()", str(cmd_r), str(evt_w),
             str(int(nice))],
            pass_fds=(cmd_r, evt_w), env=env, stdin=subprocess.DEVNULL)  # same working directory as the app
    finally:
        os.close(cmd_r)  # the child holds its own copies; ours would keep the pipes open after it exits
        os.close(evt_w)
    return proc, Connection(cmd_w, readable=False), Connection(evt_r, writable=False)


def default_threads() -> int:
    """Torch threads for the child: leave one core for the UI (1 on a 2-core machine)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def run_name(config: RunConfig, preset: str | None = None, when: datetime | None = None) -> str:
    """A readable, unique-enough folder name: dataset-preset-YYYYmmdd-HHMMSS."""
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    label = preset or config.model.net
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{config.data.name}-{label}-{stamp}")


# ---------------------------------------------------------------------------------------------
# the parent's view of a run


class _Series:
    """(step, value) pairs, at most `cap`: when full, every other point goes, so it always spans the run."""

    def __init__(self, cap: int):
        self.cap, self.stride, self.items = cap, 1, []

    def add(self, step: int, value) -> None:
        if step % self.stride:
            return
        self.items.append((step, value))
        if len(self.items) > self.cap:
            self.stride *= 2
            self.items = [(s, v) for s, v in self.items if s % self.stride == 0]


class RunHistory:
    """Everything a viewer of one run needs, folded from the child's messages (no torch here)."""

    def __init__(self, steps_total: int, batch_size: int, preview_every: int = 0):
        self.steps_total, self.batch_size, self.preview_every = steps_total, batch_size, preview_every
        self._marks: list[tuple[int, float, float]] = [(0, 0.0, 0.0)]  # (step, elapsed, preview_s), thinned
        self.step = 0
        self.loss = _Series(MAX_POINTS)
        self.smoothed = _Series(MAX_POINTS)
        self.lr = _Series(MAX_POINTS)
        self.grad_norm = _Series(MAX_POINTS)
        self.per_t = _Series(MAX_PER_T)
        self.previews = _Series(MAX_PREVIEWS)
        self._ema, self._weight = 0.0, 0.0
        self.steps_per_s = 0.0
        self.samples_per_s = 0.0
        self.elapsed = 0.0
        self.elapsed_step = 0  # the step `elapsed` was measured at
        self.n_previews, self.preview_s = 0, 0.0  # sample previews made so far and the seconds they took
        self.info: dict = {}

    def add_rows(self, rows) -> None:
        for step, loss, lr, norm in rows:
            self.step = step
            self.loss.add(step, loss)
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            self._weight = SMOOTHING * self._weight + (1 - SMOOTHING)
            self.smoothed.add(step, self._ema / self._weight)
            self.lr.add(step, lr)
            self.grad_norm.add(step, norm)

    def add_progress(self, msg: dict) -> None:
        self.add_rows(msg["rows"])
        if "per_t" in msg:
            self.per_t.add(self.step, msg["per_t"])
            self.steps_per_s, self.samples_per_s, self.elapsed = msg["steps_per_s"], msg["samples_per_s"], msg["elapsed"]
            self.elapsed_step = self.step
            self.n_previews, self.preview_s = msg.get("previews", 0), msg.get("preview_s", 0.0)
            self._marks.append((self.step, self.elapsed, self.preview_s))
            if len(self._marks) > MAX_MARKS:  # every other one goes: they still span the run
                self._marks = self._marks[::2] + ([self._marks[-1]] if len(self._marks) % 2 == 0 else [])

    def measured(self) -> tuple[float, float | None] | None:
        """(seconds per training step without previews, seconds per preview or None), once enough ran to tell."""
        if self.elapsed_step < MIN_STEPS_TO_REMEMBER or self.elapsed <= 0:
            return None
        step_s = (self.elapsed - self.preview_s) / self.elapsed_step
        if step_s <= 0:
            return None
        return step_s, (self.preview_s / self.n_previews if self.n_previews else None)

    def eta(self) -> float | None:
        """Seconds left: the steps left at the pace of the latest half of the steps done, plus the previews
        left at the time a preview took so far; None before the pace is known.

        Not the trainer's latest speed (it leaves out the previews and swings with every busy moment) nor
        the average since the start (on a shared machine the load changes during a run, and the latest
        half follows it while still averaging many steps).
        """
        if self.elapsed_step <= 0 or self.elapsed <= 0:
            return None
        step, elapsed, preview_s = self._marks[-1]
        then = max((m for m in self._marks if m[0] <= step / 2), key=lambda m: m[0])
        train_s = (elapsed - then[1]) - (preview_s - then[2])
        pace = max(train_s, 0.0) / max(step - then[0], 1)
        every = self.preview_every
        previews_left = (self.steps_total // every - self.step // every) if every else 0
        per_preview = self.preview_s / self.n_previews if self.n_previews else PREVIEW_STEPS * pace
        return max(0, self.steps_total - self.step) * pace + previews_left * per_preview


_JOBS: "weakref.WeakSet[TrainingJob]" = weakref.WeakSet()  # every job of this process (tests make several)
_SERIALS = itertools.count(1)


def version_key() -> str:
    """A short text that changes whenever any training job of this process changes (its run or its
    version): what the Train tab's page asks once a second before it asks Gradio for a redraw."""
    return ",".join(f"{job.serial}:{job.run_id}:{job.version}" for job in sorted(list(_JOBS), key=attrgetter("serial")))


class TrainingJob:
    """Starts, steers and watches the one training run of this app. Thread-safe; every method is cheap
    except `save` (waits for the checkpoint) and `stop` (waits for the child to end).

    prestart: keep a spare training process waiting, started now (or, with prestart_now=False, at
    `prestart_spare()`) and again after each run, so that Start finds torch imported and its first
    optimizer built (about 14 s on a busy 2-core CPU otherwise). Each run still gets a fresh process: a stopped run's child can be terminated
    without harm, and its memory goes back to the system.
    """

    def __init__(self, runs_dir: str | Path, device: str = "cpu", threads: int | None = None, nice: int = 5,
                 prestart: bool = False, book=None, prestart_now: bool = True):
        self.runs_dir = Path(runs_dir).resolve()  # the app's working directory, whatever the child's
        self.device = str(device)
        self.threads = threads or default_threads()
        self.nice = nice
        self.prestart = prestart
        self.book = book  # a costs.SpeedBook: each run's pace is remembered there for later estimates
        self._spare: tuple[subprocess.Popen, Connection, Connection] | None = None
        self._spare_ready = False
        self._lock = threading.Lock()
        self._saved = threading.Condition(self._lock)
        self._proc: subprocess.Popen | None = None
        self._commands = None
        self._events = None
        self._reader: threading.Thread | None = None
        self._tokens = itertools.count(1)
        self._replies: dict[int, dict] = {}
        self.version = 0  # bumped on every change, across runs: a viewer redraws only when it moves
        self.run_id = 0
        self._reset(None, None, "idle")
        self.serial = next(_SERIALS)  # names the job in version_key (a number, not a memory address)
        _JOBS.add(self)
        atexit.register(self.shutdown)
        if prestart and prestart_now:
            self.prestart_spare()

    def prestart_spare(self) -> None:
        """Start the spare training process now (with `prestart`; one already waiting is kept)."""
        with self._lock:
            self._keep_spare()

    def _reset(self, config: RunConfig | None, run_dir: Path | None, status: str) -> None:
        self.config = config
        self.cpu_bf16 = False  # start() sets it for the run it starts
        self.run_dir = run_dir
        self.status = status
        self.error: str | None = None
        self.traceback = ""
        self.checkpoints: list[tuple[int, str]] = []
        self.started_at = time.time()
        self.message = ""
        self.run_id += 1
        tc = config.train if config is not None else None
        self.history = RunHistory(tc.steps if tc else 0, tc.batch_size if tc else 0, tc.preview_every if tc else 0)

    # --- commands -------------------------------------------------------------------------------

    def start(self, config: RunConfig, name: str | None = None, checkpoint_every: int = 0,
              cpu_bf16: bool = False) -> Path:
        """Start training `config` in a child process; returns the run folder its checkpoints go to.

        cpu_bf16: on a CPU, train under bf16 autocast (core.training.Trainer's option; the caller checks
        that the CPU has native bf16). Raises JobBusy while another run is active.
        """
        retention.check_checkpoint_every(checkpoint_every, "checkpoint_every")
        with self._lock:
            if self.status in ACTIVE:
                raise JobBusy(f"a training run is already {self.status} (step {self.history.step} of "
                              f"{self.history.steps_total}, {self.run_dir.name}); stop it before starting another")
            self._join_previous()
            checkpoint.sweep(self.runs_dir)  # what saves killed mid-way left behind
            retention.app_quota(self.runs_dir).check()
            run_dir = self.runs_dir / (name or run_name(config))
            if run_dir.exists() and any(run_dir.iterdir()):
                raise ValueError(f"the run folder {run_dir} already holds files; choose another run name")
            self._reset(config, run_dir, "starting")
            self.cpu_bf16 = bool(cpu_bf16)
            try:
                self._proc, self._commands, self._events = self._take_spare() or _spawn_child(self.nice)
            except OSError as e:
                self.status, self.error = "failed", f"could not start the training process: {e}"
                raise JobError(self.error) from None
            try:
                self._send("setup", {"config": config.to_json(), "run_dir": str(run_dir), "device": self.device,
                                     "threads": self.threads, "checkpoint_every": checkpoint_every,
                                     "cpu_bf16": self.cpu_bf16})
            except JobError as e:
                self.status, self.error = "failed", str(e)
                self.version += 1
                raise
            self._reader = threading.Thread(target=self._read, args=(self._proc, self._events, self.run_id),
                                            name="training-reader", daemon=True)
            self._reader.start()
            self.version += 1
            return run_dir

    def wait_for_first_step(self, timeout: float) -> bool:
        """Wait until the current run has taken a step (True), or ended or `timeout` s passed (False)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.history.step > 0:
                    return True
                if self.status not in ACTIVE:
                    return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _send(self, *cmd) -> None:
        """Send a command to the child (with the lock held)."""
        if self.status not in ACTIVE or self._commands is None:
            raise JobError("no training run is active; start one first")
        try:
            self._commands.send(cmd[1] if cmd[0] == "setup" else cmd)
        except OSError:  # BrokenPipeError: the child is gone; the reader thread reports why
            raise JobError("the training process is no longer running") from None

    def pause(self) -> None:
        """Pause after the current step (the child keeps its state and waits)."""
        with self._lock:
            if self.status == "paused":
                return
            self._send("pause")

    def resume(self) -> None:
        with self._lock:
            if self.status != "paused":
                raise JobError(f"the run is {self.status}, not paused")
            self._send("resume")

    def save(self, timeout: float = SAVE_TIMEOUT) -> Path:
        """Write a checkpoint of the current weights into the run folder now; returns its path.

        A finished run already saved its final checkpoint: that one is returned.
        """
        with self._lock:
            if self.status in ("finished", "stopped", "failed") and self.checkpoints:
                return Path(self.checkpoints[-1][1])
            if self.status == "starting":
                raise JobError("the run is still starting; there are no weights to save yet")
            token = next(self._tokens)
            self._send("save", token)
            deadline = time.monotonic() + timeout
            while token not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or (self.status not in ACTIVE):
                    break
                self._saved.wait(min(left, 0.5))
            reply = self._replies.pop(token, None)
        if reply is None:
            raise JobError("the checkpoint was not written: the run ended or did not answer in time")
        if reply["type"] == "save_failed":
            raise JobError(f"saving failed: {reply['message']}")
        return Path(reply["path"])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the run and wait for the child to end; the child first saves the weights so far (if any step ran)."""
        with self._lock:
            if self.status not in ACTIVE:
                return
            try:
                self._send("stop")
            except JobError:
                pass
            self.status = "stopping"
            self.version += 1
            proc = self._proc
        if proc is not None:
            for end in (None, proc.terminate, proc.kill):
                if end is not None:
                    end()
                try:
                    proc.wait(timeout if end is None else 2.0)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._reader is not None:
            self._reader.join(timeout=3.0)
        with self._lock:
            if self.status == "stopping":
                self.status = "stopped"
                self.message = "stopped"
                self.version += 1

    def shutdown(self) -> None:
        """Stop any run and end the helper threads: call at app exit (also registered with atexit)."""
        with self._lock:
            self.prestart = False  # no new spare once the run below has ended
            self._drop_spare()
        try:
            self.stop(timeout=5.0)
        finally:
            with self._lock:
                self._join_previous()

    def _keep_spare(self) -> None:
        """Start a spare training process unless one is waiting (called with the lock held)."""
        if not self.prestart or (self._spare is not None and self._spare[0].poll() is None):
            return
        self._drop_spare()
        self._spare_ready = False
        try:
            self._spare = _spawn_child(self.nice)
        except OSError:
            self._spare = None  # Start then spawns its own and reports what went wrong

    def spare_ready(self) -> bool:
        """Whether a spare process waits with torch imported and its optimizer built (a Start is then fast)."""
        with self._lock:
            spare = self._spare
            if spare is None or spare[0].poll() is not None:
                return False
            try:
                while not self._spare_ready and spare[2].poll(0):
                    self._spare_ready = spare[2].recv().get("type") == "ready"
            except (EOFError, OSError):
                return False
            return self._spare_ready

    def _take_spare(self):
        """The waiting spare process, if it is still alive (called with the lock held)."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0].poll() is None:
            return spare
        if spare is not None:
            for conn in spare[1:]:
                conn.close()
        return None

    def _drop_spare(self) -> None:
        """End the spare process (called with the lock held); it holds no run, so it is simply terminated."""
        spare, self._spare = self._spare, None
        if spare is None:
            return
        proc, commands, events = spare
        commands.close()
        events.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2.0)

    def _join_previous(self) -> None:
        """Release the last run's process and queues (called with the lock held, after it ended)."""
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
            for conn in (self._commands, self._events):
                if conn is not None:
                    conn.close()
            self._commands = self._events = None

    # --- the reader thread ----------------------------------------------------------------------

    def _read(self, proc, events, run_id: int) -> None:
        """Fold the child's messages into the history until the child is gone."""
        while True:
            try:
                msg = events.recv()  # EOF once the child has exited and its messages are read
            except (EOFError, OSError):
                self._child_gone(proc, run_id)
                return
            with self._lock:
                if run_id != self.run_id:  # a newer run has started; this one's news is stale
                    return
                self._apply(msg)
                self.version += 1
                if msg["type"] in ("saved", "save_failed"):
                    self._saved.notify_all()

    def _child_gone(self, proc, run_id: int) -> None:
        try:
            code = proc.wait(5.0)
        except subprocess.TimeoutExpired:
            code = None
        with self._lock:
            if run_id != self.run_id:
                return
            if self.status in ACTIVE and self.status != "stopping":
                self.status = "failed"
                self.error = self.error or f"the training process ended unexpectedly (exit code {code})"
            self._saved.notify_all()
            self.version += 1
            self._keep_spare()  # the run's process is gone: the next Start finds one ready

    def _apply(self, msg: dict) -> None:
        kind, h = msg["type"], self.history
        if kind == "progress":
            h.add_progress(msg)
        elif kind == "started":
            h.info = {k: v for k, v in msg.items() if k != "type"}
            self.status = "running"
        elif kind == "preview":
            h.previews.add(msg["step"], msg["samples"])
        elif kind == "paused":
            self.status = "paused"
        elif kind == "resumed":
            self.status = "running"
        elif kind in ("saved", "save_failed"):
            if kind == "saved":  # the list never names a periodic save that retention has just deleted
                gone = {os.path.realpath(p) for p in (msg["path"], *msg.get("removed", ()))}
                self.checkpoints = [c for c in self.checkpoints if os.path.realpath(c[1]) not in gone] + [
                    (msg["step"], msg["path"])]
                self.message = f"saved {Path(msg['path']).name}"
            if msg.get("token") is not None:
                self._replies[msg["token"]] = msg
        elif kind == "finished":
            self.status = "finished"
            self.message = f"finished after {msg['step']} steps"
            self._remember_pace()
        elif kind == "stopped":
            self.status = "stopped"
            self.message = f"stopped at step {msg['step']}"
            self._remember_pace()
        elif kind == "error":
            self.status = "failed"
            self.error = msg["message"]
            self.traceback = msg.get("traceback", "")

    def _remember_pace(self) -> None:
        """Put the ended run's measured pace into the speed book (with the lock held)."""
        measured = self.history.measured()
        if self.book is None or measured is None or self.config is None or self.config.train.compile:
            return  # a compiled run's pace (and its compile time) is not what an eager run's estimate needs
        from . import costs  # imports torch: only where a book is kept (the app), never in the child

        costs.record_training(self.config.model, self.config.train.batch_size,
                              self.device_key(self.cpu_bf16, self.config.train.amp), *measured, book=self.book)

    def device_key(self, cpu_bf16: bool = False, amp: bool = True) -> str:
        """The speed book's name for the device, threads and precision this job trains with: bf16 on a CPU
        and fp32 on a GPU (amp off) are paces of their own, not the device's default one."""
        from . import costs

        key = costs.device_key(self.device, self.threads)
        if cpu_bf16 and self.device.startswith("cpu"):
            key += ", bf16 autocast"
        elif not amp and self.device.startswith("cuda"):
            key += ", fp32"
        return key

    # --- what viewers see -----------------------------------------------------------------------

    def snapshot(self) -> dict:
        """A consistent copy of the run's state for any viewer (plain values and small numpy arrays).

        status, message, error, step, steps_total, progress (0..1), loss / smoothed / lr / grad_norm
        ([steps], [values]), per_t ([steps], rows of bin means, NaN = no sample yet), t_bin_edges,
        previews {step: array (n, *sample_shape) float16}, reference (real samples), steps_per_s,
        samples_per_s, elapsed (s), eta (s or None), device, kind, checkpoints [(step, path)],
        run_dir, config (dict or None), version (changes whenever anything does).
        """
        with self._lock:
            h = self.history

            def series(s):
                return ([p[0] for p in s.items], [p[1] for p in s.items])

            info = h.info
            return {
                "status": self.status, "message": self.message, "error": self.error,
                "step": h.step, "steps_total": h.steps_total,
                "progress": (h.step / h.steps_total) if h.steps_total else 0.0,
                "loss": series(h.loss), "smoothed": series(h.smoothed), "lr": series(h.lr),
                "grad_norm": series(h.grad_norm),
                "per_t": ([s for s, _ in h.per_t.items], [list(v) for _, v in h.per_t.items]),
                "t_bin_edges": info.get("t_bin_edges"),
                "previews": dict(h.previews.items), "reference": info.get("reference"),
                "steps_per_s": h.steps_per_s, "samples_per_s": h.samples_per_s, "elapsed": h.elapsed,
                "eta": h.eta() if self.status == "running" else None,
                "device": info.get("device", self.device), "threads": info.get("threads"), "shards": info.get("shards"),
                "cpu_bf16": info.get("cpu_bf16", False),
                "kind": info.get("kind"), "sample_shape": info.get("sample_shape"),
                "parameters": info.get("parameters"),
                "checkpoints": list(self.checkpoints),
                "run_dir": str(self.run_dir) if self.run_dir else None,
                "config": self.config.to_dict() if self.config else None,
                "run_id": self.run_id, "version": self.version,
            }

    @property
    def active(self) -> bool:
        with self._lock:
            return self.status in ACTIVE


def format_seconds(s: float | None) -> str:
    """12 s, 3 min 05 s, 1 h 02 min; an em dash for unknown."""
    if s is None or not math.isfinite(s):
        return "—"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


_MANAGER_LOCK = threading.Lock()


def manager_for(ctx) -> TrainingJob:
    """The app's one job manager, made on first use and kept on the AppContext (`ctx.jobs`)."""
    with _MANAGER_LOCK:
        if getattr(ctx, "jobs", None) is None:
            from . import costs

            # the spare training process starts once the app serves its page (it imports torch: a
            # core's worth of work that the first page does not need)
            ctx.jobs = TrainingJob(ctx.settings.runs_dir, device=str(ctx.device), prestart=True, book=costs.BOOK,
                                   prestart_now=False)
            ctx.when_serving(ctx.jobs.prestart_spare)
        return ctx.jobs
