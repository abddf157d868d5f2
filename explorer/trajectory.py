"""Record reverse trajectories for playback: one or more samplers on a shared t clock, bounded in memory.

`Clock` runs one or more sampler iterators (from `core.samplers`) side by side. Each tick moves
the clock to the largest timestep any unfinished lane still has to visit and advances exactly the
lanes due there, so DDPM with 1000 steps and DDIM with 50 started from the same x_T stay aligned
in t: DDIM moves once every 20 DDPM steps. A last tick at t = 0 shows the finished samples.

`Trajectory` keeps what playback needs and nothing more: per lane and recorded tick a `Snapshot`
of display-ready CPU arrays (uint8 for images, float16 for points and signals). When the bytes
exceed a budget it keeps every other tick and records at twice the stride from then on, so a
1000-step run of large images still fits and a small one keeps every step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from core.samplers import Step

DEFAULT_BUDGET = 32 * 2**20  # bytes of recorded arrays per trajectory (per browser session)

# The display range of each quantity: x_t and x0 live in [-1, 1] for images (x_t overshoots at
# large t and is clipped for display); eps ~ N(0, 1) is shown over [-3, 3] so 0 is mid-grey.
X_RANGE = 1.0
EPS_RANGE = 3.0


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One lane at one step, ready to draw. Arrays are (n, ...) on the CPU."""

    i: int           # step number, 0-based; i == n marks the finished sample
    n: int           # the lane's number of steps
    t: int           # timestep of x_t (0 for the finished sample)
    x_t: np.ndarray
    x0: np.ndarray
    eps: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.x_t.nbytes + self.x0.nbytes + self.eps.nbytes

    @property
    def done(self) -> bool:
        return self.i >= self.n


def _quantise(x: torch.Tensor, limit: float) -> np.ndarray:
    """[-limit, limit] -> uint8 0..255 (clipped): images are stored as they will be shown."""
    a = x.detach().to("cpu", torch.float32)
    return ((a.clamp(-limit, limit) + limit) * (127.5 / limit)).round().to(torch.uint8).numpy()


def _half(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).clamp(-60000, 60000).to(torch.float16).numpy()


