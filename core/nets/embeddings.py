"""The sinusoidal step encoding every denoiser shares (Vaswani et al. 2017, as used by DDPM).

For an integer timestep t and an even width d, with half = d / 2 and k = 0 .. half - 1:

    w_k = 10000 ** (-k / half)
    e(t) = [sin(t * w_0), ..., sin(t * w_{half-1}), cos(t * w_0), ..., cos(t * w_{half-1})]

The first half holds the sines, the second half the cosines (improved-diffusion's layout).
The raw timestep t in 1..T goes in unscaled: w_0 = 1 makes the fastest component turn once
every 2*pi steps, and the slowest (w ~ 1e-4) barely moves over T = 1000, so nearby steps get
nearby codes and far-apart steps get distinguishable ones.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

MAX_PERIOD = 10_000.0


def frequencies(dim: int, max_period: float = MAX_PERIOD, device=None, dtype=torch.float64) -> torch.Tensor:
    """The angular frequencies w_k = max_period ** (-k / (dim/2)), k = 0 .. dim/2 - 1; shape (dim/2,).

    Built directly on `device` (no host-to-device copy on every forward pass of a GPU model).
    """
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2 or dim % 2:
        raise ValueError(f"embedding dim must be an even integer >= 2, got {dim!r}")
    half = dim // 2
    k = torch.arange(half, device=device, dtype=dtype)
    return torch.exp(k * (-math.log(max_period) / half))  # = max_period ** (-k / half)


def timestep_embedding(t: torch.Tensor | int | float, dim: int, max_period: float = MAX_PERIOD) -> torch.Tensor:
    """The raw sinusoid e(t): (B,) timesteps -> (B, dim) float32; a scalar t gives (dim,).

    This is the encoding itself, with no learned layers, so it can also be plotted for any t.
    """
    scalar = not torch.is_tensor(t) or t.ndim == 0
    tt = torch.as_tensor(t).reshape(-1)
    # float64 for the phase: t * w reaches 1e4 rad and float32 would lose its low digits (MPS has no float64).
    wide = torch.float32 if tt.device.type == "mps" else torch.float64
    w = frequencies(dim, max_period, device=tt.device, dtype=wide)
    args = tt.to(wide)[:, None] * w[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1).to(torch.float32)
    return emb[0] if scalar else emb


def as_timesteps(t: torch.Tensor | int, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Broadcast t (python int, 0-dim or (B,) tensor) to shape (batch,) on `device`.

    Integer timesteps come back as a LongTensor. A floating tensor keeps its values: the encoding is
    continuous in t, so a solver may ask for a fractional step.
    """
    if not torch.is_tensor(t):
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"t must be an int or a tensor of timesteps, got {type(t).__name__}")
        return torch.full((batch,), int(t), dtype=torch.long, device=device)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must hold timesteps (1..T), got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(batch)
    elif t.ndim != 1 or t.shape[0] != batch:
        raise ValueError(f"t must be a scalar or have shape ({batch},) to match the batch, got {tuple(t.shape)}")
    return t.to(device=device, dtype=t.dtype if t.is_floating_point() else torch.long)


class StepEmbedding(nn.Module):
    """Learned step embedding: sinusoid(dim) -> Linear -> SiLU -> Linear; (B,) -> (B, hidden)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        frequencies(dim)  # validates dim
        self.dim = dim
        self.hidden = hidden
        # No buffer for the frequencies: model.to(dtype) would round them; they are recomputed (dim/2 exps).
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim).to(self.mlp[0].weight.dtype))
