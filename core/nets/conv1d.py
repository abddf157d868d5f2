"""A 1-D convolutional denoiser for signals: a stack of residual dilated convolutions (WaveNet-like).

Dilations cycle through `dilations`, so the receptive field grows geometrically with depth while
the sequence keeps its full resolution (no pooling: a short signal has nothing to spare). Each
block takes the step embedding as a scale and shift of its second norm.

Input (B, C, L) and timesteps (B,) -> output (B, C, L); any L works.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Denoiser, Dropout, even_int, group_count, int_tuple, pos_int, probability
from .embeddings import StepEmbedding, as_timesteps


class ResBlock1d(nn.Module):
    """GN -> SiLU -> dilated conv -> GN * (1 + scale) + shift -> SiLU -> dropout -> conv, plus x."""

    def __init__(self, channels: int, emb_dim: int, kernel: int, dilation: int, groups: int, dropout: float):
        super().__init__()
        g = group_count(channels, groups)
        self.norm1 = nn.GroupNorm(g, channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel // 2))
        self.emb = nn.Linear(emb_dim, 2 * channels)
        self.norm2 = nn.GroupNorm(g, channels)
        self.drop = Dropout(dropout)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(self.drop(F.silu(h)))


class Conv1dDenoiser(Denoiser):
    """Residual dilated 1-D conv stack.

    channels: width; blocks: residual blocks; dilations: cycled over the blocks; kernel_size: odd
    conv width; groups: the most GroupNorm groups; step_dim: width of the sinusoidal step code;
    dropout: inside blocks.
    """

    kind = "signal"

    def __init__(
        self,
        sample_shape: Sequence[int],
        *,
        channels: int = 64,
        blocks: int = 8,
        dilations: Sequence[int] = (1, 2, 4, 8),
        kernel_size: int = 3,
        groups: int = 8,
        step_dim: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__(sample_shape)
        cin, _ = self.sample_shape
        width = pos_int("channels", channels)
        blocks = pos_int("blocks", blocks)
        dil = int_tuple("dilations", dilations)
        k = pos_int("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd so the output keeps the input's length, got {k}")
        groups = pos_int("groups", groups)
        dropout = probability("dropout", dropout)

        emb_dim = 4 * width
        self.step = StepEmbedding(even_int("step_dim", step_dim), emb_dim)
        self.inp = nn.Conv1d(cin, width, k, padding=k // 2)
        self.dilation_per_block = tuple(dil[i % len(dil)] for i in range(blocks))
        self.blocks = nn.ModuleList(ResBlock1d(width, emb_dim, k, d, groups, dropout) for d in self.dilation_per_block)
        self.out = nn.Sequential(nn.GroupNorm(group_count(width, groups), width), nn.SiLU(),
                                 nn.Conv1d(width, cin, k, padding=k // 2))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self.kernel_size = k

    @property
    def receptive_field(self) -> int:
        """How many input positions the convolutions connect to one output (input and output convs included).

        GroupNorm's statistics span the whole signal, so beyond this reach an input still shifts
        an output, but only through the mean and variance of its group.
        """
        reach = (self.kernel_size - 1) * (2 + sum(d + 1 for d in self.dilation_per_block))
        return reach + 1

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.sample_shape[0]:
            raise ValueError(f"Conv1dDenoiser expects (B, {self.sample_shape[0]}, L), got {tuple(x.shape)}")
        emb = F.silu(self.step(as_timesteps(t, x.shape[0], x.device)))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
