"""The training loop as an object: `Trainer.step()` does one optimisation step and returns a `StepEvent`.

The loss is the DDPM "simple" objective generalised to any prediction target (Ho et al. 2020,
eq. 14): draw t uniformly from 1..T and noise eps, form x_t = q_sample(x_0, t, eps), and regress
the network output onto eps, x_0 or v, optionally weighted by min-SNR-gamma (Hang et al. 2023).
Around it: AdamW, linear warm-up then cosine decay, gradient clipping, an EMA of the weights
(the copy that samples and is saved), bf16 autocast on CUDA, optional torch.compile, and DDP when
a process group is running (`torchrun`). Whoever drives the loop (the CLI, the UI's job manager)
decides when to stop, pause, log or save; the trainer only steps and reports.

A step never waits for the device: the batch, its timesteps and the noise are drawn there from the
trainer's own generator, the NaN/inf guard is decided there (fused AdamW skips a flagged step, as
under GradScaler, and the EMA update is masked by the same flag), and each step's numbers go into a
small table on the device. That table is read once per logging step (or when an event's numbers are
first asked for), which is also when a non-finite step is reported, by the step it happened at.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import checkpoint
from .config import RunConfig
from .device import autocast, cpu_has_bf16, describe_device
from .forward import q_sample, snr_weight, target_for
from .nets import build_model
from .nets.base import Dropout
from .samplers import ddim, final
from .schedules import NoiseSchedule, make_schedule
from .shards import CoreShards

PER_T_BINS = 20          # timestep bins of the per-t loss curve
PER_T_DECAY = 0.98       # per step: the per-t curve averages over roughly the last 50 steps
LOSS_DECAY = 0.98        # smoothing of StepEvent.loss_avg
SPEED_DECAY = 0.9        # smoothing of the throughput numbers
PREVIEW_STEPS = 20       # DDIM steps of a preview: cheap, and enough to show the shape of the data
PREVIEW_POINTS = 512     # 2-D points need many samples before a distribution is visible
EMA_WARMUP = 10          # EMA decay ramps as (1 + n) / (EMA_WARMUP + n), so short runs preview something
MAX_WINDOW = 1000        # steps of numbers kept on the device between reads (one read per this many at most)


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient norm) became NaN or inf; the step was not applied."""

    def __init__(self, step: int, what: str, value: float):
        self.step, self.what, self.value = step, what, value
        super().__init__(
            f"the {what} became {value} at step {step}; training stopped without applying that step, so the "
            f"weights are those after step {step - 1}. Lower the learning rate, keep gradient clipping on, "
            f"or check the data for NaN/inf values"
        )


@dataclass(frozen=True, eq=False)
class StepEvent:
    """What one training step reports. Plain numbers, plus a CPU tensor of samples every preview_every steps."""

    step: int                      # optimisation steps done so far (1 after the first)
    loss: float                    # this step's training loss (min-SNR weighted when configured)
    loss_avg: float                # exponential moving average of loss (bias-corrected)
    lr: float                      # learning rate this step used
    grad_norm: float               # global gradient norm before clipping
    per_t_loss: tuple[float, ...]  # running mean unweighted MSE per timestep bin; NaN where no t fell yet
    steps_per_s: float             # smoothed; previews excluded
    samples_per_s: float           # steps_per_s * global batch size
    elapsed: float                 # seconds spent in step() so far, across resumes (pauses excluded)
    preview: torch.Tensor | None = None  # (n, *sample_shape) samples of the EMA model, on the CPU

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes None, the preview is left out."""
        d = asdict(self)
        d.pop("preview")
        d["per_t_loss"] = [None if math.isnan(v) else v for v in self.per_t_loss]
        return d


_LATE = ("loss", "loss_avg", "grad_norm", "per_t_loss")  # the fields a step leaves on the device


class _LateEvent(StepEvent):
    """A StepEvent whose loss numbers are fetched from the trainer's device table when first read.

    Reading them costs one device->host read (for all steps not read yet) unless the trainer has read
    them already; either way the trainer notes that its events are being read (see Trainer.step).
    """

    def __init__(self, owner: "Trainer", step: int, lr: float, steps_per_s: float, samples_per_s: float,
                 elapsed: float, preview: torch.Tensor | None = None):
        for name, value in (("step", step), ("lr", lr), ("steps_per_s", steps_per_s),
                            ("samples_per_s", samples_per_s), ("elapsed", elapsed), ("preview", preview),
                            ("_owner", owner), ("_values", None), ("_read", False)):
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        if name not in _LATE:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self.__dict__["_values"] is None:
            self.__dict__["_owner"]._read_on_demand()
        object.__setattr__(self, "_read", True)
        object.__setattr__(self, "_owner", None)
        for key, value in zip(_LATE, self.__dict__["_values"]):
            object.__setattr__(self, key, value)
        return self.__dict__[name]


# ---------------------------------------------------------------------------------------------
# the pieces, each testable on its own


def diffusion_loss(model, schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                   prediction: str = "eps", min_snr_gamma: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of one batch: returns (scalar loss, per-sample unweighted MSE (B,)).

    x0, noise: (B, ...); t: (B,) LongTensor in 1..T, on x0's device (the schedule keeps a copy of its tables there).
    """
    x_t = q_sample(schedule, x0, t, noise)
    out = model(x_t, t.to(x0.device))
    target = target_for(prediction, schedule, x0, t, noise)
    mse = (out.float() - target.float()).pow(2).flatten(1).mean(1)
    if min_snr_gamma is None:
        return mse.mean(), mse
    return (snr_weight(schedule, t, prediction, min_snr_gamma, mse) * mse).mean(), mse


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier after `step` updates: linear warm-up over `warmup` steps, then cosine to min_ratio at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _lr_lambda(warmup: int, total: int, min_ratio: float):
    # A plain closure: LambdaLR saves no state for functions, so a resumed run may change `total`.
    return lambda step: lr_factor(step, warmup, total, min_ratio)


