"""What a run will cost on this device: measured times, remembered per device, turned into estimates.

A sampler step is one forward pass of the network on the whole batch (DDPM, DDIM and DPM-Solver++
2M all make one call per step) and the sampler's own arithmetic beside it, so the time of a run is
steps x the time of one step. That time is measured here by running a few real steps, once per
(model, batch, device), not guessed, and remembered in a
small JSON file (`SpeedBook`) so that the next start of the app knows it too. A training step's
time is remembered the same way from the runs themselves. Requests estimate their cost with it
before they start, say how long a run over 10 s will take and what is faster, and refuse what
would hold the queue too long, saying what would fit.

Timing only: no diffusion quantity is computed here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.samplers import ANCESTRAL, ddpm
from core.schedules import make_schedule

LIMIT_S = 120.0   # a request estimated to run longer than this is refused (it would hold the queue)
SAY_ABOVE_S = 10.0  # a run estimated to take longer than this is announced with its time and a faster choice
FEWER_STEPS = 50    # the few-step alternative offered for a long DDPM run (DDIM with this many steps)
MEASURE_S = 0.5     # sampler steps are timed this long in all (at least `repeats` steps) ...
MEASURE_MAX_CALLS = 25  # ... or this many steps, whichever comes first
MEASURE_T = 1000        # the schedule length of the timed steps (more than MEASURE_MAX_CALLS + 1)
PACE_MIN_STEPS = 5       # a run's time left follows its own pace once it has timed this many steps (and 1/20 of it)


def say_seconds(s: float) -> str:
    """'0.4 s', '12 s', '3 min' for people."""
    if s < 1:
        return f"{s:.1f} s"
    return f"{round(s)} s" if s < 90 else f"{round(s / 60)} min"


# --- remembered measurements --------------------------------------------------------------------

def device_key(device, threads: int | None = None) -> str:
    """Names the hardware a time was measured on: the same model is 50x faster on a GPU than on a CPU,
    and a CPU's time depends on its core count and torch's threads."""
    dev = torch.device(str(device))
    if dev.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{platform.machine()} {os.cpu_count()} cores {threads or torch.get_num_threads()} threads"
    return f"{dev.type}: {name} (torch {torch.__version__})"


def default_book_path() -> Path:
    """`$DIFFUSION_EXPLORER_SPEEDS`, else diffusion-explorer/speeds.json in the user's cache folder."""
    if os.environ.get("DIFFUSION_EXPLORER_SPEEDS"):
        return Path(os.environ["DIFFUSION_EXPLORER_SPEEDS"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "diffusion-explorer" / "speeds.json"


class SpeedBook:
    """Seconds measured on each device, by key; a small JSON file written atomically. Thread-safe.

    A later measurement of the same thing is averaged in (half old, half new): a time taken once on a
    busy machine does not stay wrong forever. A file that cannot be read or written is ignored (the
    times are then remembered for the life of the process only).
    """

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, float]] | None = None

    def _load(self) -> dict:
        if self._data is None:
            self._data = {}
            if self.path is not None:
                try:
                    raw = json.loads(self.path.read_text())
                    self._data = {str(d): {str(k): float(v) for k, v in kv.items()
                                           if isinstance(v, (int, float)) and math.isfinite(v) and v > 0}
                                  for d, kv in raw.items() if isinstance(kv, dict)}
                except (OSError, ValueError, AttributeError):
                    pass
        return self._data

    def get(self, device: str, key: str) -> float | None:
        with self._lock:
            return self._load().get(device, {}).get(key)

    def put(self, device: str, key: str, seconds: float) -> float:
        """Remember `seconds` (averaged with what was known); returns the value now remembered."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"a measured time must be a positive number of seconds, got {seconds!r}")
        with self._lock:
            entries = self._load().setdefault(device, {})
            old = entries.get(key)
            entries[key] = seconds if old is None else 0.5 * (old + seconds)
            self._save()
            return entries[key]

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".speeds-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(self._data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass


BOOK = SpeedBook(default_book_path())


def model_signature(model) -> str:
    """What makes two networks cost the same per call: their class and parameter count."""
    return f"{type(model).__name__}-{sum(p.numel() for p in model.parameters())}"


def config_signature(model_config) -> str:
    """A short stable name for a model configuration (a net and its parameters)."""
    text = json.dumps(dataclasses.asdict(model_config), sort_keys=True, default=str)
    return f"{model_config.net}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


# --- sampling --------------------------------------------------------------------------------------

class CallCosts:
    """Seconds per model call by (model, batch, device): remembered, else measured once and remembered."""

    def __init__(self, repeats: int = 3, book: SpeedBook | None = None):
        self.repeats = repeats
        self.book = book if book is not None else SpeedBook(None)
        self._seen: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def seconds_per_call(self, key: str, model, sample_shape, n: int, device) -> float:
        """The time of one sampler step (its network call and its own work) on n samples: the median of
        timed steps after a warm-up step."""
        k = (key, int(n), str(device))
        with self._lock:
            if k in self._seen:
                return self._seen[k]
        # "step": a sampler step, network and sampler (an earlier "call" entry timed the network alone)
        dev, book_key = device_key(device), f"step {model_signature(model)} {tuple(sample_shape)} n={int(n)}"
        cost = self.book.get(dev, book_key)
        if cost is None:
            cost = self.book.put(dev, book_key, self.measure(model, sample_shape, n, device))
        with self._lock:
            self._seen[k] = cost
        return cost

    def measure(self, model, sample_shape, n: int, device) -> float:
        """Seconds of one sampler step on n samples: the network's call and the sampler's own work
        beside it, timed on DDPM's steps (the sampler with the most of it: fresh noise every step).

        For a small network the sampler's own work is a large share of a step (the 2-D toys: about
        half), so timing the network alone promised runs a third shorter than they took.
        """
        schedule = make_schedule("linear", MEASURE_T)  # a step costs the same at any t and on any schedule
        steps = ddpm(model, schedule, (int(n), *sample_shape), generator=torch.Generator().manual_seed(0),
                     device=device)
        times = []
        try:
            next(steps)  # the first step pays for allocations and kernel choice
            # at least `repeats` steps, more for a fast model (up to MEASURE_S): on a shared machine three
            # steps of 10 ms can all land in one busy moment
            while len(times) < self.repeats or (sum(times) < MEASURE_S and len(times) < MEASURE_MAX_CALLS):
                start = time.perf_counter()
                step = next(steps)
                if step.x_next.device.type == "cuda":
                    torch.cuda.synchronize(step.x_next.device)
                times.append(time.perf_counter() - start)
        finally:
            steps.close()
        return sorted(times)[len(times) // 2]


COSTS = CallCosts(book=BOOK)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The cost of a sampling request: `calls` model calls of `per_call` seconds each."""
    sampler: str
    steps: int
    n: int
    per_call: float     # seconds of one call on a batch of min(n, batch) samples
    batch: int          # samples per call (a large n is drawn in several batches)
    call_time: Callable[[int], float] | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def calls(self) -> int:
        return self.steps * math.ceil(self.n / self.batch)

    @property
    def seconds(self) -> float:
        return self.calls * self.per_call

    def with_(self, **changes) -> "Estimate":
        """The same request with other steps, n or sampler; a call on fewer samples is measured (or, without
        a model to measure, costs its share of this one)."""
        new = dataclasses.replace(self, **changes)
        if new.n < self.batch:
            per_call = (self.call_time(new.n) if self.call_time is not None
                        else self.per_call * new.n / self.batch)
            new = dataclasses.replace(new, per_call=per_call, batch=new.n)
        return new

    def what(self) -> str:
        return f"{self.sampler.upper()} {self.steps} steps x {self.n} sample{'s' if self.n != 1 else ''}"

    def faster(self, budget: float) -> list["Estimate"]:
        """Cheaper requests that fit in `budget` seconds: DDIM with few steps, fewer steps, fewer samples."""
        out = []
        if self.sampler.lower() in ANCESTRAL and self.steps > FEWER_STEPS:
            ddim = self.with_(sampler="ddim", steps=FEWER_STEPS)
            if ddim.seconds <= budget:
                out.append(ddim)
        steps = int(budget / (self.per_call * math.ceil(self.n / self.batch)))
        if 1 <= steps < self.steps:
            out.append(self.with_(steps=steps))
        n = self.n
        while n > 1:  # halve n until it fits (a power of two below n, or 1)
            n = max(1, n // 2)
            smaller = self.with_(n=n)
            if smaller.seconds <= budget:
                out.append(smaller)
                break
        return out


def sampling_estimate(model, sample_shape, *, sampler: str, steps: int, n: int, device,
                      batch: int | None = None, key: str = "", costs: CallCosts = COSTS) -> Estimate:
    """The cost of drawing n samples with `steps` model calls each, in batches of at most `batch`."""
    if steps < 1 or n < 1:
        raise ValueError(f"steps and n must be at least 1, got steps={steps}, n={n}")
    batch = min(int(n), int(batch or n))
    key = key or model_signature(model)

    def call_time(k: int) -> float:
        return costs.seconds_per_call(key, model, tuple(sample_shape), k, device)

    return Estimate(sampler=sampler, steps=int(steps), n=int(n), per_call=call_time(batch), batch=batch,
                    call_time=call_time)


class TooLong(ValueError):
    """A request estimated to run over the limit; the message says how long and what would fit."""


def _options(choices: list[Estimate]) -> str:
    return " or ".join(f"{c.what()} (about {say_seconds(c.seconds)})" for c in choices)


def check_limit(est: Estimate, limit: float = LIMIT_S) -> None:
    """Raise TooLong if the request would hold the queue longer than `limit` seconds."""
    if est.seconds <= limit:
        return
    fits = est.faster(limit)
    tip = f"try {_options(fits)}" if fits else "this model is too slow here for even one step at this n"
    raise TooLong(f"{est.what()} would take about {say_seconds(est.seconds)} here "
                  f"({est.per_call * 1000:.0f} ms per step); at most {say_seconds(limit)} is allowed: {tip}.")


def advice(est: Estimate, above: float = SAY_ABOVE_S) -> str | None:
    """For a run over `above` seconds: how long it will take here and the faster choice; else None."""
    if est.seconds <= above:
        return None
    fits = est.faster(above)
    tip = f" Faster: {_options(fits)}." if fits else ""
    return f"{est.what()} will take about {say_seconds(est.seconds)} here.{tip}"


def computing_left(estimate: float, total: int, done: int, timed_s: float, timed: int) -> float:
    """Seconds of computing left in a run of `total` steps with `done` done, `estimate` seconds for all of it.

    Once the run has timed enough of its own steps (`timed` of them in `timed_s` seconds: at least
    `PACE_MIN_STEPS` and a twentieth of the run), their pace decides: a laptop that got busy after its
    per-call time was measured runs slower than the estimate says, and one that got quiet faster.
    """
    left = max(total - done, 0)
    if timed_s > 0 and timed >= max(PACE_MIN_STEPS, total // 20):
        return timed_s / timed * left
    return estimate * left / max(total, 1)


def time_left(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left at the pace so far (done and total in any unit of work), None before any is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return elapsed * max(0.0, total - done) / done


# --- training ------------------------------------------------------------------------------------

def train_keys(model_config, batch: int) -> tuple[str, str]:
    """The book's keys for a training step at this batch and for one sample preview of this model."""
    sig = config_signature(model_config)
    return f"train-step {sig} batch={int(batch)}", f"train-preview {sig}"


def record_training(model_config, batch: int, device: str, step_s: float, preview_s: float | None,
                    book: SpeedBook = BOOK) -> None:
    """Remember a run's measured seconds per training step (and per preview, if it made any)."""
    step_key, preview_key = train_keys(model_config, batch)
    book.put(device, step_key, step_s)
    if preview_s is not None and preview_s > 0:
        book.put(device, preview_key, preview_s)


def train_estimate(model_config, batch: int, steps: int, preview_every: int, device: str,
                   book: SpeedBook = BOOK) -> float | None:
    """Seconds a run will train on this device, from earlier runs of this model at this batch; None if none ran.

    A run without a remembered preview time counts each preview as 20 / 3 training steps (a preview is
    20 DDIM steps, forward passes only, about a third of a training step's work each).
    """
    step_key, preview_key = train_keys(model_config, batch)
    step_s = book.get(device, step_key)
    if step_s is None:
        return None
    previews = steps // preview_every if preview_every else 0
    preview_s = book.get(device, preview_key)
    if preview_s is None:
        preview_s = 20 * step_s / 3
    return steps * step_s + previews * preview_s


def before_sampling(model, sample_shape, *, sampler: str, steps: int, n: int, device, batch: int | None = None,
                    key: str = "", limit: float = LIMIT_S, costs: CallCosts = COSTS) -> tuple[Estimate, str | None]:
    """What a sampling request calls first: its estimate, and the advice to show for a run over 10 s.

    Raises TooLong (a ValueError saying how long and what would fit) for a run over `limit` seconds.
    """
    est = sampling_estimate(model, sample_shape, sampler=sampler, steps=steps, n=n, device=device, batch=batch,
                            key=key, costs=costs)
    check_limit(est, limit)
    return est, advice(est)
