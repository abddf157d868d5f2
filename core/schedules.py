"""Noise schedules: how much noise the forward process adds at each step.

Convention (the DDPM paper's): t = 1..T index noisy states and t = 0 is the clean data. Every
tensor has length T + 1 and index 0 describes the data: beta[0] = 0, alpha_bar[0] = 1, SNR[0] = inf.
So `alpha_bar[t]` reads exactly like the paper's alpha-bar_t. Tensors are float64 on the CPU and
computed once per schedule (treat them as read-only); `extract` casts what a step needs to the
working device and dtype (MPS has no float64), and `NoiseSchedule.coef` does the same from a copy
of the table kept on that device, so a step whose t lives on a GPU never reads it back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import torch

MAX_T = 10_000
MAX_BETA = 0.999  # Nichol & Dhariwal clip: beta -> 1 makes the last steps singular
# how a few-step sampler picks its timesteps (NoiseSchedule.timesteps), with a line for the UI
SPACINGS = {"linear": "evenly spaced in t",
            "quadratic": "t = T (k / steps)^2: more steps at low noise, where the detail is decided"}


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """beta_t and everything derived from it, for t = 0..T (index 0 = data)."""

    name: str
    beta: torch.Tensor  # (T+1,) float64, beta[0] = 0
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # (name, device, dtype) -> copy

    def __post_init__(self):
        b = self.beta
        if b.ndim != 1 or b.numel() < 2:
            raise ValueError(f"beta must be 1-D with at least 2 entries (t=0 and t=1), got shape {tuple(b.shape)}")
        if b[0] != 0:
            raise ValueError("beta[0] must be 0: index 0 is the clean data")
        if not bool(((b[1:] > 0) & (b[1:] < 1)).all()):
            raise ValueError("every beta_t for t >= 1 must lie in (0, 1)")

    @property
    def T(self) -> int:
        return self.beta.numel() - 1

    @cached_property
    def alpha(self) -> torch.Tensor:
        return 1.0 - self.beta

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        """alpha-bar_t = prod_{s<=t} alpha_s; alpha_bar[0] = 1."""
        return torch.cumprod(self.alpha, dim=0)

    @cached_property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio alpha-bar_t / (1 - alpha-bar_t); inf at t = 0."""
        ab = self.alpha_bar
        return ab / (1.0 - ab)

    @cached_property
    def log_snr(self) -> torch.Tensor:
        """lambda_t = log SNR(t), computed stably; +inf at t = 0."""
        ab = self.alpha_bar
        return torch.log(ab) - torch.log1p(-ab)

    @cached_property
    def sqrt_alpha_bar(self) -> torch.Tensor:
        return self.alpha_bar.sqrt()

    @cached_property
    def sqrt_one_minus_alpha_bar(self) -> torch.Tensor:
        return (1.0 - self.alpha_bar).sqrt()

    def table(self, name: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The curve `name` (e.g. "sqrt_alpha_bar") cast to dtype on `device`, made once and then reused."""
        device = torch.device(device)
        key = (name, device, dtype)
        tab = self._tables.get(key)
        if tab is None:
            # cast on the CPU first: the float64 curve cannot go to MPS as it is
            tab = self._tables[key] = getattr(self, name).to(dtype).to(device)
        return tab

    def coef(self, name: str, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """curve[t] per sample from the table on x's device and dtype, shaped (B, 1, ..., 1) against x.

        Equal to `extract(getattr(self, name), t, x)`; t may live on x's device (nothing is read back).
        """
        tab = self.table(name, x.device, x.dtype)
        c = tab[t] if isinstance(t, int) else tab[t.to(x.device)]
        return c.expand(x.shape[0]).reshape(-1, *([1] * (x.ndim - 1))) if c.ndim == 0 else c.reshape(-1, *([1] * (x.ndim - 1)))

    def check_t(self, t: int) -> int:
        """Validate a scalar timestep (0 = data) and return it as int."""
        t = int(t)
        if not 0 <= t <= self.T:
            raise ValueError(f"t must be between 0 and T={self.T}, got {t}")
        return t

    def timesteps(self, steps: int, spacing: str = "linear") -> torch.Tensor:
        """`steps + 1` timesteps from T down to 0, for a sampler of `steps` steps.

        Consecutive pairs (t, s) are the jumps a few-step sampler makes; the last is always 0.
        spacing "linear": evenly spaced in t. "quadratic" (DDIM paper, section 5): t_k = T (k / steps)^2
        rounded, so more of the steps fall at low noise, where the fine detail is decided; where rounding
        would repeat a timestep (the first few k), each takes the next free one, so there are always
        exactly `steps` distinct jumps.
        """
        if not isinstance(steps, int) or not 1 <= steps <= self.T:
            raise ValueError(f"steps must be an integer between 1 and T={self.T}, got {steps!r}")
        if spacing not in SPACINGS:
            raise ValueError(f"unknown timestep spacing {spacing!r}; known: {', '.join(SPACINGS)}")
        if spacing == "linear":
            return torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round().long()
        k = torch.arange(steps + 1, dtype=torch.float64)
        q = (self.T * (k / steps) ** 2).round().long()
        # t_k = k + max_{j<=k} (q_j - j): the smallest strictly increasing sequence at or above q
        k = k.long()
        return (torch.cummax(q - k, 0).values + k).flip(0)

    def respace(self, steps: int, spacing: str = "linear") -> tuple["NoiseSchedule", torch.Tensor]:
        """A schedule over a subset of timesteps with the same alpha-bar there (improved-diffusion's respacing).

        Returns the new schedule (length steps + 1) and the original timestep of each new index.
        beta'_k = 1 - alpha_bar[t_k] / alpha_bar[t_{k-1}] keeps q(x_t | x_0) unchanged on the subset.
        """
        ts = self.timesteps(steps, spacing).flip(0)  # ascending: 0, ..., T
        ab = self.alpha_bar[ts]
        beta = torch.cat([torch.zeros(1, dtype=torch.float64), 1.0 - ab[1:] / ab[:-1]])
        name = f"{self.name}/respaced{steps}" + ("" if spacing == "linear" else f"-{spacing}")
        return NoiseSchedule(name, beta), ts

    def to_numpy(self) -> dict:
        """Plain arrays of every curve, for plotting and tables."""
        return {
            "t": torch.arange(self.T + 1).numpy(),
            "beta": self.beta.numpy(),
            "alpha_bar": self.alpha_bar.numpy(),
            "snr": self.snr.numpy(),
            "log_snr": self.log_snr.numpy(),
        }


def gather(a: torch.Tensor, t: torch.Tensor | int, batch: int) -> torch.Tensor:
    """a[t] per sample as a float64 CPU tensor (B,): combine coefficients here, at full precision."""
    if isinstance(t, int) or (torch.is_tensor(t) and t.ndim == 0):
        t = torch.full((batch,), int(t), dtype=torch.long)
    return a[t.detach().to("cpu", torch.long)]


def broadcast(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-sample coefficient (B,) shaped (B, 1, ..., 1) on x's device and dtype."""
    return c.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def extract(a: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """a[t] per sample, shaped (B, 1, ..., 1) to broadcast against x, on x's device and dtype."""
    return broadcast(gather(a, t, x.shape[0]), x)


def _check_T(T: int) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= MAX_T:
        raise ValueError(f"T must be an integer between 1 and {MAX_T}, got {T!r}")


def _from_betas(name: str, betas: torch.Tensor) -> NoiseSchedule:
    betas = betas.to(torch.float64).clamp(max=MAX_BETA)
    return NoiseSchedule(name, torch.cat([torch.zeros(1, dtype=torch.float64), betas]))


def _from_alpha_bar(name: str, alpha_bar_fn: Callable[[torch.Tensor], torch.Tensor], T: int) -> NoiseSchedule:
    """beta_t = 1 - abar(t/T) / abar((t-1)/T), clipped at MAX_BETA (Nichol & Dhariwal 2021, eq. 17)."""
    s = torch.arange(T + 1, dtype=torch.float64) / T
    ab = alpha_bar_fn(s)
    betas = 1.0 - ab[1:] / ab[:-1]
    return _from_betas(name, betas.clamp(min=1e-12))


def linear(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """DDPM's linear betas from 1e-4 to 0.02 at T=1000; scaled by 1000/T for other T (improved-diffusion)."""
    _check_T(T)
    scale = 1000.0 / T
    lo, hi = scale * beta_start, min(scale * beta_end, MAX_BETA)
    if T == 1:
        return _from_betas("linear", torch.tensor([hi], dtype=torch.float64))
    # float32 linspace first: the reference implementations build it that way, and we match them bit for bit.
    return _from_betas("linear", torch.linspace(min(lo, hi), hi, T, dtype=torch.float32))


def cosine(T: int = 1000, s: float = 0.008) -> NoiseSchedule:
    """Nichol & Dhariwal 2021: alpha_bar(u) = cos^2(((u + s) / (1 + s)) * pi / 2), u = t/T."""
    _check_T(T)
    return _from_alpha_bar("cosine", lambda u: torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2, T)


def sigmoid(T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> NoiseSchedule:
    """Jabri et al. 2022 / Chen 2023: alpha_bar(u) from a sigmoid over [start, end] with temperature tau."""
    _check_T(T)
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))

    def alpha_bar(u):
        return (v_end - torch.sigmoid((u * (end - start) + start) / tau)) / (v_end - v_start)

    return _from_alpha_bar("sigmoid", alpha_bar, T)


def quadratic(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """sqrt(beta) linear from sqrt(1e-4) to sqrt(0.02) at T=1000 (diffusers' "scaled_linear"), scaled like linear."""
    _check_T(T)
    scale = 1000.0 / T
    lo, hi = scale * beta_start, min(scale * beta_end, MAX_BETA)
    if T == 1:
        return _from_betas("quadratic", torch.tensor([hi], dtype=torch.float64))
    return _from_betas("quadratic", torch.linspace(min(lo, hi) ** 0.5, hi**0.5, T, dtype=torch.float32) ** 2)


def logsnr(T: int = 1000, lambda_max: float = 9.0, lambda_min: float = -11.0) -> NoiseSchedule:
    """log-SNR falling linearly in u = t/T from lambda_max to lambda_min: alpha_bar(u) = sigmoid(lambda(u)),
    normalised so alpha_bar_0 = 1.

    Every noise level on a log scale gets the same share of the steps, so fine structure gets many
    more steps at the low noise where it is decided: with the defaults 106 of 1000 steps have noise
    sqrt(1 - alpha_bar) under 0.03, against 13 for cosine and 7 for linear, and alpha_bar_T = 1.7e-5
    (linear's is 4.0e-5).
    """
    _check_T(T)
    if not lambda_max > lambda_min:
        raise ValueError(f"lambda_max must be above lambda_min, got {lambda_max} and {lambda_min}")
    return _from_alpha_bar("logsnr", lambda u: torch.sigmoid(lambda_max + (lambda_min - lambda_max) * u), T)


SCHEDULES: dict[str, Callable[..., NoiseSchedule]] = {
    "linear": linear,
    "cosine": cosine,
    "sigmoid": sigmoid,
    "quadratic": quadratic,
    "logsnr": logsnr,
}


def make_schedule(name: str, T: int = 1000, **kwargs) -> NoiseSchedule:
    """Build a schedule by name; see `SCHEDULES`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](T, **kwargs)