def snapshot(kind: str, i: int, n: int, t: int, x_t: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> Snapshot:
    """Convert one step's tensors (B, ...) to the compact form kept for playback."""
    if kind == "image":
        return Snapshot(i, n, t, _quantise(x_t, X_RANGE), _quantise(x0, X_RANGE), _quantise(eps, EPS_RANGE))
    return Snapshot(i, n, t, _half(x_t), _half(x0), _half(eps))


def dequantise(a: np.ndarray, limit: float) -> np.ndarray:
    """Inverse of the uint8 storage of images: uint8 -> float32 in [-limit, limit]."""
    return a.astype(np.float32) * (limit / 127.5) - limit


@dataclass(frozen=True)
class Lane:
    """What one sampler in a trajectory is: shown in captions and used to rebuild the setting."""

    sampler: str
    label: str
    steps: int
    eta: float | None = None
    spacing: str = "linear"   # the timesteps it visits (core.schedules.SPACINGS)


class Clock:
    """Advance several sampler iterators on one t clock; iterate to get one tuple of Steps per tick.

    lanes: the sampler iterators; timesteps: each lane's visiting order T > ... > 0 (from
    `schedule.timesteps(steps)`), used to decide which lanes are due. A tick yields, per lane,
    the Step just taken, or None for a lane that did not move (it keeps showing its last state).
    After the last sampler step one more tick yields the string "final" in place of each Step.
    """

    def __init__(self, lanes: Sequence[Iterator[Step]], timesteps: Sequence[Sequence[int]]):
        if len(lanes) != len(timesteps) or not lanes:
            raise ValueError("need one timestep list per lane and at least one lane, "
                             f"got {len(lanes)} lanes and {len(timesteps)} lists")
        self._iters = list(lanes)
        self._ts = [list(map(int, ts)) for ts in timesteps]
        self._next = [0] * len(lanes)          # index into _ts of each lane's next step
        self.last: list[Step | None] = [None] * len(lanes)
        self.finished = False
        # every distinct t a lane steps from is one tick, plus the final tick at t = 0
        self.total = len({t for ts in self._ts for t in ts[:-1]}) + 1

    def _due(self) -> int | None:
        pending = [ts[k] for ts, k in zip(self._ts, self._next) if k < len(ts) - 1]
        return max(pending) if pending else None

    def tick(self) -> tuple | None:
        """One tick: a tuple (per lane: Step, None or "final"), or None once everything is done."""
        if self.finished:
            return None
        t = self._due()
        if t is None:
            self.finished = True
            if any(s is None for s in self.last):
                raise RuntimeError("a sampler stopped before its first step")
            return tuple("final" for _ in self._iters)
        out = []
        for lane, (it, ts) in enumerate(zip(self._iters, self._ts)):
            k = self._next[lane]
            if k < len(ts) - 1 and ts[k] == t:
                step = next(it)
                self.last[lane] = step
                self._next[lane] = k + 1
                out.append(step)
            else:
                out.append(None)
        return tuple(out)

    def __iter__(self):
        while (tick := self.tick()) is not None:
            yield tick

    def close(self) -> None:
        """Finish the sampler generators (frees their tensors)."""
        for it in self._iters:
            close = getattr(it, "close", None)
            if close:
                close()
        self.finished = True


class ReuseLastCall:
    """A denoiser wrapper: a call with the same x and t as the previous call returns the previous output.

    Every lane of a side-by-side run starts from the same x_T at t = T, so their first predictions
    are one forward pass instead of one per lane: the first frame comes sooner. `calls` counts the
    forward passes actually run.
    """

    def __init__(self, model):
        self.model = model
        self.calls = 0
        self._last: tuple | None = None

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        last = self._last
        if (last is not None and last[0].shape == x.shape and torch.equal(last[1], t)
                and (last[0] is x or torch.equal(last[0], x))):
            return last[2]
        out = self.model(x, t)
        self.calls += 1
        self._last = (x, t, out)
        return out


@dataclass(eq=False)
class Trajectory:
    """The recorded frames of one run: frames[k] holds one Snapshot per lane; bounded by `budget` bytes."""

    kind: str                       # "image", "points" or "signal"
    lanes: tuple[Lane, ...]
    budget: int = DEFAULT_BUDGET
    frames: list[tuple[Snapshot, ...]] = field(default_factory=list)
    stride: int = 1                 # record one tick in `stride`
    ticks: int = 0                  # ticks seen so far (recorded or not)
    nbytes: int = 0
    complete: bool = False
    _current: list = field(default_factory=list, repr=False)  # per lane: the latest Step taken
    _made: list = field(default_factory=list, repr=False)     # per lane: (Step, final, its Snapshot)

    def __post_init__(self):
        if self.kind not in ("image", "points", "signal"):
            raise ValueError(f"kind must be 'image', 'points' or 'signal', got {self.kind!r}")
        self._current = [None] * len(self.lanes)
        self._made = [None] * len(self.lanes)

    def __len__(self) -> int:
        return len(self.frames)

    def observe(self, tick: tuple) -> bool:
        """Take one Clock tick; returns True when it was recorded as a new frame."""
        if len(tick) != len(self.lanes):
            raise ValueError(f"a tick needs one entry per lane ({len(self.lanes)}), got {len(tick)}")
        final = all(isinstance(s, str) for s in tick)
        for lane, step in enumerate(tick):
            if isinstance(step, Step):
                self._current[lane] = step  # converted lazily: only recorded ticks pay for it
            elif isinstance(step, str) and step != "final":
                raise ValueError(f"unknown tick entry {step!r}")
        record = final or self.ticks % self.stride == 0
        self.ticks += 1
        if not record:
            return False
        frame = []
        for lane, step in enumerate(self._current):
            if step is None:
                raise ValueError("the first tick must move every lane")
            made = self._made[lane]
            if made is not None and made[0] is step and made[1] == final:
                snap = made[2]  # a lane that did not move shares its arrays with the frame before
            else:
                snap = self._snap(step, final)
                self._made[lane] = (step, final, snap)
                self.nbytes += snap.nbytes
            frame.append(snap)
        self.frames.append(tuple(frame))
        self.complete = final
        if self.nbytes > self.budget and len(self.frames) > 2:
            self._thin()
        return True

    def _snap(self, step: Step, final: bool) -> Snapshot:
        if final:
            # the finished sample: x_t is x_0 itself; x0 and eps are the last step's predictions
            return snapshot(self.kind, step.n, step.n, 0, step.x_next, step.x0, step.eps)
        return snapshot(self.kind, step.i, step.n, step.t, step.x_t, step.x0, step.eps)

    def _thin(self) -> None:
        """Keep every other recorded frame (and always the last), record at twice the stride."""
        last = self.frames[-1]
        kept = self.frames[::2]
        if kept[-1] is not last and self.complete:
            kept.append(last)
        self.frames = kept
        self.stride *= 2
        self.nbytes = _unique_bytes(self.frames)

    def frame(self, k: int) -> tuple[Snapshot, ...]:
        """The frame at index k (clamped to the recorded range)."""
        if not self.frames:
            raise IndexError("nothing recorded yet")
        return self.frames[max(0, min(int(k), len(self.frames) - 1))]

    def lane_history(self, lane: int, upto: int, span: int, most: int = 12) -> list[Snapshot]:
        """Up to `most` snapshots of one lane with t in [t_k, t_k + span], ending at frame `upto` (for trails)."""
        if not self.frames:
            return []
        upto = max(0, min(upto, len(self.frames) - 1))
        t_now = self.frames[upto][lane].t
        out, seen = [], set()
        for k in range(upto, -1, -1):
            s = self.frames[k][lane]
            if s.t > t_now + span:
                break
            if id(s) not in seen:
                seen.add(id(s))
                out.append(s)
        out.reverse()
        if len(out) > most:
            idx = np.unique(np.linspace(0, len(out) - 1, most).round().astype(int))
            out = [out[i] for i in idx]
        return out


def _unique_bytes(frames: list[tuple[Snapshot, ...]]) -> int:
    seen, total = set(), 0
    for frame in frames:
        for s in frame:
            if id(s) not in seen:
                seen.add(id(s))
                total += s.nbytes
    return total


def run_all(clock: Clock, trajectory: Trajectory, on_frame: Callable[[int], None] | None = None) -> Trajectory:
    """Drive a clock to the end, recording into `trajectory` (for non-interactive use)."""
    for tick in clock:
        if trajectory.observe(tick) and on_frame:
            on_frame(len(trajectory) - 1)
    return trajectory
