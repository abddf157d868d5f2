"""What every denoiser shares: the per-sample shape it was built for, and checks of its arguments.

A denoiser is built from the shape of ONE sample (no batch axis): (D,) for points, (C, L) for
signals, (C, H, W) for images. It remembers that shape so a checkpoint can rebuild it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

KINDS = {"points": 1, "signal": 2, "image": 3}  # data kind -> rank of one sample


class Denoiser(nn.Module):
    """Base class: `forward(x, t)` maps (B, *sample_shape) and timesteps (B,) to (B, *sample_shape)."""

    kind: str = ""  # which data kind the net is for; a key of KINDS

    def __init__(self, sample_shape: Sequence[int]):
        super().__init__()
        self.sample_shape = check_sample_shape(type(self).__name__, self.kind, sample_shape)

    def check_input(self, x) -> None:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"{type(self).__name__} was built for samples of shape {self.sample_shape}, "
                f"got a batch of shape {tuple(x.shape)}"
            )


class Dropout(nn.Dropout):
    """nn.Dropout that draws its mask from `generator` when one is set, else from torch's global RNG.

    A trainer hands its own stream to every Dropout of the net it trains, so a run is reproducible
    and resumable without saving and restoring the global RNG around each step.
    """

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        if self.p >= 1:
            return torch.zeros_like(x)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep * (1.0 / (1.0 - self.p))


def check_sample_shape(net: str, kind: str, sample_shape: Sequence[int]) -> tuple[int, ...]:
    """Validate a per-sample shape for a net of the given kind and return it as a tuple of ints."""
    try:
        shape = tuple(int(s) for s in sample_shape)
    except TypeError:
        raise ValueError(f"sample_shape must be a sequence of ints, got {sample_shape!r}") from None
    want = {"points": "(D,) for points, e.g. (2,)", "signal": "(C, L) for signals, e.g. (1, 64)",
            "image": "(C, H, W) for images, e.g. (1, 8, 8)"}[kind]
    if len(shape) != KINDS[kind] or any(s < 1 for s in shape):
        raise ValueError(f"{net} is a denoiser for {kind} data and needs a sample shape {want}; got {shape}")
    return shape


def pos_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def int_tuple(name: str, value, minimum: int = 1, allow_empty: bool = False) -> tuple[int, ...]:
    """A list/tuple of ints (JSON gives lists) -> tuple; every entry >= minimum."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of integers, got {value!r}")
    out = tuple(value)
    if (not out and not allow_empty) or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in out):
        need = "a" if allow_empty else "a non-empty"
        raise ValueError(f"{name} must be {need} list of integers >= {minimum}, got {value!r}")
    return out


def even_int(name: str, value, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value % 2:
        raise ValueError(f"{name} must be an even integer >= {minimum}, got {value!r}")
    return value


def probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def group_count(channels: int, max_groups: int) -> int:
    """The largest group count <= max_groups that divides `channels` (GroupNorm needs a divisor)."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1