def ema_decay(decay: float, updates: int) -> float:
    """EMA decay for the update after `updates` earlier ones: ramps up as (1 + n) / (EMA_WARMUP + n), capped at decay."""
    return min(decay, (1 + updates) / (EMA_WARMUP + updates))


class PerTimestepLoss:
    """The loss binned over t: equal-width bins over 1..T, each an exponentially weighted running mean.

    Each step's sums and counts decay by `decay` before the new batch is added, so a bin's value is
    the mean over roughly its last 1 / (1 - decay) steps of samples, however few land in it per step.
    """

    def __init__(self, T: int, bins: int = PER_T_BINS, decay: float = PER_T_DECAY):
        self.T, self.bins, self.decay = T, min(bins, T), decay
        self.bin_of = (torch.arange(T + 1).clamp(min=1) - 1) * self.bins // T  # t -> bin (t = 0 shares bin 0)
        self.edges = tuple(k * T / self.bins for k in range(self.bins + 1))  # bin k: edges[k] < t <= edges[k+1]
        self.centers = tuple((a + b) / 2 for a, b in zip(self.edges[:-1], self.edges[1:]))
        self.sums = torch.zeros(self.bins, dtype=torch.float64)
        self.counts = torch.zeros(self.bins, dtype=torch.float64)
        self._sums, self._counts = self.sums.numpy(), self.counts.numpy()  # views: host updates without torch calls

    def update(self, t: torch.Tensor, loss: torch.Tensor) -> tuple[float, ...]:
        """Add a batch: t (B,) CPU LongTensor in 1..T, loss (B,) CPU per-sample losses. Returns the curve."""
        b = self.bin_of[t]
        self.sums.mul_(self.decay).index_add_(0, b, loss.double())
        self.counts.mul_(self.decay).add_(torch.bincount(b, minlength=self.bins).double())
        return self.values()

    def add_binned(self, sums, counts) -> tuple[float, ...]:
        """Add a batch already binned: per-bin loss sums and sample counts (host numbers). Returns the curve.

        The same update as `update`, done in numpy on views of the same memory, so a trainer that
        bins on its device only has to read the bins back.
        """
        self._sums *= self.decay
        self._sums += np.asarray(sums, dtype=np.float64)
        self._counts *= self.decay
        self._counts += np.asarray(counts, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return tuple((self._sums / self._counts).tolist())

    def load(self, sums: torch.Tensor, counts: torch.Tensor) -> None:
        """Take saved (sums, counts); in place, so the numpy views stay those of the tensors."""
        self.sums.copy_(sums.double())
        self.counts.copy_(counts.double())

    def values(self) -> tuple[float, ...]:
        """The running mean per bin; NaN (0/0) where no sample has fallen yet."""
        return tuple((self.sums / self.counts).tolist())


class _Series:
    """A bounded (step, value) series: when full it drops every other point, so it always spans the run."""

    def __init__(self, max_len: int, stride: int = 1):
        self.max_len, self.stride, self.items = max_len, max(1, stride), []

    def add(self, step: int, value) -> None:
        if step % self.stride:
            return
        self.items.append((step, value))
        if len(self.items) > self.max_len:
            self.stride *= 2
            self.items = [(s, v) for s, v in self.items if s % self.stride == 0]


class History:
    """What a plot of the run needs, bounded in memory; `snapshot()` is safe to call from another thread."""

    def __init__(self, max_points: int = 1000, max_previews: int = 32, per_t_every: int = 10, preview_every: int = 0):
        self._lock = threading.Lock()
        self.loss = _Series(max_points)
        self.loss_avg = _Series(max_points)
        self.lr = _Series(max_points)
        self.per_t = _Series(max_points // 5, per_t_every)
        self.previews = _Series(max_previews, preview_every)

    def add(self, e: StepEvent) -> None:
        self.add_values(e.step, e.loss, e.loss_avg, e.lr, e.per_t_loss, e.preview)

    def add_values(self, step: int, loss: float, loss_avg: float, lr: float, per_t: tuple[float, ...],
                   preview: torch.Tensor | None = None) -> None:
        with self._lock:
            self.loss.add(step, loss)
            self.loss_avg.add(step, loss_avg)
            self.lr.add(step, lr)
            self.per_t.add(step, per_t)
            if preview is not None:
                self.previews.add(step, preview)

    def add_preview(self, step: int, preview: torch.Tensor) -> None:
        with self._lock:
            self.previews.add(step, preview)

    def snapshot(self) -> dict:
        """{"loss", "loss_avg", "lr": [(step, value)], "per_t": [(step, tuple)], "previews": {step: tensor}}."""
        with self._lock:
            return {"loss": list(self.loss.items), "loss_avg": list(self.loss_avg.items), "lr": list(self.lr.items),
                    "per_t": list(self.per_t.items), "previews": dict(self.previews.items)}

    def state(self) -> dict:
        """The scalar series (previews and per-t curves are not kept in checkpoints)."""
        with self._lock:
            return {name: {"stride": s.stride, "items": [list(i) for i in s.items]}
                    for name, s in (("loss", self.loss), ("loss_avg", self.loss_avg), ("lr", self.lr))}

    def load(self, state: dict) -> None:
        with self._lock:
            for name in ("loss", "loss_avg", "lr"):
                if name in state:
                    series = getattr(self, name)
                    series.stride = int(state[name]["stride"])
                    series.items = [(int(s), float(v)) for s, v in state[name]["items"]]


def _total_norm(grads: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Global L2 norm of the gradients without clipping them."""
    if not grads:
        return torch.zeros((), device=device)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def _detached_copy(tree):
    """The same nested structure with every tensor detached and cloned."""
    if torch.is_tensor(tree):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _detached_copy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_detached_copy(v) for v in tree)
    return tree


def _ema_pairs(ema: nn.Module, raw: nn.Module):
    """([ema floating tensors], [raw ones]), ([ema other tensors], [raw ones]): parameters then buffers, in step."""
    pairs = list(zip(list(ema.parameters()) + list(ema.buffers()), list(raw.parameters()) + list(raw.buffers())))
    floating = [(e, r) for e, r in pairs if e.is_floating_point()]
    other = [(e, r) for e, r in pairs if not e.is_floating_point()]
    return ([e for e, _ in floating], [r for _, r in floating]), ([e for e, _ in other], [r for _, r in other])


def _uses_global_rng(model: nn.Module) -> bool:
    """Whether training `model` draws from torch's global RNG: dropout layers other than ours, RNN dropout."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and not isinstance(m, Dropout) and m.p > 0:
            return True
        if isinstance(m, nn.RNNBase) and m.dropout > 0:
            return True
    return False


def ema_lerp_(ema: list[torch.Tensor], raw: list[torch.Tensor], weight: torch.Tensor, per_tensor: bool) -> None:
    """ema += weight * (raw - ema) for a 0-d weight tensor on the device, never reading it on the host.

    per_tensor (CPUs): one lerp pass per tensor. Otherwise three fused multi-tensor kernels:
    _foreach_lerp_ with a single tensor weight reads it back to the host, and with a list of weights
    it falls off the fused path into one kernel per tensor.
    """
    if per_tensor:
        torch._foreach_lerp_(ema, raw, [weight] * len(ema))
        return
    delta = torch._foreach_sub(raw, ema)
    torch._foreach_mul_(delta, weight)
    torch._foreach_add_(ema, delta)


def _adamw(params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW, fused where the device has the fused kernel (about 4x faster than foreach on a CPU)."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


def dist_info() -> tuple[int, int]:
    """(rank, world size) of the running process group, or (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _plain(event: StepEvent) -> StepEvent:
    """A plain StepEvent with the numbers of a read _LateEvent, built without touching the device."""
    if not isinstance(event, _LateEvent):
        return event
    d = event.__dict__
    return StepEvent(d["step"], *d["_values"][:2], d["lr"], *d["_values"][2:], d["steps_per_s"], d["samples_per_s"],
                     d["elapsed"], d["preview"])


# ---------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """Trains a denoiser on `data` one step at a time: `event = trainer.step()`.

    config: the RunConfig (model, diffusion, data, train); data: a core.data.Dataset;
    device: where to train (a torch.device or its name); model: start from this module instead of
    building config.model freshly; log: called with the StepEvent every log_every steps, on
    preview steps and on the last configured step (rank 0 only under DDP).

    An event's loss numbers stay on the device until they are read: at a logging step by the
    trainer, otherwise when the caller first reads one (see `step`). Read events in the thread that steps.

    shards: on a CPU, split each batch into this many shards, each run on its own thread with one
    intra-op thread (core.shards), the gradients added in a fixed order. None: as many as torch's
    threads for image models, 1 for the others. On 2 cores (benchmarks/RESULTS-speed.md) image
    nets train about as fast in 2 shards as on 2 threads when the machine is quiet (0.87-1.10x) and
    1.8-5.2x faster when other work holds the cores, where 2 threads fall below one's speed; a 1-D
    conv net was slower in shards when quiet, and the 2-D MLP's tiny steps are Python's work,
    which threads do not share. A net that draws random numbers while training (dropout) and
    torch.compile take 1.

    cpu_bf16: on a CPU, run the net under bf16 autocast (weights, AdamW and the EMA stay fp32), as
    CUDA does by default. Only on a CPU with native bf16 (core.device.cpu_has_bf16; a ValueError
    elsewhere, where it would be emulated and slower): there a 1.06 M UNet's step on 32x32 pictures
    is about 2x as fast as fp32's, unet-digits' on 8x8 1.3x.
    """

    def __init__(self, config: RunConfig, data, device: torch.device | str = "cpu", *,
                 model: nn.Module | None = None, log: Callable[[StepEvent], None] | None = None,
                 channels_last: bool | None = None, shards: int | None = None, cpu_bf16: bool = False):
        tc = config.train
        self.config, self.data, self.log = config, data, log
        self.device = torch.device(device)
        self.rank, self.world_size = dist_info()
        self.is_main = self.rank == 0
        if tc.batch_size % self.world_size:
            raise ValueError(f"batch_size {tc.batch_size} must be divisible by the number of processes "
                             f"({self.world_size}): each process trains on an equal share of the batch")
        self.batch = tc.batch_size // self.world_size
        self.schedule = make_schedule(config.diffusion.schedule, config.diffusion.T)
        self.prediction = config.diffusion.prediction
        self.sample_shape = tuple(data.x.shape[1:])
        self.x0_clip = data.x0_clip()  # samplers clip predicted x0 to [-x0_clip, x0_clip]
        self.amp = tc.amp
        self.cpu_bf16 = bool(cpu_bf16) and self.device.type == "cpu"
        if self.cpu_bf16 and not cpu_has_bf16():
            raise ValueError("cpu_bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); this one would emulate "
                             "it, slower than fp32: train without it")

        raw = model if model is not None else build_model(config.model, self.sample_shape, seed=tc.seed)
        raw = raw.to(self.device).train()
        # channels_last lets cuDNN pick its fastest convolution kernels; elsewhere it is asked for explicitly.
        self.channels_last = (self.device.type == "cuda" if channels_last is None else channels_last) \
            and data.kind == "image"
        if self.channels_last:
            raw = raw.to(memory_format=torch.channels_last)
        self.model = raw  # the raw weights the optimizer updates
        # device= puts AveragedModel's step counter (n_averaged) beside the weights; without it the counter
        # stays in host memory and the on-device update of it fails on a GPU
        self.ema = AveragedModel(raw, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True,
                                 device=self.device).eval()
        self._ema_pairs = _ema_pairs(self.ema.module, raw)
        net: nn.Module = raw
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(raw, device_ids=ids)
        mode = tc.compile_mode
        self.net = net if mode is None else torch.compile(net, mode=None if mode == "default" else mode)
        self._graphs = mode in ("reduce-overhead", "max-autotune")  # the modes that use CUDA graphs

        self._params = [p for p in raw.parameters() if p.requires_grad]
        self.optimizer = _adamw(self._params, tc.lr, tc.weight_decay)
        # The NaN/inf guard on the device: fused AdamW skips its whole update (moments and step count
        # included) while this flag is 1, as it does for GradScaler. Without the fused kernel the flag
        # is read on the host before each update instead.
        self._found_inf = torch.zeros((), dtype=torch.float32, device=self.device)
        self._guard_on_device = bool(self.optimizer.defaults.get("fused"))
        if self._guard_on_device:
            self.optimizer.found_inf = self._found_inf
        self.warmup = min(tc.warmup_steps, tc.steps - 1)
        self.scheduler = LambdaLR(self.optimizer, _lr_lambda(self.warmup, tc.steps, tc.min_lr_ratio))

        self._x = data.x.to(self.device)
        self._seed_streams(tc.seed)
        for m in raw.modules():  # dropout draws from the trainer's stream, not the global RNG
            if isinstance(m, Dropout):
                m.generator = self._dev_gen
        # A net that draws from the global RNG some other way (an RNN's inter-layer dropout, a foreign
        # dropout layer) gets its own copy of it swapped in around each step: host work only on a CPU.
        self._torch_rng = self._cuda_rng = None
        if _uses_global_rng(raw):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(tc.seed + 7919 * self.rank)
                self._torch_rng = torch.get_rng_state()
            if self.device.type == "cuda":
                with torch.random.fork_rng(devices=[self.device]):
                    torch.cuda.manual_seed(tc.seed + 7919 * self.rank)
                    self._cuda_rng = torch.cuda.get_rng_state(self.device)

        self.shards = self._shard_count(shards, raw)
        self._shards = CoreShards(self.shards) if self.shards > 1 else None

        self.per_t = PerTimestepLoss(self.schedule.T)
        self._bin_of = self.per_t.bin_of.to(self.device)
        self._ones = torch.ones(self.batch, device=self.device)
        # One row per step since the last read: loss, grad norm, per-bin MSE sums, per-bin counts.
        self._window = torch.zeros(max(1, min(tc.log_every or 1, MAX_WINDOW)), 2 + 2 * self.per_t.bins,
                                   device=self.device)
        self._pending: list[_LateEvent] = []  # events of the steps in the window, oldest first
        self._eager = False       # the caller reads every event: read each step, and raise from step() itself
        self._failed: NonFiniteLossError | None = None  # found by a read outside step(); raised by the next step()
        self.host_reads = 0       # device->host reads of the window so far
        self.step_count = 0
        self.elapsed = 0.0
        self._loss_ema, self._loss_weight = 0.0, 0.0
        self._dt_avg: float | None = None
        self.last_event: StepEvent | None = None
        self.last_preview: tuple[int, torch.Tensor] | None = None
        self._last_read: _LateEvent | None = None  # the newest event whose numbers were read (and were finite)
        self.history = History(per_t_every=max(1, tc.log_every), preview_every=max(1, tc.preview_every))

    def _shard_count(self, asked: int | None, raw: nn.Module) -> int:
        """How many shards each batch is split into (see the class docstring); a bad request raises ValueError."""
        why_not = None
        if self.device.type != "cpu":
            why_not = f"training runs on {self.device.type}, not the CPU"
        elif self.world_size > 1:
            why_not = "training runs in several processes (DDP)"
        elif self.config.train.compile_mode is not None:
            why_not = "the net is compiled"
        elif self._torch_rng is not None or any(isinstance(m, nn.Dropout) and m.p > 0 for m in raw.modules()):
            why_not = "the net draws random numbers while it trains (dropout), whose order threads would not keep"
        if asked is None:
            return torch.get_num_threads() if why_not is None and self.data.kind == "image" else 1
        if asked < 1 or asked > self.batch:
            raise ValueError(f"shards must be between 1 and the batch size ({self.batch}), got {asked}")
        if asked > 1 and why_not is not None:
            raise ValueError(f"shards={asked} is not possible here: {why_not}; use shards=1")
        return asked

    def close(self) -> None:
        """Stop the shards' worker threads (a dropped trainer stops them too)."""
        if self._shards is not None:
            self._shards.close()

    # --- randomness -------------------------------------------------------------------------

    def _seed_streams(self, seed: int, salt: int = 0) -> None:
        """Data order, timesteps, noise and dropout all come from one generator on the training device.

        Each DDP rank gets its own stream. Nothing is saved or restored around a step.
        """
        base = seed + 1_000_003 * self.rank + 7_368_787 * salt
        if not hasattr(self, "_dev_gen"):
            self._dev_gen = torch.Generator(device=self.device)
        self._dev_gen.manual_seed(base + 1)

    @contextlib.contextmanager
    def _global_rng(self):
        if self._torch_rng is None:
            yield
            return
        devices = [self.device] if self._cuda_rng is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self._torch_rng)
            if self._cuda_rng is not None:
                torch.cuda.set_rng_state(self._cuda_rng, self.device)
            try:
                yield
            finally:
                self._torch_rng = torch.get_rng_state()
                if self._cuda_rng is not None:
                    self._cuda_rng = torch.cuda.get_rng_state(self.device)

    # --- one step ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the configured number of steps is reached (step() may still be called to go on)."""
        return self.step_count >= self.config.train.steps

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self._dev_gen
        idx = torch.randint(self._x.shape[0], (self.batch,), generator=g, device=self.device)
        t = torch.randint(1, self.schedule.T + 1, (self.batch,), generator=g, device=self.device)
        x0 = self._x.index_select(0, idx)
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        noise = torch.randn(x0.shape, generator=g, device=self.device)
        return x0, t, noise

    def step(self) -> StepEvent:
        """One optimisation step, queued on the device without waiting for it.

        A non-finite loss or gradient norm is never applied (nor any step after it); the step's
        NonFiniteLossError is raised when the numbers are next read: at the next logging step, or by
        this call when the caller has been reading every event (as a UI showing each step does).
        """
        if self._failed is not None:
            error, self._failed = self._failed, None
            raise error
        tc = self.config.train
        start = time.perf_counter()
        last = self.last_event
        if self._eager and isinstance(last, _LateEvent) and not last._read:
            self._eager = False  # the caller stopped reading every event
        x0, t, noise = self._batch()
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the last step's graph outputs are no longer needed
        if self._shards is not None:
            loss, mse = self._sharded_backward(x0, t, noise)
        else:
            with self._global_rng():
                with autocast(self.device, self.amp, cpu=self.cpu_bf16):
                    loss, mse = diffusion_loss(self.net, self.schedule, x0, t, noise, self.prediction,
                                               tc.min_snr_gamma)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
        if tc.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self._params, tc.grad_clip, foreach=True)
        else:
            grad_norm = _total_norm([p.grad for p in self._params if p.grad is not None], self.device)
        self._record(loss.detach(), grad_norm.detach(), mse.detach(), t)

        lr = self.optimizer.param_groups[0]["lr"]
        if self._guard_on_device or not bool(self._found_inf):  # without the fused kernel: a host read per step
            self.optimizer.step()
        self.scheduler.step()
        self._update_ema()
        step = self.step_count = self.step_count + 1

        dt = time.perf_counter() - start
        self._dt_avg = dt if self._dt_avg is None else SPEED_DECAY * self._dt_avg + (1 - SPEED_DECAY) * dt
        steps_per_s = 1.0 / max(self._dt_avg, 1e-9)
        event = _LateEvent(self, step, lr, steps_per_s, steps_per_s * tc.batch_size,
                           self.elapsed + time.perf_counter() - start)
        self._pending.append(event)
        self.last_event = event
        preview_due = bool(tc.preview_every) and step % tc.preview_every == 0 and self.is_main
        logging = step % max(1, tc.log_every) == 0 or step == tc.steps
        if logging or preview_due or self._eager or len(self._pending) == self._window.shape[0]:
            self._read()  # a run that went bad raises here, before a preview is drawn
        if preview_due:
            preview = self.preview()
            self.last_preview = (step, preview)
            object.__setattr__(event, "preview", preview)
            self.history.add_preview(step, preview)
        self.elapsed += time.perf_counter() - start
        object.__setattr__(event, "elapsed", self.elapsed)
        if self.log is not None and self.is_main and (logging or preview_due):
            self.log(event)
        return event

    def _sharded_backward(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
        """The loss and the gradients of one batch, its shards on the shards' threads at the same time.

        The batch loss is the mean over samples, so shard i's loss and gradients enter with weight
        (its size / the batch), added in shard order: the same every run. Returns (loss, mse (B,)).
        Shards run on the CPU only and never for a net with its own global RNG stream (see
        _shard_count), so nothing here swaps RNG states. Autocast is per thread: each shard enters its own.
        """
        tc, params = self.config.train, self._params
        parts = list(zip(x0.tensor_split(self.shards), t.tensor_split(self.shards), noise.tensor_split(self.shards)))

        def one(part):
            xs, ts, ns = part
            with autocast(self.device, False, cpu=self.cpu_bf16):
                loss, mse = diffusion_loss(self.net, self.schedule, xs, ts, ns, self.prediction, tc.min_snr_gamma)
            return loss.detach(), mse.detach(), torch.autograd.grad(loss, params, allow_unused=True)

        out = self._shards.map(one, parts)
        weights = [xs.shape[0] / self.batch for xs, _, _ in parts]
        self.optimizer.zero_grad(set_to_none=True)
        for k, p in enumerate(params):
            grad = None
            for w, (_, _, grads) in zip(weights, out):
                g = grads[k]
                if g is None:
                    continue
                grad = g.mul_(w) if grad is None else grad.add_(g, alpha=w)
            p.grad = grad
        loss = sum(w * l for w, (l, _, _) in zip(weights, out))
        return loss, torch.cat([mse for _, mse, _ in out])

    def _record(self, loss: torch.Tensor, grad_norm: torch.Tensor, mse: torch.Tensor, t: torch.Tensor) -> None:
        """Write this step's numbers into the window and raise the guard flag if they are not finite (on the device)."""
        bins = self.per_t.bins
        row = self._window[len(self._pending)]
        row[0] = loss
        row[1] = grad_norm.float()
        row[2:].zero_()
        b = self._bin_of[t]
        row[2:2 + bins].index_add_(0, b, mse.float())
        row[2 + bins:].index_add_(0, b, self._ones[:b.shape[0]])
        bad = ~(torch.isfinite(loss) & torch.isfinite(grad_norm))
        # sticky: once a step is bad, every later update is skipped too until it is reported
        self._found_inf.copy_(self._found_inf.bool() | bad)

    def wait(self) -> None:
        """Read the numbers of every step not read yet (so wait for the device to finish them).

        Raises NonFiniteLossError if one of those steps was not finite. A timer of steps calls this
        before it stops the clock; nothing else needs to.
        """
        self._read()

    def _read_on_demand(self) -> None:
        """A caller asked for numbers not read yet: read them now, and from now on at every step."""
        self._eager = True
        try:
            self._read()
        except NonFiniteLossError as e:  # the event itself shows its numbers; the next step() raises
            self._failed = e

    def _read(self) -> None:
        """The one device->host read: every step's numbers since the last read, then the host bookkeeping.

        Raises NonFiniteLossError for the first non-finite step among them, after undoing the count
        of the steps that were skipped from there on (their updates never happened).
        """
        pending = self._pending
        if not pending:
            return
        rows = self._window[:len(pending)].tolist()
        self.host_reads += 1
        self._pending = []
        bins = self.per_t.bins
        bad: tuple[int, str, float] | None = None
        last_avg = self._loss_ema / self._loss_weight if self._loss_weight else math.nan
        last_per_t = None
        for event, row in zip(pending, rows):
            loss, norm = row[0], row[1]
            if bad is None and not (math.isfinite(loss) and math.isfinite(norm)):
                bad = (event.step, "loss", loss) if not math.isfinite(loss) else (event.step, "gradient norm", norm)
            if bad is None:
                last_per_t = self.per_t.add_binned(row[2:2 + bins], row[2 + bins:])
                self._loss_ema = LOSS_DECAY * self._loss_ema + (1 - LOSS_DECAY) * loss
                self._loss_weight = LOSS_DECAY * self._loss_weight + (1 - LOSS_DECAY)
                last_avg = self._loss_ema / self._loss_weight
                self.history.add_values(event.step, loss, last_avg, event.lr, last_per_t)
            elif last_per_t is None:
                last_per_t = self.per_t.values()
            object.__setattr__(event, "_values", (loss, last_avg, norm, last_per_t))
            if bad is None:
                self._last_read = event
        if bad is not None:
            self._undo_from(bad[0])
            raise NonFiniteLossError(*bad)

    def _undo_from(self, step: int) -> None:
        """Forget the skipped steps `step`.. : count, LR schedule and the guard flag go back to step - 1."""
        done = step - 1
        self.step_count = done
        self.scheduler.last_epoch = done
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.scheduler.lr_lambdas[0](done)
        self._found_inf.zero_()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_event = self._last_read

    @torch.no_grad()
    def _update_ema(self) -> None:
        """AveragedModel.update_parameters(self.model) with use_buffers=True, on tensor lists gathered once.

        update_parameters re-walks and regroups every parameter and buffer on each call, which
        costs more than the averaging itself for our small nets; the arithmetic is the same
        `get_ema_multi_avg_fn` update, with a warm-up of the decay (see `ema_decay`). A step the
        guard flagged moves nothing: its weight is multiplied by 0 on the device.
        """
        (ema_float, raw_float), (ema_other, raw_other) = self._ema_pairs
        n = self.step_count  # updates so far; counted in Python so a GPU need not sync to read n_averaged
        if n == 0:
            # The EMA starts as a copy of the raw weights, so copying them is right whether or not the step was applied.
            torch._foreach_copy_(ema_float, raw_float)
        elif ema_float:
            weight = (1.0 - self._found_inf) * (1.0 - ema_decay(self.config.train.ema_decay, n))
            ema_lerp_(ema_float, raw_float, weight, per_tensor=self.device.type == "cpu")
        for e, r in zip(ema_other, raw_other):  # integer buffers (counters) are copied, not averaged
            e.copy_(r)
        self.ema.n_averaged.add_(1 - self._found_inf.to(self.ema.n_averaged.dtype))

    def run(self, until: int | None = None) -> Iterator[StepEvent]:
        """Step until `until` steps are done (default: config.train.steps), yielding each event."""
        until = self.config.train.steps if until is None else until
        while self.step_count < until:
            yield self.step()

    # --- previews and snapshots -------------------------------------------------------------

    def preview_count(self) -> int:
        n = self.config.train.preview_n
        return max(n, PREVIEW_POINTS) if self.data.kind == "points" else n

    @torch.no_grad()
    def preview(self, n: int | None = None, steps: int = PREVIEW_STEPS) -> torch.Tensor:
        """Samples of the EMA model by deterministic DDIM from a fixed seed, so previews compare over time.

        Returns (n, *sample_shape) float32 on the CPU.
        """
        n = self.preview_count() if n is None else n
        g = torch.Generator().manual_seed(self.config.train.seed)
        it = ddim(self.ema.module, self.schedule, (n, *self.sample_shape), steps=min(steps, self.schedule.T),
                  generator=g, device=self.device, prediction=self.prediction, clip=self.x0_clip)
        return final(it).float().cpu()

    def snapshot(self) -> dict:
        """Everything a progress view needs, as plain values and CPU tensors (safe from another thread)."""
        last = self._last_read  # not the newest event: reading that one would touch the device from this thread
        return {"step": self.step_count, "steps": self.config.train.steps, "done": self.done,
                "elapsed": self.elapsed, "last": _plain(last).to_dict() if last is not None else None,
                "last_preview": self.last_preview, "t_bin_centers": self.per_t.centers,
                **self.history.snapshot()}

    # --- save and resume --------------------------------------------------------------------

    def train_state(self) -> dict:
        """Everything needed to continue exactly: raw weights, optimizer, scheduler, EMA, step, RNG states.

        Reads the steps not read yet first, so a run that went bad raises here instead of being saved.
        """
        self._read()
        sums, counts = self.per_t.sums, self.per_t.counts
        state = {
            "step": self.step_count,
            "elapsed": self.elapsed,
            "world_size": self.world_size,
            "device_type": self.device.type,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": {"dev_gen": self._dev_gen.get_state()},
            "stats": {"loss_ema": self._loss_ema, "loss_weight": self._loss_weight,
                      "per_t_sums": sums, "per_t_counts": counts},
            "history": self.history.state(),
        }
        if self._torch_rng is not None:
            state["rng"]["torch"] = self._torch_rng
        if self._cuda_rng is not None:
            state["rng"]["cuda"] = self._cuda_rng
        # Copies: state_dict() hands out the live tensors, and an optimizer loading them would share its moments.
        return _detached_copy(state)

    def load_state(self, state: dict | str | Path) -> None:
        """Continue from a `train_state()` dict or a checkpoint directory saved with one."""
        if not isinstance(state, dict):
            state = checkpoint.load_train_state(state, device="cpu")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._match_moment_layouts()
        self.scheduler.load_state_dict(state["scheduler"])
        self.ema.load_state_dict(state["ema"])
        self.step_count = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        # The lr of the next step from this config's schedule (the same number unless `steps` changed).
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        rng = state["rng"]
        if self.world_size == 1 and int(state.get("world_size", 1)) == 1:
            if self._torch_rng is not None and "torch" in rng:
                self._torch_rng = rng["torch"].cpu()
            if state.get("device_type") == self.device.type:
                self._dev_gen.set_state(rng["dev_gen"].cpu())
                if self._cuda_rng is not None and "cuda" in rng:
                    self._cuda_rng = rng["cuda"].cpu()
            else:  # moved between devices: their generators differ, so the noise stream starts afresh
                self._dev_gen.manual_seed(self.config.train.seed + 7_368_787 * self.step_count + 1)
        else:
            # Only rank 0's streams were saved; give every rank fresh streams of its own for this leg.
            self._seed_streams(self.config.train.seed, salt=self.step_count)
        stats = state.get("stats", {})
        self._loss_ema = float(stats.get("loss_ema", 0.0))
        self._loss_weight = float(stats.get("loss_weight", 0.0))
        if "per_t_sums" in stats and stats["per_t_sums"].numel() == self.per_t.bins:
            self.per_t.load(stats["per_t_sums"], stats["per_t_counts"])
        self.history.load(state.get("history", {}))

    def _match_moment_layouts(self) -> None:
        """Give loaded optimizer moments their parameter's memory layout (channels_last on CUDA).

        load_state_dict moves them to the right device and dtype but keeps the saved (contiguous)
        strides, and the fused AdamW kernel needs parameter, gradient and moments laid out alike.
        """
        for p in self._params:
            for key, value in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    self.optimizer.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)

    def save(self, path: str | Path, meta: dict | None = None, *, train_state: bool = True,
             dtype: torch.dtype | None = None, **disk) -> Path:
        """Write a checkpoint: the EMA weights as the model, plus (by default) the state to resume from.

        disk: `carry`, `check_space`, `keep_previous_as`, passed to `checkpoint.save`.
        """
        where = describe_device(self.device)
        if self.shards > 1:
            where = f"{where[:-1]}, batches in {self.shards} shards)"
        if self.cpu_bf16:
            where = f"{where[:-1]}, bf16 autocast)"
        info = {"steps": self.step_count, "kind": self.data.kind, "train_seconds": round(self.elapsed, 3),
                "device": where, "x0_clip": self.x0_clip}
        if self._loss_weight > 0:
            info["train_loss"] = self._loss_ema / self._loss_weight
        info.update(meta or {})
        state = self.train_state() if train_state else None
        return checkpoint.save(path, self.ema.module, self.config, info, state, dtype=dtype, **disk)

    @classmethod
    def resume(cls, path: str | Path, data=None, device: torch.device | str = "cpu", *,
               config: RunConfig | None = None, log: Callable[[StepEvent], None] | None = None,
               channels_last: bool | None = None, shards: int | None = None,
               cpu_bf16: bool = False) -> "Trainer":
        """A trainer that continues the run saved at `path`.

        data: the dataset (default: made again from the checkpoint's data config); config: run
        with this config instead (e.g. more steps) - model, diffusion and data must match the saved ones.
        """
        saved, _ = checkpoint.load_config(path)
        if config is None:
            config = saved
        elif (config.model, config.diffusion) != (saved.model, saved.diffusion):
            raise ValueError(f"cannot resume {path} with a different model or diffusion config; saved: "
                             f"{saved.model}, {saved.diffusion}")
        if data is None:
            from .data import load_dataset
            data = load_dataset(config.data.name, **config.data.params)
        state = checkpoint.load_train_state(path, device="cpu")
        trainer = cls(config, data, device, log=log, channels_last=channels_last, shards=shards, cpu_bf16=cpu_bf16)
        trainer.load_state(state)
        return trainer
