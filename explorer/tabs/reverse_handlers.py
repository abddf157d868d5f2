"""The Reverse tab's handlers: validate settings, run samplers on one clock, draw and export frames.

`ReverseHandlers(ctx)` holds every event of the tab (tests and gradio_client call them; `reverse.py`
wires them to widgets). A `ReverseSession` (in a gr.State) keeps one browser session's recorded
trajectory, the live computation and the playback cursor. All diffusion math is in `core`.
"""
from __future__ import annotations

import functools
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from core.checkpoint import sampling_clip
from core.config import DataConfig
from core.data import checkpoint_data, load_dataset
from core.forward import model_predictions
from core.nets.base import KINDS
from core.samplers import ANCESTRAL, SAMPLER_LABELS, SAMPLERS, sampler_name, sampler_options
from core.schedules import SPACINGS, make_schedule

from .. import animation, tempfiles
from ..costs import COSTS, LIMIT_S, computing_left, say_seconds
from ..feed import FEEDS, Feed, armed_marker, jpeg
from ..feed import marker as feed_marker
from ..lecture import OPENING
from ..pacer import FrameSlots
from ..recordings import Recordings
from ..trajectory import Clock, Lane, ReuseLastCall, Trajectory, snapshot
from ..widgets import DataView
from . import reverse_text as text


RANK_KIND = {rank: kind for kind, rank in KINDS.items()}   # 1 -> points, 2 -> signal, 3 -> image
MAX_SAMPLES = {"image": 64, "points": 2000, "signal": 16}
DEFAULT_SAMPLES = {"image": 16, "points": 500, "signal": 4}
LARGE_IMAGE = 16 * 16        # pixels per channel above which images default to a 3x3 grid (CPU-friendly)
DEFAULT_STEPS = {"ddpm": None, "ddpm-beta": None, "ddim": 50, "dpm++2m": 20, "dpm++2m-sde": 50}  # None: all T (DDPM's own)
SEED_MAX = 2**31 - 1
SPEEDS = ["auto", "10", "30", "100", "300", "1000", "max"]  # clock ticks (sampler steps) per second
DEFAULT_SPEED = "auto"
AUTO_SECONDS = 4.0  # "auto": a run plays in about this long, whatever its steps (DDIM 50 and DDPM 1000 alike)
# Frames actually sent while playing: a browser shows ~30 images/s; plotly redraws are slower.
MAX_FPS = {"image": 30.0, "points": 12.0, "signal": 15.0}
# The caption and the frame slider follow at most this often while playing (the first and the closing
# view always carry them): each update of either is page work in the browser, and a caption that
# changes 12 times a second cannot be read anyway.
CAPTION_FPS = 4.0
# The page's player (explorer/feed.py) is sent a frame only when it has shown the previous one, so it
# sets the pace itself where it is slower than this. 2-D and signal frames are whole charts: each
# one costs the browser's main thread about 19 ms to decode and paint (headless chromium, 2-core
# CPU), so at 25 a second it was 48% busy; at 12 it stays free for clicks and keys.
LIVE_FPS = {"image": 30.0, "points": 12.0, "signal": 15.0}
EXPORT_MAX_FRAMES = {"gif": 90, "mp4": 360}
EXPORT_FPS = {"gif": 12, "mp4": 24}
FIELD_GRID = 17            # arrows per side of the 2-D field
FIELD_LIM = 3.2
TRAIL_SPAN = 0.12          # a trail covers the last 12% of T
REFERENCE_POINTS = 1200
SECOND_LANE_SALT = 1_000_003  # the second sampler's noise stream: seed + salt (its x_T is the first's)


@dataclass(frozen=True)
class Spec:
    """A validated setting: everything that decides a trajectory (not the playback speed)."""

    checkpoint: str
    mtime: int
    kind: str
    lanes: tuple[Lane, ...]
    seed: int
    n: int


class ReverseSession:
    """Per browser session: the recorded trajectory, the live computation and the playback cursor.

    Lives in a gr.State, so it is passed by reference to every event of the session: Pause and
    Stop flip flags here that the playing generator reads between steps.
    """

    def __init__(self):
        self.spec: Spec | None = None
        self.traj: Trajectory | None = None
        self.clock: Clock | None = None
        self.cursor = 0
        self.token: object | None = None   # identifies the playing generator; None = nothing plays
        self.stopped: object | None = None  # the token of the generator Stop ended
        self.paused: object | None = None   # the token of the generator Pause ended
        self.model = None
        self.schedule = None
        self.prediction = "eps"
        self.reference = None              # (M, 2) training points for 2-D models
        self.fields: dict[int, tuple] = {}  # t -> (grid points, eps, spacing): cached per session
        self.total = 0                     # clock ticks the run will take
        self.estimate = 0.0                # seconds of computing the whole run takes here (measured call x steps)
        self.timed_s, self.timed = 0.0, 0  # this run's own computing so far: seconds over that many ticks
        self.recorded = False              # True: the trajectory was recorded before (replayed, not computed)
        self.dark = False                  # image frames drawn on the dark theme's ground (the page says which)
        self.played = False                # Play has run this run (a link or lesson stop only sets it up)
        self.armed: Feed | None = None     # the feed the page's next Play click may ask for its first frame
        self.lock = threading.RLock()

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value per session
        return ReverseSession()

    def clear(self) -> None:
        """Forget the run (another checkpoint was chosen): playback ends, Step and Export have nothing."""
        with self.lock:
            self.token = None
            self.spec, self.traj, self.clock, self.cursor = None, None, None, 0
            self.recorded, self.fields, self.total, self.estimate = False, {}, 0, 0.0
            self.timed_s, self.timed = 0.0, 0

    @property
    def computing(self) -> bool:
        return self.clock is not None and not self.clock.finished


# --- choices and validation -------------------------------------------------------------------

