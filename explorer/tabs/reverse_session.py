"""The Reverse tab's settings and per-session state: the checks that turn widget values into a `Spec`,
and the `ReverseSession` a browser session keeps in a gr.State (its trajectory, clock and cursor)."""
from __future__ import annotations

import functools
import json
import math
import threading
from dataclasses import dataclass

import gradio as gr

from core.config import DataConfig
from core.data import checkpoint_data, load_dataset
from core.samplers import SAMPLER_LABELS, SAMPLERS
from core.schedules import make_schedule

from ..feed import Feed
from ..trajectory import Clock, Lane, Trajectory

MAX_SAMPLES = {"image": 64, "points": 2000, "signal": 16}
DEFAULT_SAMPLES = {"image": 16, "points": 500, "signal": 4}
LARGE_IMAGE = 16 * 16        # pixels per channel above which images default to a 3x3 grid (CPU-friendly)
DEFAULT_STEPS = {"ddpm": None, "ddpm-beta": None, "ddim": 50, "dpm++2m": 20, "dpm++2m-sde": 50}  # None: all T (DDPM's own)
SEED_MAX = 2**31 - 1
SPEEDS = ["auto", "10", "30", "100", "300", "1000", "max"]  # clock ticks (sampler steps) per second
DEFAULT_SPEED = "auto"
AUTO_SECONDS = 4.0  # "auto": a run plays in about this long, whatever its steps (DDIM 50 and DDPM 1000 alike)
REFERENCE_POINTS = 1200


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


def whole(name: str, value, lo: int, hi: int) -> int:
    """An integer from a widget or an API call (sliders send floats like 50.0); errors say the range."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(f)


def number(name: str, value, lo: float, hi: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return f


def sampler_choices() -> list[tuple[str, str]]:
    return [(SAMPLER_LABELS.get(k, k), k) for k in SAMPLERS]


def default_samples(kind: str, sample_shape) -> int:
    """How many samples a run draws unless the user says otherwise: each step costs a forward pass on all."""
    if kind == "image" and math.prod(sample_shape[1:]) > LARGE_IMAGE:
        return 9
    return DEFAULT_SAMPLES[kind]


def default_steps(sampler: str, T: int) -> int:
    return min(DEFAULT_STEPS.get(sampler) or T, T)


def speed_of(value) -> float | None:
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
def reference_points(name: str, params_json: str):
    """Up to REFERENCE_POINTS training points of a 2-D dataset, or None where they cannot be made."""
    try:
        data = checkpoint_data(DataConfig(name, json.loads(params_json)))  # only the app's data folders
        data = load_dataset(data.name, **data.params)
    except (ValueError, OSError, TypeError):
        return None
    if data.kind != "points":
        return None
    return data.x[:REFERENCE_POINTS].numpy()


@functools.lru_cache(maxsize=16)
def cached_schedule(name: str, T: int):
    return make_schedule(name, T)