def _int(name: str, value, lo: int, hi: int) -> int:
    """An integer from a widget or an API call (sliders send floats like 50.0); errors say the range."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(f)


def _float(name: str, value, lo: float, hi: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return f


def sampler_choices() -> list[tuple[str, str]]:
    return [(SAMPLER_LABELS.get(k, k), k) for k in SAMPLERS]


def kind_of(entry: dict) -> str:
    shape = entry.get("sample_shape") or []
    return RANK_KIND.get(len(shape), "image")


def checkpoint_label(entry: dict) -> str:
    """'gaussians8 · checkpoints' or 'my-run · digits · runs': name, dataset if it differs, folder."""
    parts = [entry["name"]]
    if entry.get("dataset") and entry["dataset"] != entry["name"]:
        parts.append(str(entry["dataset"]))
    if entry.get("root"):
        parts.append(Path(entry["root"]).name)
    return " · ".join(parts)


def checkpoint_summary(config, meta: dict) -> str:
    """One markdown line about a checkpoint: dataset, net, sample shape, schedule, target, training.

    A run saved before its planned end (stopped, interrupted, saved mid-run) says so: its samples
    are those of a model still learning.
    """
    shape = "×".join(str(s) for s in meta["sample_shape"])
    line = (f"**{meta.get('dataset', config.data.name)}** · {config.model.net} · samples {shape} · "
            f"T = {config.diffusion.T} ({config.diffusion.schedule}) · predicts {config.diffusion.prediction}")
    trained, planned = meta.get("steps"), config.train.steps
    if isinstance(trained, int):
        line += (f" · trained {trained:,} of {planned:,} planned steps" if trained < planned
                 else f" · trained {trained:,} steps")
    return line


def default_samples(kind: str, sample_shape) -> int:
    """How many samples a run draws unless the user says otherwise: each step costs a forward pass on all."""
    if kind == "image" and math.prod(sample_shape[1:]) > LARGE_IMAGE:
        return 9
    return DEFAULT_SAMPLES[kind]


def default_steps(sampler: str, T: int) -> int:
    return min(DEFAULT_STEPS.get(sampler) or T, T)


def _speed(value) -> float | None:
    """Clock ticks a second; math.inf for "max", None for "auto" (set from the run's length by the caller)."""
    if str(value) == "max":
        return math.inf
    if str(value) == "auto":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"speed must be one of {', '.join(SPEEDS)} (steps per second), got {value!r}") from None
    if not 0 < v <= 100_000:
        raise gr.Error(f"speed must be one of {', '.join(SPEEDS)} (steps per second), got {value!r}")
    return v


@functools.lru_cache(maxsize=8)
def _reference_points(name: str, params_json: str):
    """Up to REFERENCE_POINTS training points of a 2-D dataset, or None where they cannot be made."""
    try:
        data = checkpoint_data(DataConfig(name, json.loads(params_json)))  # only the app's data folders
        data = load_dataset(data.name, **data.params)
    except (ValueError, OSError, TypeError):
        return None
    if data.kind != "points":
        return None
    return data.x[:REFERENCE_POINTS].numpy()


# --- the handlers -----------------------------------------------------------------------------

class CheckpointPicker:
    """What every tab with a checkpoint dropdown needs: the app context and its samplable checkpoints."""

    def __init__(self, ctx):
        self.ctx = ctx

    def checkpoints(self, fresh: bool = False) -> list[dict]:
        """The checkpoints that can be sampled (the context rescans at most every couple of seconds, or `fresh`)."""
        return self.ctx.samplable_checkpoints(fresh)

    def choices(self, fresh: bool = False) -> list[tuple[str, str]]:
        """(label, path) pairs for a dropdown."""
        return [(checkpoint_label(e), e["path"]) for e in self.checkpoints(fresh)]


class ReverseHandlers(CheckpointPicker):
    """Every event of the tab, bound to the app context (for checkpoints and the device).

    `recordings` keeps complete trajectories for every session of the app (and finds the ones shipped
    beside checkpoints): a setting already computed is replayed, not computed again.
    """

    def __init__(self, ctx, recordings: Recordings | None = None):
        super().__init__(ctx)
        self.recordings = recordings if recordings is not None else Recordings()

    # checkpoints --------------------------------------------------------------------------

    def default_checkpoint(self) -> str | None:
        entries = self.checkpoints()
        for e in entries:  # images first: the most telling first picture
            if kind_of(e) == "image":
                return e["path"]
        return entries[0]["path"] if entries else None

    def entry(self, path) -> dict:
        """The listing entry of a checkpoint path; only listed checkpoints are ever loaded."""
        if not path:
            listed = self.checkpoints()
            if not listed:
                raise gr.Error("No checkpoint found. Train one in the Train tab (it is saved to the runs folder) "
                               "or put checkpoints in assets/checkpoints, then press ↻.")
            raise gr.Error("Choose a checkpoint first.")
        found = self.ctx.find_checkpoint(path)
        if found is not None:
            return found
        names = ", ".join(e["label"] for e in self.checkpoints()) or "none"
        raise gr.Error(f"Unknown checkpoint {path!r}; available: {names}. Press ↻ to refresh the list.")

    def load(self, path):
        """(model, config, meta, schedule) of a listed checkpoint, from the context's cache."""
        entry = self.entry(path)
        try:
            model, config, meta = self.ctx.load_checkpoint(entry["path"])
        except (ValueError, FileNotFoundError, OSError) as e:
            raise gr.Error(f"Could not load {entry['label']}: {e}") from None
        schedule = _schedule(config.diffusion.schedule, config.diffusion.T)
        return model, config, meta, schedule

    def info(self, path) -> str:
        if not path:
            return "*No checkpoint selected.*"
        try:
            _, config, meta, _ = self.load(path)
        except gr.Error as e:
            return f"**Problem:** {e.message if hasattr(e, 'message') else e}"
        return checkpoint_summary(config, meta)

    def refresh(self, current):
        """Rescan the checkpoint folders; keep the current choice if it is still there."""
        choices = self.choices(fresh=True)
        paths = [p for _, p in choices]
        value = current if current in paths else self.default_checkpoint()
        return gr.update(choices=choices, value=value)

    def select_checkpoint(self, checkpoint, sampler, steps, sampler_b, steps_b, n, last_kind=None, session=None):
        """Fit the controls to a checkpoint (steps up to its T, sample count for its kind) and warm it up.

        Returns (info, steps, steps_b, n, image, plot, kind): the sample count is kept while the data
        kind stays the same, unless it was left at a default, and is the checkpoint's default otherwise.
        The frame shown stays when it is of this checkpoint (opening the tab, a refresh, a restored link).
        """
        if not checkpoint:
            return (self.info(checkpoint), gr.update(), gr.update(), gr.update(), *DataView.show("image", None),
                    last_kind)
        entry = self.entry(checkpoint)
        kind = kind_of(entry)
        model, config, meta, schedule = self.load(checkpoint)
        T = schedule.T
        steps = min(_int("steps", steps or 1, 1, 10**6), T)
        steps_b = min(_int("steps", steps_b or 1, 1, 10**6), T)
        n_max = MAX_SAMPLES[kind]
        try:
            n_val = _int("number of samples", n, 1, n_max) if kind == last_kind else None
        except gr.Error:
            n_val = None
        # a count left at the default of the model before (16 digits) becomes this model's default
        # (9 for larger images): the setting its recorded default run was made with
        if n_val in {DEFAULT_SAMPLES[kind], default_samples(kind, (3, 32, 32))}:
            n_val = None
        n_val = n_val or default_samples(kind, meta["sample_shape"])
        self._warm(model, meta, n_val)
        # a session with no run yet shows nothing of another checkpoint, and the page's opening view may
        # be on its way (a tab opened by a link is selected while the link is restored): leave it be
        # unless the kind of data changes (the other component must show)
        idle = not isinstance(session, ReverseSession) or session.spec is None
        same = (session.spec.checkpoint == checkpoint) if not idle else kind == last_kind
        if not idle and not same:
            session.clear()  # the frames on screen go, and so does the run they came from
        return (self.info(checkpoint),
                gr.update(maximum=T, value=steps),
                gr.update(maximum=T, value=steps_b),
                gr.update(maximum=n_max, value=n_val),
                *((gr.skip(), gr.skip()) if same else DataView.show(kind, None)),
                kind)

    def _warm(self, model, meta, n: int) -> None:
        """One throw-away forward pass: the first call of a net pays for allocations and kernel choice."""
        x = torch.zeros((n, *meta["sample_shape"]), device=self.ctx.device)
        t = torch.ones(n, dtype=torch.long, device=self.ctx.device)
        with torch.no_grad():
            model(x, t)

    def sampler_changed(self, path, sampler):
        """Show eta only for DDIM and suggest the sampler's usual number of steps (all T for DDPM)."""
        T = None
        if path:
            try:
                T = self.load(path)[3].T
            except gr.Error:
                pass
        steps = gr.update(value=default_steps(sampler, T)) if T else gr.update()
        return gr.update(visible=sampler == "ddim"), steps

    def explanation(self, path, sampler, compare=False, sampler_b=None) -> str:
        """The equations of the chosen sampler(s) and what the panels of this data kind show."""
        kind = None
        if path:
            try:
                kind = kind_of(self.entry(path))
            except gr.Error:
                pass
        return text.explanation(sampler, kind, bool(compare), sampler_b if compare else None)

    # validation ----------------------------------------------------------------------------

    def spec(self, path, sampler, steps, eta, seed, n, compare=False, sampler_b="ddim", steps_b=50,
             eta_b=0.0, spacing="linear") -> tuple[Spec, tuple]:
        """Check every setting against the checkpoint; returns (Spec, (model, config, meta, schedule)).
        `spacing` (the timesteps the samplers visit) applies to both lanes."""
        loaded = self.load(path)
        _, config, meta, schedule = loaded
        kind = RANK_KIND.get(len(meta["sample_shape"]), "image")
        spacing = "linear" if spacing is None else spacing
        if spacing not in SPACINGS:
            raise gr.Error(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
        lanes = [self._lane(sampler, steps, eta, schedule.T, spacing=spacing)]
        if compare:
            lanes.append(self._lane(sampler_b, steps_b, eta_b, schedule.T, "second sampler", spacing))
        n = _int("number of samples", n, 1, MAX_SAMPLES[kind])
        seed = _int("seed", seed, 0, SEED_MAX)
        weights = Path(path) / "model.safetensors"
        mtime = weights.stat().st_mtime_ns if weights.exists() else 0
        return Spec(str(path), mtime, kind, tuple(lanes), seed, n), loaded

    @staticmethod
    def _lane(sampler, steps, eta, T: int, which: str = "sampler", spacing: str = "linear") -> Lane:
        if sampler not in SAMPLERS:
            raise gr.Error(f"unknown {which} {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        steps = _int(f"steps ({which})", steps, 1, T)
        eta = _float(f"eta ({which})", eta if eta is not None else 0.0, 0.0, 1.0) if sampler == "ddim" else None
        return Lane(sampler, SAMPLER_LABELS.get(sampler, sampler), steps, eta, spacing)

    # running -------------------------------------------------------------------------------

    def _iterators(self, spec: Spec, loaded):
        """One sampler iterator per lane, all from the same x_T drawn from the seed."""
        model, config, meta, schedule = loaded
        shape = (spec.n, *meta["sample_shape"])
        g = torch.Generator().manual_seed(spec.seed)
        x_T = torch.randn(shape, generator=g)  # drawn once; every lane starts here
        # the x0 clip the checkpoint was trained for (images [-1, 1]; 2-D toys and signals their data's
        # range), as core.sample and core.evaluate use: without it DDIM's first steps from pure noise
        # throw some points far off (spiral's cosine schedule: nearly all of them)
        clip = sampling_clip(meta)
        if len(spec.lanes) > 1:
            model = ReuseLastCall(model)  # the lanes' first steps share one forward pass
        its, timesteps = [], []
        for k, lane in enumerate(spec.lanes):
            gen = g if k == 0 else torch.Generator().manual_seed(spec.seed + SECOND_LANE_SALT * k)
            opts = sampler_options(lane.sampler, lane.eta, lane.spacing)
            its.append(SAMPLERS[lane.sampler](model, schedule, shape, steps=lane.steps, generator=gen,
                                              device=self.ctx.device, prediction=config.diffusion.prediction,
                                              x_T=x_T, clip=clip, **opts))
            timesteps.append(schedule.timesteps(lane.steps, lane.spacing).tolist())
        return its, timesteps

    def _start(self, session: ReverseSession, spec: Spec, loaded) -> None:
        """Set the session up for a run of `spec`: replayed where it was recorded before, else computed live."""
        model, config, meta, schedule = loaded
        recorded = self.recordings.get(spec)
        if recorded is not None:
            session.spec, session.clock, session.traj = spec, None, recorded
        else:
            its, timesteps = self._iterators(spec, loaded)
            session.spec, session.clock = spec, Clock(its, timesteps)
            session.traj = Trajectory(spec.kind, spec.lanes)
        session.recorded = recorded is not None
        session.played = False
        session.cursor = 0
        session.model, session.schedule, session.prediction = model, schedule, config.diffusion.prediction
        session.fields = {}
        session.reference = None
        if spec.kind == "points":
            session.reference = _reference_points(config.data.name, json.dumps(config.data.params, sort_keys=True))
        session.total = session.clock.total if session.clock is not None else recorded.ticks
        session.estimate = 0.0 if recorded is not None else self.estimate(spec, loaded)[0]
        session.timed_s, session.timed = 0.0, 0

    def _advance(self, session: ReverseSession) -> bool:
        """Compute clock ticks until one is recorded as a new frame; False when the run is complete."""
        with session.lock:  # one thread at a time may drive the samplers (Play, step, export)
            clock, traj = session.clock, session.traj
            while clock is not None and not clock.finished:
                began = time.perf_counter()
                tick = clock.tick()
                session.timed_s += time.perf_counter() - began
                session.timed += 1
                if tick is None:
                    break
                if traj.observe(tick):
                    if traj.complete:
                        self.recordings.put(session.spec, traj)
                    return True
            return False

    def _begin(self, settings: tuple, speed, session) -> tuple:
        """Set a Play up: (session, spec, rate, token, fresh, T); `fresh` when the run starts now."""
        session = session if isinstance(session, ReverseSession) else ReverseSession()
        spec, loaded = self.spec(*settings)
        rate = _speed(speed)
        token = object()
        with session.lock:
            session.token = token
            fresh = session.spec != spec or session.traj is None or (
                not session.computing and not session.traj.complete)  # a stopped run starts over
            if fresh:
                self._start(session, spec, loaded)
            elif session.traj.complete and session.cursor >= len(session.traj) - 1:
                session.cursor = 0  # replay from the start
            session.played = True
        if fresh:
            self._advance(session)  # the first step only: the first frame goes out at once
        if rate is None:
            rate = max(1.0, session.total / AUTO_SECONDS)
        return session, spec, rate, token, fresh, loaded[3].T

    def _paced(self, session: ReverseSession, rate: float, token, min_gap: float, ready=None):
        """Move the cursor through the run at `rate` clock ticks a second (replayed or computed).

        Yields (frame index, words) for each frame to show: at most one in each `min_gap` slot of the
        clock (`FrameSlots`: about 1 / min_gap a second even where steps come just faster than that) and,
        with `ready`, only while ready() says the viewer wants one; `words` at most CAPTION_FPS times
        a second. Ends when the run is complete, or Pause, Stop, a step or a new Play took over.
        The final frame is not yielded: the closing view (`_closing`) shows it.
        """
        words_gap = 1.0 / CAPTION_FPS
        t0 = last_words = time.perf_counter()
        slots = FrameSlots(min_gap)
        slots.take()  # the first view showed the frame before this one
        played = 0  # clock ticks shown since t0: the speed paces these, whether replayed or computed
        while session.token is token:
            traj = session.traj
            if traj is None:  # cleared: another checkpoint was chosen
                break
            if session.cursor < len(traj) - 1:          # replaying recorded frames
                session.cursor += 1
                played += traj.stride
            else:                                        # computing new ones
                before = traj.ticks
                if not self._advance(session):
                    break
                session.cursor = len(traj) - 1
                played += traj.ticks - before
            if rate != math.inf:
                wait = played / rate - (time.perf_counter() - t0)
                if wait > 0:
                    time.sleep(wait)
            if session.token is not token:
                break
            if session.cursor >= len(traj) - 1 and not session.computing:
                break  # the final frame: the closing view shows it
            now = time.perf_counter()
            if slots.free() and (ready is None or ready()):
                slots.take()
                words = now - last_words >= words_gap
                if words:
                    last_words = now
                yield session.cursor, words

    def _closing(self, session: ReverseSession, spec: Spec, token, shown: int):
        """The view a play ends with, or None when a step, a scrub or a new Play took over.

        Pause and Stop answer outside the queue, so a frame this generator sent just before them can
        reach the browser after their reply: the generator closes with its own view (caption, slider
        free). Each frame goes out once, though: sending the same image again would make Gradio
        rewrite its cached file in place while the browser may still be reading it (a broken frame),
        so the picture comes only if the cursor moved since `shown`, the last one the page has from
        Gradio. A step, a scrub or a new Play that took over is queued after this generator's frames
        and shows its own view. 2-D and signal frames travel as pictures while playing and the closing
        view swaps in the interactive figure (a different component, no cached file), so it always goes out.
        """
        with session.lock:
            mine = session.token is token
            if mine:
                session.token = None
        again = shown != session.cursor or spec.kind != "image"
        if session.stopped is token:
            return self.view(session, session.cursor, note=self.STOPPED, picture=again)
        if mine or session.paused is token:  # complete or paused
            return self.view(session, session.cursor, picture=again)
        return None

    def play(self, checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, speed,
             session: ReverseSession | None, spacing="linear"):
        """Stream frames as Gradio outputs while the trajectory is computed (or replay it): the API's Play.

        The page's own Play button uses `play_live`, which sends the frames outside Gradio's messages.
        """
        settings = (checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, spacing)
        session, spec, rate, token, fresh, T = self._begin(settings, speed, session)
        yield self.view(session, session.cursor, playing=True)
        self._announce(session, spec, rate, fresh, T)
        shown = session.cursor
        for k, words in self._paced(session, rate, token, 1.0 / MAX_FPS[spec.kind]):
            shown = k
            yield self.view(session, k, playing=True, streaming=True, words=words)
        closing = self._closing(session, spec, token, shown)
        if closing is not None:
            yield closing

    def play_live(self, checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, speed,
                  session: ReverseSession | None, spacing="linear"):
        """The page's Play: the first and the closing view go through Gradio, the frames between
        through a `Feed` that the page's player fetches (see explorer/feed.py). Outputs: the view
        (image, plot, caption, frame slider) and the feed marker."""
        settings = (checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, spacing)
        session, spec, rate, token, fresh, T = self._begin(settings, speed, session)
        feed = self._take_feed(session, fresh)
        # The frame Gradio's image gets. Where the armed feed sent it already, the page shows the same
        # picture, and its player asks for the next frame only once this view has landed.
        first = session.cursor
        try:
            yield *self.view(session, first, playing=True), feed_marker(feed)
            self._announce(session, spec, rate, fresh, T)
            for k, _ in self._paced(session, rate, token, 1.0 / LIVE_FPS[spec.kind], ready=lambda: feed.hungry):
                feed.publish(jpeg(self.raster(session, k, themed=True)), self.caption(session, k, playing=True), k,
                             len(session.traj))
        finally:
            FEEDS.close(feed)
        closing = self._closing(session, spec, token, first)
        yield *(closing if closing is not None else (gr.skip(),) * 4), feed_marker(None)

    # Play's first frame before Play's event arrives (armed feeds, see explorer/feed.py) -------

    def arm(self, session):
        """The marker of the session's armed feed, which the page's next Play click asks for Play's
        first frame while Play's own event goes through the queue ('' for a session with no run)."""
        if not isinstance(session, ReverseSession) or session.traj is None:
            return armed_marker(None)
        armed = session.armed
        if armed is None or armed.closed:
            armed = session.armed = FEEDS.open(functools.partial(self._first_frame, session),
                                               functools.partial(self._frame_picture, session))
        return armed_marker(armed)

    @staticmethod
    def _next_frame(session: ReverseSession) -> int | None:
        """The frame Play shows first when it goes on from the cursor without computing (None: it
        computes first, or starts over, as a stopped run does)."""
        traj = session.traj
        if traj is None or not len(traj) or (not traj.complete and not session.computing):
            return None
        if traj.complete and session.cursor >= len(traj) - 1:
            return 0  # Play replays a complete run from its start
        return session.cursor + 1 if session.cursor < len(traj) - 1 else None

    def _first_frame(self, session: ReverseSession, commit: bool = True):
        """The armed feed's starter: (JPEG, caption, index, frames) of the frame Play will show first,
        or None when it has to be computed, a run plays, or the session is busy (Play's own event).
        With `commit` the session moves to it: the page shows it from now on, whether or not Play's
        event follows; without, nothing changes (the page's look ahead)."""
        if not session.lock.acquire(blocking=False):
            return None
        try:
            k = self._next_frame(session) if session.token is None else None
            if k is None:
                return None
            cursor = session.cursor
            session.cursor = k  # the caption counts from the cursor
            try:
                return (jpeg(self.raster(session, k, themed=True)), self.caption(session, k, playing=True), k,
                        len(session.traj))
            finally:
                if not commit:
                    session.cursor = cursor
        finally:
            session.lock.release()

    def _frame_picture(self, session: ReverseSession, k: int):
        """The armed feed's viewer: (JPEG, caption, k, frames) of recorded frame k, the picture a scrub of
        the frame slider shows while it is dragged; nothing changes. None when there is no such frame or
        the session is busy (a Play's event, a step). The caption is '': the scrub's own view brings it."""
        if not session.lock.acquire(blocking=False):
            return None
        try:
            traj = session.traj
            if traj is None or not 0 <= k < len(traj) or session.token is not None:
                return None
            return jpeg(self.raster(session, k, themed=True)), "", k, len(traj)
        finally:
            session.lock.release()

    def _take_feed(self, session: ReverseSession, fresh: bool) -> Feed:
        """The feed a Play publishes to.

        The session's armed feed is taken over (the page's click may follow it already): when it
        sent the page a frame, the play goes on from that frame. A new run (`fresh`) gets a new
        feed: the armed one could only have sent a frame of the run before.
        """
        armed, session.armed = session.armed, None
        if armed is None:
            return FEEDS.open()
        started = armed.disarm()
        if fresh or armed.closed:
            FEEDS.close(armed)
            return FEEDS.open()
        if started is not None:
            with session.lock:
                session.cursor = started
        return armed

    def _announce(self, session: ReverseSession, spec: Spec, rate: float, fresh: bool, T: int) -> None:
        """After a new run's first frame: warnings about its settings, and its cost when it is long."""
        if fresh:
            self._advise(spec, T)
            self._say_cost(session, rate)

    @staticmethod
    def _advise(spec: Spec, T: int) -> None:
        """Warn (without stopping) about settings that work but are likely not what the user wants."""
        for lane in spec.lanes:
            if lane.sampler in ANCESTRAL and lane.steps < T // 10:
                gr.Warning(f"{sampler_name(lane.sampler)} with {lane.steps} of T={T} steps adds a lot of fresh noise "
                           "per step and gives poor samples; DDIM or DPM-Solver++ are made for few steps.")

    def _say_cost(self, session: ReverseSession, rate: float) -> None:
        """Before a run that takes more than 10 s here: how long, and the faster choice."""
        spec, est = session.spec, session.estimate
        at_speed = session.total / rate if rate != math.inf else 0.0
        if max(est, at_speed) <= 10:
            return
        per_call = est / max(1, sum(lane.steps for lane in spec.lanes))
        why = (f"computing takes about {say_seconds(est)} on this device ({per_call * 1000:.0f} ms per step)"
               if est >= at_speed else f"playing {session.total} steps at {rate:g} per second takes "
                                        f"{say_seconds(at_speed)}")
        faster = (f"DDIM with 50 steps would take about {say_seconds(per_call * 50)}"
                  if any(lane.sampler in ANCESTRAL for lane in spec.lanes) else "fewer steps or samples are faster")
        gr.Info(f"This run: {why}. Pause or Stop at any time; {faster}.")

    def pause(self, session):
        """Stop playback after the current step; the run can go on with Play.

        While a generator plays, it may move one more frame before it notices, so it sends the
        closing view itself (as with Stop): a caption written here could name an older frame than
        the one left on screen. With nothing playing the answer comes from here.
        """
        if not isinstance(session, ReverseSession):
            return self.status(session, "Paused.")
        playing = session.token  # no lock: a step in progress must not hold up the answer
        if playing is not None:  # (a second press finds nothing playing and leaves the mark alone)
            session.paused = playing
            session.token = None
            return gr.skip()
        return self.status(session, "Paused.")

    STOPPED = "Stopped. The frames computed so far stay; Play starts over."

    def stop(self, session):
        """End the run: nothing more is computed; the recorded frames stay for scrubbing and export.

        A playing generator notices within one sampler step and sends the last view itself (a
        cancelled generator's last output can reach the browser after this handler's, so the run is
        ended cooperatively rather than cancelled); with nothing playing the view comes from here.
        """
        if not isinstance(session, ReverseSession) or session.traj is None:
            return (gr.skip(),) * 4
        with session.lock:
            playing = session.token
            if playing is not None:  # a second press leaves the mark of the run the first one ended
                session.stopped = playing
            session.token = None
            session.clock = None
        if playing is not None:
            return (gr.skip(),) * 4
        return self.view(session, session.cursor, note=self.STOPPED)

    def step(self, delta, session):
        """Move one frame back (-1) or forward (+1); forward past the end computes the next step."""
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            raise gr.Error("Nothing to step through yet: press Play first.")
        session.token = None  # stepping takes over from playback
        delta = _int("step", delta, -1000, 1000)
        target = session.cursor + delta
        with session.lock:
            while target > len(session.traj) - 1 and self._advance(session):
                pass
            session.cursor = max(0, min(target, len(session.traj) - 1))
        return self.view(session, session.cursor)

    def back(self, session):
        return self.step(-1, session)

    def forward(self, session):
        return self.step(1, session)

    def scrub(self, frame, session):
        """Show recorded frame number `frame` (pauses playback)."""
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            return (gr.skip(),) * 4
        session.token = None
        session.cursor = max(0, min(_int("frame", frame, 0, 10**7), len(session.traj) - 1))
        return self.view(session, session.cursor, slider=False)

    # drawing -------------------------------------------------------------------------------

    def field(self, session: ReverseSession, t: int):
        """The model's eps on a grid of 2-D points at timestep t: (points, eps, spacing); cached per t."""
        t = max(1, int(t))  # t = 0 is the clean data, where the net is not defined: show t = 1
        if t not in session.fields:
            axis = np.linspace(-FIELD_LIM, FIELD_LIM, FIELD_GRID, dtype=np.float32)
            pts = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
            x = torch.from_numpy(pts).to(self.ctx.device)
            with torch.no_grad():
                _, eps = model_predictions(session.model, session.schedule, x, t, session.prediction)
            if len(session.fields) > 256:
                session.fields.clear()
            session.fields[t] = (pts, eps.float().cpu().numpy(), float(axis[1] - axis[0]))
        return session.fields[t]

    def _points_parts(self, session: ReverseSession, k: int):
        traj = session.traj
        frame = traj.frame(k)
        span = max(1, int(TRAIL_SPAN * session.schedule.T))
        trails = [traj.lane_history(lane, k, span) for lane in range(len(traj.lanes))]
        fields = [self.field(session, s.t) for s in frame]
        return frame, trails, fields

    def picture(self, session: ReverseSession, k: int):
        """Frame k as shown live: an RGB array for images (on the page's ground), a plotly Figure for
        points and signals (the page's theme styles those itself)."""
        traj = session.traj
        if traj.kind == "image":
            return animation.image_frame(traj.frame(k), traj.lanes, dark=session.dark)
        if traj.kind == "points":
            frame, trails, fields = self._points_parts(session, k)
            return animation.points_figure(frame, traj.lanes, trails, fields, session.reference)
        return animation.signal_figure(traj.frame(k), traj.lanes)

    def raster(self, session: ReverseSession, k: int, themed: bool = False) -> np.ndarray:
        """Frame k as an RGB array, whatever the data kind: light, as exported, or with `themed` image
        frames on the page's ground (chart frames are light: the page inverts them in its dark theme)."""
        traj = session.traj
        if traj.kind == "image":
            return animation.image_frame(traj.frame(k), traj.lanes, dark=themed and session.dark)
        if traj.kind == "points":
            frame, trails, fields = self._points_parts(session, k)
            return animation.points_raster(frame, traj.lanes, trails, fields, session.reference)
        return animation.signal_raster(traj.frame(k), traj.lanes)

    def caption(self, session: ReverseSession, k: int, note: str | None = None, playing: bool = False) -> str:
        traj = session.traj
        lines = []
        for lane, s in zip(traj.lanes, traj.frame(k)):
            ab = float(session.schedule.alpha_bar[s.t])
            if playing:  # plain text: typesetting the maths on every frame was a large part of the browser's work
                where = "**done**: the sample x₀" if s.done else f"step **{s.i + 1}** of {s.n}, t = {s.t}"
                lines.append(f"{animation.lane_title(lane, s).split(' · ')[0]}: {where}, ᾱ_t = {ab:.3g}")
                continue
            where = "**done**: the sample $x_0$" if s.done else f"step **{s.i + 1}** of {s.n}, $t = {s.t}$"
            lines.append(f"{animation.lane_title(lane, s).split(' · ')[0]}: {where}, "
                         f"$\\bar\\alpha_t = {text.tex_number(ab)}$")
        lines.append(self.progress(session, note, playing))
        return "  \n".join(lines)

    def progress(self, session: ReverseSession, note: str | None = None, playing: bool = False) -> str:
        traj = session.traj
        if session.computing:
            if not playing and not session.played and session.cursor == 0:
                # a run a link or a lesson stop set up on its first frame: nothing computed yet but the
                # noise it starts from, so say what Play will do and how long it takes
                cost = f", about {say_seconds(session.estimate)}" if session.estimate >= 2 else ""
                return (f"Ready: press Play (or Space). {session.total - 1} steps, computed live{cost}."
                        + (f" {note}" if note else ""))
            state = "computing…" if playing else "paused"
        elif playing:  # a run computed before, played again
            state = "replaying"
        else:
            state = "complete" if traj.complete else "stopped"
        kept = "" if traj.stride == 1 else f" (recording every {traj.stride}th to bound memory)"
        if session.recorded:
            state = ("replaying" if playing else "complete" if session.cursor >= len(traj) - 1
                     else "ready: press Play (or Space)" if session.cursor == 0 else "paused")
            # a run of n steps has frames 0 to n, as the slider counts them: the noise it starts from (0),
            # then one after each step
            line = (f"Frame {session.cursor} of {len(traj) - 1} · {traj.ticks - 1} steps{kept} · recorded earlier, "
                    f"replayed without computing · {state}.")
            return line + (f" {note}" if note else "")
        line = (f"Frame {session.cursor} of {len(traj) - 1} recorded · {max(traj.ticks - 1, 0)} of "
                f"{session.total - 1} steps computed live{kept} · {state}" + ("" if state.endswith("…") else "."))
        if session.computing:
            left = computing_left(session.estimate, session.total, traj.ticks, session.timed_s, session.timed)
            if max(left, session.estimate) >= 2:
                line += f" About {say_seconds(left)} of computing left."
        return line + (f" {note}" if note else "")

    def status(self, session, note: str) -> str:
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            return note
        return self.caption(session, session.cursor, note)

    def view(self, session: ReverseSession, k: int, note: str | None = None, playing: bool = False,
             slider: bool = True, picture: bool = True, streaming: bool = False, words: bool = True) -> tuple:
        """The outputs (image, plot, caption, frame slider) for frame k; picture=False leaves the shown one.

        While playing, 2-D and signal frames are drawn on the server as JPEG pictures like image
        frames: a plotly figure with hundreds of points, trails and arrows costs the browser a
        full redraw per frame and froze it at a few frames a second. At rest (paused, stopped,
        complete, scrubbed, stepped) the same frame is the interactive figure, for hover and zoom.

        streaming: a later frame of a play whose first view set the components up: only values go
        (the picture, and with `words` the caption and the slider's position and length).
        Gradio's page applies each key of an update on its own, and one without a value (visible,
        interactive, maximum) makes it deep-copy all of that component's properties: a hidden
        figure's hundreds of points copied on every frame were most of the browser's work. So the
        first playing view also empties the hidden figure (the closing view sends a new one).
        """
        kind = session.traj.kind
        if not picture:
            image, plot = gr.skip(), gr.skip()
        elif kind == "image":
            image, plot = DataView.fast(kind, self.picture(session, k))
        elif playing and streaming:
            image, plot = self.raster(session, k), gr.skip()
        elif playing:
            image, plot = gr.update(value=self.raster(session, k), visible=True), gr.update(value=None, visible=False)
        else:
            image, plot = DataView.show(kind, self.picture(session, k))
        if not words:
            return image, plot, gr.skip(), gr.skip()
        top = max(len(session.traj) - 1, 0)
        if not slider:
            scrub = gr.skip()
        elif streaming:  # already locked by the first view; the length grows while computing
            scrub = gr.update(maximum=max(top, 1), value=k)
        else:
            scrub = gr.update(maximum=max(top, 1), value=k, interactive=not playing)
        return image, plot, self.caption(session, k, note, playing), scrub

    def set_theme(self, mode, session):
        """The page's theme, 'dark' or 'light': image frames are drawn on its ground from now on, and the
        frame shown is drawn again (the page asks when the picture's ground does not match its theme)."""
        if not isinstance(session, ReverseSession):
            return gr.skip()
        session.dark = str(mode).strip().lower() == "dark"
        traj = session.traj
        if traj is None or not len(traj) or traj.kind != "image" or session.token is not None:
            return gr.skip()  # nothing shown, a chart (the page styles it), or a play (its next frames follow)
        return self.picture(session, session.cursor)

    # restoring a link -----------------------------------------------------------------------

    LINK_KEYS = ("checkpoint", "sampler", "steps", "eta", "n", "frame", "seed", "compare", "sampler_b", "steps_b",
                 "spacing")
    N_RESTORED = 20  # the restorer's outputs (see `restore`)

    def restore(self, values: dict, problems: list[str]) -> tuple:
        """The Reverse tab's part of restoring a link (see explorer.lecture.url_state).

        Outputs: checkpoint, sampler, steps, eta, seed, samples, facts, second steps, shown kind,
        explanation, compare, the second sampler's group, the second sampler, its eta, the spacing, then the view
        (image, plot, caption, frame slider) and the session. With a frame in the link the trajectory
        is computed up to it, so the link shows the same picture.
        """
        skip = (gr.skip(),) * self.N_RESTORED
        if values.get("tab") != "reverse" or not any(k in values for k in self.LINK_KEYS):
            # only when the page opens: a lesson stop or bundle of another tab must not replace a run
            # the lecturer has on this tab (or one still playing)
            return self.opening() if values.get(OPENING) else skip
        entries = self.checkpoints()
        path = self.default_checkpoint()
        name = values.get("checkpoint")
        if name is not None:
            found = [e["path"] for e in entries if name in (e["name"], checkpoint_label(e))]
            if found:
                path = found[0]
            else:
                names = ", ".join(sorted({e["name"] for e in entries})) or "none"
                problems.append(f"there is no checkpoint {name!r} here (checkpoints: {names})")
        if path is None:
            return skip
        _, _, meta, schedule = self.load(path)
        kind, T = kind_of(self.entry(path)), schedule.T
        sampler = self._link_sampler(values, "sampler", "ddim", problems)
        steps = values.get("steps", default_steps(sampler, T))
        if steps > T:
            problems.append(f"the link's steps={steps} is more than this model's T={T}")
            steps = default_steps(sampler, T)
        eta = values.get("eta", 0.0) if sampler == "ddim" else 0.0
        n = values.get("n", default_samples(kind, meta["sample_shape"]))
        if n > MAX_SAMPLES[kind]:
            problems.append(f"the link's n={n} is more than {MAX_SAMPLES[kind]}, the most for {kind} models")
            n = default_samples(kind, meta["sample_shape"])
        seed = values.get("seed", 0)
        compare = values.get("compare", False)
        sampler_b = self._link_sampler(values, "sampler_b", "ddpm", problems)
        steps_b = values.get("steps_b", default_steps(sampler_b, T))
        if steps_b > T:
            problems.append(f"the link's steps_b={steps_b} is more than this model's T={T}")
            steps_b = default_steps(sampler_b, T)
        controls = (gr.update(value=path), gr.update(value=sampler), gr.update(maximum=T, value=steps),
                    gr.update(value=eta, visible=sampler == "ddim"), gr.update(value=seed),
                    gr.update(maximum=MAX_SAMPLES[kind], value=n), self.info(path),
                    gr.update(maximum=T, value=steps_b), kind,
                    self.explanation(path, sampler, compare, sampler_b),
                    gr.update(value=compare), gr.update(visible=compare), gr.update(value=sampler_b),
                    gr.update(value=0.0, visible=sampler_b == "ddim"), gr.update(value=values.get("spacing", "linear")))
        frame = values.get("frame")
        spec, loaded = self.spec(path, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, 0.0,
                                 values.get("spacing", "linear"))
        if frame is None:  # the first frame: x_T and one model call (nothing at all when recorded), so a link or
            frame = 0      # a lesson stop opens on the noise the run starts from, not on an empty box
        session = ReverseSession()
        self._start(session, spec, loaded)
        while len(session.traj) <= frame and self._advance(session):
            pass
        if frame >= len(session.traj):
            problems.append(f"the link's frame={frame} is past the last frame of this run ({len(session.traj) - 1})")
        session.cursor = min(frame, len(session.traj) - 1)
        image, plot, caption, scrub = self.view(session, session.cursor)
        if kind == "image":
            image, plot = DataView.show(kind, image)
        return (*controls, image, plot, caption, scrub, session)

    @staticmethod
    def _link_sampler(values: dict, key: str, default: str, problems: list[str]) -> str:
        """A link's sampler (by its name or its label), or `default` with a message."""
        given = values.get(key, default)
        sampler = {**{k: k for k in SAMPLERS}, **{v: k for k, v in SAMPLER_LABELS.items()}}.get(given)
        if sampler is None:
            problems.append(f"the link's {key}={given!r} is not one of {', '.join(SAMPLERS)}")
            sampler = default
        return sampler

    def default_spec(self, path: str) -> tuple[Spec, tuple]:
        """(Spec, loaded) of the tab's default setting for a checkpoint: what it plays before anything
        is changed (DDIM with its default steps, eta 0, seed 0, the kind's default number of samples)."""
        _, _, meta, schedule = self.load(path)
        kind = kind_of(self.entry(path))
        return self.spec(path, "ddim", default_steps("ddim", schedule.T), 0.0, 0,
                         default_samples(kind, meta["sample_shape"]))

    def opening(self) -> tuple:
        """The restorer's outputs for a page that names nothing of this tab: the controls as built and,
        when the default run was recorded (shipped beside each shipped model), its first frame, so
        the tab opens on a picture of the noise it starts from rather than an empty box."""
        skip = (gr.skip(),) * self.N_RESTORED
        path = self.default_checkpoint()
        if path is None:
            return skip
        spec, loaded = self.default_spec(path)
        if self.recordings.get(spec) is None:
            return skip
        session = ReverseSession()
        self._start(session, spec, loaded)
        image, plot, caption, scrub = self.view(session, 0)
        if spec.kind == "image":
            image, plot = DataView.show(spec.kind, image)
        return (*(gr.skip(),) * (self.N_RESTORED - 5), image, plot, caption, scrub, session)

    # export and the final sample ------------------------------------------------------------

    def export(self, fmt, session, progress=gr.Progress()):
        """Write the recorded frames as GIF or MP4; returns the file's path (for a gr.File).

        Frames are drawn one at a time and handed to the encoder as they are drawn, with progress."""
        if fmt not in animation.EXPORT_FORMATS:
            raise gr.Error(f"export format must be one of {', '.join(animation.EXPORT_FORMATS)}, got {fmt!r}")
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            raise gr.Error("Nothing to export yet: press Play and let some frames arrive first.")
        traj = session.traj
        picks = animation.pick_frames(len(traj), EXPORT_MAX_FRAMES[fmt])
        frames = (self.raster(session, k) for k in picks)
        spec = session.spec
        names = "-vs-".join(f"{lane.sampler.replace('+', 'p')}{lane.steps}" for lane in spec.lanes)
        out = Path(tempfiles.mkdtemp(prefix="reverse-")) / f"reverse-{names}-seed{spec.seed}.{fmt}"
        progress(0, desc=f"Drawing and encoding {len(picks)} frames")
        animation.export(frames, out, fps=EXPORT_FPS[fmt],
                         progress=lambda k: progress((k, len(picks)), desc="frames", unit="frames"))
        gr.Info(f"Exported {len(picks)} frames as {fmt.upper()}.")
        return str(out)

    def estimate(self, spec: Spec, loaded) -> tuple[float, float]:
        """(seconds for the whole run, seconds per model call) on this device, from a measured call."""
        model, _, meta, _ = loaded
        per_call = COSTS.seconds_per_call(spec.checkpoint, model, meta["sample_shape"], spec.n, self.ctx.device)
        return per_call * sum(lane.steps for lane in spec.lanes), per_call

    def _what_fits(self, spec: Spec, per_call: float, budget: float) -> str:
        """A setting that fits `budget` seconds: fewer steps, or fewer samples."""
        steps = max(1, int(budget / per_call))
        lane = spec.lanes[0]
        tips = [f"{lane.label.split(' (')[0]} with at most {steps} steps"]
        if lane.sampler in ANCESTRAL:
            tips.append("DDIM with 50 steps")
        if spec.n > 1:
            tips.append(f"fewer samples (the time grows with n = {spec.n})")
        return "; ".join(tips)

    def sample(self, checkpoint, sampler, steps, eta, seed, n, spacing="linear"):
        """Run one sampler to the end without animation: streams (None, progress) then (picture, stats).

        The cost is estimated first from a measured model call; a run over LIMIT_S is refused with a
        setting that fits. It stops between steps when cancelled, freeing the queue.
        """
        spec, loaded = self.spec(checkpoint, sampler, steps, eta, seed, n, spacing=spacing)
        seconds_est, per_call = self.estimate(spec, loaded)
        if seconds_est > LIMIT_S:
            raise gr.Error(f"This run would take about {say_seconds(seconds_est)} on this device "
                           f"({per_call * 1000:.0f} ms per step x {spec.lanes[0].steps} steps at n = {spec.n}); "
                           f"one request may take at most {say_seconds(LIMIT_S)}. What fits: "
                           f"{self._what_fits(spec, per_call, LIMIT_S)}.")
        its, _ = self._iterators(spec, loaded)
        start = last_report = time.perf_counter()
        last = None
        for last in its[0]:
            now = time.perf_counter()
            if now - last_report >= 0.5:  # a cancel takes effect at the next yield
                last_report = now
                done = (last.i + 1) / last.n
                yield gr.skip(), {"status": "sampling", "step": last.i + 1, "of": last.n,
                                  "seconds_left": round((now - start) * (1 - done) / done, 1),
                                  "estimated_seconds": round(seconds_est, 1)}
        seconds = time.perf_counter() - start
        x = last.x_next.float().cpu()
        final = snapshot(spec.kind, last.n, last.n, 0, last.x_next, last.x0, last.eps)
        lanes = spec.lanes
        if spec.kind == "image":
            pic = animation.image_frame((final,), lanes)
        elif spec.kind == "points":
            ref = _reference_points(loaded[1].data.name, json.dumps(loaded[1].data.params, sort_keys=True))
            pic = animation.points_raster((final,), lanes, None, None, ref)
        else:
            pic = animation.signal_raster((final,), lanes)
        finite = bool(torch.isfinite(x).all())
        stats = {
            "checkpoint": Path(checkpoint).name, "sampler": spec.lanes[0].sampler, "steps": spec.lanes[0].steps,
            "eta": spec.lanes[0].eta, "spacing": spec.lanes[0].spacing, "seed": spec.seed, "n": spec.n, "shape": list(x.shape),
            "seconds": round(seconds, 3), "finite": finite,
            "mean": float(x.mean()) if finite else None, "std": float(x.std()) if finite else None,
            "min": float(x.min()) if finite else None, "max": float(x.max()) if finite else None,
            "estimated_seconds": round(seconds_est, 3),
        }
        yield pic, stats


@functools.lru_cache(maxsize=16)
def _schedule(name: str, T: int):
    return make_schedule(name, T)
